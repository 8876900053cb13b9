//! The ready-made stack: retry → circuit breaker → per-attempt timeout → backend.

use std::fmt;
use std::time::Duration;

use memstache_core::Result;
use memstache_core::raw::BoxBackendService;
use tower::Layer;

use crate::{
    AttemptTimeoutLayer, BreakerConfig, BreakerHandle, CircuitBreakerLayer, RetryConfig, RetryLayer,
};

/// Default bound on one attempt of a backend call.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(300);

/// The recommended resilience stack for a distributed backend, as one layer:
///
/// ```text
/// MemStache ── operation_timeout (whole call, retries included; MemStacheBuilder, default 1 s)
///   └─ retry            (temporary errors only, full-jitter backoff, retry budget)
///       └─ circuit breaker (fails fast with CircuitOpen while the backend is down)
///           └─ attempt timeout (each attempt; a hang becomes a Timeout the breaker sees)
///               └─ backend
/// ```
///
/// Why this order:
///
/// * The **attempt timeout sits inside the breaker**: a call cancelled from outside (by the
///   cache's operation timeout) is recorded by no layer, so without it a Redis that hangs
///   would never open the circuit.
/// * The **breaker sits inside the retry**: every attempt asks the breaker, so retries stop
///   as soon as it opens; an open circuit is not retried.
/// * The **operation timeout is outside everything** (it is the cache's own bound, not a
///   layer): retries and backoff can never make an operation slower than it. Keep
///   `attempt_timeout` well below it, or retries have no time left to run.
///
/// Defaults: retry [`RetryConfig::default`] (2 retries, 25 ms → 250 ms full jitter, budget
/// 20 % + 10/s), breaker [`BreakerConfig::default`] (opens at 50 % failures over the last 5 s
/// once 10 calls are recorded, open 5 s, 3 half-open probes), attempt timeout 300 ms.
///
/// ```
/// use memstache_core::MemStache;
/// use memstache_resilience::{Resilience, BreakerState};
/// use std::time::Duration;
///
/// let resilience = Resilience::new()?;
/// let breaker = resilience.breaker().expect("breaker is on by default");
/// let cache = MemStache::builder()
///     .operation_timeout(Duration::from_secs(1))
///     .backend_layer(resilience)
///     .build()?;
/// assert_eq!(breaker.state(), BreakerState::Closed);
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Resilience {
    retry: Option<RetryLayer>,
    breaker: Option<CircuitBreakerLayer>,
    attempt_timeout: Option<AttemptTimeoutLayer>,
}

impl fmt::Debug for Resilience {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resilience")
            .field("retry", &self.retry)
            .field("breaker", &self.breaker)
            .field("attempt_timeout", &self.attempt_timeout)
            .finish()
    }
}

impl Resilience {
    /// The stack with every default.
    ///
    /// # Errors
    ///
    /// Never with the defaults; see [`with`](Self::with).
    pub fn new() -> Result<Self> {
        Self::with(
            Some(RetryConfig::default()),
            Some(BreakerConfig::default()),
            Some(DEFAULT_ATTEMPT_TIMEOUT),
        )
    }

    /// The stack with the given parts; `None` leaves a part out.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`](memstache_core::ErrorKind::InvalidConfig) for an invalid
    /// breaker configuration.
    pub fn with(
        retry: Option<RetryConfig>,
        breaker: Option<BreakerConfig>,
        attempt_timeout: Option<Duration>,
    ) -> Result<Self> {
        Ok(Resilience {
            retry: retry.map(RetryLayer::new),
            breaker: breaker.map(CircuitBreakerLayer::new).transpose()?,
            attempt_timeout: attempt_timeout.map(AttemptTimeoutLayer::new),
        })
    }

    /// A handle on the circuit breaker, when there is one.
    pub fn breaker(&self) -> Option<BreakerHandle> {
        self.breaker.as_ref().map(CircuitBreakerLayer::handle)
    }

    /// Retries made so far (0 without a retry layer).
    pub fn retries(&self) -> u64 {
        self.retry.as_ref().map_or(0, RetryLayer::retries)
    }
}

impl Layer<BoxBackendService> for Resilience {
    type Service = BoxBackendService;

    fn layer(&self, inner: BoxBackendService) -> BoxBackendService {
        let mut s = inner;
        if let Some(t) = &self.attempt_timeout {
            s = BoxBackendService::new(t.layer(s));
        }
        if let Some(b) = &self.breaker {
            s = BoxBackendService::new(b.layer(s));
        }
        if let Some(r) = &self.retry {
            s = BoxBackendService::new(r.layer(s));
        }
        s
    }
}
