//! `cargo xtask test`: make sure Redis is installed, then run every test of the workspace.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};

use crate::traces::{self, TracePlan};
use crate::util::{Res, cargo, display, fail, on_path, output, status};

/// The Debian packages that provide `redis-server` and `redis-cli`.
const REDIS_PACKAGES: [&str; 2] = ["redis-server", "redis-tools"];

/// What to do about Redis before the tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedisPlan {
    /// Both binaries are on PATH.
    Present,
    /// Missing, and we may install it with apt-get.
    Install,
    /// Missing and we cannot install it: tell the user what to run.
    AskUser,
}

/// Decides what to do about Redis.
pub(crate) fn redis_plan(present: bool, is_root: bool, has_apt: bool) -> RedisPlan {
    match (present, is_root && has_apt) {
        (true, _) => RedisPlan::Present,
        (false, true) => RedisPlan::Install,
        (false, false) => RedisPlan::AskUser,
    }
}

/// The exact install command for a user who is not root.
pub(crate) fn install_hint(has_apt: bool) -> String {
    if has_apt {
        format!(
            "sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y {}",
            REDIS_PACKAGES.join(" ")
        )
    } else {
        "install Redis 7 so that `redis-server` and `redis-cli` are on PATH \
         (Debian/Ubuntu: apt-get install -y redis-server redis-tools)"
            .to_owned()
    }
}

fn is_root() -> bool {
    output(Command::new("id").arg("-u")).is_ok_and(|s| s.trim() == "0")
}

/// Ensures `redis-server` and `redis-cli` are on PATH, installing them when we may.
pub(crate) fn ensure_redis() -> Res {
    let present = on_path("redis-server") && on_path("redis-cli");
    let has_apt = on_path("apt-get");
    let root = !present && is_root();
    match redis_plan(present, root, has_apt) {
        RedisPlan::Present => Ok(()),
        RedisPlan::AskUser => Err(fail!(
            "redis-server and redis-cli are needed by the integration tests but are not on \
             PATH; run: {}",
            install_hint(has_apt)
        )),
        RedisPlan::Install => {
            eprintln!("redis-server/redis-cli missing: installing {REDIS_PACKAGES:?} with apt-get");
            crate::util::run(Command::new("apt-get").arg("update"))?;
            crate::util::run(
                Command::new("apt-get")
                    .env("DEBIAN_FRONTEND", "noninteractive")
                    .args(["install", "-y"])
                    .args(REDIS_PACKAGES),
            )?;
            // Debian starts a system redis on 6379 after install. Our tests use their own
            // servers on free ports, so it is harmless; we stop it because *we* started it.
            if on_path("service") {
                let st = status(Command::new("service").args(["redis-server", "stop"]));
                if !st.is_ok_and(|s| s.success()) {
                    eprintln!("note: could not stop the redis-server service (harmless)");
                }
            }
            if on_path("redis-server") && on_path("redis-cli") {
                Ok(())
            } else {
                Err(fail!(
                    "apt-get installed Redis but redis-server/redis-cli are not on PATH"
                ))
            }
        }
    }
}

/// Totals of the `test result:` lines of one `cargo test` run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) suites: u64,
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    pub(crate) ignored: u64,
    /// Tests a name filter left out (`--skip`, or a filter the caller gave).
    pub(crate) filtered: u64,
    /// Tests that did not run for a reason the run reports (the trace tests without traces):
    /// counted as skipped in the closing line.
    pub(crate) not_run: u64,
}

impl Totals {
    /// Adds one libtest summary line (`test result: ok. 3 passed; 0 failed; 1 ignored; …`).
    /// Returns whether the line was one.
    pub(crate) fn add_line(&mut self, line: &str) -> bool {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return false;
        };
        let count = |what: &str| -> u64 {
            rest.split([';', '.'])
                .map(str::trim)
                .find_map(|part| part.strip_suffix(what)?.trim().parse().ok())
                .unwrap_or(0)
        };
        self.suites += 1;
        self.passed += count(" passed");
        self.failed += count(" failed");
        self.ignored += count(" ignored");
        self.filtered += count(" filtered out");
        true
    }

    /// The plain closing line: `test: N passed, N failed, N skipped` (skipped = ignored plus
    /// the tests that were not run, e.g. the trace tests without traces).
    pub(crate) fn line(&self) -> String {
        format!(
            "test: {} passed, {} failed, {} skipped",
            self.passed,
            self.failed,
            self.ignored + self.not_run
        )
    }
}

/// The `cargo test` command line for the given extra arguments: `--workspace` unless the
/// caller picked packages with `-p`/`--package` (before a `--`).
pub(crate) fn cargo_test_args(extra: &[String]) -> Vec<String> {
    let before_dashes = extra.iter().take_while(|a| *a != "--");
    let picks_packages = before_dashes
        .clone()
        .any(|a| a == "-p" || a.starts_with("--package") || a.starts_with("-p"));
    let mut args = vec!["test".to_owned()];
    if !picks_packages {
        args.push("--workspace".to_owned());
    }
    args.push("--all-features".to_owned());
    args.extend(extra.iter().cloned());
    args
}

/// Whether the caller gave the test binaries a name filter of their own (after `--`: a
/// positional filter, or `--skip`): then "filtered out" counts more than our skip.
pub(crate) fn has_own_filters(extra: &[String]) -> bool {
    let mut after = extra.iter().skip_while(|a| *a != "--").skip(1);
    let mut found = false;
    while let Some(a) = after.next() {
        match a.as_str() {
            "--skip" => found = true,
            // libtest flags that take a separate value
            "--test-threads" | "--format" | "--color" | "--logfile" | "--report-time" => {
                after.next();
            }
            flag if flag.starts_with('-') => {}
            _ => found = true,
        }
    }
    found
}

/// Adds `--skip <filter>` for the test binaries (after the `--`, adding one if needed).
pub(crate) fn with_skip(mut args: Vec<String>, filter: &str) -> Vec<String> {
    if !args.iter().any(|a| a == "--") {
        args.push("--".to_owned());
    }
    args.push("--skip".to_owned());
    args.push(filter.to_owned());
    args
}

/// What one `cargo xtask test` run reports: the totals and, when the trace tests were
/// skipped, the NOT RUN notice that goes right before the closing line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Report {
    pub(crate) totals: Totals,
    pub(crate) notice: Option<String>,
}

impl Report {
    /// The notice (if any) and the closing line, which stays the last line.
    pub(crate) fn closing(&self) -> String {
        match &self.notice {
            Some(n) => format!("{n}\n{}", self.totals.line()),
            None => self.totals.line(),
        }
    }
}

/// Runs the whole test suite; prints the totals; fails when any test failed.
///
/// The published-number trace tests run when the traces are found, are skipped with a NOT
/// RUN notice when not, and fail the run when they are required (see [`crate::traces`]).
pub(crate) fn test(extra: &[String]) -> Res<Report> {
    let plan = traces::plan_from_env();
    let mut args = cargo_test_args(extra);
    let mut cmd = cargo();
    let skipped_because = match plan {
        TracePlan::Fail { why } => return Err(fail!("{why}")),
        TracePlan::Run { dir } => {
            println!("trace tests: run, with the traces in {}", dir.display());
            cmd.env(traces::TRACES_VAR, dir);
            None
        }
        TracePlan::Skip { why } => {
            println!("{}", traces::not_run_notice(None, &why));
            args = with_skip(args, traces::TRACE_TESTS_FILTER);
            Some(why)
        }
    };
    ensure_redis()?;
    cmd.args(&args);
    eprintln!("$ {}", display(&cmd));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| fail!("cannot run cargo test: {e}"))?;
    let mut totals = Totals::default();
    let mut last_summary = None;
    if let Some(out) = child.stdout.take() {
        let mut reader = BufReader::new(out);
        let mut buf = Vec::new();
        let stdout = std::io::stdout();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            let mut lock = stdout.lock();
            lock.write_all(&buf)?;
            lock.flush()?;
            let line = String::from_utf8_lossy(&buf);
            if totals.add_line(&line) {
                last_summary = Some(line.trim().to_owned());
            }
        }
    }
    let st = child.wait()?;
    let mut report = Report::default();
    if let Some(mut why) = skipped_because {
        // Without a filter of the caller's, every filtered-out test is a skipped trace test.
        if has_own_filters(extra) {
            why.push_str(" (the count includes tests your own filters left out)");
        }
        totals.not_run = totals.filtered;
        report.notice = Some(traces::not_run_notice(Some(totals.not_run), &why));
    }
    report.totals = totals;
    if let Some(line) = last_summary {
        println!("last summary: {line}");
    }
    println!("test suites run: {}", totals.suites);
    println!("{}", report.closing());
    if !st.success() {
        return Err(fail!("cargo test failed ({st})"));
    }
    if totals.suites == 0 {
        return Err(fail!("cargo test ran no test suite"));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_plan_installs_only_as_root_with_apt() {
        assert_eq!(redis_plan(true, false, false), RedisPlan::Present);
        assert_eq!(redis_plan(false, true, true), RedisPlan::Install);
        assert_eq!(redis_plan(false, false, true), RedisPlan::AskUser);
        assert_eq!(redis_plan(false, true, false), RedisPlan::AskUser);
        assert!(install_hint(true).contains(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server redis-tools"
        ));
        assert!(install_hint(false).contains("redis-server"));
    }

    #[test]
    fn totals_add_up_libtest_summaries() {
        let mut t = Totals::default();
        assert!(t.add_line(
            "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; \
             finished in 0.01s"
        ));
        assert!(t.add_line(
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 5 filtered out; \
             finished in 1.20s\n"
        ));
        assert!(!t.add_line("running 12 tests"));
        assert!(!t.add_line("test foo::bar ... ok"));
        assert_eq!(
            t,
            Totals {
                suites: 2,
                passed: 15,
                failed: 2,
                ignored: 1,
                filtered: 5,
                not_run: 0,
            }
        );
        assert_eq!(t.line(), "test: 15 passed, 2 failed, 1 skipped");
        // tests that were not run count as skipped; the notice goes right before the line
        t.not_run = 5;
        assert_eq!(t.line(), "test: 15 passed, 2 failed, 6 skipped");
        let report = Report {
            totals: t,
            notice: Some("==== NOT RUN: 5".to_owned()),
        };
        assert_eq!(
            report.closing(),
            "==== NOT RUN: 5\ntest: 15 passed, 2 failed, 6 skipped"
        );
    }

    #[test]
    fn own_filters_are_positional_names_or_skips_after_the_double_dash() {
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(!has_own_filters(&s(&[])));
        assert!(!has_own_filters(&s(&["-p", "xtask"])));
        assert!(!has_own_filters(&s(&[
            "--",
            "--test-threads",
            "1",
            "--nocapture"
        ])));
        assert!(!has_own_filters(&s(&["--", "--test-threads=1"])));
        assert!(has_own_filters(&s(&["--", "lru"])));
        assert!(has_own_filters(&s(&["--", "--skip", "redis"])));
        assert!(has_own_filters(&s(&["--", "--exact", "a::b"])));
    }

    #[test]
    fn skip_goes_after_the_double_dash() {
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            with_skip(s(&["test", "--workspace"]), "published_traces::"),
            s(&["test", "--workspace", "--", "--skip", "published_traces::"])
        );
        assert_eq!(
            with_skip(s(&["test", "--", "--test-threads=1"]), "x::"),
            s(&["test", "--", "--test-threads=1", "--skip", "x::"])
        );
    }

    #[test]
    fn cargo_test_args_keep_workspace_unless_packages_are_picked() {
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            cargo_test_args(&s(&["--", "--test-threads=1"])),
            s(&[
                "test",
                "--workspace",
                "--all-features",
                "--",
                "--test-threads=1"
            ])
        );
        assert_eq!(
            cargo_test_args(&s(&["-p", "xtask"])),
            s(&["test", "--all-features", "-p", "xtask"])
        );
        assert_eq!(
            cargo_test_args(&s(&["--", "-p"])),
            s(&["test", "--workspace", "--all-features", "--", "-p"])
        );
    }
}
