//! A circuit breaker on tower-resilience's, classifying memstache errors and mapping its
//! errors back into typed [`Error`]s.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use memstache_core::raw::{BackendFuture, BackendRequest, BackendResponse};
use memstache_core::{Error, ErrorKind, Result};
use tower::{Layer, Service, ServiceExt};
use tower_resilience::circuitbreaker::{
    CircuitBreakerError, CircuitBreakerHandle, CircuitState, FailureClassifier, SlidingWindowType,
};

/// Default failure rate (failed / recorded calls in the window) that opens the circuit.
pub const DEFAULT_FAILURE_RATE: f64 = 0.5;
/// Default time window the failure rate is computed over.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5);
/// Default fewest calls in the window before the rate counts.
pub const DEFAULT_MIN_CALLS: usize = 10;
/// Default time the circuit stays open before letting probes through.
pub const DEFAULT_OPEN_FOR: Duration = Duration::from_secs(5);
/// Default number of probe calls in the half-open state.
pub const DEFAULT_HALF_OPEN_PROBES: usize = 3;

/// Configuration of the [`CircuitBreakerLayer`].
///
/// Failures are backend calls that ended with a *temporary* error (unavailable, timeout):
/// the backend could not be reached. A permanent error (a script error, a wrong type, a bad
/// request) means the backend answered, and counts as a success for the breaker.
///
/// * **Closed**: calls pass; the breaker keeps the outcome of the calls of the last `window`
///   (a time-based sliding window). Once at least `min_calls` are in the window and the
///   failure rate reaches `failure_rate`, it opens.
/// * **Open**: every call fails at once with [`ErrorKind::CircuitOpen`] (temporary) without
///   reaching the backend, for `open_for`.
/// * **Half-open**: `half_open_probes` calls pass; if they succeed the circuit closes,
///   otherwise it opens again for `open_for`.
///
/// ```
/// use memstache_resilience::BreakerConfig;
/// use std::time::Duration;
/// let config = BreakerConfig::default()
///     .open_for(Duration::from_secs(2))
///     .window(Duration::from_secs(10));
/// # let _ = config;
/// ```
///
/// Why a time window: tower-resilience 0.13's count-based window is not sliding (its counts
/// run from the last state change), so after hours of healthy traffic a total outage would
/// take as many failures as there were successes to open the circuit. Its time-based window
/// slides; it keeps one record per call in the window and scans them on each *failure*
/// (successes are O(1)), so keep the window short at high request rates.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
#[must_use]
pub struct BreakerConfig {
    failure_rate: f64,
    window: Duration,
    min_calls: usize,
    open_for: Duration,
    half_open_probes: usize,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            failure_rate: DEFAULT_FAILURE_RATE,
            window: DEFAULT_WINDOW,
            min_calls: DEFAULT_MIN_CALLS,
            open_for: DEFAULT_OPEN_FOR,
            half_open_probes: DEFAULT_HALF_OPEN_PROBES,
        }
    }
}

impl BreakerConfig {
    /// Failure rate in `(0, 1]` that opens the circuit. Default: 0.5.
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = rate;
        self
    }
    /// The sliding time window the failure rate is computed over. Default: 5 s.
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }
    /// Fewest recorded calls before the circuit may open. Default: 10.
    pub fn min_calls(mut self, calls: usize) -> Self {
        self.min_calls = calls;
        self
    }
    /// How long the circuit stays open. Default: 5 s.
    pub fn open_for(mut self, d: Duration) -> Self {
        self.open_for = d;
        self
    }
    /// Probe calls let through when half-open. Default: 3.
    pub fn half_open_probes(mut self, n: usize) -> Self {
        self.half_open_probes = n;
        self
    }
}

/// The state of a circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls pass.
    Closed,
    /// Calls fail fast with [`ErrorKind::CircuitOpen`].
    Open,
    /// Probe calls pass.
    HalfOpen,
}

/// Counts a call as failed when it ended with a temporary error.
#[derive(Debug, Clone, Copy)]
pub struct TemporaryErrors;

impl<Res> FailureClassifier<Res, Error> for TemporaryErrors {
    fn classify(&self, result: &Result<Res, Error>) -> bool {
        matches!(result, Err(e) if e.is_temporary())
    }
}

/// Observes one breaker: its state and how often it changed.
#[derive(Clone)]
pub struct BreakerHandle {
    handle: CircuitBreakerHandle<TemporaryErrors>,
    transitions: Arc<AtomicU64>,
    opened: Arc<AtomicU64>,
}

impl fmt::Debug for BreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerHandle")
            .field("state", &self.state())
            .field("transitions", &self.transitions())
            .finish()
    }
}

impl BreakerHandle {
    /// The current state.
    pub fn state(&self) -> BreakerState {
        match self.handle.state() {
            CircuitState::Closed => BreakerState::Closed,
            CircuitState::Open => BreakerState::Open,
            CircuitState::HalfOpen => BreakerState::HalfOpen,
        }
    }
    /// State changes so far.
    pub fn transitions(&self) -> u64 {
        self.transitions.load(Ordering::SeqCst)
    }
    /// Times the circuit opened so far.
    pub fn times_opened(&self) -> u64 {
        self.opened.load(Ordering::SeqCst)
    }
}

/// A circuit breaker for the backend stack (see [`BreakerConfig`]); services made by one
/// layer share one circuit.
///
/// ```
/// use memstache_resilience::{BreakerConfig, BreakerState, CircuitBreakerLayer};
/// let breaker = CircuitBreakerLayer::new(BreakerConfig::default())?;
/// let handle = breaker.handle();
/// let cache = memstache_core::MemStache::builder().backend_layer(breaker).build()?;
/// assert_eq!(handle.state(), BreakerState::Closed);
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Clone)]
pub struct CircuitBreakerLayer {
    layer: tower_resilience::circuitbreaker::CircuitBreakerLayer<TemporaryErrors>,
    handle: BreakerHandle,
}

impl fmt::Debug for CircuitBreakerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl CircuitBreakerLayer {
    /// A breaker with `config`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a failure rate outside `(0, 1]` or an empty window.
    pub fn new(config: BreakerConfig) -> Result<Self> {
        let transitions = Arc::new(AtomicU64::new(0));
        let opened = Arc::new(AtomicU64::new(0));
        let (t, o) = (Arc::clone(&transitions), Arc::clone(&opened));
        let (layer, handle) = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
            .failure_rate_threshold(config.failure_rate)
            .sliding_window_type(SlidingWindowType::TimeBased)
            .sliding_window_duration(config.window)
            .minimum_number_of_calls(config.min_calls)
            .wait_duration_in_open(config.open_for)
            .permitted_calls_in_half_open(config.half_open_probes.max(1))
            .name("memstache-backend")
            .on_state_transition(move |from, to| {
                t.fetch_add(1, Ordering::SeqCst);
                if to == CircuitState::Open {
                    o.fetch_add(1, Ordering::SeqCst);
                }
                tracing::warn!(
                    ?from,
                    ?to,
                    "memstache: backend circuit breaker changed state"
                );
            })
            .failure_classifier_type(TemporaryErrors)
            .build_with_handle()
            .map_err(|e| {
                Error::new(
                    ErrorKind::InvalidConfig,
                    "invalid circuit breaker configuration",
                )
                .with_source(e)
            })?;
        Ok(CircuitBreakerLayer {
            layer,
            handle: BreakerHandle {
                handle,
                transitions,
                opened,
            },
        })
    }

    /// A handle observing this breaker's circuit.
    pub fn handle(&self) -> BreakerHandle {
        self.handle.clone()
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker {
            inner: self.layer.layer(inner),
        }
    }
}

/// The service of [`CircuitBreakerLayer`]: tower-resilience's breaker with its errors mapped
/// into memstache [`Error`]s (an open circuit is [`ErrorKind::CircuitOpen`]).
#[derive(Clone)]
pub struct CircuitBreaker<S> {
    inner: tower_resilience::circuitbreaker::CircuitBreaker<S, TemporaryErrors>,
}

impl<S> fmt::Debug for CircuitBreaker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker").finish_non_exhaustive()
    }
}

fn map_breaker_error(e: CircuitBreakerError<Error>) -> Error {
    match e {
        CircuitBreakerError::OpenCircuit => Error::new(
            ErrorKind::CircuitOpen,
            "circuit breaker is open; the backend was not called",
        ),
        CircuitBreakerError::Inner(e) => e,
    }
}

impl<S> Service<BackendRequest> for CircuitBreaker<S>
where
    S: Service<BackendRequest, Response = BackendResponse, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = BackendResponse;
    type Error = Error;
    type Future = BackendFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: BackendRequest) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.oneshot(req).await.map_err(map_breaker_error) })
    }
}
