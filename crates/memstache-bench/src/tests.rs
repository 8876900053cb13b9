//! Unit tests of the pure parts: median, rotation, ratios, filter, the stat parser, the table.

use std::cell::RefCell;

use crate::harness::parse_proc_stat_ticks;
use crate::{Bench, Measured, Ratio, keep, median, round_order, row};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn median_leaves_out_nan_and_infinities() {
    assert_eq!(median(&[5.0, f64::NAN, 1.0, 3.0, f64::INFINITY]), 3.0);
    assert_eq!(median(&[2.0, 1.0]), 2.0, "the upper of an even count");
    assert!(median(&[]).is_nan());
    assert!(median(&[f64::NAN, f64::NEG_INFINITY]).is_nan());
}

#[test]
fn every_round_runs_every_row_once_starting_one_later() {
    let orders: Vec<Vec<usize>> = (0..4).map(|r| round_order(r, 3).collect()).collect();
    assert_eq!(
        orders,
        [vec![0, 1, 2], vec![1, 2, 0], vec![2, 0, 1], vec![0, 1, 2]]
    );
}

#[test]
fn the_bench_runs_rows_in_the_rotated_order_after_a_warm_up() {
    let log = RefCell::new(Vec::new());
    let mut bench = Bench::new(rt(), 3);
    let rows = ["a", "b", "c"]
        .map(|name| {
            let log = &log;
            row(name, "ops/s", 1, 8, 1, move |i| {
                if i == 0 {
                    log.borrow_mut().push(name);
                }
                async {}
            })
        })
        .into();
    bench.group("g", rows);
    assert_eq!(
        log.into_inner(),
        ["a", "b", "c", "a", "b", "c", "b", "c", "a", "c", "a", "b"],
        "warm-up, then rounds 0, 1, 2"
    );
    let report = bench.into_report();
    assert_eq!(report.groups[0].rows.len(), 3);
    assert!(report.groups[0].rows.iter().all(|m| m.rates.len() == 3));
}

#[test]
fn a_ratio_is_the_median_of_per_round_ratios_not_the_ratio_of_medians() {
    // a's median is 300, b's 200: the ratio of medians would be 1.5
    let a = Measured::new("a", "ops/s", 1, vec![100.0, 300.0, 900.0], Some(4.0));
    let b = Measured::new("b", "ops/s", 1, vec![200.0, 100.0, 900.0], Some(2.0));
    let r = Ratio::of("a / b", &a, &b, Some(1.01));
    assert_eq!(r.per_round, [0.5, 3.0, 1.0]);
    assert_eq!(r.value, 1.0);
    assert_eq!(r.cpu, Some(0.5), "b's CPU per unit over a's");
    assert_eq!(r.met(), Some(false));
    assert!(r.to_string().contains("target ≥ 1.01: NOT met"), "{r}");
    assert_eq!(Ratio::of("x", &a, &b, None).met(), None);
}

#[test]
fn cpu_unavailable_is_none_in_the_ratio_and_shown_as_na() {
    let a = Measured::new("a", "ops/s", 1, vec![1.0], None);
    let b = Measured::new("b", "ops/s", 1, vec![1.0], Some(2.0));
    let r = Ratio::of("a / b", &a, &b, Some(1.0));
    assert_eq!(r.cpu, None);
    assert!(r.to_string().contains("CPU   n/a"), "{r}");
    assert!(r.to_string().contains(": met"), "{r}");
    assert!(a.to_string().contains("n/a µs CPU/op"), "{a}");
}

#[test]
fn the_filter_keeps_rows_whose_name_contains_it() {
    assert!(keep(None, "fred raw GET @1"));
    assert!(keep(Some("redis-rs"), "memstache get on redis-rs @64"));
    assert!(!keep(Some("redis-rs"), "memstache get on fred @64"));
    let mut bench = Bench::new(rt(), 1).filter(Some("keep".into()));
    bench.group(
        "g",
        vec![
            row("keep me", "ops/s", 1, 4, 1, |_| async {}),
            row("drop me", "ops/s", 1, 4, 1, |_| async {}),
        ],
    );
    bench.group(
        "empty",
        vec![row("dropped", "ops/s", 1, 4, 1, |_| async {})],
    );
    let report = bench.into_report();
    assert_eq!(
        report.groups.len(),
        1,
        "a group with no row left is not reported"
    );
    assert_eq!(report.groups[0].rows.len(), 1);
    assert!(report.find("keep me").is_some());
    assert!(report.find("drop me").is_none());
}

#[test]
fn a_ratio_of_a_filtered_out_row_is_not_reported() {
    let mut bench = Bench::new(rt(), 1).filter(Some("a".into()));
    bench.group(
        "g",
        vec![
            row("a", "ops/s", 1, 4, 1, |_| async {}),
            row("b", "ops/s", 1, 4, 1, |_| async {}),
        ],
    );
    bench.ratio("a / b", "a", "b", None);
    assert!(bench.report().ratios.is_empty());
    assert_eq!(bench.faster("b", "a"), "a", "the measured one");
}

#[test]
fn batch_rows_count_units_per_call() {
    let mut bench = Bench::new(rt(), 2);
    bench.group("g", vec![row("batch", "keys/s", 100, 10, 1, |_| async {})]);
    let m = bench.find("batch").unwrap().clone();
    assert_eq!(m.per_call, 100);
    assert!(m.rates.iter().all(|r| *r > 0.0));
    assert!(m.to_string().contains("keys/s"), "{m}");
    assert!(m.to_string().contains("CPU/key"), "{m}");
}

#[test]
fn proc_stat_fields_are_counted_after_the_command_name() {
    // a name with spaces and a ')' of its own; utime = 7, stime = 5
    let line = "123 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 7 5 0 0 20 0 1 0 100 200 300";
    assert_eq!(parse_proc_stat_ticks(line), Some(12));
    assert_eq!(parse_proc_stat_ticks("garbage"), None);
    assert_eq!(parse_proc_stat_ticks("1 (x) S 1 2"), None);
}

#[test]
fn the_report_prints_groups_then_ratios() {
    let mut bench = Bench::new(rt(), 1).title("title line");
    bench.group("reads", vec![row("a", "ops/s", 1, 4, 1, |_| async {})]);
    bench.ratio("a / a", "a", "a", Some(0.5));
    let out = bench.into_report().to_string();
    let at = |s: &str| out.find(s).unwrap_or_else(|| panic!("no {s:?} in\n{out}"));
    assert!(at("title line") < at("reads"));
    assert!(at("reads") < at("  a "));
    assert!(at("  a ") < at("ratios:"));
    assert!(at("ratios:") < at("a / a"));
    assert!(out.contains("1.00×"), "{out}");
    assert!(out.contains("target ≥ 0.50: met"), "{out}");
}

#[test]
fn rows_of_one_in_flight_carry_latency_percentiles_and_their_ratios() {
    let mut bench = Bench::new(rt(), 2);
    bench.group(
        "latency",
        vec![
            // "slow" takes at least 200 µs per call, "fast" nothing: p50 and p99 must differ
            row("slow", "ops/s", 1, 20, 1, |_| async {
                tokio::time::sleep(std::time::Duration::from_micros(200)).await;
            }),
            row("fast", "ops/s", 1, 20, 1, |_| async {}),
            row("many", "ops/s", 1, 20, 8, |_| async {}),
        ],
    );
    let slow = bench
        .find("slow")
        .unwrap()
        .latency
        .expect("one in flight: latencies");
    let fast = bench
        .find("fast")
        .unwrap()
        .latency
        .expect("one in flight: latencies");
    assert!(
        bench.find("many").unwrap().latency.is_none(),
        "8 in flight: none"
    );
    assert!(slow.p50_us >= 200.0, "{slow:?}");
    assert!(slow.p99_us >= slow.p50_us && fast.p99_us >= fast.p50_us);
    bench.latency_ratio("slow / fast", "slow", "fast", Some((1.05, 1.10)));
    bench.latency_ratio("fast / many", "fast", "many", None); // no latencies: not recorded
    let report = bench.into_report();
    assert_eq!(report.latency_ratios.len(), 1);
    let r = &report.latency_ratios[0];
    assert!(r.p50 > 1.0 && r.met() == Some(false), "{r:?}");
    let out = report.to_string();
    assert!(out.contains("p50") && out.contains("NOT met"), "{out}");
}
