//! SIEVE: one FIFO queue, a visited bit per entry and a hand that sweeps from the oldest
//! entry towards the newest.

use memstache_core::raw::{EntryId, EntryMeta, EvictionPolicy, EvictionState};

use crate::list::{IdMap, Link, List, NIL, Slab, id_map, linked};

/// SIEVE (Zhang, Yang, Yue, Vigfusson and Rashmi, "SIEVE is Simpler than LRU: an Efficient
/// Turn-Key Eviction Algorithm for Web Caches", NSDI 2024).
///
/// * Entries sit in one FIFO queue in insertion order; a new entry joins at the newest end
///   with its *visited* bit clear.
/// * A read (or an in-place update) only sets the entry's visited bit; nothing moves.
/// * To evict, a **hand** walks from where it stopped last (at first: the oldest entry)
///   towards the newest: a visited entry has its bit cleared and is passed over, the first
///   unvisited entry is the victim. The hand stays at the victim's newer neighbour, and wraps
///   around to the oldest entry when it passes the newest.
///
/// Unlike CLOCK, survivors are not moved to the newest end: they keep their place, so new
/// entries that are not read again are evicted quickly ("quick demotion") while popular ones
/// stay behind the hand ("lazy promotion"). That makes SIEVE resist one-time scans (on the
/// scan-polluted Zipf workload of `tests/new_policies_hit_ratio.rs` it matches
/// [`TinyLfu`](crate::TinyLfu)), but not loops longer than the cache (0 % on the `loop` trace
/// below 1 024 entries), and it is below LRU on the OLTP trace (`docs/eviction.md`).
///
/// The store inserts an entry before it asks for a victim, while SIEVE evicts before it
/// inserts: the hand therefore passes over the entry inserted last, as if it were not there
/// yet (unless it is the only one). With that, the victims are exactly the paper's
/// (`tests/sieve_reference_model.rs`).
///
/// Complexity: **O(1)** insert, read, update and remove; `select_victim` is **amortised
/// O(1)** (every bit the hand clears was set by one read; one call is O(n) at worst). Memory:
/// one list node (id, visited bit, two `u32` links) and one map slot per entry; nothing is
/// allocated up front beyond what 65 536 entries need, whatever the capacity.
///
/// ```
/// use memstache_eviction::Sieve;
/// use memstache_core::raw::{EntryMeta, EvictionPolicy};
///
/// let mut state = Sieve::default().new_state(3);
/// for id in 1..=3 {
///     state.record_insert(id, &EntryMeta::default());
/// }
/// state.record_access(1); // 1 is visited: the hand passes over it once
/// state.record_insert(4, &EntryMeta::default()); // over capacity
/// assert_eq!(state.select_victim(), Some(2)); // 1's bit is cleared, 2 was never read
/// // draining: the hand goes on to 3, then wraps to 1; the newcomer goes last
/// assert_eq!(state.select_victim(), Some(3));
/// assert_eq!(state.select_victim(), Some(1));
/// assert_eq!(state.select_victim(), Some(4));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sieve;

impl Sieve {
    /// SIEVE; it has no settings.
    pub fn new() -> Self {
        Sieve
    }
}

impl EvictionPolicy for Sieve {
    fn name(&self) -> &'static str {
        "sieve"
    }

    fn new_state(&self, capacity: usize) -> Box<dyn EvictionState> {
        Box::new(SieveState::new(capacity))
    }
}

#[derive(Debug)]
struct Node {
    id: EntryId,
    visited: bool,
    link: Link,
}

linked!(Node);

#[derive(Debug)]
struct SieveState {
    index: IdMap,
    nodes: Slab<Node>,
    /// Front = oldest (the paper's tail), back = newest (the paper's head).
    queue: List,
    /// The next node the hand examines, or `NIL` for "start again from the oldest".
    hand: u32,
    /// The node inserted last (always the newest), until the next insert; `NIL` if it left.
    /// The store inserts before it evicts while SIEVE evicts before it inserts, so the hand
    /// treats this node as not there yet (unless it is the only one).
    fresh: u32,
}

impl SieveState {
    fn new(capacity: usize) -> Self {
        SieveState {
            index: id_map(capacity),
            nodes: Slab::with_capacity(capacity),
            queue: List::default(),
            hand: NIL,
            fresh: NIL,
        }
    }

    /// Where the hand goes after node `i`: its newer neighbour, or `NIL` (wrap to the oldest)
    /// past the newest node that is not fresh.
    fn after(&self, i: u32) -> u32 {
        match self.nodes.get(i).link.next {
            n if n == self.fresh => NIL,
            n => n,
        }
    }

    /// Unlinks and frees node `i`, moving the hand past it when it points there.
    fn drop_node(&mut self, i: u32) -> EntryId {
        if self.hand == i {
            self.hand = self.after(i);
        }
        if self.fresh == i {
            self.fresh = NIL;
        }
        let id = self.nodes.get(i).id;
        self.queue.unlink(&mut self.nodes, i);
        self.nodes.release(i);
        self.index.remove(&id);
        id
    }
}

impl EvictionState for SieveState {
    fn record_insert(&mut self, id: EntryId, _meta: &EntryMeta) {
        if self.index.contains_key(&id) {
            self.record_access(id);
            return;
        }
        let Some(i) = self.nodes.insert(Node {
            id,
            visited: false,
            link: Link::default(),
        }) else {
            return;
        };
        self.queue.push_back(&mut self.nodes, i);
        self.index.insert(id, i);
        self.fresh = i;
    }

    fn record_access(&mut self, id: EntryId) {
        if let Some(&i) = self.index.get(&id) {
            self.nodes.get_mut(i).visited = true;
        }
    }

    fn record_remove(&mut self, id: EntryId) {
        if let Some(&i) = self.index.get(&id) {
            self.drop_node(i);
        }
    }

    fn select_victim(&mut self) -> Option<EntryId> {
        let oldest = self.queue.front()?;
        if self.queue.len() == 1 {
            return Some(self.drop_node(oldest));
        }
        // with two or more nodes the oldest is not fresh, and `after` never yields fresh
        let mut i = if self.hand == NIL { oldest } else { self.hand };
        // one full pass clears every bit, so this ends within len + 1 steps
        loop {
            let node = self.nodes.get_mut(i);
            if !node.visited {
                break;
            }
            node.visited = false;
            i = match self.after(i) {
                NIL => oldest,
                next => next,
            };
        }
        // the hand stays at the victim's newer neighbour (drop_node moves it there)
        self.hand = i;
        Some(self.drop_node(i))
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(st: &mut SieveState, id: EntryId) {
        st.record_insert(id, &EntryMeta::default());
    }

    /// Inserts `id` and evicts while over `capacity`, returning the victims.
    fn admit(st: &mut SieveState, capacity: usize, id: EntryId) -> Vec<EntryId> {
        insert(st, id);
        let mut out = Vec::new();
        while st.len() > capacity {
            out.extend(st.select_victim());
        }
        out
    }

    #[test]
    fn hand_computed_trace() {
        // capacity 3; ids 1..=6 stand for a..f
        let mut st = SieveState::new(3);
        for id in 1..=3 {
            assert!(admit(&mut st, 3, id).is_empty());
        }
        st.record_access(1); // queue (old→new) a* b c, hand at the oldest
        assert_eq!(admit(&mut st, 3, 4), [2]); // clears a, evicts b; hand → c
        assert!(!st.nodes.get(st.index[&1]).visited);
        assert_eq!(st.hand, st.index[&3]);
        st.record_access(3);
        st.record_access(4); // a c* d* (+ e)
        // hand at c: clears c, clears d, passes the newcomer e, wraps to a: evicts a; hand → c
        assert_eq!(admit(&mut st, 3, 5), [1]);
        assert_eq!(st.hand, st.index[&3]);
        st.record_access(5); // c d e* (+ f)
        // hand at c (cleared on the last pass): evicted at once; hand → d
        assert_eq!(admit(&mut st, 3, 6), [3]);
        assert_eq!(st.hand, st.index[&4]);
        // d e* f: d is unvisited; then e is cleared and, f being the newcomer, the hand wraps
        // back to e
        assert_eq!(st.select_victim(), Some(4));
        assert_eq!(st.select_victim(), Some(5));
        assert_eq!(st.select_victim(), Some(6));
        assert_eq!(st.select_victim(), None);
        assert_eq!((st.hand, st.fresh), (NIL, NIL));
    }

    #[test]
    fn the_newcomer_is_not_swept_before_older_entries() {
        // SIEVE evicts before it inserts; the store inserts first. A hand that sweeps past every
        // visited entry must wrap to the oldest instead of evicting the entry just inserted.
        let mut st = SieveState::new(2);
        admit(&mut st, 2, 1);
        admit(&mut st, 2, 2);
        st.record_access(1);
        st.record_access(2);
        assert_eq!(admit(&mut st, 2, 3), [1]);
        st.record_access(3);
        // 2 3* (+ 4): the hand is at 2, cleared on the last pass
        assert_eq!(admit(&mut st, 2, 4), [2]);
    }

    #[test]
    fn removing_the_entry_under_the_hand_moves_the_hand_on() {
        let mut st = SieveState::new(8);
        for id in 1..=5 {
            insert(&mut st, id);
        }
        st.record_access(1);
        assert_eq!(st.select_victim(), Some(2)); // hand → 3
        assert_eq!(st.hand, st.index[&3]);
        st.record_remove(3); // the hand moves to 4
        assert_eq!(st.hand, st.index[&4]);
        st.record_remove(4); // past 4 is the newcomer 5: the hand wraps to the oldest
        assert_eq!(st.hand, NIL);
        assert_eq!(st.select_victim(), Some(1));
        st.record_remove(5);
        assert_eq!((st.hand, st.fresh), (NIL, NIL));
        assert_eq!(st.select_victim(), None);
        // removing an entry elsewhere leaves the hand alone
        for id in 10..=13 {
            insert(&mut st, id);
        }
        st.record_access(10);
        assert_eq!(st.select_victim(), Some(11)); // hand → 12
        st.record_remove(10);
        assert_eq!(st.hand, st.index[&12]);
        st.record_remove(99); // unknown
        assert_eq!(st.select_victim(), Some(12));
        assert_eq!(st.select_victim(), Some(13));
        assert!(st.is_empty());
    }

    #[test]
    fn the_hand_stays_on_a_live_entry_under_random_operations() {
        for capacity in [1usize, 2, 10, 64] {
            let mut st = SieveState::new(capacity);
            let mut x = 0x2545_f491_4f6c_dd1du64 ^ capacity as u64;
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let id = (x >> 8) % (4 * capacity as u64 + 4);
                match x % 8 {
                    0 => st.record_remove(id),
                    1..=3 => st.record_access(id),
                    _ => {
                        admit(&mut st, capacity, id);
                    }
                }
                assert_eq!(st.queue.len(), st.len());
                assert!(st.len() <= capacity);
                if st.hand != NIL {
                    let id = st.nodes.get(st.hand).id;
                    assert_eq!(
                        st.index.get(&id),
                        Some(&st.hand),
                        "the hand is on a live node"
                    );
                    assert_ne!(st.hand, st.fresh, "the hand is never on the newcomer");
                }
                if st.fresh != NIL {
                    let id = st.nodes.get(st.fresh).id;
                    assert_eq!(st.index.get(&id), Some(&st.fresh));
                    assert_eq!(st.nodes.get(st.fresh).link.next, NIL, "fresh is the newest");
                }
            }
        }
    }

    #[test]
    fn reinserting_a_live_id_is_an_access() {
        let mut st = SieveState::new(3);
        for id in 1..=3 {
            insert(&mut st, id);
        }
        insert(&mut st, 1);
        assert_eq!(st.len(), 3);
        assert!(st.nodes.get(st.index[&1]).visited);
        assert_eq!(st.select_victim(), Some(2));
    }

    #[test]
    fn hot_set_survives_a_scan() {
        let capacity = 100;
        let mut st = SieveState::new(capacity);
        for id in 0..100u64 {
            insert(&mut st, id);
        }
        // a scan of 1 000 one-time entries, the hot half (0..50) read between scan blocks
        for id in 1_000..2_000u64 {
            if id % 10 == 0 {
                for hot in 0..50u64 {
                    st.record_access(hot);
                }
            }
            admit(&mut st, capacity, id);
        }
        let mut survivors = 0;
        while let Some(v) = st.select_victim() {
            survivors += u64::from(v < 50);
        }
        assert_eq!(survivors, 50, "the hot half survives the scan");
    }
}
