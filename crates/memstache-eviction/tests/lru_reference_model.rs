//! `Lru` against an independent, naive reference model on seeded synthetic workloads, and the
//! cyclic-loop results derived from first principles. No external data: these hold on every
//! machine (the published-trace checks are in `published_traces.rs`).
//!
//! The reference is the textbook definition of LRU: a move-to-front list (`VecDeque`, most
//! recent at the front). A hit moves the block to the front; a miss puts it at the front and,
//! when the list is longer than the capacity, evicts the block at the back. It is O(capacity)
//! per request and shares no code with `memstache_core::memory::Lru` (a hash map and an
//! intrusive list in a vector). Both must agree exactly: on every hit count *and* on the
//! sequence of victims.

use std::collections::VecDeque;

use memstache_core::raw::EvictionPolicy;
use memstache_eviction::Lru;
use memstache_harness::synthetic::{
    cyclic, mixed, scan_polluted_zipf, sequential_scans, uniform, zipf,
};
use memstache_harness::traces::{replay, replay_with_victims};

/// The capacities every workload is checked at: from a single entry to more than the
/// working set of most workloads.
const CAPACITIES: [usize; 7] = [0, 1, 7, 64, 250, 1_000, 4_096];

/// What a replay saw: the number of hits and every victim, in order.
#[derive(Debug, PartialEq, Eq)]
struct Run {
    hits: u64,
    victims: Vec<u64>,
}

/// The reference model: a move-to-front list.
fn naive_lru(capacity: usize, requests: &[u64]) -> Run {
    let mut list: VecDeque<u64> = VecDeque::new();
    let mut run = Run {
        hits: 0,
        victims: Vec::new(),
    };
    for &block in requests {
        if let Some(pos) = list.iter().position(|&b| b == block) {
            run.hits += 1;
            list.remove(pos);
            list.push_front(block);
        } else {
            list.push_front(block);
            while list.len() > capacity {
                run.victims.extend(list.pop_back());
            }
        }
    }
    run
}

/// Drives a fresh state of `policy` as the memory store does (insert on a miss, access on a
/// hit, evict while over capacity) and records hits and victims. A policy that returns no
/// victim, or one that is not resident, stops the evictions of that request, so its victim
/// sequence differs from the model's.
fn drive(policy: &dyn EvictionPolicy, capacity: usize, requests: &[u64]) -> Run {
    let (r, victims) = replay_with_victims(policy, capacity, requests);
    Run {
        hits: r.hits,
        victims,
    }
}

/// `Lru` and the reference agree exactly at every capacity; so does the trace replay's count.
fn assert_matches_reference(workload: &str, requests: &[u64]) {
    assert!(!requests.is_empty());
    for capacity in CAPACITIES {
        let expected = naive_lru(capacity, requests);
        let got = drive(&Lru, capacity, requests);
        assert_eq!(
            got.hits, expected.hits,
            "{workload} at capacity {capacity}: Lru hits {} but the reference has {}",
            got.hits, expected.hits
        );
        if let Some(i) = (0..got.victims.len().min(expected.victims.len()))
            .find(|&i| got.victims[i] != expected.victims[i])
        {
            panic!(
                "{workload} at capacity {capacity}: victim #{i} is {} but the reference \
                 evicts {}",
                got.victims[i], expected.victims[i]
            );
        }
        assert_eq!(
            got.victims.len(),
            expected.victims.len(),
            "{workload} at {capacity}"
        );
        let replayed = replay(&Lru, capacity, requests);
        assert_eq!(
            replayed.hits, expected.hits,
            "{workload} at capacity {capacity}: the trace replay counts differently"
        );
    }
}

#[test]
fn reference_model_is_lru_on_a_hand_checked_sequence() {
    // Capacity 2: 1m 2m 1h 3m (evicts 2) 2m (evicts 1) 1m (evicts 3) 2h
    let run = naive_lru(2, &[1, 2, 1, 3, 2, 1, 2]);
    assert_eq!(
        run,
        Run {
            hits: 2,
            victims: vec![2, 1, 3]
        }
    );
    // Capacity 0 holds nothing: every block is its own victim.
    assert_eq!(naive_lru(0, &[5, 5]).victims, [5, 5]);
}

#[test]
fn lru_matches_reference_on_zipf() {
    for (seed, items, exponent) in [(1, 2_000, 0.8), (2, 5_000, 1.0), (3, 1_000, 1.2)] {
        let requests = zipf(seed, items, exponent, 20_000);
        assert_matches_reference(&format!("zipf({items}, {exponent})"), &requests);
    }
}

#[test]
fn lru_matches_reference_on_sequential_scans() {
    // Overlapping scans of 300–3 000 consecutive blocks starting at random offsets.
    let requests = sequential_scans(4, 20_000);
    assert_matches_reference("sequential scans", &requests);
}

#[test]
fn lru_matches_reference_on_loops() {
    for (n, repeats) in [(100, 50), (999, 8), (3_000, 4)] {
        assert_matches_reference(&format!("loop({n}) x {repeats}"), &cyclic(n, repeats));
    }
}

#[test]
fn lru_matches_reference_on_uniform_and_mixed_workloads() {
    assert_matches_reference("uniform(1 500)", &uniform(5, 1_500, 20_000));
    assert_matches_reference("mix", &mixed(6, 20_000));
    assert_matches_reference("scan-polluted zipf", &scan_polluted_zipf(7, 20_000));
}

/// A loop of `n` distinct blocks repeated `r` times: under LRU every request is a miss while
/// the capacity is below `n` (the block about to be requested is always the least recently
/// used one, so it is the one evicted), and every request after the first pass is a hit once
/// the capacity is at least `n`: (r − 1) · n hits.
#[test]
fn lru_on_a_cyclic_loop_matches_first_principles() {
    let (n, r) = (1_000u64, 10u64);
    let requests = cyclic(n, r);
    assert_eq!(requests.len() as u64, n * r);
    for capacity in [1usize, 2, 500, 998, 999] {
        let run = drive(&Lru, capacity, &requests);
        assert_eq!(run.hits, 0, "capacity {capacity} < {n}: no hit at all");
        // Every request misses, so LRU is FIFO here: the k-th victim is the k-th request.
        assert_eq!(
            run.victims,
            requests[..requests.len() - capacity],
            "capacity {capacity}: victims are the requests in order"
        );
    }
    for capacity in [1_000usize, 1_001, 2_000, 10_000] {
        let run = drive(&Lru, capacity, &requests);
        assert_eq!(run.hits, (r - 1) * n, "capacity {capacity} >= {n}");
        assert!(
            run.victims.is_empty(),
            "capacity {capacity}: nothing to evict"
        );
    }
    // The published `loop` trace has 1 011 distinct blocks; the same reasoning gives its
    // 0.00 % below 1 011 entries.
    assert_eq!(replay(&Lru, 1_010, &cyclic(1_011, 3)).hits, 0);
    assert_eq!(replay(&Lru, 1_011, &cyclic(1_011, 3)).hits, 2 * 1_011);
}
