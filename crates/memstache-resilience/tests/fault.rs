//! Fault tests against real `redis-server` processes: kill and restart under load, and a
//! paused (slow) Redis. Each is bounded to well under 20 s.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::Counting;
use memstache_core::{EntryOptions, ErrorKind, FailSafe, MemStache};
use memstache_harness::redis::RedisServer;
use memstache_redis::RedisBackend;
use memstache_resilience::{BreakerConfig, BreakerState, Resilience, RetryConfig};

const OP_TIMEOUT: Duration = Duration::from_millis(800);
/// Generous: the machine is a loaded 2-core VM; the bound is about hangs, not speed.
const MARGIN: Duration = Duration::from_millis(500);
const READ_KEYS: usize = 20;

fn value_of(i: usize) -> String {
    format!("value-{i}")
}

async fn poll_until(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[derive(Default)]
struct Load {
    ops: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    wrong: AtomicU64,
    max_ms: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_and_restart_under_load() {
    let mut server = RedisServer::start();
    let backend = Counting::new(RedisBackend::connect(&server.url()).await.unwrap());
    let network = Arc::clone(&backend.calls);
    let resilience = Resilience::with(
        Some(RetryConfig::default()),
        Some(
            BreakerConfig::default()
                .window(Duration::from_secs(1))
                .min_calls(10)
                .open_for(Duration::from_millis(1500))
                .half_open_probes(2),
        ),
        Some(Duration::from_millis(250)),
    )
    .unwrap();
    let breaker = resilience.breaker().unwrap();
    let cache = MemStache::builder()
        .namespace("fault")
        .backend(backend)
        .operation_timeout(OP_TIMEOUT)
        .backend_layer(resilience)
        .fail_safe(FailSafe::new(Duration::from_secs(60)))
        .build()
        .unwrap();

    for i in 0..READ_KEYS {
        cache
            .set(&format!("r{i}"), &value_of(i), EntryOptions::default())
            .await
            .unwrap();
    }

    let load = Arc::new(Load::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..8usize {
        let (cache, load, stop) = (cache.clone(), Arc::clone(&load), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let i = (t * 7 + n) % READ_KEYS;
                let started = Instant::now();
                let r = if n.is_multiple_of(2) {
                    cache
                        .get::<String>(&format!("r{i}"))
                        .await
                        .map(|v| v.is_none_or(|v| v == value_of(i)))
                } else {
                    cache
                        .set(&format!("w{t}:{n}"), &n, EntryOptions::default())
                        .await
                        .map(|()| true)
                };
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                load.max_ms.fetch_max(ms, Ordering::SeqCst);
                load.ops.fetch_add(1, Ordering::SeqCst);
                match r {
                    Ok(true) => load.ok.fetch_add(1, Ordering::SeqCst),
                    Ok(false) => load.wrong.fetch_add(1, Ordering::SeqCst),
                    Err(e) => {
                        assert!(e.is_temporary(), "permanent error during outage: {e}");
                        load.errors.fetch_add(1, Ordering::SeqCst)
                    }
                };
                tokio::task::yield_now().await;
            }
        }));
    }

    // healthy
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(load.ok.load(Ordering::SeqCst) > 0);

    // outage
    tokio::task::block_in_place(|| server.kill());
    let killed_at = Instant::now();
    poll_until("the breaker to open", Duration::from_secs(10), async || {
        breaker.state() == BreakerState::Open
    })
    .await;
    // While open, calls fail fast without reaching the network. A window in which the
    // breaker did not change state must see no backend call at all.
    let mut clean_window = false;
    for _ in 0..5 {
        if breaker.state() != BreakerState::Open {
            poll_until(
                "the breaker to reopen",
                Duration::from_secs(10),
                async || breaker.state() == BreakerState::Open,
            )
            .await;
        }
        let (c0, t0, ops0) = (
            network.load(Ordering::SeqCst),
            breaker.transitions(),
            load.ops.load(Ordering::SeqCst),
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (c1, t1, ops1) = (
            network.load(Ordering::SeqCst),
            breaker.transitions(),
            load.ops.load(Ordering::SeqCst),
        );
        if t1 == t0 {
            assert_eq!(
                c1, c0,
                "calls reached the backend while the circuit was open"
            );
            assert!(ops1 > ops0, "the load kept running: {ops0} -> {ops1}");
            clean_window = true;
            break;
        }
    }
    assert!(clean_window, "the breaker never stayed open for 300 ms");
    let fail_safe_during = cache.stats().fail_safe_hits;
    assert!(
        fail_safe_during > 0,
        "fail-safe served nothing: {:?}",
        cache.stats()
    );
    // keep the load on for a few seconds of outage
    let outage = Duration::from_secs(3);
    if let Some(rest) = outage.checked_sub(killed_at.elapsed()) {
        tokio::time::sleep(rest).await;
    }

    // recovery, same cache
    tokio::task::block_in_place(|| server.restart());
    let restarted_at = Instant::now();
    poll_until(
        "operations to succeed after the restart",
        Duration::from_secs(10),
        async || {
            cache
                .set("probe", &1u8, EntryOptions::default())
                .await
                .is_ok()
                && cache.get::<u8>("probe").await.ok().flatten() == Some(1)
        },
    )
    .await;
    let recovered_in = restarted_at.elapsed();
    poll_until(
        "the breaker to close",
        Duration::from_secs(10),
        async || breaker.state() == BreakerState::Closed,
    )
    .await;

    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("a load task panicked");
    }
    let max = Duration::from_millis(load.max_ms.load(Ordering::SeqCst));
    eprintln!(
        "ops {} ok {} errors {} fail-safe {} breaker opened {}x; max call {max:?}; recovered in {recovered_in:?}",
        load.ops.load(Ordering::SeqCst),
        load.ok.load(Ordering::SeqCst),
        load.errors.load(Ordering::SeqCst),
        cache.stats().fail_safe_hits,
        breaker.times_opened(),
    );
    assert_eq!(load.wrong.load(Ordering::SeqCst), 0, "wrong data served");
    assert!(load.errors.load(Ordering::SeqCst) > 0);
    assert!(
        max <= OP_TIMEOUT + MARGIN,
        "a call took {max:?}, more than the operation timeout {OP_TIMEOUT:?} + {MARGIN:?}"
    );
}

/// `CLIENT PAUSE`: Redis accepts connections but answers nothing. Calls end with timeouts
/// (or an open circuit), never hang, and succeed again once the pause ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_redis_times_out_instead_of_hanging() {
    let server = RedisServer::start();
    let op_timeout = Duration::from_millis(500);
    let resilience = Resilience::new().unwrap();
    let cache = MemStache::builder()
        .namespace("pause")
        .backend(RedisBackend::connect(&server.url()).await.unwrap())
        .operation_timeout(op_timeout)
        .backend_layer(resilience)
        .build()
        .unwrap();
    // a cache without any layer: the operation timeout alone must bound it too
    let bare = MemStache::builder()
        .namespace("pause")
        .backend(RedisBackend::connect(&server.url()).await.unwrap())
        .operation_timeout(op_timeout)
        .build()
        .unwrap();
    cache
        .set("k", &1u32, EntryOptions::default())
        .await
        .unwrap();

    let pause_ms = 2500u64;
    let reply = server.cmd(&["CLIENT", "PAUSE", &pause_ms.to_string(), "ALL"]);
    assert_eq!(reply.as_text().as_deref(), Some("OK"));
    let paused_at = Instant::now();

    let mut kinds = Vec::new();
    let mut max = Duration::ZERO;
    let mut calls = Vec::new();
    for i in 0..8u32 {
        let c = if i % 2 == 0 {
            cache.clone()
        } else {
            bare.clone()
        };
        calls.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = c.get::<u32>("k").await;
            (r.map_err(|e| e.kind()), t.elapsed())
        }));
    }
    for c in calls {
        let (r, took) = c.await.unwrap();
        max = max.max(took);
        kinds.push(r.expect_err("a paused Redis cannot answer"));
    }
    assert!(
        paused_at.elapsed() < Duration::from_millis(pause_ms),
        "calls ended after the pause: inconclusive"
    );
    assert!(kinds.contains(&ErrorKind::Timeout), "{kinds:?}");
    assert!(
        kinds
            .iter()
            .all(|k| matches!(k, ErrorKind::Timeout | ErrorKind::CircuitOpen)),
        "{kinds:?}"
    );
    assert!(max <= op_timeout + MARGIN, "a call took {max:?}");

    poll_until(
        "Redis to answer after the pause",
        Duration::from_secs(10),
        async || {
            cache.get::<u32>("k").await.ok().flatten() == Some(1)
                && bare.get::<u32>("k").await.ok().flatten() == Some(1)
        },
    )
    .await;
}
