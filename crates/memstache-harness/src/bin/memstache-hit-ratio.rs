//! Prints the hit ratio of every eviction policy on the standard cache traces.
//!
//! ```text
//! memstache-hit-ratio [--traces DIR] [--policy NAME]... [--trace NAME]...
//! ```
//!
//! `--traces` defaults to `$MEMSTACHE_TRACES`, else `../shared/traces` beside the workspace
//! root; `--policy` (`lru`, `lfu`, `time`, `tinylfu`, `sieve`, `s3fifo`, or a comma-separated
//! list) and `--trace` (`OLTP`, `gli`, `loop`, `multi1`, `2_pools`) filter the table. Run it
//! with `cargo xtask hit-ratio` (release build).
//! The `optimal %` column is Belady's offline optimum (MIN) on the same trace and capacity.

use std::path::PathBuf;
use std::process::ExitCode;

use memstache_harness::traces::{
    STANDARD, Trace, WHERE_TO_GET_THEM, replay, replay_optimal, traces_dir,
};

/// Published reference values: (trace, capacity, LRU %, ARC %).
const PUBLISHED: &[(&str, usize, Option<f64>, Option<f64>)] = &[
    ("OLTP", 250, Some(16.47), None),
    ("OLTP", 500, Some(23.45), None),
    ("OLTP", 1_000, Some(32.83), Some(38.93)),
    ("OLTP", 2_000, Some(42.47), Some(46.08)),
    ("gli", 250, Some(0.91), None),
    ("gli", 500, Some(0.95), None),
    ("gli", 1_000, Some(11.21), None),
    ("gli", 1_500, Some(36.56), None),
    ("gli", 2_000, Some(57.41), None),
    ("loop", 256, Some(0.00), None),
    ("loop", 512, Some(0.00), None),
    ("loop", 768, Some(0.00), None),
    ("loop", 1_024, Some(99.80), None),
];

struct Args {
    traces: PathBuf,
    policies: Vec<String>,
    trace_names: Vec<String>,
}

fn usage() -> &'static str {
    "usage: memstache-hit-ratio [--traces DIR] [--policy NAME[,NAME]]... [--trace NAME]...\n\
     policies: lru, lfu, time, tinylfu, sieve, s3fifo; traces: OLTP, gli, loop, multi1, 2_pools"
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        traces: traces_dir(),
        policies: Vec::new(),
        trace_names: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (a.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value\n{}", usage()))
        };
        match flag.as_str() {
            "--traces" => args.traces = PathBuf::from(value()?),
            "--policy" => args
                .policies
                .extend(value()?.split(',').map(|s| s.trim().to_owned())),
            "--trace" => args
                .trace_names
                .extend(value()?.split(',').map(|s| s.trim().to_owned())),
            "-h" | "--help" => return Err(usage().to_owned()),
            // a separator passed through by wrappers (`cargo xtask hit-ratio -- …`)
            "--" => {}
            other => return Err(format!("unknown argument {other}\n{}", usage())),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let mut policies = memstache_eviction::all();
    if !args.policies.is_empty() {
        for p in &args.policies {
            if memstache_eviction::by_name(p).is_none() {
                eprintln!("unknown policy {p}\n{}", usage());
                return ExitCode::from(2);
            }
        }
        policies.retain(|p| args.policies.iter().any(|n| n == p.name()));
    }
    println!(
        "| trace | capacity | policy | hit ratio % | requests/s | published LRU % | ARC % | \
         optimal % |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|");
    for (file, capacities) in STANDARD {
        let short = file.split('.').next().unwrap_or(file);
        if !args.trace_names.is_empty() && !args.trace_names.iter().any(|t| t == short) {
            continue;
        }
        let path = args.traces.join(file);
        let trace = match Trace::load(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot read {}: {e}", path.display());
                if e.kind() == std::io::ErrorKind::NotFound {
                    eprintln!("{WHERE_TO_GET_THEM}");
                }
                return ExitCode::FAILURE;
            }
        };
        for &capacity in *capacities {
            let reference = PUBLISHED
                .iter()
                .find(|(t, c, _, _)| *t == trace.name && *c == capacity);
            let fmt = |v: Option<f64>| v.map_or_else(|| "".to_owned(), |v| format!("{v:.2}"));
            let optimal = replay_optimal(capacity, &trace.requests).hit_ratio_percent();
            for policy in &policies {
                let r = replay(policy.as_ref(), capacity, &trace.requests);
                println!(
                    "| {} | {} | {} | {:.2} | {:.0} | {} | {} | {:.2} |",
                    trace.name,
                    capacity,
                    policy.name(),
                    r.hit_ratio_percent(),
                    r.requests_per_sec(),
                    fmt(reference.and_then(|r| r.2)),
                    fmt(reference.and_then(|r| r.3)),
                    optimal,
                );
            }
        }
    }
    ExitCode::SUCCESS
}
