//! The builder of [`MemoryBackend`].

use std::fmt;
use std::sync::Arc;

use parking_lot::Mutex;

use super::shard::Shard;
use super::{EvictionEvent, Inner, Listener, Lru, MemoryBackend, Partitions};
use crate::raw::{Clock, EvictionPolicy, SystemClock};
use crate::{Error, ErrorKind, Result};

/// The default entry bound.
const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// The default byte bound: 256 MiB.
const DEFAULT_MAX_BYTES: u64 = 256 << 20;
/// Default sharding aims at no fewer entries than this per shard.
const MIN_ENTRIES_PER_SHARD: usize = 64;
/// Default sharding: this many shards per available CPU.
const SHARDS_PER_CPU: usize = 4;
/// The most shards a store may have.
const MAX_SHARDS: usize = 1 << 16;

/// Configures a [`MemoryBackend`]; [`build`](Self::build) validates.
///
/// ```
/// use memstache_core::memory::{EvictionCause, Lru, MemoryBackend};
/// use memstache_core::raw::ManualClock;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// let evicted = Arc::new(AtomicUsize::new(0));
/// let seen = Arc::clone(&evicted);
/// let store = MemoryBackend::builder()
///     .max_entries(10_000)
///     .max_bytes(16 << 20)
///     .policy(Lru)
///     .clock(Arc::new(ManualClock::new(0)))
///     .eviction_listener(move |e| {
///         if e.cause == EvictionCause::Size {
///             seen.fetch_add(1, Ordering::Relaxed);
///         }
///     })
///     .build()?;
/// assert!(store.is_empty());
///
/// let err = MemoryBackend::builder().max_entries(0).build().unwrap_err();
/// assert_eq!(err.kind(), memstache_core::ErrorKind::InvalidConfig);
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[must_use]
#[derive(Clone)]
pub struct MemoryBackendBuilder {
    max_entries: usize,
    max_bytes: u64,
    policy: Arc<dyn EvictionPolicy>,
    clock: Arc<dyn Clock>,
    shards: Option<usize>,
    listener: Option<Listener>,
    partitions: Option<PartitionSpec>,
}

/// How keys are routed to partitions, and each partition's bounds.
#[derive(Clone, Copy)]
pub(super) struct PartitionSpec {
    pub(super) route: PartitionFn,
    pub(super) max_entries: usize,
    pub(super) max_bytes: u64,
    pub(super) max_partitions: usize,
}

/// Default bound on the number of partitions of a partitioned memory store
/// ([`MemoryBackendBuilder::max_partitions`]).
pub const DEFAULT_MAX_PARTITIONS: usize = 1024;

/// Names the partition a key belongs to (`None`: the store's own bounds). See
/// [`MemoryBackendBuilder::partition_by`].
pub type PartitionFn = fn(&str) -> Option<&str>;

impl fmt::Debug for MemoryBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackendBuilder")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .field("policy", &self.policy.name())
            .field("clock", &self.clock)
            .field("shards", &self.shards)
            .field("listener", &self.listener.is_some())
            .field(
                "partitions",
                &self
                    .partitions
                    .map(|p| (p.max_entries, p.max_bytes, p.max_partitions)),
            )
            .finish()
    }
}

impl Default for MemoryBackendBuilder {
    fn default() -> Self {
        MemoryBackendBuilder {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
            policy: Arc::new(Lru),
            clock: Arc::new(SystemClock),
            shards: None,
            listener: None,
            partitions: None,
        }
    }
}

impl MemoryBackendBuilder {
    /// The most entries the store holds; must be at least 1 (and at least the number of
    /// shards). Default: `100_000`.
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// The most bytes the store holds, each entry charged its key length + value length +
    /// [`MemoryBackend::ENTRY_OVERHEAD`]. Split evenly over the shards: one entry may weigh at
    /// most one shard's share. Must be at least the number of shards. Default: 256 MiB
    /// (`268_435_456`).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The eviction policy (see `memstache-eviction` for LFU, time-based and W-TinyLFU).
    /// Default: [`Lru`].
    pub fn policy(self, policy: impl EvictionPolicy) -> Self {
        self.policy_arc(Arc::new(policy))
    }

    /// The eviction policy, shared. Default: [`Lru`].
    pub fn policy_arc(mut self, policy: Arc<dyn EvictionPolicy>) -> Self {
        self.policy = policy;
        self
    }

    /// The time source for expiry (inject a [`ManualClock`](crate::raw::ManualClock) in tests).
    /// Default: [`SystemClock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The number of shards (independently locked parts); must be a power of two, at most
    /// `max_entries` and `max_bytes`, and at most 65 536. One shard gives exact global policy
    /// order; more shards let more threads write at once. Default: 4 × the available
    /// parallelism rounded up to a power of two, reduced so that each shard holds at least 64
    /// entries (1 shard below 128 entries).
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Called once for every entry that leaves the store (evicted, expired, removed, replaced),
    /// after the shard lock is released (so it may call the store). Receives the key's hash,
    /// never the key. It runs on the thread of the operation that caused the departure: keep
    /// it short. A panic in the listener reaches the caller of that operation; the store stays
    /// consistent (its lock was already released), but the remaining events of that operation
    /// are not delivered. Default: none.
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(&EvictionEvent) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Gives every partition of the keyspace its own bounded store, with at most
    /// `max_entries` entries and `max_bytes` bytes and its own eviction order: a noisy
    /// partition evicts only its own entries, never another's or the store's own. `route`
    /// names the partition of a key (a prefix of it, say), or `None` for keys that use the
    /// store's own bounds. At most [`max_partitions`](Self::max_partitions) partitions exist
    /// at once (default [`DEFAULT_MAX_PARTITIONS`]): when a key names a new partition and
    /// that many exist, the partition used least recently is dropped whole (its entries leave
    /// with [`EvictionCause::Size`](super::EvictionCause::Size)), so the store's total stays
    /// within its own bounds plus `max_partitions` times one partition's bounds, however many
    /// partition names keys carry. `memstache-tenancy` routes each tenant to its own partition
    /// with its `partition_of`. Default: none (one keyspace).
    ///
    /// ```
    /// use memstache_core::memory::MemoryBackend;
    /// use memstache_core::raw::{Backend, Expiry};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
    /// fn by_team(key: &str) -> Option<&str> {
    ///     key.strip_prefix("team/")?.split('/').next()
    /// }
    /// let store = MemoryBackend::builder().partition_by(by_team, 1, 1 << 20).build()?;
    /// for k in ["team/a/1", "team/a/2", "team/b/1", "other"] {
    ///     store.set(k, bytes::Bytes::from_static(b"v"), Expiry::NEVER).await?;
    /// }
    /// assert_eq!(store.partition_len("a"), Some(1)); // team a holds one entry at most
    /// assert_eq!(store.partition_len("b"), Some(1));
    /// assert_eq!(store.len(), 3);
    /// # Ok(()) }
    /// ```
    pub fn partition_by(mut self, route: PartitionFn, max_entries: usize, max_bytes: u64) -> Self {
        self.partitions = Some(PartitionSpec {
            route,
            max_entries,
            max_bytes,
            max_partitions: self
                .partitions
                .map_or(DEFAULT_MAX_PARTITIONS, |p| p.max_partitions),
        });
        self
    }

    /// The most partitions that exist at once (see [`partition_by`](Self::partition_by));
    /// call it after `partition_by`. Default: [`DEFAULT_MAX_PARTITIONS`].
    ///
    /// ```
    /// use memstache_core::memory::MemoryBackend;
    /// use memstache_core::raw::{Backend, Expiry};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
    /// fn first_segment(key: &str) -> Option<&str> {
    ///     key.split('/').next()
    /// }
    /// let store = MemoryBackend::builder()
    ///     .partition_by(first_segment, 100, 1 << 20)
    ///     .max_partitions(2)
    ///     .build()?;
    /// for k in ["a/1", "b/1", "a/2", "c/1"] {
    ///     store.set(k, bytes::Bytes::from_static(b"v"), Expiry::NEVER).await?;
    /// }
    /// // "c" needed room: "b", used least recently, was dropped.
    /// assert_eq!(store.partition_len("a"), Some(2));
    /// assert_eq!(store.partition_len("b"), None);
    /// assert_eq!(store.partition_len("c"), Some(1));
    /// # Ok(()) }
    /// ```
    pub fn max_partitions(mut self, n: usize) -> Self {
        if let Some(p) = self.partitions.as_mut() {
            p.max_partitions = n;
        }
        self
    }

    /// Validates the configuration and builds the store.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] when `max_entries` or `max_bytes` is zero, or when
    /// `shards` is zero, not a power of two, above 65 536, or above `max_entries` or
    /// `max_bytes`.
    pub fn build(self) -> Result<MemoryBackend> {
        let invalid = |msg: String| Err(Error::new(ErrorKind::InvalidConfig, msg));
        if self.max_entries == 0 {
            return invalid("memory backend max_entries must be at least 1".into());
        }
        if self.max_bytes == 0 {
            return invalid("memory backend max_bytes must be at least 1".into());
        }
        if let Some(n) = self.shards {
            if n == 0 || !n.is_power_of_two() || n > MAX_SHARDS {
                return invalid(format!(
                    "memory backend shards must be a power of two between 1 and {MAX_SHARDS}, \
                     got {n}"
                ));
            }
            if n > self.max_entries || (n as u64) > self.max_bytes {
                return invalid(format!(
                    "memory backend shards ({n}) must not exceed max_entries ({}) nor \
                     max_bytes ({})",
                    self.max_entries, self.max_bytes
                ));
            }
        }
        if self
            .partitions
            .is_some_and(|p| p.max_entries == 0 || p.max_bytes == 0 || p.max_partitions == 0)
        {
            return invalid("memory backend partition bounds must be at least 1".into());
        }
        Ok(self.build_unchecked())
    }

    /// Builds without validation; only for configurations known to be valid.
    pub(super) fn build_unchecked(self) -> MemoryBackend {
        let n = self
            .shards
            .unwrap_or_else(|| default_shards(self.max_entries, self.max_bytes));
        let report = self.listener.is_some();
        let shards: Box<[Mutex<Shard>]> = (0..n)
            .map(|i| {
                let entries = split(self.max_entries as u64, n, i);
                let bytes = split(self.max_bytes, n, i);
                let entries = usize::try_from(entries).unwrap_or(usize::MAX);
                Mutex::new(Shard::new(self.policy.as_ref(), entries, bytes, report))
            })
            .collect();
        let partitions = self.partitions.map(|p| Partitions {
            route: p.route,
            max: p.max_partitions,
            template: MemoryBackendBuilder {
                max_entries: p.max_entries,
                max_bytes: p.max_bytes,
                policy: Arc::clone(&self.policy),
                clock: Arc::clone(&self.clock),
                shards: Some(partition_shards(p.max_entries, p.max_bytes)),
                listener: self.listener.clone(),
                partitions: None,
            },
            map: Default::default(),
            tick: Default::default(),
        });
        MemoryBackend {
            inner: Arc::new(Inner {
                shards,
                clock: self.clock,
                policy: self.policy,
                listener: self.listener,
                max_entries: self.max_entries,
                max_bytes: self.max_bytes,
                partitions,
            }),
        }
    }
}

/// Shards of one partition: few, since partitions may be many.
fn partition_shards(max_entries: usize, max_bytes: u64) -> usize {
    let mut n = 4usize;
    while n > 1
        && (max_entries / n < MIN_ENTRIES_PER_SHARD
            || max_bytes / (n as u64) < 64 * super::ENTRY_OVERHEAD)
    {
        n /= 2;
    }
    n
}

/// Shard `i`'s share of `total` split over `n` shards; the shares add up to `total`.
fn split(total: u64, n: usize, i: usize) -> u64 {
    let n = n as u64;
    let i = i as u64;
    total / n + u64::from(i < total % n)
}

/// The default number of shards for these bounds (a power of two, at least 1).
pub(crate) fn default_shards(max_entries: usize, max_bytes: u64) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let wanted = cpus
        .saturating_mul(SHARDS_PER_CPU)
        .min(MAX_SHARDS)
        .next_power_of_two();
    let mut n = wanted;
    while n > 1
        && (max_entries / n < MIN_ENTRIES_PER_SHARD
            || max_bytes / (n as u64) < 64 * super::ENTRY_OVERHEAD)
    {
        n /= 2;
    }
    n
}
