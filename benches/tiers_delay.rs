//! Invalidation delay of the two-tier cache on real Redis: the time from `set` returning on
//! node A to node B's L1 no longer serving the value A replaced, on standalone and on the
//! 6-process Cluster this bench starts itself (testkit harness).
//!
//! `cargo bench -p memstache-benches --bench tiers_delay` — prints p50 / p99 / max over
//! `MEMSTACHE_BENCH_WRITES` writes (default 2,000) per topology, and the `set` latency beside.
//!
//! Nodes A and B each have their own `RedisBackend` (own connections), L1 and backplane
//! subscription (`RedisBackend::backplane`), as two processes would. Per write: B is made to
//! hold the current value in L1 (read until `get_with(skip_distributed)` serves it), A sets a
//! new value, and the clock starts when A's `set` returns; B then polls its L1 alone
//! (`get_with(.., skip_distributed(true))`, a yield between polls) until the old value is
//! gone. A delay of 0 means the message had already arrived when `set` returned (A publishes
//! after the write, before returning). Not a wall-clock test: the numbers go to
//! `docs/BENCHMARKS.md`.

use std::time::{Duration, Instant};

use memstache::{EntryOptions, MemStache};
use memstache_core::ReadOptions;
use memstache_core::tiers::LocalTier;
use memstache_harness::redis::{RedisCluster, RedisServer};
use memstache_redis::RedisBackend;

async fn node(url: &str) -> MemStache {
    let backend = RedisBackend::connect(url).await.expect("connect");
    let cache = MemStache::builder()
        .namespace("delay")
        .backplane(backend.backplane())
        .backend(backend)
        .local_tier(LocalTier::new().max_duration(Duration::from_secs(300)))
        .build()
        .expect("cache");
    tokio::time::timeout(Duration::from_secs(20), cache.local_tier_ready())
        .await
        .expect("subscribed");
    cache
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn measure(url: &str, writes: u64) -> (Vec<Duration>, Vec<Duration>, u64) {
    let (a, b) = (node(url).await, node(url).await);
    let local = ReadOptions::new().skip_distributed(true);
    let o = EntryOptions::default;
    let mut delays = Vec::with_capacity(writes as usize);
    let mut sets = Vec::with_capacity(writes as usize);
    let mut already = 0u64;
    a.set("k", &0u64, o()).await.expect("set");
    for i in 0..writes {
        // B holds value i in L1 (a late message of the previous write may still drop it)
        let deadline = Instant::now() + Duration::from_secs(10);
        while b.get_with::<u64>("k", local).await.expect("local read") != Some(i) {
            assert!(Instant::now() < deadline, "B never held value {i}");
            let _ = b.get::<u64>("k").await.expect("read");
        }
        let t = Instant::now();
        a.set("k", &(i + 1), o()).await.expect("set");
        let returned = Instant::now();
        sets.push(returned - t);
        let mut first = true;
        loop {
            match b.get_with::<u64>("k", local).await.expect("local read") {
                Some(v) if v == i => {}
                _ => break,
            }
            first = false;
            tokio::task::yield_now().await;
        }
        if first {
            already += 1;
        }
        delays.push(returned.elapsed());
    }
    assert!(b.stats().invalidations >= writes / 2, "the backplane did the work");
    delays.sort();
    sets.sort();
    (delays, sets, already)
}

fn report(name: &str, (delays, sets, already): (Vec<Duration>, Vec<Duration>, u64)) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<20} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>12} {:>9.1} {:>9.1}",
        delays.len(),
        us(pct(&delays, 0.5)),
        us(pct(&delays, 0.99)),
        us(*delays.last().expect("writes")),
        already,
        us(pct(&sets, 0.5)),
        us(pct(&sets, 0.99)),
    );
}

fn with_client(url: &str, client: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}client={client}")
}

fn main() {
    let writes = std::env::var("MEMSTACHE_BENCH_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "invalidation delay, µs from A's set returning to B's L1 dropping the old value ({writes} writes)"
    );
    println!(
        "{:<20} {:>6} {:>9} {:>9} {:>9} {:>12} {:>9} {:>9}",
        "topology", "writes", "p50", "p99", "max", "already-gone", "set p50", "set p99"
    );
    let server = RedisServer::start();
    for client in ["redis-rs", "fred"] {
        let url = with_client(&server.url(), client);
        report(
            &format!("standalone/{client}"),
            rt.block_on(measure(&url, writes)),
        );
    }
    drop(server);
    let cluster = RedisCluster::start();
    for client in ["redis-rs", "fred"] {
        let url = with_client(&cluster.url(), client);
        report(&format!("cluster/{client}"), rt.block_on(measure(&url, writes)));
    }
}
