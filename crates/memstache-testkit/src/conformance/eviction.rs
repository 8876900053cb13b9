//! The eviction-policy conformance suite: every [`EvictionPolicy`] (built-in or custom) runs
//! these checks from its own crate's tests.
//!
//! Two parts:
//!
//! * [`run_eviction_suite`] drives a policy's states directly: the capacity bound, victims that
//!   are live and never repeated, unknown ids tolerated, `select_victim` on an empty state,
//!   removal, updates, tiny and huge capacities, independent states.
//! * [`run_memory_backend_suite`] runs the [`MemoryBackend`] with the policy: entry and byte
//!   bounds (also under concurrent writers), expiry on an injected clock, sliding re-arm.
//!
//! ```
//! use memstache_testkit::conformance::eviction::run_eviction_suite;
//! run_eviction_suite(&memstache_core::memory::Lru);
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use memstache_core::ErrorKind;
use memstache_core::memory::MemoryBackend;
use memstache_core::raw::{Backend, EntryId, EntryMeta, EvictionPolicy, Expiry, ManualClock};

use super::TestRng;

/// Runs every state-level check on `policy`.
pub fn run_eviction_suite(policy: &dyn EvictionPolicy) {
    name_is_short_and_stable(policy);
    empty_state_has_no_victim(policy);
    capacity_bound_holds_with_live_unique_victims(policy);
    unknown_ids_are_tolerated(policy);
    remove_then_no_victim(policy);
    removed_ids_are_never_victims(policy);
    update_keeps_one_entry(policy);
    drain_returns_every_live_id_once(policy);
    tiny_and_huge_capacities(policy);
    extreme_ids_and_metadata(policy);
    states_are_independent(policy);
}

fn meta(id: EntryId, t: u64) -> EntryMeta {
    EntryMeta::new(id.wrapping_mul(0x9e37_79b9_7f4a_7c15), 100, None, t)
}

/// The name is non-empty, lowercase ASCII and the same on every call.
pub fn name_is_short_and_stable(policy: &dyn EvictionPolicy) {
    let n = policy.name();
    assert!(!n.is_empty() && n.len() <= 32, "{n}");
    assert!(
        n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'),
        "{n}"
    );
    assert_eq!(n, policy.name());
}

/// A fresh state tracks nothing and has no victim.
pub fn empty_state_has_no_victim(policy: &dyn EvictionPolicy) {
    let mut st = policy.new_state(16);
    assert_eq!(st.len(), 0, "{}", policy.name());
    assert!(st.is_empty());
    assert_eq!(st.select_victim(), None, "{}", policy.name());
    assert_eq!(st.select_victim(), None, "{}", policy.name());
}

/// Driven like a store (insert, evict while over capacity), the state never tracks more than
/// the capacity, every victim is live, and no id is returned twice while not re-inserted.
pub fn capacity_bound_holds_with_live_unique_victims(policy: &dyn EvictionPolicy) {
    for capacity in [1usize, 2, 7, 64, 500] {
        let mut st = policy.new_state(capacity);
        let mut live: HashSet<EntryId> = HashSet::new();
        let mut rng = TestRng::new(capacity as u64);
        let mut next_id: EntryId = 0;
        for t in 0..(capacity as u64 * 20 + 50) {
            let r = rng.next_u64();
            if r.is_multiple_of(3) && next_id > 0 {
                // a read of a recent id: a hit when still live, else an unknown id
                let id = next_id.saturating_sub((r >> 8) % (2 * capacity as u64));
                st.record_access(id);
            } else {
                next_id += 1;
                st.record_insert(next_id, &meta(next_id, t));
                live.insert(next_id);
                while live.len() > capacity {
                    let v = st.select_victim().unwrap_or_else(|| {
                        panic!("{}: no victim while over capacity", policy.name())
                    });
                    assert!(live.remove(&v), "{}: victim {v} is not live", policy.name());
                }
            }
            assert_eq!(st.len(), live.len(), "{}: len", policy.name());
            assert!(st.len() <= capacity);
        }
    }
}

/// Accesses, updates and removals of ids the state never saw change nothing and do not panic.
pub fn unknown_ids_are_tolerated(policy: &dyn EvictionPolicy) {
    let mut st = policy.new_state(8);
    st.record_access(42);
    st.record_remove(42);
    st.record_update(42, &meta(42, 0));
    assert_eq!(st.len(), 0, "{}", policy.name());
    assert_eq!(st.select_victim(), None, "{}", policy.name());
    st.record_insert(1, &meta(1, 0));
    st.record_access(2);
    st.record_remove(3);
    st.record_update(4, &meta(4, 0));
    assert_eq!(st.len(), 1, "{}", policy.name());
    assert_eq!(st.select_victim(), Some(1), "{}", policy.name());
    // a victim is forgotten: removing or accessing it again is an unknown id
    st.record_remove(1);
    st.record_access(1);
    assert_eq!(st.len(), 0, "{}", policy.name());
    assert_eq!(st.select_victim(), None, "{}", policy.name());
}

/// Insert then remove leaves nothing to evict.
pub fn remove_then_no_victim(policy: &dyn EvictionPolicy) {
    let mut st = policy.new_state(4);
    st.record_insert(7, &meta(7, 0));
    st.record_access(7);
    st.record_remove(7);
    assert_eq!(st.len(), 0, "{}", policy.name());
    assert_eq!(st.select_victim(), None, "{}", policy.name());
}

/// Removed ids are never returned as victims.
pub fn removed_ids_are_never_victims(policy: &dyn EvictionPolicy) {
    let mut st = policy.new_state(10);
    for id in 0..10 {
        st.record_insert(id, &meta(id, id));
    }
    for id in (0..10).step_by(2) {
        st.record_remove(id);
    }
    let mut seen = HashSet::new();
    while let Some(v) = st.select_victim() {
        assert!(v % 2 == 1, "{}: removed id {v} returned", policy.name());
        assert!(seen.insert(v), "{}: {v} returned twice", policy.name());
    }
    assert_eq!(seen.len(), 5, "{}", policy.name());
}

/// `record_update` keeps exactly one tracked entry for the id.
pub fn update_keeps_one_entry(policy: &dyn EvictionPolicy) {
    let mut st = policy.new_state(4);
    st.record_insert(1, &meta(1, 0));
    st.record_insert(2, &meta(2, 1));
    let m = EntryMeta::new(99, 5_000, Some(1_000_000), 2);
    st.record_update(1, &m);
    st.record_update(1, &m);
    assert_eq!(st.len(), 2, "{}", policy.name());
    let mut victims = vec![st.select_victim(), st.select_victim()];
    victims.sort();
    assert_eq!(victims, [Some(1), Some(2)], "{}", policy.name());
    assert_eq!(st.select_victim(), None, "{}", policy.name());
}

/// After a random workload, draining returns exactly the live ids, once each.
pub fn drain_returns_every_live_id_once(policy: &dyn EvictionPolicy) {
    let mut st = policy.new_state(100);
    let mut live = HashSet::new();
    let mut rng = TestRng::new(7);
    for t in 0..2_000u64 {
        let id = rng.next_u64() % 300;
        match rng.next_u64() % 4 {
            0 | 1 if !live.contains(&id) => {
                st.record_insert(id, &meta(id, t));
                live.insert(id);
            }
            2 => {
                st.record_remove(id);
                live.remove(&id);
            }
            _ => st.record_access(id),
        }
        // keep it bounded like a store would
        while live.len() > 100 {
            let v = st.select_victim().expect("victim while over capacity");
            assert!(live.remove(&v), "{}: victim {v} not live", policy.name());
        }
    }
    assert_eq!(st.len(), live.len(), "{}", policy.name());
    let mut drained = HashSet::new();
    while let Some(v) = st.select_victim() {
        assert!(drained.insert(v), "{}: {v} drained twice", policy.name());
    }
    assert_eq!(drained, live, "{}", policy.name());
    assert!(st.is_empty());
}

/// Capacities 0, 1 and `usize::MAX` (a store may pass anything) neither panic nor allocate
/// absurdly, and still evict.
pub fn tiny_and_huge_capacities(policy: &dyn EvictionPolicy) {
    for capacity in [0usize, 1, usize::MAX] {
        let mut st = policy.new_state(capacity);
        for id in 0..5 {
            st.record_insert(id, &meta(id, id));
            st.record_access(id);
        }
        assert_eq!(st.len(), 5, "{} at {capacity}", policy.name());
        let mut n = 0;
        while st.select_victim().is_some() {
            n += 1;
        }
        assert_eq!(n, 5, "{} at {capacity}", policy.name());
    }
}

/// Extreme ids, hashes, weights and times are ordinary values.
pub fn extreme_ids_and_metadata(policy: &dyn EvictionPolicy) {
    let mut st = policy.new_state(4);
    st.record_insert(
        u64::MAX,
        &EntryMeta::new(u64::MAX, u64::MAX, Some(u64::MAX), u64::MAX),
    );
    st.record_insert(0, &EntryMeta::new(0, 0, Some(0), 0));
    for _ in 0..100 {
        st.record_access(u64::MAX);
    }
    assert_eq!(st.len(), 2, "{}", policy.name());
    let mut v = vec![st.select_victim(), st.select_victim()];
    v.sort();
    assert_eq!(v, [Some(0), Some(u64::MAX)], "{}", policy.name());
}

/// Two states of one policy do not share entries.
pub fn states_are_independent(policy: &dyn EvictionPolicy) {
    let mut a = policy.new_state(4);
    let mut b = policy.new_state(4);
    a.record_insert(1, &meta(1, 0));
    assert_eq!(b.len(), 0, "{}", policy.name());
    assert_eq!(b.select_victim(), None, "{}", policy.name());
    assert_eq!(a.select_victim(), Some(1), "{}", policy.name());
}

/// The memory backend never awaits: one poll completes its futures.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("memory backend future was pending"),
    }
}

/// Runs the [`MemoryBackend`] with `policy`: bounds, concurrency, expiry.
pub fn run_memory_backend_suite(policy: Arc<dyn EvictionPolicy>) {
    memory_entry_and_byte_bounds(Arc::clone(&policy));
    memory_bounds_under_concurrency(Arc::clone(&policy));
    memory_expiry_and_sliding(Arc::clone(&policy));
    memory_value_too_large(policy);
}

/// Entry and byte bounds hold after every write; hot keys mostly survive.
pub fn memory_entry_and_byte_bounds(policy: Arc<dyn EvictionPolicy>) {
    let name = policy.name();
    let max_bytes = 40 * (MemoryBackend::ENTRY_OVERHEAD + 64);
    let store = MemoryBackend::builder()
        .max_entries(50)
        .max_bytes(max_bytes)
        .shards(2)
        .policy_arc(policy)
        .build()
        .expect("valid config");
    let mut rng = TestRng::new(11);
    let mut last = None;
    for i in 0..3_000u64 {
        let key = format!("k{}", rng.next_u64() % 400);
        let len = (rng.next_u64() % 64) as usize;
        run(store.set(&key, Bytes::from(rng.bytes(len)), Expiry::NEVER)).expect("set");
        assert!(store.len() <= 50, "{name}: {} entries", store.len());
        assert!(store.weighted_size() <= max_bytes, "{name}: bytes");
        if i % 5 == 0 {
            let _ = run(store.get("k0")).expect("get");
        }
        // what a get returns is what was last written
        if let Some(v) = run(store.get(&key)).expect("get") {
            assert_eq!(v.len(), len, "{name}: stale value");
        }
        last = Some(key);
    }
    assert!(store.len() >= 20, "{name}: store stays reasonably full");
    assert!(last.is_some());
}

/// Several threads writing and reading never push the store past its bounds.
pub fn memory_bounds_under_concurrency(policy: Arc<dyn EvictionPolicy>) {
    const THREADS: usize = 4;
    let name = policy.name();
    let store = MemoryBackend::builder()
        .max_entries(256)
        .max_bytes(64 << 10)
        .shards(4)
        .policy_arc(policy)
        .build()
        .expect("valid config");
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, barrier) = (store.clone(), Arc::clone(&barrier));
            std::thread::spawn(move || {
                let mut rng = TestRng::new(t as u64 + 100);
                barrier.wait();
                let mut worst = (0usize, 0u64);
                for _ in 0..5_000 {
                    let key = format!("k{}", rng.next_u64() % 2_000);
                    if rng.next_u64().is_multiple_of(4) {
                        let _ = run(store.get(&key)).expect("get");
                    } else {
                        let len = (rng.next_u64() % 100) as usize;
                        let v = Bytes::from(rng.bytes(len));
                        run(store.set(&key, v, Expiry::NEVER)).expect("set");
                    }
                    worst = (worst.0.max(store.len()), worst.1.max(store.weighted_size()));
                }
                worst
            })
        })
        .collect();
    for t in threads {
        let (entries, bytes) = t.join().expect("thread");
        assert!(entries <= 256, "{name}: {entries} entries");
        assert!(bytes <= 64 << 10, "{name}: {bytes} bytes");
    }
}

/// Expired entries are never returned; sliding windows re-arm on reads, capped by the deadline.
pub fn memory_expiry_and_sliding(policy: Arc<dyn EvictionPolicy>) {
    let name = policy.name();
    let clock = ManualClock::new(1_000_000);
    let store = MemoryBackend::builder()
        .max_entries(100)
        .shards(1)
        .clock(Arc::new(clock.clone()))
        .policy_arc(policy)
        .build()
        .expect("valid config");
    let v = Bytes::from_static(b"v");
    for i in 0..50u64 {
        let e = Expiry::new(Some(1_000_000 + 10 * (i + 1)), None);
        run(store.set(&format!("a{i}"), v.clone(), e)).expect("set");
    }
    let sliding = Expiry::new(Some(1_000_600), Some(Duration::from_millis(100)));
    run(store.set("s", v.clone(), sliding)).expect("set");
    for step in 1..=12u64 {
        clock.advance(Duration::from_millis(50));
        let now = 1_000_000 + 50 * step;
        for i in 0..50u64 {
            let alive = now < 1_000_000 + 10 * (i + 1);
            let got = run(store.get(&format!("a{i}"))).expect("get");
            assert_eq!(got.is_some(), alive, "{name}: a{i} at {now}");
        }
        let s = run(store.get("s")).expect("get");
        assert_eq!(
            s.is_some(),
            now < 1_000_600,
            "{name}: sliding entry at {now}"
        );
    }
    // 100 ms without a read ends a sliding entry
    run(store.set(
        "t",
        v.clone(),
        Expiry::new(None, Some(Duration::from_millis(100))),
    ))
    .expect("set");
    clock.advance(Duration::from_millis(60));
    assert!(run(store.exists("t")).expect("exists"), "{name}");
    clock.advance(Duration::from_millis(40));
    assert!(
        !run(store.exists("t")).expect("exists"),
        "{name}: exists must not re-arm"
    );
}

/// An entry larger than a shard is a typed error.
pub fn memory_value_too_large(policy: Arc<dyn EvictionPolicy>) {
    let store = MemoryBackend::builder()
        .max_entries(10)
        .max_bytes(1_024)
        .shards(1)
        .policy_arc(policy)
        .build()
        .expect("valid config");
    let err = run(store.set("k", Bytes::from(vec![0u8; 2_000]), Expiry::NEVER)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    assert!(store.is_empty());
}
