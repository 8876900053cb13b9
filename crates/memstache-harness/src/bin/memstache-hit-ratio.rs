//! Prints the hit ratio of every eviction policy on the standard cache traces.
//!
//! ```text
//! memstache-hit-ratio [--traces DIR] [--policy NAME]... [--trace NAME]...
//! memstache-hit-ratio --sweep [--traces DIR] [--out DIR] [--points N] [--capacities A,B,..]
//!                     [--policy NAME]... [--trace NAME]...
//! ```
//!
//! `--sweep` replays every ARC (`.lis`) and LIRS (`.trace`) file in the directory (optionally
//! `.zst`/`.gz`) at a range of capacities (`--points` geometric steps from 1/256 of the
//! trace's footprint up to all of it, plus the standard capacities of the published traces;
//! or exactly `--capacities`), prints one Markdown table per trace, and writes a
//! hit-ratio-vs-capacity chart per trace (`OUT/<trace>.svg`) and all tables
//! (`OUT/hit-ratio.md`); `--out` defaults to `target/hit-ratio`. It ends with every row where
//! `tinylfu` is more than 0.5 points below `lru` (the floor `docs/eviction.md` sets).
//!
//! `--traces` defaults to `$MEMSTACHE_TRACES`, else `../shared/traces` beside the workspace
//! root; `--policy` (`lru`, `lfu`, `time`, `tinylfu`, `sieve`, `s3fifo`, or a comma-separated
//! list) and `--trace` (`OLTP`, `gli`, `loop`, `multi1`, `2_pools`) filter the table. Run it
//! with `cargo xtask hit-ratio` (release build).
//! The `optimal %` column is Belady's offline optimum (MIN) on the same trace and capacity.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use memstache_harness::sweep;
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
    sweep: bool,
    out: PathBuf,
    points: usize,
    capacities: Vec<usize>,
}

fn usage() -> &'static str {
    "usage: memstache-hit-ratio [--traces DIR] [--policy NAME[,NAME]]... [--trace NAME]...\n\
            memstache-hit-ratio --sweep [--traces DIR] [--out DIR] [--points N] \
     [--capacities A,B,..] [--policy ..] [--trace ..]\n\
     policies: lru, lfu, time, tinylfu, sieve, s3fifo; traces: OLTP, gli, loop, multi1, 2_pools"
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        traces: traces_dir(),
        policies: Vec::new(),
        trace_names: Vec::new(),
        sweep: false,
        out: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/hit-ratio"),
        points: 10,
        capacities: Vec::new(),
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
            "--sweep" => args.sweep = true,
            "--out" => args.out = PathBuf::from(value()?),
            "--points" => {
                args.points = value()?
                    .parse()
                    .map_err(|_| format!("--points needs a number\n{}", usage()))?;
            }
            "--capacities" => {
                for c in value()?.split(',') {
                    args.capacities.push(c.trim().parse().map_err(|_| {
                        format!("--capacities needs numbers, got {c:?}\n{}", usage())
                    })?);
                }
            }
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
    if args.sweep {
        return sweep_all(&args, &policies);
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

fn sweep_all(
    args: &Args,
    policies: &[std::sync::Arc<dyn memstache_core::raw::EvictionPolicy>],
) -> ExitCode {
    let files = match sweep::trace_files(&args.traces) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!(
                "no trace files in {}\n{WHERE_TO_GET_THEM}",
                args.traces.display()
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!(
                "cannot read {}: {e}\n{WHERE_TO_GET_THEM}",
                args.traces.display()
            );
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("cannot create {}: {e}", args.out.display());
        return ExitCode::FAILURE;
    }
    let mut tables = String::new();
    let mut below = Vec::new();
    for path in files {
        let trace = match Trace::load(&path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot read {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        };
        if !args.trace_names.is_empty() && !args.trace_names.contains(&trace.name) {
            continue;
        }
        let unique = sweep::footprint(&trace);
        let capacities = if args.capacities.is_empty() {
            let mut c = sweep::default_capacities(unique, args.points);
            if let Some((_, standard)) = STANDARD
                .iter()
                .find(|(f, _)| f.split('.').next() == Some(trace.name.as_str()))
            {
                c.extend_from_slice(standard);
            }
            c
        } else {
            args.capacities.clone()
        };
        let result = sweep::sweep(&trace, unique, policies, &capacities);
        let table = result.markdown();
        println!("{table}");
        tables.push_str(&table);
        tables.push('\n');
        for row in &result.rows {
            if let (Some(t), Some(l)) = (row.ratio("tinylfu"), row.ratio("lru"))
                && t < l - 0.5
            {
                below.push(format!(
                    "{} at {}: tinylfu {t:.2} %, lru {l:.2} %",
                    result.trace, row.capacity
                ));
            }
        }
        let svg = args.out.join(format!("{}.svg", result.trace));
        if let Err(e) = std::fs::write(&svg, result.svg()) {
            eprintln!("cannot write {}: {e}", svg.display());
            return ExitCode::FAILURE;
        }
        eprintln!("wrote {}", svg.display());
    }
    let md = args.out.join("hit-ratio.md");
    if let Err(e) = std::fs::write(&md, &tables) {
        eprintln!("cannot write {}: {e}", md.display());
        return ExitCode::FAILURE;
    }
    eprintln!("wrote {}", md.display());
    if below.is_empty() {
        println!("tinylfu is within 0.5 points of lru (or above) on every row.");
    } else {
        println!("tinylfu more than 0.5 points below lru:");
        for b in below {
            println!("- {b}");
        }
    }
    ExitCode::SUCCESS
}
