//! Fail-safe: a local tier that keeps the last good envelope of each key, served when the
//! distributed backend fails with a temporary error.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};

use crate::raw::{Backend, Clock, Expiry};
use crate::{Error, ErrorKind, Result};

/// Default number of entries of the fail-safe local tier built when none is given.
pub const DEFAULT_FAIL_SAFE_ENTRIES: usize = 10_000;
/// Default bytes of the fail-safe local tier built when none is given.
pub const DEFAULT_FAIL_SAFE_BYTES: u64 = 64 << 20;

/// Fail-safe configuration for [`MemStacheBuilder::fail_safe`](crate::MemStacheBuilder::fail_safe).
///
/// With fail-safe on, every envelope the cache reads from the backend (a `get` or
/// `get_or_set` hit that decoded) or writes to it (a `set`, or the value a `get_or_set`
/// loader produced, once stored) is also kept in a *local tier*: an in-process [`Backend`],
/// normally a bounded [`MemoryBackend`](crate::memory::MemoryBackend) with an eviction
/// policy. The local copy is the envelope bytes exactly as stored, so decoding, decryption
/// and integrity checks are unchanged, plus the time it was last confirmed good.
///
/// When a backend call of `get` or `get_or_set` fails with a *temporary* error
/// ([`Error::is_temporary`]: unavailable, timeout, circuit open) and the local copy was
/// confirmed no longer than `max_staleness` ago, the operation returns that copy instead of
/// the error (`get_or_set` then does not run its loader). The span records `fail_safe = true`
/// and [`StatsSnapshot::fail_safe_hits`](crate::StatsSnapshot::fail_safe_hits) counts it.
/// A fail-safe value may be past its own expiration: that is the point of fail-safe; bound it
/// with `max_staleness`.
///
/// Permanent errors (integrity, serialization, a backend error reply) are never masked. A
/// `remove` drops the local copy before calling the backend, and a failed `set` drops it too,
/// so fail-safe never serves a value the caller removed or tried to replace. `get_many` keeps
/// every hit and, when the backend fails, is served from the local tier only if *every* key
/// has a usable copy (all or nothing: a key never seen is not reported as a miss). Tenant
/// scopes and `exists` do not use fail-safe.
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
    pub(crate) local: Option<Arc<dyn Backend>>,
}

impl fmt::Debug for FailSafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailSafe")
            .field("max_staleness", &self.max_staleness)
            .field("local", &self.local.as_ref().map(|b| b.name()))
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
        }
    }

    /// The local tier. Use an in-process, bounded backend; a distributed one would fail
    /// together with the backend it protects. Default: see [`new`](Self::new).
    pub fn local_tier(mut self, backend: impl Backend) -> Self {
        self.local = Some(Arc::new(backend));
        self
    }

    /// The local tier, already shared.
    pub fn local_tier_arc(mut self, backend: Arc<dyn Backend>) -> Self {
        self.local = Some(backend);
        self
    }

    /// Validates and completes the configuration.
    pub(crate) fn build(self, clock: &Arc<dyn Clock>) -> Result<Tier> {
        if self.max_staleness.is_zero() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "fail-safe max_staleness must be positive",
            ));
        }
        let local = match self.local {
            Some(l) => l,
            None => Arc::new(
                crate::memory::MemoryBackend::builder()
                    .max_entries(DEFAULT_FAIL_SAFE_ENTRIES)
                    .max_bytes(DEFAULT_FAIL_SAFE_BYTES)
                    .clock(Arc::clone(clock))
                    .build()?,
            ),
        };
        Ok(Tier {
            max_staleness_ms: u64::try_from(self.max_staleness.as_millis()).unwrap_or(u64::MAX),
            local,
        })
    }
}

/// The configured local tier. Entries are `stored_at_ms (u64 LE) ++ envelope`.
pub(crate) struct Tier {
    max_staleness_ms: u64,
    local: Arc<dyn Backend>,
}

impl fmt::Debug for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tier")
            .field("max_staleness_ms", &self.max_staleness_ms)
            .field("local", &self.local.name())
            .finish()
    }
}

/// A local copy served by fail-safe.
#[derive(Debug)]
pub(crate) struct Stale {
    pub(crate) envelope: Bytes,
    pub(crate) age_ms: u64,
}

impl Tier {
    /// Keeps `envelope` as the last good value of `sk`, confirmed at `now_ms`. Failures of
    /// the local tier are logged, never returned: it only ever helps.
    pub(crate) async fn keep(&self, sk: &str, envelope: &Bytes, now_ms: u64) {
        let mut b = BytesMut::with_capacity(8 + envelope.len());
        b.put_u64_le(now_ms);
        b.extend_from_slice(envelope);
        let expiry = Expiry::new(Some(now_ms.saturating_add(self.max_staleness_ms)), None);
        if let Err(e) = self.local.set(sk, b.freeze(), expiry).await {
            tracing::debug!(error = %e, "memstache: fail-safe local tier refused an entry");
        }
    }

    /// Keeps several envelopes at once (one local batch call).
    pub(crate) async fn keep_many(&self, entries: &[(&str, &Bytes)], now_ms: u64) {
        if entries.is_empty() {
            return;
        }
        let expiry = Expiry::new(Some(now_ms.saturating_add(self.max_staleness_ms)), None);
        let batch = entries
            .iter()
            .map(|(sk, envelope)| {
                let mut b = BytesMut::with_capacity(8 + envelope.len());
                b.put_u64_le(now_ms);
                b.extend_from_slice(envelope);
                crate::raw::BackendEntry {
                    key: (*sk).to_owned(),
                    value: b.freeze(),
                    expiry,
                }
            })
            .collect();
        if let Err(e) = self.local.set_many(batch).await {
            tracing::debug!(error = %e, "memstache: fail-safe local tier refused entries");
        }
    }

    /// The local copies of `sks`, each `None` when missing or older than `max_staleness`.
    pub(crate) async fn recall_many(&self, sks: &[&str], now_ms: u64) -> Vec<Option<Stale>> {
        let Ok(raws) = self.local.get_many(sks).await else {
            return sks.iter().map(|_| None).collect();
        };
        raws.into_iter()
            .map(|raw| self.unstamp(raw?, now_ms))
            .collect()
    }

    /// A local entry as a [`Stale`] copy, when confirmed recently enough.
    fn unstamp(&self, raw: Bytes, now_ms: u64) -> Option<Stale> {
        let stamp: [u8; 8] = raw.get(..8)?.try_into().ok()?;
        let age_ms = now_ms.saturating_sub(u64::from_le_bytes(stamp));
        (age_ms <= self.max_staleness_ms).then(|| Stale {
            envelope: raw.slice(8..),
            age_ms,
        })
    }

    /// Drops the local copy of `sk`.
    pub(crate) async fn forget(&self, sk: &str) {
        if let Err(e) = self.local.remove(sk).await {
            tracing::warn!(error = %e, "memstache: fail-safe local tier could not drop an entry");
        }
    }

    /// The local copy of `sk`, when it was confirmed at most `max_staleness` before `now_ms`.
    pub(crate) async fn recall(&self, sk: &str, now_ms: u64) -> Option<Stale> {
        let raw = self.local.get(sk).await.ok()??;
        self.unstamp(raw, now_ms)
    }
}

impl super::MemStache {
    /// The fail-safe tier for `scope` (tenant scopes do not use it).
    pub(crate) fn tier_for(&self, scope: &super::Scope<'_>) -> Option<&Tier> {
        self.inner
            .fail_safe
            .as_ref()
            .filter(|_| scope.guard.is_none())
    }

    /// Keeps `envelope` (just read or written successfully) as the last good value of `sk`.
    pub(crate) async fn fail_safe_keep(
        &self,
        scope: &super::Scope<'_>,
        sk: &str,
        envelope: &Bytes,
    ) {
        if let Some(t) = self.tier_for(scope) {
            t.keep(sk, envelope, self.inner.clock.now_ms()).await;
        }
    }

    /// Drops the local copy of `sk`.
    pub(crate) async fn fail_safe_forget(&self, scope: &super::Scope<'_>, sk: &str) {
        if let Some(t) = self.tier_for(scope) {
            t.forget(sk).await;
        }
    }

    /// After a batch read failed with `err`: every key's local copy, decoded, when fail-safe
    /// may serve them *all*; `None` (the caller returns `err`) when any key has no usable
    /// copy. All or nothing, like [`fail_safe_value`](Self::fail_safe_value) for one key: a
    /// key never seen cannot be told apart from a key that holds a value, so it is never
    /// reported as a miss. Records `fail_safe = true` on `span` and counts one fail-safe hit.
    pub(crate) async fn fail_safe_values<T: serde::de::DeserializeOwned>(
        &self,
        scope: &super::Scope<'_>,
        sks: &[&str],
        err: &Error,
        span: &tracing::Span,
    ) -> Option<Vec<Option<T>>> {
        if !err.is_temporary() {
            return None;
        }
        let tier = self.tier_for(scope)?;
        let stale = tier.recall_many(sks, self.inner.clock.now_ms()).await;
        let mut out = Vec::with_capacity(sks.len());
        let mut oldest = 0;
        for (copy, sk) in stale.into_iter().zip(sks) {
            let copy = copy?;
            match self.decode::<T>(&copy.envelope, sk).await {
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
        scope: &super::Scope<'_>,
        sk: &str,
        err: &Error,
    ) -> Option<T> {
        if !err.is_temporary() {
            return None;
        }
        let tier = self.tier_for(scope)?;
        let stale = tier.recall(sk, self.inner.clock.now_ms()).await?;
        let v = match self.decode::<T>(&stale.envelope, sk).await {
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
