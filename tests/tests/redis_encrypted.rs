//! Compression and encryption on a real Redis (a `redis-server` started here): the behaviour
//! suite with zstd + AES-256-GCM, and tampering through a raw client — flipped bytes, an entry
//! copied to another key, truncated, or replaced by another namespace's entry — is a typed
//! error from `get` and `None` from `try_get`, never a value.

use std::sync::Arc;

use bytes::Bytes;
use memstache::compression::Zstd;
use memstache::crypto::{Aes256Gcm, LocalKeyManager};
use memstache::envelope::DEADLINE_OFFSET;
use memstache::raw::{Backend, Expiry};
use memstache::redis::RedisBackend;
use memstache::{EntryOptions, ErrorKind, MemStache};
use memstache_harness::redis::{RedisCluster, RedisSentinelSet, RedisServer, Reply};
use memstache_testkit::behaviour::{self, Configured, RealTimeHarness};

async fn encrypted_suite(url: &str) {
    let backend = RedisBackend::connect(url).await.expect("connect");
    let keys = LocalKeyManager::generate();
    let h = Configured::new(RealTimeHarness::new(Arc::new(backend)), move |b| {
        b.compressor(Zstd::default())
            .compress_threshold(64)
            .encryptor(Aes256Gcm::default())
            .key_manager(keys.clone())
    });
    behaviour::run_all(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_suite_on_redis_with_zstd_and_aes() {
    let server = RedisServer::start();
    encrypted_suite(&server.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_suite_on_redis_sentinel_with_zstd_and_aes() {
    let set = RedisSentinelSet::start();
    encrypted_suite(&set.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behaviour_suite_on_redis_cluster_with_zstd_and_aes() {
    let cluster = RedisCluster::start();
    encrypted_suite(&cluster.url()).await;
}

fn raw_get(server: &RedisServer, key: &str) -> Vec<u8> {
    match server.cmd(&["GET", key]) {
        Reply::Bulk(b) => b,
        other => panic!("GET {key}: {other:?}"),
    }
}

fn assert_rejected(kind: ErrorKind) {
    assert!(
        matches!(
            kind,
            ErrorKind::Integrity
                | ErrorKind::UnsupportedFormat
                | ErrorKind::ValueTooLarge
                | ErrorKind::KeyNotFound
        ),
        "tampered entry gave {kind:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_through_a_raw_client_never_yields_a_value() {
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url()).await.expect("connect");
    let keys = LocalKeyManager::generate();
    let build = |ns: &str| {
        MemStache::builder()
            .backend(backend.clone())
            .namespace(ns)
            .compressor(Zstd::default())
            .encryptor(Aes256Gcm::default())
            .key_manager(keys.clone())
            .build()
            .unwrap()
    };
    let cache = build("shop");
    let other = build("billing");
    let value = "order #1: 3 × espresso, paid".to_owned();
    cache
        .set("a", &value, EntryOptions::default())
        .await
        .unwrap();
    cache
        .set("b", &"another".to_owned(), EntryOptions::default())
        .await
        .unwrap();
    other
        .set("a", &"billing's a".to_owned(), EntryOptions::default())
        .await
        .unwrap();
    let good = raw_get(&server, "shop:a");
    assert!(
        !String::from_utf8_lossy(&good).contains("espresso"),
        "value stored in plaintext"
    );

    // 1. flip bytes, one position at a time (raw bytes written with the backend's own SET,
    // bypassing the pipeline), then once with SETRANGE from the side client
    for i in (0..good.len()).step_by(3) {
        let mut b = good.clone();
        b[i] ^= 0x55;
        backend
            .set("shop:a", Bytes::from(b), Expiry::NEVER)
            .await
            .unwrap();
        match cache.get::<String>("a").await {
            Err(e) => assert_rejected(e.kind()),
            // a deadline moved into the past reads as expired: a miss, never data
            Ok(None) if (DEADLINE_OFFSET..DEADLINE_OFFSET + 8).contains(&i) => {}
            Ok(v) => panic!("byte {i}: tampered entry returned as {v:?}"),
        }
        assert_eq!(cache.try_get::<String>("a").await, None);
    }
    backend
        .set("shop:a", Bytes::from(good.clone()), Expiry::NEVER)
        .await
        .unwrap();
    assert!(
        server
            .cmd(&["SETRANGE", "shop:a", "60", "X"])
            .as_int()
            .is_some()
    );
    assert_rejected(cache.get::<String>("a").await.unwrap_err().kind());

    // 2. copy an entry to another key (COPY … REPLACE on the server)
    backend
        .set("shop:a", Bytes::from(good.clone()), Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(cache.get::<String>("a").await.unwrap(), Some(value.clone()));
    assert_eq!(
        server
            .cmd(&["COPY", "shop:a", "shop:b", "REPLACE"])
            .as_int(),
        Some(1)
    );
    assert_eq!(
        cache.get::<String>("b").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(cache.try_get::<String>("b").await, None);

    // 3. truncate it
    for cut in [0usize, 10, 49, good.len() / 2, good.len() - 1] {
        backend
            .set(
                "shop:a",
                Bytes::copy_from_slice(&good[..cut]),
                Expiry::NEVER,
            )
            .await
            .unwrap();
        assert_rejected(cache.get::<String>("a").await.unwrap_err().kind());
        assert_eq!(cache.try_get::<String>("a").await, None);
    }

    // 4. replace it with another namespace's entry for the same user key
    assert_eq!(
        server
            .cmd(&["COPY", "billing:a", "shop:a", "REPLACE"])
            .as_int(),
        Some(1)
    );
    assert_eq!(
        cache.get::<String>("a").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(cache.try_get::<String>("a").await, None);
    // the source is untouched
    assert_eq!(
        other.get::<String>("a").await.unwrap().as_deref(),
        Some("billing's a")
    );
}
