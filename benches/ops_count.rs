//! Exact, repeatable instruction counts of one `MemStache` operation, for callgrind: each path
//! runs `N` operations inside its own `#[inline(never)]` function on a current-thread runtime,
//! so the function's inclusive count divided by `N` is the cost of one operation (client work,
//! the runtime, the Redis connection task; not the server, which is another process):
//!
//! ```text
//! cargo bench -p memstache-benches --bench ops_count --no-run
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/deps/ops_count-<hash>
//! callgrind_annotate --inclusive=yes cg.out | grep ops_count::
//! ```
//!
//! Paths: `get` (a hit) and `set` of a 1 KiB value on the memory backend, on the memory backend
//! behind one pass-through `backend_layer`, and on a Redis server the bench starts itself
//! (redis-rs, one request in flight); and with a local tier on Redis (`l1_get`, an L1 hit;
//! `l1_redis_set`, a Redis write that keeps its copy and publishes on the backplane). Each path function passes its own id down, so identical
//! code folding cannot merge them. Run without valgrind it only checks that every path works.

use std::hint::black_box;

use memstache::raw::BoxBackendService;
use memstache::{EntryOptions, MemStache};
use memstache_harness::redis::RedisServer;
use memstache_redis::RedisBackend;
use tokio::runtime::Runtime;

/// Operations per path.
const N: usize = 2_000;
/// Distinct keys.
const KEYS: usize = 100;

fn value() -> String {
    "x".repeat(1024)
}

#[inline(never)]
fn get_path(rt: &Runtime, cache: &MemStache, keys: &[String], path: u8) {
    black_box(path);
    rt.block_on(async {
        for i in 0..N {
            let v: Option<String> = cache.get(&keys[i % KEYS]).await.expect("get");
            black_box(v.expect("hit"));
        }
    });
}

#[inline(never)]
fn set_path(rt: &Runtime, cache: &MemStache, keys: &[String], v: &String, path: u8) {
    black_box(path);
    rt.block_on(async {
        for i in 0..N {
            cache
                .set(&keys[i % KEYS], black_box(v), EntryOptions::default())
                .await
                .expect("set");
        }
    });
}

#[inline(never)]
fn memory_get(rt: &Runtime, cache: &MemStache, keys: &[String]) {
    get_path(rt, cache, keys, 1);
}
#[inline(never)]
fn memory_set(rt: &Runtime, cache: &MemStache, keys: &[String], v: &String) {
    set_path(rt, cache, keys, v, 2);
}
#[inline(never)]
fn layered_get(rt: &Runtime, cache: &MemStache, keys: &[String]) {
    get_path(rt, cache, keys, 3);
}
#[inline(never)]
fn layered_set(rt: &Runtime, cache: &MemStache, keys: &[String], v: &String) {
    set_path(rt, cache, keys, v, 4);
}
#[inline(never)]
fn l1_get(rt: &Runtime, cache: &MemStache, keys: &[String]) {
    get_path(rt, cache, keys, 7);
}
#[inline(never)]
fn l1_redis_set(rt: &Runtime, cache: &MemStache, keys: &[String], v: &String) {
    set_path(rt, cache, keys, v, 8);
}
#[inline(never)]
fn redis_get(rt: &Runtime, cache: &MemStache, keys: &[String]) {
    get_path(rt, cache, keys, 5);
}
#[inline(never)]
fn redis_set(rt: &Runtime, cache: &MemStache, keys: &[String], v: &String) {
    set_path(rt, cache, keys, v, 6);
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let keys: Vec<String> = (0..KEYS).map(|i| format!("k:{i}")).collect();
    let v = value();
    let server = RedisServer::start();

    let memory = MemStache::builder().namespace("m").build().expect("cache");
    let layered = MemStache::builder()
        .namespace("m")
        .backend_layer(tower::layer::layer_fn(|inner: BoxBackendService| inner))
        .build()
        .expect("cache");
    let redis = rt.block_on(async {
        let backend = RedisBackend::connect(&server.url()).await.expect("redis");
        MemStache::builder()
            .namespace("m")
            .backend(backend)
            .build()
            .expect("cache")
    });

    // Redis with a local tier and the Redis backplane: `get` is an L1 hit, `set` writes
    // Redis, keeps the copy and publishes one message
    let tiered = rt.block_on(async {
        let backend = RedisBackend::connect(&server.url()).await.expect("redis");
        let cache = MemStache::builder()
            .namespace("t")
            .backplane(backend.backplane())
            .backend(backend)
            .local_tier(memstache::tiers::LocalTier::new())
            .build()
            .expect("cache");
        cache.local_tier_ready().await;
        cache
    });

    // warm-up: every key written (the get paths then hit), every path run once
    for cache in [&memory, &layered, &redis, &tiered] {
        set_path(&rt, cache, &keys, &v, 0);
        get_path(&rt, cache, &keys, 0);
    }
    memory_set(&rt, &memory, &keys, &v);
    memory_get(&rt, &memory, &keys);
    layered_set(&rt, &layered, &keys, &v);
    layered_get(&rt, &layered, &keys);
    redis_set(&rt, &redis, &keys, &v);
    redis_get(&rt, &redis, &keys);
    l1_redis_set(&rt, &tiered, &keys, &v);
    l1_get(&rt, &tiered, &keys);
    assert!(
        tiered.stats().l1_hits >= N as u64,
        "the L1 rows must be L1 hits"
    );
    println!("ops_count: {N} operations per path");
}
