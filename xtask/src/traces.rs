//! The public cache traces: where `cargo xtask test` looks for them, and what it does when they
//! are not there.
//!
//! The published-number tests (`crates/memstache-eviction/tests/published_traces.rs`) need the
//! public cache traces (see `docs/eviction.md`), which are redistributed data we do not commit. `cargo xtask test`
//! looks in `$MEMSTACHE_TRACES`, or else in `../shared/traces` beside the workspace root:
//!
//! * found: it exports `MEMSTACHE_TRACES=<that dir>` to the test run, so the tests read them;
//! * not found, not required: it runs every other test with `--skip published_traces::`,
//!   counts the skipped ones in the closing summary and prints a NOT RUN notice saying why and
//!   how to run them (the tests themselves fail when run without traces, so they can never
//!   pass by doing nothing);
//! * not found, required (`CI=true`, or `MEMSTACHE_REQUIRE_TRACES=1`): the run fails before it
//!   starts.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::util::workspace_root;

/// The directory holding the traces (overrides the default location).
pub(crate) const TRACES_VAR: &str = "MEMSTACHE_TRACES";
/// `1`/`true`: missing traces fail `cargo xtask test` even outside CI.
pub(crate) const REQUIRE_VAR: &str = "MEMSTACHE_REQUIRE_TRACES";
/// The trace files the published-number tests read (a test checks the test file names them).
pub(crate) const TRACE_FILES: [&str; 3] = ["OLTP.lis.zst", "gli.trace.gz", "loop.trace.gz"];
/// The test-name filter the published-number tests share: they live in a `published_traces`
/// module (a test checks it), and libtest's `--skip` matches substrings of test paths.
pub(crate) const TRACE_TESTS_FILTER: &str = "published_traces::";
/// The file that holds them, for the notice.
pub(crate) const TRACE_TESTS_FILE: &str = "crates/memstache-eviction/tests/published_traces.rs";

/// What the test run does about the trace tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TracePlan {
    /// The traces are in `dir`: run the trace tests with `MEMSTACHE_TRACES=dir`.
    Run { dir: PathBuf },
    /// No (complete) traces at `dir`: skip the trace tests and say so.
    Skip { why: String },
    /// No traces, but they are required: fail with this message.
    Fail { why: String },
}

/// Whether missing traces are an error: under CI (`CI` = `true`/`1`, as CI services set it)
/// or with `MEMSTACHE_REQUIRE_TRACES` = `true`/`1`.
pub(crate) fn required(ci: Option<&str>, require: Option<&str>) -> bool {
    let yes = |v: Option<&str>| {
        v.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
    };
    yes(ci) || yes(require)
}

/// `../shared/traces` beside the workspace root.
pub(crate) fn default_dir() -> PathBuf {
    workspace_root().join("..").join("shared").join("traces")
}

/// Decides what to do. `var` is `$MEMSTACHE_TRACES` (an empty value counts as unset);
/// `has_file(path)` says whether a trace file exists.
pub(crate) fn plan(
    var: Option<OsString>,
    default_dir: &Path,
    required: bool,
    has_file: impl Fn(&Path) -> bool,
) -> TracePlan {
    let from_var = var.filter(|v| !v.is_empty()).map(PathBuf::from);
    let (dir, source) = match &from_var {
        Some(dir) => (dir.clone(), format!("{TRACES_VAR}={}", dir.display())),
        None => (
            default_dir.to_path_buf(),
            format!(
                "{TRACES_VAR} is not set and the default {} does not hold them",
                default_dir.display()
            ),
        ),
    };
    let missing: Vec<&str> = TRACE_FILES
        .iter()
        .copied()
        .filter(|f| !has_file(&dir.join(f)))
        .collect();
    if missing.is_empty() {
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        return TracePlan::Run { dir };
    }
    let why = if from_var.is_some() {
        format!("{source} lacks {}", missing.join(", "))
    } else {
        format!("no cache traces: {source} ({} missing)", missing.join(", "))
    };
    if required {
        TracePlan::Fail {
            why: format!(
                "the published-number trace tests are required here (CI=true or \
                 {REQUIRE_VAR}=1), but {why}; set {TRACES_VAR} to a directory holding {} \
                 (README.md, \"Cache traces\", says where they come from)",
                TRACE_FILES.join(", ")
            ),
        }
    } else {
        TracePlan::Skip { why }
    }
}

/// The plan for this process: reads the environment and the file system.
/// The `cargo xtask test` arguments that run only the published-number trace tests.
pub(crate) fn only_trace_tests() -> Vec<String> {
    [
        "-p",
        "memstache-eviction",
        "--test",
        "published_traces",
        "--",
        TRACE_TESTS_FILTER,
    ]
    .map(str::to_owned)
    .to_vec()
}

pub(crate) fn plan_from_env() -> TracePlan {
    let env = |name: &str| std::env::var(name).ok();
    plan(
        std::env::var_os(TRACES_VAR),
        &default_dir(),
        required(env("CI").as_deref(), env(REQUIRE_VAR).as_deref()),
        Path::is_file,
    )
}

/// The NOT RUN notice for `skipped` trace tests (printed before the tests and again before
/// the closing summary line).
pub(crate) fn not_run_notice(skipped: Option<u64>, why: &str) -> String {
    let count = match skipped {
        Some(n) => format!("{n} published-number trace tests"),
        None => "the published-number trace tests".to_owned(),
    };
    format!(
        "==== NOT RUN: {count} ({TRACE_TESTS_FILE}: LRU exact to the published hit ratios, \
         TinyLfu against ARC, scan resistance on `loop`).\n\
         ==== why: {why}.\n\
         ==== to run them: get the public traces (README.md, \"Cache traces\") and run \
         `{TRACES_VAR}=/path/to/traces cargo xtask test`; under CI=true or {REQUIRE_VAR}=1 \
         missing traces are an error."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(files: &'static [&'static str]) -> impl Fn(&Path) -> bool {
        move |p: &Path| files.iter().any(|f| p.file_name().is_some_and(|n| n == *f))
    }

    #[test]
    fn traces_in_the_variable_win_over_the_default() {
        let p = plan(
            Some("/data/traces".into()),
            Path::new("/nowhere"),
            false,
            has(&TRACE_FILES),
        );
        assert_eq!(
            p,
            TracePlan::Run {
                dir: PathBuf::from("/data/traces")
            }
        );
        // an empty variable is unset: the default is used
        let p = plan(
            Some("".into()),
            Path::new("/default"),
            true,
            has(&TRACE_FILES),
        );
        assert_eq!(
            p,
            TracePlan::Run {
                dir: PathBuf::from("/default")
            }
        );
    }

    #[test]
    fn missing_traces_skip_unless_required() {
        match plan(None, Path::new("/default"), false, has(&[])) {
            TracePlan::Skip { why } => {
                assert!(why.contains("MEMSTACHE_TRACES is not set"), "{why}");
                assert!(why.contains("/default"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // a variable pointing at an incomplete dir names what is missing
        match plan(
            Some("/empty".into()),
            Path::new("/default"),
            false,
            has(&["OLTP.lis.zst"]),
        ) {
            TracePlan::Skip { why } => {
                assert!(why.contains("MEMSTACHE_TRACES=/empty lacks"), "{why}");
                assert!(why.contains("gli.trace.gz, loop.trace.gz"), "{why}");
                assert!(!why.contains("OLTP"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        match plan(Some("/empty".into()), Path::new("/d"), true, has(&[])) {
            TracePlan::Fail { why } => {
                assert!(why.contains("required"), "{why}");
                assert!(why.contains("set MEMSTACHE_TRACES"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ci_or_the_switch_requires_traces() {
        assert!(required(Some("true"), None));
        assert!(required(Some("1"), None));
        assert!(required(None, Some("1")));
        assert!(required(Some("false"), Some("TRUE")));
        assert!(!required(None, None));
        assert!(!required(Some("false"), Some("0")));
        assert!(!required(Some(""), None));
    }

    #[test]
    fn the_trace_tests_are_where_the_filter_and_file_list_say() {
        let src = std::fs::read_to_string(workspace_root().join(TRACE_TESTS_FILE)).unwrap();
        let module = TRACE_TESTS_FILTER.trim_end_matches("::");
        assert!(
            src.contains(&format!("mod {module} {{")),
            "no `mod {module}`"
        );
        for file in TRACE_FILES {
            assert!(src.contains(&format!("\"{file}\"")), "{file} not read");
        }
        // every test of the file is inside the module (nothing outside it needs traces)
        let outside = src.split(&format!("mod {module} {{")).next().unwrap_or("");
        assert!(
            !outside.contains("#[test]"),
            "a test outside `mod {module}`"
        );
    }

    #[test]
    fn the_trace_step_runs_only_the_trace_tests_of_their_package() {
        let args = crate::test::cargo_test_args(&only_trace_tests());
        assert_eq!(
            args.join(" "),
            "test --all-features -p memstache-eviction --test published_traces -- published_traces::"
        );
        assert!(TRACE_TESTS_FILE.ends_with("/published_traces.rs"));
        assert!(crate::test::has_own_filters(&only_trace_tests()));
    }

    #[test]
    fn notice_says_how_many_why_and_how() {
        let n = not_run_notice(Some(6), "no cache traces: x");
        assert!(n.contains("NOT RUN: 6 published-number trace tests"), "{n}");
        assert!(n.contains("why: no cache traces: x"), "{n}");
        assert!(
            n.contains("MEMSTACHE_TRACES=/path/to/traces cargo xtask test"),
            "{n}"
        );
    }
}
