//! Least frequently used, O(1) per operation.

use memstache_core::raw::{EntryId, EntryMeta, EvictionPolicy, EvictionState};

use crate::list::{IdMap, Link, List, NIL, Slab, id_map, linked};

/// Least frequently used: the entry read the fewest times since it was inserted goes first;
/// among entries with the same count, the one that reached that count longest ago.
///
/// Every operation is O(1) (the constant-time LFU of Shah, Mitra and Matani, 2010): entries
/// hang off a list of frequency buckets kept in ascending order, and an access moves an entry
/// to the next bucket, creating it next to the current one when missing. Counts never decay, so
/// LFU suits stable popularity and reacts slowly to shifts; [`TinyLfu`](crate::TinyLfu) ages
/// its counts and also weighs recency.
///
/// ```
/// use memstache_eviction::Lfu;
/// use memstache_core::raw::{EntryMeta, EvictionPolicy};
///
/// let mut state = Lfu::default().new_state(3);
/// for id in 1..=3 {
///     state.record_insert(id, &EntryMeta::default());
/// }
/// state.record_access(1);
/// state.record_access(1);
/// state.record_access(3);
/// assert_eq!(state.select_victim(), Some(2)); // read least
/// assert_eq!(state.select_victim(), Some(3));
/// assert_eq!(state.select_victim(), Some(1));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lfu;

impl EvictionPolicy for Lfu {
    fn name(&self) -> &'static str {
        "lfu"
    }

    fn new_state(&self, capacity: usize) -> Box<dyn EvictionState> {
        Box::new(LfuState::new(capacity))
    }
}

#[derive(Debug)]
struct Entry {
    id: EntryId,
    bucket: u32,
    link: Link,
}

linked!(Entry);

#[derive(Debug)]
struct Bucket {
    freq: u64,
    entries: List,
    link: Link,
}

linked!(Bucket);

#[derive(Debug)]
struct LfuState {
    index: IdMap,
    entries: Slab<Entry>,
    buckets: Slab<Bucket>,
    /// Buckets in ascending frequency.
    order: List,
}

impl LfuState {
    fn new(capacity: usize) -> Self {
        LfuState {
            index: id_map(capacity),
            entries: Slab::with_capacity(capacity),
            buckets: Slab::default(),
            order: List::default(),
        }
    }

    /// A bucket for `freq` right after `after` (or at the front when `after` is `NIL`),
    /// reusing the neighbour when it already has that frequency.
    fn bucket_after(&mut self, after: u32, freq: u64) -> Option<u32> {
        let next = if after == NIL {
            self.order.front().unwrap_or(NIL)
        } else {
            self.buckets.get(after).link.next
        };
        if next != NIL && self.buckets.get(next).freq == freq {
            return Some(next);
        }
        let b = self.buckets.insert(Bucket {
            freq,
            entries: List::default(),
            link: Link::default(),
        })?;
        if after == NIL {
            self.order.push_front(&mut self.buckets, b);
        } else {
            self.order.insert_after(&mut self.buckets, after, b);
        }
        Some(b)
    }

    /// Takes entry `e` out of its bucket, dropping the bucket when it empties.
    /// Returns the bucket before it in order (for re-insertion), or `NIL`.
    fn detach(&mut self, e: u32) -> (u32, u64) {
        let b = self.entries.get(e).bucket;
        let mut entries = self.buckets.get(b).entries;
        entries.unlink(&mut self.entries, e);
        let freq = self.buckets.get(b).freq;
        if entries.is_empty() {
            let prev = self.buckets.get(b).link.prev;
            self.order.unlink(&mut self.buckets, b);
            self.buckets.release(b);
            (prev, freq)
        } else {
            self.buckets.get_mut(b).entries = entries;
            (b, freq)
        }
    }

    fn attach(&mut self, e: u32, b: u32) {
        let mut entries = self.buckets.get(b).entries;
        entries.push_back(&mut self.entries, e);
        self.buckets.get_mut(b).entries = entries;
        self.entries.get_mut(e).bucket = b;
    }
}

impl EvictionState for LfuState {
    fn record_insert(&mut self, id: EntryId, _meta: &EntryMeta) {
        if self.index.contains_key(&id) {
            self.record_access(id);
            return;
        }
        let Some(b) = self.bucket_after(NIL, 1) else {
            return;
        };
        let Some(e) = self.entries.insert(Entry {
            id,
            bucket: b,
            link: Link::default(),
        }) else {
            if self.buckets.get(b).entries.is_empty() {
                self.order.unlink(&mut self.buckets, b);
                self.buckets.release(b);
            }
            return;
        };
        self.attach(e, b);
        self.index.insert(id, e);
    }

    fn record_access(&mut self, id: EntryId) {
        let Some(&e) = self.index.get(&id) else {
            return;
        };
        let (anchor, freq) = self.detach(e);
        // `anchor` is the old bucket when it survived, else the bucket before it (or NIL).
        let next_freq = freq.saturating_add(1);
        match self.bucket_after(anchor, next_freq) {
            Some(b) => self.attach(e, b),
            None => {
                // out of bucket slots (cannot happen below 2^32 buckets): forget the entry
                self.index.remove(&id);
                self.entries.release(e);
            }
        }
    }

    fn record_remove(&mut self, id: EntryId) {
        if let Some(e) = self.index.remove(&id) {
            self.detach(e);
            self.entries.release(e);
        }
    }

    fn select_victim(&mut self) -> Option<EntryId> {
        let b = self.order.front()?;
        let e = self.buckets.get(b).entries.front()?;
        let id = self.entries.get(e).id;
        self.index.remove(&id);
        self.detach(e);
        self.entries.release(e);
        Some(id)
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_are_broken_by_recency_and_buckets_are_reused() {
        let mut st = LfuState::new(8);
        for id in 1..=4 {
            st.record_insert(id, &EntryMeta::default());
        }
        // 3 then 1 reach count 2; 2 and 4 stay at 1
        st.record_access(3);
        st.record_access(1);
        assert_eq!(st.buckets_in_order(), [(1, 2), (2, 2)]);
        assert_eq!(st.select_victim(), Some(2)); // count 1, inserted before 4
        assert_eq!(st.select_victim(), Some(4));
        assert_eq!(st.select_victim(), Some(3)); // count 2, reached it before 1
        assert_eq!(st.select_victim(), Some(1));
        assert!(st.buckets_in_order().is_empty());
    }

    #[test]
    fn removing_the_only_entry_of_a_middle_bucket_keeps_order() {
        let mut st = LfuState::new(8);
        for id in 1..=3 {
            st.record_insert(id, &EntryMeta::default());
        }
        st.record_access(2);
        for _ in 0..3 {
            st.record_access(3);
        }
        assert_eq!(st.buckets_in_order(), [(1, 1), (2, 1), (4, 1)]);
        st.record_remove(2);
        assert_eq!(st.buckets_in_order(), [(1, 1), (4, 1)]);
        st.record_access(1);
        assert_eq!(st.buckets_in_order(), [(2, 1), (4, 1)]);
        assert_eq!(st.select_victim(), Some(1));
        assert_eq!(st.select_victim(), Some(3));
    }

    impl LfuState {
        /// `(frequency, entries)` per bucket, in list order.
        fn buckets_in_order(&self) -> Vec<(u64, usize)> {
            let mut out = Vec::new();
            let mut b = self.order.front().unwrap_or(NIL);
            while b != NIL {
                let bucket = self.buckets.get(b);
                out.push((bucket.freq, bucket.entries.len()));
                b = bucket.link.next;
            }
            out
        }
    }
}
