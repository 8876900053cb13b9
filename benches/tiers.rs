//! The two-tier cache (issue 14): an L1 hit beside moka, and a Zipf read workload over a real
//! Redis with and without L1, against a `redis-server` this bench starts itself (harness).
//!
//! `cargo bench -p memstache-benches --bench tiers` — prints two tables of medians and the
//! ratios the issue sets as targets. Set `MEMSTACHE_BENCH_RUNS` to change the number of rounds,
//! `MEMSTACHE_BENCH_OPS` the operations per row and round, and `MEMSTACHE_BENCH_FILTER` to run
//! only rows whose name contains it (a filter that names no Redis row starts no Redis).
//! Instructions per operation: run one row under `valgrind --tool=callgrind` with
//! `MEMSTACHE_BENCH_RUNS=1` at two values of `MEMSTACHE_BENCH_OPS` and divide the difference
//! of the totals by 1.25 × the difference of the op counts (each row runs ops/4 of warm-up).
//!
//! * **L1 hit, in process.** 1,000 keys, 1 KiB values, every read a hit.
//!   `MemStache::get::<Vec<u8>>` (and `::<String>`) served by the local tier, over a
//!   `MemoryBackend` given with `.backend(…)` (so the read takes the tiered path; a cache with a
//!   local tier and no backend keeps one store and reads it as its backend — its own row),
//!   beside `moka::sync::Cache<String, Vec<u8>>::get`, `<String, Arc<[u8]>>::get` and
//!   `<String, String>::get`, and beside postcard decoding the 1 KiB plaintext alone (what
//!   every L1 hit does: the tier keeps the serialized plaintext, not the value). Every row is
//!   driven by `futures::executor::block_on` once per call (moka's synchronous `get` inside an
//!   `async` block), on the main thread; a bare moka row without the driver shows what the
//!   driver costs. ns/op.
//! * **Zipf (s = 1) over Redis.** 10,000 keys of 1 KiB per value type, written once (warm
//!   fill), then reads only, ranks drawn from a seeded Zipf(1) sampler
//!   (`memstache_harness::synthetic::zipf`: inverse CDF over precomputed weights, SplitMix64),
//!   64 in flight (`for_each_concurrent(64)`) on a 2-worker runtime, one `RedisBackend`
//!   connection (redis-rs). memstache `get::<String>` and `get::<Vec<u8>>` without L1, and
//!   with `LocalTier::new().max_entries(1_000)` (10 % of the keys, LRU; one L1 per row), and
//!   for `String` also with that L1 and `.backplane(backend.backplane())` (reads publish
//!   nothing: this row shows what holding a subscription costs the reads).
//!   ops/s, and the L1 hit ratio from `cache.stats()`.
//!
//! Not a criterion bench: the targets are ratios of rows from the same run. Rows are measured
//! in **interleaved rounds** (every row of a group once per round, in a rotating order), and a
//! ratio is the median of per-round ratios.

use std::collections::HashMap;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use futures::executor::block_on;
use memstache::memory::MemoryBackend;
use memstache::tiers::LocalTier;
use memstache::{EntryOptions, MemStache};
use memstache_harness::redis::RedisServer;
use memstache_redis::RedisBackend;

/// Keys of the L1-hit rows.
const HOT_KEYS: usize = 1_000;
/// Keys of the Zipf workload.
const ZIPF_KEYS: usize = 10_000;
/// L1 entries in the Zipf workload: 10 % of the keys.
const ZIPF_L1: usize = 1_000;
/// Zipf exponent.
const ZIPF_S: f64 = 1.0;
/// Operations in flight in the Zipf workload.
const INFLIGHT: usize = 64;
/// The rows of the Zipf workload.
const ZIPF_ROWS: [&str; 5] = [
    "memstache get::<String>, RedisBackend, no L1",
    "memstache get::<String>, RedisBackend, L1 of 1,000 entries",
    "memstache get::<String>, RedisBackend, L1 of 1,000 + Redis backplane",
    "memstache get::<Vec<u8>>, RedisBackend, no L1",
    "memstache get::<Vec<u8>>, RedisBackend, L1 of 1,000 entries",
];
/// Seed of the Zipf trace.
const SEED: u64 = 0x0014_5eed;

/// A deterministic 1 KiB text value (printable, so the same bytes serve as `String` and
/// `Vec<u8>`).
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

/// Operations per row and round: `MEMSTACHE_BENCH_OPS`, else `default`.
fn ops_or(default: usize) -> usize {
    std::env::var("MEMSTACHE_BENCH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// One row: a name and a run of `n` operations returning its wall seconds.
struct Row<'a> {
    name: String,
    ops: usize,
    run: Box<dyn FnMut(usize) -> f64 + 'a>,
}

/// Per-row measurements (one value per round) and the group's unit.
struct Bench {
    runs: usize,
    filter: Option<String>,
    results: HashMap<String, Vec<f64>>,
}

impl Bench {
    /// Measures `rows` in interleaved rounds: a warm-up of each, then `runs` rounds that run
    /// every row once, starting one row later each round. `per_op`: report ns/op (else ops/s).
    fn group(&mut self, title: &str, per_op: bool, rows: Vec<Row<'_>>) {
        let mut rows: Vec<Row<'_>> = rows
            .into_iter()
            .filter(|r| self.filter.as_ref().is_none_or(|f| r.name.contains(f)))
            .collect();
        if rows.is_empty() {
            return;
        }
        println!("{title}");
        let mut vals = vec![Vec::new(); rows.len()];
        for r in rows.iter_mut() {
            (r.run)(r.ops / 4);
        }
        for round in 0..self.runs {
            for j in 0..rows.len() {
                let i = (j + round) % rows.len();
                let r = &mut rows[i];
                let wall = (r.run)(r.ops);
                vals[i].push(if per_op {
                    wall * 1e9 / r.ops as f64
                } else {
                    r.ops as f64 / wall
                });
            }
        }
        for (i, r) in rows.iter().enumerate() {
            let m = median(&vals[i]);
            let rounds = vals[i]
                .iter()
                .map(|x| {
                    if per_op {
                        format!("{x:.0}")
                    } else {
                        format!("{:.0}k", x / 1000.0)
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            if per_op {
                println!("  {:<62} {m:>8.1} ns/op  (rounds: {rounds})", r.name);
            } else {
                println!("  {:<62} {m:>9.0} ops/s  (rounds: {rounds})", r.name);
            }
            self.results.insert(r.name.clone(), vals[i].clone());
        }
        println!();
    }

    /// Prints `a / b`: the median of per-round ratios, against an optional target
    /// (`at_most`: the ratio must be ≤ the target, else ≥).
    fn ratio(&self, label: &str, a: &str, b: &str, target: Option<(f64, bool)>) {
        let (Some(x), Some(y)) = (self.results.get(a), self.results.get(b)) else {
            return;
        };
        let per_round: Vec<f64> = x.iter().zip(y).map(|(p, q)| p / q).collect();
        let r = median(&per_round);
        let verdict = match target {
            Some((t, true)) if r <= t => format!("target ≤ {t:.2}: met"),
            Some((t, true)) => format!("target ≤ {t:.2}: NOT met"),
            Some((t, false)) if r >= t => format!("target ≥ {t:.2}: met"),
            Some((t, false)) => format!("target ≥ {t:.2}: NOT met"),
            None => String::new(),
        };
        println!(
            "{label:<70} {r:>6.2}×  (per round: {})  {verdict}",
            per_round
                .iter()
                .map(|p| format!("{p:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

/// A row of `n` calls of `f(i)` on the main thread, each driven by `block_on`.
fn sync_row<'a, F, Fut>(name: &str, ops: usize, f: F) -> Row<'a>
where
    F: Fn(usize) -> Fut + 'a,
    Fut: Future<Output = ()> + 'a,
{
    Row {
        name: name.into(),
        ops,
        run: Box::new(move |n| {
            let start = Instant::now();
            for i in 0..n {
                block_on(f(i));
            }
            start.elapsed().as_secs_f64()
        }),
    }
}

fn l1_hits(b: &mut Bench) {
    let v = value();
    let bytes: Vec<u8> = v.clone().into_bytes();
    let keys: Vec<String> = (0..HOT_KEYS).map(|i| format!("hot:{i:04}")).collect();
    let tiered = MemStache::builder()
        .namespace("t")
        .backend(MemoryBackend::new())
        .local_tier(LocalTier::new())
        .build()
        .expect("cache");
    let tiered_s = MemStache::builder()
        .namespace("t")
        .backend(MemoryBackend::new())
        .local_tier(LocalTier::new())
        .build()
        .expect("cache");
    let local_only = MemStache::builder()
        .namespace("t")
        .local_tier(LocalTier::new())
        .build()
        .expect("cache");
    let moka_vec: moka::sync::Cache<String, Vec<u8>> =
        moka::sync::Cache::builder().max_capacity(10_000).build();
    let moka_arc: moka::sync::Cache<String, Arc<[u8]>> =
        moka::sync::Cache::builder().max_capacity(10_000).build();
    let moka_str: moka::sync::Cache<String, String> =
        moka::sync::Cache::builder().max_capacity(10_000).build();
    let shared: Arc<[u8]> = Arc::from(bytes.as_slice());
    block_on(async {
        for k in &keys {
            tiered
                .set(k, &bytes, EntryOptions::default())
                .await
                .expect("set");
            tiered_s
                .set(k, &v, EntryOptions::default())
                .await
                .expect("set");
            local_only
                .set(k, &bytes, EntryOptions::default())
                .await
                .expect("set");
            moka_vec.insert(k.clone(), bytes.clone());
            moka_arc.insert(k.clone(), Arc::clone(&shared));
            moka_str.insert(k.clone(), v.clone());
        }
    });
    moka_vec.run_pending_tasks();
    moka_arc.run_pending_tasks();
    moka_str.run_pending_tasks();
    let before = tiered.stats().l1_hits;
    // every key read once from L1 (a check that the rows below measure L1 hits)
    for k in &keys {
        let x: Option<Vec<u8>> = block_on(tiered.get(k)).expect("get");
        assert_eq!(x.as_deref(), Some(bytes.as_slice()));
    }
    assert_eq!(
        tiered.stats().l1_hits - before,
        HOT_KEYS as u64,
        "served by L1"
    );
    assert_eq!(tiered.stats().l2_hits, 0);

    let ops = ops_or(200_000);
    let key = |i: usize| keys[i % HOT_KEYS].as_str();
    let (tiered, tiered_s, local_only) = (&tiered, &tiered_s, &local_only);
    let (moka_vec, moka_arc, moka_str) = (&moka_vec, &moka_arc, &moka_str);
    // what the L1 keeps: the serialized plaintext, decoded on every hit
    let plain_vec = postcard::to_allocvec(&bytes).expect("encode");
    let plain_str = postcard::to_allocvec(&v).expect("encode");
    let (plain_vec, plain_str) = (plain_vec.as_slice(), plain_str.as_slice());
    let rows = vec![
        sync_row(
            "memstache get::<Vec<u8>>, L1 hit (L1 + MemoryBackend)",
            ops,
            move |i| async move {
                let x: Option<Vec<u8>> = tiered.get(key(i)).await.expect("get");
                black_box(x.expect("hit"));
            },
        ),
        sync_row(
            "memstache get_arc::<Vec<u8>>, L1 hit (L1 + MemoryBackend)",
            ops,
            move |i| async move {
                let x: Option<std::sync::Arc<Vec<u8>>> = tiered.get_arc(key(i)).await.expect("get");
                black_box(x.expect("hit"));
            },
        ),
        sync_row(
            "memstache get::<String>, L1 hit (L1 + MemoryBackend)",
            ops,
            move |i| async move {
                let x: Option<String> = tiered_s.get(key(i)).await.expect("get");
                black_box(x.expect("hit"));
            },
        ),
        sync_row(
            "memstache get::<Vec<u8>>, local tier only (no backend)",
            ops,
            move |i| async move {
                let x: Option<Vec<u8>> = local_only.get(key(i)).await.expect("get");
                black_box(x.expect("hit"));
            },
        ),
        sync_row(
            "postcard decode of the 1 KiB plaintext alone, Vec<u8>",
            ops,
            move |_| async move {
                let x: Vec<u8> = postcard::from_bytes(black_box(plain_vec)).expect("decode");
                black_box(x);
            },
        ),
        sync_row(
            "postcard decode of the 1 KiB plaintext alone, String",
            ops,
            move |_| async move {
                let x: String = postcard::from_bytes(black_box(plain_str)).expect("decode");
                black_box(x);
            },
        ),
        sync_row("moka::sync get, Vec<u8>", ops, move |i| async move {
            black_box(moka_vec.get(key(i)).expect("hit"));
        }),
        sync_row("moka::sync get, Arc<[u8]>", ops, move |i| async move {
            black_box(moka_arc.get(key(i)).expect("hit"));
        }),
        sync_row("moka::sync get, String", ops, move |i| async move {
            black_box(moka_str.get(key(i)).expect("hit"));
        }),
        Row {
            name: "moka::sync get, Vec<u8>, no block_on".into(),
            ops,
            run: Box::new(move |n| {
                let start = Instant::now();
                for i in 0..n {
                    black_box(moka_vec.get(key(i)).expect("hit"));
                }
                start.elapsed().as_secs_f64()
            }),
        },
    ];
    b.group(
        "L1 hit, 1 KiB value, 1,000 keys, one thread, block_on per call",
        true,
        rows,
    );
    let (lv, ls, lo) = (
        "memstache get::<Vec<u8>>, L1 hit (L1 + MemoryBackend)",
        "memstache get::<String>, L1 hit (L1 + MemoryBackend)",
        "memstache get::<Vec<u8>>, local tier only (no backend)",
    );
    b.ratio(
        "memstache L1 Vec<u8> / moka Vec<u8> (ns/op)",
        lv,
        "moka::sync get, Vec<u8>",
        Some((1.5, true)),
    );
    b.ratio(
        "memstache L1 Vec<u8> / moka Arc<[u8]> (ns/op)",
        lv,
        "moka::sync get, Arc<[u8]>",
        Some((1.5, true)),
    );
    b.ratio(
        "memstache L1 get_arc Vec<u8> / moka Vec<u8> (ns/op)",
        "memstache get_arc::<Vec<u8>>, L1 hit (L1 + MemoryBackend)",
        "moka::sync get, Vec<u8>",
        Some((1.5, true)),
    );
    b.ratio(
        "memstache L1 get_arc Vec<u8> / moka Arc<[u8]> (ns/op)",
        "memstache get_arc::<Vec<u8>>, L1 hit (L1 + MemoryBackend)",
        "moka::sync get, Arc<[u8]>",
        Some((1.5, true)),
    );
    b.ratio(
        "memstache L1 String / moka String (ns/op)",
        ls,
        "moka::sync get, String",
        Some((1.5, true)),
    );
    b.ratio(
        "memstache local tier only Vec<u8> / moka Vec<u8> (ns/op)",
        lo,
        "moka::sync get, Vec<u8>",
        None,
    );
    b.ratio(
        "memstache L1 Vec<u8> / its postcard decode alone",
        lv,
        "postcard decode of the 1 KiB plaintext alone, Vec<u8>",
        None,
    );
    b.ratio(
        "memstache L1 String / its postcard decode alone",
        ls,
        "postcard decode of the 1 KiB plaintext alone, String",
        None,
    );
    b.ratio(
        "moka Vec<u8> with block_on / without (the driver's cost)",
        "moka::sync get, Vec<u8>",
        "moka::sync get, Vec<u8>, no block_on",
        None,
    );
    println!();
}

fn zipf_redis(b: &mut Bench) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = RedisServer::start();
    let url = server.url();
    let text = value();
    let bytes: Vec<u8> = text.clone().into_bytes();
    // one key set per value type (an entry is read as the type it was written as)
    let keys_s: Vec<String> = (0..ZIPF_KEYS).map(|i| format!("s:{i:05}")).collect();
    let keys_v: Vec<String> = (0..ZIPF_KEYS).map(|i| format!("v:{i:05}")).collect();
    let ops = ops_or(100_000);
    let trace: Vec<usize> =
        memstache_harness::synthetic::zipf(SEED, ZIPF_KEYS as u64, ZIPF_S, 1 << 20)
            .into_iter()
            .map(|r| r as usize)
            .collect();
    let (plain, tiered_s, tiered_v, tiered_bp) = rt.block_on(async {
        let backend = RedisBackend::connect(&url).await.expect("backend");
        let plain = MemStache::builder()
            .namespace("z")
            .backend(backend.clone())
            .build()
            .expect("cache");
        let tiered = || {
            MemStache::builder()
                .namespace("z")
                .backend(backend.clone())
                .local_tier(LocalTier::new().max_entries(ZIPF_L1))
                .build()
                .expect("cache")
        };
        let (tiered_s, tiered_v) = (tiered(), tiered());
        let tiered_bp = MemStache::builder()
            .namespace("z")
            .backplane(backend.backplane())
            .backend(backend.clone())
            .local_tier(LocalTier::new().max_entries(ZIPF_L1))
            .build()
            .expect("cache");
        tiered_s.local_tier_ready().await;
        tiered_v.local_tier_ready().await;
        tiered_bp.local_tier_ready().await;
        // warm fill: every key once, through the cache without L1 (the L1s fill by reading)
        let plain_ref = &plain;
        futures::stream::iter(keys_s.iter().zip(&keys_v))
            .for_each_concurrent(INFLIGHT, |(ks, kv)| {
                let (text, bytes) = (&text, &bytes);
                async move {
                    let o = EntryOptions::default;
                    plain_ref.set(ks, text, o()).await.expect("set");
                    plain_ref.set(kv, bytes, o()).await.expect("set");
                }
            })
            .await;
        (plain, tiered_s, tiered_v, tiered_bp)
    });
    // each run starts where the last one of its row stopped, so no run replays a stretch of
    // the trace the L1 has just seen
    let mask = trace.len() - 1;
    let row = |name: &str, cache: &MemStache, as_string: bool| {
        let trace = &trace;
        let rt = &rt;
        let keys = if as_string { &keys_s } else { &keys_v };
        let cache = cache.clone();
        let mut at = 0usize;
        Row {
            name: name.into(),
            ops,
            run: Box::new(move |n| {
                let from = at;
                at = (at + n) & mask;
                let cache = &cache;
                rt.block_on(async move {
                    let start = Instant::now();
                    futures::stream::iter(0..n)
                        .for_each_concurrent(INFLIGHT, |i| async move {
                            let k = keys[trace[(from + i) & mask]].as_str();
                            if as_string {
                                let x: Option<String> = cache.get(k).await.expect("get");
                                assert!(x.is_some());
                            } else {
                                let x: Option<Vec<u8>> = cache.get(k).await.expect("get");
                                assert!(x.is_some());
                            }
                        })
                        .await;
                    start.elapsed().as_secs_f64()
                })
            }),
        }
    };
    let [s_no, s_l1, s_bp, v_no, v_l1] = ZIPF_ROWS;
    let before = [tiered_s.stats(), tiered_bp.stats(), tiered_v.stats()];
    b.group(
        "Zipf(1) reads over Redis, 10,000 keys of 1 KiB, 64 in flight (reads only, after a warm fill)",
        false,
        vec![
            row(s_no, &plain, true),
            row(s_l1, &tiered_s, true),
            row(s_bp, &tiered_bp, true),
            row(v_no, &plain, false),
            row(v_l1, &tiered_v, false),
        ],
    );
    let hot = trace.iter().filter(|&&r| r < ZIPF_L1).count();
    println!(
        "  share of the trace on the 1,000 hottest keys (the best any 1,000-entry L1 can do): \
         {:.1} %",
        hot as f64 * 100.0 / trace.len() as f64
    );
    for ((label, cache), s0) in [
        ("String", &tiered_s),
        ("String, backplane", &tiered_bp),
        ("Vec<u8>", &tiered_v),
    ]
    .into_iter()
    .zip(before)
    {
        let s1 = cache.stats();
        let reads = (s1.hits + s1.misses) - (s0.hits + s0.misses);
        let l1 = s1.l1_hits - s0.l1_hits;
        let h = l1 as f64 / reads as f64;
        println!(
            "  {label}: L1 hit ratio observed (warm-up and rounds) {:.1} % ({l1} of {reads} \
             reads; {} L2 hits, {} misses; {} copies held at the end); ceiling at that hit \
             ratio if an L1 hit cost nothing: 1 / (1 − {h:.3}) = {:.2}×",
            h * 100.0,
            s1.l2_hits - s0.l2_hits,
            s1.misses - s0.misses,
            cache.local_tier_len(),
            1.0 / (1.0 - h)
        );
    }
    b.ratio(
        "String: with L1 / without (ops/s)",
        s_l1,
        s_no,
        Some((10.0, false)),
    );
    b.ratio(
        "String: with L1 and a backplane / without L1 (ops/s)",
        s_bp,
        s_no,
        Some((10.0, false)),
    );
    b.ratio(
        "String: with L1 and a backplane / with L1 alone (ops/s)",
        s_bp,
        s_l1,
        None,
    );
    b.ratio(
        "Vec<u8>: with L1 / without (ops/s)",
        v_l1,
        v_no,
        Some((10.0, false)),
    );
    println!();
    drop(server);
}

fn main() {
    let runs = std::env::var("MEMSTACHE_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let mut b = Bench {
        runs,
        filter: std::env::var("MEMSTACHE_BENCH_FILTER").ok(),
        results: HashMap::new(),
    };
    println!("memstache two tiers: {runs} interleaved rounds, medians\n");
    l1_hits(&mut b);
    // a filter that names no Redis row skips starting Redis
    if b.filter
        .as_ref()
        .is_none_or(|f| ZIPF_ROWS.iter().any(|r| r.contains(f.as_str())))
    {
        zipf_redis(&mut b);
    }
}
