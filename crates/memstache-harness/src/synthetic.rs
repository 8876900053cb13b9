//! Seeded synthetic request streams for eviction tests that need no external data: Zipf,
//! uniform, sequential scans, cyclic loops and mixes of them. The same seed gives the same
//! stream on every machine (integer arithmetic and IEEE `f64` only).
//!
//! ```
//! use memstache_harness::synthetic::{cyclic, zipf};
//!
//! assert_eq!(cyclic(3, 2), [0, 1, 2, 0, 1, 2]);
//! let a = zipf(7, 1_000, 1.0, 10_000);
//! assert_eq!(a, zipf(7, 1_000, 1.0, 10_000)); // seeded: reproducible
//! assert!(a.iter().all(|&b| b < 1_000));
//! ```

/// A SplitMix64 generator (the same as `memstache_testkit::conformance::TestRng`).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A Zipf sampler over `items` ranks: rank `k` (0-based) is drawn with probability
/// proportional to `1 / (k + 1)^exponent`.
#[derive(Debug, Clone)]
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(items: u64, exponent: f64) -> Zipf {
        let mut cdf = Vec::with_capacity(items as usize);
        let mut total = 0.0;
        for k in 1..=items {
            total += 1.0 / (k as f64).powf(exponent);
            cdf.push(total);
        }
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        let k = self.cdf.partition_point(|&c| c <= u);
        k.min(self.cdf.len().saturating_sub(1)) as u64
    }
}

/// `len` requests for blocks `0..items` drawn from a Zipf distribution (block 0 the most
/// popular). `items` of 0 gives an empty stream.
pub fn zipf(seed: u64, items: u64, exponent: f64, len: usize) -> Vec<u64> {
    if items == 0 {
        return Vec::new();
    }
    let mut rng = Rng(seed);
    let dist = Zipf::new(items, exponent);
    (0..len).map(|_| dist.sample(&mut rng)).collect()
}

/// `len` requests for blocks `0..items`, uniformly at random. `items` of 0 gives an empty
/// stream.
pub fn uniform(seed: u64, items: u64, len: usize) -> Vec<u64> {
    if items == 0 {
        return Vec::new();
    }
    let mut rng = Rng(seed);
    (0..len).map(|_| rng.below(items)).collect()
}

/// A loop of `n` distinct blocks `0..n` requested in order, `repeats` times.
pub fn cyclic(n: u64, repeats: u64) -> Vec<u64> {
    (0..repeats).flat_map(|_| 0..n).collect()
}

/// `len` requests made of sequential scans: each scan reads 300–3 000 consecutive blocks from
/// a random start in `0..10_000`, so scans overlap and partly repeat each other.
pub fn sequential_scans(seed: u64, len: usize) -> Vec<u64> {
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let start = rng.below(10_000);
        let scan = 300 + rng.below(2_701);
        out.extend((start..start + scan).take(len - out.len()));
    }
    out
}

/// The block ids that [`scan_polluted_zipf`] and [`mixed`] use for one-time scans: never
/// requested twice, and far from every other block id.
pub const SCAN_BASE: u64 = 1 << 40;

/// `len` requests of a Zipf(0.9) workload over 5 000 popular blocks, polluted by one-time
/// scans: every 1 000 Zipf requests are followed by a scan of 1 000 blocks that are never
/// requested again (ids from [`SCAN_BASE`] up). Half of the requests are scan requests, which
/// no policy can hit; the other half reward keeping the popular blocks.
pub fn scan_polluted_zipf(seed: u64, len: usize) -> Vec<u64> {
    let mut rng = Rng(seed);
    let dist = Zipf::new(5_000, 0.9);
    let mut next_scan = SCAN_BASE;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        for _ in 0..1_000 {
            out.push(dist.sample(&mut rng));
        }
        out.extend(next_scan..next_scan + 1_000);
        next_scan += 1_000;
    }
    out.truncate(len);
    out
}

/// `len` requests interleaving three streams, request by request: 60 % Zipf(1.0) over 2 000
/// blocks, 20 % a loop over 800 blocks (ids from 1 000 000), 20 % a one-time scan (ids from
/// [`SCAN_BASE`]).
pub fn mixed(seed: u64, len: usize) -> Vec<u64> {
    let mut rng = Rng(seed);
    let dist = Zipf::new(2_000, 1.0);
    let (mut looped, mut scanned) = (0u64, SCAN_BASE);
    (0..len)
        .map(|_| match rng.below(10) {
            0..=5 => dist.sample(&mut rng),
            6 | 7 => {
                looped = (looped + 1) % 800;
                1_000_000 + looped
            }
            _ => {
                scanned += 1;
                scanned
            }
        })
        .collect()
}

/// `len` requests with **recency-biased re-reference distances** (the LRU-friendly regime):
/// with probability `reuse` a request repeats the request made `k` requests earlier, where
/// `k` is drawn geometrically with mean `mean_distance` (so recent blocks are re-read far more
/// often than old ones); otherwise it reads a block never seen before. LRU is close to the
/// optimum here; a frequency filter that refuses newcomers is not.
pub fn recency_biased(seed: u64, reuse: f64, mean_distance: f64, len: usize) -> Vec<u64> {
    let mut rng = Rng(seed);
    let mut out: Vec<u64> = Vec::with_capacity(len);
    let mut fresh = 0u64;
    let p = 1.0 / mean_distance.max(1.0);
    while out.len() < len {
        if !out.is_empty() && rng.unit() < reuse {
            // geometric on 1.. with success probability p (inverse transform)
            let u = rng.unit().max(f64::MIN_POSITIVE);
            let k = ((u.ln() / (1.0 - p).ln()).floor() as usize + 1).min(out.len());
            out.push(out[out.len() - k]);
        } else {
            out.push(fresh);
            fresh += 1;
        }
    }
    out
}

/// `len` requests drawn uniformly from a **working set** of `size` blocks that drifts: after
/// each request, with probability `drift` one random member is replaced by a block never
/// seen before. With `size` just above or just below a cache's capacity this is the
/// near-working-set regime, where every block the cache holds is about as valuable as the
/// newcomer it would refuse.
pub fn drifting_working_set(seed: u64, size: u64, drift: f64, len: usize) -> Vec<u64> {
    if size == 0 {
        return Vec::new();
    }
    let mut rng = Rng(seed);
    let mut set: Vec<u64> = (0..size).collect();
    let mut fresh = size;
    (0..len)
        .map(|_| {
            let b = set[rng.below(size) as usize];
            if rng.unit() < drift {
                let i = rng.below(size) as usize;
                set[i] = fresh;
                fresh += 1;
            }
            b
        })
        .collect()
}

/// `len` requests of Zipf(`exponent`) over `items` blocks in which every `every` requests a
/// sequential scan of `scan` never-repeated blocks (ids from [`SCAN_BASE`]) is inserted; the
/// scans are part of `len`.
pub fn zipf_with_scans(
    seed: u64,
    items: u64,
    exponent: f64,
    every: usize,
    scan: u64,
    len: usize,
) -> Vec<u64> {
    let mut rng = Rng(seed);
    let dist = Zipf::new(items.max(1), exponent);
    let mut next_scan = SCAN_BASE;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        for _ in 0..every.max(1) {
            out.push(dist.sample(&mut rng));
        }
        out.extend(next_scan..next_scan + scan);
        next_scan += scan;
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_is_skewed_towards_low_ranks() {
        let s = zipf(1, 1_000, 1.0, 100_000);
        let count = |b: u64| s.iter().filter(|&&x| x == b).count() as f64;
        // With exponent 1, rank 1 is drawn twice as often as rank 2 and ten times as often as
        // rank 10 (within sampling noise).
        let (c0, c1, c9) = (count(0), count(1), count(9));
        assert!((c0 / c1 - 2.0).abs() < 0.15, "{c0} / {c1}");
        assert!((c0 / c9 - 10.0).abs() < 1.5, "{c0} / {c9}");
        // H(1000) ≈ 7.485, so rank 1 holds ≈ 13.4 % of the requests.
        assert!((c0 / 100_000.0 - 0.1336).abs() < 0.01, "{c0}");
        assert!(zipf(1, 0, 1.0, 10).is_empty());
    }

    #[test]
    fn streams_are_seeded_and_in_range() {
        assert_eq!(uniform(3, 50, 1_000), uniform(3, 50, 1_000));
        assert_ne!(uniform(3, 50, 1_000), uniform(4, 50, 1_000));
        assert!(uniform(3, 50, 1_000).iter().all(|&b| b < 50));
        assert_eq!(cyclic(2, 3), [0, 1, 0, 1, 0, 1]);
        assert_eq!(sequential_scans(1, 5_000).len(), 5_000);
        let s = sequential_scans(1, 5_000);
        assert!(s.windows(2).filter(|w| w[1] == w[0] + 1).count() > 4_900);
    }

    #[test]
    fn regime_generators_are_seeded_and_shaped() {
        let r = recency_biased(1, 0.8, 50.0, 50_000);
        assert_eq!(r, recency_biased(1, 0.8, 50.0, 50_000));
        let fresh = r.iter().collect::<std::collections::HashSet<_>>().len();
        // about 20 % of the requests read a new block
        assert!((9_000..11_000).contains(&fresh), "{fresh}");
        // re-references are recent: most repeat a block read within the last 200 requests
        let mut last = std::collections::HashMap::new();
        let mut near = 0;
        for (t, &b) in r.iter().enumerate() {
            if let Some(p) = last.insert(b, t) {
                near += usize::from(t - p <= 200);
            }
        }
        assert!(near > 35_000, "{near}");
        let w = drifting_working_set(2, 1_000, 0.01, 100_000);
        assert_eq!(w, drifting_working_set(2, 1_000, 0.01, 100_000));
        let distinct = w.iter().collect::<std::collections::HashSet<_>>().len();
        // 1 000 to start with, about 1 000 more by drift
        assert!((1_800..2_200).contains(&distinct), "{distinct}");
        assert!(w[0] < 1_000, "the first request reads the initial set");
        let z = zipf_with_scans(3, 1_000, 0.9, 500, 200, 7_000);
        assert_eq!(z.len(), 7_000);
        assert!(z[..500].iter().all(|&b| b < 1_000));
        assert_eq!(
            &z[500..700],
            &(SCAN_BASE..SCAN_BASE + 200).collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn scan_polluted_zipf_scans_are_one_time() {
        let s = scan_polluted_zipf(1, 30_000);
        assert_eq!(s.len(), 30_000);
        let scans: Vec<u64> = s.iter().copied().filter(|&b| b >= SCAN_BASE).collect();
        assert_eq!(scans.len(), 15_000);
        let unique: std::collections::HashSet<u64> = scans.iter().copied().collect();
        assert_eq!(unique.len(), scans.len());
        assert!(s[..1_000].iter().all(|&b| b < 5_000));
        assert_eq!(s[1_000], SCAN_BASE);
        assert_eq!(s[1_999], SCAN_BASE + 999);
        assert!(s[2_000..3_000].iter().all(|&b| b < 5_000));
        assert_eq!(s[3_000], SCAN_BASE + 1_000);
        let m = mixed(2, 10_000);
        let share = |f: &dyn Fn(u64) -> bool| m.iter().filter(|&&b| f(b)).count();
        assert!((5_500..6_500).contains(&share(&|b| b < 2_000)));
        assert!((1_700..2_300).contains(&share(&|b| b >= SCAN_BASE)));
    }
}
