//! Intrusive doubly linked lists over a slab of nodes, with `u32` links: O(1) push, unlink
//! and pop, no allocation per operation once the slab has grown.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use memstache_core::raw::EntryId;

/// The null link.
pub(crate) const NIL: u32 = u32::MAX;

/// The links of a node that is in at most one list at a time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Link {
    pub(crate) prev: u32,
    pub(crate) next: u32,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            prev: NIL,
            next: NIL,
        }
    }
}

/// A node type that carries a [`Link`].
pub(crate) trait Linked {
    fn link(&self) -> &Link;
    fn link_mut(&mut self) -> &mut Link;
}

/// Implements [`Linked`] for a node type whose list link is its field `link`.
macro_rules! linked {
    ($node:ty) => {
        impl $crate::list::Linked for $node {
            fn link(&self) -> &$crate::list::Link {
                &self.link
            }
            fn link_mut(&mut self) -> &mut $crate::list::Link {
                &mut self.link
            }
        }
    };
}
pub(crate) use linked;

/// A slab of nodes; freed slots are reused.
#[derive(Debug)]
pub(crate) struct Slab<T> {
    nodes: Vec<T>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            nodes: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Slab {
            nodes: Vec::with_capacity(n.min(1 << 16)),
            free: Vec::new(),
        }
    }

    /// Stores `node`; `None` only when the slab holds 2^32 - 1 nodes.
    pub(crate) fn insert(&mut self, node: T) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            self.nodes[i as usize] = node;
            return Some(i);
        }
        let i = u32::try_from(self.nodes.len()).ok().filter(|&i| i != NIL)?;
        self.nodes.push(node);
        Some(i)
    }

    /// Marks slot `i` free (the node must be unlinked first).
    pub(crate) fn release(&mut self, i: u32) {
        self.free.push(i);
    }

    /// How many slots were ever allocated (live and free).
    #[cfg(test)]
    pub(crate) fn allocated(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn get(&self, i: u32) -> &T {
        &self.nodes[i as usize]
    }

    pub(crate) fn get_mut(&mut self, i: u32) -> &mut T {
        &mut self.nodes[i as usize]
    }
}

/// One list threaded through a [`Slab`]; front = oldest, back = newest.
#[derive(Debug, Clone, Copy)]
pub(crate) struct List {
    head: u32,
    tail: u32,
    len: usize,
}

impl Default for List {
    fn default() -> Self {
        List {
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }
}

impl List {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    pub(crate) fn push_back<T: Linked>(&mut self, slab: &mut Slab<T>, i: u32) {
        let tail = self.tail;
        *slab.get_mut(i).link_mut() = Link {
            prev: tail,
            next: NIL,
        };
        if tail == NIL {
            self.head = i;
        } else {
            slab.get_mut(tail).link_mut().next = i;
        }
        self.tail = i;
        self.len += 1;
    }

    /// Inserts `i` right after `at` (which must be in this list).
    pub(crate) fn insert_after<T: Linked>(&mut self, slab: &mut Slab<T>, at: u32, i: u32) {
        let next = slab.get(at).link().next;
        *slab.get_mut(i).link_mut() = Link { prev: at, next };
        slab.get_mut(at).link_mut().next = i;
        if next == NIL {
            self.tail = i;
        } else {
            slab.get_mut(next).link_mut().prev = i;
        }
        self.len += 1;
    }

    /// Inserts `i` at the front.
    pub(crate) fn push_front<T: Linked>(&mut self, slab: &mut Slab<T>, i: u32) {
        let head = self.head;
        *slab.get_mut(i).link_mut() = Link {
            prev: NIL,
            next: head,
        };
        if head == NIL {
            self.tail = i;
        } else {
            slab.get_mut(head).link_mut().prev = i;
        }
        self.head = i;
        self.len += 1;
    }

    pub(crate) fn unlink<T: Linked>(&mut self, slab: &mut Slab<T>, i: u32) {
        let Link { prev, next } = *slab.get(i).link();
        if prev == NIL {
            self.head = next;
        } else {
            slab.get_mut(prev).link_mut().next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            slab.get_mut(next).link_mut().prev = prev;
        }
        *slab.get_mut(i).link_mut() = Link::default();
        self.len -= 1;
    }

    /// Moves `i` (in this list) to the back.
    pub(crate) fn move_to_back<T: Linked>(&mut self, slab: &mut Slab<T>, i: u32) {
        if self.tail != i {
            self.unlink(slab, i);
            self.push_back(slab, i);
        }
    }
}

/// A multiply-xorshift hasher for entry ids.
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

/// A map from entry id to slab slot.
pub(crate) type IdMap = HashMap<EntryId, u32, BuildHasherDefault<IdHasher>>;

pub(crate) fn id_map(capacity: usize) -> IdMap {
    IdMap::with_capacity_and_hasher(capacity.min(1 << 16), BuildHasherDefault::default())
}
