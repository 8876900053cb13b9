//! The shared behaviour suite (`memstache_testkit::behaviour`) on Redis: standalone, Sentinel
//! and Cluster, each a real set of processes started here.
//!
//! One test function per topology runs every case in sequence against one shared topology
//! (each case uses its own random namespace), so the processes are started once and killed when
//! the function ends or panics.

use std::sync::Arc;

use memstache_harness::redis::{RedisCluster, RedisSentinelSet, RedisServer};
use memstache_redis::RedisBackend;
use memstache_testkit::behaviour::{self, RealTimeHarness};

/// Runs the suite once per client on the same topology with coalescing off and on, and again
/// with a local tier (L1) kept coherent by the Redis backplane (coalescing on).
async fn run_suite(url: &str) {
    let sep = if url.contains('?') { '&' } else { '?' };
    for client in ["redis-rs", "fred"] {
        for coalesce in [false, true] {
            eprintln!("client: {client}, coalesce: {coalesce}");
            run_suite_once(&format!("{url}{sep}client={client}&coalesce={coalesce}")).await;
        }
        eprintln!("client: {client}, with a local tier");
        run_suite_with_local_tier(&format!("{url}{sep}client={client}&coalesce=true")).await;
    }
}

async fn run_suite_once(url: &str) {
    let backend = RedisBackend::connect(url).await.expect("connect");
    behaviour::run_all(&RealTimeHarness::new(Arc::new(backend))).await;
}

async fn run_suite_with_local_tier(url: &str) {
    let backend = RedisBackend::connect(url).await.expect("connect");
    let plane = backend.backplane();
    let h = behaviour::Configured::new(RealTimeHarness::new(Arc::new(backend)), move |b| {
        b.local_tier(memstache_core::tiers::LocalTier::new())
            .backplane(plane.clone())
    });
    behaviour::run_all(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_standalone() {
    let server = RedisServer::start();
    run_suite(&server.url()).await;
}

/// The same suite with every read through the Lua script (`SlidingReads::Script`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_standalone_script_reads() {
    let server = RedisServer::start();
    run_suite(&format!("{}?sliding_reads=script", server.url())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_sentinel() {
    let set = RedisSentinelSet::start();
    run_suite(&set.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_cluster() {
    let cluster = RedisCluster::start();
    run_suite(&cluster.url()).await;
}
