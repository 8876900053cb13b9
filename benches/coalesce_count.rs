//! Exact, repeatable instruction counts of one Redis operation at 64 in flight (or
//! `COALESCE_INFLIGHT`), for callgrind:
//! raw redis-rs `GET`/`SET`, the checked hand-rolled path (postcard + CRC-32 + timeout), and
//! memstache `get`/`set` with coalescing off and on. Each path runs `N` operations, 64 at a
//! time, inside its own `#[inline(never)]` function on a current-thread runtime (every task on
//! one thread, so no cross-thread wake-ups blur the count); the function's inclusive count
//! divided by `N` is the client's cost of one operation (the server is another process).
//!
//! ```text
//! cargo bench -p memstache-benches --bench coalesce_count --no-run
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/deps/coalesce_count-<hash>
//! callgrind_annotate --inclusive=yes cg.out | grep coalesce_count::
//! ```
//!
//! `COALESCE_URL_EXTRA` appends URL parameters to memstache's backends (`&tcp_nodelay=false`,
//! `&pipeline_buffer_size=128`). Run without valgrind it checks every path and prints the
//! coalescer's batch sizes.

use std::hint::black_box;
use std::time::Duration;

use futures::StreamExt;
use memstache::{EntryOptions, MemStache};
use memstache_harness::redis::{RedisCluster, RedisServer};
use memstache_redis::RedisBackend;
use tokio::runtime::Runtime;

/// Operations per path.
const N: usize = 20_000;
/// Distinct keys.
const KEYS: usize = 1_000;
/// Operations in flight: 64, or `COALESCE_INFLIGHT` (1 counts the direct path, where
/// coalescing can only add its bookkeeping).
fn inflight() -> usize {
    std::env::var("COALESCE_INFLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// More URL parameters for memstache's backends, from `COALESCE_URL_EXTRA` (for example
/// `&tcp_nodelay=false` or `&pipeline_buffer_size=128`).
fn extra() -> String {
    std::env::var("COALESCE_URL_EXTRA").unwrap_or_default()
}

fn value() -> String {
    "x".repeat(1024)
}

fn checked_encode(key: &str, value: &String) -> Vec<u8> {
    let mut out = postcard::to_allocvec(value).expect("postcard");
    let mut h = crc32fast::Hasher::new();
    h.update(key.as_bytes());
    h.update(&out);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out
}

fn checked_decode(key: &str, bytes: &[u8]) -> String {
    let (body, sum) = bytes.split_at(bytes.len().checked_sub(4).expect("has a checksum"));
    let mut h = crc32fast::Hasher::new();
    h.update(key.as_bytes());
    h.update(body);
    assert_eq!(h.finalize().to_le_bytes(), sum, "checksum");
    postcard::from_bytes(body).expect("decode")
}

const TIMEOUT: Duration = memstache_core::DEFAULT_DISTRIBUTED_TIMEOUT;

async fn concurrently<F, Fut>(f: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    futures::stream::iter(0..N)
        .for_each_concurrent(inflight(), f)
        .await;
}

#[inline(never)]
fn raw_get(rt: &Runtime, c: &redis::aio::MultiplexedConnection, keys: &[String]) {
    rt.block_on(concurrently(|i| {
        let mut c = c.clone();
        let k = &keys[i % KEYS];
        async move {
            let v: Option<Vec<u8>> = redis::cmd("GET")
                .arg(k)
                .query_async(&mut c)
                .await
                .expect("get");
            black_box(v.expect("hit"));
        }
    }));
}

/// The floor for coalesced reads: raw redis-rs pipelines of 64 bounded `GETRANGE`s, one after
/// another (what a batch costs the client without memstache: no envelope, no decode, no
/// per-caller channel).
#[inline(never)]
fn raw_pipelined_getrange(rt: &Runtime, c: &redis::aio::MultiplexedConnection, keys: &[String]) {
    rt.block_on(async {
        let mut c = c.clone();
        for start in (0..N).step_by(64) {
            let mut p = redis::pipe();
            for i in start..(start + 64).min(N) {
                p.cmd("GETRANGE").arg(&keys[i % KEYS]).arg(0).arg(16_778_239);
            }
            let vs: Vec<Vec<u8>> = p.query_async(&mut c).await.expect("pipeline");
            black_box(vs);
        }
    });
}

#[inline(never)]
fn checked_get(rt: &Runtime, c: &redis::aio::MultiplexedConnection, keys: &[String]) {
    rt.block_on(concurrently(|i| {
        let mut c = c.clone();
        let k = &keys[i % KEYS];
        async move {
            let mut cmd = redis::cmd("GET");
            cmd.arg(k);
            let get = cmd.query_async::<Option<Vec<u8>>>(&mut c);
            let v = tokio::time::timeout(TIMEOUT, get)
                .await
                .expect("in time")
                .expect("get");
            black_box(checked_decode(k, &v.expect("hit")));
        }
    }));
}

#[inline(never)]
fn cluster_raw_get(rt: &Runtime, c: &redis::cluster_async::ClusterConnection, keys: &[String]) {
    rt.block_on(concurrently(|i| {
        let mut c = c.clone();
        let k = &keys[i % KEYS];
        async move {
            let v: Option<Vec<u8>> = redis::cmd("GET")
                .arg(k)
                .query_async(&mut c)
                .await
                .expect("get");
            black_box(v.expect("hit"));
        }
    }));
}

#[inline(never)]
fn cluster_memstache_get(rt: &Runtime, cache: &MemStache, keys: &[String]) {
    cache_get(rt, cache, keys, 5);
}
#[inline(never)]
fn cluster_memstache_get_coalesced(rt: &Runtime, cache: &MemStache, keys: &[String]) {
    cache_get(rt, cache, keys, 6);
}

#[inline(never)]
fn raw_set(rt: &Runtime, c: &redis::aio::MultiplexedConnection, keys: &[String], v: &[u8]) {
    rt.block_on(concurrently(|i| {
        let mut c = c.clone();
        let k = &keys[i % KEYS];
        async move {
            let _: () = redis::cmd("SET")
                .arg(k)
                .arg(v)
                .query_async(&mut c)
                .await
                .expect("set");
        }
    }));
}

#[inline(never)]
fn checked_set(rt: &Runtime, c: &redis::aio::MultiplexedConnection, keys: &[String], v: &String) {
    rt.block_on(concurrently(|i| {
        let mut c = c.clone();
        let k = &keys[i % KEYS];
        async move {
            let bytes = checked_encode(k, v);
            let mut cmd = redis::cmd("SET");
            cmd.arg(k).arg(bytes);
            let set = cmd.query_async::<()>(&mut c);
            tokio::time::timeout(TIMEOUT, set)
                .await
                .expect("in time")
                .expect("set");
        }
    }));
}

fn cache_get(rt: &Runtime, cache: &MemStache, keys: &[String], path: u8) {
    black_box(path);
    rt.block_on(concurrently(|i| {
        let k = &keys[i % KEYS];
        async move {
            let v: Option<String> = cache.get(k).await.expect("get");
            black_box(v.expect("hit"));
        }
    }));
}

fn cache_set(rt: &Runtime, cache: &MemStache, keys: &[String], v: &String, path: u8) {
    black_box(path);
    rt.block_on(concurrently(|i| {
        let k = &keys[i % KEYS];
        async move {
            cache.set(k, v, EntryOptions::default()).await.expect("set");
        }
    }));
}

#[inline(never)]
fn memstache_get(rt: &Runtime, cache: &MemStache, keys: &[String]) {
    cache_get(rt, cache, keys, 1);
}
#[inline(never)]
fn memstache_get_coalesced(rt: &Runtime, cache: &MemStache, keys: &[String]) {
    cache_get(rt, cache, keys, 2);
}
#[inline(never)]
fn memstache_set(rt: &Runtime, cache: &MemStache, keys: &[String], v: &String) {
    cache_set(rt, cache, keys, v, 3);
}
#[inline(never)]
fn memstache_set_coalesced(rt: &Runtime, cache: &MemStache, keys: &[String], v: &String) {
    cache_set(rt, cache, keys, v, 4);
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = RedisServer::start();
    let url = server.url();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("k:{i}")).collect();
    let checked_keys: Vec<String> = keys.iter().map(|k| format!("c:{k}")).collect();
    let v = value();
    let raw_value = postcard::to_allocvec(&v).expect("postcard");
    let (conn, plain, coalesced, coalescing) = rt.block_on(async {
        let conn = redis::Client::open(url.as_str())
            .expect("url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect");
        let cache = |b: RedisBackend| {
            MemStache::builder()
                .namespace("m")
                .backend(b)
                .build()
                .expect("cache")
        };
        let plain = RedisBackend::connect(&format!("{url}?coalesce=false{}", extra()))
            .await
            .expect("redis");
        let co = RedisBackend::connect(&format!("{url}?coalesce=true{}", extra()))
            .await
            .expect("redis");
        (conn, cache(plain), cache(co.clone()), co)
    });
    // warm-up: every key written, every path run once
    raw_set(&rt, &conn, &keys, &raw_value);
    checked_set(&rt, &conn, &checked_keys, &v);
    cache_set(&rt, &plain, &keys, &v, 0);
    cache_get(&rt, &coalesced, &keys, 0);

    raw_get(&rt, &conn, &keys);
    raw_pipelined_getrange(&rt, &conn, &keys);
    checked_get(&rt, &conn, &checked_keys);
    memstache_get(&rt, &plain, &keys);
    memstache_get_coalesced(&rt, &coalesced, &keys);
    raw_set(&rt, &conn, &keys, &raw_value);
    checked_set(&rt, &conn, &checked_keys, &v);
    memstache_set(&rt, &plain, &keys, &v);
    memstache_set_coalesced(&rt, &coalesced, &keys, &v);
    drop(server);

    let cluster = RedisCluster::start();
    let curl = cluster.url();
    let (cconn, cplain, ccoalesced, ccoalescing) = rt.block_on(async {
        let nodes: Vec<String> = cluster
            .nodes()
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port()))
            .collect();
        let conn = redis::cluster::ClusterClient::new(nodes)
            .expect("cluster client")
            .get_async_connection()
            .await
            .expect("connect");
        let cache = |b: RedisBackend| {
            MemStache::builder()
                .namespace("m")
                .backend(b)
                .build()
                .expect("cache")
        };
        let plain = RedisBackend::connect(&format!("{curl}&coalesce=false{}", extra()))
            .await
            .expect("redis");
        let co = RedisBackend::connect(&format!("{curl}&coalesce=true{}", extra()))
            .await
            .expect("redis");
        (conn, cache(plain), cache(co.clone()), co)
    });
    rt.block_on(concurrently(|i| {
        let mut c = cconn.clone();
        let k = &keys[i % KEYS];
        let v = raw_value.as_slice();
        async move {
            let _: () = redis::cmd("SET")
                .arg(k)
                .arg(v)
                .query_async(&mut c)
                .await
                .expect("set");
        }
    }));
    cache_set(&rt, &cplain, &keys, &v, 0);
    cache_get(&rt, &ccoalesced, &keys, 0);
    cluster_raw_get(&rt, &cconn, &keys);
    cluster_memstache_get(&rt, &cplain, &keys);
    cluster_memstache_get_coalesced(&rt, &ccoalesced, &keys);
    let cs = ccoalescing.coalesce_stats();
    println!(
        "cluster coalescing: {} alone, {} batches of {:.1}",
        cs.direct,
        cs.batches,
        cs.batched as f64 / cs.batches.max(1) as f64
    );

    let s = coalescing.coalesce_stats();
    println!(
        "coalesce_count: {N} operations per path, {} in flight; coalescing: {} alone, {} batches of {:.1}",
        inflight(),
        s.direct,
        s.batches,
        s.batched as f64 / s.batches.max(1) as f64
    );
}
