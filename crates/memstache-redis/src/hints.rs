//! The bounded set of keys known to hold sliding entries ([`SlidingReads::Auto`]).
//!
//! [`SlidingReads::Auto`]: crate::SlidingReads::Auto

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

const SHARDS: usize = 16;

/// 64-bit key hashes (never the keys), sharded; a full shard is cleared. A false positive (hash
/// collision) or a forgotten key only changes which read path is used, never the result.
#[derive(Debug)]
pub(crate) struct SlidingHints {
    shards: Vec<Mutex<HashSet<u64>>>,
    per_shard: usize,
    hasher: RandomState,
    /// Entries over all shards (approximate under races, exact when quiet): lets the common
    /// case — no sliding entries at all — skip hashing and locking.
    len: AtomicUsize,
}

impl SlidingHints {
    pub(crate) fn new(capacity: usize) -> SlidingHints {
        SlidingHints {
            shards: (0..SHARDS).map(|_| Mutex::new(HashSet::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS),
            hasher: RandomState::new(),
            len: AtomicUsize::new(0),
        }
    }

    fn locate(&self, key: &str) -> (&Mutex<HashSet<u64>>, u64) {
        let h = self.hasher.hash_one(key);
        let shard = usize::try_from(h >> 60).unwrap_or(0) % SHARDS;
        (&self.shards[shard], h)
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        if self.per_shard == 0 || self.len.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let (shard, h) = self.locate(key);
        shard.lock().contains(&h)
    }

    pub(crate) fn insert(&self, key: &str) {
        if self.per_shard == 0 {
            return;
        }
        let (shard, h) = self.locate(key);
        let mut set = shard.lock();
        if set.len() >= self.per_shard && !set.contains(&h) {
            self.len.fetch_sub(set.len(), Ordering::Relaxed);
            set.clear();
        }
        if set.insert(h) {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn remove(&self, key: &str) {
        if self.per_shard == 0 || self.len.load(Ordering::Relaxed) == 0 {
            return;
        }
        let (shard, h) = self.locate(key);
        if shard.lock().remove(&h) {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Records what a read or write learned about `key`.
    pub(crate) fn learn(&self, key: &str, sliding: bool) {
        if sliding {
            self.insert(key);
        } else {
            self.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_forgets() {
        let h = SlidingHints::new(1_000);
        assert!(!h.contains("a"));
        h.insert("a");
        assert!(h.contains("a"));
        h.learn("a", false);
        assert!(!h.contains("a"));
        assert_eq!(h.len.load(Ordering::Relaxed), 0);
        h.learn("b", true);
        assert!(h.contains("b"));
    }

    #[test]
    fn stays_bounded() {
        let h = SlidingHints::new(64);
        for i in 0..10_000 {
            h.insert(&format!("k{i}"));
        }
        let total: usize = h.shards.iter().map(|s| s.lock().len()).sum();
        assert!(total <= 64, "{total}");
        assert_eq!(h.len.load(Ordering::Relaxed), total);
        let zero = SlidingHints::new(0);
        zero.insert("a");
        assert!(!zero.contains("a"));
    }
}
