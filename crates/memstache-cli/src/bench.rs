//! `memstache bench`: memstache beside its raw peer, measured in the same run.
//!
//! * Embedded (the default): `MemStache` `get` / `set` of a `--value-bytes` `String` on the
//!   memory backend, beside `moka::future::Cache` `get` / `insert` of the same value.
//! * `--redis URL` (feature `redis`): memstache `get` / `set` over `RedisBackend`, beside the
//!   same work by hand (postcard + redis-rs) and raw-bytes `GET` / `SET` on redis-rs, with
//!   `--inflight` requests in flight on one connection each.
//!
//! The rows of a group run in interleaved rounds: each round runs every row once, starting one
//! row later than the round before. A row's figure is its median over rounds; a ratio is the
//! median of the per-round ratios, so both sides were measured seconds apart. Nothing here is
//! a pass/fail check: the targets are printed beside the ratios for the reader.

use std::fmt;
use std::time::Instant;

use memstache::{EntryOptions, MemStache};

/// Distinct keys the workloads cycle through.
const KEYS: usize = 1_000;

/// The knobs of one bench run.
#[derive(Debug, Clone)]
pub(crate) struct BenchConfig {
    pub(crate) ops: usize,
    pub(crate) rounds: usize,
    pub(crate) inflight: usize,
    pub(crate) value_bytes: usize,
    pub(crate) redis: Option<String>,
}

impl BenchConfig {
    /// Checks the ranges clap cannot express; the message names the flag.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.ops == 0 {
            return Err("--ops must be at least 1".into());
        }
        if self.rounds == 0 {
            return Err("--rounds must be at least 1".into());
        }
        if self.inflight == 0 {
            return Err("--inflight must be at least 1".into());
        }
        Ok(())
    }
}

/// One row: a name and a workload that runs `ops` operations and returns ops/s.
struct Row<'a> {
    name: String,
    run: Box<dyn FnMut() -> f64 + 'a>,
}

/// What a row measured: ops/s per round.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub(crate) name: String,
    pub(crate) rates: Vec<f64>,
}

impl Measured {
    pub(crate) fn median(&self) -> f64 {
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

/// `a / b` as the median of per-round ratios, and the target it is held against, if any.
#[derive(Debug, Clone)]
pub(crate) struct Ratio {
    pub(crate) label: String,
    pub(crate) value: f64,
    pub(crate) target: Option<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub(crate) struct BenchReport {
    pub(crate) title: String,
    pub(crate) groups: Vec<(String, Vec<Measured>)>,
    pub(crate) ratios: Vec<Ratio>,
}

impl BenchReport {
    fn find(&self, name: &str) -> Option<&Measured> {
        self.groups
            .iter()
            .flat_map(|(_, rows)| rows)
            .find(|m| m.name == name)
    }

    fn ratio(&mut self, label: &str, a: &str, b: &str, target: Option<f64>) {
        let (Some(x), Some(y)) = (self.find(a), self.find(b)) else {
            return;
        };
        let per_round: Vec<f64> = x.rates.iter().zip(&y.rates).map(|(p, q)| p / q).collect();
        let value = median(&per_round);
        self.ratios.push(Ratio {
            label: label.to_owned(),
            value,
            target,
        });
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.title)?;
        for (group, rows) in &self.groups {
            writeln!(f, "\n{group}")?;
            for m in rows {
                let rounds: Vec<String> = m
                    .rates
                    .iter()
                    .map(|r| format!("{:.0}k", r / 1000.0))
                    .collect();
                writeln!(
                    f,
                    "  {:<44} {:>12.0} ops/s  (rounds: {})",
                    m.name,
                    m.median(),
                    rounds.join(" ")
                )?;
            }
        }
        writeln!(
            f,
            "\nratios (throughput, median of per-round ratios; higher is better for memstache)"
        )?;
        for r in &self.ratios {
            let target = match r.target {
                Some(t) if r.value >= t => format!("  target ≥ {t:.2}: met"),
                Some(t) => format!("  target ≥ {t:.2}: not met"),
                None => String::new(),
            };
            writeln!(f, "  {:<58} {:>6.2}×{target}", r.label, r.value)?;
        }
        Ok(())
    }
}

/// Runs `rows` in interleaved rounds, after one warm-up run each.
fn interleave(rounds: usize, mut rows: Vec<Row<'_>>) -> Vec<Measured> {
    let mut rates = vec![Vec::with_capacity(rounds); rows.len()];
    for r in &mut rows {
        (r.run)();
    }
    for round in 0..rounds {
        for j in 0..rows.len() {
            let i = (j + round) % rows.len();
            rates[i].push((rows[i].run)());
        }
    }
    rows.into_iter()
        .zip(rates)
        .map(|(r, rates)| Measured {
            name: r.name,
            rates,
        })
        .collect()
}

/// A deterministic text value of `bytes` bytes.
pub(crate) fn value(bytes: usize) -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789 ";
    (0..bytes)
        .map(|i| char::from(alphabet[(i * 7 + i / 13) % alphabet.len()]))
        .collect()
}

fn keys(prefix: &str) -> Vec<String> {
    (0..KEYS).map(|i| format!("{prefix}{i}")).collect()
}

/// Operations per second of `ops` sequential calls of `f` on `rt`.
fn sequential<F, Fut>(rt: &tokio::runtime::Runtime, ops: usize, f: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..ops {
            f(i).await;
        }
        ops as f64 / start.elapsed().as_secs_f64()
    })
}

/// Runs the bench the configuration asks for.
pub(crate) fn run(config: &BenchConfig) -> Result<BenchReport, String> {
    config.validate()?;
    match &config.redis {
        None => embedded(config),
        #[cfg(feature = "redis")]
        Some(url) => on_redis::run(config, url),
        #[cfg(not(feature = "redis"))]
        Some(_) => Err("--redis needs a memstache built with `--features redis`".into()),
    }
}

/// memstache on the memory backend beside moka, on a current-thread runtime.
fn embedded(config: &BenchConfig) -> Result<BenchReport, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    let v = value(config.value_bytes);
    let keys = keys("bench:");
    let cache = MemStache::builder()
        .build()
        .map_err(|e| format!("cannot build the cache: {e}"))?;
    let moka: moka::future::Cache<String, String> = moka::future::Cache::new(KEYS as u64 * 2);
    rt.block_on(async {
        for k in &keys {
            cache.set(k, &v, EntryOptions::default()).await?;
            moka.insert(k.clone(), v.clone()).await;
        }
        Ok::<(), memstache::Error>(())
    })
    .map_err(|e| format!("cannot fill the cache: {e}"))?;

    let ops = config.ops;
    let key = |i: usize| keys[i % KEYS].as_str();
    let (rt, cache, moka, v) = (&rt, &cache, &moka, &v);
    let reads = vec![
        Row {
            name: "memstache get (memory backend)".into(),
            run: Box::new(move || {
                sequential(rt, ops, |i| async move {
                    let got: Option<String> = cache.get(key(i)).await.expect("memory get");
                    assert!(got.is_some(), "every key was filled");
                })
            }),
        },
        Row {
            name: "moka get".into(),
            run: Box::new(move || {
                sequential(rt, ops, |i| async move {
                    assert!(moka.get(key(i)).await.is_some(), "every key was filled");
                })
            }),
        },
    ];
    let writes = vec![
        Row {
            name: "memstache set (memory backend)".into(),
            run: Box::new(move || {
                sequential(rt, ops, |i| async move {
                    cache
                        .set(key(i), v, EntryOptions::default())
                        .await
                        .expect("memory set");
                })
            }),
        },
        Row {
            name: "moka insert".into(),
            run: Box::new(move || {
                sequential(rt, ops, |i| async move {
                    moka.insert(key(i).to_owned(), v.clone()).await;
                })
            }),
        },
    ];
    let mut report = BenchReport {
        title: format!(
            "memstache bench: embedded, {} B values, {} interleaved rounds of {} sequential operations",
            config.value_bytes, config.rounds, config.ops
        ),
        groups: vec![
            ("reads".into(), interleave(config.rounds, reads)),
            ("writes".into(), interleave(config.rounds, writes)),
        ],
        ratios: Vec::new(),
    };
    report.ratio(
        "memstache get / moka get",
        "memstache get (memory backend)",
        "moka get",
        None,
    );
    report.ratio(
        "memstache set / moka insert",
        "memstache set (memory backend)",
        "moka insert",
        None,
    );
    Ok(report)
}

#[cfg(feature = "redis")]
mod on_redis {
    //! memstache over `RedisBackend` beside hand-rolled and raw redis-rs.

    use futures::StreamExt as _;

    use super::{BenchConfig, BenchReport, KEYS, Row, interleave, keys, value};
    use memstache::redis::RedisBackend;
    use memstache::{EntryOptions, MemStache};

    /// Operations per second of `ops` calls of `f`, at most `inflight` at once.
    fn concurrent<F, Fut>(rt: &tokio::runtime::Runtime, ops: usize, inflight: usize, f: F) -> f64
    where
        F: Fn(usize) -> Fut,
        Fut: Future<Output = ()>,
    {
        rt.block_on(async {
            let start = std::time::Instant::now();
            futures::stream::iter(0..ops)
                .for_each_concurrent(inflight, &f)
                .await;
            ops as f64 / start.elapsed().as_secs_f64()
        })
    }

    pub(super) fn run(config: &BenchConfig, url: &str) -> Result<BenchReport, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let namespace = format!("memstache-bench-{}-{nanos}", std::process::id());
        let v = value(config.value_bytes);
        let encoded = postcard::to_allocvec(&v).map_err(|e| format!("postcard: {e}"))?;
        let cache_keys = keys("k");
        let raw_keys = keys(&format!("{namespace}:raw:"));
        let (cache, conn) = rt.block_on(async {
            // errors never echo the URL: it may hold a password
            let backend = RedisBackend::connect(url)
                .await
                .map_err(|e| format!("cannot connect memstache to Redis: {e}"))?;
            let cache = MemStache::builder()
                .namespace(namespace.as_str())
                .backend(backend)
                .build()
                .map_err(|e| format!("cannot build the cache: {e}"))?;
            let conn = redis::Client::open(url)
                .map_err(|_| "redis-rs does not accept this URL".to_owned())?
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| format!("cannot connect redis-rs to Redis: {:?}", e.kind()))?;
            for (ck, rk) in cache_keys.iter().zip(&raw_keys) {
                cache
                    .set(ck, &v, EntryOptions::default())
                    .await
                    .map_err(|e| format!("cannot fill the cache: {e}"))?;
                let mut c = conn.clone();
                let _: () = redis::cmd("SET")
                    .arg(rk)
                    .arg(&encoded)
                    .query_async(&mut c)
                    .await
                    .map_err(|e| format!("cannot fill Redis: {:?}", e.kind()))?;
            }
            Ok::<_, String>((cache, conn))
        })?;

        let (ops, inflight) = (config.ops, config.inflight);
        let (rt_, cache_, conn_, v_, encoded_) = (&rt, &cache, &conn, &v, &encoded);
        let ck = |i: usize| cache_keys[i % KEYS].as_str();
        let rk = |i: usize| raw_keys[i % KEYS].as_str();
        let get = |key: &str, c: redis::aio::MultiplexedConnection| {
            let key = key.to_owned();
            async move {
                let mut c = c;
                let got: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(key)
                    .query_async(&mut c)
                    .await
                    .expect("GET");
                got.expect("every key was filled")
            }
        };
        let reads = vec![
            Row {
                name: "redis-rs raw GET".into(),
                run: Box::new(move || {
                    concurrent(rt_, ops, inflight, |i| {
                        let f = get(rk(i), conn_.clone());
                        async move {
                            std::hint::black_box(f.await);
                        }
                    })
                }),
            },
            Row {
                name: "hand-rolled get (postcard + redis-rs GET)".into(),
                run: Box::new(move || {
                    concurrent(rt_, ops, inflight, |i| {
                        let f = get(rk(i), conn_.clone());
                        async move {
                            let s: String = postcard::from_bytes(&f.await).expect("postcard");
                            std::hint::black_box(s);
                        }
                    })
                }),
            },
            Row {
                name: "memstache get".into(),
                run: Box::new(move || {
                    concurrent(rt_, ops, inflight, |i| async move {
                        let s: Option<String> = cache_.get(ck(i)).await.expect("memstache get");
                        assert!(s.is_some(), "every key was filled");
                    })
                }),
            },
        ];
        let set = |key: &str, bytes: Vec<u8>, c: redis::aio::MultiplexedConnection| {
            let key = key.to_owned();
            async move {
                let mut c = c;
                let _: () = redis::cmd("SET")
                    .arg(key)
                    .arg(bytes)
                    .query_async(&mut c)
                    .await
                    .expect("SET");
            }
        };
        let writes = vec![
            Row {
                name: "redis-rs raw SET".into(),
                run: Box::new(move || {
                    concurrent(rt_, ops, inflight, |i| {
                        set(rk(i), encoded_.clone(), conn_.clone())
                    })
                }),
            },
            Row {
                name: "hand-rolled set (postcard + redis-rs SET)".into(),
                run: Box::new(move || {
                    concurrent(rt_, ops, inflight, |i| {
                        let bytes = postcard::to_allocvec(v_).expect("postcard");
                        set(rk(i), bytes, conn_.clone())
                    })
                }),
            },
            Row {
                name: "memstache set".into(),
                run: Box::new(move || {
                    concurrent(rt_, ops, inflight, |i| async move {
                        cache_
                            .set(ck(i), v_, EntryOptions::default())
                            .await
                            .expect("memstache set");
                    })
                }),
            },
        ];
        let mut report = BenchReport {
            title: format!(
                "memstache bench: Redis, {} B values, {} interleaved rounds of {} operations, {} in flight",
                config.value_bytes, config.rounds, config.ops, config.inflight
            ),
            groups: vec![
                ("reads".into(), interleave(config.rounds, reads)),
                ("writes".into(), interleave(config.rounds, writes)),
            ],
            ratios: Vec::new(),
        };
        let hand_get = "hand-rolled get (postcard + redis-rs GET)";
        let hand_set = "hand-rolled set (postcard + redis-rs SET)";
        report.ratio(
            "memstache get / hand-rolled get",
            "memstache get",
            hand_get,
            Some(0.95),
        );
        report.ratio(
            "memstache set / hand-rolled set",
            "memstache set",
            hand_set,
            Some(0.95),
        );
        report.ratio(
            "memstache get / raw GET",
            "memstache get",
            "redis-rs raw GET",
            Some(0.8),
        );
        report.ratio(
            "memstache set / raw SET",
            "memstache set",
            "redis-rs raw SET",
            None,
        );

        // leave the server as it was found
        rt.block_on(async {
            let _ = cache.remove_many(&cache_keys).await;
            let mut c = conn.clone();
            let _: Result<u64, _> = redis::cmd("UNLINK")
                .arg(&raw_keys)
                .query_async(&mut c)
                .await;
        });
        Ok(report)
    }
}
