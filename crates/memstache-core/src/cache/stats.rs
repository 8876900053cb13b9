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
}

impl Stats {
    pub(crate) fn hit(&self) {
        self.hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Relaxed);
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
    pub(crate) fn fail_safe_hit(&self) {
        self.fail_safe_hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            sets: self.sets.load(Relaxed),
            errors: self.errors.load(Relaxed),
            loader_calls: self.loader_calls.load(Relaxed),
            loader_errors: self.loader_errors.load(Relaxed),
            fail_safe_hits: self.fail_safe_hits.load(Relaxed),
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
    /// Loader calls made by `get_or_set`.
    pub loader_calls: u64,
    /// Loader calls that failed.
    pub loader_errors: u64,
    /// Reads answered from the fail-safe local tier because the backend failed (see
    /// [`FailSafe`](crate::FailSafe)). Each also counts in `errors` (the backend call failed),
    /// not in `hits`.
    pub fail_safe_hits: u64,
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
