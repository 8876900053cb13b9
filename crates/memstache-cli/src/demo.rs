//! `memstache demo`: a read-through workload against the embedded cache.
//!
//! Many tokio tasks replay one seeded Zipf sequence of requests through
//! `cache.get_or_set(key, options, || slow_source(key))` (or `get_or_load` with `--api
//! get-or-load`, which `--eager-refresh` and the loader timeouts need). The simulated source
//! sleeps and counts its calls, and with `--stall` it stalls periodically; every value that
//! comes back is checked against what the source would return for that key.
//!
//! With `--duration` the workers cycle through the sequence until the time is up; with
//! `--rate` they pace themselves to that many requests per second in all (each worker's
//! latency is measured from the moment it sends, so a stall delays its later requests
//! without counting the delay in them: closed-loop, as most load generators).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use memstache::{EntryOptions, FailSafe, Loaded, MemStache, ReadThrough};

pub(crate) use crate::report::Api;
use crate::report::{Latencies, Report, human};
use crate::zipf::Zipf;

/// The knobs of one demo run (validated by [`DemoConfig::validate`]).
#[derive(Debug, Clone)]
pub(crate) struct DemoConfig {
    pub(crate) requests: usize,
    pub(crate) keys: usize,
    pub(crate) zipf: f64,
    pub(crate) concurrency: usize,
    pub(crate) source_latency: Duration,
    pub(crate) capacity: usize,
    pub(crate) value_bytes: usize,
    pub(crate) seed: u64,
    pub(crate) redis: Option<String>,
    pub(crate) api: Api,
    /// Entry duration (absolute expiration); `None`: entries live until evicted.
    pub(crate) ttl: Option<Duration>,
    pub(crate) eager_refresh: Option<f32>,
    pub(crate) soft_timeout: Option<Duration>,
    pub(crate) hard_timeout: Option<Duration>,
    /// The source stalls for `.1` at the start of every `.0`.
    pub(crate) stall: Option<(Duration, Duration)>,
    /// Run for this long, cycling through the request sequence.
    pub(crate) duration: Option<Duration>,
    /// Requests per second over all workers.
    pub(crate) rate: Option<u64>,
    /// Requests in the first `warmup` of a `--duration` run are made but not counted
    /// (steady state: the cold start's misses are left out).
    pub(crate) warmup: Duration,
}

/// Parses `PERIOD_MS:STALL_MS` (the `--stall` flag).
pub(crate) fn parse_stall(s: &str) -> Result<(Duration, Duration), String> {
    let (period, stall) = s
        .split_once(':')
        .ok_or_else(|| format!("--stall takes PERIOD_MS:STALL_MS, got {s:?}"))?;
    let ms = |v: &str| {
        v.trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| {
                format!("--stall takes PERIOD_MS:STALL_MS in whole milliseconds, got {s:?}")
            })
    };
    Ok((ms(period)?, ms(stall)?))
}

impl DemoConfig {
    /// Checks the ranges clap cannot express; the message names the flag.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.requests == 0 {
            return Err("--requests must be at least 1".into());
        }
        if self.keys == 0 || self.keys > u32::MAX as usize {
            return Err(format!("--keys must be between 1 and {}", u32::MAX));
        }
        if !self.zipf.is_finite() || self.zipf < 0.0 {
            return Err(format!(
                "--zipf must be a finite number >= 0, got {}",
                self.zipf
            ));
        }
        if self.concurrency == 0 {
            return Err("--concurrency must be at least 1".into());
        }
        if self.capacity == 0 {
            return Err("--capacity must be at least 1".into());
        }
        if self.api == Api::GetOrSet {
            for (set, flag) in [
                (self.eager_refresh.is_some(), "--eager-refresh"),
                (self.soft_timeout.is_some(), "--soft-timeout-ms"),
                (self.hard_timeout.is_some(), "--hard-timeout-ms"),
            ] {
                if set {
                    return Err(format!("{flag} needs --api get-or-load"));
                }
            }
        }
        if let Some(f) = self.eager_refresh
            && !(f > 0.0 && f < 1.0)
        {
            return Err(format!(
                "--eager-refresh must be between 0 and 1 (exclusive), got {f}"
            ));
        }
        if self.eager_refresh.is_some() && self.ttl.is_none() {
            return Err("--eager-refresh needs --ttl-ms (an entry without a deadline has no life to refresh at)".into());
        }
        if self.ttl.is_some_and(|t| t.is_zero()) {
            return Err("--ttl-ms must be at least 1".into());
        }
        for (t, flag) in [
            (self.soft_timeout, "--soft-timeout-ms"),
            (self.hard_timeout, "--hard-timeout-ms"),
        ] {
            if t.is_some_and(|t| t.is_zero()) {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        if let (Some(soft), Some(hard)) = (self.soft_timeout, self.hard_timeout)
            && soft > hard
        {
            return Err("--soft-timeout-ms must not exceed --hard-timeout-ms".into());
        }
        if let Some((period, stall)) = self.stall
            && (period.is_zero() || stall >= period)
        {
            return Err("--stall PERIOD_MS:STALL_MS needs 0 < STALL_MS < PERIOD_MS".into());
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err("--duration-secs must be at least 1".into());
        }
        if !self.warmup.is_zero() && self.duration.is_none_or(|d| d <= self.warmup) {
            return Err("--warmup-secs needs --duration-secs longer than it".into());
        }
        if self.rate == Some(0) {
            return Err("--rate must be at least 1".into());
        }
        Ok(())
    }
}

/// Why a demo run failed.
#[derive(Debug)]
pub(crate) enum DemoError {
    /// A flag is out of range or unsupported in this build.
    Usage(String),
    /// The cache failed (building it or serving a request).
    Cache(memstache::Error),
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::Usage(m) => f.write_str(m),
            DemoError::Cache(e) => write!(f, "cache error: {e}"),
        }
    }
}

impl From<memstache::Error> for DemoError {
    fn from(e: memstache::Error) -> Self {
        DemoError::Cache(e)
    }
}

/// How many entries and bytes the backend holds, when it can tell cheaply.
type StoredFn = Box<dyn Fn() -> (u64, u64) + Send + Sync>;

/// The cache under test plus what the report needs to see of its backend.
struct Target {
    cache: MemStache,
    backend_name: String,
    stored: Option<StoredFn>,
}

/// The read-through policy of the flags. A loader timeout serves the stale copy fail-safe
/// keeps, so the timeouts turn fail-safe on (copies kept for an hour).
fn policy(config: &DemoConfig, b: memstache::MemStacheBuilder) -> memstache::MemStacheBuilder {
    let mut rt = ReadThrough::new();
    if let Some(f) = config.eager_refresh {
        rt = rt.eager_refresh(f);
    }
    if let Some(t) = config.soft_timeout {
        rt = rt.soft_timeout(t);
    }
    if let Some(t) = config.hard_timeout {
        rt = rt.hard_timeout(t);
    }
    let b = b.read_through(rt);
    if config.soft_timeout.is_some() || config.hard_timeout.is_some() {
        b.fail_safe(FailSafe::new(Duration::from_secs(3600)))
    } else {
        b
    }
}

/// Builds the cache: the embedded memory backend, or Redis with `--redis URL`.
async fn build_target(config: &DemoConfig) -> Result<Target, DemoError> {
    if let Some(url) = &config.redis {
        return redis_target(url, config).await;
    }
    let backend = memstache::memory::MemoryBackend::builder()
        .max_entries(config.capacity)
        .build()?;
    let handle = backend.clone();
    let cache = policy(config, MemStache::builder().backend(backend)).build()?;
    Ok(Target {
        cache,
        backend_name: format!("memory (max {} entries)", config.capacity),
        stored: Some(Box::new(move || {
            (handle.len() as u64, handle.weighted_size())
        })),
    })
}

/// Redis: a fresh namespace per run, so every run starts cold and leaves other keys alone.
/// The URL is never printed (it may carry a password).
#[cfg(feature = "redis")]
async fn redis_target(url: &str, config: &DemoConfig) -> Result<Target, DemoError> {
    let backend = memstache::redis::RedisBackend::connect(url).await?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let namespace = format!("memstache-demo-{}-{nanos}", std::process::id());
    let cache = policy(
        config,
        MemStache::builder().namespace(namespace).backend(backend),
    )
    .build()?;
    Ok(Target {
        cache,
        backend_name: "redis".into(),
        stored: None,
    })
}

/// Without the `redis` feature, `--redis` is a usage error that says how to get it.
#[cfg(not(feature = "redis"))]
async fn redis_target(_url: &str, _config: &DemoConfig) -> Result<Target, DemoError> {
    Err(DemoError::Usage(
        "--redis: this memstache build has no Redis support (rebuild memstache-cli with \
         `--features redis`); without --redis the demo uses the embedded memory backend"
            .into(),
    ))
}

/// The value the simulated source returns for a key rank: the rank and a body of
/// `value_bytes` bytes derived from it, so a wrong answer is detectable.
pub(crate) fn source_value(rank: u32, value_bytes: usize) -> (u32, Vec<u8>) {
    let body = (0..value_bytes)
        .map(|i| (rank as usize).wrapping_mul(31).wrapping_add(i) as u8)
        .collect();
    (rank, body)
}

/// How long a source call that starts `since_start` into the run takes: its latency, plus the
/// rest of the stall when it falls into one.
pub(crate) fn source_delay(config: &DemoConfig, since_start: Duration) -> Duration {
    let stalled = config.stall.map_or(Duration::ZERO, |(period, stall)| {
        let phase = Duration::from_nanos(
            u64::try_from(since_start.as_nanos() % period.as_nanos()).unwrap_or(0),
        );
        stall.saturating_sub(phase)
    });
    config.source_latency + stalled
}

/// The simulated slow source: counts the call, sleeps, returns the value.
async fn slow_source(
    rank: u32,
    config: &DemoConfig,
    calls: &AtomicU64,
    started: Instant,
) -> Result<(u32, Vec<u8>), std::io::Error> {
    calls.fetch_add(1, Ordering::Relaxed);
    let delay = source_delay(config, started.elapsed());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(source_value(rank, config.value_bytes))
}

/// What one worker saw.
#[derive(Default)]
struct WorkerTally {
    requests: u64,
    hits: Latencies,
    misses: Latencies,
    wrong: u64,
    errors: u64,
    first_error: Option<memstache::Error>,
}

/// Runs the demo workload and returns its report. Must be called inside a tokio runtime with
/// the time driver enabled.
pub(crate) async fn run(config: DemoConfig) -> Result<Report, DemoError> {
    config.validate().map_err(DemoError::Usage)?;
    let target = build_target(&config).await?;
    let zipf = Zipf::new(config.keys, config.zipf).map_err(DemoError::Usage)?;
    let workload: Arc<[u32]> = zipf.sample(config.requests, config.seed).into();
    let keys: Arc<[String]> = (0..config.keys).map(|k| format!("item:{k}")).collect();

    let config = Arc::new(config);
    let next = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(config.concurrency);
    for _ in 0..config.concurrency {
        let (cache, workload, keys) = (target.cache.clone(), workload.clone(), keys.clone());
        let (config, next, calls) = (config.clone(), next.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            let mut tally = WorkerTally::default();
            let options = config.ttl.map_or_else(EntryOptions::default, |t| {
                EntryOptions::new().absolute_expiration(t)
            });
            let mut pace = config.rate.map(|rate| {
                let every = Duration::from_secs_f64(config.concurrency as f64 / rate as f64);
                let mut i = tokio::time::interval(every);
                i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                i
            });
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let rank = match config.duration {
                    Some(d) if started.elapsed() >= d => break,
                    Some(_) => workload[i % workload.len()],
                    None => match workload.get(i) {
                        Some(&rank) => rank,
                        None => break,
                    },
                };
                if let Some(p) = pace.as_mut() {
                    p.tick().await;
                }
                let key = &keys[rank as usize];
                let mut loaded = false;
                let t = Instant::now();
                let r = match config.api {
                    Api::GetOrSet => {
                        cache
                            .get_or_set(key, options, || {
                                loaded = true;
                                slow_source(rank, &config, &calls, started)
                            })
                            .await
                    }
                    Api::GetOrLoad => {
                        let (config, calls) = (config.clone(), calls.clone());
                        cache
                            .get_or_load(key, options, move || async move {
                                slow_source(rank, &config, &calls, started)
                                    .await
                                    .map(Loaded::value)
                            })
                            .await
                            .and_then(|v| {
                                v.ok_or_else(|| {
                                    memstache::Error::internal("the source always has a value")
                                })
                            })
                    }
                };
                let took = t.elapsed();
                if t.duration_since(started) < config.warmup {
                    if !matches!(&r, Ok(v) if *v == source_value(rank, config.value_bytes)) {
                        tally.wrong += 1;
                    }
                    continue;
                }
                tally.requests += 1;
                // get_or_load's loader may run in the background, after the call returned:
                // there a request waited for the source when it took the source's time
                if config.api == Api::GetOrLoad {
                    loaded = !config.source_latency.is_zero() && took >= config.source_latency;
                }
                match r {
                    Ok(v) => {
                        if v != source_value(rank, config.value_bytes) {
                            tally.wrong += 1;
                        }
                        if loaded {
                            tally.misses.record(took);
                        } else {
                            tally.hits.record(took);
                        }
                    }
                    Err(e) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert(e);
                    }
                }
            }
            tally
        }));
    }
    let mut hits = Latencies::default();
    let mut misses = Latencies::default();
    let (mut wrong, mut errors, mut first_error, mut requests) = (0, 0, None, 0);
    for task in tasks {
        let tally = task.await.map_err(|e| {
            DemoError::Cache(memstache::Error::internal("a demo worker panicked").with_source(e))
        })?;
        hits.merge(tally.hits);
        misses.merge(tally.misses);
        wrong += tally.wrong;
        requests += tally.requests;
        errors += tally.errors;
        if first_error.is_none() {
            first_error = tally.first_error;
        }
    }
    let wall = started.elapsed();
    let stored = target.stored.as_ref().map(|f| f());
    if let Some(e) = first_error {
        eprintln!("memstache demo: {errors} request(s) failed; first error: {e}");
    }
    Ok(Report {
        backend: target.backend_name,
        api: config.api,
        policy: policy_text(&config),
        cache_stats: target.cache.stats(),
        requests,
        keys: config.keys as u64,
        zipf: config.zipf,
        concurrency: config.concurrency as u64,
        source_latency: config.source_latency,
        source_calls: calls.load(Ordering::Relaxed),
        hits,
        misses,
        wrong,
        errors,
        stored,
        wall,
    })
}

/// The read-through settings of a run, for the report.
fn policy_text(c: &DemoConfig) -> String {
    let ms = |d: Duration| human(d);
    let mut parts = Vec::new();
    if let Some(t) = c.ttl {
        parts.push(format!("ttl {}", ms(t)));
    }
    if let Some(f) = c.eager_refresh {
        parts.push(format!("eager refresh at {:.0}%", f * 100.0));
    }
    if let Some(t) = c.soft_timeout {
        parts.push(format!("soft timeout {}", ms(t)));
    }
    if let Some(t) = c.hard_timeout {
        parts.push(format!("hard timeout {}", ms(t)));
    }
    if let Some((period, stall)) = c.stall {
        parts.push(format!("source stalls {} every {}", ms(stall), ms(period)));
    }
    if let Some(r) = c.rate {
        parts.push(format!("{r} req/s"));
    }
    if !c.warmup.is_zero() {
        parts.push(format!("first {} not counted", ms(c.warmup)));
    }
    if parts.is_empty() {
        "entries live until evicted".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DemoConfig {
        DemoConfig {
            requests: 2_000,
            keys: 200,
            zipf: 1.0,
            concurrency: 8,
            source_latency: Duration::ZERO,
            capacity: 50,
            value_bytes: 32,
            seed: 1,
            redis: None,
            api: Api::GetOrSet,
            ttl: None,
            eager_refresh: None,
            soft_timeout: None,
            hard_timeout: None,
            stall: None,
            duration: None,
            rate: None,
            warmup: Duration::ZERO,
        }
    }

    #[test]
    fn validate_names_the_bad_flag() {
        let bad = [
            DemoConfig {
                requests: 0,
                ..config()
            },
            DemoConfig {
                keys: 0,
                ..config()
            },
            DemoConfig {
                zipf: -1.0,
                ..config()
            },
            DemoConfig {
                concurrency: 0,
                ..config()
            },
            DemoConfig {
                capacity: 0,
                ..config()
            },
        ];
        let flags = [
            "--requests",
            "--keys",
            "--zipf",
            "--concurrency",
            "--capacity",
        ];
        for (c, flag) in bad.iter().zip(flags) {
            let err = c.validate().unwrap_err();
            assert!(err.contains(flag), "{err}");
        }
        assert!(config().validate().is_ok());
    }

    #[test]
    fn read_through_flags_are_validated_by_name() {
        let ms = Duration::from_millis;
        let load = |c: DemoConfig| DemoConfig {
            api: Api::GetOrLoad,
            ..c
        };
        let bad = [
            (
                DemoConfig {
                    eager_refresh: Some(0.8),
                    ttl: Some(ms(100)),
                    ..config()
                },
                "--eager-refresh needs --api get-or-load",
            ),
            (
                DemoConfig {
                    soft_timeout: Some(ms(5)),
                    ..config()
                },
                "--soft-timeout-ms needs --api get-or-load",
            ),
            (
                DemoConfig {
                    hard_timeout: Some(ms(5)),
                    ..config()
                },
                "--hard-timeout-ms needs --api get-or-load",
            ),
            (
                load(DemoConfig {
                    eager_refresh: Some(1.0),
                    ttl: Some(ms(100)),
                    ..config()
                }),
                "--eager-refresh must be between 0 and 1",
            ),
            (
                load(DemoConfig {
                    eager_refresh: Some(0.5),
                    ..config()
                }),
                "--eager-refresh needs --ttl-ms",
            ),
            (
                DemoConfig {
                    ttl: Some(Duration::ZERO),
                    ..config()
                },
                "--ttl-ms must be at least 1",
            ),
            (
                load(DemoConfig {
                    soft_timeout: Some(ms(50)),
                    hard_timeout: Some(ms(10)),
                    ..config()
                }),
                "--soft-timeout-ms must not exceed --hard-timeout-ms",
            ),
            (
                DemoConfig {
                    stall: Some((ms(100), ms(100))),
                    ..config()
                },
                "--stall",
            ),
            (
                DemoConfig {
                    duration: Some(Duration::ZERO),
                    ..config()
                },
                "--duration-secs",
            ),
            (
                DemoConfig {
                    rate: Some(0),
                    ..config()
                },
                "--rate",
            ),
            (
                DemoConfig {
                    warmup: Duration::from_secs(2),
                    duration: Some(Duration::from_secs(2)),
                    ..config()
                },
                "--warmup-secs",
            ),
        ];
        for (c, want) in bad {
            let err = c.validate().unwrap_err();
            assert!(err.contains(want), "{err} (wanted {want})");
        }
        assert!(
            load(DemoConfig {
                ttl: Some(ms(100)),
                eager_refresh: Some(0.8),
                soft_timeout: Some(ms(5)),
                hard_timeout: Some(ms(50)),
                stall: Some((ms(100), ms(10))),
                ..config()
            })
            .validate()
            .is_ok()
        );
    }

    #[test]
    fn stall_parses_and_delays_only_calls_inside_it() {
        let ms = Duration::from_millis;
        assert_eq!(parse_stall("10000:1000").unwrap(), (ms(10_000), ms(1_000)));
        for bad in ["10000", "a:b", "10:-1", ""] {
            assert!(
                parse_stall(bad).unwrap_err().contains("PERIOD_MS:STALL_MS"),
                "{bad}"
            );
        }
        let c = DemoConfig {
            source_latency: ms(2),
            stall: Some((ms(10_000), ms(1_000))),
            ..config()
        };
        assert_eq!(source_delay(&c, ms(0)), ms(1_002));
        assert_eq!(source_delay(&c, ms(400)), ms(602));
        assert_eq!(source_delay(&c, ms(1_000)), ms(2));
        assert_eq!(source_delay(&c, ms(9_999)), ms(2));
        assert_eq!(source_delay(&c, ms(20_250)), ms(752));
        assert_eq!(source_delay(&config(), ms(5)), Duration::ZERO);
    }

    /// With eager refresh, entries read near their deadline are refreshed in the background:
    /// the source is called more often than requests wait for it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_get_or_load_run_with_eager_refresh_refreshes_in_the_background() {
        let report = run(DemoConfig {
            api: Api::GetOrLoad,
            keys: 5,
            requests: 400,
            concurrency: 4,
            source_latency: Duration::from_millis(2),
            ttl: Some(Duration::from_millis(100)),
            eager_refresh: Some(0.5),
            rate: Some(1_000),
            ..config()
        })
        .await
        .unwrap();
        assert!(report.is_clean(), "{:?}", report.errors);
        assert_eq!(report.hits.len() + report.misses.len(), 400);
        assert!(
            report.cache_stats.eager_refreshes > 0,
            "{:?}",
            report.cache_stats
        );
        // more source calls than keys: the refreshes called it (not compared with the waits,
        // which count by latency and so also count hits a loaded machine delayed)
        assert!(
            report.source_calls > 5,
            "{} source calls for 5 keys",
            report.source_calls
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timed_run_stops_by_itself_and_counts_what_it_did() {
        let t = Instant::now();
        let report = run(DemoConfig {
            duration: Some(Duration::from_secs(1)),
            rate: Some(2_000),
            requests: 10,
            ..config()
        })
        .await
        .unwrap();
        assert!(t.elapsed() < Duration::from_secs(30));
        assert!(report.is_clean());
        assert!(
            report.requests > 10,
            "cycled through the sequence: {}",
            report.requests
        );
        assert_eq!(report.hits.len() + report.misses.len(), report.requests);
    }

    #[test]
    fn source_values_differ_per_key_and_have_the_requested_size() {
        let (r, body) = source_value(7, 100);
        assert_eq!(r, 7);
        assert_eq!(body.len(), 100);
        assert_ne!(source_value(8, 100), source_value(7, 100));
    }

    #[cfg(not(feature = "redis"))]
    #[tokio::test]
    async fn redis_flag_is_a_clear_usage_error_without_the_url() {
        let c = DemoConfig {
            redis: Some("redis://:hunter2@127.0.0.1:6379".into()),
            ..config()
        };
        let err = match build_target(&c).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("--redis must fail in this build"),
        };
        assert!(err.contains("--features redis"), "{err}");
        assert!(!err.contains("hunter2"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn small_run_accounts_for_every_request() {
        let report = run(config()).await.unwrap();
        assert_eq!(report.errors, 0);
        assert_eq!(report.wrong, 0);
        assert_eq!(report.hits.len() + report.misses.len(), 2_000);
        // every miss called the source exactly once; hits never did
        assert_eq!(report.misses.len(), report.source_calls);
        // the backend bound holds, and a skewed workload over 200 keys hits at least sometimes
        let (entries, bytes) = report.stored.unwrap();
        assert!(entries <= 50, "entries = {entries}");
        assert!(entries > 0 && bytes > 0);
        assert!(report.hits.len() > 0);
    }
}
