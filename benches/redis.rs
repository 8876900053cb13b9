//! memstache on Redis beside the same work done by hand, and beside the raw clients, against a
//! `redis-server` this bench starts itself (testkit harness), all in one run.
//!
//! `cargo bench -p memstache-benches --bench redis` — prints one table of medians (ops/s or
//! keys/s, and client CPU per operation) and the ratios the Redis issue sets as targets. For
//! sequential-latency rows (1 in flight) to mean anything, run client and server on one vCPU:
//! `taskset -c 0 cargo bench -p memstache-benches --bench redis` (the server inherits the
//! affinity). Set `MEMSTACHE_BENCH_RUNS` to change the number of rounds and
//! `MEMSTACHE_BENCH_FILTER` to run only rows whose name contains it.
//!
//! Rows, one connection each, 1 KiB values, postcard, no compression or encryption:
//! * `fred` / `redis-rs` raw bytes `GET` / `SET`;
//! * hand-rolled: postcard + raw `GET` / `SET` on each client (what memstache does, minus
//!   memstache);
//! * `RedisBackend` through the raw `Backend` trait, and memstache `get` / `set` over it, on
//!   each client; `get` also without the operation timeout and with `SlidingReads::Script`;
//! * `get_many(100)` beside 100 single `get`s, hand-rolled `MGET` + postcard, and raw `MGET`.
//!
//! Not a criterion bench: the targets are ratios of rows that must come from the same run and
//! the same server. Rows are measured in **interleaved rounds** (every row of a group once per
//! round, in a rotating order), so a ratio is the median of per-round ratios of measurements
//! taken seconds apart: on a shared VM whose speed drifts by ±30 % over a minute, running one
//! row's five runs and then the other's would measure the drift, not the code.

use std::collections::HashMap;
use std::future::Future;
use std::time::Instant;

use fred::prelude::{ClientLike, KeysInterface};
use futures::StreamExt;
use memstache::{EntryOptions, MemStache};
use memstache_core::raw::{Backend, Expiry};
use memstache_harness::redis::RedisServer;
use memstache_redis::RedisBackend;
use tokio::runtime::Runtime;

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

/// Runs `ops` calls of `f` with at most `inflight` at once; returns (wall seconds, client CPU
/// ticks).
async fn drive<F, Fut>(ops: usize, inflight: usize, f: F) -> (f64, u64)
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
    (wall, process_cpu_ticks() - cpu0)
}

/// The `i`-th batch of `BATCH` keys of `keys` (wrapping around).
fn window(keys: &[String], i: usize) -> &[String] {
    let start = (i * BATCH) % KEYS;
    &keys[start..start + BATCH]
}

/// redis-rs `GET key`, raw bytes (the raw and hand-rolled rows share it).
async fn rr_get(mut c: redis::aio::MultiplexedConnection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("get")
}

/// redis-rs `MGET keys…`, raw bytes.
async fn rr_mget(
    mut c: redis::aio::MultiplexedConnection,
    keys: &[String],
) -> Vec<Option<Vec<u8>>> {
    redis::cmd("MGET")
        .arg(keys)
        .query_async(&mut c)
        .await
        .expect("mget")
}

/// The operation timeout a careful hand-rolled cache would put around each call: memstache's
/// default for distributed backends.
const CHECKED_TIMEOUT: std::time::Duration = memstache_core::DEFAULT_DISTRIBUTED_TIMEOUT;

/// What a careful hand-rolled cache stores: the postcard bytes and a CRC-32 over storage key
/// and bytes (so a corrupted or misplaced value is never returned), as memstache's
/// plaintext envelope does, minus the header.
fn checked_encode(key: &str, value: &String) -> Vec<u8> {
    let mut out = postcard::to_allocvec(value).expect("postcard");
    let mut h = crc32fast::Hasher::new();
    h.update(key.as_bytes());
    h.update(&out);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out
}

/// Checks and decodes what [`checked_encode`] stored at `key`.
fn checked_decode(key: &str, bytes: &[u8]) -> String {
    let (body, sum) = bytes.split_at(bytes.len().checked_sub(4).expect("has a checksum"));
    let mut h = crc32fast::Hasher::new();
    h.update(key.as_bytes());
    h.update(body);
    assert_eq!(h.finalize().to_le_bytes(), sum, "checksum");
    postcard::from_bytes(body).expect("decode")
}

/// A `MemStache::get` row over the bench keys (every read a hit).
fn get_row<'a>(
    name: String,
    ops: usize,
    inflight: usize,
    cache: &'a MemStache,
    keys: &'a [String],
) -> Row<'a> {
    row(name, "ops/s", 1, ops, inflight, move |i| {
        let k = keys[i % KEYS].as_str();
        async move {
            let s: Option<String> = cache.get(k).await.expect("get");
            assert!(s.is_some());
        }
    })
}

/// A row's workload: runs `n` calls on the runtime; (wall seconds, client CPU ticks).
type Workload<'a> = Box<dyn FnMut(&Runtime, usize) -> (f64, u64) + 'a>;

/// One row: a name and its workload. The workload is boxed per *run* (one dynamic
/// call per few hundred milliseconds), never per operation, so every row pays the same
/// harness cost.
struct Row<'a> {
    name: String,
    unit: &'static str,
    per_call: usize,
    ops: usize,
    run: Workload<'a>,
}

fn row<'a, F, Fut>(
    name: impl Into<String>,
    unit: &'static str,
    per_call: usize,
    ops: usize,
    inflight: usize,
    f: F,
) -> Row<'a>
where
    F: Fn(usize) -> Fut + 'a,
    Fut: Future<Output = ()> + 'a,
{
    Row {
        name: name.into(),
        unit,
        per_call,
        ops,
        run: Box::new(move |rt: &Runtime, n: usize| rt.block_on(drive(n, inflight, &f))),
    }
}

/// What a row measured: throughput per round (units/s: calls × `per_call`), client CPU µs per
/// unit over all rounds.
#[derive(Debug, Clone)]
struct Measured {
    rates: Vec<f64>,
    cpu_us: f64,
}

impl Measured {
    fn median(&self) -> f64 {
        median(&self.rates)
    }
}

fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Bench {
    rt: Runtime,
    runs: usize,
    filter: Option<String>,
    results: HashMap<String, Measured>,
}

impl Bench {
    /// Measures `rows` in interleaved rounds: a warm-up of each, then `runs` rounds that run
    /// every row once, starting one row later each round.
    fn group(&mut self, title: &str, rows: Vec<Row<'_>>) {
        let mut rows: Vec<Row<'_>> = rows
            .into_iter()
            .filter(|r| self.filter.as_ref().is_none_or(|f| r.name.contains(f)))
            .collect();
        if rows.is_empty() {
            return;
        }
        println!("{title}");
        let mut rates = vec![Vec::new(); rows.len()];
        let mut ticks = vec![0u64; rows.len()];
        for r in rows.iter_mut() {
            (r.run)(&self.rt, r.ops / 4);
        }
        for round in 0..self.runs {
            for j in 0..rows.len() {
                let i = (j + round) % rows.len();
                let r = &mut rows[i];
                let (wall, t) = (r.run)(&self.rt, r.ops);
                rates[i].push(r.ops as f64 * r.per_call as f64 / wall);
                ticks[i] += t;
            }
        }
        for (i, r) in rows.iter().enumerate() {
            let units = (r.ops * r.per_call * self.runs) as f64;
            let m = Measured {
                rates: rates[i].clone(),
                cpu_us: ticks[i] as f64 * 10_000.0 / units,
            };
            println!(
                "  {:<58} {:>9.0} {} {:>5.2} µs CPU/{}  (rounds: {})",
                r.name,
                m.median(),
                r.unit,
                m.cpu_us,
                if r.per_call == 1 { "op" } else { "key" },
                m.rates
                    .iter()
                    .map(|x| format!("{:.0}k", x / 1000.0))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            self.results.insert(r.name.clone(), m);
        }
        println!();
    }

    /// Prints `a / b`: the median of per-round throughput ratios (and the ratio of client CPU
    /// per unit, `b / a`: the CPU-bound throughput ratio), against an optional target.
    fn ratio(&self, label: &str, a: &str, b: &str, target: Option<f64>) {
        let (Some(x), Some(y)) = (self.results.get(a), self.results.get(b)) else {
            return;
        };
        let per_round: Vec<f64> = x.rates.iter().zip(&y.rates).map(|(p, q)| p / q).collect();
        let r = median(&per_round);
        let verdict = match target {
            Some(t) if r >= t => format!("target ≥ {t:.2}: met"),
            Some(t) => format!("target ≥ {t:.2}: NOT met"),
            None => String::new(),
        };
        println!(
            "{label:<66} {r:>5.2}×  CPU {:>5.2}×  (per round: {})  {verdict}",
            y.cpu_us / x.cpu_us,
            per_round
                .iter()
                .map(|p| format!("{p:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }

    /// The name of whichever of `a`, `b` had the higher median throughput.
    fn faster<'n>(&self, a: &'n str, b: &'n str) -> &'n str {
        let m = |n: &str| self.results.get(n).map_or(f64::NAN, Measured::median);
        if m(a) >= m(b) { a } else { b }
    }
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

    // --- clients: raw fred and redis-rs, and RedisBackend + MemStache on each
    let (fred, redisrs, backends, caches, cache_nt, cache_script, (coalesced, coalesced_backends)) =
        rt.block_on(async {
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
            let cache_on = |backend: RedisBackend| {
                MemStache::builder()
                    .namespace("m")
                    .backend(backend)
                    .build()
                    .expect("cache")
            };
            let rr = RedisBackend::connect(&format!("{url}?coalesce=false"))
                .await
                .expect("backend");
            let fr = RedisBackend::connect(&format!("{url}?client=fred&coalesce=false"))
                .await
                .expect("backend");
            let script =
                RedisBackend::connect(&format!("{url}?sliding_reads=script&coalesce=false"))
                    .await
                    .expect("backend");
            let mut coalesced = Vec::new();
            let mut coalesced_backends = Vec::new();
            for client in ["fred", "redis-rs"] {
                let b = RedisBackend::connect(&format!("{url}?client={client}&coalesce=true"))
                    .await
                    .expect("backend");
                coalesced_backends.push((client, b.clone()));
                coalesced.push((client, cache_on(b)));
            }
            let caches = [
                ("fred", cache_on(fr.clone())),
                ("redis-rs", cache_on(rr.clone())),
            ];
            for k in &keys {
                let _: () = fred
                    .set(k.as_str(), raw_value.as_slice(), None, None, false)
                    .await
                    .expect("set");
                let ck = format!("c:{k}");
                let _: () = fred
                    .set(ck.as_str(), checked_encode(&ck, &v), None, None, false)
                    .await
                    .expect("set");
                caches[1]
                    .1
                    .set(k, &v, EntryOptions::default())
                    .await
                    .expect("set");
            }
            let cache_nt = MemStache::builder()
                .namespace("m")
                .backend(rr.clone())
                .operation_timeout(None)
                .build()
                .expect("cache");
            (
                fred,
                redisrs,
                [("fred", fr), ("redis-rs", rr)],
                caches,
                cache_nt,
                cache_on(script),
                (coalesced, coalesced_backends),
            )
        });

    let mut b = Bench {
        rt,
        runs,
        filter: std::env::var("MEMSTACHE_BENCH_FILTER").ok(),
        results: HashMap::new(),
    };
    println!(
        "memstache on Redis: {runs} interleaved rounds, 1 KiB values, one connection per client\n"
    );
    let key = |i: usize| keys[i % KEYS].as_str();
    let wkey = |i: usize| format!("w:{}", i % KEYS);
    for inflight in [1usize, 64] {
        let ops = if inflight == 1 { 10_000 } else { 100_000 };
        let n = |s: &str| format!("{s} @{inflight}");
        let (fred, redisrs, v, raw_value) = (&fred, &redisrs, &v, &raw_value);

        // --- reads
        let mut rows = vec![
            row(n("fred raw GET"), "ops/s", 1, ops, inflight, move |i| {
                let k = key(i);
                async move {
                    let x: Option<bytes::Bytes> = fred.get(k).await.expect("get");
                    assert!(x.is_some());
                }
            }),
            row(n("redis-rs raw GET"), "ops/s", 1, ops, inflight, move |i| {
                let c = redisrs.clone();
                let k = key(i);
                async move {
                    assert!(rr_get(c, k).await.is_some());
                }
            }),
            row(
                n("hand-rolled get (postcard + fred GET)"),
                "ops/s",
                1,
                ops,
                inflight,
                move |i| {
                    let k = key(i);
                    async move {
                        let x: Option<bytes::Bytes> = fred.get(k).await.expect("get");
                        let s: String = postcard::from_bytes(&x.expect("hit")).expect("decode");
                        std::hint::black_box(s);
                    }
                },
            ),
            row(
                n("hand-rolled get (postcard + redis-rs GET)"),
                "ops/s",
                1,
                ops,
                inflight,
                move |i| {
                    let c = redisrs.clone();
                    let k = key(i);
                    async move {
                        let x = rr_get(c, k).await;
                        let s: String = postcard::from_bytes(&x.expect("hit")).expect("decode");
                        std::hint::black_box(s);
                    }
                },
            ),
            row(
                n("hand-rolled checked get (postcard + CRC-32 + timeout, redis-rs)"),
                "ops/s",
                1,
                ops,
                inflight,
                move |i| {
                    let c = redisrs.clone();
                    let k = format!("c:{}", key(i));
                    async move {
                        let x = tokio::time::timeout(CHECKED_TIMEOUT, rr_get(c, &k))
                            .await
                            .expect("in time");
                        std::hint::black_box(checked_decode(&k, &x.expect("hit")));
                    }
                },
            ),
        ];
        for ((client, backend), (_, cache)) in backends.iter().zip(&caches) {
            rows.push(row(
                n(&format!(
                    "RedisBackend::get on {client} (raw Backend, bytes)"
                )),
                "ops/s",
                1,
                ops,
                inflight,
                move |i| {
                    let k = key(i);
                    async move {
                        let x = backend.get(k).await.expect("get");
                        assert!(x.is_some());
                    }
                },
            ));
            rows.push(get_row(
                n(&format!("memstache get on {client}")),
                ops,
                inflight,
                cache,
                &keys,
            ));
        }
        for (client, cache) in &coalesced {
            rows.push(get_row(
                n(&format!("memstache get on {client}, coalesce")),
                ops,
                inflight,
                cache,
                &keys,
            ));
        }
        for (label, cache) in [
            ("no operation_timeout", &cache_nt),
            ("SlidingReads::Script", &cache_script),
        ] {
            rows.push(get_row(
                n(&format!("memstache get on redis-rs, {label}")),
                ops,
                inflight,
                cache,
                &keys,
            ));
        }
        b.group(&format!("reads, {inflight} in flight"), rows);

        // --- writes
        let mut rows = vec![
            row(n("fred raw SET"), "ops/s", 1, ops, inflight, move |i| {
                let k = wkey(i);
                async move {
                    let _: () = fred
                        .set(k, raw_value.as_slice(), None, None, false)
                        .await
                        .expect("set");
                }
            }),
            row(n("redis-rs raw SET"), "ops/s", 1, ops, inflight, move |i| {
                let mut c = redisrs.clone();
                let k = wkey(i);
                async move {
                    let _: () = redis::cmd("SET")
                        .arg(k)
                        .arg(raw_value.as_slice())
                        .query_async(&mut c)
                        .await
                        .expect("set");
                }
            }),
            row(
                n("hand-rolled set (postcard + fred SET)"),
                "ops/s",
                1,
                ops,
                inflight,
                move |i| {
                    let k = wkey(i);
                    async move {
                        let bytes = postcard::to_allocvec(v).expect("encode");
                        let _: () = fred.set(k, bytes, None, None, false).await.expect("set");
                    }
                },
            ),
            row(
                n("hand-rolled set (postcard + redis-rs SET)"),
                "ops/s",
                1,
                ops,
                inflight,
                move |i| {
                    let mut c = redisrs.clone();
                    let k = wkey(i);
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
            row(
                n("hand-rolled checked set (postcard + CRC-32 + timeout, redis-rs)"),
                "ops/s",
                1,
                ops,
                inflight,
                move |i| {
                    let mut c = redisrs.clone();
                    let k = format!("c:{}", wkey(i));
                    async move {
                        let bytes = checked_encode(&k, v);
                        let mut cmd = redis::cmd("SET");
                        cmd.arg(&k).arg(bytes);
                        let set = cmd.query_async::<()>(&mut c);
                        tokio::time::timeout(CHECKED_TIMEOUT, set)
                            .await
                            .expect("in time")
                            .expect("set");
                    }
                },
            ),
        ];
        for ((client, backend), (_, cache)) in backends.iter().zip(&caches) {
            rows.push(row(
                n(&format!(
                    "RedisBackend::set on {client} (raw Backend, bytes)"
                )),
                "ops/s",
                1,
                ops,
                inflight,
                move |i| {
                    let k = wkey(i);
                    let val = bytes::Bytes::copy_from_slice(raw_value);
                    async move {
                        backend.set(&k, val, Expiry::NEVER).await.expect("set");
                    }
                },
            ));
            rows.push(row(
                n(&format!("memstache set on {client}")),
                "ops/s",
                1,
                ops,
                inflight,
                move |i| {
                    let k = wkey(i);
                    async move {
                        cache
                            .set(&k, v, EntryOptions::default())
                            .await
                            .expect("set");
                    }
                },
            ));
        }
        for (client, cache) in &coalesced {
            rows.push(row(
                n(&format!("memstache set on {client}, coalesce")),
                "ops/s",
                1,
                ops,
                inflight,
                move |i| {
                    let k = wkey(i);
                    async move {
                        cache
                            .set(&k, v, EntryOptions::default())
                            .await
                            .expect("set");
                    }
                },
            ));
        }
        b.group(&format!("writes, {inflight} in flight"), rows);
        for (client, backend) in &coalesced_backends {
            let s = backend.coalesce_stats();
            println!(
                "coalescing on {client} so far: {} sent alone, {} batches of {:.1} commands on average\n",
                s.direct,
                s.batches,
                s.batched as f64 / s.batches.max(1) as f64
            );
        }
    }

    // --- batches of 100 keys, 8 batches in flight
    let checked_keys: Vec<String> = keys.iter().map(|k| format!("c:{k}")).collect();
    let (keys, checked_keys) = (&keys, &checked_keys);
    let batch = move |i: usize| window(keys, i);
    let batches = 2_000;
    let (fred, redisrs) = (&fred, &redisrs);
    let mut rows = Vec::new();
    for (client, cache) in &caches {
        rows.push(row(
            format!("memstache get_many(100) on {client} @8"),
            "keys/s",
            BATCH,
            batches,
            8,
            move |i| {
                let ks = batch(i);
                async move {
                    let xs: Vec<Option<String>> = cache.get_many(ks).await.expect("get_many");
                    assert!(xs.iter().all(Option::is_some));
                }
            },
        ));
    }
    let rr_cache = &caches[1].1;
    rows.extend([
        row(
            "memstache 100 × get on redis-rs (100 in flight) @8",
            "keys/s",
            BATCH,
            batches / 4,
            8,
            move |i| {
                let ks = batch(i);
                async move {
                    futures::stream::iter(ks)
                        .for_each_concurrent(BATCH, |k| async move {
                            let s: Option<String> = rr_cache.get(k).await.expect("get");
                            assert!(s.is_some());
                        })
                        .await;
                }
            },
        ),
        row(
            "hand-rolled MGET(100) + postcard, redis-rs @8",
            "keys/s",
            BATCH,
            batches,
            8,
            move |i| {
                let c = redisrs.clone();
                let ks = batch(i);
                async move {
                    for x in rr_mget(c, ks).await {
                        let s: String = postcard::from_bytes(&x.expect("hit")).expect("decode");
                        std::hint::black_box(s);
                    }
                }
            },
        ),
        row(
            "hand-rolled checked MGET(100) + postcard (CRC-32 + timeout), redis-rs @8",
            "keys/s",
            BATCH,
            batches,
            8,
            move |i| {
                let c = redisrs.clone();
                let ks = window(checked_keys, i);
                async move {
                    let xs = tokio::time::timeout(CHECKED_TIMEOUT, rr_mget(c, ks))
                        .await
                        .expect("in time");
                    for (k, x) in ks.iter().zip(xs) {
                        std::hint::black_box(checked_decode(k, &x.expect("hit")));
                    }
                }
            },
        ),
    ]);
    rows.push(row(
        "fred raw MGET(100) @8",
        "keys/s",
        BATCH,
        batches,
        8,
        move |i| {
            let ks: Vec<String> = batch(i).to_vec();
            async move {
                let xs: Vec<Option<bytes::Bytes>> = fred.mget(ks).await.expect("mget");
                assert_eq!(xs.len(), BATCH);
            }
        },
    ));
    rows.push(row(
        "redis-rs raw MGET(100) @8",
        "keys/s",
        BATCH,
        batches,
        8,
        move |i| {
            let c = redisrs.clone();
            let ks = batch(i);
            async move {
                assert_eq!(rr_mget(c, ks).await.len(), BATCH);
            }
        },
    ));
    b.group("batches of 100 keys, 8 in flight", rows);

    println!(
        "ratios: median of per-round throughput ratios; CPU = ratio of client CPU per unit (the \
         CPU-bound throughput ratio)"
    );
    for client in ["redis-rs", "fred"] {
        b.ratio(
            &format!("memstache get / hand-rolled get, {client} @64"),
            &format!("memstache get on {client} @64"),
            &format!("hand-rolled get (postcard + {client} GET) @64"),
            Some(0.95),
        );
        b.ratio(
            &format!("memstache set / hand-rolled set, {client} @64"),
            &format!("memstache set on {client} @64"),
            &format!("hand-rolled set (postcard + {client} SET) @64"),
            Some(0.95),
        );
    }
    for op in ["get", "set"] {
        b.ratio(
            &format!("memstache {op} / checked hand-rolled {op} (CRC-32 + timeout), redis-rs @64"),
            &format!("memstache {op} on redis-rs @64"),
            &format!("hand-rolled checked {op} (postcard + CRC-32 + timeout, redis-rs) @64"),
            None,
        );
    }
    let fastest_get = b.faster("fred raw GET @64", "redis-rs raw GET @64");
    for client in ["redis-rs", "fred"] {
        b.ratio(
            &format!("memstache get ({client}) / {fastest_get} (fastest raw GET)"),
            &format!("memstache get on {client} @64"),
            fastest_get,
            Some(0.8),
        );
    }
    for client in ["redis-rs", "fred"] {
        b.ratio(
            &format!("memstache get ({client}, coalesce) / {fastest_get} (fastest raw GET)"),
            &format!("memstache get on {client}, coalesce @64"),
            fastest_get,
            Some(2.0),
        );
        b.ratio(
            &format!("memstache set ({client}, coalesce) / redis-rs raw SET"),
            &format!("memstache set on {client}, coalesce @64"),
            "redis-rs raw SET @64",
            Some(1.5),
        );
        for (op, hand) in [("get", "get"), ("set", "set")] {
            b.ratio(
                &format!("memstache {op} ({client}, coalesce) / hand-rolled {hand} @1 (latency)"),
                &format!("memstache {op} on {client}, coalesce @1"),
                &format!("hand-rolled checked {hand} (postcard + CRC-32 + timeout, redis-rs) @1"),
                None,
            );
        }
    }
    let fastest_mget = b.faster("fred raw MGET(100) @8", "redis-rs raw MGET(100) @8");
    for client in ["redis-rs", "fred"] {
        b.ratio(
            &format!("memstache get_many(100) ({client}) / {fastest_mget}"),
            &format!("memstache get_many(100) on {client} @8"),
            fastest_mget,
            Some(0.9),
        );
    }
    for client in ["redis-rs", "fred"] {
        b.ratio(
            &format!("RedisBackend::get / raw GET, {client} @64"),
            &format!("RedisBackend::get on {client} (raw Backend, bytes) @64"),
            &format!("{client} raw GET @64"),
            None,
        );
    }
    for (label, a, bb) in [
        (
            "fred GET / redis-rs GET @64",
            "fred raw GET @64",
            "redis-rs raw GET @64",
        ),
        (
            "fred SET / redis-rs SET @64",
            "fred raw SET @64",
            "redis-rs raw SET @64",
        ),
        (
            "memstache get: no operation timeout / default, redis-rs @64",
            "memstache get on redis-rs, no operation_timeout @64",
            "memstache get on redis-rs @64",
        ),
        (
            "memstache get: Auto / Script read path, redis-rs @64",
            "memstache get on redis-rs @64",
            "memstache get on redis-rs, SlidingReads::Script @64",
        ),
        (
            "memstache get_many(100) / 100 single gets, redis-rs",
            "memstache get_many(100) on redis-rs @8",
            "memstache 100 × get on redis-rs (100 in flight) @8",
        ),
        (
            "memstache get_many(100) / checked hand-rolled MGET + postcard (CRC-32 + timeout), redis-rs",
            "memstache get_many(100) on redis-rs @8",
            "hand-rolled checked MGET(100) + postcard (CRC-32 + timeout), redis-rs @8",
        ),
        (
            "fred MGET / redis-rs MGET",
            "fred raw MGET(100) @8",
            "redis-rs raw MGET(100) @8",
        ),
        (
            "memstache get_many(100) / hand-rolled MGET + postcard, redis-rs",
            "memstache get_many(100) on redis-rs @8",
            "hand-rolled MGET(100) + postcard, redis-rs @8",
        ),
        (
            "memstache get / hand-rolled get @1, redis-rs (latency)",
            "memstache get on redis-rs @1",
            "hand-rolled get (postcard + redis-rs GET) @1",
        ),
        (
            "memstache set / hand-rolled set @1, redis-rs (latency)",
            "memstache set on redis-rs @1",
            "hand-rolled set (postcard + redis-rs SET) @1",
        ),
    ] {
        b.ratio(label, a, bb, None);
    }
    drop(server);
}
