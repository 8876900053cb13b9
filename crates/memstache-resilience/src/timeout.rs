//! A per-attempt timeout: a hung backend call becomes an [`ErrorKind::Timeout`] error that the
//! circuit breaker and the retry layer can see (the cache's operation timeout, outside every
//! layer, cancels the call instead, and a cancelled call is recorded by no layer).

use std::fmt;
use std::task::{Context, Poll};
use std::time::Duration;

use memstache_core::raw::{BackendFuture, BackendRequest, BackendResponse};
use memstache_core::{Error, ErrorKind, Result};
use tower::{Layer, Service, ServiceExt};

/// Bounds each attempt of a backend call with `timeout`; on expiry the attempt fails with
/// [`ErrorKind::Timeout`] (temporary).
///
/// ```
/// use memstache_resilience::AttemptTimeoutLayer;
/// use std::time::Duration;
/// let cache = memstache_core::MemStache::builder()
///     .backend_layer(AttemptTimeoutLayer::new(Duration::from_millis(250)))
///     .build()?;
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct AttemptTimeoutLayer {
    timeout: Duration,
}

impl AttemptTimeoutLayer {
    /// A layer bounding every attempt with `timeout`.
    pub fn new(timeout: Duration) -> Self {
        AttemptTimeoutLayer { timeout }
    }
}

impl<S> Layer<S> for AttemptTimeoutLayer {
    type Service = AttemptTimeout<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AttemptTimeout {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service of [`AttemptTimeoutLayer`].
#[derive(Clone)]
pub struct AttemptTimeout<S> {
    inner: S,
    timeout: Duration,
}

impl<S> fmt::Debug for AttemptTimeout<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttemptTimeout")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<S> Service<BackendRequest> for AttemptTimeout<S>
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
        let limit = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(limit, inner.oneshot(req)).await {
                Ok(r) => r,
                Err(elapsed) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("backend attempt did not answer within {limit:?}"),
                )
                .with_source(elapsed)),
            }
        })
    }
}
