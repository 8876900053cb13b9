//! Runs `memstache bench` (the real binary) with small operation counts and checks what it
//! prints: every row with a positive throughput, every ratio finite. No number is held
//! against a threshold: the bench reports, it does not judge.

mod common;

use common::{memstache, text};

/// Runs the bench and returns stdout, asserting success.
fn bench(extra: &[&str]) -> String {
    let mut args = vec!["bench", "--ops", "300", "--rounds", "2"];
    args.extend_from_slice(extra);
    let out = memstache(&args);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "bench failed: {}\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    stdout
}

/// The median ops/s printed for `row`.
fn rate(stdout: &str, row: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(row) && l.contains("ops/s"))
        .unwrap_or_else(|| panic!("no `{row}` row in\n{stdout}"));
    line[line.find(row).unwrap() + row.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rate in `{line}`"))
}

/// The ratio printed for `label`.
fn ratio(stdout: &str, label: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` ratio in\n{stdout}"));
    line[line.find(label).unwrap() + label.len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.trim_end_matches('×').parse().ok())
        .unwrap_or_else(|| panic!("no ratio in `{line}`"))
}

#[test]
fn embedded_bench_reports_memstache_beside_moka() {
    let out = bench(&["--value-bytes", "256"]);
    for row in [
        "memstache get (memory backend)",
        "moka get",
        "memstache set (memory backend)",
        "moka insert",
    ] {
        let r = rate(&out, row);
        assert!(r.is_finite() && r > 0.0, "{row}: {r}\n{out}");
    }
    for label in ["memstache get / moka get", "memstache set / moka insert"] {
        let r = ratio(&out, label);
        assert!(r.is_finite() && r > 0.0, "{label}: {r}\n{out}");
    }
    assert!(out.contains("256 B values"), "{out}");
}

#[test]
fn bad_bench_flags_are_usage_errors() {
    for flags in [
        &["--rounds", "0"][..],
        &["--ops", "0"],
        &["--inflight", "0"],
    ] {
        let mut args = vec!["bench"];
        args.extend_from_slice(flags);
        let out = memstache(&args);
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.contains(flags[0]), "{flags:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[cfg(not(feature = "redis"))]
#[test]
fn bench_redis_flag_needs_the_feature_and_never_echoes_the_url() {
    let out = memstache(&["bench", "--redis", "redis://:s3cret@127.0.0.1:1"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--features redis"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[cfg(feature = "redis")]
#[test]
fn bench_runs_against_a_real_redis_and_cleans_up() {
    let server = memstache_harness::redis::RedisServer::start();
    let out = bench(&["--redis", &server.url(), "--inflight", "8"]);
    for row in [
        "redis-rs raw GET",
        "hand-rolled get (postcard + redis-rs GET)",
        "memstache get",
        "redis-rs raw SET",
        "hand-rolled set (postcard + redis-rs SET)",
        "memstache set",
    ] {
        let r = rate(&out, row);
        assert!(r.is_finite() && r > 0.0, "{row}: {r}\n{out}");
    }
    for label in [
        "memstache get / hand-rolled get",
        "memstache set / hand-rolled set",
        "memstache get / raw GET",
    ] {
        let r = ratio(&out, label);
        assert!(r.is_finite() && r > 0.0, "{label}: {r}\n{out}");
    }
    assert!(out.contains("target ≥ 0.95"), "{out}");
    // every key it wrote is gone again
    assert_eq!(server.cmd(&["DBSIZE"]).as_int(), Some(0), "{out}");

    // a server that is not there is an error, not a panic, and the URL is not echoed
    let out = memstache(&[
        "bench",
        "--redis",
        "redis://:s3cret@127.0.0.1:1",
        "--ops",
        "1",
    ]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
