//! `RedisBackend` through Sentinel on real processes (master + replica + one Sentinel): an
//! entry written before the master dies is read back from the promoted replica, on each client,
//! in plain text and over TLS (`rediss-sentinel://`: the Sentinel, the master and the replica
//! all serve TLS and replicate over it; the Sentinel names TLS ports).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{prefix, refused_without_ca};
use memstache_core::raw::{Backend, Expiry};
use memstache_harness::redis::{RedisSentinelSet, Reply, SERVICE_NAME};
use memstache_redis::{RedisBackend, RedisConfig};

fn master_port(set: &RedisSentinelSet) -> Option<u16> {
    match set
        .sentinel()
        .cmd(&["SENTINEL", "get-master-addr-by-name", SERVICE_NAME])
    {
        Reply::Array(a) if a.len() == 2 => a[1].as_text()?.parse().ok(),
        _ => None,
    }
}

/// The port clients use: the TLS one on a TLS set.
fn client_port(server: &memstache_harness::redis::RedisServer, tls: bool) -> u16 {
    if tls {
        server.tls_port()
    } else {
        server.port()
    }
}

async fn failover_checks(client: &str, tls: bool) {
    let mut set = if tls {
        RedisSentinelSet::start_tls()
    } else {
        RedisSentinelSet::start()
    };
    let b = if tls {
        let mut config =
            RedisConfig::from_url(&format!("{}&client={client}", set.tls_url())).unwrap();
        assert!(config.tls);
        config.tls_ca_pem = Some(set.tls_ca_pem().to_vec());
        RedisBackend::from_config(config).await.unwrap()
    } else {
        RedisBackend::connect(&format!("{}&client={client}", set.url()))
            .await
            .unwrap()
    };
    let key = format!("{}:durable", prefix(client));
    b.set(&key, Bytes::from_static(b"survives"), Expiry::NEVER)
        .await
        .unwrap();
    // (`WAIT` would only count the writes of its own connection, none here: the backend
    // wrote on another. Compare replication offsets instead.)
    set.master().wait_replicated(Duration::from_secs(10));
    let old = client_port(set.master(), tls);
    assert_eq!(master_port(&set), Some(old));
    set.master_mut().kill();

    let deadline = Instant::now() + Duration::from_secs(60);
    while master_port(&set) == Some(old) {
        assert!(Instant::now() < deadline, "the Sentinel did not fail over");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(master_port(&set), Some(client_port(set.replica(), tls)));

    let deadline = Instant::now() + Duration::from_secs(60);
    let value = loop {
        match b.get(&key).await {
            Ok(v) => break v,
            Err(e) => {
                assert!(e.is_temporary(), "failover errors are temporary: {e:?}");
                assert!(Instant::now() < deadline, "still failing: {e:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(value, Some(Bytes::from_static(b"survives")));
    // writes reach the new master
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = b
        .set(&key, Bytes::from_static(b"again"), Expiry::NEVER)
        .await
    {
        assert!(e.is_temporary(), "{e:?}");
        assert!(Instant::now() < deadline, "writes still failing: {e:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        set.replica().cmd(&["GET", &key]),
        Reply::Bulk(b"again".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_redis_rs() {
    failover_checks("redis-rs", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_fred() {
    failover_checks("fred", false).await;
}

/// Without the set's CA, its certificates are refused. redis-rs reports the TLS refusal
/// (`InvalidConfig`, not temporary); fred's Sentinel connector keeps only "failed to connect to
/// all sentinel nodes", so there it stays a temporary `Unavailable` (documented).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_over_tls_refuses_an_unknown_ca() {
    let set = RedisSentinelSet::start_tls();
    for (client, kind) in [
        ("redis-rs", memstache_core::ErrorKind::InvalidConfig),
        ("fred", memstache_core::ErrorKind::Unavailable),
    ] {
        let refused = refused_without_ca(&set.tls_url(), client).await;
        assert_eq!(refused.kind(), kind, "{client}: {refused:?}");
        assert_eq!(
            refused.is_temporary(),
            kind == memstache_core::ErrorKind::Unavailable,
            "{client}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_over_tls_redis_rs() {
    failover_checks("redis-rs", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_failover_over_tls_fred() {
    failover_checks("fred", true).await;
}
