//! How long another node's L1 serves a replaced value (issue 14): the invalidation delay of
//! the Redis backplane, on a standalone `redis-server` and on a 6-process Redis Cluster that
//! this bench starts itself (harness), on both clients.
//!
//! `cargo bench -p memstache-benches --bench tiers_invalidation` — two nodes in one process,
//! A and B, each a `MemStache` with its own `RedisBackend` (own connections), its own L1 and
//! `.backplane(backend.backplane())` (its own subscriber connection); both await
//! `local_tier_ready()`. Then, `MEMSTACHE_BENCH_ROUNDS` times (default 2,000), on one key: B
//! reads it (and holds an L1 copy of it, checked), A sets it to a new value, and the clock
//! runs from A's `set` returning — its `PUBLISH` has been answered by then — until B's L1 no
//! longer serves the old value: B is polled with `get_with(k,
//! ReadOptions::new().skip_distributed(true))` (L1 only) in a tight loop with
//! `tokio::task::yield_now()` until it returns `None` or the new value. Prints p50 / p90 /
//! p99 / p99.9 / max in µs, from A's `set` returning and, end to end, from A's `set` being
//! called (Redis delivers a message to subscribers before it answers the `PUBLISH`, so B has
//! often dropped its copy by the time A's `set` returns: the first delay is then ~0).
//!
//! A 2-worker tokio runtime: the polling loop keeps one worker busy, B's subscriber task and
//! the Redis server processes share the other vCPU. So the delay includes a wake-up of an idle
//! vCPU where there is one, as a loopback round trip does (see DESIGN §9).

use std::time::{Duration, Instant};

use memstache::tiers::LocalTier;
use memstache::{EntryOptions, MemStache, ReadOptions};
use memstache_harness::redis::{RedisCluster, RedisServer};
use memstache_redis::RedisBackend;

/// Bound on each wait: a delay longer than this is counted as lost, not measured.
const LIMIT: Duration = Duration::from_secs(5);

fn with_client(url: &str, client: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}client={client}")
}

/// A node: its own backend connection(s), backplane subscription and L1.
async fn node(url: &str, namespace: &str) -> MemStache {
    let backend = RedisBackend::connect(url).await.expect("connect");
    let cache = MemStache::builder()
        .namespace(namespace)
        .backplane(backend.backplane())
        .backend(backend)
        .local_tier(LocalTier::new().max_duration(Duration::from_secs(600)))
        .build()
        .expect("cache");
    tokio::time::timeout(Duration::from_secs(20), cache.local_tier_ready())
        .await
        .expect("the backplane subscribed");
    cache
}

/// What B's L1 alone answers for `k`.
async fn local(b: &MemStache, k: &str) -> Option<u64> {
    b.get_with::<u64>(k, ReadOptions::new().skip_distributed(true))
        .await
        .expect("L1 read")
}

/// What one topology and client measured, in µs, sorted.
struct Delays {
    /// From A's `set` returning.
    after_return: Vec<f64>,
    /// From A's `set` being called.
    after_call: Vec<f64>,
    /// Rounds whose invalidation did not arrive within [`LIMIT`].
    lost: usize,
}

/// The delays of `rounds` set-then-invalidate rounds.
async fn measure(url: &str, ns: &str, rounds: usize) -> Delays {
    let (a, b) = (node(url, ns).await, node(url, ns).await);
    let k = "inv";
    a.set(k, &0u64, EntryOptions::default()).await.expect("set");
    let mut after_return = Vec::with_capacity(rounds);
    let mut after_call = Vec::with_capacity(rounds);
    let mut lost = 0;
    // B must not read while one of A's messages is still on its way (it would drop the copy
    // B is about to keep): the first one is awaited here, each later one by the round it
    // belongs to
    let start = Instant::now();
    while b.stats().backplane_received < 1 {
        assert!(start.elapsed() < LIMIT, "B never heard A's first set");
        tokio::task::yield_now().await;
    }
    for i in 1..=rounds as u64 {
        // B reads the current value from Redis and keeps a copy
        let start = Instant::now();
        loop {
            let v: Option<u64> = b.get(k).await.expect("get");
            assert_eq!(v, Some(i - 1));
            if local(&b, k).await == Some(i - 1) {
                break;
            }
            assert!(start.elapsed() < LIMIT, "B never kept a copy");
        }
        let called = Instant::now();
        a.set(k, &i, EntryOptions::default()).await.expect("set");
        let t0 = Instant::now();
        loop {
            match local(&b, k).await {
                None => break,
                Some(v) if v == i => break,
                Some(_) => {}
            }
            if t0.elapsed() > LIMIT {
                lost += 1;
                b.clear_local_tier();
                break;
            }
            tokio::task::yield_now().await;
        }
        let d = t0.elapsed();
        if d <= LIMIT {
            after_return.push(d.as_secs_f64() * 1e6);
            after_call.push(called.elapsed().as_secs_f64() * 1e6);
        }
    }
    after_return.sort_by(f64::total_cmp);
    after_call.sort_by(f64::total_cmp);
    Delays {
        after_return,
        after_call,
        lost,
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(topology: &str, client: &str, d: &Delays) {
    for (from, delays) in [
        ("set returned", &d.after_return),
        ("set called", &d.after_call),
    ] {
        line(topology, client, from, delays, d.lost);
    }
}

fn line(topology: &str, client: &str, from: &str, delays: &[f64], lost: usize) {
    println!(
        "  {topology:<11} {client:<9} {from:<13} {:>6} {:>8.0} {:>8.0} {:>8.0} {:>8.0} {:>8.0}   {lost}",
        delays.len(),
        pct(delays, 0.5),
        pct(delays, 0.9),
        pct(delays, 0.99),
        pct(delays, 0.999),
        delays.last().copied().unwrap_or(f64::NAN),
    );
}

fn main() {
    let rounds = std::env::var("MEMSTACHE_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "invalidation delay: A's set returned → B's L1 no longer serves the old value, \
         {rounds} rounds, µs\n"
    );
    println!(
        "  {:<11} {:<9} {:<13} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}   lost (> {} s)",
        "topology",
        "client",
        "from A's",
        "rounds",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        LIMIT.as_secs()
    );
    let server = RedisServer::start();
    for client in ["redis-rs", "fred"] {
        let url = with_client(&server.url(), client);
        let d = rt.block_on(measure(&url, &format!("inv-s-{client}"), rounds));
        report("standalone", client, &d);
    }
    drop(server);
    let cluster = RedisCluster::start();
    for client in ["redis-rs", "fred"] {
        let url = with_client(&cluster.url(), client);
        let d = rt.block_on(measure(&url, &format!("inv-c-{client}"), rounds));
        report("cluster", client, &d);
    }
    drop(cluster);
}
