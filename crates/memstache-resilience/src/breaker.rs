//! A circuit breaker for the backend stack: a failure-rate breaker over a bucketed sliding
//! time window, counting temporary errors as failures.

mod circuit;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use memstache_core::raw::{BackendFuture, BackendRequest, BackendResponse};
use memstache_core::{Error, ErrorKind, Result};
use tower::{Layer, Service, ServiceExt};

use circuit::{Circuit, Permit};

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
/// The window is a ring of ten buckets, each a tenth of `window` long: recording a call adds
/// to one bucket, and a failure sums the ten to decide whether to open. Every call costs the
/// same whatever the request rate (one atomic read of the state, one short lock of the ring),
/// so a high rate of fast failures — Redis refusing connections — opens the circuit within
/// `min_calls` failures instead of slowing every caller first. The window slides in steps of
/// a tenth of its length: a failure leaves the rate between 90 % and 100 % of `window` after
/// it happened.
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
    /// Fewest calls in the window before the circuit may open. Default: 10.
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

/// Observes one breaker: its state and how often it changed.
#[derive(Clone)]
pub struct BreakerHandle {
    circuit: Arc<Circuit>,
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
        self.circuit.state()
    }
    /// State changes so far.
    pub fn transitions(&self) -> u64 {
        self.circuit.transitions()
    }
    /// Times the circuit opened so far.
    pub fn times_opened(&self) -> u64 {
        self.circuit.times_opened()
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
    circuit: Arc<Circuit>,
}

impl fmt::Debug for CircuitBreakerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("handle", &self.handle())
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
        if !(config.failure_rate > 0.0 && config.failure_rate <= 1.0) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "circuit breaker failure rate must be in (0, 1]",
            ));
        }
        if config.window.is_zero() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "circuit breaker window must not be empty",
            ));
        }
        Ok(CircuitBreakerLayer {
            circuit: Arc::new(Circuit::new(config)),
        })
    }

    /// A handle observing this breaker's circuit.
    pub fn handle(&self) -> BreakerHandle {
        BreakerHandle {
            circuit: Arc::clone(&self.circuit),
        }
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker {
            inner,
            circuit: Arc::clone(&self.circuit),
        }
    }
}

/// The service of [`CircuitBreakerLayer`]: fails fast with [`ErrorKind::CircuitOpen`]
/// (temporary) while the circuit is open, and records every call's outcome otherwise.
#[derive(Clone)]
pub struct CircuitBreaker<S> {
    inner: S,
    circuit: Arc<Circuit>,
}

impl<S> fmt::Debug for CircuitBreaker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker").finish_non_exhaustive()
    }
}

fn open_circuit() -> Error {
    Error::new(
        ErrorKind::CircuitOpen,
        "circuit breaker is open; the backend was not called",
    )
}

/// Records the outcome of one admitted call; a call dropped before its outcome records
/// nothing, and a dropped probe gives its place back.
struct Admitted {
    circuit: Arc<Circuit>,
    probe: bool,
    recorded: bool,
}

impl Admitted {
    fn record(mut self, failed: bool) {
        self.recorded = true;
        if self.probe {
            self.circuit.record_probe(failed);
        } else {
            self.circuit.record(failed);
        }
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.probe && !self.recorded {
            self.circuit.release_probe();
        }
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
        let probe = match self.circuit.acquire() {
            Permit::Rejected => return Box::pin(std::future::ready(Err(open_circuit()))),
            Permit::Call => false,
            Permit::Probe => true,
        };
        let admitted = Admitted {
            circuit: Arc::clone(&self.circuit),
            probe,
            recorded: false,
        };
        let inner = self.inner.clone();
        Box::pin(async move {
            let result = inner.oneshot(req).await;
            // A temporary error means the backend could not be reached; a permanent one
            // means it answered.
            admitted.record(matches!(&result, Err(e) if e.is_temporary()));
            result
        })
    }
}
