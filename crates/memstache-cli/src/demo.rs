//! `memstache demo`: a read-through workload against the embedded cache.
//!
//! Many tokio tasks replay one seeded Zipf sequence of requests through
//! `cache.get_or_set(key, EntryOptions::default(), || slow_source(key))`. The simulated source
//! sleeps and counts its calls; every value that comes back is checked against what the source
//! would return for that key.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use memstache::{EntryOptions, MemStache};

use crate::report::{Latencies, Report};
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

/// Builds the cache: the embedded memory backend, or Redis with `--redis URL`.
async fn build_target(config: &DemoConfig) -> Result<Target, DemoError> {
    if let Some(url) = &config.redis {
        return redis_target(url).await;
    }
    let backend = memstache::memory::MemoryBackend::builder()
        .max_entries(config.capacity)
        .build()?;
    let handle = backend.clone();
    let cache = MemStache::builder().backend(backend).build()?;
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
async fn redis_target(url: &str) -> Result<Target, DemoError> {
    let backend = memstache::redis::RedisBackend::connect(url).await?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let namespace = format!("memstache-demo-{}-{nanos}", std::process::id());
    let cache = MemStache::builder()
        .namespace(namespace)
        .backend(backend)
        .build()?;
    Ok(Target {
        cache,
        backend_name: "redis".into(),
        stored: None,
    })
}

/// Without the `redis` feature, `--redis` is a usage error that says how to get it.
#[cfg(not(feature = "redis"))]
async fn redis_target(_url: &str) -> Result<Target, DemoError> {
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

/// The simulated slow source: counts the call, sleeps, returns the value.
async fn slow_source(
    rank: u32,
    config: &DemoConfig,
    calls: &AtomicU64,
) -> Result<(u32, Vec<u8>), std::io::Error> {
    calls.fetch_add(1, Ordering::Relaxed);
    if !config.source_latency.is_zero() {
        tokio::time::sleep(config.source_latency).await;
    }
    Ok(source_value(rank, config.value_bytes))
}

/// What one worker saw.
#[derive(Default)]
struct WorkerTally {
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
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&rank) = workload.get(i) else { break };
                let key = &keys[rank as usize];
                let mut loaded = false;
                let t = Instant::now();
                let r = cache
                    .get_or_set(key, EntryOptions::default(), || {
                        loaded = true;
                        slow_source(rank, &config, &calls)
                    })
                    .await;
                let took = t.elapsed();
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
    let (mut wrong, mut errors, mut first_error) = (0, 0, None);
    for task in tasks {
        let tally = task.await.map_err(|e| {
            DemoError::Cache(memstache::Error::internal("a demo worker panicked").with_source(e))
        })?;
        hits.merge(tally.hits);
        misses.merge(tally.misses);
        wrong += tally.wrong;
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
        requests: config.requests as u64,
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
