//! `cargo xtask bare-clone`: the README's two commands on a plain `git clone` with nothing
//! beside it.
//!
//! Clones the committed `HEAD` of this repository into a fresh temp dir, then runs there, with
//! `CI`, `MEMSTACHE_TRACES` and `MEMSTACHE_REQUIRE_TRACES` removed from the environment (so the
//! clone's own behaviour is what is checked):
//!
//! 1. `cargo run --release -p memstache-cli -- demo`;
//! 2. `cargo xtask test`, which must pass and must report the trace tests as NOT RUN (there is
//!    no `../shared` beside the clone).
//!
//! Where the clone builds:
//! * under `CI=true` with a clean outer working tree (nothing uncommitted, nothing
//!   untracked), into the outer target dir itself. The clone's sources are then the outer tree's,
//!   byte for byte, so the registry crates built by the earlier CI steps are reused (cargo
//!   names artifacts by paths relative to the workspace root, so both trees map to the same
//!   files) and only the workspace crates are rebuilt (the clone's files are newer). This
//!   saves CI the full dependency build a cold target dir costs (minutes on two cores). Only
//!   in CI, where this is the last step and the checkout is thrown away: afterwards the outer
//!   tree's artifacts are the clone's, and crates that bake in `env!("CARGO_MANIFEST_DIR")`
//!   (xtask's workspace root) point into the deleted clone until their sources change.
//! * otherwise, into `<target dir>/bare-clone`, a target dir of its own kept between runs:
//!   sharing would leave artifacts built from the committed sources that the outer tree then
//!   takes as up to date (cargo decides freshness by file times), although its uncommitted
//!   sources differ.
//!
//! The temp dir is removed afterwards.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::json;
use crate::util::{Res, TempDir, cargo, display, fail, output, run, workspace_root};

/// The variables removed from the clone's environment.
const CLEARED_VARS: [&str; 5] = [
    "CI",
    crate::traces::TRACES_VAR,
    crate::traces::REQUIRE_VAR,
    crate::deny::DB_PATH_VAR,
    "CARGO_TARGET_DIR",
];

/// The target dir of the outer workspace (`cargo metadata`'s `target_directory`).
pub(crate) fn outer_target_dir() -> Res<PathBuf> {
    let text = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    let meta = json::parse(&text).map_err(|e| fail!("cargo metadata: {e}"))?;
    meta.get("target_directory")
        .and_then(json::Json::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| fail!("cargo metadata has no target_directory"))
}

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir).args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "advice.detachedHead=false",
    ]);
    cmd
}

/// Clones the committed HEAD of `root` into `dest` (detached at that commit).
fn clone_head(root: &Path, dest: &Path) -> Res<String> {
    let head = output(git(root).args(["rev-parse", "HEAD"]))?
        .trim()
        .to_owned();
    let parent = dest.parent().unwrap_or(dest);
    output(
        git(parent)
            .arg("clone")
            .args(["--quiet", "--no-checkout"])
            .arg(root)
            .arg(dest),
    )?;
    // HEAD may be detached (CI checks out a commit): fetch it explicitly.
    output(git(dest).args(["fetch", "--quiet"]).arg(root).arg("HEAD"))?;
    output(git(dest).args(["checkout", "--quiet", "--detach", &head]))?;
    let dirty = output(git(root).args(["status", "--porcelain", "--untracked-files=no"]))?;
    if !dirty.trim().is_empty() {
        eprintln!(
            "note: the working tree has uncommitted changes; the bare clone checks the \
             committed HEAD ({head}) only"
        );
    }
    Ok(head)
}

/// A command for the clone: cargo, in `dir`, with the cleared variables removed and the
/// clone's own target dir.
fn clone_cargo(dir: &Path, target: &Path) -> Command {
    let mut cmd = cargo();
    cmd.current_dir(dir);
    for var in CLEARED_VARS {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_TARGET_DIR", target);
    cmd
}

/// Runs `cmd`, echoing its stdout, and returns that stdout.
fn run_capturing(cmd: &mut Command) -> Res<(bool, String)> {
    eprintln!("$ {}", display(cmd));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| fail!("cannot run `{}`: {e}", display(cmd)))?;
    let mut captured = String::new();
    if let Some(out) = child.stdout.take() {
        let mut reader = BufReader::new(out);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf)? == 0 {
                break;
            }
            let mut lock = std::io::stdout().lock();
            lock.write_all(&buf)?;
            lock.flush()?;
            captured.push_str(&String::from_utf8_lossy(&buf));
        }
    }
    let status = child.wait()?;
    Ok((status.success(), captured))
}

/// Checks the output of the clone's `cargo xtask test`: a closing summary with no failure,
/// and the NOT RUN notice for the trace tests. Returns the closing summary.
pub(crate) fn check_test_output(out: &str) -> Res<String> {
    let closing = out
        .lines()
        .rev()
        .find(|l| l.starts_with("test: "))
        .ok_or_else(|| fail!("the clone's `cargo xtask test` printed no closing summary"))?;
    if !closing.contains(" 0 failed") {
        return Err(fail!("the clone's tests failed: {closing}"));
    }
    if !out.contains("==== NOT RUN: ") || !out.contains(crate::traces::TRACES_VAR) {
        return Err(fail!(
            "the clone's `cargo xtask test` did not report the trace tests as NOT RUN \
             (it has no ../shared beside it)"
        ));
    }
    Ok(closing.to_owned())
}

/// Clones HEAD into a temp dir with nothing beside it and runs the README's two commands;
/// returns the closing line of the clone's `cargo xtask test`.
pub(crate) fn bare_clone() -> Res<String> {
    let outer = outer_target_dir()?;
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let changes = if ci {
        output(git(&workspace_root()).args(["status", "--porcelain"]))?
    } else {
        String::new()
    };
    let clean = ci && changes.trim().is_empty();
    if ci && !clean {
        // an earlier step changed the checkout (a lock file out of date, say): say so, since
        // it costs this step a cold dependency build
        eprintln!(
            "bare-clone: the checkout has changes, so the clone builds into its own target \
             dir:\n{}",
            changes.trim_end()
        );
    }
    let target = if clean {
        outer
    } else {
        outer.join("bare-clone")
    };
    let tmp = TempDir::new("memstache-bare-clone")?;
    let dest = tmp.path().join("memstache");
    let head = clone_head(&workspace_root(), &dest)?;
    println!(
        "bare-clone: {head} cloned into {} (nothing beside it), target dir {}",
        dest.display(),
        target.display()
    );

    let t = Instant::now();
    run(clone_cargo(&dest, &target).args([
        "run",
        "--release",
        "-p",
        "memstache-cli",
        "--",
        "demo",
    ]))?;
    let demo = t.elapsed();

    let t = Instant::now();
    let (ok, out) = run_capturing(clone_cargo(&dest, &target).args(["xtask", "test"]))?;
    let test = t.elapsed();
    if !ok {
        return Err(fail!("`cargo xtask test` failed in the bare clone"));
    }
    let closing = check_test_output(&out)?;
    println!(
        "bare-clone: demo ok ({:.1}s), cargo xtask test ok with the trace tests reported as \
         NOT RUN ({:.1}s)",
        demo.as_secs_f64(),
        test.as_secs_f64()
    );
    Ok(format!("{closing} (the whole suite, in the bare clone)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clone_must_pass_and_say_the_trace_tests_did_not_run() {
        let notice = crate::traces::not_run_notice(Some(6), "no cache traces");
        let good = format!("{notice}\ntest suites run: 3\ntest: 10 passed, 0 failed, 7 skipped\n");
        assert!(check_test_output(&good).is_ok());
        let failed = good.replace(" 0 failed", " 2 failed");
        assert!(check_test_output(&failed).is_err());
        let silent = "test: 10 passed, 0 failed, 1 skipped\n";
        assert!(check_test_output(silent).is_err());
        assert!(check_test_output(&notice).is_err(), "no closing line");
    }

    #[test]
    fn the_clone_runs_without_ci_or_trace_variables() {
        let cmd = clone_cargo(Path::new("/tmp/x"), Path::new("/tmp/t"));
        let envs: Vec<_> = cmd.get_envs().collect();
        for var in ["CI", "MEMSTACHE_TRACES", "MEMSTACHE_REQUIRE_TRACES"] {
            assert!(
                envs.iter().any(|(k, v)| *k == var && v.is_none()),
                "{var} is not removed"
            );
        }
        assert!(
            envs.iter()
                .any(|(k, v)| *k == "CARGO_TARGET_DIR" && *v == Some("/tmp/t".as_ref()))
        );
        assert_eq!(cmd.get_current_dir(), Some(Path::new("/tmp/x")));
    }
}
