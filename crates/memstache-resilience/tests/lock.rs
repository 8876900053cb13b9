//! Distributed stampede protection on a real Redis: several `MemStache` instances (each with
//! its own connections and in-process single-flight) missing the same key.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use memstache_core::raw::{Backend, Clock, Expiry};
use memstache_core::{EntryOptions, LockOptions, MemStache};
use memstache_harness::redis::RedisServer;
use memstache_redis::{RedisBackend, RedisClient, RedisConfig};

async fn backend(server: &RedisServer, client: RedisClient) -> RedisBackend {
    let mut config = RedisConfig::from_url(&server.url()).unwrap();
    config.client = client;
    RedisBackend::from_config(config).await.unwrap()
}

/// `set_if_absent` is `SET NX PX` and `remove_if_equals` a compare-and-delete, on both clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_lock_primitives_on_both_clients() {
    let server = RedisServer::start();
    for client in [RedisClient::RedisRs, RedisClient::Fred] {
        let b = backend(&server, client).await;
        let key = format!("lockprim:{client:?}");
        let lease = Expiry::new(
            Some(memstache_core::raw::SystemClock.now_ms() + 60_000),
            None,
        );
        assert!(
            b.set_if_absent(&key, Bytes::from_static(b"t1"), lease)
                .await
                .unwrap()
        );
        assert!(
            !b.set_if_absent(&key, Bytes::from_static(b"t2"), lease)
                .await
                .unwrap()
        );
        let pttl = server.cmd(&["PTTL", &key]).as_int().unwrap_or(-1);
        assert!(pttl > 0 && pttl <= 60_000, "lease not set: {pttl}");
        assert!(!b.remove_if_equals(&key, b"t2").await.unwrap());
        assert_eq!(server.cmd(&["GET", &key]).as_text().as_deref(), Some("t1"));
        assert!(b.remove_if_equals(&key, b"t1").await.unwrap());
        assert!(!b.exists(&key).await.unwrap());
        assert!(!b.remove_if_equals(&key, b"t1").await.unwrap());
    }
}

/// 4 instances × 8 tasks miss the same key; the loader is slow. It runs about once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_missing_the_same_key_load_about_once() {
    let server = RedisServer::start();
    let loads = Arc::new(AtomicU64::new(0));
    let mut caches = Vec::new();
    for i in 0..4 {
        let client = if i % 2 == 0 {
            RedisClient::RedisRs
        } else {
            RedisClient::Fred
        };
        caches.push(
            MemStache::builder()
                .namespace("stampede")
                .backend(backend(&server, client).await)
                .distributed_lock(
                    LockOptions::new()
                        .lease(Duration::from_secs(10))
                        .wait(Duration::from_secs(8))
                        .poll(Duration::from_millis(10)),
                )
                .build()
                .unwrap(),
        );
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let mut tasks = Vec::new();
    for c in &caches {
        for _ in 0..8 {
            let (c, loads, barrier) = (c.clone(), Arc::clone(&loads), Arc::clone(&barrier));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                c.get_or_set("hot", EntryOptions::default(), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, std::io::Error>("loaded".to_owned())
                })
                .await
                .unwrap()
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "loaded");
    }
    let n = loads.load(Ordering::SeqCst);
    eprintln!("loader ran {n} time(s) for 4 instances x 8 tasks");
    assert!((1..=2).contains(&n), "loader ran {n} times");
    // released: no lock key left behind
    let sk = caches[0].storage_key("hot").unwrap();
    let lock_key = format!("stampede!lock:{sk}");
    assert_eq!(server.cmd(&["EXISTS", &lock_key]).as_int(), Some(0));
}

/// The lock holder died (took the lock, never released it): others load after the bounded
/// wait, not after the lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lock_holder_delays_loading_by_the_wait_only() {
    let server = RedisServer::start();
    let wait = Duration::from_millis(700);
    let cache = MemStache::builder()
        .namespace("deadholder")
        .backend(backend(&server, RedisClient::RedisRs).await)
        .distributed_lock(
            LockOptions::new()
                .wait(wait)
                .poll(Duration::from_millis(20)),
        )
        .build()
        .unwrap();
    let sk = cache.storage_key("k").unwrap();
    let lock_key = format!("deadholder!lock:{sk}");
    // a holder that took the lock with a 60 s lease and then died
    let reply = server.cmd(&["SET", &lock_key, "dead-token", "NX", "PX", "60000"]);
    assert_eq!(reply.as_text().as_deref(), Some("OK"));

    let loads = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (cache, loads) = (cache.clone(), Arc::clone(&loads));
        tasks.push(tokio::spawn(async move {
            cache
                .get_or_set("k", EntryOptions::default(), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(5u32)
                })
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 5);
    }
    let took = started.elapsed();
    // in-process single-flight: one load for the 4 tasks of this instance
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // it waited for the holder (semantics, not speed), and did not wait for the lease
    assert!(took >= wait, "loaded before the wait ended: {took:?}");
    assert!(
        took < Duration::from_secs(30),
        "waited for the lease: {took:?}"
    );
    // the dead holder's lock is untouched (only its token may release it)
    assert_eq!(
        server.cmd(&["GET", &lock_key]).as_text().as_deref(),
        Some("dead-token")
    );
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(5));
}
