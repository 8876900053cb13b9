//! Fail-safe: a local tier that keeps the last good envelope of each key, served when the
//! distributed backend fails with a temporary error.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::memory::MemoryBackend;
use crate::raw::Clock;
use crate::{Error, ErrorKind, Result};

/// Default number of entries of the fail-safe local tier built when none is given.
pub const DEFAULT_FAIL_SAFE_ENTRIES: usize = 10_000;
/// Default bytes of the fail-safe local tier built when none is given.
pub const DEFAULT_FAIL_SAFE_BYTES: u64 = 64 << 20;

/// Fail-safe configuration for [`MemStacheBuilder::fail_safe`](crate::MemStacheBuilder::fail_safe).
///
/// Fail-safe serves from the local tier (L1, see [`tiers`](crate::tiers)): every value the
/// cache reads from the backend or writes to it is kept there as its serialized plaintext,
/// with the type it was read as and when it was last confirmed good. With a
/// [`LocalTier`](crate::tiers::LocalTier) that tier is used; without one, fail-safe builds a
/// bounded in-process [`MemoryBackend`] of its own (or uses [`local_tier`](Self::local_tier))
/// that never serves fresh reads.
///
/// When a backend call of `get`, `get_many` or `get_or_set` fails with a *temporary* error
/// ([`Error::is_temporary`]: unavailable, timeout, circuit open) and the local copy was
/// confirmed no longer than `max_staleness` ago, the operation returns that copy instead of
/// the error (`get_or_set` then does not run its loader). When a `get_or_set` **loader**
/// fails, the copy is returned instead of the loader's error and served fresh for
/// [`loader_throttle`](Self::loader_throttle). The span records `fail_safe = true` and
/// [`StatsSnapshot::fail_safe_hits`](crate::StatsSnapshot::fail_safe_hits) counts it.
/// A fail-safe value may be past its own expiration: that is the point of fail-safe; bound it
/// with `max_staleness`.
///
/// Permanent errors (integrity, serialization, a backend error reply) are never masked.
/// Fail-safe never serves a value the caller removed or tried to replace, nor one older than
/// what the backend holds after this process's last write: `remove` and `remove_many` drop the
/// copies before calling the backend, a write keeps its value only once the backend confirmed
/// it (a failed `set` or `set_many` drops the copies), and a read that raced with a write or
/// removal of the same key keeps nothing (the rules are in `docs/resilience.md`). `get_many`
/// is served from the local tier only if *every* key has a usable copy (all or nothing: a key
/// never seen is not reported as a miss). `exists` does not use fail-safe.
///
/// ```
/// use memstache_core::{FailSafe, MemStache};
/// use memstache_core::memory::MemoryBackend;
/// use std::time::Duration;
///
/// let local = MemoryBackend::builder().max_entries(1_000).build()?;
/// let cache = MemStache::builder()
///     .fail_safe(FailSafe::new(Duration::from_secs(300)).local_tier(local))
///     .build()?;
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct FailSafe {
    pub(crate) max_staleness: Duration,
    pub(crate) local: Option<MemoryBackend>,
    pub(crate) throttle: Duration,
}

/// Default of [`FailSafe::loader_throttle`].
pub const DEFAULT_FAIL_SAFE_THROTTLE: Duration = Duration::from_secs(30);

impl fmt::Debug for FailSafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailSafe")
            .field("max_staleness", &self.max_staleness)
            .field("local", &self.local)
            .field("throttle", &self.throttle)
            .finish()
    }
}

impl FailSafe {
    /// Fail-safe serving local copies confirmed at most `max_staleness` ago (must be
    /// positive). The local tier defaults to a
    /// [`MemoryBackend`](crate::memory::MemoryBackend) of [`DEFAULT_FAIL_SAFE_ENTRIES`]
    /// entries and [`DEFAULT_FAIL_SAFE_BYTES`] bytes (LRU) on the cache's clock.
    pub fn new(max_staleness: Duration) -> Self {
        FailSafe {
            max_staleness,
            local: None,
            throttle: DEFAULT_FAIL_SAFE_THROTTLE,
        }
    }

    /// When a `get_or_set` loader fails and a local copy confirmed at most `max_staleness` ago
    /// exists, the copy is returned instead of the loader's error and then served as fresh
    /// for `throttle`, so a failing source is not called again meanwhile (on this node).
    /// Default [`DEFAULT_FAIL_SAFE_THROTTLE`]. Zero: serve the copy, do not throttle.
    pub fn loader_throttle(mut self, throttle: Duration) -> Self {
        self.throttle = throttle;
        self
    }

    /// The store of a fail-safe-only local tier (when the cache has no
    /// [`LocalTier`](crate::tiers::LocalTier); with one, give the store to the tier): a
    /// bounded in-process store, with the bounds and eviction policy you choose. (Always
    /// in-process: a distributed one would fail together with the backend it protects.)
    /// Default: see [`new`](Self::new).
    pub fn local_tier(mut self, store: MemoryBackend) -> Self {
        self.local = Some(store);
        self
    }

    /// Validates the configuration.
    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_staleness.is_zero() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "fail-safe max_staleness must be positive",
            ));
        }
        Ok(())
    }

    /// The store of a fail-safe-only local tier (no [`LocalTier`](crate::tiers::LocalTier)).
    pub(crate) fn build_store(&self, clock: &Arc<dyn Clock>) -> Result<MemoryBackend> {
        match &self.local {
            Some(l) => Ok(l.clone()),
            None => MemoryBackend::builder()
                .max_entries(DEFAULT_FAIL_SAFE_ENTRIES)
                .max_bytes(DEFAULT_FAIL_SAFE_BYTES)
                .clock(Arc::clone(clock))
                .build(),
        }
    }
}

impl super::MemStache {
    /// After a batch read failed with `err`: every key's local copy, decoded, when fail-safe
    /// may serve them *all*; `None` (the caller returns `err`) when any key has no usable
    /// copy. All or nothing, like [`fail_safe_value`](Self::fail_safe_value) for one key: a
    /// key never seen cannot be told apart from a key that holds a value, so it is never
    /// reported as a miss. Records `fail_safe = true` on `span` and counts one fail-safe hit.
    pub(crate) async fn fail_safe_values<T: serde::de::DeserializeOwned>(
        &self,
        sks: &[&str],
        err: &Error,
        span: &tracing::Span,
    ) -> Option<Vec<Option<T>>> {
        if !err.is_temporary() {
            return None;
        }
        let local = self.l1()?;
        let now = self.inner.clock.now_ms();
        let fingerprint = super::fingerprint_of::<T>();
        let mut out = Vec::with_capacity(sks.len());
        let mut oldest = 0;
        for sk in sks {
            let copy = local.recall(sk, fingerprint, now)?;
            match self.decode_copy::<T>(&copy) {
                Ok(v) => out.push(Some(v)),
                Err(e) => {
                    tracing::debug!(error = %e, "memstache: fail-safe copy did not decode");
                    return None;
                }
            }
            oldest = oldest.max(copy.age_ms);
        }
        self.inner.stats.error();
        self.inner.stats.fail_safe_hit();
        span.record("fail_safe", true);
        tracing::debug!(
            error = %err,
            keys = sks.len(),
            oldest_age_ms = oldest,
            "memstache: backend failed; served the batch from fail-safe copies"
        );
        Some(out)
    }

    /// After the backend failed with `err`: the local copy of `sk`, decoded, when fail-safe
    /// may serve it. Records `fail_safe = true` on the current span and counts it.
    pub(crate) async fn fail_safe_value<T: serde::de::DeserializeOwned>(
        &self,
        sk: &str,
        err: &Error,
    ) -> Option<T> {
        if !err.is_temporary() {
            return None;
        }
        let local = self.l1()?;
        let stale = local.recall(sk, super::fingerprint_of::<T>(), self.inner.clock.now_ms())?;
        let v = match self.decode_copy::<T>(&stale) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "memstache: fail-safe copy did not decode");
                return None;
            }
        };
        self.inner.stats.error();
        self.inner.stats.fail_safe_hit();
        let span = tracing::Span::current();
        span.record("fail_safe", true);
        span.record("hit", true);
        tracing::debug!(
            error = %err,
            age_ms = stale.age_ms,
            "memstache: backend failed; served the fail-safe copy"
        );
        Some(v)
    }
}
