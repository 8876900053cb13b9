//! `Sieve` and `S3Fifo` against `Lru` on seeded synthetic workloads (no external traces): both
//! resist one-time scans and beat `Lru` on plain Zipf.

use memstache_core::raw::EvictionPolicy;
use memstache_eviction::{Lru, S3Fifo, Sieve, TimeBased, TinyLfu};
use memstache_harness::synthetic::{scan_polluted_zipf, zipf};
use memstache_harness::traces::{replay, replay_optimal};

const CAPACITY: usize = 1_000;

/// Measured at 1 000 entries (seed 11):
///
/// | workload | `lru` % | `tinylfu` % | `sieve` % | `s3fifo` % | FIFO (`time`) % | optimal % |
/// |---|---:|---:|---:|---:|---:|---:|
/// | `scan_polluted_zipf(11, 150 000)` | 21.96 | 34.17 | 34.17 | 33.55 | 21.96 | 40.68 |
/// | `zipf(11, 10 000, 0.9, 200 000)` | 55.66 | 64.68 | 63.25 | 63.36 | 51.10 | 74.17 |
///
/// The checks ask for about half of the measured margins: 6 points above `Lru` and 40 % of
/// `Lru`'s distance to the optimum closed on the polluted workload, 3.5 points above `Lru` on
/// plain Zipf (the project's floor is "not more than 1 point below"). A FIFO (what `TimeBased`
/// is without deadlines) fails both, see `a_fifo_fails_both_checks`.
fn check_scan_polluted(policy: &dyn EvictionPolicy) -> Result<(), String> {
    let name = policy.name();
    let polluted = scan_polluted_zipf(11, 150_000);
    let lru = replay(&Lru, CAPACITY, &polluted).hit_ratio_percent();
    let tiny = replay(&TinyLfu::default(), CAPACITY, &polluted).hit_ratio_percent();
    let got = replay(policy, CAPACITY, &polluted).hit_ratio_percent();
    let optimal = replay_optimal(CAPACITY, &polluted).hit_ratio_percent();
    println!(
        "scan-polluted zipf at {CAPACITY}: lru {lru:.2} %, tinylfu {tiny:.2} %, {name} {got:.2} %, \
         optimal {optimal:.2} %"
    );
    if got > optimal {
        return Err(format!(
            "{name} {got:.2} % above the optimum {optimal:.2} %: the replay is wrong"
        ));
    }
    if got < lru + 6.0 {
        return Err(format!(
            "scan-polluted: {name} {got:.2} % is not 6 points above lru {lru:.2} %"
        ));
    }
    let closed = (got - lru) / (optimal - lru);
    if closed < 0.4 {
        return Err(format!(
            "scan-polluted: {name} closes only {:.0} % of lru's distance to the optimum",
            closed * 100.0
        ));
    }
    Ok(())
}

/// See [`check_scan_polluted`] for the measured values.
fn check_zipf(policy: &dyn EvictionPolicy) -> Result<(), String> {
    let name = policy.name();
    let plain = zipf(11, 10_000, 0.9, 200_000);
    let lru = replay(&Lru, CAPACITY, &plain).hit_ratio_percent();
    let tiny = replay(&TinyLfu::default(), CAPACITY, &plain).hit_ratio_percent();
    let got = replay(policy, CAPACITY, &plain).hit_ratio_percent();
    println!("zipf(0.9) at {CAPACITY}: lru {lru:.2} %, tinylfu {tiny:.2} %, {name} {got:.2} %");
    if got < lru + 3.5 {
        return Err(format!(
            "zipf: {name} {got:.2} % is not 3.5 points above lru {lru:.2} %"
        ));
    }
    Ok(())
}

#[test]
fn sieve_beats_lru_on_synthetic_workloads() {
    check_scan_polluted(&Sieve).unwrap();
    check_zipf(&Sieve).unwrap();
}

#[test]
fn s3fifo_beats_lru_on_synthetic_workloads() {
    check_scan_polluted(&S3Fifo::default()).unwrap();
    check_zipf(&S3Fifo::default()).unwrap();
}

#[test]
fn a_fifo_fails_both_checks() {
    // without deadlines `TimeBased` evicts in insertion order: plain FIFO
    let err = check_scan_polluted(&TimeBased).unwrap_err();
    println!("fifo: {err}");
    let err = check_zipf(&TimeBased).unwrap_err();
    println!("fifo: {err}");
}
