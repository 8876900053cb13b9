//! Coalescing (`RedisConfig::coalesce`) against real `redis-server` processes, on both clients:
//! concurrent commands really go out in batches, each keeps its own reply and its own error,
//! callers that give up (timeout, cancellation — also of the command in flight that the batch
//! waits behind) never stall the others, and a lost server fails every waiting command with a
//! typed error instead of hanging.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::prefix;
use memstache_core::ErrorKind;
use memstache_core::raw::{Backend, Expiry};
use memstache_harness::redis::RedisServer;
use memstache_redis::{RedisBackend, RedisConfig};

const CLIENTS: [&str; 2] = ["redis-rs", "fred"];

/// An entry-shaped value (the backend only reads the header).
fn envelope(payload: &[u8]) -> Bytes {
    common::envelope(0, 0, payload)
}

async fn backend(server: &RedisServer, client: &str) -> RedisBackend {
    let config = RedisConfig::from_url(&format!(
        "{}?client={client}&coalesce=true&max_batch=16",
        server.url()
    ))
    .unwrap();
    RedisBackend::from_config(config).await.unwrap()
}

/// Blocks the server for `seconds` from another connection, so that commands sent meanwhile
/// pile up behind one in flight.
fn stall(server: &RedisServer, seconds: f64) -> std::thread::JoinHandle<()> {
    let port = server.port();
    let arg = seconds.to_string();
    std::thread::spawn(move || {
        let _ = memstache_harness::redis::command(port, &["DEBUG", "SLEEP", &arg]);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_are_batched_and_keep_their_own_replies_and_errors() {
    let server = RedisServer::start_with_args(&["--enable-debug-command", "yes"]);
    for client in CLIENTS {
        let b = Arc::new(backend(&server, client).await);
        let p = prefix("coalesce");
        let n = 200;
        let values: Vec<Bytes> = (0..n)
            .map(|i| envelope(format!("v{i}").as_bytes()))
            .collect();
        // concurrent writes: every one reported written is there afterwards
        let writes = (0..n).map(|i| {
            let b = b.clone();
            let key = format!("{p}k{i}");
            let v = values[i].clone();
            async move { b.set(&key, v, Expiry::NEVER).await }
        });
        for r in futures::future::join_all(writes).await {
            r.unwrap();
        }
        // a key of another type: its read fails, alone
        let wrong = format!("{p}list");
        server.cmd(&["LPUSH", &wrong, "x"]);
        let stalled = stall(&server, 0.2);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let reads = (0..n + 20).map(|i| {
            let b = b.clone();
            let key = if i == 7 {
                wrong.clone()
            } else {
                format!("{p}k{i}") // i >= n: misses
            };
            async move { (i, b.get(&key).await) }
        });
        for (i, r) in futures::future::join_all(reads).await {
            match i {
                7 => {
                    let e = r.expect_err("a list is not an entry");
                    assert_eq!(e.kind(), ErrorKind::Backend, "{client}: {e}");
                }
                i if i >= n => assert_eq!(r.unwrap(), None, "{client}: key {i} is a miss"),
                i => assert_eq!(r.unwrap().as_ref(), Some(&values[i]), "{client}: key {i}"),
            }
        }
        stalled.join().unwrap();
        let s = b.coalesce_stats();
        assert!(s.batches >= 1, "{client}: {s:?}");
        assert!(
            s.batched > s.batches,
            "{client}: batches of more than one: {s:?}"
        );
        // removes, coalesced too
        let removes = (0..n).map(|i| {
            let b = b.clone();
            let key = format!("{p}k{i}");
            async move { b.remove(&key).await }
        });
        for r in futures::future::join_all(removes).await {
            assert!(r.unwrap(), "{client}: removed");
        }
        assert_eq!(b.get(&format!("{p}k0")).await.unwrap(), None);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_give_up_never_stall_the_others() {
    let server = RedisServer::start_with_args(&["--enable-debug-command", "yes"]);
    for client in CLIENTS {
        let b = Arc::new(backend(&server, client).await);
        let p = prefix("coalesce");
        let v = envelope(b"v");
        b.set(&format!("{p}k"), v.clone(), Expiry::NEVER)
            .await
            .unwrap();
        let stalled = stall(&server, 0.3);
        tokio::time::sleep(Duration::from_millis(50)).await;
        // the first goes out alone and waits on the stalled server; it is cancelled
        let first = {
            let b = b.clone();
            let key = format!("{p}k");
            tokio::spawn(async move { b.get(&key).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // these queue behind it; every other one gives up after 30 ms
        let rest: Vec<_> = (0..40)
            .map(|i| {
                let b = b.clone();
                let key = format!("{p}k");
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        tokio::time::timeout(Duration::from_millis(30), b.get(&key))
                            .await
                            .ok()
                    } else {
                        Some(b.get(&key).await)
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        first.abort();
        let mut answered = 0;
        for (i, h) in rest.into_iter().enumerate() {
            match h.await.unwrap() {
                Some(r) => {
                    assert_eq!(r.unwrap().as_ref(), Some(&v), "{client}: caller {i}");
                    answered += 1;
                }
                None => assert_eq!(i % 2, 0, "{client}: only the impatient time out"),
            }
        }
        assert!(answered >= 20, "{client}: {answered} answered");
        stalled.join().unwrap();
        // and the coalescer is idle again: a lone command goes out directly (once the batch
        // task that answered the last callers has seen the empty queue: it may still be
        // between its last reply and that check, so a few tries, 10 ms apart)
        let mut direct = false;
        for _ in 0..100 {
            let before = b.coalesce_stats().direct;
            assert_eq!(b.get(&format!("{p}k")).await.unwrap().as_ref(), Some(&v));
            if b.coalesce_stats().direct == before + 1 {
                direct = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(direct, "{client}: the coalescer never became idle again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_server_fails_every_waiting_command_with_a_typed_error() {
    for client in CLIENTS {
        let mut server = RedisServer::start_with_args(&["--enable-debug-command", "yes"]);
        let mut config =
            RedisConfig::from_url(&format!("{}?client={client}&coalesce=true", server.url()))
                .unwrap();
        config.command_timeout = Duration::from_secs(2);
        config.reconnect = memstache_redis::ReconnectPolicy::Never;
        let b = Arc::new(RedisBackend::from_config(config).await.unwrap());
        let p = prefix("coalesce");
        let stalled = stall(&server, 0.3);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting: Vec<_> = (0..30)
            .map(|i| {
                let b = b.clone();
                let key = format!("{p}k{i}");
                tokio::spawn(
                    async move { b.set(&key, Bytes::from_static(b"x"), Expiry::NEVER).await },
                )
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.stop();
        let _ = stalled.join();
        let all = tokio::time::timeout(Duration::from_secs(10), futures::future::join_all(waiting))
            .await
            .expect("no command hangs");
        for r in all {
            let e = r.unwrap().expect_err("the server is gone");
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Backend
                ),
                "{client}: {e}"
            );
        }
    }
}
