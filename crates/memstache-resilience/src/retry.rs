//! Retries of temporary backend failures: exponential backoff with full jitter, bounded by a
//! retry budget.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use memstache_core::raw::{BackendFuture, BackendRequest, BackendResponse};
use memstache_core::{Error, ErrorKind, Result};
use rand::Rng;
use tower::retry::budget::{Budget, TpsBudget};
use tower::{Layer, Service, ServiceExt};

/// Default retries after the first attempt.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Default backoff cap of the first retry.
pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(25);
/// Default largest backoff.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_millis(250);
/// Default share of requests that may be retried, over the budget window.
pub const DEFAULT_RETRY_RATIO: f32 = 0.2;
/// Default retries per second always allowed.
pub const DEFAULT_MIN_RETRIES_PER_SEC: u32 = 10;

/// Configuration of the [`RetryLayer`].
///
/// A failed attempt is retried only when the error [`is_temporary`](Error::is_temporary)
/// (unavailable, timeout) and is not an open circuit (retrying a few milliseconds later would
/// be rejected again), never for [`ErrorKind::Integrity`], [`ErrorKind::Serialization`] or any
/// permanent error. Every backend operation is idempotent (a `set` writes the same envelope
/// again, a `remove` removes again, `set_if_absent` and `remove_if_equals` compare first), so a
/// retry after an attempt whose outcome is unknown cannot do harm.
///
/// The *n*-th retry waits a random time in `[0, min(max_delay, base_delay × 2ⁿ⁻¹)]` ("full
/// jitter"), so a fleet of clients does not retry in lock step. The retry budget (tower's
/// [`TpsBudget`]) lets retries add at most `retry_ratio` of the traffic on top of
/// `min_retries_per_sec`: when the backend is down, the load it sees does not triple.
///
/// ```
/// use memstache_resilience::RetryConfig;
/// use std::time::Duration;
/// let config = RetryConfig::default().max_retries(3).base_delay(Duration::from_millis(10));
/// assert_eq!(config.get_max_retries(), 3);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
#[must_use]
pub struct RetryConfig {
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
    retry_ratio: f32,
    min_retries_per_sec: u32,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: DEFAULT_MAX_RETRIES,
            base_delay: DEFAULT_BASE_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            retry_ratio: DEFAULT_RETRY_RATIO,
            min_retries_per_sec: DEFAULT_MIN_RETRIES_PER_SEC,
        }
    }
}

impl RetryConfig {
    /// Retries after the first attempt. Default: 2.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }
    /// Backoff cap of the first retry; doubles for each next one. Default: 25 ms.
    pub fn base_delay(mut self, d: Duration) -> Self {
        self.base_delay = d;
        self
    }
    /// Largest backoff. Default: 250 ms.
    pub fn max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }
    /// Share of requests (0.0–1000.0) that may be retried over a 10 s window. Default: 0.2.
    pub fn retry_ratio(mut self, ratio: f32) -> Self {
        self.retry_ratio = ratio;
        self
    }
    /// Retries per second allowed whatever the ratio. Default: 10.
    pub fn min_retries_per_sec(mut self, n: u32) -> Self {
        self.min_retries_per_sec = n;
        self
    }
    /// Retries after the first attempt.
    pub fn get_max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The backoff cap before retry number `retry` (1-based).
    fn cap(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }
}

/// Whether the retry layer retries `e`.
///
/// ```
/// use memstache_core::{Error, ErrorKind};
/// use memstache_resilience::is_retryable;
/// assert!(is_retryable(&Error::new(ErrorKind::Unavailable, "down")));
/// assert!(!is_retryable(&Error::new(ErrorKind::CircuitOpen, "open")));
/// assert!(!is_retryable(&Error::new(ErrorKind::Integrity, "bad").set_temporary(true)));
/// ```
pub fn is_retryable(e: &Error) -> bool {
    e.is_temporary()
        && !matches!(
            e.kind(),
            ErrorKind::CircuitOpen | ErrorKind::Integrity | ErrorKind::Serialization
        )
}

/// Retries temporary backend failures (see [`RetryConfig`]).
///
/// ```
/// use memstache_resilience::{RetryConfig, RetryLayer};
/// let cache = memstache_core::MemStache::builder()
///     .backend_layer(RetryLayer::new(RetryConfig::default()))
///     .build()?;
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Clone)]
pub struct RetryLayer {
    shared: Arc<Shared>,
}

struct Shared {
    config: RetryConfig,
    budget: TpsBudget,
    retries: AtomicU64,
}

impl fmt::Debug for RetryLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryLayer")
            .field("config", &self.shared.config)
            .field("retries", &self.retries())
            .finish()
    }
}

impl RetryLayer {
    /// A retry layer with `config`; services it makes share one budget.
    pub fn new(config: RetryConfig) -> Self {
        let ratio = config.retry_ratio.clamp(0.0, 1000.0);
        RetryLayer {
            shared: Arc::new(Shared {
                config,
                budget: TpsBudget::new(Duration::from_secs(10), config.min_retries_per_sec, ratio),
                retries: AtomicU64::new(0),
            }),
        }
    }

    /// Retries made so far by services of this layer.
    pub fn retries(&self) -> u64 {
        self.shared.retries.load(Ordering::Relaxed)
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service of [`RetryLayer`].
#[derive(Clone)]
pub struct Retry<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> fmt::Debug for Retry<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl<S> Service<BackendRequest> for Retry<S>
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
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            shared.budget.deposit();
            let mut retry = 0u32;
            loop {
                let e = match inner.clone().oneshot(req.clone()).await {
                    Ok(r) => return Ok(r),
                    Err(e) => e,
                };
                if retry >= shared.config.max_retries || !is_retryable(&e) {
                    return Err(e);
                }
                if !shared.budget.withdraw() {
                    tracing::debug!(error = %e, "memstache: retry budget exhausted; not retrying");
                    return Err(e);
                }
                retry += 1;
                shared.retries.fetch_add(1, Ordering::Relaxed);
                let cap = shared.config.cap(retry);
                let wait = if cap.is_zero() {
                    Duration::ZERO
                } else {
                    rand::rng().random_range(Duration::ZERO..=cap)
                };
                tracing::debug!(
                    operation = req.operation(),
                    retry,
                    error = %e,
                    "memstache: retrying a backend call"
                );
                tokio::time::sleep(wait).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_caps_double_up_to_the_maximum() {
        let c = RetryConfig::default()
            .base_delay(Duration::from_millis(10))
            .max_delay(Duration::from_millis(50));
        assert_eq!(c.cap(1), Duration::from_millis(10));
        assert_eq!(c.cap(2), Duration::from_millis(20));
        assert_eq!(c.cap(3), Duration::from_millis(40));
        assert_eq!(c.cap(4), Duration::from_millis(50));
        assert_eq!(c.cap(40), Duration::from_millis(50));
    }
}
