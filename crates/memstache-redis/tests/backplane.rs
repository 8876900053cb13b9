//! `RedisBackplane` against real `redis-server` processes started by the tests, on both
//! clients: publish on one `RedisBackend`, receive on a subscription of another (separate
//! connections) on standalone, Sentinel and Cluster (subscriber and publisher on different
//! cluster nodes); the listener's events in order across a killed and restarted server, a
//! Sentinel failover, a hung server (found by the ping health check) and a lost cluster node;
//! oversized messages dropped and counted; a dropped `Subscription` unsubscribing.
//!
//! Events are awaited from the listener's channel with a bound, never slept for.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::prefix;
use memstache_core::ErrorKind;
use memstache_core::raw::{Backplane, BackplaneListener, MAX_BACKPLANE_MESSAGE, Subscription};
use memstache_harness::redis::{RedisCluster, RedisSentinelSet, RedisServer, Reply, SERVICE_NAME};
use memstache_redis::{RedisBackend, RedisBackplane};
use tokio::sync::mpsc;

const CLIENTS: [&str; 2] = ["redis-rs", "fred"];

/// What a listener heard, in order.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Connected,
    Disconnected,
    Message(Vec<u8>),
}

struct Recorder(mpsc::UnboundedSender<Event>);

impl BackplaneListener for Recorder {
    fn connected(&self) {
        let _ = self.0.send(Event::Connected);
    }
    fn disconnected(&self) {
        let _ = self.0.send(Event::Disconnected);
    }
    fn message(&self, payload: &[u8]) {
        let _ = self.0.send(Event::Message(payload.to_vec()));
    }
}

/// The receiving end of a [`Recorder`].
struct Events(mpsc::UnboundedReceiver<Event>);

impl Events {
    /// The next event, within `bound`.
    async fn next(&mut self, bound: Duration) -> Event {
        match tokio::time::timeout(bound, self.0.recv()).await {
            Ok(Some(e)) => e,
            Ok(None) => panic!("the subscription task ended"),
            Err(_) => panic!("no backplane event within {bound:?}"),
        }
    }

    async fn expect(&mut self, want: Event, bound: Duration) {
        let got = self.next(bound).await;
        assert_eq!(got, want);
    }

    async fn expect_message(&mut self, payload: &[u8]) {
        self.expect(Event::Message(payload.to_vec()), secs(10))
            .await;
    }

    /// Waits for the listener to be dropped (the subscription's task ended), with no event
    /// before.
    async fn expect_closed(&mut self, bound: Duration) {
        match tokio::time::timeout(bound, self.0.recv()).await {
            Ok(None) => {}
            Ok(Some(e)) => panic!("unexpected event after the subscription was dropped: {e:?}"),
            Err(_) => panic!("the subscription task still runs after {bound:?}"),
        }
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn subscribe(plane: &RedisBackplane, channel: &str) -> (Subscription, Events) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sub = plane.subscribe(channel, Arc::new(Recorder(tx))).unwrap();
    (sub, Events(rx))
}

async fn plane(url: &str) -> RedisBackplane {
    RedisBackend::connect(url).await.unwrap().backplane()
}

/// Publishes, retrying temporary errors while the publisher's own connections recover (after
/// a restart or failover), for at most a minute.
async fn publish_until_ok(plane: &RedisBackplane, channel: &str, payload: &'static [u8]) {
    let deadline = Instant::now() + secs(60);
    loop {
        match plane.publish(channel, Bytes::from_static(payload)).await {
            Ok(()) => return,
            Err(e) => {
                assert!(e.is_temporary(), "{e:?}");
                assert!(Instant::now() < deadline, "publish still failing: {e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// `PUBSUB NUMSUB channel` on one server (on a cluster: that node's subscribers only).
fn numsub(server: &RedisServer, channel: &str) -> i64 {
    match server.cmd(&["PUBSUB", "NUMSUB", channel]) {
        Reply::Array(a) if a.len() == 2 => a[1].as_int().expect("an integer count"),
        other => panic!("unexpected PUBSUB NUMSUB reply: {other:?}"),
    }
}

/// Polls `f` until it holds (a server-side count with no event to await), for at most `bound`.
async fn eventually(what: &str, bound: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + bound;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_publish_subscribe() {
    let server = RedisServer::start_with_args(&["--requirepass", "bp-s3cret"]);
    for client in CLIENTS {
        eprintln!("client: {client}");
        let url = format!(
            "redis://:bp-s3cret@127.0.0.1:{}?client={client}",
            server.port()
        );
        let publisher = plane(&url).await;
        let subscriber = plane(&url).await;
        let ch = prefix(client);
        let (sub, mut events) = subscribe(&subscriber, &ch);
        // connected comes first, once the server has the subscription
        events.expect(Event::Connected, secs(10)).await;
        assert_eq!(numsub(&server, &ch), 1);

        let binary: Vec<u8> = (0u8..=255).collect();
        let payloads: [&[u8]; 4] = [b"m0", b"m1", b"", &binary];
        for p in payloads {
            publisher
                .publish(&ch, Bytes::copy_from_slice(p))
                .await
                .unwrap();
        }
        for p in payloads {
            events.expect_message(p).await;
        }
        // another channel is not heard
        publisher
            .publish(&format!("{ch}:other"), Bytes::from_static(b"no"))
            .await
            .unwrap();

        // the largest message goes through; a larger one is refused by publish, and dropped
        // and counted by the subscriber when someone else sends it
        let max = vec![b'm'; MAX_BACKPLANE_MESSAGE];
        publisher
            .publish(&ch, Bytes::from(max.clone()))
            .await
            .unwrap();
        events.expect_message(&max).await;
        let refused = publisher
            .publish(&ch, Bytes::from(vec![b'x'; MAX_BACKPLANE_MESSAGE + 1]))
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ValueTooLarge);
        let big = "x".repeat(MAX_BACKPLANE_MESSAGE + 1);
        assert_eq!(server.cmd(&["PUBLISH", &ch, &big]).as_int(), Some(1));
        publisher
            .publish(&ch, Bytes::from_static(b"after"))
            .await
            .unwrap();
        events.expect_message(b"after").await;

        let (p, s) = (publisher.stats(), subscriber.stats());
        assert_eq!((p.published, p.received), (7, 0), "{p:?}");
        assert_eq!(
            (s.received, s.dropped_oversized, s.disconnects, s.reconnects),
            (6, 1, 0, 0),
            "{s:?}"
        );
        // no secret in Debug
        for dbg in [format!("{publisher:?}"), format!("{subscriber:?}")] {
            assert!(dbg.contains("RedisBackplane"), "{dbg}");
            assert!(!dbg.contains("bp-s3cret"), "{dbg}");
        }

        // dropping the subscription ends its task (the listener is dropped, no event) and
        // closes its connection
        drop(sub);
        events.expect_closed(secs(5)).await;
        eventually("PUBSUB NUMSUB to drop to 0", secs(10), || {
            numsub(&server, &ch) == 0
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_kill_and_restart() {
    let mut server = RedisServer::start();
    for client in CLIENTS {
        eprintln!("client: {client}");
        let url = format!(
            "{}?client={client}&backplane_ping_interval_ms=200",
            server.url()
        );
        let publisher = plane(&url).await;
        let subscriber = plane(&url).await;
        let ch = prefix(client);
        let (_sub, mut events) = subscribe(&subscriber, &ch);
        events.expect(Event::Connected, secs(10)).await;
        publisher
            .publish(&ch, Bytes::from_static(b"before"))
            .await
            .unwrap();
        events.expect_message(b"before").await;

        server.kill();
        let killed = Instant::now();
        events.expect(Event::Disconnected, secs(5)).await;
        let lag = killed.elapsed();
        assert!(lag < Duration::from_millis(2500), "{lag:?}");

        server.restart();
        events.expect(Event::Connected, secs(20)).await;
        publish_until_ok(&publisher, &ch, b"again").await;
        events.expect_message(b"again").await;
        let s = subscriber.stats();
        assert_eq!(
            (s.disconnects, s.reconnects, s.received),
            (1, 1, 2),
            "{s:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_hung_server_is_detected_by_the_ping() {
    let server = RedisServer::start();
    for client in CLIENTS {
        eprintln!("client: {client}");
        let url = format!(
            "{}?client={client}&backplane_ping_interval_ms=200",
            server.url()
        );
        let publisher = plane(&url).await;
        let subscriber = plane(&url).await;
        let ch = prefix(client);
        let (_sub, mut events) = subscribe(&subscriber, &ch);
        events.expect(Event::Connected, secs(10)).await;
        publisher
            .publish(&ch, Bytes::from_static(b"before"))
            .await
            .unwrap();
        events.expect_message(b"before").await;

        // every client's commands wait for 3 s, the subscriber's PING included; the
        // connection itself stays open
        assert_eq!(
            server.cmd(&["CLIENT", "PAUSE", "3000", "ALL"]),
            Reply::Status("OK".into())
        );
        let paused = Instant::now();
        events.expect(Event::Disconnected, secs(5)).await;
        let lag = paused.elapsed();
        // ping interval 200 ms: at most about 2 × 200 ms; the bound is generous
        assert!(lag < Duration::from_millis(2500), "{lag:?}");

        // once the pause is over, the subscription comes back and messages flow
        events.expect(Event::Connected, secs(20)).await;
        publish_until_ok(&publisher, &ch, b"after").await;
        events.expect_message(b"after").await;
        let s = subscriber.stats();
        assert_eq!((s.disconnects, s.reconnects), (1, 1), "{s:?}");
    }
}

fn master_port(set: &RedisSentinelSet) -> Option<u16> {
    match set
        .sentinel()
        .cmd(&["SENTINEL", "get-master-addr-by-name", SERVICE_NAME])
    {
        Reply::Array(a) if a.len() == 2 => a[1].as_text()?.parse().ok(),
        _ => None,
    }
}

async fn sentinel_checks(client: &str) {
    let mut set = RedisSentinelSet::start();
    let url = format!(
        "{}&client={client}&backplane_ping_interval_ms=200",
        set.url()
    );
    let publisher = plane(&url).await;
    let subscriber = plane(&url).await;
    let ch = prefix(client);
    let (_sub, mut events) = subscribe(&subscriber, &ch);
    events.expect(Event::Connected, secs(10)).await;
    assert_eq!(numsub(set.master(), &ch), 1, "subscribed on the master");
    publisher
        .publish(&ch, Bytes::from_static(b"before"))
        .await
        .unwrap();
    events.expect_message(b"before").await;

    let old = set.master().port();
    set.master_mut().kill();
    events.expect(Event::Disconnected, secs(5)).await;
    // the subscriber asks the Sentinel again until it names the promoted replica
    events.expect(Event::Connected, secs(60)).await;
    assert_ne!(master_port(&set), Some(old));
    assert_eq!(master_port(&set), Some(set.replica().port()));
    assert_eq!(
        numsub(set.replica(), &ch),
        1,
        "subscribed on the new master"
    );
    publish_until_ok(&publisher, &ch, b"after failover").await;
    events.expect_message(b"after failover").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_redis_rs() {
    sentinel_checks("redis-rs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_fred() {
    sentinel_checks("fred").await;
}

/// `redis-cluster://` naming `first` first, then every other node.
fn cluster_url_from(cluster: &RedisCluster, first: usize) -> String {
    let mut url = format!(
        "redis-cluster://127.0.0.1:{}?",
        cluster.nodes()[first].port()
    );
    for (i, n) in cluster.nodes().iter().enumerate() {
        if i != first {
            url.push_str(&format!("node=127.0.0.1:{}&", n.port()));
        }
    }
    url
}

fn numsub_all(cluster: &RedisCluster, ch: &str) -> i64 {
    cluster
        .nodes()
        .iter()
        .filter(|n| n.is_running())
        .map(|n| numsub(n, ch))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_backplane() {
    let mut cluster = RedisCluster::start();
    let mut restarted = None;
    for client in ["redis-rs", "fred"] {
        eprintln!("client: {client}");
        restarted = Some(cluster_checks(&mut cluster, client, restarted).await);
    }
}

/// The checks on one client; returns the node it killed and restarted. The subscriber avoids
/// `restarted`: right after a node restarts, the first `PUBLISH` another node sends it over the
/// cluster bus can be lost (written to the bus link to the old process before that link is
/// found dead) — Redis pub/sub is at most once, see docs/redis.md.
async fn cluster_checks(
    cluster: &mut RedisCluster,
    client: &str,
    restarted: Option<usize>,
) -> usize {
    let ch = prefix(client);
    // the publisher publishes on the master of the channel's slot; the subscriber is put on a
    // replica of another master
    let pub_node = cluster
        .master_for_slot(cluster.keyslot(&ch))
        .expect("a master serves the slot");
    let replicas: Vec<usize> = cluster
        .cluster_nodes()
        .iter()
        .filter(|n| !n.is_master)
        .filter_map(|n| cluster.index_of_port(n.port))
        .collect();
    assert_eq!(replicas.len(), 3);
    let sub_node = *replicas
        .iter()
        .find(|&&i| i != pub_node && Some(i) != restarted)
        .unwrap();
    let publisher = plane(&format!("{}&client={client}", cluster.url())).await;
    let sub_url = format!(
        "{}client={client}&backplane_ping_interval_ms=200",
        cluster_url_from(cluster, sub_node)
    );
    let subscriber = plane(&sub_url).await;
    let (sub, mut events) = subscribe(&subscriber, &ch);
    events.expect(Event::Connected, secs(10)).await;
    assert_eq!(numsub(&cluster.nodes()[sub_node], &ch), 1);
    assert_eq!(numsub_all(cluster, &ch), 1, "one subscription, on one node");

    // one publisher's messages, in order, from another node
    for i in 0..5 {
        publisher
            .publish(&ch, Bytes::from(format!("m{i}")))
            .await
            .unwrap();
    }
    for i in 0..5 {
        events.expect_message(format!("m{i}").as_bytes()).await;
    }
    // a PUBLISH on any node reaches the subscriber (the cluster bus broadcasts it); several
    // publishers on several nodes have no order between them
    let mut want = HashSet::new();
    for (i, n) in cluster.nodes().iter().enumerate() {
        let m = format!("from-node-{i}");
        n.cmd(&["PUBLISH", &ch, &m]);
        want.insert(m.into_bytes());
    }
    let mut got = HashSet::new();
    while got.len() < want.len() {
        match events.next(secs(10)).await {
            Event::Message(m) => assert!(got.insert(m)),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, want);

    // the subscriber's node dies (a replica: the cluster stays up): the subscription moves to
    // another node
    cluster.node_mut(sub_node).kill();
    events.expect(Event::Disconnected, secs(5)).await;
    events.expect(Event::Connected, secs(30)).await;
    assert_eq!(numsub_all(cluster, &ch), 1);
    publisher
        .publish(&ch, Bytes::from_static(b"moved"))
        .await
        .unwrap();
    events.expect_message(b"moved").await;
    let s = subscriber.stats();
    assert_eq!((s.disconnects, s.reconnects), (1, 1), "{s:?}");

    drop(sub);
    events.expect_closed(secs(5)).await;
    eventually("PUBSUB NUMSUB to drop to 0", secs(10), || {
        numsub_all(cluster, &ch) == 0
    })
    .await;

    // back to 3 + 3 for the next client
    cluster.node_mut(sub_node).restart();
    cluster.wait_ok(secs(60));
    cluster.wait_replicas(secs(60));
    sub_node
}
