//! `RedisBackend` against one real `redis-server` started by the test: commands, TTLs seen
//! with PTTL, sliding re-arm through the Lua script, two backends sharing entries, error
//! mapping, eviction mapping.
//!
//! One test function per server: checks run in sequence on a shared server, which is killed
//! when the function returns or panics.

mod common;

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;
use common::{envelope, now_ms, prefix, strs};
use memstache_core::ErrorKind;
use memstache_core::raw::{Backend, BackendEntry, Expiry};
use memstache_harness::redis::{RedisServer, Reply};
use memstache_redis::{RedisBackend, RedisConfig, SlidingReads};

fn pttl(server: &RedisServer, key: &str) -> i64 {
    server
        .cmd(&["PTTL", key])
        .as_int()
        .expect("PTTL is an integer")
}

fn secs(n: u64) -> Option<Duration> {
    Some(Duration::from_secs(n))
}

async fn backend_with(url: &str, mode: SlidingReads) -> RedisBackend {
    let mut config = RedisConfig::from_url(url).unwrap();
    config.sliding_reads = mode;
    RedisBackend::from_config(config).await.unwrap()
}

async fn strict_get(url: &str, key: &str) -> Option<Bytes> {
    let strict = backend_with(url, SlidingReads::Script).await;
    strict.get(key).await.unwrap()
}

/// Every client behind the backend passes the same checks.
const CLIENTS: [&str; 2] = ["redis-rs", "fred"];

fn client_url(server: &RedisServer, client: &str) -> String {
    format!("{}?client={client}", server.url())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_backend() {
    let server = RedisServer::start();
    for client in CLIENTS {
        eprintln!("client: {client}");
        standalone_checks(&server, &client_url(&server, client)).await;
    }
}

async fn standalone_checks(server: &RedisServer, url: &str) {
    let b = RedisBackend::connect(url).await.unwrap();
    let p = prefix(url.rsplit('=').next().unwrap_or("sa"));
    let k = |s: &str| format!("{p}:{s}");

    // --- identity and capabilities
    assert_eq!(b.name(), "redis");
    let caps = b.capabilities();
    assert!(caps.native_batch && caps.distributed && caps.native_ttl && !caps.cluster);
    assert_eq!(
        caps.max_value_size,
        Some(memstache_core::DEFAULT_MAX_VALUE_SIZE + memstache_redis::ENVELOPE_ALLOWANCE)
    );

    // --- the per-operation boxed futures stay small (inside the allocator's thread cache)
    let hot = [
        ("get", std::mem::size_of_val(&*b.get("k"))),
        (
            "set",
            std::mem::size_of_val(&*b.set("k", Bytes::new(), Expiry::default())),
        ),
    ];
    for (op, size) in hot {
        assert!(size <= 1024, "Backend::{op} future: {size} bytes");
    }

    // --- basic commands
    assert_eq!(b.get(&k("missing")).await.unwrap(), None);
    b.set(&k("a"), Bytes::from_static(b"one"), Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(
        b.get(&k("a")).await.unwrap(),
        Some(Bytes::from_static(b"one"))
    );
    assert!(b.exists(&k("a")).await.unwrap());
    assert_eq!(pttl(server, &k("a")), -1, "no expiry → no PX");
    b.set(&k("a"), Bytes::from_static(b"two"), Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(
        b.get(&k("a")).await.unwrap(),
        Some(Bytes::from_static(b"two"))
    );
    assert!(b.remove(&k("a")).await.unwrap());
    assert!(!b.remove(&k("a")).await.unwrap());
    assert!(!b.exists(&k("a")).await.unwrap());
    // binary and empty values
    let bin = Bytes::from((0u8..=255).collect::<Vec<_>>());
    b.set(&k("bin"), bin.clone(), Expiry::NEVER).await.unwrap();
    assert_eq!(b.get(&k("bin")).await.unwrap(), Some(bin));
    b.set(&k("empty"), Bytes::new(), Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(b.get(&k("empty")).await.unwrap(), Some(Bytes::new()));

    // --- two "nodes" share entries through one Redis
    let other = RedisBackend::connect(url).await.unwrap();
    b.set(&k("shared"), Bytes::from_static(b"from-b"), Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(
        other.get(&k("shared")).await.unwrap(),
        Some(Bytes::from_static(b"from-b"))
    );
    assert!(other.remove(&k("shared")).await.unwrap());
    assert_eq!(b.get(&k("shared")).await.unwrap(), None);

    // --- absolute TTL is visible with PTTL
    let deadline = now_ms() + 60_000;
    b.set(
        &k("ttl"),
        envelope(deadline, 0, b"x"),
        Expiry::new(Some(deadline), None),
    )
    .await
    .unwrap();
    let t = pttl(server, &k("ttl"));
    assert!((55_000..=60_000).contains(&t), "PTTL {t}");
    // a plain hit does not change the TTL
    server.cmd(&["PEXPIRE", &k("ttl"), "30000"]);
    assert!(b.get(&k("ttl")).await.unwrap().is_some());
    assert!(pttl(server, &k("ttl")) <= 30_000);

    // --- a deadline already past: nothing written, older value removed
    b.set(&k("past"), Bytes::from_static(b"old"), Expiry::NEVER)
        .await
        .unwrap();
    b.set(
        &k("past"),
        Bytes::from_static(b"new"),
        Expiry::new(Some(1), None),
    )
    .await
    .unwrap();
    assert_eq!(server.cmd(&["EXISTS", &k("past")]).as_int(), Some(0));

    // --- sliding: set arms min(sliding, deadline); a hit re-arms, capped by the deadline
    let sliding = Expiry::new(Some(now_ms() + 600_000), Some(Duration::from_secs(20)));
    let v = envelope(sliding.deadline_ms.unwrap(), 20_000, b"session");
    b.set(&k("s"), v.clone(), sliding).await.unwrap();
    let t = pttl(server, &k("s"));
    assert!((15_000..=20_000).contains(&t), "initial PTTL {t}");
    server.cmd(&["PEXPIRE", &k("s"), "1000"]); // as if 19 s had passed
    assert_eq!(b.get(&k("s")).await.unwrap(), Some(v.clone()));
    let t = pttl(server, &k("s"));
    assert!(t > 15_000, "a sliding hit re-arms PTTL, got {t}");
    // exists does not re-arm
    server.cmd(&["PEXPIRE", &k("s"), "1000"]);
    assert!(b.exists(&k("s")).await.unwrap());
    assert!(pttl(server, &k("s")) <= 1_000);
    // touch re-arms
    assert!(b.touch(&k("s")).await.unwrap());
    assert!(pttl(server, &k("s")) > 15_000);
    assert!(!b.touch(&k("nothing")).await.unwrap());
    // capped by the absolute deadline
    let cap = now_ms() + 3_000;
    let capped = envelope(cap, 60_000, b"c");
    b.set(&k("cap"), capped.clone(), Expiry::new(Some(cap), secs(60)))
        .await
        .unwrap();
    assert!(pttl(server, &k("cap")) <= 3_000);
    assert_eq!(b.get(&k("cap")).await.unwrap(), Some(capped));
    let t = pttl(server, &k("cap"));
    assert!(
        t <= 3_000 && t > 0,
        "re-arm never passes the deadline, got {t}"
    );
    // past its deadline (a key without PX written by someone else): a miss, and deleted
    let stale = envelope(now_ms() - 1, 60_000, b"stale");
    b.set(&k("stale"), stale, Expiry::NEVER).await.unwrap(); // the bytes as they are, no PX
    assert_eq!(b.get(&k("stale")).await.unwrap(), None);
    assert_eq!(server.cmd(&["EXISTS", &k("stale")]).as_int(), Some(0));

    // a corrupted header (absurd sliding window) is returned as bytes, not a script error:
    // the pipeline rejects it by its checksum
    let absurd = envelope(0, 1 << 59, b"junk");
    b.set(&k("absurd"), absurd.clone(), Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(b.get(&k("absurd")).await.unwrap(), Some(absurd.clone()));
    assert_eq!(strict_get(url, &k("absurd")).await, Some(absurd));

    // --- a sliding entry written by another process is re-armed on its first plain read
    let foreign = RedisBackend::connect(url).await.unwrap();
    let fv = envelope(now_ms() + 600_000, 20_000, b"foreign");
    foreign
        .set(&k("f"), fv.clone(), Expiry::new(None, secs(20)))
        .await
        .unwrap();
    server.cmd(&["PEXPIRE", &k("f"), "1000"]);
    assert_eq!(b.get(&k("f")).await.unwrap(), Some(fv.clone()));
    assert!(pttl(server, &k("f")) > 15_000, "first plain read re-arms");
    server.cmd(&["PEXPIRE", &k("f"), "1000"]);
    assert_eq!(b.get(&k("f")).await.unwrap(), Some(fv));
    assert!(
        pttl(server, &k("f")) > 15_000,
        "later reads re-arm through the script"
    );

    // --- batches: order, misses, duplicates, TTLs, sliding re-arm in get_many
    let entries: Vec<BackendEntry> = (0..50)
        .map(|i| BackendEntry {
            key: k(&format!("m{i}")),
            value: Bytes::from(format!("v{i}")),
            expiry: Expiry::new(Some(now_ms() + 60_000), None),
        })
        .collect();
    b.set_many(entries).await.unwrap();
    let mut keys: Vec<String> = (0..50).map(|i| k(&format!("m{i}"))).collect();
    keys.push(k("nope"));
    keys.push(k("m7"));
    let got = b.get_many(&strs(&keys)).await.unwrap();
    assert_eq!(got.len(), 52);
    for (i, v) in got.iter().enumerate().take(50) {
        assert_eq!(v, &Some(Bytes::from(format!("v{i}"))), "index {i}");
    }
    assert_eq!(got[50], None);
    assert_eq!(got[51], Some(Bytes::from_static(b"v7")));
    assert!(pttl(server, &k("m3")) > 50_000);
    assert!(b.get_many(&[]).await.unwrap().is_empty());
    let sv = envelope(now_ms() + 600_000, 20_000, b"s");
    foreign
        .set(&k("gs"), sv.clone(), Expiry::new(None, secs(20)))
        .await
        .unwrap();
    server.cmd(&["PEXPIRE", &k("gs"), "1000"]);
    let got = b.get_many(&strs(&[k("m1"), k("gs")])).await.unwrap();
    assert_eq!(got[1], Some(sv));
    assert!(
        pttl(server, &k("gs")) > 15_000,
        "get_many re-arms sliding hits"
    );
    assert_eq!(b.remove_many(&strs(&keys)).await.unwrap(), 50);
    assert_eq!(b.remove_many(&strs(&keys)).await.unwrap(), 0);

    // --- the script survives a SCRIPT FLUSH (EVALSHA → NOSCRIPT → EVAL)
    let strict = backend_with(url, SlidingReads::Script).await;
    b.set(
        &k("n"),
        envelope(0, 20_000, b"n"),
        Expiry::new(None, secs(20)),
    )
    .await
    .unwrap();
    assert_eq!(server.cmd(&["SCRIPT", "FLUSH"]), Reply::Status("OK".into()));
    assert!(strict.get(&k("n")).await.unwrap().is_some());
    assert_eq!(
        strict.get_many(&strs(&[k("n"), k("zz")])).await.unwrap()[1],
        None
    );

    // --- Disabled: plain reads, sliding writes refused
    let plain = backend_with(url, SlidingReads::Disabled).await;
    let e = plain
        .set(
            &k("d"),
            envelope(0, 1_000, b"d"),
            Expiry::new(None, secs(1)),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert_eq!(server.cmd(&["EXISTS", &k("d")]).as_int(), Some(0));
    plain
        .set(&k("d"), Bytes::from_static(b"d"), Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(
        plain.get(&k("d")).await.unwrap(),
        Some(Bytes::from_static(b"d"))
    );

    // --- eviction mapping (opt-in)
    let lru = memstache_core::memory::Lru;
    assert_eq!(b.apply_eviction_policy(&lru).await.unwrap(), "allkeys-lru");
    let policy = server.cmd(&["CONFIG", "GET", "maxmemory-policy"]);
    assert_eq!(
        policy,
        Reply::Array(vec![
            Reply::Bulk(b"maxmemory-policy".to_vec()),
            Reply::Bulk(b"allkeys-lru".to_vec())
        ])
    );
    let lfu = memstache_eviction::Lfu;
    assert_eq!(b.apply_eviction_policy(&lfu).await.unwrap(), "allkeys-lfu");
    let time = memstache_eviction::TimeBased;
    assert_eq!(
        b.apply_eviction_policy(&time).await.unwrap(),
        "volatile-ttl"
    );
    let tiny = memstache_eviction::TinyLfu::default();
    let e = b.apply_eviction_policy(&tiny).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);

    // --- Debug shows neither keys nor values
    let dbg = format!("{b:?}");
    assert!(dbg.contains("RedisBackend") && !dbg.contains(&p), "{dbg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_typed_and_temporary_when_redis_is_down() {
    for client in CLIENTS {
        eprintln!("client: {client}");
        down_checks(client).await;
    }
}

async fn down_checks(client: &str) {
    // nothing listens: connect fails as unavailable
    let mut server = RedisServer::start();
    let url = client_url(&server, client);
    server.kill();
    let mut config = RedisConfig::from_url(&url).unwrap();
    config.connect_timeout = Duration::from_secs(2);
    let e = RedisBackend::from_config(config.clone()).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e:?}"
    );
    assert!(e.is_temporary());
    assert!(e.source().is_some(), "the client error is kept as source");

    // the server goes away under a connected backend, and comes back
    server.restart();
    config.command_timeout = Duration::from_millis(500);
    let b = RedisBackend::from_config(config).await.unwrap();
    let key = "secret-key-name";
    b.set(key, Bytes::from_static(b"v"), Expiry::NEVER)
        .await
        .unwrap();
    server.kill();
    let e = b.get(key).await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout),
        "{e:?}"
    );
    assert!(e.is_temporary());
    assert_eq!(e.operation(), Some("get"));
    assert!(!e.to_string().contains(key) && !format!("{e:?}").contains(key));
    server.restart();
    // reconnects by itself (the restarted server is empty)
    let mut ok = false;
    for _ in 0..100 {
        if let Ok(v) = b.get(key).await {
            assert_eq!(v, None);
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the backend reconnected after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_is_used_and_never_shown() {
    let server = RedisServer::start_with_args(&["--requirepass", "hunter2-pw"]);
    for client in CLIENTS {
        eprintln!("client: {client}");
        password_checks(&server, client).await;
    }
}

async fn password_checks(server: &RedisServer, client: &str) {
    let url = format!(
        "redis://:hunter2-pw@127.0.0.1:{}?client={client}",
        server.port()
    );
    let b = RedisBackend::connect(&url).await.unwrap();
    b.set("k", Bytes::from_static(b"v"), Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(b.get("k").await.unwrap(), Some(Bytes::from_static(b"v")));
    assert!(!format!("{b:?}").contains("hunter2"));
    let config = RedisConfig::from_url(&url).unwrap();
    assert!(!format!("{config:?}").contains("hunter2"));

    let bad = format!(
        "redis://:wrong-pw@127.0.0.1:{}?client={client}",
        server.port()
    );
    let e = RedisBackend::connect(&bad).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e:?}");
    assert!(!e.is_temporary());
    assert!(!format!("{e:?}").contains("wrong-pw") && !e.to_string().contains("wrong-pw"));
}
