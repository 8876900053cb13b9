//! The eviction SPI: how a bounded in-process store picks what to drop.

use std::fmt::Debug;

/// Identifies one entry inside one eviction state. The store assigns ids; they are unique
/// among live entries of that state (not necessarily dense).
pub type EntryId = u64;

/// What the store knows about an entry when it is inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EntryMeta {
    /// A 64-bit hash of the storage key (for frequency sketches).
    pub key_hash: u64,
    /// Bytes charged for the entry (key + value + overhead).
    pub weight: u64,
    /// When the entry expires, ms since the epoch, if it does.
    pub expires_at_ms: Option<u64>,
    /// When it was inserted, ms since the epoch.
    pub inserted_at_ms: u64,
}

impl EntryMeta {
    /// Metadata for an entry.
    pub fn new(
        key_hash: u64,
        weight: u64,
        expires_at_ms: Option<u64>,
        inserted_at_ms: u64,
    ) -> Self {
        EntryMeta {
            key_hash,
            weight,
            expires_at_ms,
            inserted_at_ms,
        }
    }
}

/// A factory for per-shard eviction states (LRU, LFU, time-based, W-TinyLFU, your own).
///
/// # Contract
///
/// * `new_state` is called once per shard of a store; states are used under that shard's lock,
///   so they need not be thread-safe themselves beyond `Send`.
/// * The operations of a state SHOULD be O(1) (O(log n) allowed, documented).
pub trait EvictionPolicy: Debug + Send + Sync + 'static {
    /// A short, stable name (`"lru"`, `"lfu"`, `"time"`, `"tinylfu"`, `"sieve"`, `"s3fifo"`).
    fn name(&self) -> &'static str;
    /// A fresh state for a shard that holds about `capacity` entries.
    fn new_state(&self, capacity: usize) -> Box<dyn EvictionState>;
}

/// The bookkeeping of one shard.
///
/// # Contract
///
/// * The store calls `record_insert` once for each new id, `record_access` on every hit,
///   `record_update` when an entry is replaced in place, and `record_remove` when an entry
///   leaves for any reason other than `select_victim`.
/// * `select_victim` returns a live id and forgets it (the store then removes that entry), or
///   `None` when the state tracks nothing. It MAY return the id that was inserted last (an
///   admission policy rejecting a newcomer).
/// * Methods MUST tolerate unknown ids (ignore them) and MUST NOT panic.
pub trait EvictionState: Send + 'static {
    /// A new entry was inserted.
    fn record_insert(&mut self, id: EntryId, meta: &EntryMeta);
    /// An entry was read.
    fn record_access(&mut self, id: EntryId);
    /// An entry was replaced in place (new value, same id). Default: an access.
    fn record_update(&mut self, id: EntryId, meta: &EntryMeta) {
        let _ = meta;
        self.record_access(id);
    }
    /// An entry left (removed, expired, replaced by a new id).
    fn record_remove(&mut self, id: EntryId);
    /// Picks and forgets the entry to evict next.
    fn select_victim(&mut self) -> Option<EntryId>;
    /// How many ids the state tracks.
    fn len(&self) -> usize;
    /// Whether the state tracks nothing.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
