//! Unit tests against mock inner services (the real-Redis fault tests are in `tests/`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use memstache_core::raw::{BackendRequest, BackendResponse, BoxBackendService};
use memstache_core::{Error, ErrorKind};
use tower::{Layer, ServiceExt};

use crate::*;

/// A service failing with `kind` for its first `fail_first` calls (all calls while `down`).
#[derive(Clone)]
struct Mock {
    calls: Arc<AtomicU64>,
    fail_first: u64,
    kind: ErrorKind,
    down: Arc<AtomicBool>,
}

impl Mock {
    fn new(fail_first: u64, kind: ErrorKind) -> Self {
        Mock {
            calls: Arc::default(),
            fail_first,
            kind,
            down: Arc::default(),
        }
    }
    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
    fn service(&self) -> BoxBackendService {
        let m = self.clone();
        BoxBackendService::new(tower::service_fn(move |_req: BackendRequest| {
            let m = m.clone();
            async move {
                let n = m.calls.fetch_add(1, Ordering::SeqCst);
                if n < m.fail_first || m.down.load(Ordering::SeqCst) {
                    Err(Error::new(m.kind, "injected"))
                } else {
                    Ok(BackendResponse::Flag(true))
                }
            }
        }))
    }
}

fn req() -> BackendRequest {
    BackendRequest::Exists { key: "k".into() }
}

#[tokio::test(start_paused = true)]
async fn retry_recovers_from_temporary_failures() {
    let m = Mock::new(2, ErrorKind::Unavailable);
    let layer = RetryLayer::new(RetryConfig::default());
    let svc = layer.layer(m.service());
    assert_eq!(
        svc.oneshot(req()).await.unwrap(),
        BackendResponse::Flag(true)
    );
    assert_eq!(m.calls(), 3);
    assert_eq!(layer.retries(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_after_max_retries_with_the_last_error() {
    let m = Mock::new(100, ErrorKind::Timeout);
    let svc = RetryLayer::new(RetryConfig::default().max_retries(3)).layer(m.service());
    assert_eq!(
        svc.oneshot(req()).await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    assert_eq!(m.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn retry_never_retries_permanent_errors_or_an_open_circuit() {
    for kind in [
        ErrorKind::Integrity,
        ErrorKind::Serialization,
        ErrorKind::Backend,
        ErrorKind::CircuitOpen,
    ] {
        let m = Mock::new(1, kind);
        let svc = RetryLayer::new(RetryConfig::default()).layer(m.service());
        assert_eq!(svc.oneshot(req()).await.unwrap_err().kind(), kind);
        assert_eq!(m.calls(), 1, "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_budget_limits_retries() {
    let m = Mock::new(u64::MAX, ErrorKind::Unavailable);
    let layer = RetryLayer::new(
        RetryConfig::default()
            .max_retries(5)
            .retry_ratio(0.0)
            .min_retries_per_sec(1),
    );
    for _ in 0..20 {
        let svc = layer.layer(m.service());
        assert!(svc.oneshot(req()).await.is_err());
    }
    // 20 requests; without a budget that would be 120 calls
    assert!(m.calls() < 40, "{}", m.calls());
    assert!(m.calls() >= 20);
}

#[tokio::test]
async fn breaker_opens_fails_fast_and_closes_after_probes() {
    let m = Mock::new(0, ErrorKind::Unavailable);
    let breaker = CircuitBreakerLayer::new(
        BreakerConfig::default()
            .window(Duration::from_secs(10))
            .min_calls(4)
            .open_for(Duration::from_millis(100))
            .half_open_probes(1),
    )
    .unwrap();
    let h = breaker.handle();
    let svc = breaker.layer(m.service());
    m.down.store(true, Ordering::SeqCst);
    for _ in 0..4 {
        let e = svc.clone().oneshot(req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
    assert_eq!(h.state(), BreakerState::Open);
    assert_eq!(h.times_opened(), 1);
    let before = m.calls();
    for _ in 0..50 {
        let e = svc.clone().oneshot(req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::CircuitOpen);
        assert!(e.is_temporary());
    }
    assert_eq!(
        m.calls(),
        before,
        "an open circuit must not reach the backend"
    );
    m.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        svc.clone().oneshot(req()).await.unwrap(),
        BackendResponse::Flag(true)
    );
    assert_eq!(h.state(), BreakerState::Closed);
}

#[tokio::test]
async fn breaker_ignores_permanent_errors() {
    let m = Mock::new(u64::MAX, ErrorKind::Backend);
    let breaker = CircuitBreakerLayer::new(
        BreakerConfig::default()
            .window(Duration::from_secs(10))
            .min_calls(4),
    )
    .unwrap();
    let h = breaker.handle();
    let svc = breaker.layer(m.service());
    for _ in 0..20 {
        assert_eq!(
            svc.clone().oneshot(req()).await.unwrap_err().kind(),
            ErrorKind::Backend
        );
    }
    assert_eq!(h.state(), BreakerState::Closed);
    assert!(CircuitBreakerLayer::new(BreakerConfig::default().failure_rate(2.0)).is_err());
}

#[tokio::test(start_paused = true)]
async fn attempt_timeout_turns_a_hang_into_a_timeout() {
    let hang = BoxBackendService::new(tower::service_fn(|_r: BackendRequest| async {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok::<_, Error>(BackendResponse::Done)
    }));
    let svc = AttemptTimeoutLayer::new(Duration::from_millis(50)).layer(hang);
    let t = tokio::time::Instant::now();
    let e = svc.oneshot(req()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(t.elapsed(), Duration::from_millis(50));
}

/// In the stack, a hang reaches the breaker as a Timeout failure and opens it.
#[tokio::test]
async fn stack_opens_the_breaker_on_hangs() {
    let calls = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&calls);
    let hang = BoxBackendService::new(tower::service_fn(move |_r: BackendRequest| {
        c.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<_, Error>(BackendResponse::Done)
        }
    }));
    let stack = Resilience::with(
        Some(
            RetryConfig::default()
                .max_retries(1)
                .base_delay(Duration::from_millis(1)),
        ),
        Some(
            BreakerConfig::default()
                .window(Duration::from_secs(10))
                .min_calls(4)
                .open_for(Duration::from_secs(60)),
        ),
        Some(Duration::from_millis(10)),
    )
    .unwrap();
    let h = stack.breaker().unwrap();
    let svc = stack.layer(hang);
    for _ in 0..4 {
        assert!(svc.clone().oneshot(req()).await.is_err());
    }
    assert_eq!(h.state(), BreakerState::Open);
    let before = calls.load(Ordering::SeqCst);
    let e = svc.clone().oneshot(req()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen);
    assert_eq!(calls.load(Ordering::SeqCst), before);
}
