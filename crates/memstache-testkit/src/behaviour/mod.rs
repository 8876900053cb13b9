//! The behaviour suite: every semantic of the cache that a backend must honour (expiry, batches, integrity, single-flight; see `docs/architecture.md`), written
//! once as plain async functions over a [`Harness`], and run against every backend with
//! [`behaviour_tests!`](crate::behaviour_tests).
//!
//! ```no_run
//! // in a backend crate's tests/behaviour.rs:
//! use memstache_testkit::behaviour::MemoryHarness;
//! memstache_testkit::behaviour_tests!(async { MemoryHarness::new() });
//! ```

mod basic;
mod batch;
mod expiry;
mod flight;
mod integrity;
#[cfg(feature = "tenancy")]
pub mod tenancy;

pub use basic::*;
pub use batch::*;
pub use expiry::*;
pub use flight::*;
pub use integrity::*;

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use memstache_core::memory::MemoryBackend;
use memstache_core::raw::{Backend, Clock, ManualClock, SystemClock};
use memstache_core::{MemStache, MemStacheBuilder};

/// What the suite needs from a backend under test.
#[async_trait]
pub trait Harness: Debug + Send + Sync {
    /// The backend under test (a clone of one shared handle, or a fresh one).
    fn backend(&self) -> Arc<dyn Backend>;
    /// The clock the backend enforces expiry with.
    fn clock(&self) -> Arc<dyn Clock>;
    /// Lets `by` pass for the backend: moves a manual clock, or sleeps on a real one.
    async fn advance(&self, by: Duration);
    /// A builder over this backend and clock, with a fresh random namespace so that runs and
    /// tests never see each other's entries.
    fn builder(&self) -> MemStacheBuilder {
        MemStache::builder()
            .backend_arc(self.backend())
            .clock(self.clock())
            .namespace(unique_namespace())
    }
    /// A cache from [`builder`](Self::builder).
    fn cache(&self) -> MemStache {
        self.builder().build().expect("default builder is valid")
    }
}

/// A namespace no other test or run uses.
pub fn unique_namespace() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = SystemClock.now_ms();
    format!(
        "t{}-{}-{}",
        std::process::id(),
        t % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The memory backend on a [`ManualClock`]: time moves only when the suite says so.
#[derive(Debug, Clone)]
pub struct MemoryHarness {
    memory: MemoryBackend,
    backend: Arc<dyn Backend>,
    clock: ManualClock,
}

impl MemoryHarness {
    /// A default memory backend (LRU).
    pub fn new() -> Self {
        Self::with(|b| b)
    }

    /// A memory backend configured by `f` (policy, bounds …) on a manual clock.
    pub fn with(
        f: impl FnOnce(
            memstache_core::memory::MemoryBackendBuilder,
        ) -> memstache_core::memory::MemoryBackendBuilder,
    ) -> Self {
        let clock = ManualClock::starting_now();
        let backend = f(MemoryBackend::builder())
            .clock(Arc::new(clock.clone()))
            .build()
            .expect("valid memory backend");
        MemoryHarness {
            memory: backend.clone(),
            backend: Arc::new(backend),
            clock,
        }
    }

    /// The memory backend under test (a handle to the same store).
    pub fn memory(&self) -> &MemoryBackend {
        &self.memory
    }
}

impl Default for MemoryHarness {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    fn backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.clock.clone())
    }
    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// Any backend that enforces expiry with an injected [`ManualClock`]: time moves only when the
/// suite says so. (For a custom backend built on the `raw` SPI.)
#[derive(Debug, Clone)]
pub struct ManualClockHarness {
    backend: Arc<dyn Backend>,
    clock: ManualClock,
}

impl ManualClockHarness {
    /// `backend` must read its time from `clock`.
    pub fn new(backend: Arc<dyn Backend>, clock: ManualClock) -> Self {
        ManualClockHarness { backend, clock }
    }
}

#[async_trait]
impl Harness for ManualClockHarness {
    fn backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.clock.clone())
    }
    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// Any backend on the real clock: `advance` sleeps. For servers with their own clocks (Redis).
#[derive(Debug, Clone)]
pub struct RealTimeHarness {
    backend: Arc<dyn Backend>,
}

impl RealTimeHarness {
    /// Wraps a backend that keeps real time.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        RealTimeHarness { backend }
    }
}

#[async_trait]
impl Harness for RealTimeHarness {
    fn backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(SystemClock)
    }
    async fn advance(&self, by: Duration) {
        tokio::time::sleep(by).await;
    }
}

/// Another harness whose caches get extra pipeline configuration (compression, encryption …),
/// so the whole suite runs with those stages on.
///
/// ```
/// use memstache_testkit::behaviour::{Configured, MemoryHarness};
/// let h = Configured::new(MemoryHarness::new(), |b| b.compress_threshold(16));
/// # let _ = h;
/// ```
pub struct Configured<H> {
    inner: H,
    configure: Box<dyn Fn(MemStacheBuilder) -> MemStacheBuilder + Send + Sync>,
}

impl<H: Harness> Configured<H> {
    /// Wraps `inner`; `configure` is applied to every builder.
    pub fn new(
        inner: H,
        configure: impl Fn(MemStacheBuilder) -> MemStacheBuilder + Send + Sync + 'static,
    ) -> Self {
        Configured {
            inner,
            configure: Box::new(configure),
        }
    }
}

impl<H: Debug> Debug for Configured<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configured")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl<H: Harness> Harness for Configured<H> {
    fn backend(&self) -> Arc<dyn Backend> {
        self.inner.backend()
    }
    fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock()
    }
    async fn advance(&self, by: Duration) {
        self.inner.advance(by).await;
    }
    fn builder(&self) -> MemStacheBuilder {
        (self.configure)(self.inner.builder())
    }
}

/// Generates one `#[tokio::test]` per behaviour case, each building its harness with `$make`
/// (an expression of type `impl Future<Output = impl Harness>`).
#[macro_export]
macro_rules! behaviour_tests {
    ($make:expr) => {
        $crate::__behaviour_cases!(@tests [$make]);
    };
}

/// The one list of behaviour cases, expanded into tests or into [`run_all`].
#[doc(hidden)]
#[macro_export]
macro_rules! __behaviour_cases {
    (@$mode:ident [$($arg:tt)*]) => {
        $crate::__behaviour_cases!(@$mode [$($arg)*]
            roundtrip_typed, miss_is_none, remove_and_exists, overwrite_replaces,
            namespaces_are_isolated, concurrent_tasks_see_their_own_values, large_value_roundtrip,
            invalid_keys_are_rejected, oversized_value_is_rejected_and_nothing_written,
            wrong_type_is_an_error_not_data, unicode_and_separator_keys,
            absolute_expiration, absolute_expiration_at_instant, default_entry_options_apply,
            sliding_expiration_rearms_and_is_capped, refresh_rearms_sliding,
            exists_does_not_rearm_sliding, past_deadline_removes_the_old_value,
            get_or_set_single_flight, get_or_set_loader_error_reaches_every_waiter,
            get_or_set_leader_cancelled, get_or_set_returns_cached_value,
            get_or_set_many_hits_and_misses, get_or_set_many_loader_error_caches_nothing,
            batch_roundtrip_in_order, batch_rejects_bad_key_before_writing, remove_many_counts,
            guarded_writes_check_the_guard,
            corrupt_entry_is_integrity_error, flipped_byte_is_detected, copied_entry_is_detected,
            unknown_format_version_is_unsupported, truncated_entry_is_integrity_error,
            type_check_rejects_other_type, stats_count_hits_and_misses
        );
    };
    (@tests [$make:expr] $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let harness = $make.await;
                $crate::behaviour::$name(&harness).await;
            }
        )*
    };
    (@run_all [] $($name:ident),* $(,)?) => {
        /// Every case, one after the other, on one harness (for topologies that are expensive to
        /// start, such as a Redis Cluster). Each case prints its name to stderr first, so a
        /// failure names its case.
        pub async fn run_all(h: &dyn Harness) {
            $(
                eprintln!("behaviour case: {}", stringify!($name));
                $name(h).await;
            )*
        }

        /// The names of every case, in order.
        pub const CASES: &[&str] = &[$(stringify!($name)),*];
    };
}

crate::__behaviour_cases!(@run_all []);
