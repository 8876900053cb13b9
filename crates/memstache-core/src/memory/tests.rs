//! Unit tests of the memory backend, with a manual clock.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use super::*;
use crate::ErrorKind;
use crate::raw::{BackendEntry, EntryId, EntryMeta, EvictionPolicy, EvictionState, ManualClock};

/// The memory backend never awaits: one poll completes every future.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("memory backend future was pending"),
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn store(max_entries: usize, clock: &ManualClock) -> MemoryBackend {
    MemoryBackend::builder()
        .max_entries(max_entries)
        .shards(1)
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("valid config")
}

fn ttl(ms: u64, clock: &ManualClock) -> Expiry {
    Expiry::new(Some(clock.now_ms() + ms), None)
}

#[test]
fn set_get_remove_exists_roundtrip() {
    let clock = ManualClock::new(1_000);
    let s = store(10, &clock);
    assert_eq!(run(s.get("a")).unwrap(), None);
    run(s.set("a", b("1"), Expiry::NEVER)).unwrap();
    assert_eq!(run(s.get("a")).unwrap(), Some(b("1")));
    assert!(run(s.exists("a")).unwrap());
    run(s.set("a", b("2"), Expiry::NEVER)).unwrap();
    assert_eq!(run(s.get("a")).unwrap(), Some(b("2")));
    assert_eq!(s.len(), 1);
    assert!(run(s.remove("a")).unwrap());
    assert!(!run(s.remove("a")).unwrap());
    assert!(!run(s.exists("a")).unwrap());
    assert_eq!(s.weighted_size(), 0);
    s.check_invariants();
}

#[test]
fn name_and_capabilities() {
    let s = MemoryBackend::new();
    assert_eq!(s.name(), "memory");
    let c = s.capabilities();
    assert!(c.native_ttl);
    assert!(!c.distributed);
    assert!(c.max_value_size.is_some());
    assert_eq!(s.policy_name(), "lru");
    assert!(s.shard_count().is_power_of_two());
}

#[test]
fn invalid_configs_are_typed_errors() {
    let cases = [
        MemoryBackend::builder().max_entries(0),
        MemoryBackend::builder().max_bytes(0),
        MemoryBackend::builder().shards(0),
        MemoryBackend::builder().shards(3),
        MemoryBackend::builder().max_entries(4).shards(8),
        MemoryBackend::builder().max_bytes(4).shards(8),
        MemoryBackend::builder().shards(1 << 20),
    ];
    for builder in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{err}");
    }
}

#[test]
fn default_shards_is_power_of_two_and_small_for_small_caches() {
    for (entries, bytes) in [
        (1, 1),
        (10, 1 << 30),
        (100_000, 256 << 20),
        (usize::MAX, u64::MAX),
    ] {
        let n = builder::default_shards(entries, bytes);
        assert!(n.is_power_of_two());
        assert!(n <= entries.max(1));
    }
    assert_eq!(builder::default_shards(100, 1 << 30), 1);
    let s = MemoryBackend::builder()
        .max_entries(1)
        .max_bytes(1_000)
        .build()
        .unwrap();
    assert_eq!(s.shard_count(), 1);
}

#[test]
fn lru_order_is_respected_with_one_shard() {
    let clock = ManualClock::new(0);
    let s = store(3, &clock);
    for k in ["a", "b", "c"] {
        run(s.set(k, b(k), Expiry::NEVER)).unwrap();
    }
    assert!(run(s.get("a")).unwrap().is_some()); // a is now most recent
    run(s.set("d", b("d"), Expiry::NEVER)).unwrap();
    assert_eq!(s.len(), 3);
    assert!(run(s.exists("a")).unwrap());
    assert!(!run(s.exists("b")).unwrap());
    assert!(run(s.exists("c")).unwrap());
    assert!(run(s.exists("d")).unwrap());
    s.check_invariants();
}

#[test]
fn byte_bound_evicts_and_weight_is_documented_formula() {
    let clock = ManualClock::new(0);
    let per = MemoryBackend::ENTRY_OVERHEAD + 1 + 100;
    let s = MemoryBackend::builder()
        .max_entries(1_000)
        .max_bytes(per * 3)
        .shards(1)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let v = Bytes::from(vec![7u8; 100]);
    for k in ["a", "b", "c"] {
        run(s.set(k, v.clone(), Expiry::NEVER)).unwrap();
    }
    assert_eq!(s.weighted_size(), per * 3);
    run(s.set("d", v.clone(), Expiry::NEVER)).unwrap();
    assert_eq!(s.len(), 3);
    assert_eq!(s.weighted_size(), per * 3);
    assert!(!run(s.exists("a")).unwrap());
    // a bigger value replacing an existing one evicts others to make room
    run(s.set("d", Bytes::from(vec![1u8; 200]), Expiry::NEVER)).unwrap();
    assert!(s.weighted_size() <= per * 3);
    assert_eq!(run(s.get("d")).unwrap().map(|v| v.len()), Some(200));
    s.check_invariants();
}

#[test]
fn value_larger_than_a_shard_is_rejected_and_nothing_written() {
    let s = MemoryBackend::builder()
        .max_entries(100)
        .max_bytes(4_096)
        .shards(2)
        .build()
        .unwrap();
    run(s.set("k", b("small"), Expiry::NEVER)).unwrap();
    let err = run(s.set("k", Bytes::from(vec![0u8; 2_048]), Expiry::NEVER)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    assert!(!err.to_string().contains("\"k\""));
    assert_eq!(
        err.context_value("key_hash"),
        Some(crate::key_hash("k").as_str())
    );
    // the previous value is untouched
    assert_eq!(run(s.get("k")).unwrap(), Some(b("small")));
    // exactly at the limit is accepted
    let max = s.capabilities().max_value_size.unwrap() - 1; // one byte of key
    run(s.set("x", Bytes::from(vec![0u8; max]), Expiry::NEVER)).unwrap();
    assert!(run(s.exists("x")).unwrap());
}

#[test]
fn absolute_expiry_uses_injected_clock() {
    let clock = ManualClock::new(10_000);
    let s = store(10, &clock);
    run(s.set("a", b("1"), ttl(1_000, &clock))).unwrap();
    clock.advance(Duration::from_millis(999));
    assert_eq!(run(s.get("a")).unwrap(), Some(b("1")));
    clock.advance(Duration::from_millis(1));
    assert_eq!(run(s.get("a")).unwrap(), None);
    assert!(!run(s.exists("a")).unwrap());
    assert!(!run(s.touch("a")).unwrap());
    assert_eq!(s.len(), 0, "due entry reclaimed on access");
    s.check_invariants();
}

#[test]
fn already_due_write_stores_nothing_and_drops_previous() {
    let clock = ManualClock::new(10_000);
    let s = store(10, &clock);
    run(s.set("a", b("1"), Expiry::NEVER)).unwrap();
    run(s.set("a", b("2"), Expiry::new(Some(10_000), None))).unwrap();
    assert_eq!(run(s.get("a")).unwrap(), None);
    run(s.set("b", b("2"), Expiry::new(None, Some(Duration::ZERO)))).unwrap();
    assert_eq!(s.len(), 0);
}

#[test]
fn sliding_expiry_rearmed_by_get_and_touch_capped_by_deadline() {
    let clock = ManualClock::new(0);
    let s = store(10, &clock);
    let e = Expiry::new(Some(10_000), Some(Duration::from_millis(3_000)));
    run(s.set("s", b("v"), e)).unwrap();
    clock.set(2_500);
    assert!(run(s.get("s")).unwrap().is_some()); // re-armed to 5500
    clock.set(5_000);
    assert!(run(s.touch("s")).unwrap()); // re-armed to 8000
    clock.set(7_900);
    assert!(run(s.get_many(&["s", "zz"])).unwrap()[0].is_some()); // 10_000 (capped)
    clock.set(9_999);
    assert!(run(s.exists("s")).unwrap());
    clock.set(10_000);
    assert!(
        !run(s.exists("s")).unwrap(),
        "deadline caps the sliding window"
    );
    s.check_invariants();
}

#[test]
fn exists_does_not_rearm() {
    let clock = ManualClock::new(0);
    let s = store(10, &clock);
    run(s.set(
        "s",
        b("v"),
        Expiry::new(None, Some(Duration::from_millis(1_000))),
    ))
    .unwrap();
    clock.set(900);
    assert!(run(s.exists("s")).unwrap());
    clock.set(1_000);
    assert!(!run(s.exists("s")).unwrap());
    assert_eq!(run(s.get("s")).unwrap(), None);
}

#[test]
fn expired_entries_are_reclaimed_without_being_touched() {
    let clock = ManualClock::new(0);
    let s = store(1_000, &clock);
    for i in 0..100 {
        run(s.set(&format!("t{i}"), b("v"), ttl(10, &clock))).unwrap();
    }
    run(s.set("keep", b("v"), Expiry::NEVER)).unwrap();
    clock.advance(Duration::from_millis(10));
    // each operation reclaims a few due entries; unrelated reads drain the index
    let mut ops = 0;
    while s.len() > 1 {
        assert!(run(s.get("keep")).unwrap().is_some());
        ops += 1;
        assert!(
            ops <= 100,
            "due entries must be reclaimed by ordinary operations"
        );
    }
    assert!(ops <= 100 / shard::EXPIRE_BUDGET + 1);
    s.check_invariants();
}

#[test]
fn due_entries_go_before_live_ones_when_over_bound() {
    let clock = ManualClock::new(0);
    let s = store(3, &clock);
    run(s.set("old", b("v"), Expiry::NEVER)).unwrap();
    run(s.set("ttl1", b("v"), ttl(5, &clock))).unwrap();
    run(s.set("ttl2", b("v"), ttl(5_000, &clock))).unwrap();
    clock.advance(Duration::from_millis(5));
    // the sweep budget reclaims ttl1 before inserting; "old" (LRU) survives
    run(s.set("new", b("v"), Expiry::NEVER)).unwrap();
    assert!(run(s.exists("old")).unwrap());
    assert!(run(s.exists("new")).unwrap());
    assert!(run(s.exists("ttl2")).unwrap());
}

#[test]
fn listener_sees_every_cause_with_hashes_only() {
    let clock = ManualClock::new(0);
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let s = MemoryBackend::builder()
        .max_entries(2)
        .shards(1)
        .clock(Arc::new(clock.clone()))
        .eviction_listener(move |e| sink.lock().push(e.clone()))
        .build()
        .unwrap();
    run(s.set("secret-a", b("1"), Expiry::NEVER)).unwrap();
    run(s.set("secret-a", b("22"), Expiry::NEVER)).unwrap(); // Replaced
    run(s.set("secret-b", b("3"), ttl(10, &clock))).unwrap();
    run(s.set("secret-c", b("4"), Expiry::NEVER)).unwrap(); // Size: secret-a
    clock.advance(Duration::from_millis(10));
    assert_eq!(run(s.get("secret-b")).unwrap(), None); // Expired
    assert!(run(s.remove("secret-c")).unwrap()); // Removed
    run(s.set("secret-d", b("5"), Expiry::NEVER)).unwrap();
    s.clear(); // Removed
    let ev = events.lock().clone();
    let causes: Vec<_> = ev.iter().map(|e| e.cause).collect();
    assert_eq!(
        causes,
        [
            EvictionCause::Replaced,
            EvictionCause::Size,
            EvictionCause::Expired,
            EvictionCause::Removed,
            EvictionCause::Removed
        ]
    );
    assert_eq!(ev[0].key_hash, crate::key_hash("secret-a"));
    assert_eq!(ev[0].weight, MemoryBackend::ENTRY_OVERHEAD + 8 + 1);
    assert_eq!(ev[1].key_hash, crate::key_hash("secret-a"));
    assert_eq!(ev[2].key_hash, crate::key_hash("secret-b"));
    assert!(!format!("{ev:?}").contains("secret"));
    assert!(!format!("{s:?}").contains("secret"));
    assert!(s.is_empty());
}

#[test]
fn listener_may_call_back_into_the_store() {
    let cell: Arc<std::sync::OnceLock<MemoryBackend>> = Arc::new(std::sync::OnceLock::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let (cell2, c2) = (Arc::clone(&cell), Arc::clone(&calls));
    let s = MemoryBackend::builder()
        .max_entries(1)
        .eviction_listener(move |_| {
            // would deadlock if the listener ran under the shard lock of this very store
            let me = cell2.get().expect("store installed");
            assert_eq!(me.len(), 1);
            c2.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    cell.set(s.clone()).unwrap();
    run(s.set("a", b("1"), Expiry::NEVER)).unwrap();
    run(s.set("b", b("1"), Expiry::NEVER)).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(s.len(), 1);
}

#[test]
fn batch_defaults_work_and_keep_order() {
    let clock = ManualClock::new(0);
    let s = store(10, &clock);
    let entries = vec![
        BackendEntry {
            key: "a".into(),
            value: b("1"),
            expiry: Expiry::NEVER,
        },
        BackendEntry {
            key: "b".into(),
            value: b("2"),
            expiry: Expiry::NEVER,
        },
    ];
    run(s.set_many(entries)).unwrap();
    let keys = ["b", "x", "a"];
    assert_eq!(
        run(s.get_many(&keys)).unwrap(),
        vec![Some(b("2")), None, Some(b("1"))]
    );
    assert_eq!(run(s.remove_many(&keys)).unwrap(), 2);
    assert!(s.is_empty());
}

#[test]
fn clones_share_state_and_clear_empties() {
    let s = MemoryBackend::new();
    let t = s.clone();
    run(s.set("a", b("1"), Expiry::NEVER)).unwrap();
    assert_eq!(run(t.get("a")).unwrap(), Some(b("1")));
    t.clear();
    assert!(s.is_empty());
    assert_eq!(s.weighted_size(), 0);
    run(s.set("a", b("1"), Expiry::NEVER)).unwrap();
    assert_eq!(s.len(), 1, "usable after clear");
}

/// A policy that never names a victim: the store must still hold its bounds.
#[derive(Debug)]
struct Lazy;
struct LazyState(usize);
impl EvictionPolicy for Lazy {
    fn name(&self) -> &'static str {
        "lazy"
    }
    fn new_state(&self, _capacity: usize) -> Box<dyn EvictionState> {
        Box::new(LazyState(0))
    }
}
impl EvictionState for LazyState {
    fn record_insert(&mut self, _id: EntryId, _meta: &EntryMeta) {
        self.0 += 1;
    }
    fn record_access(&mut self, _id: EntryId) {}
    fn record_remove(&mut self, _id: EntryId) {}
    fn select_victim(&mut self) -> Option<EntryId> {
        Some(u64::MAX) // an unknown id
    }
    fn len(&self) -> usize {
        self.0
    }
}

#[test]
fn misbehaving_policy_cannot_break_bounds() {
    let s = MemoryBackend::builder()
        .max_entries(4)
        .shards(1)
        .policy(Lazy)
        .build()
        .unwrap();
    for i in 0..20 {
        run(s.set(&format!("k{i}"), b("v"), Expiry::NEVER)).unwrap();
    }
    assert_eq!(s.len(), 4);
    s.check_invariants();
}

#[test]
fn bounds_hold_under_concurrent_writers_and_readers() {
    const THREADS: usize = 6;
    const OPS: usize = 20_000;
    let max_entries = 1_000;
    let max_bytes = 150_000;
    let s = MemoryBackend::builder()
        .max_entries(max_entries)
        .max_bytes(max_bytes)
        .shards(8)
        .build()
        .unwrap();
    let barrier = Arc::new(Barrier::new(THREADS + 1));
    let violations = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (s, barrier, violations) =
                (s.clone(), Arc::clone(&barrier), Arc::clone(&violations));
            std::thread::spawn(move || {
                barrier.wait();
                let mut x = t as u64 + 1;
                for i in 0..OPS {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("k{}", x % 5_000);
                    if i % 3 == 0 {
                        let _ = run(s.get(&key)).unwrap();
                    } else {
                        let len = (x % 64) as usize;
                        run(s.set(&key, Bytes::from(vec![t as u8; len]), Expiry::NEVER)).unwrap();
                    }
                    if i % 64 == 0 && (s.len() > max_entries || s.weighted_size() > max_bytes) {
                        violations.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    barrier.wait();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(violations.load(Ordering::SeqCst), 0);
    assert!(s.len() <= max_entries);
    assert!(s.len() > max_entries / 2, "the store fills up");
    assert!(s.weighted_size() <= max_bytes);
    s.check_invariants();
}

#[test]
fn lru_state_contract() {
    let mut st = Lru.new_state(4);
    assert_eq!(st.select_victim(), None);
    st.record_access(9);
    st.record_remove(9);
    for id in 1..=3 {
        st.record_insert(id, &EntryMeta::default());
    }
    st.record_insert(1, &EntryMeta::default()); // duplicate = access
    assert_eq!(st.len(), 3);
    st.record_remove(2);
    assert_eq!(st.select_victim(), Some(3));
    assert_eq!(st.select_victim(), Some(1));
    assert_eq!(st.select_victim(), None);
    assert!(st.is_empty());
}

mod model {
    //! The store against a plain model of the expiry semantics (no eviction: the capacity is
    //! larger than the key space).

    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[derive(Debug, Clone)]
    enum Op {
        Set(u8, u8, Option<u16>, Option<u16>),
        Get(u8),
        GetMany(u8, u8),
        Touch(u8),
        Exists(u8),
        Remove(u8),
        Advance(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (
                0u8..6,
                any::<u8>(),
                proptest::option::of(0u16..300),
                proptest::option::of(1u16..200)
            )
                .prop_map(|(k, v, a, s)| Op::Set(k, v, a, s)),
            (0u8..6).prop_map(Op::Get),
            (0u8..6, 0u8..6).prop_map(|(a, b)| Op::GetMany(a, b)),
            (0u8..6).prop_map(Op::Touch),
            (0u8..6).prop_map(Op::Exists),
            (0u8..6).prop_map(Op::Remove),
            (0u16..150).prop_map(Op::Advance),
        ]
    }

    /// key -> (value, expiry, expires_at)
    type Model = HashMap<u8, (u8, Expiry, Option<u64>)>;

    fn model_read(m: &mut Model, k: u8, now: u64, rearm: bool) -> Option<u8> {
        let (v, e, at) = *m.get(&k)?;
        if at.is_some_and(|at| at <= now) {
            m.remove(&k);
            return None;
        }
        if rearm && e.sliding.is_some() {
            m.insert(k, (v, e, e.expires_at(now)));
        }
        Some(v)
    }

    proptest! {
        #[test]
        fn store_matches_model(ops in proptest::collection::vec(op(), 1..120)) {
            let clock = ManualClock::new(1_000);
            let s = store(100, &clock);
            let mut m: Model = HashMap::new();
            let key = |k: u8| format!("key{k}");
            for op in ops {
                let now = clock.now_ms();
                match op {
                    Op::Set(k, v, abs, sliding) => {
                        let e = Expiry::new(
                            abs.map(|a| now + u64::from(a)),
                            sliding.map(|s| Duration::from_millis(u64::from(s))),
                        );
                        run(s.set(&key(k), Bytes::from(vec![v]), e)).unwrap();
                        let at = e.expires_at(now);
                        if at.is_some_and(|at| at <= now) {
                            m.remove(&k);
                        } else {
                            m.insert(k, (v, e, at));
                        }
                    }
                    Op::Get(k) => {
                        let got = run(s.get(&key(k))).unwrap().map(|b| b[0]);
                        prop_assert_eq!(got, model_read(&mut m, k, now, true));
                    }
                    Op::GetMany(a, b) => {
                        let got: Vec<_> = run(s.get_many(&[key(a).as_str(), key(b).as_str()]))
                            .unwrap()
                            .into_iter()
                            .map(|o| o.map(|b| b[0]))
                            .collect();
                        let want = vec![
                            model_read(&mut m, a, now, true),
                            model_read(&mut m, b, now, true),
                        ];
                        prop_assert_eq!(got, want);
                    }
                    Op::Touch(k) => {
                        let got = run(s.touch(&key(k))).unwrap();
                        prop_assert_eq!(got, model_read(&mut m, k, now, true).is_some());
                    }
                    Op::Exists(k) => {
                        let got = run(s.exists(&key(k))).unwrap();
                        prop_assert_eq!(got, model_read(&mut m, k, now, false).is_some());
                    }
                    Op::Remove(k) => {
                        let got = run(s.remove(&key(k))).unwrap();
                        prop_assert_eq!(got, model_read(&mut m, k, now, false).is_some());
                        m.remove(&k);
                    }
                    Op::Advance(ms) => clock.advance(Duration::from_millis(u64::from(ms))),
                }
                s.check_invariants();
                prop_assert!(s.len() >= m.values().filter(|(_, _, at)| at.is_none_or(|at| at > now)).count());
            }
        }
    }
}

fn first_segment(key: &str) -> Option<&str> {
    key.split_once('/').map(|(p, _)| p)
}

/// Keys naming ever new partitions (tenant ids from requests, say) do not grow the store past
/// `max_partitions` partitions: the idlest is dropped whole, and its entries are reported.
#[test]
fn partitions_are_bounded_and_the_idlest_is_dropped() {
    let departed = Arc::new(Mutex::new(Vec::new()));
    let d = Arc::clone(&departed);
    let store = MemoryBackend::builder()
        .partition_by(first_segment, 10, 1 << 20)
        .max_partitions(8)
        .eviction_listener(move |e| d.lock().push(e.cause))
        .build()
        .unwrap();
    run(store.set("hot/k", b("v"), Expiry::NEVER)).unwrap();
    for i in 0..1_000 {
        run(store.set(&format!("t{i}/k"), b("v"), Expiry::NEVER)).unwrap();
        // The hot partition is used between every two new ones: it is never the idlest.
        assert_eq!(run(store.get("hot/k")).unwrap(), Some(b("v")));
    }
    let live = store.inner.partitions.as_ref().unwrap().map.read().len();
    assert_eq!(live, 8);
    assert_eq!(store.len(), 8, "one entry in each live partition");
    assert_eq!(store.partition_len("hot"), Some(1));
    assert_eq!(store.partition_len("t999"), Some(1));
    assert_eq!(store.partition_len("t0"), None);
    let departed = departed.lock();
    assert_eq!(departed.len(), 1_000 + 1 - 8);
    assert!(departed.iter().all(|c| *c == EvictionCause::Size));
    assert!(
        MemoryBackend::builder()
            .partition_by(first_segment, 10, 1 << 20)
            .max_partitions(0)
            .build()
            .is_err()
    );
}
