//! A count-min sketch of 4-bit counters with periodic aging: the popularity estimate of
//! W-TinyLFU.

/// Counters saturate at 15; every `sample_size` increments all counters are halved, so the
/// sketch forgets old popularity (the "reset" of TinyLFU).
///
/// Layout (as in Caffeine's `FrequencySketch`): a table of `u64` words, each holding sixteen
/// 4-bit counters, grouped in 64-byte blocks of eight words. An item maps to one block and to
/// four counters in it (depth 4), so a lookup touches one cache line. The estimate is the
/// minimum of the four counters.
#[derive(Debug, Clone)]
pub(crate) struct FrequencySketch {
    table: Vec<u64>,
    block_mask: usize,
    sample_size: u64,
    size: u64,
}

const RESET_MASK: u64 = 0x7777_7777_7777_7777;
const ONE_MASK: u64 = 0x1111_1111_1111_1111;

impl FrequencySketch {
    /// A sketch for a cache of `capacity` entries (at least eight words; `width_factor`
    /// words per entry, rounded up to a power of two), aging after `sample_factor` ×
    /// capacity increments.
    pub(crate) fn new(capacity: usize, width_factor: usize, sample_factor: u64) -> Self {
        let words = capacity
            .max(1)
            .saturating_mul(width_factor.max(1))
            .min(1 << 28)
            .next_power_of_two()
            .max(8);
        FrequencySketch {
            table: vec![0; words],
            block_mask: (words >> 3) - 1,
            sample_size: (capacity.max(1) as u64).saturating_mul(sample_factor.max(1)),
            size: 0,
        }
    }

    fn spread(hash: u64) -> (usize, u64) {
        // split one 64-bit hash into a block selector and an independent counter hash
        let mut x = hash ^ (hash >> 33);
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        let block = x as usize;
        let mut y = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        y ^= y >> 29;
        (block, y)
    }

    fn slots(&self, hash: u64) -> [(usize, u32); 4] {
        let (block_hash, counter_hash) = Self::spread(hash);
        let block = (block_hash & self.block_mask) << 3;
        let mut out = [(0, 0); 4];
        for (i, slot) in out.iter_mut().enumerate() {
            let h = (counter_hash >> (i << 3)) as u32;
            let index = (h >> 1) & 15;
            let offset = (h & 1) as usize;
            *slot = (block + offset + (i << 1), index << 2);
        }
        out
    }

    /// The estimated number of recent occurrences of `hash` (0 to 15).
    pub(crate) fn frequency(&self, hash: u64) -> u8 {
        self.slots(hash)
            .iter()
            .map(|&(word, shift)| ((self.table[word] >> shift) & 0xf) as u8)
            .min()
            .unwrap_or(0)
    }

    /// Counts one occurrence of `hash`; ages the sketch when the sample is full.
    pub(crate) fn increment(&mut self, hash: u64) {
        let mut added = false;
        for (word, shift) in self.slots(hash) {
            let mask = 0xf_u64 << shift;
            if self.table[word] & mask != mask {
                self.table[word] += 1 << shift;
                added = true;
            }
        }
        if added {
            self.size += 1;
            if self.size >= self.sample_size {
                self.reset();
            }
        }
    }

    /// Halves every counter.
    fn reset(&mut self) {
        let mut odd = 0u64;
        for w in &mut self.table {
            odd += u64::from((*w & ONE_MASK).count_ones());
            *w = (*w >> 1) & RESET_MASK;
        }
        self.size = self.size.saturating_sub(odd >> 2) >> 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_at_15_and_age() {
        let mut s = FrequencySketch::new(64, 1, 1_000_000);
        for _ in 0..40 {
            s.increment(42);
        }
        assert_eq!(s.frequency(42), 15);
        assert_eq!(s.frequency(43), 0);
        s.reset();
        assert_eq!(s.frequency(42), 7);
    }

    #[test]
    fn sample_full_triggers_reset() {
        let mut s = FrequencySketch::new(8, 1, 1);
        // sample size 8: eight distinct increments halve everything
        for i in 0..7 {
            s.increment(i * 7_919);
        }
        assert_eq!(s.frequency(0), 1);
        s.increment(1_000_003);
        assert_eq!(s.frequency(0), 0);
    }

    #[test]
    fn estimates_never_undercount_below_saturation() {
        let mut s = FrequencySketch::new(1_024, 1, 1_000_000);
        for k in 0..2_000u64 {
            for _ in 0..(k % 5) {
                s.increment(k);
            }
        }
        for k in 0..2_000u64 {
            assert!(u64::from(s.frequency(k)) >= k % 5);
        }
    }
}
