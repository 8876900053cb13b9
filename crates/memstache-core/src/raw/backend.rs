//! The storage SPI: what a backend (in-memory, Redis, your own) implements.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::Result;
use crate::scope::Outcome;

/// How long a stored entry lives, as the backend must enforce it.
///
/// Times are milliseconds since the Unix epoch on the cache's [`Clock`](super::Clock), so a
/// backend that shares the clock (the memory backend) and one that uses its own wall clock
/// (Redis) agree up to clock skew.
///
/// * `deadline_ms` — the entry MUST NOT be returned at or after this instant.
/// * `sliding` — the entry MUST NOT be returned once `sliding` has passed since it was written
///   or last read (by `get`, `get_many` or `touch`); each such read re-arms the window, but never
///   past `deadline_ms`.
///
/// ```
/// use memstache_core::raw::Expiry;
/// use std::time::Duration;
/// let e = Expiry::new(Some(10_000), Some(Duration::from_millis(3_000)));
/// // written at t=1000: alive until 4000 (sliding), never past 10000
/// assert_eq!(e.expires_at(1_000), Some(4_000));
/// assert_eq!(e.expires_at(9_000), Some(10_000));
/// assert_eq!(e.ttl_from(9_000), Some(Duration::from_millis(1_000)));
/// assert!(Expiry::NEVER.expires_at(0).is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expiry {
    /// Absolute deadline, ms since the Unix epoch, if any.
    pub deadline_ms: Option<u64>,
    /// Sliding window, if any.
    pub sliding: Option<Duration>,
}

impl Expiry {
    /// An entry that never expires by time.
    pub const NEVER: Expiry = Expiry {
        deadline_ms: None,
        sliding: None,
    };

    /// An expiry with an optional absolute deadline and an optional sliding window.
    pub const fn new(deadline_ms: Option<u64>, sliding: Option<Duration>) -> Self {
        Expiry {
            deadline_ms,
            sliding,
        }
    }

    /// When an entry written or read at `now_ms` expires, or `None` for never.
    pub fn expires_at(&self, now_ms: u64) -> Option<u64> {
        let slide = self
            .sliding
            .map(|s| now_ms.saturating_add(u64::try_from(s.as_millis()).unwrap_or(u64::MAX)));
        match (slide, self.deadline_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The time to live of an entry written or read at `now_ms` (zero when already due), or
    /// `None` for never.
    pub fn ttl_from(&self, now_ms: u64) -> Option<Duration> {
        self.expires_at(now_ms)
            .map(|at| Duration::from_millis(at.saturating_sub(now_ms)))
    }

    /// Whether the entry is due at `now_ms` (a zero time to live counts as due).
    pub fn is_due(&self, now_ms: u64) -> bool {
        self.expires_at(now_ms).is_some_and(|at| at <= now_ms)
    }
}

/// One entry of a batch write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendEntry {
    /// The full storage key (the scope's prefix and the user key already joined).
    pub key: String,
    /// The encoded envelope.
    pub value: Bytes,
    /// How long it lives.
    pub expiry: Expiry,
}

/// What a backend can do; the pipeline adapts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// The backend enforces [`Expiry`] itself (including sliding re-arm on reads). Every built-in
    /// backend does. Default: `true`.
    pub native_ttl: bool,
    /// Batch operations are native (fewer round trips than one per key). Default: `false`.
    pub native_batch: bool,
    /// Keys are spread over several nodes (Redis Cluster). Default: `false`.
    pub cluster: bool,
    /// The largest value the backend accepts, if it has a limit. Default: `None`.
    pub max_value_size: Option<usize>,
    /// Entries are shared with other processes (a distributed store). Default: `false`.
    pub distributed: bool,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            native_ttl: true,
            native_batch: false,
            cluster: false,
            max_value_size: None,
            distributed: false,
        }
    }
}

impl Capabilities {
    /// Sets [`native_batch`](Self::native_batch).
    #[must_use]
    pub fn with_native_batch(mut self, v: bool) -> Self {
        self.native_batch = v;
        self
    }
    /// Sets [`cluster`](Self::cluster).
    #[must_use]
    pub fn with_cluster(mut self, v: bool) -> Self {
        self.cluster = v;
        self
    }
    /// Sets [`max_value_size`](Self::max_value_size).
    #[must_use]
    pub fn with_max_value_size(mut self, v: Option<usize>) -> Self {
        self.max_value_size = v;
        self
    }
    /// Sets [`distributed`](Self::distributed).
    #[must_use]
    pub fn with_distributed(mut self, v: bool) -> Self {
        self.distributed = v;
        self
    }
}

/// A key/value store for encoded envelopes.
///
/// Keys handed to a backend are full storage keys (already prefixed, validated and at most
/// the cache's key limit plus prefixes); values are opaque envelope bytes.
///
/// # Contract
///
/// * A backend MUST NOT return an entry whose [`Expiry`] is due, and MUST re-arm the sliding
///   window on `get`, `get_many` and `touch` hits (capped by the deadline).
/// * `set` MUST either store the entry completely or return an error: an `Ok` means a following
///   `get` from any caller sees this value (or a later one), until it expires or is evicted.
/// * A bounded backend MAY evict entries at any time to stay within its bounds.
/// * Errors MUST be [`crate::Error`]s with the right kind: `Unavailable`/`Timeout` (temporary)
///   when the store cannot be reached, `Backend` when it answered with an error. Errors MUST NOT
///   contain keys or values.
/// * Methods MUST NOT panic on any input and MUST be safe to call concurrently.
/// * Batch methods have default implementations that loop over the single-key ones; a backend
///   with native batching SHOULD override them (one round trip per node) and report
///   [`Capabilities::native_batch`]. Results of `get_many` MUST be in the order of `keys`.
///
/// A custom backend needs nothing but `memstache-core`:
///
/// ```
/// use memstache_core::raw::{Backend, Capabilities, Expiry};
/// use memstache_core::Result;
/// use bytes::Bytes;
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// /// A toy backend that ignores expiry (real ones must not).
/// #[derive(Debug, Default)]
/// struct MapBackend(Mutex<HashMap<String, Bytes>>);
///
/// #[async_trait::async_trait]
/// impl Backend for MapBackend {
///     fn name(&self) -> &'static str { "map" }
///     fn capabilities(&self) -> Capabilities { Capabilities::default() }
///     async fn get(&self, key: &str) -> Result<Option<Bytes>> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     async fn set(&self, key: &str, value: Bytes, _expiry: Expiry) -> Result<()> {
///         self.0.lock().unwrap().insert(key.to_owned(), value);
///         Ok(())
///     }
///     async fn remove(&self, key: &str) -> Result<bool> {
///         Ok(self.0.lock().unwrap().remove(key).is_some())
///     }
///     async fn exists(&self, key: &str) -> Result<bool> {
///         Ok(self.0.lock().unwrap().contains_key(key))
///     }
///     async fn touch(&self, key: &str) -> Result<bool> { self.exists(key).await }
/// }
/// ```
#[async_trait]
pub trait Backend: Debug + Send + Sync + 'static {
    /// A short, stable name for spans, metrics and error context (`"memory"`, `"redis"`).
    fn name(&self) -> &'static str;

    /// What this backend can do.
    fn capabilities(&self) -> Capabilities;

    /// The entry at `key`, or `None` when absent or expired. Re-arms a sliding window.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;

    /// Stores `value` at `key`, replacing any previous entry, living as `expiry` says.
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()>;

    /// Removes `key`; `true` when an entry was there.
    async fn remove(&self, key: &str) -> Result<bool>;

    /// Whether a live entry is at `key`. Does not re-arm a sliding window.
    async fn exists(&self, key: &str) -> Result<bool>;

    /// Re-arms the sliding window of the entry at `key` without reading it; `true` when a live
    /// entry was there.
    async fn touch(&self, key: &str) -> Result<bool>;

    /// Stores `value` at `key` only when no live entry is there; `true` when it stored.
    ///
    /// Distributed backends MUST make this atomic (Redis: `SET NX`): tenancy creates its
    /// generation tokens with it, and distributed locks rely on it. Default: `exists` then
    /// `set`, which is atomic only for a backend used by one process at a time.
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        if self.exists(key).await? {
            return Ok(false);
        }
        self.set(key, value, expiry).await?;
        Ok(true)
    }

    /// Removes `key` only when it holds exactly `expected`; `true` when it removed.
    ///
    /// Distributed locks release with it (only the holder's token frees the lock). Distributed
    /// backends MUST make this atomic (Redis: a compare-and-delete Lua script). Default: `get`
    /// then `remove`, which is atomic only for a backend used by one process at a time. Like
    /// `get`, the default re-arms a sliding window of an entry it does not remove.
    async fn remove_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool> {
        match self.get(key).await? {
            Some(v) if v.as_ref() == expected => self.remove(key).await,
            _ => Ok(false),
        }
    }

    /// Stores every entry only when the control key `guard` holds exactly `expected`;
    /// [`Outcome::Stale`] with what `guard` holds (nothing written) otherwise. Scopes with a
    /// guard write through it (tenancy: a write lands in the tenant's current generation).
    ///
    /// Distributed backends SHOULD make this atomic and one round trip (Redis: a Lua script;
    /// on a cluster, `guard` and the entries share a hash slot). Default: `get` of the guard
    /// then `set_many` — two round trips, and a guard changed in between goes unnoticed.
    async fn set_many_guarded(
        &self,
        guard: &str,
        expected: &[u8],
        entries: Vec<BackendEntry>,
    ) -> Result<Outcome<()>> {
        let seen = self.get(guard).await?;
        if seen.as_deref() != Some(expected) {
            return Ok(Outcome::Stale(seen));
        }
        self.set_many(entries).await?;
        Ok(Outcome::Done(()))
    }

    /// The entries at `keys`, in order. Default: one `get` per key.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.get(key).await?);
        }
        Ok(out)
    }

    /// Stores every entry. Default: one `set` per entry. On error, a prefix of the entries may
    /// have been written; none is reported written.
    async fn set_many(&self, entries: Vec<BackendEntry>) -> Result<()> {
        for e in entries {
            self.set(&e.key, e.value, e.expiry).await?;
        }
        Ok(())
    }

    /// Removes every key; returns how many entries were there. Default: one `remove` per key.
    async fn remove_many(&self, keys: &[&str]) -> Result<u64> {
        let mut n = 0;
        for key in keys {
            n += u64::from(self.remove(key).await?);
        }
        Ok(n)
    }
}
