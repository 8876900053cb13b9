//! The embedded, bounded in-process store: [`MemoryBackend`].
//!
//! Entries live in a fixed number of shards, each a [`parking_lot::Mutex`] around a hash map,
//! a slab of entries, an ordered expiry index and one [`EvictionState`](crate::raw::EvictionState)
//! of the configured [`EvictionPolicy`]. A key always maps to the same shard (by
//! [`key_hash`](crate::key_hash)'s 64-bit hash), so every operation takes exactly one lock.
//!
//! # Bounds
//!
//! The store is bounded by a number of entries and by a number of bytes. Each entry is charged
//! its key length + value length + [`MemoryBackend::ENTRY_OVERHEAD`] bytes (an estimate of the
//! map, slab, index and policy bookkeeping per entry). Both bounds are split over the shards
//! (the entry bound exactly: the per-shard bounds add up to `max_entries`), and each shard
//! enforces its share under its lock before the write that grew it returns. Hence **the total
//! never exceeds either bound**, even with many threads writing at once: a snapshot taken by
//! [`len`](MemoryBackend::len) or [`weighted_size`](MemoryBackend::weighted_size) while writes
//! run may mix shard states from slightly different instants, but each shard's part is within
//! that shard's bound at every instant, so the sum is too. (The looser guarantee other designs
//! give — at most one extra entry per shard — therefore holds a fortiori.)
//!
//! A single entry larger than one shard's byte bound is rejected with
//! [`ErrorKind::ValueTooLarge`](crate::ErrorKind::ValueTooLarge). Because bounds are per shard,
//! the policy's choices are per shard too: the store holds `max_entries` entries, but the victim
//! is the least valuable entry *of the shard* being written.
//!
//! # Expiry
//!
//! An entry is never returned at or after its [`Expiry`] instant on the injected
//! [`Clock`]. Reads (`get`, `get_many`, `touch`) re-arm a sliding window, capped by the
//! absolute deadline; `exists` does not. Due entries are reclaimed without scanning: each shard
//! keeps its expiring entries ordered by instant, and every operation on a shard pops at most
//! a few due entries from the front (plus the entry it touches, when due). Writes over a bound
//! reclaim due entries before evicting live ones.
//!
//! ```
//! use memstache_core::memory::MemoryBackend;
//! use memstache_core::raw::{Backend, Expiry};
//! use bytes::Bytes;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> memstache_core::Result<()> {
//! let store = MemoryBackend::builder().max_entries(10_000).max_bytes(64 << 20).build()?;
//! store.set("k", Bytes::from_static(b"v"), Expiry::NEVER).await?;
//! assert_eq!(store.get("k").await?, Some(Bytes::from_static(b"v")));
//! assert_eq!(store.len(), 1);
//! # Ok(())
//! # }
//! ```

mod builder;
mod lru;
mod shard;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;

use crate::raw::{Backend, Capabilities, Clock, EvictionPolicy, Expiry};
use crate::{Result, shard_hash};
pub use builder::{DEFAULT_MAX_PARTITIONS, MemoryBackendBuilder, PartitionFn};
pub use lru::Lru;
use shard::{Departure, Shard};

pub(crate) const ENTRY_OVERHEAD: u64 = 96;

/// Why an entry left the memory backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EvictionCause {
    /// Evicted by the eviction policy to stay within the entry or byte bound.
    Size,
    /// Its expiry instant passed (reclaimed on access or by the amortised sweep).
    Expired,
    /// Removed explicitly (`remove`, `remove_many`, `clear`).
    Removed,
    /// Its value was replaced by a `set` on the same key.
    Replaced,
}

/// An entry that left the memory backend, as seen by an
/// [`eviction_listener`](MemoryBackendBuilder::eviction_listener).
///
/// It carries the key's short hash, never the key or the value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EvictionEvent {
    /// [`key_hash`](crate::key_hash) of the entry's key.
    pub key_hash: String,
    /// The bytes the entry was charged (key + value + [`MemoryBackend::ENTRY_OVERHEAD`]).
    pub weight: u64,
    /// Why it left.
    pub cause: EvictionCause,
}

pub(crate) type Listener = Arc<dyn Fn(&EvictionEvent) + Send + Sync + 'static>;

/// The embedded, bounded, sharded in-process backend (see the [module docs](self)).
///
/// A cheap-to-clone handle: clones share the same store.
///
/// ```
/// use memstache_core::memory::{Lru, MemoryBackend};
/// use memstache_core::raw::{Backend, Expiry};
/// use bytes::Bytes;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> memstache_core::Result<()> {
/// let store = MemoryBackend::builder().max_entries(2).shards(1).policy(Lru).build()?;
/// for k in ["a", "b", "c"] {
///     store.set(k, Bytes::from_static(b"v"), Expiry::NEVER).await?;
/// }
/// assert_eq!(store.len(), 2);
/// assert!(!store.exists("a").await?); // least recently used went first
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryBackend {
    inner: Arc<Inner>,
}

struct Inner {
    shards: Box<[Mutex<Shard>]>,
    clock: Arc<dyn Clock>,
    policy: Arc<dyn EvictionPolicy>,
    listener: Option<Listener>,
    max_entries: usize,
    max_bytes: u64,
    partitions: Option<Partitions>,
}

/// Partitions of the keyspace (see [`MemoryBackendBuilder::partition_by`]).
pub(crate) struct Partitions {
    pub(crate) route: PartitionFn,
    pub(crate) max: usize,
    pub(crate) template: MemoryBackendBuilder,
    pub(crate) map: parking_lot::RwLock<std::collections::HashMap<Box<str>, Partition>>,
    /// Logical time of partition uses.
    pub(crate) tick: std::sync::atomic::AtomicU64,
}

/// One partition's store and when it was last used (a logical tick), to drop the idlest
/// partition when a new one needs room.
pub(crate) struct Partition {
    store: MemoryBackend,
    last_used: std::sync::atomic::AtomicU64,
}

impl Partition {
    fn touch(&self, tick: &std::sync::atomic::AtomicU64) -> MemoryBackend {
        use std::sync::atomic::Ordering::Relaxed;
        // Only a use that follows another partition's takes a new tick: a run of uses of one
        // partition only reads.
        if self.last_used.load(Relaxed) != tick.load(Relaxed) {
            self.last_used
                .store(tick.fetch_add(1, Relaxed) + 1, Relaxed);
        }
        self.store.clone()
    }
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("policy", &self.inner.policy.name())
            .field("shards", &self.inner.shards.len())
            .field("max_entries", &self.inner.max_entries)
            .field("max_bytes", &self.inner.max_bytes)
            .field("len", &self.len())
            .field("listener", &self.inner.listener.is_some())
            .finish()
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBackend {
    /// Bytes charged per entry on top of its key and value lengths: an estimate of the hash
    /// map slot, the entry record, the expiry index node and the eviction policy node.
    pub const ENTRY_OVERHEAD: u64 = ENTRY_OVERHEAD;

    /// A store with the defaults: 100 000 entries, 256 MiB, [`Lru`], the system clock.
    pub fn new() -> Self {
        MemoryBackendBuilder::default().build_unchecked()
    }

    /// A builder to set bounds, policy, clock, shards and an eviction listener.
    pub fn builder() -> MemoryBackendBuilder {
        MemoryBackendBuilder::default()
    }

    /// How many entries are stored (including due entries not reclaimed yet), partitions
    /// included.
    pub fn len(&self) -> usize {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().len())
            .sum::<usize>()
            + self
                .partitions()
                .iter()
                .map(MemoryBackend::len)
                .sum::<usize>()
    }

    /// The partitions that exist so far.
    fn partitions(&self) -> Vec<MemoryBackend> {
        self.inner
            .partitions
            .as_ref()
            .map(|p| p.map.read().values().map(|p| p.store.clone()).collect())
            .unwrap_or_default()
    }

    /// The number of entries in the partition `name` (`None` without partitions, or before
    /// the partition stored anything). See [`MemoryBackendBuilder::partition_by`].
    pub fn partition_len(&self, name: &str) -> Option<usize> {
        let p = self.inner.partitions.as_ref()?;
        p.map.read().get(name).map(|p| p.store.len())
    }

    /// The child store for a partitioned key, created on first use; creating one past the
    /// bound drops the partition used least recently.
    fn partition_for(&self, key: &str) -> Option<MemoryBackend> {
        let parts = self.inner.partitions.as_ref()?;
        let name = (parts.route)(key)?;
        if let Some(child) = parts.map.read().get(name) {
            return Some(child.touch(&parts.tick));
        }
        let (child, dropped) = {
            let mut map = parts.map.write();
            if let Some(child) = map.get(name) {
                return Some(child.touch(&parts.tick));
            }
            let dropped = if map.len() >= parts.max {
                let idlest = map
                    .iter()
                    .min_by_key(|(_, p)| p.last_used.load(std::sync::atomic::Ordering::Relaxed))
                    .map(|(k, _)| k.clone());
                idlest.and_then(|k| map.remove(&k))
            } else {
                None
            };
            let child = Partition {
                store: parts.template.clone().build_unchecked(),
                last_used: (parts
                    .tick
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1)
                .into(),
            };
            let store = child.store.clone();
            map.insert(name.into(), child);
            (store, dropped)
        };
        // Outside the map's lock: the listener may call the store.
        if let Some(p) = dropped {
            p.store.clear_as(EvictionCause::Size);
        }
        Some(child)
    }

    /// Whether no entry is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes charged for all stored entries (see [`ENTRY_OVERHEAD`](Self::ENTRY_OVERHEAD)).
    pub fn weighted_size(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().bytes())
            .sum::<u64>()
            + self
                .partitions()
                .iter()
                .map(MemoryBackend::weighted_size)
                .sum::<u64>()
    }

    /// Removes every entry (the listener sees each as [`EvictionCause::Removed`]).
    pub fn clear(&self) {
        self.clear_as(EvictionCause::Removed);
    }

    fn clear_as(&self, cause: EvictionCause) {
        for shard in self.inner.shards.iter() {
            let mut out = Vec::new();
            shard
                .lock()
                .clear(self.inner.policy.as_ref(), cause, &mut out);
            self.notify(out);
        }
        for p in self.partitions() {
            p.clear_as(cause);
        }
    }

    /// The name of the eviction policy.
    pub fn policy_name(&self) -> &'static str {
        self.inner.policy.name()
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// The largest entry (key + value + overhead) the store accepts: one shard's byte bound.
    pub fn max_entry_weight(&self) -> u64 {
        self.inner
            .shards
            .iter()
            .map(|s| s.lock().max_bytes())
            .min()
            .unwrap_or(0)
    }

    fn shard_of(&self, hash: u64) -> &Mutex<Shard> {
        // the number of shards is a power of two; use the high bits
        let n = self.inner.shards.len();
        let i = ((hash >> 32) as usize) & (n - 1);
        &self.inner.shards[i]
    }

    fn with_shard<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut Shard, u64, &dyn Clock, &mut Vec<Departure>) -> T,
    ) -> T {
        if let Some(child) = self.partition_for(key) {
            return child.with_shard(key, f);
        }
        let hash = shard_hash(key.as_bytes());
        let mut out = Vec::new();
        let r = {
            let mut shard = self.shard_of(hash).lock();
            f(&mut shard, hash, self.inner.clock.as_ref(), &mut out)
        };
        self.notify(out);
        r
    }

    /// Calls the listener outside any lock, so it may use the store.
    fn notify(&self, out: Vec<Departure>) {
        if let Some(listener) = &self.inner.listener {
            for d in out {
                listener(&EvictionEvent {
                    key_hash: crate::key_hash(&d.key),
                    weight: d.weight,
                    cause: d.cause,
                });
            }
        }
    }

    /// [`Backend::get`], synchronously (the store never waits).
    #[inline]
    pub(crate) fn get_sync(&self, key: &str) -> Option<Bytes> {
        self.with_shard(key, |s, _, clock, out| s.read(key, clock, true, out))
            .flatten()
    }

    /// [`Backend::set`], synchronously.
    #[inline]
    pub(crate) fn set_sync(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.with_shard(key, |s, hash, clock, out| {
            s.set(key, hash, value, expiry, clock.now_ms(), out)
        })
        .map_err(|e| {
            e.with_operation("set")
                .with_context("backend", "memory")
                .with_context("key_hash", crate::key_hash(key))
        })
    }

    /// [`Backend::remove`], synchronously.
    #[inline]
    pub(crate) fn remove_sync(&self, key: &str) -> bool {
        self.with_shard(key, |s, _, clock, out| s.remove(key, clock, out))
    }

    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        for s in self.inner.shards.iter() {
            s.lock().check();
        }
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &'static str {
        "memory"
    }

    fn capabilities(&self) -> Capabilities {
        let max = self.max_entry_weight().saturating_sub(ENTRY_OVERHEAD);
        Capabilities::default()
            .with_distributed(false)
            .with_native_batch(false)
            .with_max_value_size(Some(usize::try_from(max).unwrap_or(usize::MAX)))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        Ok(self.get_sync(key))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.set_sync(key, value, expiry)
    }

    async fn remove(&self, key: &str) -> Result<bool> {
        Ok(self.remove_sync(key))
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        // exists + set under one shard lock: atomic for every caller of this backend
        self.with_shard(key, |s, hash, clock, out| {
            if s.exists(key, clock, out) {
                return Ok(false);
            }
            s.set(key, hash, value, expiry, clock.now_ms(), out)
                .map(|()| true)
        })
        .map_err(|e| {
            e.with_operation("set_if_absent")
                .with_context("backend", "memory")
                .with_context("key_hash", crate::key_hash(key))
        })
    }

    async fn remove_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool> {
        // read + compare + remove under one shard lock: atomic for every caller
        Ok(self.with_shard(key, |s, _, clock, out| {
            match s.read(key, clock, true, out) {
                Some(Some(v)) if v.as_ref() == expected => s.remove(key, clock, out),
                _ => false,
            }
        }))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        Ok(self.with_shard(key, |s, _, clock, out| s.exists(key, clock, out)))
    }

    async fn touch(&self, key: &str) -> Result<bool> {
        Ok(self
            .with_shard(key, |s, _, clock, out| s.read(key, clock, false, out))
            .is_some())
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        Ok(keys.iter().map(|k| self.get_sync(k)).collect())
    }
}
