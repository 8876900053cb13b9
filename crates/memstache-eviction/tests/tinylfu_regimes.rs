//! The regimes where W-TinyLFU loses to plain LRU (issue 23), reproduced with seeded synthetic
//! workloads (`memstache_harness::synthetic`) so that they run on every machine without
//! external data.
//!
//! The goal is `TinyLfu` ≥ `Lru` − 0.5 points everywhere. Where that holds today it is
//! asserted as such. Where it does **not** hold yet (recency-biased reuse from 256 entries up,
//! a drifting working set near the capacity: see `docs/eviction.md`, "Where TinyLfu still
//! loses"), the test pins today's gap, so that a change which widens it fails here and a
//! change which closes it shows up in the printed numbers (run with `--nocapture`) and
//! tightens the bound. Those bounds are open work, not accepted results.

use memstache_core::raw::EvictionPolicy;
use memstache_eviction::{Lru, TinyLfu};
use memstache_harness::synthetic::{drifting_working_set, recency_biased, zipf_with_scans};
use memstache_harness::traces::replay;

fn ratio(policy: &dyn EvictionPolicy, capacity: usize, requests: &[u64]) -> f64 {
    replay(policy, capacity, requests).hit_ratio_percent()
}

/// Asserts `tinylfu >= lru - max_gap` at `capacity` and returns (lru, tinylfu).
fn within(name: &str, requests: &[u64], capacity: usize, max_gap: f64) -> (f64, f64) {
    let lru = ratio(&Lru, capacity, requests);
    let tiny = ratio(&TinyLfu::default(), capacity, requests);
    println!(
        "{name} @ {capacity}: lru {lru:.2} %, tinylfu {tiny:.2} % ({:+.2})",
        tiny - lru
    );
    assert!(
        tiny >= lru - max_gap,
        "{name} at {capacity}: tinylfu {tiny:.2} % is more than {max_gap} points below \
         lru {lru:.2} %"
    );
    (lru, tiny)
}

fn recency() -> Vec<u64> {
    recency_biased(11, 0.7, 400.0, 300_000)
}

#[test]
fn recency_biased_reuse_at_small_capacities_meets_the_floor() {
    let r = recency();
    for c in [64, 128] {
        within("recency-biased", &r, c, 0.5);
    }
}

#[test]
fn recency_biased_reuse_open_gap_does_not_widen() {
    // today: -5.10 at 256, -6.66 at 512, -4.83 at 1 024 (the climber needs ~60 000 requests
    // to grow the window from 1 % to where LRU's recency wins; see docs/eviction.md)
    let r = recency();
    for (c, gap) in [(256, 6.0), (512, 7.5), (1_024, 5.5)] {
        within("recency-biased", &r, c, gap);
    }
}

#[test]
fn working_set_near_the_capacity_open_gap_does_not_widen() {
    // today: -1.96 (900 blocks), -2.93 (1 000), -2.58 (1 100), -2.15 (1 300) at 1 000 entries:
    // residents that drifted out of the working set keep their sketch counts for a few aging
    // periods and win admission against the newcomers that replaced them
    for (size, gap) in [(900u64, 2.5), (1_000, 3.5), (1_100, 3.0), (1_300, 2.75)] {
        let w = drifting_working_set(7, size, 0.02, 300_000);
        within(&format!("working set {size}"), &w, 1_000, gap);
    }
}

#[test]
fn zipf_with_scans_keeps_the_frequency_win() {
    let z = zipf_with_scans(5, 20_000, 0.9, 2_000, 3_000, 400_000);
    for (c, lead) in [(500usize, 3.0), (2_000, 6.0)] {
        let (lru, tiny) = within("zipf+scans", &z, c, 0.0);
        assert!(
            tiny >= lru + lead,
            "at {c}: tinylfu {tiny:.2} % should lead lru {lru:.2} % by {lead} points"
        );
    }
}
