#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod bench;
mod demo;
mod report;
mod zipf;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// memstache: a distributed cache for Rust services. This tool shows it at work.
#[derive(Debug, Parser)]
#[command(name = "memstache", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a read-through workload on the embedded cache and print hit ratio and latencies.
    ///
    /// Replays a seeded Zipf-distributed sequence of requests through
    /// `cache.get_or_set(key, EntryOptions::default(), || slow_source(key))` from many
    /// concurrent tasks. The simulated source sleeps for --source-latency-ms and counts its
    /// calls; every answer is checked against what the source returns for that key.
    Demo(DemoArgs),
    /// Measure memstache beside its raw peer in one run: moka on the embedded backend, or
    /// hand-rolled postcard + redis-rs and raw redis-rs with --redis.
    ///
    /// Rows run in interleaved rounds; each ratio is the median of per-round ratios. The
    /// issue targets are printed beside the Redis ratios. Nothing here fails on a number.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Operations per row and round.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    ops: usize,
    /// Interleaved rounds (the figures are medians over rounds).
    #[arg(long, default_value_t = 5, value_name = "N")]
    rounds: usize,
    /// Requests in flight on Redis (the embedded rows run sequentially).
    #[arg(long, default_value_t = 64, value_name = "N")]
    inflight: usize,
    /// Size of the `String` value in bytes.
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    value_bytes: usize,
    /// Measure against Redis at URL (plain `redis://`; keys go to a fresh namespace and are
    /// removed afterwards). Needs the `redis` feature; hidden without it.
    #[arg(long, value_name = "URL", hide = !cfg!(feature = "redis"))]
    redis: Option<String>,
}

impl BenchArgs {
    fn into_config(self) -> bench::BenchConfig {
        bench::BenchConfig {
            ops: self.ops,
            rounds: self.rounds,
            inflight: self.inflight,
            value_bytes: self.value_bytes,
            redis: self.redis,
        }
    }
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Number of requests to replay.
    #[arg(long, default_value_t = 200_000, value_name = "N")]
    requests: usize,
    /// Number of distinct keys the requests are drawn from.
    #[arg(long, default_value_t = 20_000, value_name = "N")]
    keys: usize,
    /// Zipf exponent s of key popularity (0 = uniform; larger = more skewed).
    #[arg(long, default_value_t = 1.0, value_name = "S")]
    zipf: f64,
    /// Number of concurrent tokio tasks issuing requests.
    #[arg(long, default_value_t = 64, value_name = "N")]
    concurrency: usize,
    /// How long the simulated source takes per call, in milliseconds (0 = no delay).
    #[arg(long, default_value_t = 2, value_name = "MS")]
    source_latency_ms: u64,
    /// Most entries the in-memory backend holds (least recently used entries are evicted).
    #[arg(long, default_value_t = 5_000, value_name = "N")]
    capacity: usize,
    /// Size of each value's body in bytes.
    #[arg(long, default_value_t = 128, value_name = "BYTES")]
    value_bytes: usize,
    /// Seed of the workload generator (the same seed replays the same requests).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Run against Redis at URL (e.g. redis://127.0.0.1:6379) instead of the embedded
    /// backend, in a fresh namespace. Needs the `redis` feature; hidden without it.
    #[arg(long, value_name = "URL", hide = !cfg!(feature = "redis"))]
    redis: Option<String>,
    /// The read-through call: get-or-set (the loader borrows the caller) or get-or-load
    /// (a 'static loader, which eager refresh and loader timeouts need).
    #[arg(long, value_enum, default_value_t = ApiArg::GetOrSet)]
    api: ApiArg,
    /// Entry duration in milliseconds (absolute expiration); without it entries live until
    /// evicted.
    #[arg(long, value_name = "MS")]
    ttl_ms: Option<u64>,
    /// Refresh an entry in the background when it is read past this fraction of its life
    /// (0 < F < 1; needs --api get-or-load and --ttl-ms).
    #[arg(long, value_name = "F")]
    eager_refresh: Option<f32>,
    /// Serve the stale copy when the source takes longer than this, and let the load finish
    /// in the background (needs --api get-or-load; turns fail-safe on).
    #[arg(long, value_name = "MS")]
    soft_timeout_ms: Option<u64>,
    /// Never wait longer than this for the source: the stale copy, or a timeout error
    /// (needs --api get-or-load; turns fail-safe on).
    #[arg(long, value_name = "MS")]
    hard_timeout_ms: Option<u64>,
    /// Make the source stall: a call in the first STALL_MS of every PERIOD_MS waits until
    /// the stall ends (e.g. 10000:1000 = 1 s in every 10 s).
    #[arg(long, value_name = "PERIOD_MS:STALL_MS", value_parser = demo::parse_stall)]
    stall: Option<(Duration, Duration)>,
    /// Run for this many seconds, cycling through the request sequence (instead of
    /// replaying --requests once).
    #[arg(long, value_name = "SECS")]
    duration_secs: Option<u64>,
    /// Pace the workers to this many requests per second in all.
    #[arg(long, value_name = "N")]
    rate: Option<u64>,
    /// With --duration-secs: make but do not count the requests of the first SECS (steady
    /// state, without the cold start's misses).
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    warmup_secs: u64,
}

/// `--api`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ApiArg {
    GetOrSet,
    GetOrLoad,
}

impl DemoArgs {
    fn into_config(self) -> demo::DemoConfig {
        demo::DemoConfig {
            requests: self.requests,
            keys: self.keys,
            zipf: self.zipf,
            concurrency: self.concurrency,
            source_latency: Duration::from_millis(self.source_latency_ms),
            capacity: self.capacity,
            value_bytes: self.value_bytes,
            seed: self.seed,
            redis: self.redis,
            api: match self.api {
                ApiArg::GetOrSet => demo::Api::GetOrSet,
                ApiArg::GetOrLoad => demo::Api::GetOrLoad,
            },
            ttl: self.ttl_ms.map(Duration::from_millis),
            eager_refresh: self.eager_refresh,
            soft_timeout: self.soft_timeout_ms.map(Duration::from_millis),
            hard_timeout: self.hard_timeout_ms.map(Duration::from_millis),
            stall: self.stall,
            duration: self.duration_secs.map(Duration::from_secs),
            rate: self.rate,
            warmup: Duration::from_secs(self.warmup_secs),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => run_demo(args.into_config()),
        Command::Bench(args) => match bench::run(&args.into_config()) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("memstache bench: error: {e}");
                ExitCode::from(2)
            }
        },
    }
}

fn run_demo(config: demo::DemoConfig) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("memstache demo: cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo::run(config)) {
        Ok(mut report) => {
            println!(
                "memstache demo: read-through {} over a slow source",
                report.api.name()
            );
            print!("{}", report::Table(report.rows()));
            if report.is_clean() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "memstache demo: FAILED: {} error(s), {} wrong value(s)",
                    report.errors, report.wrong
                );
                ExitCode::FAILURE
            }
        }
        Err(demo::DemoError::Usage(msg)) => {
            eprintln!("memstache demo: error: {msg}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("memstache demo: error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn demo_flags_parse_into_the_config() {
        let cli = Cli::try_parse_from([
            "memstache",
            "demo",
            "--requests",
            "10",
            "--keys",
            "5",
            "--zipf",
            "0.8",
            "--concurrency",
            "3",
            "--source-latency-ms",
            "0",
            "--capacity",
            "4",
            "--seed",
            "9",
        ])
        .unwrap();
        let Command::Demo(args) = cli.command else {
            panic!("`demo` parses as the demo command");
        };
        let c = args.into_config();
        assert_eq!(
            (c.requests, c.keys, c.concurrency, c.capacity),
            (10, 5, 3, 4)
        );
        assert_eq!(c.zipf, 0.8);
        assert_eq!(c.source_latency, Duration::ZERO);
        assert_eq!(c.seed, 9);
        assert!(c.redis.is_none());
    }

    #[test]
    fn read_through_flags_parse_into_the_config() {
        let cli = Cli::try_parse_from([
            "memstache",
            "demo",
            "--api",
            "get-or-load",
            "--ttl-ms",
            "1000",
            "--eager-refresh",
            "0.8",
            "--soft-timeout-ms",
            "50",
            "--hard-timeout-ms",
            "2000",
            "--stall",
            "10000:1000",
            "--duration-secs",
            "30",
            "--rate",
            "2000",
            "--warmup-secs",
            "10",
        ])
        .unwrap();
        let Command::Demo(args) = cli.command else {
            panic!("`demo` parses as the demo command");
        };
        let c = args.into_config();
        let ms = Duration::from_millis;
        assert_eq!(c.api, demo::Api::GetOrLoad);
        assert_eq!(c.ttl, Some(ms(1000)));
        assert_eq!(c.eager_refresh, Some(0.8));
        assert_eq!(
            (c.soft_timeout, c.hard_timeout),
            (Some(ms(50)), Some(ms(2000)))
        );
        assert_eq!(c.stall, Some((ms(10_000), ms(1_000))));
        assert_eq!(c.duration, Some(Duration::from_secs(30)));
        assert_eq!(c.rate, Some(2000));
        assert_eq!(c.warmup, Duration::from_secs(10));
        assert!(c.validate().is_ok());
        let err = Cli::try_parse_from(["memstache", "demo", "--stall", "1000"]).unwrap_err();
        assert!(err.to_string().contains("PERIOD_MS:STALL_MS"), "{err}");
        let err = Cli::try_parse_from(["memstache", "demo", "--api", "get"]).unwrap_err();
        assert!(err.to_string().contains("get-or-load"), "{err}");
    }

    #[test]
    fn defaults_match_the_documented_workload() {
        let Command::Demo(args) = Cli::try_parse_from(["memstache", "demo"]).unwrap().command
        else {
            panic!("`demo` parses as the demo command");
        };
        let c = args.into_config();
        assert_eq!((c.requests, c.keys, c.concurrency), (200_000, 20_000, 64));
        assert_eq!(c.source_latency, Duration::from_millis(2));
        assert_eq!(c.api, demo::Api::GetOrSet);
        assert!(c.ttl.is_none() && c.duration.is_none() && c.rate.is_none());
    }

    #[test]
    fn redis_flag_is_shown_only_with_the_redis_feature() {
        let mut cmd = Cli::command();
        let help = cmd
            .find_subcommand_mut("demo")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(help.contains("--source-latency-ms"));
        assert_eq!(help.contains("--redis"), cfg!(feature = "redis"));
    }

    #[test]
    fn bench_flags_parse_into_the_config() {
        let cli = Cli::try_parse_from([
            "memstache",
            "bench",
            "--ops",
            "7",
            "--rounds",
            "3",
            "--inflight",
            "9",
            "--value-bytes",
            "10",
        ])
        .unwrap();
        let Command::Bench(args) = cli.command else {
            panic!("`bench` parses as the bench command");
        };
        let c = args.into_config();
        assert_eq!((c.ops, c.rounds, c.inflight, c.value_bytes), (7, 3, 9, 10));
        assert!(c.redis.is_none());
        assert!(c.validate().is_ok());
    }
}
