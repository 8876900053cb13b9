//! Runs the real `memstache` binary and checks what it prints.

mod common;

use std::collections::HashMap;

use common::{memstache, text};

/// The demo table as label → value.
fn table(stdout: &str) -> HashMap<String, String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .filter_map(|l| {
            let (label, value) = l.split_once("  ")?;
            Some((label.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

fn number(t: &HashMap<String, String>, label: &str) -> u64 {
    t.get(label)
        .unwrap_or_else(|| panic!("no `{label}` row in {t:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("`{label}` is not a number: {t:?}"))
}

fn demo(extra: &[&str]) -> HashMap<String, String> {
    let mut args = vec!["demo"];
    args.extend_from_slice(extra);
    let out = memstache(&args);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {}\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    table(&stdout)
}

#[test]
fn small_demo_reports_consistent_numbers() {
    let t = demo(&[
        "--requests",
        "5000",
        "--keys",
        "500",
        "--source-latency-ms",
        "0",
        "--capacity",
        "100",
    ]);
    let requests = number(&t, "requests");
    let hits = number(&t, "hits");
    let calls = number(&t, "source calls");
    assert_eq!(requests, 5000);
    assert_eq!(hits + calls, requests, "{t:?}");
    assert_eq!(number(&t, "calls saved"), requests - calls);
    let ratio: f64 = t["hit ratio"].trim_end_matches('%').parse().unwrap();
    let expected = 100.0 * hits as f64 / requests as f64;
    assert!((ratio - expected).abs() < 0.006, "{ratio} vs {expected}");
    // A Zipf(1) workload over 500 keys with room for 100 of them hits often but not always.
    assert!(hits > 0 && calls > 0, "{t:?}");
    assert!(number(&t, "entries stored") <= 100);
    assert!(number(&t, "bytes stored") > 0);
    assert_eq!(number(&t, "wrong values"), 0);
    assert_eq!(number(&t, "errors"), 0);
    for row in [
        "hit latency p50",
        "hit latency p99",
        "miss latency p50",
        "miss latency p99",
    ] {
        assert!(
            ["ns", "us", "ms", "s"].iter().any(|u| t[row].ends_with(u)),
            "{row}: {}",
            t[row]
        );
    }
}

#[test]
fn with_room_for_every_key_only_first_requests_miss() {
    // One worker, so no two requests race for the same key: every source call is the first
    // request of a distinct key, nothing is evicted, and the cache holds exactly those keys.
    // The capacity is 10x the key count because the memory backend splits its bound over
    // shards: no shard can fill up even if the keys hash unevenly.
    let t = demo(&[
        "--requests",
        "3000",
        "--keys",
        "400",
        "--capacity",
        "4000",
        "--concurrency",
        "1",
        "--source-latency-ms",
        "0",
    ]);
    let calls = number(&t, "source calls");
    assert_eq!(number(&t, "entries stored"), calls, "{t:?}");
    assert!(calls <= 400);
    assert_eq!(number(&t, "hits") + calls, 3000);
}

#[test]
fn same_seed_replays_the_same_workload() {
    let args = [
        "--requests",
        "4000",
        "--keys",
        "1000",
        "--capacity",
        "50",
        "--concurrency",
        "1",
        "--source-latency-ms",
        "0",
        "--seed",
    ];
    let run = |seed: &str| {
        let mut a = args.to_vec();
        a.push(seed);
        number(&demo(&a), "hits")
    };
    assert_eq!(run("7"), run("7"));
}

#[test]
fn help_describes_the_demo_and_its_flags() {
    let out = memstache(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("demo"), "{help}");

    let out = memstache(&["demo", "--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "--requests",
        "--keys",
        "--zipf",
        "--concurrency",
        "--source-latency-ms",
        "--capacity",
        "--seed",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    assert!(help.contains("[default: 200000]"), "{help}");
}

#[test]
fn bad_flags_are_usage_errors_not_panics() {
    for args in [
        &["demo", "--requests", "0"][..],
        &["demo", "--keys", "0"],
        &["demo", "--zipf", "-1"],
        &["demo", "--concurrency", "0"],
        &["demo", "--capacity", "0"],
        &["demo", "--requests", "many"],
        &["frobnicate"],
    ] {
        let out = memstache(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[cfg(not(feature = "redis"))]
#[test]
fn redis_flag_fails_clearly_and_never_echoes_the_url() {
    let out = memstache(&[
        "demo",
        "--redis",
        "redis://:s3cret@127.0.0.1:1",
        "--requests",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("--features redis"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[cfg(feature = "redis")]
#[test]
fn demo_runs_against_a_real_redis() {
    let server = memstache_harness::redis::RedisServer::start();
    let url = server.url();
    let run = || {
        demo(&[
            "--redis",
            &url,
            "--requests",
            "3000",
            "--keys",
            "300",
            "--concurrency",
            "8",
            "--source-latency-ms",
            "0",
        ])
    };
    let t = run();
    let hits = number(&t, "hits");
    let calls = number(&t, "source calls");
    assert_eq!(hits + calls, 3000, "{t:?}");
    // Redis has room for every key: about one load per distinct key (a few more when a load
    // finishes between another request's read and its join of the in-flight load).
    assert!((1..600).contains(&calls), "{t:?}");
    assert!(hits > 2000, "{t:?}");
    assert_eq!(number(&t, "wrong values"), 0);
    assert_eq!(number(&t, "errors"), 0);
    assert_eq!(t["backend"], "redis");
    assert_eq!(t["entries stored"], "-");
    // A second run uses a fresh namespace: it starts cold instead of hitting the first run's
    // keys, so it loads about as often as the first.
    let again = number(&run(), "source calls");
    assert!(again * 2 > calls, "first {calls}, second {again}");
}

#[cfg(feature = "redis")]
#[test]
fn unreachable_redis_is_a_clean_failure() {
    // Port 1 on loopback: nothing listens there.
    let out = memstache(&[
        "demo",
        "--redis",
        "redis://:s3cret@127.0.0.1:1",
        "--requests",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("error"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
