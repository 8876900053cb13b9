//! Two tiers across nodes on real Redis: every "node" is a `MemStache` with its own
//! `RedisBackend` (own connections, own backplane subscription) and its own L1, against
//! `redis-server` processes the harness starts — standalone, Sentinel and the 6-process
//! Cluster, on both clients.
//!
//! What is checked: nodes see each other's sets, removes and tenant clears through the
//! backplane (their L1 copies are dropped, counted in `invalidations`); after a Redis restart,
//! a killed subscriber connection or a failover, no node serves a value another node replaced
//! while it was disconnected.
//!
//! Waiting for a message to arrive is polling (there is no event to await from outside a
//! node): `until` retries every 2 ms, bounded. No sleep stands in for an event the test could
//! await.

use std::future::Future;
use std::time::{Duration, Instant};

use memstache::tenancy::TenantManager;
use memstache::{EntryOptions, MemStache, ReadOptions};
use memstache_harness::redis::{RedisCluster, RedisSentinelSet, RedisServer};

mod common;
use common::{CLIENTS, until, with_client};

/// A node: its own backend connection(s), backplane subscription and L1.
async fn node(url: &str, namespace: &str) -> MemStache {
    common::node(url, namespace, |b| b).await
}

/// Retries `op` while it fails with a temporary error (a server restarting, a failover).
async fn retry<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = memstache::Result<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match op().await {
            Ok(v) => return v,
            Err(e) => {
                assert!(e.is_temporary(), "{what}: {e:?}");
                assert!(Instant::now() < deadline, "{what} still failing: {e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The cross-node scenario every topology runs: sets, removes, batches and tenant clears on A
/// drop B's copies.
async fn sets_removes_and_clears_reach_the_other_node(url: &str, ns: &str) {
    let (a, b) = (node(url, ns).await, node(url, ns).await);
    let o = EntryOptions::default;

    a.set("k", &1u32, o()).await.unwrap();
    // A's message may arrive after B read: wait for it, or it would drop B's fresh copy
    until(
        "B to hear A's first set",
        Duration::from_secs(10),
        || async { b.stats().backplane_received >= 1 },
    )
    .await;
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(1)); // from Redis, kept
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(1)); // from L1
    assert_eq!(b.stats().l1_hits, 1);

    a.set("k", &2u32, o()).await.unwrap();
    until(
        "B to drop its copy after A's set",
        Duration::from_secs(10),
        || async { b.stats().invalidations >= 1 },
    )
    .await;
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(2));
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(2));

    assert!(a.remove("k").await.unwrap());
    until(
        "B to drop its copy after A's remove",
        Duration::from_secs(10),
        || async {
            b.get_with::<u32>("k", ReadOptions::new().skip_distributed(true))
                .await
                .unwrap()
                .is_none()
        },
    )
    .await;
    assert_eq!(b.get::<u32>("k").await.unwrap(), None);

    // batches (on Cluster the keys are spread over slots)
    let keys = ["b1", "b2", "b3", "b4"];
    let ones: Vec<(&str, &u32)> = keys.iter().map(|k| (*k, &1u32)).collect();
    a.set_many(&ones, o()).await.unwrap();
    assert_eq!(b.get_many::<u32, _>(&keys).await.unwrap(), [Some(1); 4]);
    let twos: Vec<(&str, &u32)> = keys.iter().map(|k| (*k, &2u32)).collect();
    a.set_many(&twos, o()).await.unwrap();
    until(
        "B to drop its batch copies",
        Duration::from_secs(10),
        || async { b.get_many::<u32, _>(&keys).await.unwrap() == [Some(2); 4] },
    )
    .await;

    // tenant clear
    let (ta, tb) = (
        TenantManager::new(a.clone()).tenant("acme").unwrap(),
        TenantManager::new(b.clone()).tenant("acme").unwrap(),
    );
    let heard = b.stats().backplane_received;
    ta.set("x", &7u32, o()).await.unwrap();
    // two messages: the tenant's new generation, then the write
    until(
        "B to hear A's tenant write",
        Duration::from_secs(10),
        || async { b.stats().backplane_received >= heard + 2 },
    )
    .await;
    assert_eq!(tb.get::<u32>("x").await.unwrap(), Some(7));
    let hits = b.stats().l1_hits;
    assert_eq!(tb.get::<u32>("x").await.unwrap(), Some(7));
    assert_eq!(b.stats().l1_hits, hits + 1, "tenant reads use L1");
    ta.clear().await.unwrap();
    until(
        "B to drop the cleared tenant's copies",
        Duration::from_secs(10),
        || async { tb.get::<u32>("x").await.unwrap().is_none() },
    )
    .await;

    // nobody heard a forged or foreign message, and A ignored its own
    assert_eq!(b.stats().backplane_rejected, 0);
    assert_eq!(a.stats().backplane_received, 0);
    assert!(a.stats().backplane_sent >= 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_nodes_see_each_others_writes() {
    let server = RedisServer::start();
    for client in CLIENTS {
        sets_removes_and_clears_reach_the_other_node(
            &with_client(&server.url(), client),
            &format!("tiers-{client}"),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_nodes_see_each_others_writes_and_survive_a_failover() {
    for client in CLIENTS {
        let mut set = RedisSentinelSet::start();
        let url = with_client(&set.url(), client);
        sets_removes_and_clears_reach_the_other_node(&url, "tiers").await;

        let (a, b) = (node(&url, "fo").await, node(&url, "fo").await);
        a.set("k", &1u32, EntryOptions::default()).await.unwrap();
        assert_eq!(b.get::<u32>("k").await.unwrap(), Some(1));
        assert_eq!(b.get::<u32>("k").await.unwrap(), Some(1));
        set.master().wait_replicated(Duration::from_secs(10));
        set.master_mut().kill();
        // A writes on the new master as soon as it can
        retry("a write after the failover", || {
            a.set("k", &2u32, EntryOptions::default())
        })
        .await;
        // B lost its subscription with the old master: it must not serve its copy of 1
        let v = retry("a read after the failover", || b.get::<u32>("k")).await;
        assert_eq!(
            v,
            Some(2),
            "{client}: a node served a value replaced during the failover"
        );
        until("B to subscribe again", Duration::from_secs(60), || async {
            b.local_tier_trusted()
        })
        .await;
        assert_eq!(b.get::<u32>("k").await.unwrap(), Some(2));
        assert!(b.stats().backplane_reconnects >= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_nodes_see_each_others_writes_and_survive_a_failover() {
    let mut cluster = RedisCluster::start();
    for client in CLIENTS {
        let url = with_client(&cluster.url(), client);
        sets_removes_and_clears_reach_the_other_node(&url, &format!("tiers-{client}")).await;
    }
    let url = with_client(&cluster.url(), "redis-rs");
    let (a, b) = (node(&url, "fo").await, node(&url, "fo").await);
    a.set("k", &1u32, EntryOptions::default()).await.unwrap();
    assert_eq!(b.get::<u32>("k").await.unwrap(), Some(1));
    let slot = cluster.keyslot("fo:k");
    let old = cluster.master_for_slot(slot).unwrap();
    cluster.nodes()[old].wait_replicated(Duration::from_secs(10));
    cluster.node_mut(old).kill();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.master_for_slot(slot).is_none_or(|m| m == old) {
        assert!(
            Instant::now() < deadline,
            "no replica took over slot {slot}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.wait_ok(Duration::from_secs(60));
    retry("a write after the failover", || {
        a.set("k", &2u32, EntryOptions::default())
    })
    .await;
    until(
        "B to see the write made after the failover",
        Duration::from_secs(30),
        || async { matches!(b.get::<u32>("k").await, Ok(Some(2))) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_never_leaves_a_node_serving_a_replaced_value() {
    for client in CLIENTS {
        let mut server = RedisServer::start();
        let url = with_client(&server.url(), client);
        let (a, b) = (node(&url, "rs").await, node(&url, "rs").await);
        let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
        for k in &keys {
            a.set(k, &1u32, EntryOptions::default()).await.unwrap();
            assert_eq!(b.get::<u32>(k).await.unwrap(), Some(1));
        }
        // load on both nodes while Redis goes away and comes back
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load = {
            let (b, keys, stop) = (b.clone(), keys.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for k in &keys {
                        match b.get::<u32>(k).await {
                            Ok(_) => n += 1,
                            Err(e) => assert!(e.is_temporary(), "{e:?}"),
                        }
                    }
                    tokio::task::yield_now().await;
                }
                n
            })
        };
        server.kill();
        until("B to notice", Duration::from_secs(10), || async {
            !b.local_tier_trusted()
        })
        .await;
        server.restart();
        // after the restart (the data is gone), A writes new values
        for k in &keys {
            retry("a write after the restart", || {
                a.set(k, &2u32, EntryOptions::default())
            })
            .await;
        }
        // no read of B from now on may return the value A replaced
        for k in &keys {
            let v = retry("a read after the restart", || b.get::<u32>(k)).await;
            assert_eq!(
                v,
                Some(2),
                "{client}: B served a value replaced while it was disconnected"
            );
        }
        until("B to subscribe again", Duration::from_secs(30), || async {
            b.local_tier_trusted()
        })
        .await;
        for k in &keys {
            assert_eq!(b.get::<u32>(k).await.unwrap(), Some(2));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(load.await.unwrap() > 0);
        assert!(b.stats().backplane_reconnects >= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_subscription_is_detected_and_clears_the_tier() {
    let server = RedisServer::start();
    for client in CLIENTS {
        let url = with_client(&server.url(), client);
        let (a, b) = (node(&url, "pk").await, node(&url, "pk").await);
        a.set("k", &1u32, EntryOptions::default()).await.unwrap();
        assert_eq!(b.get::<u32>("k").await.unwrap(), Some(1));
        let reconnects = b.stats().backplane_reconnects;
        // Redis stays up; only the subscriber connections die: A's next message reaches
        // nobody, and B must not keep serving 1 after it subscribed again
        server.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]);
        a.set("k", &2u32, EntryOptions::default()).await.unwrap();
        until("B to subscribe again", Duration::from_secs(30), || async {
            b.stats().backplane_reconnects > reconnects && b.local_tier_trusted()
        })
        .await;
        assert_eq!(b.get::<u32>("k").await.unwrap(), Some(2));
    }
}
