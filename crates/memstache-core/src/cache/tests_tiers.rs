//! Two tiers in one process: nodes are caches over one shared memory store (the "distributed"
//! tier, behind a [`Flaky`] wrapper that counts calls and fails on demand) with their own L1,
//! connected by a [`MemoryBackplane`]. The same scenarios run against real Redis in
//! `tests/tests/tiers.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::test_support::Flaky;
use crate::memory::MemoryBackend;
use crate::raw::{Backplane, ManualClock, MemoryBackplane};
use crate::scope::Scope;
use crate::tiers::LocalTier;
use crate::{EntryOptions, ErrorKind, FailSafe, MemStache, ReadOptions};

struct Cluster {
    clock: ManualClock,
    store: Flaky,
    plane: MemoryBackplane,
}

impl Cluster {
    fn new() -> Self {
        let clock = ManualClock::starting_now();
        let shared = MemoryBackend::builder()
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        Cluster {
            store: Flaky::new(shared, ErrorKind::Unavailable),
            plane: MemoryBackplane::new(),
            clock,
        }
    }

    fn node(&self) -> MemStache {
        self.node_with(LocalTier::new().max_duration(Duration::from_secs(60)), None)
    }

    fn node_with(&self, tier: LocalTier, fail_safe: Option<FailSafe>) -> MemStache {
        let mut b = MemStache::builder()
            .backend(self.store.clone())
            .clock(Arc::new(self.clock.clone()))
            .local_tier(
                tier.store(
                    MemoryBackend::builder()
                        .max_entries(1_000)
                        .clock(Arc::new(self.clock.clone()))
                        .build()
                        .unwrap(),
                ),
            )
            .backplane(self.plane.clone());
        if let Some(f) = fail_safe {
            b = b.fail_safe(f);
        }
        b.build().unwrap()
    }

    fn backend_calls(&self) -> u64 {
        self.store.calls.load(Ordering::SeqCst)
    }
}

fn opts() -> EntryOptions {
    EntryOptions::default()
}

#[tokio::test(flavor = "current_thread")]
async fn a_hit_is_served_from_l1_without_the_backend() {
    let c = Cluster::new();
    let a = c.node();
    a.local_tier_ready().await;
    assert!(a.local_tier_trusted());
    a.set("k", &"v".to_owned(), opts()).await.unwrap();
    let calls = c.backend_calls();
    for _ in 0..5 {
        assert_eq!(a.get::<String>("k").await.unwrap().as_deref(), Some("v"));
    }
    assert_eq!(
        c.backend_calls(),
        calls,
        "L1 hits must not call the backend"
    );
    let s = a.stats();
    assert_eq!((s.l1_hits, s.l2_hits, s.hits), (5, 0, 5));
}

#[tokio::test(flavor = "current_thread")]
async fn another_nodes_set_and_remove_drop_the_copy() {
    let c = Cluster::new();
    let (a, b) = (c.node(), c.node());
    a.set("k", &1u32, opts()).await.unwrap();
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(1)); // L2, kept
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(1)); // L1
    assert_eq!(b.stats().l1_hits, 1);

    a.set("k", &2u32, opts()).await.unwrap();
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(2));
    assert!(b.stats().invalidations >= 1);
    assert!(b.stats().backplane_received >= 1);
    assert_eq!(
        a.stats().backplane_received,
        0,
        "a node ignores its own messages"
    );

    assert!(a.remove("k").await.unwrap());
    assert_eq!(b.get::<u32>("k").await.unwrap(), None);

    // batches too
    a.set_many(&[("x", &1u32), ("y", &1u32)], opts())
        .await
        .unwrap();
    assert_eq!(
        b.get_many::<u32, _>(&["x", "y"]).await.unwrap(),
        [Some(1), Some(1)]
    );
    a.set_many(&[("x", &2u32), ("y", &2u32)], opts())
        .await
        .unwrap();
    assert_eq!(
        b.get_many::<u32, _>(&["x", "y"]).await.unwrap(),
        [Some(2), Some(2)]
    );
    a.remove_many(&["x", "y"]).await.unwrap();
    assert_eq!(
        b.get_many::<u32, _>(&["x", "y"]).await.unwrap(),
        [None, None]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_lost_backplane_stops_fresh_serving_and_reconnecting_clears() {
    let c = Cluster::new();
    let (a, b) = (c.node(), c.node());
    a.set("k", &1u32, opts()).await.unwrap();
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(1));
    c.plane.disconnect();
    assert!(!b.local_tier_trusted());
    // a's write cannot reach b: b must read the backend, not its copy
    a.set("k", &2u32, opts()).await.unwrap();
    assert!(a.stats().backplane_publish_errors >= 1);
    let before = b.stats().l2_hits;
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(2));
    assert_eq!(b.stats().l2_hits, before + 1);
    c.plane.reconnect();
    assert!(b.local_tier_trusted());
    assert_eq!(b.local_tier_len(), 0, "reconnecting clears the tier");
    assert_eq!(b.stats().backplane_reconnects, 1);
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(2));
}

#[tokio::test(flavor = "current_thread")]
async fn forged_messages_are_dropped_and_counted() {
    let c = Cluster::new();
    let b = c.node();
    c.store.set_down(false);
    b.set("k", &1u32, opts()).await.unwrap();
    let ch = super::backplane::channel("ms");
    let other = super::backplane::encode(super::backplane::Kind::Keys, &[9; 16], &["other:k"])
        .unwrap()
        .remove(0);
    let mut future = super::backplane::encode(super::backplane::Kind::Keys, &[9; 16], &["ms:k"])
        .unwrap()
        .remove(0)
        .to_vec();
    future[4] = 99;
    for bad in [
        &b"garbage"[..],
        &[0u8; 0][..],
        &other[..],
        &future[..],
        &vec![0x4d; crate::raw::MAX_BACKPLANE_MESSAGE + 10][..],
    ] {
        c.plane.inject(&ch, bad);
    }
    assert_eq!(b.stats().backplane_rejected, 5);
    assert_eq!(b.stats().invalidations, 0);
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(1));
    assert_eq!(b.stats().l1_hits, 1, "no forged message dropped the copy");
    // another namespace's channel is not ours
    let n2 = MemStache::builder()
        .namespace("other")
        .backend(c.store.clone())
        .local_tier(LocalTier::new())
        .backplane(c.plane.clone())
        .build()
        .unwrap();
    n2.set("k", &5u32, opts()).await.unwrap();
    assert_eq!(b.stats().backplane_received, 0);
    assert_eq!(b.stats().backplane_rejected, 5);
}

#[tokio::test(flavor = "current_thread")]
async fn a_copy_is_never_served_as_another_type() {
    let c = Cluster::new();
    let a = c.node();
    a.set("k", &7u32, opts()).await.unwrap();
    let hits = a.stats().l1_hits;
    // reading as another type never takes the u32 copy; it goes to the backend and decodes
    // (or fails) there, exactly as without L1
    let other = a.get::<String>("k").await;
    assert!(!matches!(other, Ok(Some(_))), "{other:?}");
    assert_eq!(a.stats().l1_hits, hits);
    assert_eq!(a.get::<u32>("k").await.unwrap(), Some(7));
}

#[tokio::test(flavor = "current_thread")]
async fn l1_lifetime_is_capped_and_sliding_entries_are_not_served_from_l1() {
    let c = Cluster::new();
    let a = c.node_with(LocalTier::new().max_duration(Duration::from_secs(5)), None);
    a.set("k", &1u32, opts()).await.unwrap();
    assert_eq!(a.get::<u32>("k").await.unwrap(), Some(1));
    assert_eq!(a.stats().l1_hits, 1);
    c.clock.advance(Duration::from_secs(6));
    assert_eq!(a.get::<u32>("k").await.unwrap(), Some(1));
    assert_eq!(a.stats().l1_hits, 1, "past the cap, the backend answers");
    assert_eq!(a.stats().l2_hits, 1);

    // an entry's own shorter lifetime wins
    a.set(
        "short",
        &1u32,
        EntryOptions::new().absolute_expiration(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    c.clock.advance(Duration::from_secs(3));
    assert_eq!(a.get::<u32>("short").await.unwrap(), None);

    let s = EntryOptions::new().sliding_expiration(Duration::from_secs(60));
    a.set("slide", &1u32, s).await.unwrap();
    let l1 = a.stats().l1_hits;
    assert_eq!(a.get::<u32>("slide").await.unwrap(), Some(1));
    assert_eq!(
        a.stats().l1_hits,
        l1,
        "a sliding read must reach the backend"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn fail_safe_serves_from_l1_and_failed_writes_are_not_served() {
    let c = Cluster::new();
    let a = c.node_with(
        LocalTier::new(),
        Some(FailSafe::new(Duration::from_secs(600))),
    );
    a.set("k", &1u32, opts()).await.unwrap();
    c.clock.advance(Duration::from_secs(120)); // past the L1 duration: not fresh
    c.store.set_down(true);
    assert_eq!(a.get::<u32>("k").await.unwrap(), Some(1));
    assert_eq!(a.stats().fail_safe_hits, 1);
    // a write that failed is not kept, and the old copy is dropped
    assert!(a.set("k", &2u32, opts()).await.is_err());
    assert_eq!(
        a.get::<u32>("k").await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    c.store.set_down(false);
    assert_eq!(a.get::<u32>("k").await.unwrap(), Some(1));
}

#[tokio::test(flavor = "current_thread")]
async fn a_failing_loader_gets_the_stale_value_and_is_throttled() {
    let c = Cluster::new();
    let a = c.node_with(
        LocalTier::new(),
        Some(FailSafe::new(Duration::from_secs(3600)).loader_throttle(Duration::from_secs(10))),
    );
    let ttl = EntryOptions::new().absolute_expiration(Duration::from_secs(30));
    let v: u32 = a
        .get_or_set("k", ttl, || async { Ok::<_, std::io::Error>(1) })
        .await
        .unwrap();
    assert_eq!(v, 1);
    c.clock.advance(Duration::from_secs(31)); // expired everywhere
    let calls = std::sync::atomic::AtomicU32::new(0);
    let failing = || async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<u32, _>(std::io::Error::other("source down"))
    };
    assert_eq!(a.get_or_set("k", ttl, failing).await.unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(a.stats().loader_fail_safe_hits, 1);
    // within the throttle, the loader is not called again
    assert_eq!(a.get_or_set("k", ttl, failing).await.unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // after it, it is
    c.clock.advance(Duration::from_secs(11));
    assert_eq!(a.get_or_set("k", ttl, failing).await.unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // without fail-safe copy (a key never loaded), the loader's error comes back
    let e = a.get_or_set("new", ttl, failing).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Loader);
}

#[tokio::test(flavor = "current_thread")]
async fn per_call_flags_skip_each_tier() {
    let c = Cluster::new();
    let (a, b) = (c.node(), c.node());
    a.set("k", &1u32, opts()).await.unwrap();
    let r = a
        .get_with::<u32>("k", ReadOptions::new().skip_local_read(true))
        .await
        .unwrap();
    assert_eq!((r, a.stats().l2_hits), (Some(1), 1));
    // skip_distributed: a miss on a node that has no copy
    assert_eq!(
        b.get_with::<u32>("k", ReadOptions::new().skip_distributed(true))
            .await
            .unwrap(),
        None
    );
    // skip_local: neither served nor kept
    b.get_with::<u32>("k", ReadOptions::new().skip_local(true))
        .await
        .unwrap();
    assert_eq!(b.local_tier_len(), 0);
    // a local-only write: the backend does not have it, other nodes' copies are dropped
    b.get::<u32>("k").await.unwrap();
    a.set("k", &9u32, EntryOptions::new().skip_distributed_write(true))
        .await
        .unwrap();
    assert_eq!(a.get::<u32>("k").await.unwrap(), Some(9));
    assert_eq!(
        b.get::<u32>("k").await.unwrap(),
        Some(1),
        "b reads the backend"
    );
    // a write that keeps no local copy
    a.set("k", &3u32, EntryOptions::new().skip_local_write(true))
        .await
        .unwrap();
    let hits = a.stats().l1_hits;
    assert_eq!(a.get::<u32>("k").await.unwrap(), Some(3));
    assert_eq!(a.stats().l1_hits, hits);
}

#[tokio::test(flavor = "current_thread")]
async fn a_cache_with_only_a_local_tier_works() {
    let cache = MemStache::builder()
        .local_tier(LocalTier::new().max_entries(100))
        .build()
        .unwrap();
    cache.set("k", &1u32, opts()).await.unwrap();
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(1));
    assert!(cache.remove("k").await.unwrap());
    assert_eq!(cache.get::<u32>("k").await.unwrap(), None);
    assert_eq!(cache.stats().l1_hits, 1);
    // a backplane without anything to keep coherent is a configuration error
    let e = MemStache::builder()
        .backplane(MemoryBackplane::new())
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
}

#[tokio::test(flavor = "current_thread")]
async fn a_guard_change_drops_the_scopes_copies_on_every_node() {
    let c = Cluster::new();
    let (a, b) = (c.node(), c.node());
    a.control_set("ms#g", Bytes::from_static(b"1"), Default::default())
        .await
        .unwrap();
    let s1 = Scope::new("ms#1:", "default").guarded("ms#g", b"1");
    a.set_in(&s1, "k", &1u32, opts()).await.unwrap();
    assert_eq!(
        b.get_in::<u32>(&s1, "k")
            .await
            .unwrap()
            .into_done()
            .unwrap(),
        Some(1)
    );
    assert_eq!(
        b.get_in::<u32>(&s1, "k")
            .await
            .unwrap()
            .into_done()
            .unwrap(),
        Some(1)
    );
    assert_eq!(b.stats().l1_hits, 1, "guarded scopes use L1 too");
    // a clears: new guard value, then tells everyone
    a.control_set("ms#g", Bytes::from_static(b"2"), Default::default())
        .await
        .unwrap();
    a.scope_guard_changed("ms#g").await;
    // b's handle still believes in generation 1: it must not be served the old copy
    assert!(matches!(
        b.get_in::<u32>(&s1, "k").await.unwrap(),
        crate::scope::Outcome::Stale(_)
    ));
    assert_eq!(b.stats().l1_hits, 1);
}

#[tokio::test(flavor = "current_thread")]
async fn a_read_racing_an_invalidation_keeps_nothing() {
    let c = Cluster::new();
    let (a, b) = (c.node(), c.node());
    a.set("k", &1u32, opts()).await.unwrap();
    // b reads the old value from the backend, and is held before answering
    let held = c.store.hold_next_get();
    let b2 = b.clone();
    let read = tokio::spawn(async move { b2.get::<u32>("k").await });
    held.reached().await;
    // meanwhile a replaces it, and b hears of it
    a.set("k", &2u32, opts()).await.unwrap();
    held.release();
    assert_eq!(read.await.unwrap().unwrap(), Some(1));
    // the old value was not kept: the next read gets the new one
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(2));
}

#[tokio::test(flavor = "current_thread")]
async fn publish_failures_are_counted_and_the_write_stands() {
    let c = Cluster::new();
    let a = c.node();
    c.plane.fail_publish(true);
    a.set("k", &1u32, opts()).await.unwrap();
    assert_eq!(a.stats().backplane_publish_errors, 1);
    c.plane.fail_publish(false);
    a.set("k", &2u32, opts()).await.unwrap();
    assert_eq!(a.stats().backplane_sent, 1);
    let _ = c.plane.publish("x", Bytes::new()).await;
}

#[tokio::test(flavor = "current_thread")]
async fn get_arc_shares_one_decoded_value_per_copy_and_never_a_replaced_one() {
    let c = Cluster::new();
    let (a, b) = (c.node(), c.node());
    a.set("k", &vec![1u8; 64], opts()).await.unwrap();
    // first call on b: from the backend; then decoded once and shared
    let first = b.get_arc::<Vec<u8>>("k").await.unwrap().unwrap();
    let x = b.get_arc::<Vec<u8>>("k").await.unwrap().unwrap();
    let y = b.get_arc::<Vec<u8>>("k").await.unwrap().unwrap();
    assert_eq!(*first, vec![1u8; 64]);
    assert!(Arc::ptr_eq(&x, &y), "one decoded value per copy");
    assert_eq!(b.stats().l1_hits, 2);
    // another node replaces it: the shared value of the old copy is never handed out again
    a.set("k", &vec![2u8; 64], opts()).await.unwrap();
    let z = b.get_arc::<Vec<u8>>("k").await.unwrap().unwrap();
    assert_eq!(*z, vec![2u8; 64]);
    // this node's own write replaces it too
    b.set("k", &vec![3u8; 64], opts()).await.unwrap();
    assert_eq!(
        *b.get_arc::<Vec<u8>>("k").await.unwrap().unwrap(),
        vec![3u8; 64]
    );
    // a removal: nothing
    a.remove("k").await.unwrap();
    assert!(b.get_arc::<Vec<u8>>("k").await.unwrap().is_none());
    // a copy kept as one type is not shared as another
    b.set("n", &7u32, opts()).await.unwrap();
    let _ = b.get_arc::<u32>("n").await.unwrap();
    let hits = b.stats().l1_hits;
    let other = b.get_arc::<u64>("n").await;
    assert!(!matches!(other, Ok(Some(ref v)) if **v == 7 && b.stats().l1_hits > hits));
    assert_eq!(*b.get_arc::<u32>("n").await.unwrap().unwrap(), 7);
    // clearing the tier drops the decoded values with the copies
    let before = b.get_arc::<u32>("n").await.unwrap().unwrap();
    b.clear_local_tier();
    let after = b.get_arc::<u32>("n").await.unwrap().unwrap();
    assert!(!Arc::ptr_eq(&before, &after));
    // without a local tier it is `get` in an Arc
    let plain = MemStache::builder().build().unwrap();
    plain.set("k", &5u8, opts()).await.unwrap();
    assert_eq!(*plain.get_arc::<u8>("k").await.unwrap().unwrap(), 5);
}

#[tokio::test(flavor = "current_thread")]
async fn decoded_values_are_bounded() {
    let c = Cluster::new();
    let a = c.node_with(LocalTier::new().max_decoded(1), None);
    for i in 0..50u32 {
        a.set(&format!("k{i}"), &i, opts()).await.unwrap();
        assert_eq!(
            *a.get_arc::<u32>(&format!("k{i}")).await.unwrap().unwrap(),
            i
        );
    }
    // every value is still right, whether its decoded value was kept or not
    for i in 0..50u32 {
        assert_eq!(
            *a.get_arc::<u32>(&format!("k{i}")).await.unwrap().unwrap(),
            i
        );
    }
    let l1 = a.l1().unwrap();
    assert!(
        l1.objects_len() <= super::local::STRIPES,
        "{}",
        l1.objects_len()
    );
}

/// A write or read in flight across a clear, a reconnect or a guard change keeps nothing (it
/// may have missed what they stand for): the epoch rules of `cache/local.rs`.
#[tokio::test(flavor = "current_thread")]
async fn keeps_in_flight_across_a_clear_reconnect_or_guard_change_keep_nothing() {
    let c = Cluster::new();
    let a = c.node();
    let l1 = a.l1().unwrap();
    let meta = super::local::Meta::for_tests::<u32>();
    let fp = meta.fingerprint;
    let now = crate::raw::Clock::now_ms(&c.clock);
    let plain = postcard_u32(5);
    // a write whose call spans a reconnect (it may have missed another node's newer write)
    let w = l1.write_ticket("ms:w");
    c.plane.disconnect();
    c.plane.reconnect();
    w.done("ms:w", Some((&plain, meta)), now);
    assert!(l1.lookup("ms:w", fp, now).is_none());
    // a write whose call spans clear_local_tier (after a key was destroyed, say)
    let w = l1.write_ticket("ms:w");
    a.clear_local_tier();
    w.done("ms:w", Some((&plain, meta)), now);
    assert!(l1.lookup("ms:w", fp, now).is_none());
    // a read whose call spans a guard change of its scope
    let guarded = super::local::Meta {
        guard_tag: super::local::guard_tag("ms#g"),
        ..meta
    };
    let r = l1.read_ticket("ms#1:k");
    l1.guard_changed(super::local::guard_tag("ms#g"));
    l1.read_done(r, "ms#1:k", &plain, guarded, now);
    assert!(l1.lookup("ms#1:k", fp, now).is_none());
    // and with nothing in between, both keep
    let w = l1.write_ticket("ms:w");
    w.done("ms:w", Some((&plain, meta)), now);
    assert!(l1.lookup("ms:w", fp, now).is_some());
    let r = l1.read_ticket("ms#1:k");
    l1.read_done(r, "ms#1:k", &plain, guarded, now);
    assert!(l1.lookup("ms#1:k", fp, now).is_some());
}

fn postcard_u32(v: u32) -> Vec<u8> {
    let mut out = Vec::new();
    crate::raw::Serializer::serialize(&crate::serializer::Postcard, &v, &mut out)
        .expect("serialize");
    out
}

/// Waiters of a `get_or_set` whose loader fails share the fail-safe copy with the leader: the
/// failing loader runs once, not once per waiter.
#[tokio::test(flavor = "current_thread")]
async fn waiters_share_the_fail_safe_copy_of_a_failing_loader() {
    let c = Cluster::new();
    let a = c.node_with(
        LocalTier::new(),
        Some(FailSafe::new(Duration::from_secs(3600)).loader_throttle(Duration::ZERO)),
    );
    let ttl = EntryOptions::new().absolute_expiration(Duration::from_secs(30));
    a.set("k", &1u32, ttl).await.unwrap();
    c.clock.advance(Duration::from_secs(31));
    let calls = std::sync::atomic::AtomicU32::new(0);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let leader = a.get_or_set("k", ttl, || async {
        calls.fetch_add(1, Ordering::SeqCst);
        let _ = rx.await;
        Err::<u32, _>(std::io::Error::other("source down"))
    });
    let waiter = async {
        tokio::task::yield_now().await; // the leader is in its loader now
        let w = a.get_or_set("k", ttl, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<u32, _>(std::io::Error::other("source down"))
        });
        let release = async {
            tokio::task::yield_now().await;
            let _ = tx.send(());
        };
        tokio::join!(w, release).0
    };
    let (l, w) = tokio::join!(leader, waiter);
    assert_eq!(l.unwrap(), 1);
    assert_eq!(w.unwrap(), 1);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the failing loader ran once"
    );
}
