//! Operation counters.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub(crate) struct Stats {
    hits: AtomicU64,
    misses: AtomicU64,
    sets: AtomicU64,
    errors: AtomicU64,
    loader_calls: AtomicU64,
    loader_errors: AtomicU64,
    fail_safe_hits: AtomicU64,
    l1_hits: AtomicU64,
    loader_fail_safe_hits: AtomicU64,
    pub(crate) eager_refreshes: AtomicU64,
    pub(crate) soft_timeouts: AtomicU64,
    pub(crate) hard_timeouts: AtomicU64,
    pub(crate) background_loads: AtomicU64,
    pub(crate) background_load_failures: AtomicU64,
    pub(crate) background_loads_dropped: AtomicU64,
    pub(crate) negative_hits: AtomicU64,
    pub(crate) decode_misses: AtomicU64,
}

impl Stats {
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Relaxed);
    }
    pub(crate) fn negative_hit(&self) {
        self.misses.fetch_add(1, Relaxed);
        self.negative_hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn decode_miss(&self) {
        self.misses.fetch_add(1, Relaxed);
        self.decode_misses.fetch_add(1, Relaxed);
    }
    pub(crate) fn hits(&self, hits: u64, misses: u64) {
        self.hits.fetch_add(hits, Relaxed);
        self.misses.fetch_add(misses, Relaxed);
    }
    pub(crate) fn set(&self) {
        self.sets.fetch_add(1, Relaxed);
    }
    pub(crate) fn sets(&self, n: u64) {
        self.sets.fetch_add(n, Relaxed);
    }
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Relaxed);
    }
    pub(crate) fn loader_call(&self) {
        self.loader_calls.fetch_add(1, Relaxed);
    }
    pub(crate) fn loader_error(&self) {
        self.loader_errors.fetch_add(1, Relaxed);
    }
    pub(crate) fn l1_hit(&self) {
        self.hits.fetch_add(1, Relaxed);
        self.l1_hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn l1_hits(&self, n: u64) {
        self.l1_hits.fetch_add(n, Relaxed);
    }
    pub(crate) fn loader_fail_safe_hit(&self) {
        self.fail_safe_hits.fetch_add(1, Relaxed);
        self.loader_fail_safe_hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn fail_safe_hit(&self) {
        self.fail_safe_hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn snapshot(&self, tier: Option<&super::local::TierStats>) -> StatsSnapshot {
        let hits = self.hits.load(Relaxed);
        let l1_hits = self.l1_hits.load(Relaxed);
        let t =
            |f: fn(&super::local::TierStats) -> &AtomicU64| tier.map_or(0, |t| f(t).load(Relaxed));
        StatsSnapshot {
            l1_hits,
            l2_hits: hits.saturating_sub(l1_hits),
            loader_fail_safe_hits: self.loader_fail_safe_hits.load(Relaxed),
            backplane_sent: t(|t| &t.sent),
            backplane_received: t(|t| &t.received),
            backplane_rejected: t(|t| &t.rejected),
            backplane_publish_errors: t(|t| &t.publish_errors),
            invalidations: t(|t| &t.invalidations),
            backplane_reconnects: t(|t| &t.reconnects),
            hits,
            misses: self.misses.load(Relaxed),
            sets: self.sets.load(Relaxed),
            errors: self.errors.load(Relaxed),
            loader_calls: self.loader_calls.load(Relaxed),
            loader_errors: self.loader_errors.load(Relaxed),
            fail_safe_hits: self.fail_safe_hits.load(Relaxed),
            eager_refreshes: self.eager_refreshes.load(Relaxed),
            soft_timeouts: self.soft_timeouts.load(Relaxed),
            hard_timeouts: self.hard_timeouts.load(Relaxed),
            background_loads: self.background_loads.load(Relaxed),
            background_load_failures: self.background_load_failures.load(Relaxed),
            background_loads_dropped: self.background_loads_dropped.load(Relaxed),
            negative_hits: self.negative_hits.load(Relaxed),
            decode_misses: self.decode_misses.load(Relaxed),
        }
    }
}

/// A point-in-time copy of a cache's counters.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
/// let cache = memstache_core::MemStache::builder().build()?;
/// let _: Option<u8> = cache.get("nope").await?;
/// assert_eq!(cache.stats().misses, 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Reads that found a valid entry.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Entries written.
    pub sets: u64,
    /// Operations that failed (including those `try_get` and `get_or_set` absorbed).
    pub errors: u64,
    /// Loader calls made by `get_or_set` and `get_or_set_many` (one per batch loader call).
    pub loader_calls: u64,
    /// Loader calls that failed.
    pub loader_errors: u64,
    /// Reads answered from the fail-safe local tier because the backend failed (see
    /// [`FailSafe`](crate::FailSafe)). Each also counts in `errors` (the backend call failed),
    /// not in `hits`.
    pub fail_safe_hits: u64,
    /// Hits served by the local tier (L1), without the backend. Also in `hits`.
    pub l1_hits: u64,
    /// Hits served by the backend (L2): `hits - l1_hits`.
    pub l2_hits: u64,
    /// `get_or_set` calls whose loader failed and that served the fail-safe copy instead.
    /// Also in `fail_safe_hits`.
    pub loader_fail_safe_hits: u64,
    /// Backplane messages this node published.
    pub backplane_sent: u64,
    /// Backplane messages from other nodes this node applied.
    pub backplane_received: u64,
    /// Backplane messages dropped as malformed, of another version, too large or naming keys
    /// outside this cache's namespace.
    pub backplane_rejected: u64,
    /// Backplane publishes that failed (the write itself stood; other nodes may serve their
    /// copy until it expires from their L1).
    pub backplane_publish_errors: u64,
    /// Local copies dropped because another node changed the key.
    pub invalidations: u64,
    /// Times the backplane subscription came back after it was lost (each time the local tier
    /// was cleared).
    pub backplane_reconnects: u64,
    /// `get_or_load` hits past their eager-refresh point that started a background refresh
    /// (see [`ReadThrough::eager_refresh`](crate::ReadThrough::eager_refresh)).
    pub eager_refreshes: u64,
    /// `get_or_load` calls that returned a stale copy at their loader's soft timeout.
    pub soft_timeouts: u64,
    /// `get_or_load` calls that gave up on their loader at its hard timeout.
    pub hard_timeouts: u64,
    /// Loads run in the background (eager refreshes, and loads outliving a timeout) that
    /// stored their value.
    pub background_loads: u64,
    /// Background loads that failed, panicked or ran past the background time limit.
    pub background_load_failures: u64,
    /// Background loads not started (the limit of concurrent ones was reached, or no tokio
    /// runtime) or dropped.
    pub background_loads_dropped: u64,
    /// Reads that found a cached "not found" ([`Loaded::not_found_for`](crate::Loaded::not_found_for),
    /// negative caching): a miss for `get`, `None` without a load for `get_or_load` (also
    /// counted in `misses`).
    pub negative_hits: u64,
    /// Entries that verified but could not be read as the requested type (another schema, a
    /// format this build does not know, refused by the type's `Deserialize`) and were treated
    /// as misses: always by `get_or_set` / `get_or_load` (which then overwrite them), and by
    /// `get` / `get_many` under [`DecodeFailure::Miss`](crate::DecodeFailure::Miss). Also
    /// counted in `misses`, not in `errors`.
    pub decode_misses: u64,
}

impl StatsSnapshot {
    /// hits / (hits + misses), or 0 when nothing was read.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}
