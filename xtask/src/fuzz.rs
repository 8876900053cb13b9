//! `cargo xtask fuzz`: the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer) on the stable
//! toolchain, each for its share of the time, with a summary of executions and crashes.
//!
//! cargo-fuzz instruments with `-Cpasses=sancov-module` and `-Cllvm-args=-sanitizer-coverage-*`
//! (stable `-C` flags); only a sanitizer needs nightly (`-Zsanitizer`), so the targets are built
//! with `--sanitizer none` and the libFuzzer engine of `libfuzzer-sys` runs them. Rust's own
//! checks (bounds, overflow, debug assertions: `fuzz/Cargo.toml`'s release profile) turn bugs
//! into panics, which libFuzzer reports as crashes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::{Res, cargo, display, fail, status, workspace_root};

/// The fuzz targets, in the order they run; must match the `[[bin]]`s of `fuzz/Cargo.toml`
/// (a test checks it).
pub(crate) const TARGETS: [&str; 4] = ["read_path", "read_raw", "envelope_decode", "redis_config"];

/// Seconds per target of the short run in `cargo xtask ci`.
pub(crate) const CI_SECONDS_PER_TARGET: u64 = 15;

/// `cargo xtask fuzz [--minutes N] [--target NAME]`: every target (or one) for its share of
/// N minutes (default 1).
pub(crate) fn fuzz(args: &[String]) -> Res {
    let mut minutes = 1.0f64;
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--minutes" => {
                let v = it.next().ok_or_else(|| fail!("--minutes needs a number"))?;
                minutes = v
                    .parse::<f64>()
                    .ok()
                    .filter(|m| m.is_finite() && *m > 0.0)
                    .ok_or_else(|| fail!("--minutes needs a positive number, got `{v}`"))?;
            }
            "--target" => {
                let v = it.next().ok_or_else(|| fail!("--target needs a name"))?;
                if !TARGETS.contains(&v.as_str()) {
                    return Err(fail!("unknown fuzz target `{v}` (targets: {TARGETS:?})"));
                }
                only = Some(v.clone());
            }
            other => return Err(fail!("unknown argument `{other}` (see `cargo xtask help`)")),
        }
    }
    let targets: Vec<&str> = match &only {
        Some(t) => vec![t.as_str()],
        None => TARGETS.to_vec(),
    };
    let seconds = share(minutes, targets.len());
    run_targets(&targets, seconds)
}

/// The short run of `cargo xtask ci`: every target for [`CI_SECONDS_PER_TARGET`] seconds.
pub(crate) fn ci() -> Res {
    run_targets(&TARGETS, CI_SECONDS_PER_TARGET)
}

/// Each of `n` targets' whole seconds of `minutes` (at least one).
pub(crate) fn share(minutes: f64, n: usize) -> u64 {
    ((minutes * 60.0 / n.max(1) as f64) as u64).max(1)
}

/// What one target's run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Inputs executed (libFuzzer's `stat::number_of_executed_units`, else "Done N runs").
    pub(crate) executions: Option<u64>,
    /// The reproducer libFuzzer wrote, when it found a crash, leak, timeout or OOM.
    pub(crate) reproducer: Option<String>,
}

/// Reads libFuzzer's output.
pub(crate) fn parse_output(text: &str) -> Outcome {
    let mut out = Outcome::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            out.executions = n.trim().parse().ok().or(out.executions);
        } else if let Some(rest) = line.strip_prefix("Done ")
            && let Some(n) = rest.split(' ').next()
            && out.executions.is_none()
        {
            out.executions = n.parse().ok();
        }
        if let Some(i) = line.find("Test unit written to ") {
            let path = line[i + "Test unit written to ".len()..].trim();
            out.reproducer = Some(path.to_string());
        }
    }
    out
}

/// Builds the targets once, then runs each for `seconds`; prints a summary and fails on the
/// first crash (after running and reporting all targets).
fn run_targets(targets: &[&str], seconds: u64) -> Res {
    ensure_cargo_fuzz()?;
    let target_dir = crate::bare_clone::outer_target_dir()?.join("fuzz");
    let build_started = Instant::now();
    crate::util::run(&mut fuzz_cmd("build", &target_dir))?;
    let built_in = build_started.elapsed();
    let mut rows = Vec::new();
    let mut crashes = Vec::new();
    for target in targets {
        let (outcome, took, code) = run_target(target, seconds, &target_dir)?;
        let execs = outcome.executions;
        if let Some(path) = &outcome.reproducer {
            crashes.push(format!("{target}: reproducer {path}"));
        } else if code != Some(0) {
            crashes.push(format!(
                "{target}: libFuzzer exited with {code:?} and wrote no reproducer (log above)"
            ));
        }
        rows.push((
            target.to_string(),
            took,
            execs,
            outcome.reproducer.is_some() || code != Some(0),
        ));
    }
    println!(
        "fuzz (libFuzzer via cargo-fuzz, stable, --sanitizer none; build {:.1}s):",
        built_in.as_secs_f64()
    );
    println!(
        "  {:<16} {:>8} {:>12} {:>10} {:>8}",
        "target", "seconds", "executions", "exec/s", "crashes"
    );
    for (target, took, execs, crashed) in &rows {
        let secs = took.max(0.001);
        let (e, rate) = match execs {
            Some(n) => (n.to_string(), format!("{:.0}", *n as f64 / secs)),
            None => ("?".to_string(), "?".to_string()),
        };
        println!(
            "  {target:<16} {secs:>8.1} {e:>12} {rate:>10} {:>8}",
            u8::from(*crashed)
        );
    }
    if crashes.is_empty() {
        Ok(())
    } else {
        Err(fail!(
            "fuzzing found {} crash(es): {}; reproduce with `cargo fuzz run --fuzz-dir fuzz \
             --sanitizer none <target> <reproducer>`, then keep it as a regression test",
            crashes.len(),
            crashes.join("; ")
        ))
    }
}

/// `cargo fuzz <sub> --fuzz-dir fuzz --sanitizer none --target-dir <dir>` from the root.
fn fuzz_cmd(sub: &str, target_dir: &Path) -> Command {
    let mut cmd = cargo();
    cmd.args([
        "fuzz",
        sub,
        "--fuzz-dir",
        "fuzz",
        "--sanitizer",
        "none",
        "--target-dir",
    ])
    .arg(target_dir);
    cmd
}

/// Runs one target for `seconds` over the committed seeds (read-only) and a working corpus
/// under the target dir (kept between runs). Returns what it did, the wall time and the exit
/// code. libFuzzer's output goes to `<target dir>/fuzz/logs/<target>.log`.
fn run_target(target: &str, seconds: u64, target_dir: &Path) -> Res<(Outcome, f64, Option<i32>)> {
    let root = workspace_root();
    let work: PathBuf = target_dir.join("corpus").join(target);
    let seeds = root.join("fuzz").join("corpus").join(target);
    let logs = target_dir.join("logs");
    std::fs::create_dir_all(&work)?;
    std::fs::create_dir_all(&logs)?;
    let log_path = logs.join(format!("{target}.log"));
    let log = std::fs::File::create(&log_path)?;
    let mut cmd = fuzz_cmd("run", target_dir);
    cmd.arg(target)
        .arg(&work)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        // a hang is a finding too, not a stalled CI step
        .arg("-timeout=10")
        .arg("-print_final_stats=1");
    eprintln!("$ {}  (output: {})", display(&cmd), log_path.display());
    let started = Instant::now();
    let st = cmd
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .map_err(|e| fail!("cannot run `{}`: {e}", display(&cmd)))?;
    let took = started.elapsed().as_secs_f64();
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    let outcome = parse_output(&text);
    if !st.success() {
        // the crash report: from the panic or libFuzzer's error on, else the last lines
        let lines: Vec<&str> = text.lines().collect();
        let from = lines
            .iter()
            .position(|l| l.contains("panicked at") || l.contains("ERROR: libFuzzer"))
            .unwrap_or(lines.len().saturating_sub(40));
        for l in lines.iter().skip(from).take(40) {
            eprintln!("  | {l}");
        }
    }
    Ok((outcome, took, st.code()))
}

/// Installs cargo-fuzz with `cargo install --locked cargo-fuzz` when `cargo fuzz` is missing.
fn ensure_cargo_fuzz() -> Res {
    let present = cargo()
        .args(["fuzz", "--version"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("cargo-fuzz is missing; installing it");
    let st = status(cargo().args(["install", "--locked", "cargo-fuzz"]))?;
    if st.success() {
        Ok(())
    } else {
        Err(fail!("`cargo install --locked cargo-fuzz` failed ({st})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_match_the_bins_of_the_fuzz_manifest() {
        let manifest =
            std::fs::read_to_string(workspace_root().join("fuzz").join("Cargo.toml")).unwrap();
        let bins: Vec<&str> = manifest
            .split("[[bin]]")
            .skip(1)
            .filter_map(|b| b.lines().find_map(|l| l.strip_prefix("name = ")))
            .map(|n| n.trim_matches('"'))
            .collect();
        let mut expected = TARGETS.to_vec();
        let mut got = bins.clone();
        expected.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, expected);
        for t in TARGETS {
            let seeds = workspace_root().join("fuzz").join("corpus").join(t);
            assert!(
                std::fs::read_dir(&seeds).is_ok_and(|mut d| d.next().is_some()),
                "no seeds in {}",
                seeds.display()
            );
        }
    }

    #[test]
    fn the_committed_corpus_stays_small() {
        fn size(dir: &Path) -> u64 {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    if e.file_type().unwrap().is_dir() {
                        size(&e.path())
                    } else {
                        e.metadata().unwrap().len()
                    }
                })
                .sum()
        }
        let total = size(&workspace_root().join("fuzz").join("corpus"));
        assert!(total < 200 << 10, "fuzz/corpus holds {total} bytes");
    }

    #[test]
    fn parses_executions_and_reproducers() {
        let done = "#4096\tpulse  cov: 10\nDone 123456 runs in 21 second(s)\n\
                    stat::number_of_executed_units: 123457\nstat::peak_rss_mb: 60\n";
        assert_eq!(
            parse_output(done),
            Outcome {
                executions: Some(123_457),
                reproducer: None
            }
        );
        assert_eq!(
            parse_output("Done 99 runs in 1 second(s)").executions,
            Some(99)
        );
        let crash = "==1== ERROR: libFuzzer: deadly signal\nartifact_prefix='fuzz/artifacts/\
                     read_raw/'; Test unit written to fuzz/artifacts/read_raw/crash-abc\n";
        assert_eq!(
            parse_output(crash).reproducer.as_deref(),
            Some("fuzz/artifacts/read_raw/crash-abc")
        );
    }

    #[test]
    fn minutes_are_shared_between_targets() {
        assert_eq!(share(1.0, 4), 15);
        assert_eq!(share(10.0, 4), 150);
        assert_eq!(share(0.001, 4), 1);
        assert_eq!(share(2.0, 1), 120);
    }
}
