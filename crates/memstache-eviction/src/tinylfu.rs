//! W-TinyLFU: a small LRU admission window in front of a segmented LRU, guarded by a
//! frequency sketch, with an adaptive window size.

use memstache_core::raw::{EntryId, EntryMeta, EvictionPolicy, EvictionState};

use crate::list::{IdMap, Link, List, Slab, id_map, linked};
use crate::shadow::LruShadow;
use crate::sketch::FrequencySketch;

/// Window TinyLFU (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache Admission
/// Policy", ACM ToS 2017), as popularised by Caffeine.
///
/// * New entries enter a small **window** LRU (1 % of the capacity at first).
/// * An entry leaving the window is a *candidate* for the **main** space, a segmented LRU of a
///   *probation* segment (20 %) and a *protected* segment (80 %): a hit in probation promotes
///   to protected, and protected's overflow is demoted back to probation.
/// * When main is full, the candidate is admitted only if the **frequency sketch** estimates it
///   more popular than main's victim (probation's least recent entry) by a margin of two;
///   the loser is evicted.
///   The sketch is a count-min sketch of 4-bit counters (depth 4, one 64-byte block per key),
///   halved every 10 × capacity increments so old popularity fades. Candidates estimated at
///   6 or more that lose are still admitted with probability 1/128 (deterministic PRNG), which
///   defeats an attacker who keeps a victim artificially hot.
/// * With [`adaptive`](Self::adaptive) (the default) the window size adapts to the workload
///   (between one entry and all but one), in two ways:
///   - a **hill climber** (Caffeine's) resizes it every 10 × capacity requests (at most every
///     20 000), in steps of
///     6.25 % of the capacity decaying by 2 % per step, towards the size that raised the hit
///     ratio of the last sample;
///   - a **duel with LRU**: a shadow LRU of the same capacity replays a sample of the same
///     requests (every key for caches up to 1 024 entries, a fixed 1-in-(capacity / 1 024)
///     hash sample above; SHARDS, Waldspurger et al., FAST 2015). Every 4 × 1 024 sampled
///     requests (fewer for small caches) it compares LRU's hits with ours on those requests;
///     when LRU is ahead by more than a point, the window grows by a quarter of the capacity
///     at once; while LRU is ahead the climber may not shrink it (with an exact shadow), and
///     while we are more than 5 points ahead it may not grow it. The climber compares
///     a sample with the one before it, which a change in the workload fakes and which takes
///     many samples to cross the range; the duel compares both policies on the same requests
///     and moves in few. This is what keeps TinyLfu within half a point of LRU on recency-
///     biased and near-working-set workloads, where the plain climber lost up to 7 points
///     (`docs/eviction.md`, "How TinyLfu keeps up with LRU").
///
/// Complexity: **O(1)** per operation (list moves, four sketch counters, and for a sampled
/// key one move in the shadow LRU); a window resize moves at most 1 000 entries now (the
/// rest follows as entries come and go); aging the sketch is O(capacity) once per
/// 10 × capacity increments (amortised O(1)). Memory: the sketch takes 8 bytes per entry of
/// capacity (rounded up to a power of two); it starts sized for at most 4 096 entries and
/// grows ×4 as the state fills (forgetting its counts), so a huge nominal capacity costs
/// nothing up front. The shadow LRU holds at most 1 024 key hashes (about 35 bytes each by
/// layout: 16 in its slab, a 16-byte map slot and a control byte; not measured).
///
/// It is scan-resistant: a one-time scan cannot flush the popular entries, so it beats LRU
/// clearly on database and looping traces (see `docs/eviction.md`).
///
/// ```
/// use memstache_eviction::TinyLfu;
/// use memstache_core::raw::{EntryMeta, EvictionPolicy};
///
/// let policy = TinyLfu::default();
/// let mut state = policy.new_state(100);
/// let meta = |h| EntryMeta::new(h, 1, None, 0);
/// state.record_insert(1, &meta(1));
/// for _ in 0..5 {
///     state.record_access(1); // 1 is popular
/// }
/// for id in 2..=101 {
///     state.record_insert(id, &meta(id));
/// }
/// // over capacity: the popular entry survives the cold newcomers
/// let victim = state.select_victim().unwrap();
/// assert_ne!(victim, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TinyLfu {
    window: f64,
    adaptive: bool,
}

impl Default for TinyLfu {
    fn default() -> Self {
        TinyLfu {
            window: 0.01,
            adaptive: true,
        }
    }
}

impl TinyLfu {
    /// W-TinyLFU with a 1 % initial window and the adaptive climber.
    pub fn new() -> Self {
        Self::default()
    }

    /// The initial share of the capacity given to the admission window, between 0 and 1
    /// (out-of-range values are clamped, NaN is ignored). The window always holds at least one
    /// entry. Default: `0.01`.
    #[must_use]
    pub fn window_fraction(mut self, fraction: f64) -> Self {
        self.window = crate::share(fraction, self.window);
        self
    }

    /// Whether the hill climber adapts the window size to the workload. With `false` the
    /// window keeps its initial size (the static W-TinyLFU of the paper). Default: `true`.
    #[must_use]
    pub fn adaptive(mut self, adaptive: bool) -> Self {
        self.adaptive = adaptive;
        self
    }
}

impl EvictionPolicy for TinyLfu {
    fn name(&self) -> &'static str {
        "tinylfu"
    }

    fn new_state(&self, capacity: usize) -> Box<dyn EvictionState> {
        Box::new(TinyLfuState::new(
            capacity.max(1),
            self.window,
            self.adaptive,
        ))
    }
}

/// Where an entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    Window,
    Probation,
    Protected,
}

#[derive(Debug)]
struct Node {
    id: EntryId,
    hash: u64,
    region: Region,
    link: Link,
}

linked!(Node);

const PROTECTED_SHARE: f64 = 0.8;
const SAMPLE_FACTOR: u64 = 10;
/// The climber's sample is 10 × capacity requests, but at most this many: a large cache
/// otherwise sees only a handful of samples before the workload changes (OLTP at 55 000
/// entries: 1.7 samples in the whole trace) and stays at its initial, frequency-biased window
/// where LRU wins (72.70 % against LRU's 74.31 %; 74.15 % with the cap). 20 000 requests
/// measure a hit ratio to ±0.35 points (one standard deviation), well under the 5-point
/// restart threshold; without [`DUEL_FAR_AHEAD`] the short samples let the climber drift on
/// phase-heavy traces (P6 at 72 000 entries: 44.3 % instead of 58.4 %).
const CLIMB_SAMPLE_MAX: u64 = 20_000;
const ADMIT_HASHDOS_THRESHOLD: u8 = 6;
/// A candidate is admitted when its estimate exceeds the victim's by at least this much.
/// The candidate's count always includes the request that just brought it in, while the
/// victim's next request is still to come: a lead of one is that bias (plus count-min's
/// overestimation), not evidence of popularity. Requiring two stops the churn where each
/// newcomer evicts an equally popular resident just before it is read again (the loss to LRU
/// on reversal patterns: `backf` 36.09 % → 52.39 % at 430 entries with this change alone,
/// LRU 52.56 %), and gains
/// elsewhere (`docs/eviction.md`, "Tuning").
const ADMIT_MARGIN: u8 = 2;
const STEP_PERCENT: f64 = 0.0625;
const STEP_DECAY: f64 = 0.98;
const RESTART_THRESHOLD: f64 = 0.05;
/// A duel with the shadow LRU is decided every this many × the shadow's size sampled
/// requests (and at least [`DUEL_MIN_SAMPLE`]): long enough for LRU's advantage to be more
/// than noise, short enough to react within a few passes over the cache. Two was measured to
/// jump too early on OLTP (45.22 % at 2 000 entries, below ARC's 46.08 %); four keeps 46.52 %.
const DUEL_PERIOD: u64 = 4;
const DUEL_MIN_SAMPLE: u64 = 256;
/// LRU must lead by more than this (1 point of hit ratio) for the window to jump.
const DUEL_LRU_LEAD: f64 = 0.01;
/// How far the window jumps when LRU leads: a quarter of the capacity.
const DUEL_JUMP: f64 = 0.25;
/// While we lead LRU by more than this (5 points), the climber may not grow the window.
const DUEL_FAR_AHEAD: f64 = 0.05;
const TRANSFER_LIMIT: usize = 1_000;
/// The sketch starts sized for this many entries (or the capacity, if smaller) and grows
/// ×4 as the state fills, so a huge nominal capacity costs nothing up front.
const INITIAL_SKETCH: usize = 4_096;

#[derive(Debug)]
struct Climber {
    hits: u64,
    misses: u64,
    sample: u64,
    previous_hit_rate: f64,
    step: f64,
    /// The reference: plain LRU on a sample of the same requests.
    shadow: LruShadow,
    duel: Duel,
    /// LRU's lead over us (hit-ratio points / 100) in the last duel; negative = we lead.
    lru_lead: f64,
}

/// Sampled requests since the last duel (counted while the cache is full), and how many of
/// them LRU and we hit.
#[derive(Debug, Default, Clone, Copy)]
struct Duel {
    sampled: u64,
    lru_hits: u64,
    our_hits: u64,
}

#[derive(Debug)]
struct TinyLfuState {
    capacity: usize,
    window_max: usize,
    protected_max: usize,
    index: IdMap,
    nodes: Slab<Node>,
    window: List,
    probation: List,
    protected: List,
    sketch: FrequencySketch,
    /// The number of entries the sketch is sized for; grows with the state up to `capacity`.
    sketch_for: usize,
    climber: Option<Climber>,
    rng: u64,
}

impl TinyLfuState {
    fn new(capacity: usize, window: f64, adaptive: bool) -> Self {
        let window_max = ((capacity as f64 * window).round() as usize).clamp(1, capacity);
        let mut s = TinyLfuState {
            capacity,
            window_max,
            protected_max: 0,
            index: id_map(capacity),
            nodes: Slab::with_capacity(capacity),
            window: List::default(),
            probation: List::default(),
            protected: List::default(),
            sketch: FrequencySketch::new(capacity.min(INITIAL_SKETCH), 1, SAMPLE_FACTOR),
            sketch_for: capacity.min(INITIAL_SKETCH),
            climber: adaptive.then(|| Climber {
                hits: 0,
                misses: 0,
                sample: (capacity as u64)
                    .saturating_mul(SAMPLE_FACTOR)
                    .min(CLIMB_SAMPLE_MAX),
                previous_hit_rate: 0.0,
                step: -STEP_PERCENT * capacity as f64,
                shadow: LruShadow::new(capacity),
                duel: Duel::default(),
                lru_lead: 0.0,
            }),
            rng: 0x2545_f491_4f6c_dd1d,
        };
        s.protected_max = (s.main_max() as f64 * PROTECTED_SHARE) as usize;
        s
    }

    fn main_max(&self) -> usize {
        self.capacity - self.window_max
    }

    fn main_len(&self) -> usize {
        self.probation.len() + self.protected.len()
    }

    fn list(&mut self, region: Region) -> &mut List {
        match region {
            Region::Window => &mut self.window,
            Region::Probation => &mut self.probation,
            Region::Protected => &mut self.protected,
        }
    }

    fn move_to(&mut self, i: u32, to: Region) {
        let from = self.nodes.get(i).region;
        let mut src = *self.list(from);
        src.unlink(&mut self.nodes, i);
        *self.list(from) = src;
        let mut dst = *self.list(to);
        dst.push_back(&mut self.nodes, i);
        *self.list(to) = dst;
        self.nodes.get_mut(i).region = to;
    }

    /// Forgets node `i` entirely; returns its id.
    fn drop_node(&mut self, i: u32) -> EntryId {
        let node = self.nodes.get(i);
        let (id, region) = (node.id, node.region);
        let mut l = *self.list(region);
        l.unlink(&mut self.nodes, i);
        *self.list(region) = l;
        self.nodes.release(i);
        self.index.remove(&id);
        id
    }

    fn demote_protected_overflow(&mut self) {
        while self.protected.len() > self.protected_max {
            let Some(i) = self.protected.front() else {
                break;
            };
            self.move_to(i, Region::Probation);
        }
    }

    /// Fills main from the window's overflow while main has room (cold start, after a resize).
    fn spill_window(&mut self) {
        while self.window.len() > self.window_max && self.main_len() < self.main_max() {
            let Some(i) = self.window.front() else {
                break;
            };
            self.move_to(i, Region::Probation);
        }
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Whether the candidate should replace the victim in main.
    fn admit(&mut self, candidate: u64, victim: u64) -> bool {
        let c = self.sketch.frequency(candidate);
        let v = self.sketch.frequency(victim);
        if c >= v.saturating_add(ADMIT_MARGIN) {
            true
        } else if c >= ADMIT_HASHDOS_THRESHOLD {
            self.next_random() & 127 == 0
        } else {
            false
        }
    }

    /// Counts a request for `hash` (`hit` = it was resident) in the climber's sample and in
    /// the duel with the shadow LRU, and adapts the window when either is due.
    fn record(&mut self, hash: u64, hit: bool) {
        let full = self.index.len() >= self.capacity;
        let capacity = self.capacity as f64;
        let Some(c) = self.climber.as_mut() else {
            return;
        };
        if let Some(lru_hit) = c.shadow.request(hash) {
            if full {
                c.duel.sampled += 1;
                c.duel.lru_hits += u64::from(lru_hit);
                c.duel.our_hits += u64::from(hit);
            } else {
                // filling up: every policy hits the same; the duel starts when the cache is full
                c.duel = Duel::default();
            }
            let due = (c.shadow.capacity() as u64 * DUEL_PERIOD).max(DUEL_MIN_SAMPLE);
            if c.duel.sampled >= due {
                let lead =
                    (c.duel.lru_hits as f64 - c.duel.our_hits as f64) / c.duel.sampled as f64;
                c.duel = Duel::default();
                c.lru_lead = lead;
                if lead > DUEL_LRU_LEAD {
                    // LRU would have hit clearly more often: recency wins now. Grow the window
                    // by a quarter of the capacity and let the climber go on from there with a
                    // fresh sample (a hit-rate change across the jump would be no evidence).
                    c.hits = 0;
                    c.misses = 0;
                    c.previous_hit_rate = 0.0;
                    c.step = STEP_PERCENT * capacity;
                    let target = self.window_max + (DUEL_JUMP * capacity) as usize;
                    self.set_window(target);
                    return;
                }
            }
        }
        if hit {
            c.hits += 1;
        } else {
            c.misses += 1;
        }
        let n = c.hits + c.misses;
        if n < c.sample {
            return;
        }
        let hit_rate = c.hits as f64 / n as f64;
        c.hits = 0;
        c.misses = 0;
        let change = hit_rate - c.previous_hit_rate;
        let amount = if change >= 0.0 { c.step } else { -c.step };
        let sign = if amount >= 0.0 { 1.0 } else { -1.0 };
        c.step = if change.abs() >= RESTART_THRESHOLD {
            STEP_PERCENT * capacity * sign
        } else {
            STEP_DECAY * amount
        };
        c.previous_hit_rate = hit_rate;
        if amount < 0.0 && c.lru_lead > 0.0 && c.shadow.is_exact() {
            // never shrink the window (away from LRU) while LRU is ahead: the climber's
            // signal is a change over time, which a shift in the workload fakes; the duel
            // compares both on the same requests. Only with an exact shadow: a sampled one
            // (large caches) sees LRU ahead in passing phases of long traces, and holding
            // the window up then cost up to 17 points (P3 at 71 000 entries: 17.5 % instead
            // of 29.9 %)
            return;
        }
        if amount > 0.0 && c.lru_lead < -DUEL_FAR_AHEAD {
            // nor grow it (towards LRU) while we are far ahead of LRU: on phase-heavy traces
            // the climber otherwise drifts to a window where TinyLfu is LRU (P6 at 33 000
            // entries: 19.3 % instead of 27.9 %, LRU 4.3 %)
            return;
        }
        let amount = amount as i64;
        let target = if amount >= 0 {
            self.window_max
                .saturating_add(amount.unsigned_abs() as usize)
        } else {
            self.window_max
                .saturating_sub(amount.unsigned_abs() as usize)
        };
        self.set_window(target);
    }

    /// Resizes the window to `target` entries (clamped to 1 ..= capacity - 1; main keeps the
    /// rest, 80 % of it protected), moving at most [`TRANSFER_LIMIT`] entries between the
    /// regions now; the rest follows as entries are inserted and evicted.
    fn set_window(&mut self, target: usize) {
        let target = target.clamp(1, self.capacity.saturating_sub(1).max(1));
        if target == self.window_max {
            return;
        }
        self.window_max = target;
        self.protected_max = (self.main_max() as f64 * PROTECTED_SHARE) as usize;
        let mut moved = 0;
        while moved < TRANSFER_LIMIT && self.window.len() > self.window_max {
            let Some(i) = self.window.front() else {
                break;
            };
            self.move_to(i, Region::Probation);
            moved += 1;
        }
        self.demote_protected_overflow();
        while moved < TRANSFER_LIMIT && self.main_len() > self.main_max() {
            let Some(i) = self.probation.front().or_else(|| self.protected.front()) else {
                break;
            };
            self.move_to(i, Region::Window);
            moved += 1;
        }
    }
}

impl EvictionState for TinyLfuState {
    fn record_insert(&mut self, id: EntryId, meta: &EntryMeta) {
        if self.index.contains_key(&id) {
            self.record_access(id);
            return;
        }
        self.sketch.increment(meta.key_hash);
        let Some(i) = self.nodes.insert(Node {
            id,
            hash: meta.key_hash,
            region: Region::Window,
            link: Link::default(),
        }) else {
            return;
        };
        self.window.push_back(&mut self.nodes, i);
        self.index.insert(id, i);
        if self.index.len() > self.sketch_for && self.sketch_for < self.capacity {
            // resizing forgets the counts, like the first sizing of Caffeine's sketch
            self.sketch_for = self.sketch_for.saturating_mul(4).min(self.capacity);
            self.sketch = FrequencySketch::new(self.sketch_for, 1, SAMPLE_FACTOR);
        }
        self.spill_window();
        self.record(meta.key_hash, false);
    }

    fn record_access(&mut self, id: EntryId) {
        let Some(&i) = self.index.get(&id) else {
            return;
        };
        let node = self.nodes.get(i);
        let (hash, region) = (node.hash, node.region);
        self.sketch.increment(hash);
        match region {
            Region::Window => self.window.move_to_back(&mut self.nodes, i),
            Region::Protected => self.protected.move_to_back(&mut self.nodes, i),
            Region::Probation => {
                self.move_to(i, Region::Protected);
                self.demote_protected_overflow();
            }
        }
        self.record(hash, true);
    }

    fn record_update(&mut self, id: EntryId, meta: &EntryMeta) {
        if let Some(&i) = self.index.get(&id) {
            self.nodes.get_mut(i).hash = meta.key_hash;
        }
        self.record_access(id);
    }

    fn record_remove(&mut self, id: EntryId) {
        if let Some(&i) = self.index.get(&id) {
            let hash = self.nodes.get(i).hash;
            if let Some(c) = self.climber.as_mut() {
                c.shadow.remove(hash);
            }
            self.drop_node(i);
        }
    }

    fn select_victim(&mut self) -> Option<EntryId> {
        if self.index.is_empty() {
            return None;
        }
        while self.window.len() > self.window_max {
            let candidate = self.window.front()?;
            if self.main_len() < self.main_max() {
                self.move_to(candidate, Region::Probation);
                continue;
            }
            let Some(victim) = self.probation.front().or_else(|| self.protected.front()) else {
                return Some(self.drop_node(candidate));
            };
            let (c, v) = (self.nodes.get(candidate).hash, self.nodes.get(victim).hash);
            if self.admit(c, v) {
                let id = self.drop_node(victim);
                self.move_to(candidate, Region::Probation);
                return Some(id);
            }
            return Some(self.drop_node(candidate));
        }
        let i = self
            .probation
            .front()
            .or_else(|| self.protected.front())
            .or_else(|| self.window.front())?;
        Some(self.drop_node(i))
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(h: u64) -> EntryMeta {
        EntryMeta::new(h, 1, None, 0)
    }

    #[test]
    fn huge_capacity_starts_small_and_grows_the_sketch() {
        let mut st = TinyLfuState::new(usize::MAX, 0.01, true);
        assert_eq!(st.sketch_for, INITIAL_SKETCH);
        for id in 0..20_000u64 {
            st.record_insert(id, &meta(id));
        }
        assert_eq!(st.sketch_for, INITIAL_SKETCH * 16);
        assert_eq!(st.len(), 20_000);
    }

    #[test]
    fn frequent_entries_survive_a_scan() {
        let mut st = TinyLfuState::new(100, 0.01, false);
        for id in 0..100u64 {
            st.record_insert(id, &meta(id));
        }
        for _ in 0..5 {
            for id in 0..50u64 {
                st.record_access(id);
            }
        }
        // a scan of 1 000 one-hit entries
        for id in 1_000..2_000u64 {
            st.record_insert(id, &meta(id));
            while st.len() > 100 {
                st.select_victim();
            }
        }
        let mut survivors = 0;
        while let Some(v) = st.select_victim() {
            survivors += u64::from(v < 50);
        }
        assert_eq!(survivors, 50, "the hot half survives the scan");
    }

    #[test]
    fn climber_moves_the_window_and_keeps_the_total() {
        let mut st = TinyLfuState::new(1_000, 0.01, true);
        let start = st.window_max;
        // a recency-friendly workload: a sliding range of ids
        let mut window_changed = false;
        for t in 0..200_000u64 {
            let id = (t / 3) % 5_000 + (t % 7);
            if st.index.contains_key(&id) {
                st.record_access(id);
            } else {
                st.record_insert(id, &meta(id));
                while st.len() > 1_000 {
                    st.select_victim();
                }
            }
            window_changed |= st.window_max != start;
            assert_eq!(st.window_max + st.main_max(), 1_000);
            assert!(st.protected_max <= st.main_max());
        }
        assert!(
            window_changed,
            "the climber adapted the window at least once"
        );
    }
}
