//! Time-based eviction: the entry closest to its deadline goes first.

use std::collections::BTreeMap;
use std::collections::HashMap;

use memstache_core::raw::{EntryId, EntryMeta, EvictionPolicy, EvictionState};

/// Evicts the entry that would expire soonest; entries without a deadline go after all
/// entries with one, oldest insertion first (FIFO).
///
/// Suits stores where most entries carry a time to live: the victim is the entry with the
/// least life left, i.e. the one whose eviction loses the least. Reads do not change the
/// order; a replacement (`record_update`) re-files the entry under its new deadline and
/// insertion time. Deadlines are those known at insert/update: a sliding window re-armed by
/// reads is not seen (the store still expires entries exactly; this only affects which live
/// entry is evicted under pressure).
///
/// Complexity: **O(log n)** per insert, update, remove and victim selection (an ordered
/// `BTreeMap` keyed by deadline), O(1) per access.
///
/// ```
/// use memstache_eviction::TimeBased;
/// use memstache_core::raw::{EntryMeta, EvictionPolicy};
///
/// let mut state = TimeBased::default().new_state(3);
/// state.record_insert(1, &EntryMeta::new(11, 100, None, 0));
/// state.record_insert(2, &EntryMeta::new(12, 100, Some(9_000), 1));
/// state.record_insert(3, &EntryMeta::new(13, 100, Some(5_000), 2));
/// assert_eq!(state.select_victim(), Some(3)); // closest deadline
/// assert_eq!(state.select_victim(), Some(2));
/// assert_eq!(state.select_victim(), Some(1)); // no deadline: by age
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeBased;

impl EvictionPolicy for TimeBased {
    fn name(&self) -> &'static str {
        "time"
    }

    fn new_state(&self, capacity: usize) -> Box<dyn EvictionState> {
        Box::new(TimeState {
            order: BTreeMap::new(),
            index: HashMap::with_capacity(capacity.min(1 << 16)),
            seq: 0,
        })
    }
}

/// `(class, instant, sequence)`: class 0 = has a deadline (instant = deadline), class 1 = no
/// deadline (instant = insertion time). The sequence makes keys unique and breaks ties FIFO.
type Slot = (u8, u64, u64);

#[derive(Debug)]
struct TimeState {
    order: BTreeMap<Slot, EntryId>,
    index: HashMap<EntryId, Slot>,
    seq: u64,
}

impl TimeState {
    fn slot(&mut self, meta: &EntryMeta) -> Slot {
        self.seq = self.seq.wrapping_add(1);
        match meta.expires_at_ms {
            Some(at) => (0, at, self.seq),
            None => (1, meta.inserted_at_ms, self.seq),
        }
    }

    fn file(&mut self, id: EntryId, meta: &EntryMeta) {
        if let Some(old) = self.index.remove(&id) {
            self.order.remove(&old);
        }
        let slot = self.slot(meta);
        self.order.insert(slot, id);
        self.index.insert(id, slot);
    }
}

impl EvictionState for TimeState {
    fn record_insert(&mut self, id: EntryId, meta: &EntryMeta) {
        self.file(id, meta);
    }

    fn record_access(&mut self, _id: EntryId) {}

    fn record_update(&mut self, id: EntryId, meta: &EntryMeta) {
        if self.index.contains_key(&id) {
            self.file(id, meta);
        }
    }

    fn record_remove(&mut self, id: EntryId) {
        if let Some(slot) = self.index.remove(&id) {
            self.order.remove(&slot);
        }
    }

    fn select_victim(&mut self) -> Option<EntryId> {
        let (_, id) = self.order.pop_first()?;
        self.index.remove(&id);
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
    fn update_refiles_and_ties_are_fifo() {
        let mut st = TimeBased.new_state(4);
        st.record_insert(1, &EntryMeta::new(1, 1, Some(100), 0));
        st.record_insert(2, &EntryMeta::new(2, 1, Some(100), 0));
        st.record_insert(3, &EntryMeta::new(3, 1, None, 5));
        st.record_insert(4, &EntryMeta::new(4, 1, None, 1));
        // 1 gets a later deadline than 2
        st.record_update(1, &EntryMeta::new(1, 1, Some(200), 9));
        st.record_access(2);
        assert_eq!(st.len(), 4);
        assert_eq!(st.select_victim(), Some(2));
        assert_eq!(st.select_victim(), Some(1));
        assert_eq!(st.select_victim(), Some(4)); // older
        assert_eq!(st.select_victim(), Some(3));
        assert_eq!(st.select_victim(), None);
    }
}
