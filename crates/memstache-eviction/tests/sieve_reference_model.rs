//! `Sieve` against an independent, naive transcription of the SIEVE paper's pseudo-code on
//! seeded synthetic workloads: the hit counts and the sequences of victims must be equal.
//!
//! The reference evicts *before* it inserts, as the paper does (Zhang et al., NSDI 2024,
//! Figure 2): a `Vec` ordered from oldest to newest, a visited flag per block and the hand as
//! an index; O(capacity) per eviction, no code shared with `Sieve`. `Sieve` is driven as the
//! memory store drives a policy: insert first, then evict while over capacity. The two orders
//! agree only if `Sieve`'s hand ignores the entry just inserted, which this test pins.

use memstache_core::raw::EvictionPolicy;
use memstache_eviction::Sieve;
use memstache_harness::synthetic::{
    cyclic, mixed, scan_polluted_zipf, sequential_scans, uniform, zipf,
};
use memstache_harness::traces::replay_with_victims;

const CAPACITIES: [usize; 6] = [1, 2, 7, 64, 250, 1_000];

#[derive(Debug, PartialEq, Eq)]
struct Run {
    hits: u64,
    victims: Vec<u64>,
}

/// The paper's SIEVE, evicting before inserting.
fn naive_sieve(capacity: usize, requests: &[u64]) -> Run {
    // (block, visited), oldest first; `hand` indexes the next block to examine
    let mut queue: Vec<(u64, bool)> = Vec::new();
    let mut hand: Option<usize> = None;
    let mut run = Run {
        hits: 0,
        victims: Vec::new(),
    };
    for &block in requests {
        if let Some(entry) = queue.iter_mut().find(|(b, _)| *b == block) {
            run.hits += 1;
            entry.1 = true;
            continue;
        }
        if queue.len() == capacity {
            let mut i = hand.unwrap_or(0);
            while queue[i].1 {
                queue[i].1 = false;
                i = if i + 1 == queue.len() { 0 } else { i + 1 };
            }
            run.victims.push(queue.remove(i).0);
            // the hand stays at the victim's newer neighbour: now at index i
            hand = (i < queue.len()).then_some(i);
        }
        queue.push((block, false));
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

#[test]
fn sieve_matches_the_papers_pseudo_code() {
    let workloads: [(&str, Vec<u64>); 7] = [
        ("zipf 0.9", zipf(1, 5_000, 0.9, 30_000)),
        ("zipf 1.2", zipf(2, 5_000, 1.2, 30_000)),
        ("uniform", uniform(3, 2_000, 30_000)),
        ("cyclic", cyclic(300, 20)),
        ("sequential scans", sequential_scans(4, 30_000)),
        ("scan-polluted zipf", scan_polluted_zipf(5, 30_000)),
        ("mixed", mixed(6, 30_000)),
    ];
    for (name, requests) in &workloads {
        for capacity in CAPACITIES {
            let want = naive_sieve(capacity, requests);
            let got = drive(&Sieve, capacity, requests);
            assert_eq!(got.hits, want.hits, "{name} at {capacity}: hits");
            assert!(
                got.victims == want.victims,
                "{name} at {capacity}: victims differ from index {:?}",
                got.victims
                    .iter()
                    .zip(&want.victims)
                    .position(|(a, b)| a != b)
            );
        }
    }
}
