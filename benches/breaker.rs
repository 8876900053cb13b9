//! The circuit breaker when the backend starts failing fast (Redis refusing connections):
//! memstache-resilience's bucketed breaker beside tower-resilience 0.13's time-based one
//! (what memstache used before), same configuration, interleaved rounds.
//!
//! Each round, for each breaker: 64 tasks on a 2-thread runtime call a backend service that
//! answers at once. For `HEALTHY` it succeeds, filling the breaker's 5 s window with
//! successes; then it fails every call with `Unavailable`, as a Redis that refuses
//! connections does. Printed per breaker: calls/s while healthy, calls/s and p99 latency
//! while failing until the circuit opens (or `FAILING_MAX` passes), and how long opening
//! took. The default rate rule (50 % of the calls in the window) needs as many failures as
//! there were successes in the window, so both breakers must admit that many failures; the
//! question is what each failure costs.
//!
//! `cargo bench -p memstache-benches --bench breaker`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memstache_core::raw::{BackendRequest, BackendResponse, BoxBackendService};
use memstache_core::{Error, ErrorKind};
use memstache_resilience::{BreakerConfig, BreakerState, CircuitBreakerLayer};
use tower::{Layer, ServiceExt};
use tower_resilience::circuitbreaker::{CircuitState, FailureClassifier, SlidingWindowType};

const TASKS: usize = 64;
const HEALTHY: Duration = Duration::from_millis(500);
const FAILING_MAX: Duration = Duration::from_secs(6);
const ROUNDS: usize = 3;

fn backend(down: Arc<AtomicBool>) -> BoxBackendService {
    BoxBackendService::new(tower::service_fn(move |_req: BackendRequest| {
        let down = down.load(Ordering::Relaxed);
        async move {
            if down {
                Err(Error::new(ErrorKind::Unavailable, "connection refused"))
            } else {
                Ok(BackendResponse::Flag(true))
            }
        }
    }))
}

fn req() -> BackendRequest {
    BackendRequest::Exists { key: "k".into() }
}

#[derive(Clone, Copy)]
struct Temporary;
impl<R> FailureClassifier<R, Error> for Temporary {
    fn classify(&self, result: &Result<R, Error>) -> bool {
        matches!(result, Err(e) if e.is_temporary())
    }
}

/// One breaker under test: a service factory and a way to ask whether it is open.
struct Subject {
    name: &'static str,
    service: BoxBackendService,
    is_open: Box<dyn Fn() -> bool + Send + Sync>,
}

fn ours(down: Arc<AtomicBool>) -> Subject {
    let layer = CircuitBreakerLayer::new(BreakerConfig::default()).expect("valid");
    let handle = layer.handle();
    Subject {
        name: "memstache-resilience (bucketed)",
        service: BoxBackendService::new(layer.layer(backend(down))),
        is_open: Box::new(move || handle.state() == BreakerState::Open),
    }
}

fn tower_resilience(down: Arc<AtomicBool>) -> Subject {
    let (layer, handle) = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(memstache_resilience::DEFAULT_FAILURE_RATE)
        .sliding_window_type(SlidingWindowType::TimeBased)
        .sliding_window_duration(memstache_resilience::DEFAULT_WINDOW)
        .minimum_number_of_calls(memstache_resilience::DEFAULT_MIN_CALLS)
        .wait_duration_in_open(memstache_resilience::DEFAULT_OPEN_FOR)
        .permitted_calls_in_half_open(memstache_resilience::DEFAULT_HALF_OPEN_PROBES)
        .failure_classifier_type(Temporary)
        .build_with_handle()
        .expect("valid");
    let inner = layer.layer(backend(down));
    let service = BoxBackendService::new(tower::service_fn(move |r: BackendRequest| {
        let inner = inner.clone();
        async move {
            inner.oneshot(r).await.map_err(|e| match e {
                tower_resilience::circuitbreaker::CircuitBreakerError::OpenCircuit => {
                    Error::new(ErrorKind::CircuitOpen, "open")
                }
                tower_resilience::circuitbreaker::CircuitBreakerError::Inner(e) => e,
            })
        }
    }));
    Subject {
        name: "tower-resilience 0.13 (time-based)",
        service,
        is_open: Box::new(move || handle.state() == CircuitState::Open),
    }
}

struct Outcome {
    healthy_per_sec: f64,
    failing_calls: u64,
    failing_per_sec: f64,
    p99_failing: Duration,
    opened_after: Option<Duration>,
}

async fn run(make: fn(Arc<AtomicBool>) -> Subject) -> (&'static str, Outcome) {
    let down = Arc::new(AtomicBool::new(false));
    let subject = Arc::new(make(Arc::clone(&down)));
    let stop = Arc::new(AtomicBool::new(false));
    let healthy_calls = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (subject, stop, down, healthy) = (
            Arc::clone(&subject),
            Arc::clone(&stop),
            Arc::clone(&down),
            Arc::clone(&healthy_calls),
        );
        tasks.push(tokio::spawn(async move {
            let mut failing = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let was_down = down.load(Ordering::Relaxed);
                let t = Instant::now();
                let r = subject.service.clone().oneshot(req()).await;
                if was_down {
                    failing.push(t.elapsed());
                } else if r.is_ok() {
                    healthy.fetch_add(1, Ordering::Relaxed);
                }
                if (subject.is_open)() {
                    break;
                }
                tokio::task::yield_now().await;
            }
            failing
        }));
    }
    tokio::time::sleep(HEALTHY).await;
    let healthy_per_sec =
        healthy_calls.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    down.store(true, Ordering::Relaxed);
    let failing_start = Instant::now();
    let mut opened_after = None;
    while failing_start.elapsed() < FAILING_MAX {
        if (subject.is_open)() {
            opened_after = Some(failing_start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let failing_for = failing_start.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("task"));
    }
    latencies.sort_unstable();
    let p99 = latencies
        .get(latencies.len().saturating_sub(1) * 99 / 100)
        .copied()
        .unwrap_or_default();
    (
        subject.name,
        Outcome {
            healthy_per_sec,
            failing_calls: latencies.len() as u64,
            failing_per_sec: latencies.len() as f64 / failing_for.as_secs_f64(),
            p99_failing: p99,
            opened_after,
        },
    )
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime");
    println!(
        "{TASKS} tasks, {} ms healthy then failing fast; default breaker (50 % of the calls in 5 s, min 10)",
        HEALTHY.as_millis()
    );
    println!(
        "{:<36} {:>12} {:>14} {:>12} {:>12} {:>12}",
        "breaker", "healthy/s", "failing calls", "failing/s", "p99 failing", "opened after"
    );
    for round in 1..=ROUNDS {
        for make in [ours as fn(_) -> _, tower_resilience] {
            let (name, o) = rt.block_on(run(make));
            println!(
                "{:<36} {:>12.0} {:>14} {:>12.0} {:>10.1}µs {:>12}   (round {round})",
                name,
                o.healthy_per_sec,
                o.failing_calls,
                o.failing_per_sec,
                o.p99_failing.as_secs_f64() * 1e6,
                o.opened_after
                    .map(|d| format!("{:.0} ms", d.as_secs_f64() * 1e3))
                    .unwrap_or_else(|| format!("> {} s", FAILING_MAX.as_secs())),
            );
        }
    }
}
