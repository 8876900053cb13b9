//! TLS (`rediss://`) against a real `redis-server` serving TLS, on both clients. The server's
//! certificate is signed by a CA made for this test (`RedisServer::start_tls`), so this proves:
//! * the TLS handshake, and entries written and read over it;
//! * verification against a private CA given as `RedisConfig::tls_ca_pem` or as the URL
//!   parameter `tls_ca_file`;
//! * without that CA (the platform's roots only), the connection is refused with a typed
//!   error: verification is never skipped.
//!
//! * mutual TLS: against a server that requires client certificates
//!   (`RedisServer::start_mutual_tls`), a client certificate and key given in the config or
//!   as `tls_cert_file` / `tls_key_file` get through, and no certificate is refused.
//!
//! * a Redis Cluster over TLS (`rediss-cluster://`, `tls-cluster yes`): the nodes' TLS ports
//!   come from `CLUSTER SLOTS` asked over TLS, and cross-slot batches reach every master.
//!
//! It proves nothing about the platform root store beyond refusing an unknown CA.

mod common;

use std::collections::HashSet;

use bytes::Bytes;
use common::{first_read, refused_without_ca};
use memstache_core::raw::{Backend, BackendEntry, Expiry};
use memstache_core::{EntryOptions, ErrorKind, MemStache};
use memstache_harness::redis::{RedisCluster, RedisServer};
use memstache_redis::{RedisBackend, RedisConfig};

const CLIENTS: [&str; 2] = ["redis-rs", "fred"];

/// A refused TLS handshake is a configuration error on both clients: not temporary, so neither
/// retried nor served from fail-safe copies (docs: error mapping).
fn assert_tls_refusal(refused: &memstache_core::Error, client: &str) {
    assert_eq!(
        refused.kind(),
        ErrorKind::InvalidConfig,
        "{client}: {refused:?}"
    );
    assert!(!refused.is_temporary(), "{client}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    let server = RedisServer::start_tls();
    let ca_file = server.dir().join("client-ca.pem");
    std::fs::write(&ca_file, server.tls_ca_pem()).unwrap();

    for client in CLIENTS {
        // the CA as bytes in the config
        let mut config =
            RedisConfig::from_url(&format!("{}?client={client}", server.tls_url())).unwrap();
        assert!(config.tls);
        config.tls_ca_pem = Some(server.tls_ca_pem().to_vec());
        let backend = RedisBackend::from_config(config).await.unwrap();
        let ns = format!("tls-{client}");
        let cache = MemStache::builder()
            .namespace(ns.as_str())
            .backend(backend.clone())
            .build()
            .unwrap();
        cache
            .set("k", &"over tls", memstache_core::EntryOptions::default())
            .await
            .unwrap();
        assert_eq!(
            cache.get::<String>("k").await.unwrap().as_deref(),
            Some("over tls"),
            "{client}"
        );
        // the entry is on that server (seen through its plain port)
        assert_eq!(
            server.cmd(&["EXISTS", &format!("{ns}:k")]).as_int(),
            Some(1),
            "{client}"
        );

        // the CA as a file named in the URL
        let url = format!(
            "{}?client={client}&tls_ca_file={}",
            server.tls_url(),
            ca_file.display()
        );
        let other = RedisBackend::connect(&url).await.unwrap();
        other
            .set("raw", bytes::Bytes::from_static(b"v"), Expiry::NEVER)
            .await
            .unwrap();
        assert_eq!(other.get("raw").await.unwrap().as_deref(), Some(&b"v"[..]));

        // without the private CA the server's certificate is not trusted
        let refused = refused_without_ca(&server.tls_url(), client).await;
        assert_tls_refusal(&refused, client);
        assert!(std::error::Error::source(&refused).is_some(), "{client}");

        // and plain text to the TLS port does not get through either
        let plain = RedisBackend::connect(&format!(
            "redis://127.0.0.1:{}?client={client}&connect_timeout_ms=3000",
            server.tls_url().rsplit(':').next().unwrap()
        ))
        .await;
        assert!(plain.is_err(), "{client}: plain text reached the TLS port");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_with_a_client_certificate() {
    let server = RedisServer::start_mutual_tls();
    let client_cert = server.tls_client_certificate().clone();
    let dir = server.dir();
    let (ca_file, cert_file, key_file) = (
        dir.join("m-ca.pem"),
        dir.join("m-client.pem"),
        dir.join("m-client.key"),
    );
    std::fs::write(&ca_file, server.tls_ca_pem()).unwrap();
    std::fs::write(&cert_file, &client_cert.cert_pem).unwrap();
    std::fs::write(&key_file, &client_cert.key_pem).unwrap();

    for client in CLIENTS {
        let base = format!(
            "{}?client={client}&connect_timeout_ms=3000",
            server.tls_url()
        );
        // the identity in the config
        let mut config = RedisConfig::from_url(&base).unwrap();
        config.tls_ca_pem = Some(server.tls_ca_pem().to_vec());
        config.tls_client_cert_pem = Some(client_cert.cert_pem.clone());
        config.tls_client_key_pem = Some(client_cert.key_pem.clone());
        let debug = format!("{config:?}");
        assert!(debug.contains("[REDACTED]"), "{debug}");
        assert!(
            !debug.contains("PRIVATE KEY"),
            "the key never shows: {debug}"
        );
        let backend = RedisBackend::from_config(config).await.unwrap();
        backend
            .set("m", bytes::Bytes::from_static(b"mutual"), Expiry::NEVER)
            .await
            .unwrap();
        assert_eq!(
            backend.get("m").await.unwrap().as_deref(),
            Some(&b"mutual"[..]),
            "{client}"
        );

        // the identity as files named in the URL
        let url = format!(
            "{base}&tls_ca_file={}&tls_cert_file={}&tls_key_file={}",
            ca_file.display(),
            cert_file.display(),
            key_file.display()
        );
        let from_url = RedisBackend::connect(&url).await.unwrap();
        assert!(from_url.exists("m").await.unwrap(), "{client}");

        // trusted server, but no client certificate: the server refuses the handshake
        let refused = first_read(&format!("{base}&tls_ca_file={}", ca_file.display()))
            .await
            .expect_err("no client certificate must be refused");
        assert_tls_refusal(&refused, client);
    }
}

#[test]
fn tls_ca_needs_tls_and_a_readable_file() {
    let e = RedisConfig::from_url("redis://127.0.0.1?tls_ca_file=/nonexistent/ca.pem")
        .expect_err("unreadable file");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(!e.to_string().contains("nonexistent"), "{e}");

    let mut config = RedisConfig::default();
    config.tls_ca_pem = Some(b"-----BEGIN CERTIFICATE-----".to_vec());
    let e = config.validate().expect_err("CA without TLS");
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(format!("{config:?}").contains("27 bytes"));

    // a client certificate needs its key, and the other way round
    let mut config = RedisConfig::from_url("rediss://127.0.0.1").unwrap();
    config.tls_client_cert_pem = Some(b"cert".to_vec());
    assert_eq!(
        config.validate().unwrap_err().kind(),
        ErrorKind::InvalidConfig
    );
    config.tls_client_cert_pem = None;
    config.tls_client_key_pem = Some(b"-----BEGIN PRIVATE KEY----- secret".to_vec());
    let e = config.validate().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig);
    assert!(!format!("{e:?} {config:?}").contains("secret"));
}

/// `rediss-cluster://` on a 3 + 3 cluster whose nodes serve clients and each other over TLS:
/// both clients discover the nodes' TLS ports, write and read a cross-slot batch that spans
/// all three masters, and refuse the cluster's certificate without its CA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster() {
    let cluster = RedisCluster::start_tls();
    for client in CLIENTS {
        let mut config =
            RedisConfig::from_url(&format!("{}&client={client}", cluster.tls_url())).unwrap();
        assert!(config.tls);
        config.tls_ca_pem = Some(cluster.tls_ca_pem().to_vec());
        let b = RedisBackend::from_config(config).await.unwrap();
        assert!(b.capabilities().cluster);

        let keys: Vec<String> = (0..60).map(|i| format!("tls-{client}:{i}")).collect();
        let masters: HashSet<usize> = keys
            .iter()
            .map(|k| cluster.master_for_slot(cluster.keyslot(k)).unwrap())
            .collect();
        assert_eq!(masters.len(), 3, "the keys live on all three masters");
        let entries = keys
            .iter()
            .map(|k| BackendEntry {
                key: k.clone(),
                value: Bytes::from(k.clone()),
                expiry: Expiry::NEVER,
            })
            .collect();
        b.set_many(entries).await.unwrap();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let got = b.get_many(&refs).await.unwrap();
        assert_eq!(got.len(), keys.len());
        for (k, v) in keys.iter().zip(&got) {
            assert_eq!(v.as_deref(), Some(k.as_bytes()), "{client}");
        }
        // stored on the cluster, as seen through a node's plain admin port
        assert_eq!(
            cluster.cmd_for_key(&keys[7], &["GET", &keys[7]]).as_text(),
            Some(keys[7].clone())
        );

        let cache = MemStache::builder()
            .namespace(format!("tls-cluster-{client}"))
            .backend(b.clone())
            .build()
            .unwrap();
        cache
            .set("k", &"over TLS".to_owned(), EntryOptions::default())
            .await
            .unwrap();
        assert_eq!(
            cache.get::<String>("k").await.unwrap().as_deref(),
            Some("over TLS")
        );
        assert_eq!(b.remove_many(&refs).await.unwrap(), 60);

        // without the cluster's CA its certificates are not trusted
        let refused = refused_without_ca(&cluster.tls_url(), client).await;
        assert_tls_refusal(&refused, client);
    }
}
