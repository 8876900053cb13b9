//! The default eviction policy: least recently used, O(1) per operation.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::raw::{EntryId, EntryMeta, EvictionPolicy, EvictionState};

/// Least recently used: the entry read or written longest ago goes first.
///
/// Every operation is O(1): a hash map from id to a node of an intrusive doubly linked list
/// kept in a vector (no allocation per access). This is the policy of
/// [`MemoryBackend::new`](super::MemoryBackend::new) and reproduces the published LRU hit ratios
/// of the ARC and LIRS traces exactly.
///
/// ```
/// use memstache_core::memory::Lru;
/// use memstache_core::raw::{EntryMeta, EvictionPolicy};
///
/// let mut state = Lru.new_state(2);
/// state.record_insert(1, &EntryMeta::default());
/// state.record_insert(2, &EntryMeta::default());
/// state.record_access(1);
/// assert_eq!(state.select_victim(), Some(2));
/// assert_eq!(state.select_victim(), Some(1));
/// assert_eq!(state.select_victim(), None);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lru;

impl EvictionPolicy for Lru {
    fn name(&self) -> &'static str {
        "lru"
    }

    fn new_state(&self, capacity: usize) -> Box<dyn EvictionState> {
        Box::new(LruState::with_capacity(capacity))
    }
}

const NIL: usize = usize::MAX;

#[derive(Debug, Clone, Copy)]
struct Node {
    id: EntryId,
    prev: usize,
    next: usize,
}

/// A multiply-shift hasher for entry ids (which are already well spread or dense).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        let x = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = x ^ (x >> 29);
    }
}

pub(crate) type IdBuildHasher = BuildHasherDefault<IdHasher>;

/// The per-shard state of [`Lru`].
#[derive(Debug, Default)]
struct LruState {
    index: HashMap<EntryId, usize, IdBuildHasher>,
    nodes: Vec<Node>,
    free: Vec<usize>,
    /// Least recently used.
    head: usize,
    /// Most recently used.
    tail: usize,
}

impl LruState {
    fn with_capacity(capacity: usize) -> Self {
        // Do not trust a huge capacity hint with an up-front allocation.
        let hint = capacity.saturating_add(1).min(1 << 16);
        LruState {
            index: HashMap::with_capacity_and_hasher(hint, IdBuildHasher::default()),
            nodes: Vec::with_capacity(hint),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    fn unlink(&mut self, i: usize) {
        let Node { prev, next, .. } = self.nodes[i];
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next].prev = prev;
        }
    }

    fn push_back(&mut self, i: usize) {
        self.nodes[i].prev = self.tail;
        self.nodes[i].next = NIL;
        if self.tail == NIL {
            self.head = i;
        } else {
            self.nodes[self.tail].next = i;
        }
        self.tail = i;
    }

    fn release(&mut self, i: usize) {
        self.unlink(i);
        self.free.push(i);
    }
}

impl EvictionState for LruState {
    fn record_insert(&mut self, id: EntryId, _meta: &EntryMeta) {
        if let Some(&i) = self.index.get(&id) {
            // A duplicate insert is treated as an access.
            self.unlink(i);
            self.push_back(i);
            return;
        }
        let node = Node {
            id,
            prev: NIL,
            next: NIL,
        };
        let i = if let Some(i) = self.free.pop() {
            self.nodes[i] = node;
            i
        } else {
            self.nodes.push(node);
            self.nodes.len() - 1
        };
        self.index.insert(id, i);
        self.push_back(i);
    }

    fn record_access(&mut self, id: EntryId) {
        if let Some(&i) = self.index.get(&id)
            && self.tail != i
        {
            self.unlink(i);
            self.push_back(i);
        }
    }

    fn record_remove(&mut self, id: EntryId) {
        if let Some(i) = self.index.remove(&id) {
            self.release(i);
        }
    }

    fn select_victim(&mut self) -> Option<EntryId> {
        if self.head == NIL {
            return None;
        }
        let i = self.head;
        let id = self.nodes[i].id;
        self.index.remove(&id);
        self.release(i);
        Some(id)
    }

    fn len(&self) -> usize {
        self.index.len()
    }
}
