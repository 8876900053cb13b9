//! TLS (`rediss://`) against a real `redis-server` serving TLS, on both clients. The server's
//! certificate is signed by a CA made for this test (`RedisServer::start_tls`), so this proves:
//! * the TLS handshake, and entries written and read over it;
//! * verification against a private CA given as `RedisConfig::tls_ca_pem` or as the URL
//!   parameter `tls_ca_file`;
//! * without that CA (the platform's roots only), the connection is refused with a typed
//!   error: verification is never skipped.
//!
//! It does not prove anything about client certificates (mTLS is not supported) or about
//! the platform root store beyond refusing an unknown CA.

use memstache_core::raw::{Backend, Expiry};
use memstache_core::{ErrorKind, MemStache};
use memstache_redis::{RedisBackend, RedisConfig};
use memstache_testkit::redis::RedisServer;

const CLIENTS: [&str; 2] = ["redis-rs", "fred"];

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
        let refused = RedisBackend::connect(&format!(
            "{}?client={client}&connect_timeout_ms=3000",
            server.tls_url()
        ))
        .await
        .expect_err("a certificate from an unknown CA must be refused");
        // both clients report a failed handshake as an I/O failure (docs: error mapping)
        assert_eq!(
            refused.kind(),
            ErrorKind::Unavailable,
            "{client}: {refused:?}"
        );
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
}
