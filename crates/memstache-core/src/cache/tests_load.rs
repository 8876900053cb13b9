//! `get_or_load`: loaders that decide what their result does, eager refresh, loader timeouts
//! and background completion, negative caching, TTL jitter. Cache time runs on a
//! [`ManualClock`]; loader time on tokio's paused clock where a test waits for it. The same
//! read-through against two nodes on real Redis is in `memstache-redis/tests/read_through.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::test_support::fail_safe_cache;
use crate::memory::MemoryBackend;
use crate::raw::ManualClock;
use crate::tiers::LocalTier;
use crate::{EntryOptions, ErrorKind, Loaded, MemStache, ReadThrough};

type Io = std::io::Error;

/// A cache on a manual clock over a memory store on the same clock.
fn clocked() -> (MemStache, ManualClock) {
    clocked_with(|b| b)
}

fn clocked_with(
    f: impl FnOnce(crate::MemStacheBuilder) -> crate::MemStacheBuilder,
) -> (MemStache, ManualClock) {
    let clock = ManualClock::starting_now();
    let store = MemoryBackend::builder()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let b = MemStache::builder()
        .backend(store)
        .clock(Arc::new(clock.clone()));
    (f(b).build().unwrap(), clock)
}

fn ttl(secs: u64) -> EntryOptions {
    EntryOptions::new().absolute_expiration(Duration::from_secs(secs))
}

/// A loader call counter.
#[derive(Clone, Default)]
struct Calls(Arc<AtomicU64>);

impl Calls {
    fn add(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
    fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Lets spawned background work run until `done` holds (tokio's paused clock advances while
/// everything sleeps), at most 1,000 rounds.
async fn settle(done: impl Fn() -> bool) {
    for _ in 0..1_000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("background work did not finish");
}

#[tokio::test(flavor = "current_thread")]
async fn a_loader_sets_the_entry_options_from_its_value() {
    let (cache, clock) = clocked();
    // the call says 60 s; the value says 5 s, and wins
    let v: Option<u32> = cache
        .get_or_load("volatile", ttl(60), || async {
            Ok::<_, Io>(Loaded::value(7u32).with_options(ttl(5)))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(7));
    let v: Option<u32> = cache
        .get_or_load("steady", ttl(60), || async {
            Ok::<_, Io>(Loaded::value(8u32))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(8));
    clock.advance(Duration::from_secs(6));
    assert_eq!(cache.get::<u32>("volatile").await.unwrap(), None);
    assert_eq!(cache.get::<u32>("steady").await.unwrap(), Some(8));
}

#[tokio::test(flavor = "current_thread")]
async fn an_uncached_value_is_returned_and_not_stored() {
    let (cache, _) = clocked();
    let calls = Calls::default();
    for _ in 0..2 {
        let c = calls.clone();
        let v: Option<String> = cache
            .get_or_load("k", ttl(60), move || async move {
                c.add();
                Ok::<_, Io>(Loaded::value("partial".to_owned()).uncached())
            })
            .await
            .unwrap();
        assert_eq!(v.as_deref(), Some("partial"));
    }
    assert_eq!(calls.get(), 2, "nothing was stored, so each call loads");
    assert_eq!(cache.get::<String>("k").await.unwrap(), None);
}

#[tokio::test(flavor = "current_thread")]
async fn not_found_is_not_cached_but_not_found_for_is_until_its_ttl() {
    let (cache, clock) = clocked();
    let calls = Calls::default();
    let load = |calls: &Calls, answer: fn() -> Loaded<u32>| {
        let c = calls.clone();
        move || async move {
            c.add();
            Ok::<_, Io>(answer())
        }
    };
    for _ in 0..2 {
        let v = cache
            .get_or_load("gone", ttl(60), load(&calls, Loaded::not_found))
            .await
            .unwrap();
        assert_eq!(v, None);
    }
    assert_eq!(calls.get(), 2);

    let calls = Calls::default();
    let negative = || Loaded::not_found_for(Duration::from_secs(10));
    for _ in 0..5 {
        let v = cache
            .get_or_load("missing", ttl(600), load(&calls, negative))
            .await
            .unwrap();
        assert_eq!(v, None);
    }
    assert_eq!(
        calls.get(),
        1,
        "the cached 'not found' answers the next calls"
    );
    assert_eq!(cache.get::<u32>("missing").await.unwrap(), None);
    assert!(cache.stats().negative_hits >= 5);
    // get_or_set's loader must give a value: the marker is a miss for it, and it overwrites
    let v: u32 = cache
        .get_or_set("missing", ttl(600), || async { Ok::<_, Io>(5) })
        .await
        .unwrap();
    assert_eq!(v, 5);
    assert_eq!(cache.get::<u32>("missing").await.unwrap(), Some(5));

    // a marker lives for its own ttl, not the call's
    let calls = Calls::default();
    cache
        .get_or_load("later", ttl(600), load(&calls, negative))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(11));
    cache
        .get_or_load("later", ttl(600), load(&calls, negative))
        .await
        .unwrap();
    assert_eq!(calls.get(), 2);
    // and a set replaces it
    cache.set("later", &9u32, ttl(600)).await.unwrap();
    assert_eq!(cache.get::<u32>("later").await.unwrap(), Some(9));
}

#[tokio::test(flavor = "current_thread")]
async fn a_forged_not_found_flag_is_an_integrity_error_not_a_miss() {
    let (cache, _) = clocked();
    cache.set("k", &42u32, ttl(60)).await.unwrap();
    let sk = cache.storage_key("k").unwrap();
    let mut raw = cache.backend().get(&sk).await.unwrap().unwrap().to_vec();
    raw[4] |= crate::envelope::FLAG_ABSENT;
    cache
        .backend()
        .set(&sk, raw.into(), crate::raw::Expiry::NEVER)
        .await
        .unwrap();
    let e = cache.get::<u32>("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    assert_eq!(cache.stats().negative_hits, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_not_found_marker_is_never_kept_in_the_local_tier() {
    let (cache, _) = clocked_with(|b| b.local_tier(LocalTier::new()));
    cache.local_tier_ready().await;
    cache.set("k", &1u32, ttl(60)).await.unwrap();
    assert_eq!(cache.local_tier_len(), 1);
    cache.set("other", &2u32, ttl(60)).await.unwrap();
    let v: Option<u32> = cache
        .get_or_load("fresh", ttl(60), || async {
            Ok::<_, Io>(Loaded::not_found_for(Duration::from_secs(5)))
        })
        .await
        .unwrap();
    assert_eq!(v, None);
    assert_eq!(cache.get::<u32>("fresh").await.unwrap(), None);
    assert_eq!(
        cache.local_tier_len(),
        2,
        "k and other only; no marker copy"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn eager_refresh_runs_once_for_many_hits_and_the_new_value_follows() {
    let (cache, clock) = clocked();
    let policy = ReadThrough::new().eager_refresh(0.8);
    let _: Option<u32> = cache
        .get_or_load_with("k", ttl(10), policy, || async { Ok::<_, Io>(1u32.into()) })
        .await
        .unwrap();
    // before 80 % of the life: no refresh
    clock.advance(Duration::from_secs(7));
    let calls = Calls::default();
    let c = calls.clone();
    let v = cache
        .get_or_load_with("k", ttl(10), policy, move || async move {
            c.add();
            Ok::<_, Io>(Loaded::value(2u32))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(1));
    clock.advance(Duration::from_millis(1_500)); // 85 %
    let (open, gate) = tokio::sync::watch::channel(false);
    let hits = (0..50).map(|_| {
        let c = calls.clone();
        let mut gate = gate.clone();
        cache.get_or_load_with("k", ttl(10), policy, move || async move {
            c.add();
            let _ = gate.wait_for(|o| *o).await;
            Ok::<_, Io>(Loaded::value(2u32))
        })
    });
    let got = futures::future::join_all(hits).await;
    assert!(got.iter().all(|v| matches!(v, Ok(Some(1)))), "{got:?}");
    open.send(true).unwrap();
    settle(|| cache.stats().background_loads == 1).await;
    assert_eq!(calls.get(), 1, "one refresh for 50 hits");
    let s = cache.stats();
    assert_eq!((s.eager_refreshes, s.background_loads), (1, 1));
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(2));
    // the refreshed entry has a new life: hits right after do not refresh it again
    let c = calls.clone();
    let _ = cache
        .get_or_load_with("k", ttl(10), policy, move || async move {
            c.add();
            Ok::<_, Io>(Loaded::value(3u32))
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(calls.get(), 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_hard_timeout_without_a_stale_copy_is_an_error_and_the_load_finishes_behind() {
    let (cache, _) = clocked();
    let policy = ReadThrough::new().hard_timeout(Duration::from_millis(100));
    let calls = Calls::default();
    let c = calls.clone();
    let e = cache
        .get_or_load_with("k", ttl(60), policy, move || async move {
            c.add();
            tokio::time::sleep(Duration::from_secs(2)).await;
            Ok::<_, Io>(Loaded::value(5u32))
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    // a caller arriving while that load runs waits for it (within its own timeout), and does
    // not call the source again
    let c = calls.clone();
    let e = cache
        .get_or_load_with("k", ttl(60), policy, move || async move {
            c.add();
            Ok::<_, Io>(Loaded::value(6u32))
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(calls.get(), 1);
    settle(|| cache.stats().background_loads == 1).await;
    let c = calls.clone();
    let v = cache
        .get_or_load_with("k", ttl(60), policy, move || async move {
            c.add();
            Ok::<_, Io>(Loaded::value(7u32))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(5), "the background load stored its value");
    assert_eq!(calls.get(), 1);
    assert_eq!(cache.stats().hard_timeouts, 2);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_caller_waiting_for_a_background_load_gets_its_value_when_it_ends_in_time() {
    let (cache, _) = clocked();
    let slow = ReadThrough::new().hard_timeout(Duration::from_millis(100));
    let _ = cache
        .get_or_load_with("k", ttl(60), slow, || async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, Io>(Loaded::value(5u32))
        })
        .await
        .unwrap_err();
    // this caller may wait 1 s: the background load ends within it
    let patient = ReadThrough::new().hard_timeout(Duration::from_secs(1));
    let v = cache
        .get_or_load_with("k", ttl(60), patient, || async {
            Ok::<_, Io>(Loaded::value(6u32))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(5));
    assert_eq!(cache.stats().loader_calls, 1);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_soft_timeout_serves_the_stale_copy_and_the_slow_load_replaces_it() {
    let (cache, _flaky, clock) = fail_safe_cache(ErrorKind::Unavailable);
    cache.set("k", &1u32, ttl(1)).await.unwrap();
    clock.advance(Duration::from_secs(2)); // expired; fail-safe keeps the copy
    let policy = ReadThrough::new()
        .soft_timeout(Duration::from_millis(50))
        .hard_timeout(Duration::from_secs(5));
    let calls = Calls::default();
    let c = calls.clone();
    let started = tokio::time::Instant::now();
    let v = cache
        .get_or_load_with("k", ttl(60), policy, move || async move {
            c.add();
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok::<_, Io>(Loaded::value(2u32))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(1));
    assert_eq!(started.elapsed(), Duration::from_millis(50));
    assert_eq!(cache.stats().soft_timeouts, 1);
    // meanwhile the copy is served: the slow source is not called again
    let c = calls.clone();
    let v = cache
        .get_or_load_with("k", ttl(60), policy, move || async move {
            c.add();
            Ok::<_, Io>(Loaded::value(3u32))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(1));
    assert_eq!(calls.get(), 1);
    settle(|| cache.stats().background_loads == 1).await;
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(2));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn without_a_stale_copy_the_soft_timeout_does_not_apply() {
    let (cache, _flaky, _clock) = fail_safe_cache(ErrorKind::Unavailable);
    let policy = ReadThrough::new().soft_timeout(Duration::from_millis(50));
    let started = tokio::time::Instant::now();
    let v = cache
        .get_or_load_with("new", ttl(60), policy, || async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok::<_, Io>(Loaded::value(4u32))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(4));
    assert_eq!(started.elapsed(), Duration::from_millis(500));
    assert_eq!(cache.stats().soft_timeouts, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_loader_is_served_the_stale_copy_with_fail_safe() {
    let (cache, _flaky, clock) = fail_safe_cache(ErrorKind::Unavailable);
    cache.set("k", &1u32, ttl(1)).await.unwrap();
    clock.advance(Duration::from_secs(2));
    let v = cache
        .get_or_load("k", ttl(60), || async {
            Err::<Loaded<u32>, _>(Io::other("source down"))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(1));
    let s = cache.stats();
    assert_eq!((s.loader_errors, s.loader_fail_safe_hits), (1, 1));
    // without a copy the loader's error comes back, typed
    let e = cache
        .get_or_load("none", ttl(60), || async {
            Err::<Loaded<u32>, _>(Io::other("source down"))
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Loader);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_background_load_that_panics_or_hangs_is_counted_and_stores_nothing() {
    let (cache, _) = clocked_with(|b| b.background_loads(8, Duration::from_secs(1)));
    let policy = ReadThrough::new().hard_timeout(Duration::from_millis(10));
    let e = cache
        .get_or_load_with("panics", ttl(60), policy, || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if true {
                panic!("loader bug");
            }
            Ok::<_, Io>(Loaded::value(1u32))
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    let e = cache
        .get_or_load_with("hangs", ttl(60), policy, || async {
            futures::future::pending::<()>().await;
            Ok::<_, Io>(Loaded::value(1u32))
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    settle(|| cache.stats().background_load_failures == 2).await;
    assert_eq!(cache.stats().background_loads, 0);
    assert_eq!(cache.get::<u32>("panics").await.unwrap(), None);
    // both ended: the next caller loads again, and is not made to wait for them
    let v = cache
        .get_or_load_with("hangs", ttl(60), policy, || async {
            Ok::<_, Io>(Loaded::value(9u32))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(9));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn background_loads_past_the_bound_are_dropped_and_counted() {
    let (cache, _) = clocked_with(|b| b.background_loads(1, Duration::from_secs(1)));
    let policy = ReadThrough::new().hard_timeout(Duration::from_millis(10));
    for key in ["a", "b"] {
        let e = cache
            .get_or_load_with(key, ttl(60), policy, || async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, Io>(Loaded::value(1u32))
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
    }
    assert_eq!(cache.stats().background_loads_dropped, 1);
    settle(|| cache.stats().background_loads == 1).await;
    assert_eq!(cache.get::<u32>("a").await.unwrap(), Some(1));
    assert_eq!(cache.get::<u32>("b").await.unwrap(), None);
}

/// A soft timeout whose load the background bound dropped still serves the copy to later
/// callers for the fail-safe throttle: they neither wait out the soft timeout in turn nor
/// call the overloaded source again.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_dropped_background_load_throttles_the_stale_copy() {
    let (cache, _flaky, clock) = fail_safe_cache(ErrorKind::Unavailable);
    let policy = ReadThrough::new().soft_timeout(Duration::from_millis(50));
    cache.set("b", &1u32, ttl(1)).await.unwrap();
    let calls = Calls::default();
    let slow = |c: Calls| {
        move || async move {
            c.add();
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, Io>(Loaded::value(2u32))
        }
    };
    // fill the background bound with slow loads of other keys, then let "b"'s be dropped
    let limit = crate::DEFAULT_MAX_BACKGROUND_LOADS;
    for i in 0..limit {
        let key = format!("fill{i}");
        cache.set(&key, &0u32, ttl(1)).await.unwrap();
    }
    clock.advance(Duration::from_secs(2));
    for i in 0..limit {
        let key = format!("fill{i}");
        let v = cache
            .get_or_load_with(&key, ttl(60), policy, slow(Calls::default()))
            .await
            .unwrap();
        assert_eq!(v, Some(0));
    }
    assert_eq!(cache.stats().background_loads_dropped, 0);
    let t = tokio::time::Instant::now();
    let v = cache
        .get_or_load_with("b", ttl(60), policy, slow(calls.clone()))
        .await
        .unwrap();
    assert_eq!(v, Some(1));
    assert_eq!(t.elapsed(), Duration::from_millis(50));
    assert_eq!(cache.stats().background_loads_dropped, 1);
    // the next callers get the copy at once, without the source
    let t = tokio::time::Instant::now();
    for _ in 0..10 {
        let v = cache
            .get_or_load_with("b", ttl(60), policy, slow(calls.clone()))
            .await
            .unwrap();
        assert_eq!(v, Some(1));
    }
    assert_eq!(t.elapsed(), Duration::ZERO);
    assert_eq!(calls.get(), 1);
    assert_eq!(cache.stats().soft_timeouts, 1 + limit as u64);
    // past the throttle (30 s by default) the source is asked again
    clock.advance(crate::DEFAULT_FAIL_SAFE_THROTTLE + Duration::from_secs(1));
    let v = cache
        .get_or_load_with("b", ttl(60), policy, move || async {
            Ok::<_, Io>(Loaded::value(3u32))
        })
        .await
        .unwrap();
    assert_eq!(v, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_make_one_loader_call() {
    let (cache, _) = clocked();
    let calls = Calls::default();
    let tasks: Vec<_> = (0..1_000)
        .map(|_| {
            let cache = cache.clone();
            let c = calls.clone();
            tokio::spawn(async move {
                cache
                    .get_or_load("hot", ttl(60), move || async move {
                        c.add();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, Io>(Loaded::value(42u64))
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Some(42));
    }
    assert_eq!(calls.get(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn an_invalid_policy_is_a_typed_error() {
    let (cache, _) = clocked();
    for policy in [
        ReadThrough::new().eager_refresh(1.0),
        ReadThrough::new().eager_refresh(f32::NAN),
        ReadThrough::new().soft_timeout(Duration::ZERO),
    ] {
        let e = cache
            .get_or_load_with("k", ttl(60), policy, || async {
                Ok::<_, Io>(Loaded::value(1u8))
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn jitter_spreads_relative_deadlines_only() {
    let (cache, clock) = clocked();
    let start = crate::raw::Clock::now_ms(&clock);
    let o = ttl(10).jitter(Duration::from_secs(5));
    let mut deadlines = std::collections::BTreeSet::new();
    for i in 0..200 {
        let k = format!("k{i}");
        cache.set(&k, &1u8, o).await.unwrap();
        let raw = cache
            .backend()
            .get(&cache.storage_key(&k).unwrap())
            .await
            .unwrap()
            .unwrap();
        let (deadline, _) = crate::envelope::peek_expiry(&raw).unwrap();
        assert!(
            (start + 10_000..=start + 15_000).contains(&deadline),
            "{deadline}"
        );
        deadlines.insert(deadline);
    }
    assert!(
        deadlines.len() > 100,
        "only {} distinct deadlines",
        deadlines.len()
    );
    // an instant is never moved, and a zero jitter turns a default off
    let at = std::time::UNIX_EPOCH + Duration::from_millis(start + 60_000);
    cache
        .set(
            "at",
            &1u8,
            EntryOptions::new()
                .absolute_expiration_at(at)
                .jitter(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    let raw = cache
        .backend()
        .get(&cache.storage_key("at").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        crate::envelope::peek_expiry(&raw).unwrap().0,
        start + 60_000
    );
    let (cache, clock) = clocked_with(|b| {
        b.default_entry_options(EntryOptions::new().jitter(Duration::from_secs(5)))
    });
    let start = crate::raw::Clock::now_ms(&clock);
    cache
        .set("z", &1u8, ttl(10).jitter(Duration::ZERO))
        .await
        .unwrap();
    let raw = cache
        .backend()
        .get(&cache.storage_key("z").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        crate::envelope::peek_expiry(&raw).unwrap().0,
        start + 10_000
    );
}
