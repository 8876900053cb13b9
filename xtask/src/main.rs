//! memstache's developer commands. `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! These commands are exactly what CI runs (`.ci/run` is `cargo xtask ci`). xtask depends on
//! nothing but std so that it compiles in seconds.

mod bare_clone;
mod circles;
mod deny;
mod fuzz;
mod json;
mod lint;
mod msrv;
mod package;
mod test;
mod traces;
mod util;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use util::{Res, cargo, fail, run};

const USAGE: &str = "\
cargo xtask <command> [args]

Commands (exactly what CI runs):
  test [args] [-- test-args]  install Redis if missing (root + apt-get), then
                              `cargo test --workspace --all-features [args]`; the trace
                              tests need $MEMSTACHE_TRACES or ../shared/traces (reported
                              as NOT RUN without them; required under CI=true)
  lint                        cargo fmt --check, clippy -D warnings, rustdoc -D warnings, msrv,
                              circles
  msrv                        rustc and every resolved dependency fit `rust-version`
  circles                     no two source files of a crate import each other
  deny [args]                 cargo-deny: offline against ../shared/advisory-db when it is
                              there, else with its fetched default database
  fuzz [--minutes N] [--target NAME]
                              the fuzz targets in fuzz/ (cargo-fuzz, libFuzzer, stable,
                              --sanitizer none; installs cargo-fuzz if missing), each for its
                              share of N minutes (default 1); executions and crashes per target
  package [args]              `cargo package --workspace` (no upload), licence files checked
  bare-clone                  git clone HEAD into a temp dir with nothing beside it and run
                              the README's two commands there
  ci                          lint, test, fuzz (15 s per target), deny, package, bare-clone;
                              stops at the first failure
  hit-ratio [args]            run the memstache-hit-ratio tool (release build)
  bench [args]                cargo bench -p memstache-benches [args]
  help                        this text
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(command) = args.next() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest: Vec<String> = args.collect();
    let result = match command.as_str() {
        "test" => test::test(&rest).map(|_| ()),
        "package" => package::package(&rest),
        "bare-clone" => no_args(&command, &rest)
            .and_then(|()| bare_clone::bare_clone())
            .map(|line| println!("{line}")),
        "lint" => no_args(&command, &rest).and_then(|()| lint::lint()),
        "msrv" => no_args(&command, &rest).and_then(|()| msrv::check()),
        "circles" => no_args(&command, &rest).and_then(|()| circles::check()),
        "deny" => deny::deny(&rest),
        "fuzz" => fuzz::fuzz(&rest),
        "ci" => no_args(&command, &rest).and_then(|()| ci()),
        "hit-ratio" => run(cargo()
            .args(["run", "--release", "-q", "-p", "memstache-harness"])
            .args(["--bin", "memstache-hit-ratio", "--"])
            .args(&rest)),
        "bench" => run(cargo()
            .args(["bench", "-p", "memstache-benches"])
            .args(&rest)),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {command}: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn no_args(command: &str, rest: &[String]) -> Res {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(fail!("`{command}` takes no arguments (got {rest:?})"))
    }
}

/// The steps of `cargo xtask ci`, in order.
const CI_STEPS: [&str; 6] = ["lint", "traces", "fuzz", "deny", "package", "bare-clone"];

/// lint → traces → fuzz → deny → package → bare-clone, timing each step; stops at the first
/// failure.
///
/// The whole suite (`cargo xtask test`) runs once, in the bare clone: it is the same command on
/// the same committed sources, and running it in the checkout too cost CI a second full run
/// (about 6 minutes of 30). What the clone cannot run, the published-number trace tests (no
/// `../shared` beside it), runs first in the checkout, where CI requires the traces.
fn ci() -> Res {
    let started = Instant::now();
    let mut timings: Vec<(&str, Duration, bool)> = Vec::new();
    let mut test_line = None;
    let mut trace_line = None;
    let mut result = Ok(());
    for step in CI_STEPS {
        eprintln!("==== ci: {step}");
        let t = Instant::now();
        let r = match step {
            "lint" => lint::lint(),
            "traces" => test::test(&traces::only_trace_tests()).and_then(|report| {
                let t = report.totals;
                // not required here (no CI=true) and no traces: the NOT RUN notice
                if let Some(notice) = report.notice {
                    trace_line = Some(notice);
                    return Ok(());
                }
                if t.failed > 0 || t.passed == 0 {
                    return Err(fail!("the trace tests did not pass: {}", t.line()));
                }
                trace_line = Some(format!("trace tests (checkout): {}", t.line()));
                Ok(())
            }),
            "fuzz" => fuzz::ci(),
            "deny" => deny::deny(&[]),
            "package" => package::package(&[]),
            _ => bare_clone::bare_clone().map(|line| test_line = Some(line)),
        };
        timings.push((step, t.elapsed(), r.is_ok()));
        if let Err(e) = r {
            result = Err(fail!("ci step `{step}` failed: {e}"));
            break;
        }
    }
    println!("ci steps:");
    for (step, took, ok) in &timings {
        let verdict = if *ok { "ok" } else { "FAILED" };
        println!("  {step:<10} {verdict:<6} {:>8.1}s", took.as_secs_f64());
    }
    println!(
        "  total             {:>8.1}s",
        started.elapsed().as_secs_f64()
    );
    // The test totals go last so that the closing line of the run is the test summary (with
    // the trace tests' NOT RUN notice, if any, right before it).
    if let Some(line) = trace_line {
        println!("{line}");
    }
    if let Some(line) = test_line {
        println!("{line}");
    }
    result
}
