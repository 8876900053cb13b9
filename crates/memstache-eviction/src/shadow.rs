//! A sampled shadow LRU: what plain LRU would hit on the same requests, estimated from a
//! fixed-rate sample of the keys (SHARDS: Waldspurger et al., "Efficient MRC Construction
//! with SHARDS", FAST 2015). W-TinyLFU uses it as its reference: while LRU would have hit
//! clearly more often, the window grows towards LRU at once instead of waiting for the hill
//! climber to find the way sample by sample.

use crate::list::{IdMap, Link, List, Slab, id_map, linked};

/// A shadow never tracks more than this many sampled keys: caches up to this size are
/// simulated exactly, larger ones through a 1-in-(capacity / this) sample of their keys.
pub(crate) const SHADOW_ENTRIES: usize = 1_024;

#[derive(Debug)]
struct Node {
    hash: u64,
    link: Link,
}

linked!(Node);

#[derive(Debug)]
pub(crate) struct LruShadow {
    capacity: usize,
    /// A key is sampled when its spread hash is at most this.
    threshold: u64,
    index: IdMap,
    nodes: Slab<Node>,
    order: List,
}

fn spread(hash: u64) -> u64 {
    let x = (hash ^ (hash >> 31)).wrapping_mul(0x7fb5_d329_728e_a185);
    x ^ (x >> 27)
}

impl LruShadow {
    /// A shadow of an LRU cache of `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        let rate = capacity.div_ceil(SHADOW_ENTRIES).max(1);
        let mini = capacity.div_ceil(rate).max(1);
        LruShadow {
            capacity: mini,
            threshold: if rate == 1 {
                u64::MAX
            } else {
                u64::MAX / rate as u64
            },
            index: id_map(mini),
            nodes: Slab::with_capacity(mini),
            order: List::default(),
        }
    }

    /// How many sampled keys the shadow holds at most.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether every key is simulated (the cache is at most [`SHADOW_ENTRIES`] large), rather
    /// than a sample of them.
    pub(crate) fn is_exact(&self) -> bool {
        self.threshold == u64::MAX
    }

    /// Records a request for `hash`: `None` when the key is not in the sample, else whether
    /// LRU would have hit it.
    pub(crate) fn request(&mut self, hash: u64) -> Option<bool> {
        if spread(hash) > self.threshold {
            return None;
        }
        if let Some(&i) = self.index.get(&hash) {
            self.order.move_to_back(&mut self.nodes, i);
            return Some(true);
        }
        if self.index.len() >= self.capacity
            && let Some(old) = self.order.front()
        {
            let h = self.nodes.get(old).hash;
            self.order.unlink(&mut self.nodes, old);
            self.nodes.release(old);
            self.index.remove(&h);
        }
        if let Some(i) = self.nodes.insert(Node {
            hash,
            link: Link::default(),
        }) {
            self.order.push_back(&mut self.nodes, i);
            self.index.insert(hash, i);
        }
        Some(false)
    }

    /// Forgets `hash` (the entry was removed from the cache, not evicted).
    pub(crate) fn remove(&mut self, hash: u64) {
        if let Some(i) = self.index.remove(&hash) {
            self.order.unlink(&mut self.nodes, i);
            self.nodes.release(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_caches_are_simulated_exactly() {
        let mut s = LruShadow::new(2);
        assert_eq!(s.request(1), Some(false));
        assert_eq!(s.request(2), Some(false));
        assert_eq!(s.request(1), Some(true));
        assert_eq!(s.request(3), Some(false)); // evicts 2, the least recent
        assert_eq!(s.request(2), Some(false));
        assert_eq!(s.request(3), Some(true));
        s.remove(3);
        assert_eq!(s.request(3), Some(false));
    }

    #[test]
    fn large_caches_are_sampled_and_bounded() {
        let mut s = LruShadow::new(100_000);
        let sampled = (0..1_000_000u64)
            .filter(|&h| s.request(h.wrapping_mul(0x9e37_79b9_7f4a_7c15)).is_some())
            .count();
        // rate 1 in 98: about 10 200 of a million keys
        assert!((9_000..11_500).contains(&sampled), "{sampled}");
        assert!(s.index.len() <= SHADOW_ENTRIES);
    }
}
