//! `get_or_load` across two nodes on real Redis: every node is a `MemStache` with its own
//! `RedisBackend`, backplane subscription, L1 and the distributed lock, against a
//! `redis-server` the harness starts, on both clients.
//!
//! What is checked: an eager refresh happens once across both nodes and both see the new
//! value; a node whose loader is slow serves its stale copy at the soft timeout, and the other
//! node, finding the lock taken, does not call the source; 1,000 concurrent
//! callers over two nodes make at most 2 loader calls.
//!
//! Time here is real: entries must age for eager refresh and expire for soft timeouts, so the
//! tests sleep for those ages. Waiting for an effect (a refresh stored, a message heard) is
//! polling, bounded; no assertion is about how long anything took.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use memstache::{EntryOptions, FailSafe, Loaded, LockOptions, MemStache, ReadThrough};
use memstache_harness::redis::RedisServer;

mod common;
use common::{CLIENTS, until, with_client};

type Io = std::io::Error;

/// A node: its own connections, backplane subscription, L1 (with fail-safe copies) and the
/// distributed lock.
async fn node(url: &str, namespace: &str) -> MemStache {
    common::node(url, namespace, |b| {
        b.fail_safe(FailSafe::new(Duration::from_secs(120)))
            .distributed_lock(LockOptions::new())
    })
    .await
}

fn ttl(ms: u64) -> EntryOptions {
    EntryOptions::new().absolute_expiration(Duration::from_millis(ms))
}

/// What [`loader`] returns when called.
type Load = std::pin::Pin<Box<dyn Future<Output = Result<Loaded<u64>, Io>> + Send + 'static>>;

/// A loader returning `value` after `delay`, counted in `calls`.
fn loader(
    calls: &Arc<AtomicU64>,
    delay: Duration,
    value: u64,
) -> impl FnOnce() -> Load + Send + 'static {
    let calls = Arc::clone(calls);
    move || {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            Ok(Loaded::value(value))
        })
    }
}

async fn eager_refresh_happens_once_across_nodes(url: &str, ns: &str) {
    let (a, b) = (node(url, ns).await, node(url, ns).await);
    let policy = ReadThrough::new().eager_refresh(0.5);
    let calls = Arc::new(AtomicU64::new(0));
    let v = a
        .get_or_load_with("k", ttl(3_000), policy, loader(&calls, Duration::ZERO, 1))
        .await
        .unwrap();
    assert_eq!(v, Some(1));
    // b reads it too (its own L1 copy), then the entry ages past half its life
    assert_eq!(b.get::<u64>("k").await.unwrap(), Some(1));
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let refreshes = Arc::new(AtomicU64::new(0));
    let slow = Duration::from_millis(200);
    let (ra, rb) = tokio::join!(
        a.get_or_load_with("k", ttl(3_000), policy, loader(&refreshes, slow, 2)),
        b.get_or_load_with("k", ttl(3_000), policy, loader(&refreshes, slow, 2)),
    );
    // both answered at once with the entry they had
    assert_eq!((ra.unwrap(), rb.unwrap()), (Some(1), Some(1)));
    for n in [&a, &b] {
        until(
            "the refreshed value on both nodes",
            Duration::from_secs(10),
            || async { n.get::<u64>("k").await.unwrap() == Some(2) },
        )
        .await;
    }
    assert_eq!(
        refreshes.load(Ordering::SeqCst),
        1,
        "one refresh across both nodes"
    );
    let s = (a.stats(), b.stats());
    assert_eq!(s.0.eager_refreshes + s.1.eager_refreshes, 1);
}

async fn soft_timeouts_serve_stale_on_both_nodes(url: &str, ns: &str) {
    let (a, b) = (node(url, ns).await, node(url, ns).await);
    let policy = ReadThrough::new()
        .soft_timeout(Duration::from_millis(100))
        .hard_timeout(Duration::from_secs(10));
    let calls = Arc::new(AtomicU64::new(0));
    a.get_or_load_with("k", ttl(300), policy, loader(&calls, Duration::ZERO, 1))
        .await
        .unwrap();
    // b reads only once a's write was announced: a read that lands before the announcement
    // keeps a copy the announcement then drops (b cannot tell which version it was about),
    // and b would have no stale copy below
    until(
        "a's write announced to b",
        Duration::from_secs(10),
        || async { b.stats().backplane_received >= 1 },
    )
    .await;
    assert_eq!(b.get::<u64>("k").await.unwrap(), Some(1));
    tokio::time::sleep(Duration::from_millis(500)).await; // expired; fail-safe copies remain
    let slow = Arc::new(AtomicU64::new(0));
    let ra = a
        .get_or_load_with(
            "k",
            ttl(60_000),
            policy,
            loader(&slow, Duration::from_secs(1), 2),
        )
        .await
        .unwrap();
    assert_eq!(ra, Some(1), "a served its stale copy at the soft timeout");
    // b finds a's lock (a's load goes on in the background): it does not call the source; it
    // serves its own stale copy at its soft timeout
    let rb = b
        .get_or_load_with("k", ttl(60_000), policy, loader(&slow, Duration::ZERO, 3))
        .await
        .unwrap();
    assert_eq!(rb, Some(1), "b served its stale copy at the soft timeout");
    assert_eq!(b.stats().soft_timeouts, 1);
    for n in [&a, &b] {
        until(
            "the slow load's value on both nodes",
            Duration::from_secs(10),
            || async { n.get::<u64>("k").await.unwrap() == Some(2) },
        )
        .await;
    }
    assert_eq!(slow.load(Ordering::SeqCst), 1, "the source was called once");
    assert_eq!(a.stats().soft_timeouts, 1);
    // counted once the background task has finished storing, a moment after the value shows
    until(
        "a's background load counted",
        Duration::from_secs(10),
        || async { a.stats().background_loads == 1 },
    )
    .await;
}

async fn a_herd_over_two_nodes_makes_at_most_two_calls(url: &str, ns: &str) {
    let nodes = [node(url, ns).await, node(url, ns).await];
    let calls = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..1_000)
        .map(|i| {
            let cache = nodes[i % 2].clone();
            let load = loader(&calls, Duration::from_millis(100), 42);
            tokio::spawn(async move { cache.get_or_load("hot", ttl(60_000), load).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Some(42));
    }
    let n = calls.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&n),
        "{n} loader calls for 1,000 callers on 2 nodes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_through_across_two_nodes_on_standalone_redis() {
    let server = RedisServer::start();
    for client in CLIENTS {
        let url = with_client(&server.url(), client);
        eager_refresh_happens_once_across_nodes(&url, &format!("rt-eager-{client}")).await;
        soft_timeouts_serve_stale_on_both_nodes(&url, &format!("rt-soft-{client}")).await;
        a_herd_over_two_nodes_makes_at_most_two_calls(&url, &format!("rt-herd-{client}")).await;
    }
}
