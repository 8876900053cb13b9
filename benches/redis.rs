//! memstache on Redis beside the same work done by hand, and beside the raw clients, against a
//! `redis-server` this bench starts itself (testkit harness), all in one run.
//!
//! `cargo bench -p memstache-benches --bench redis` — prints one table of medians of 5 runs
//! (ops/s or keys/s) and the ratios the Redis issue sets as targets. For sequential-latency
//! rows (1 in flight) to mean anything, run client and server on one vCPU:
//! `taskset -c 0 cargo bench -p memstache-benches --bench redis` (the server inherits the
//! affinity). Set `MEMSTACHE_BENCH_RUNS` to change the number of runs and
//! `MEMSTACHE_BENCH_FILTER` to run only rows whose name contains it.
//!
//! Rows, one connection each, 1 KiB values, postcard, no compression or encryption:
//! * `fred` / `redis-rs` raw bytes `GET` / `SET`;
//! * hand-rolled on fred: postcard + raw `GET` / `SET` (what memstache does, minus memstache);
//! * memstache `get` / `set` over `RedisBackend` (fred), default `SlidingReads::Auto`, and `get`
//!   with `SlidingReads::Script` (every read through the Lua script);
//! * `get_many(100)` beside 100 single `get`s and raw `MGET` of 100 keys on both clients.
//!
//! This is not a criterion bench: it needs the ratios of rows measured in the same run, from the
//! same server, so it runs its own fixed-count loops and reports medians.

use std::future::Future;
use std::time::Instant;

use fred::prelude::{ClientLike, KeysInterface};
use futures::StreamExt;
use memstache::{EntryOptions, MemStache};
use memstache_redis::RedisBackend;
use memstache_testkit::redis::RedisServer;

const KEYS: usize = 1_000;
const BATCH: usize = 100;

/// A deterministic 1 KiB text value.
fn value() -> String {
    let mut s = String::with_capacity(1100);
    let mut seed = 42u64;
    while s.len() < 1024 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push_str(&format!("{:x} ", seed >> 24));
    }
    s.truncate(1024);
    s
}

/// CPU time (user + system) of this process — the client side: the server is a child process
/// with its own account. In clock ticks of 10 ms.
fn process_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is the state (field 3); utime and stime are fields 14 and 15
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

/// Runs `ops` calls of `f` with at most `inflight` at once; returns (calls per second of wall
/// time, client CPU µs per call).
async fn drive<F, Fut>(ops: usize, inflight: usize, f: F) -> (f64, f64)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    let cpu0 = process_cpu_ticks();
    let start = Instant::now();
    futures::stream::iter(0..ops)
        .for_each_concurrent(inflight, &f)
        .await;
    let wall = start.elapsed().as_secs_f64();
    let cpu_us = (process_cpu_ticks() - cpu0) as f64 * 10_000.0;
    (ops as f64 / wall, cpu_us / ops as f64)
}

struct Bench {
    rt: tokio::runtime::Runtime,
    runs: usize,
    rows: Vec<(String, &'static str, f64)>,
    /// Client CPU µs per call, by row name (median).
    cpu: std::collections::HashMap<String, f64>,
}

impl Bench {
    /// Median of `runs` measurements (after one warm-up) of `ops` calls at `inflight`,
    /// multiplied by `per_call` (keys per call for batch rows).
    fn row<F, Fut>(
        &mut self,
        name: &str,
        unit: &'static str,
        per_call: usize,
        ops: usize,
        inflight: usize,
        f: F,
    ) -> f64
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = ()>,
    {
        if std::env::var("MEMSTACHE_BENCH_FILTER").is_ok_and(|f| !name.contains(&f)) {
            return f64::NAN;
        }
        let mut xs: Vec<f64> = Vec::new();
        let mut cpus: Vec<f64> = Vec::new();
        self.rt.block_on(async {
            drive(ops / 4, inflight, &f).await;
            for _ in 0..self.runs {
                let (rate, cpu) = drive(ops, inflight, &f).await;
                xs.push(rate * per_call as f64);
                cpus.push(cpu / per_call as f64);
            }
        });
        xs.sort_by(f64::total_cmp);
        cpus.sort_by(f64::total_cmp);
        let median = xs[xs.len() / 2];
        let cpu = cpus[cpus.len() / 2];
        self.cpu.insert(name.to_owned(), cpu);
        println!(
            "{name:<46} {:>10.0} {unit} {cpu:>6.2} µs CPU/{}  (runs: {})",
            median,
            if per_call == 1 { "op" } else { "key" },
            xs.iter()
                .map(|x| format!("{:.0}k", x / 1000.0))
                .collect::<Vec<_>>()
                .join(" ")
        );
        self.rows.push((name.to_owned(), unit, median));
        median
    }
}

fn ratio(label: &str, a: f64, b: f64, target: Option<f64>) {
    let r = a / b;
    let verdict = match target {
        Some(t) if r >= t => format!("(target ≥ {t:.2}: met)"),
        Some(t) => format!("(target ≥ {t:.2}: NOT met)"),
        None => String::new(),
    };
    println!("{label:<62} {r:>5.2}× {verdict}");
}

fn main() {
    let runs = std::env::var("MEMSTACHE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = RedisServer::start();
    let url = server.url();
    let v = value();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("bench:{i}")).collect();
    let raw_value = postcard::to_allocvec(&v).expect("postcard");

    // --- clients
    let (fred, redisrs, cache, cache_script, cache_fred, cache_nt, backend, backend_fred) = rt
        .block_on(async {
            let fred = fred::prelude::Builder::from_config(
                fred::prelude::Config::from_url(&url).expect("fred url"),
            )
            .build()
            .expect("fred client");
            fred.init().await.expect("fred connect");
            let redisrs = redis::Client::open(url.as_str())
                .expect("redis-rs url")
                .get_multiplexed_async_connection()
                .await
                .expect("redis-rs connect");
            let backend = RedisBackend::connect(&url).await.expect("backend");
            let cache = MemStache::builder()
                .namespace("m")
                .backend(backend.clone())
                .build()
                .expect("cache");
            let backend_fred = RedisBackend::connect(&format!("{url}?client=fred"))
                .await
                .expect("backend");
            let cache_fred = MemStache::builder()
                .namespace("m")
                .backend(backend_fred.clone())
                .build()
                .expect("cache");
            let script_backend = RedisBackend::connect(&format!("{url}?sliding_reads=script"))
                .await
                .expect("backend");
            let cache_script = MemStache::builder()
                .namespace("m")
                .backend(script_backend)
                .build()
                .expect("cache");
            for k in &keys {
                let _: () = fred
                    .set(k.as_str(), raw_value.as_slice(), None, None, false)
                    .await
                    .expect("set");
                cache
                    .set(k, &v, EntryOptions::default())
                    .await
                    .expect("set");
            }
            let cache_nt = MemStache::builder()
                .namespace("m")
                .backend(backend.clone())
                .operation_timeout(None)
                .build()
                .expect("cache");
            (
                fred,
                redisrs,
                cache,
                cache_script,
                cache_fred,
                cache_nt,
                backend,
                backend_fred,
            )
        });

    let mut b = Bench {
        rt,
        runs,
        rows: Vec::new(),
        cpu: std::collections::HashMap::new(),
    };
    println!(
        "memstache on Redis: medians of {runs} runs, 1 KiB values, one connection per client\n"
    );
    let mut r = std::collections::HashMap::new();
    for inflight in [1usize, 64] {
        let ops = if inflight == 1 { 10_000 } else { 100_000 };
        let key = |i: usize| keys[i % KEYS].as_str();
        let n = |s: &str| format!("{s} @{inflight}");
        r.insert(
            n("fred GET"),
            b.row(&n("fred raw GET"), "ops/s", 1, ops, inflight, |i| {
                let fred = &fred;
                let k = key(i);
                async move {
                    let x: Option<bytes::Bytes> = fred.get(k).await.expect("get");
                    assert!(x.is_some());
                }
            }),
        );
        r.insert(
            n("redis-rs GET"),
            b.row(&n("redis-rs raw GET"), "ops/s", 1, ops, inflight, |i| {
                let mut c = redisrs.clone();
                let k = key(i);
                async move {
                    let x: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(k)
                        .query_async(&mut c)
                        .await
                        .expect("get");
                    assert!(x.is_some());
                }
            }),
        );
        r.insert(
            n("hand GET"),
            b.row(
                &n("hand-rolled get (postcard + fred GET)"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let fred = &fred;
                    let k = key(i);
                    async move {
                        let x: Option<bytes::Bytes> = fred.get(k).await.expect("get");
                        let s: String = postcard::from_bytes(&x.expect("hit")).expect("decode");
                        std::hint::black_box(s);
                    }
                },
            ),
        );
        r.insert(
            n("memstache get"),
            b.row(
                &n("memstache get on redis-rs"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let cache = &cache;
                    let k = key(i);
                    async move {
                        let s: Option<String> = cache.get(k).await.expect("get");
                        assert!(s.is_some());
                    }
                },
            ),
        );
        r.insert(
            n("backend get"),
            b.row(
                &n("RedisBackend::get on redis-rs (raw Backend, bytes)"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let backend = &backend;
                    let k = key(i);
                    async move {
                        use memstache_core::raw::Backend;
                        let x = backend.get(k).await.expect("get");
                        assert!(x.is_some());
                    }
                },
            ),
        );
        r.insert(
            n("backend get fred"),
            b.row(
                &n("RedisBackend::get on fred (raw Backend, bytes)"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let backend = &backend_fred;
                    let k = key(i);
                    async move {
                        use memstache_core::raw::Backend;
                        let x = backend.get(k).await.expect("get");
                        assert!(x.is_some());
                    }
                },
            ),
        );
        r.insert(
            n("memstache get fred"),
            b.row(
                &n("memstache get on fred"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let cache = &cache_fred;
                    let k = key(i);
                    async move {
                        let s: Option<String> = cache.get(k).await.expect("get");
                        assert!(s.is_some());
                    }
                },
            ),
        );
        r.insert(
            n("hand GET rr"),
            b.row(
                &n("hand-rolled get (postcard + redis-rs GET)"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let mut c = redisrs.clone();
                    let k = key(i);
                    async move {
                        let x: Option<Vec<u8>> = redis::cmd("GET")
                            .arg(k)
                            .query_async(&mut c)
                            .await
                            .expect("get");
                        let s: String = postcard::from_bytes(&x.expect("hit")).expect("decode");
                        std::hint::black_box(s);
                    }
                },
            ),
        );
        r.insert(
            n("memstache get nt"),
            b.row(
                &n("memstache get on redis-rs, no operation_timeout"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let cache = &cache_nt;
                    let k = key(i);
                    async move {
                        let s: Option<String> = cache.get(k).await.expect("get");
                        assert!(s.is_some());
                    }
                },
            ),
        );
        r.insert(
            n("memstache get script"),
            b.row(
                &n("memstache get on redis-rs, SlidingReads::Script"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let cache = &cache_script;
                    let k = key(i);
                    async move {
                        let s: Option<String> = cache.get(k).await.expect("get");
                        assert!(s.is_some());
                    }
                },
            ),
        );
        r.insert(
            n("fred SET"),
            b.row(&n("fred raw SET"), "ops/s", 1, ops, inflight, |i| {
                let fred = &fred;
                let k = format!("w:{}", i % KEYS);
                let val = raw_value.as_slice();
                async move {
                    let _: () = fred.set(k, val, None, None, false).await.expect("set");
                }
            }),
        );
        r.insert(
            n("redis-rs SET"),
            b.row(&n("redis-rs raw SET"), "ops/s", 1, ops, inflight, |i| {
                let mut c = redisrs.clone();
                let k = format!("w:{}", i % KEYS);
                let val = raw_value.as_slice();
                async move {
                    let _: () = redis::cmd("SET")
                        .arg(k)
                        .arg(val)
                        .query_async(&mut c)
                        .await
                        .expect("set");
                }
            }),
        );
        r.insert(
            n("hand SET"),
            b.row(
                &n("hand-rolled set (postcard + fred SET)"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let fred = &fred;
                    let k = format!("w:{}", i % KEYS);
                    let v = &v;
                    async move {
                        let bytes = postcard::to_allocvec(v).expect("encode");
                        let _: () = fred.set(k, bytes, None, None, false).await.expect("set");
                    }
                },
            ),
        );
        r.insert(
            n("memstache set"),
            b.row(
                &n("memstache set on redis-rs"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let cache = &cache;
                    let k = format!("w:{}", i % KEYS);
                    let v = &v;
                    async move {
                        cache
                            .set(&k, v, EntryOptions::default())
                            .await
                            .expect("set");
                    }
                },
            ),
        );
        r.insert(
            n("backend set"),
            b.row(
                &n("RedisBackend::set on redis-rs (raw Backend, bytes)"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let backend = &backend;
                    let k = format!("w:{}", i % KEYS);
                    let val = bytes::Bytes::copy_from_slice(&raw_value);
                    async move {
                        use memstache_core::raw::{Backend, Expiry};
                        backend.set(&k, val, Expiry::NEVER).await.expect("set");
                    }
                },
            ),
        );
        r.insert(
            n("memstache set fred"),
            b.row(
                &n("memstache set on fred"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let cache = &cache_fred;
                    let k = format!("w:{}", i % KEYS);
                    let v = &v;
                    async move {
                        cache
                            .set(&k, v, EntryOptions::default())
                            .await
                            .expect("set");
                    }
                },
            ),
        );
        r.insert(
            n("hand SET rr"),
            b.row(
                &n("hand-rolled set (postcard + redis-rs SET)"),
                "ops/s",
                1,
                ops,
                inflight,
                |i| {
                    let mut c = redisrs.clone();
                    let k = format!("w:{}", i % KEYS);
                    let v = &v;
                    async move {
                        let bytes = postcard::to_allocvec(v).expect("encode");
                        let _: () = redis::cmd("SET")
                            .arg(k)
                            .arg(bytes)
                            .query_async(&mut c)
                            .await
                            .expect("set");
                    }
                },
            ),
        );
        println!();
    }

    // --- batches of 100 keys, 8 batches in flight
    let batch = |i: usize| {
        let start = (i * BATCH) % KEYS;
        &keys[start..start + BATCH]
    };
    let batches = 2_000;
    let many_fred = b.row(
        "memstache get_many(100) on fred @8",
        "keys/s",
        BATCH,
        batches,
        8,
        |i| {
            let cache = &cache_fred;
            let ks = batch(i);
            async move {
                let xs: Vec<Option<String>> = cache.get_many(ks).await.expect("get_many");
                assert!(xs.iter().all(Option::is_some));
            }
        },
    );
    let many = b.row(
        "memstache get_many(100) on redis-rs @8",
        "keys/s",
        BATCH,
        batches,
        8,
        |i| {
            let cache = &cache;
            let ks = batch(i);
            async move {
                let xs: Vec<Option<String>> = cache.get_many(ks).await.expect("get_many");
                assert!(xs.iter().all(Option::is_some));
            }
        },
    );
    let singles = b.row(
        "memstache 100 × get on redis-rs (100 in flight) @8",
        "keys/s",
        BATCH,
        batches / 4,
        8,
        |i| {
            let cache = &cache;
            let ks = batch(i);
            async move {
                futures::stream::iter(ks)
                    .for_each_concurrent(BATCH, |k| async move {
                        let s: Option<String> = cache.get(k).await.expect("get");
                        assert!(s.is_some());
                    })
                    .await;
            }
        },
    );
    let hand_mget = b.row(
        "hand-rolled MGET(100) + postcard, redis-rs @8",
        "keys/s",
        BATCH,
        batches,
        8,
        |i| {
            let mut c = redisrs.clone();
            let ks = batch(i);
            async move {
                let xs: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(ks)
                    .query_async(&mut c)
                    .await
                    .expect("mget");
                for x in xs {
                    let s: String = postcard::from_bytes(&x.expect("hit")).expect("decode");
                    std::hint::black_box(s);
                }
            }
        },
    );
    let fred_mget = b.row("fred raw MGET(100) @8", "keys/s", BATCH, batches, 8, |i| {
        let fred = &fred;
        let ks: Vec<String> = batch(i).to_vec();
        async move {
            let xs: Vec<Option<bytes::Bytes>> = fred.mget(ks).await.expect("mget");
            assert_eq!(xs.len(), BATCH);
        }
    });
    let rr_mget = b.row(
        "redis-rs raw MGET(100) @8",
        "keys/s",
        BATCH,
        batches,
        8,
        |i| {
            let mut c = redisrs.clone();
            let ks = batch(i);
            async move {
                let xs: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(ks)
                    .query_async(&mut c)
                    .await
                    .expect("mget");
                assert_eq!(xs.len(), BATCH);
            }
        },
    );

    println!("\nclient CPU per op (64 in flight): ratio = CPU-bound throughput ratio");
    let c = |s: &str| b.cpu.get(s).copied().unwrap_or(f64::NAN);
    for (label, a, bb) in [
        (
            "memstache get vs hand-rolled get, redis-rs",
            "memstache get on redis-rs @64",
            "hand-rolled get (postcard + redis-rs GET) @64",
        ),
        (
            "memstache get vs hand-rolled get, fred",
            "memstache get on fred @64",
            "hand-rolled get (postcard + fred GET) @64",
        ),
        (
            "memstache set vs hand-rolled set, redis-rs",
            "memstache set on redis-rs @64",
            "hand-rolled set (postcard + redis-rs SET) @64",
        ),
        (
            "memstache set vs hand-rolled set, fred",
            "memstache set on fred @64",
            "hand-rolled set (postcard + fred SET) @64",
        ),
        (
            "memstache get (redis-rs) vs redis-rs raw GET",
            "memstache get on redis-rs @64",
            "redis-rs raw GET @64",
        ),
        (
            "memstache get (fred) vs fred raw GET",
            "memstache get on fred @64",
            "fred raw GET @64",
        ),
        (
            "RedisBackend::get vs raw GET, redis-rs",
            "RedisBackend::get on redis-rs (raw Backend, bytes) @64",
            "redis-rs raw GET @64",
        ),
        (
            "RedisBackend::get vs raw GET, fred",
            "RedisBackend::get on fred (raw Backend, bytes) @64",
            "fred raw GET @64",
        ),
        (
            "fred raw GET vs redis-rs raw GET",
            "fred raw GET @64",
            "redis-rs raw GET @64",
        ),
        (
            "fred raw SET vs redis-rs raw SET",
            "fred raw SET @64",
            "redis-rs raw SET @64",
        ),
        (
            "memstache get_many(100) (redis-rs) vs redis-rs MGET, per key",
            "memstache get_many(100) on redis-rs @8",
            "redis-rs raw MGET(100) @8",
        ),
        (
            "memstache get_many(100) (fred) vs fred MGET, per key",
            "memstache get_many(100) on fred @8",
            "fred raw MGET(100) @8",
        ),
    ] {
        println!(
            "{label:<66} {:>5.2}×  ({:.2} vs {:.2} µs)",
            c(bb) / c(a),
            c(a),
            c(bb)
        );
    }

    println!("\nratios of wall-clock throughput (64 in flight unless noted)");
    let g = |s: &str| r.get(s).copied().unwrap_or(f64::NAN);
    ratio(
        "memstache get / hand-rolled get, redis-rs",
        g("memstache get @64"),
        g("hand GET rr @64"),
        Some(0.95),
    );
    ratio(
        "memstache get / hand-rolled get, fred",
        g("memstache get fred @64"),
        g("hand GET @64"),
        Some(0.95),
    );
    ratio(
        "memstache set / hand-rolled set, redis-rs",
        g("memstache set @64"),
        g("hand SET rr @64"),
        Some(0.95),
    );
    ratio(
        "memstache set / hand-rolled set, fred",
        g("memstache set fred @64"),
        g("hand SET @64"),
        Some(0.95),
    );
    let fastest_get = g("fred GET @64").max(g("redis-rs GET @64"));
    ratio(
        "memstache get (redis-rs) / raw GET of the fastest client",
        g("memstache get @64"),
        fastest_get,
        Some(0.8),
    );
    ratio(
        "memstache get (fred) / raw GET of the fastest client",
        g("memstache get fred @64"),
        fastest_get,
        Some(0.8),
    );
    ratio(
        "fred GET / redis-rs GET",
        g("fred GET @64"),
        g("redis-rs GET @64"),
        None,
    );
    ratio(
        "fred SET / redis-rs SET",
        g("fred SET @64"),
        g("redis-rs SET @64"),
        None,
    );
    ratio(
        "memstache get: Auto / Script read path (redis-rs)",
        g("memstache get @64"),
        g("memstache get script @64"),
        None,
    );
    let fastest_mget = fred_mget.max(rr_mget);
    ratio(
        "memstache get_many(100) (redis-rs) / fastest raw MGET, keys/s",
        many,
        fastest_mget,
        Some(0.9),
    );
    ratio(
        "memstache get_many(100) (fred) / fastest raw MGET, keys/s",
        many_fred,
        fastest_mget,
        Some(0.9),
    );
    ratio(
        "memstache get_many(100) / 100 single gets (redis-rs)",
        many,
        singles,
        None,
    );
    ratio("fred MGET / redis-rs MGET", fred_mget, rr_mget, None);
    ratio(
        "memstache get_many(100) (redis-rs) / hand-rolled MGET + postcard",
        many,
        hand_mget,
        None,
    );
    ratio(
        "memstache get / hand-rolled get @1, redis-rs (latency)",
        g("memstache get @1"),
        g("hand GET rr @1"),
        None,
    );
    drop(server);
}
