//! Hostile storage and hostile server replies, against real `redis-server` processes, on both
//! clients: entries larger than `max_entry_size` are refused without being read, server error
//! text (which quotes keys and values) never reaches an error's `Debug`, `Display` or source
//! chain, and a far-future expiry is stored instead of failing the write.

mod common;

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;
use common::{envelope, now_ms, prefix};
use memstache_core::raw::{Backend, BackendEntry, Expiry};
use memstache_core::{Error, ErrorKind};
use memstache_harness::redis::RedisServer;
use memstache_redis::{RedisBackend, RedisConfig, SlidingReads};

const CLIENTS: [&str; 2] = ["redis-rs", "fred"];
const MODES: [SlidingReads; 3] = [
    SlidingReads::Auto,
    SlidingReads::Script,
    SlidingReads::Disabled,
];

async fn backend(
    server: &RedisServer,
    client: &str,
    mode: SlidingReads,
    max: usize,
) -> RedisBackend {
    let mut config = RedisConfig::from_url(&format!("{}?client={client}", server.url())).unwrap();
    config.sliding_reads = mode;
    config.max_entry_size = max;
    RedisBackend::from_config(config).await.unwrap()
}

fn assert_too_large<T>(r: memstache_core::Result<T>, what: &str) {
    // (an `Ok` is not printed: it could be megabytes)
    let Err(e) = r else {
        panic!("{what}: expected ValueTooLarge, got Ok");
    };
    assert_eq!(e.kind(), ErrorKind::ValueTooLarge, "{what}: {e:?}");
    assert!(!e.is_temporary(), "{what}");
}

/// An entry longer than `max_entry_size`, written by someone else, is a `ValueTooLarge` error
/// on every read path (plain `GETRANGE`, the read script in each mode, batches, the guarded
/// write's guard), on both clients; entries up to the bound read back whole, also past the
/// first read window (64 KiB); `touch` still works (it reads no value).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_entries_are_value_too_large_on_every_read_path() {
    let server = RedisServer::start();
    // 256 KiB bound: larger than the first GETRANGE window, so both the window and the
    // script's STRLEN check are exercised; 1000 bytes: the window itself is the bound.
    for max in [256 * 1024, 1000] {
        for client in CLIENTS {
            for mode in MODES {
                eprintln!("max {max}, client {client}, mode {mode:?}");
                let p = prefix(&format!("big-{max}-{client}-{mode:?}"));
                let b = backend(&server, client, mode, max).await;
                let big = format!("{p}:big");
                let edge = format!("{p}:edge");
                let over = format!("{p}:over");
                let small = format!("{p}:small");
                server.cmd(&["SET", &big, &"x".repeat(4 * max)]);
                server.cmd(&["SET", &edge, &"e".repeat(max)]);
                server.cmd(&["SET", &over, &"o".repeat(max + 1)]);
                server.cmd(&["SET", &small, "s"]);

                assert_too_large(b.get(&big).await, "get of 4x the bound");
                assert_too_large(b.get(&over).await, "get of bound + 1");
                let got = b
                    .get(&edge)
                    .await
                    .unwrap()
                    .expect("an entry of exactly the bound");
                assert_eq!(got.len(), max);
                assert!(got.iter().all(|&c| c == b'e'));
                assert_eq!(b.get(&small).await.unwrap().as_deref(), Some(&b"s"[..]));

                // batches: the SPI has no per-key error, so the batch fails
                assert_too_large(
                    b.get_many(&[small.as_str(), big.as_str()]).await,
                    "get_many with an oversized entry",
                );
                let ok = b.get_many(&[small.as_str(), edge.as_str()]).await.unwrap();
                assert_eq!(ok[0].as_deref(), Some(&b"s"[..]));
                assert_eq!(ok[1].as_ref().map(Bytes::len), Some(max));

                // touch reads no value
                assert!(b.touch(&big).await.unwrap());

                // a guard holding an oversized value
                let entry = BackendEntry {
                    key: format!("{p}:guarded"),
                    value: Bytes::from_static(b"v"),
                    expiry: Expiry::NEVER,
                };
                assert_too_large(
                    b.set_many_guarded(&big, b"token", vec![entry]).await,
                    "guarded write with an oversized guard",
                );

                // writes past the bound are refused before they are sent
                assert_eq!(b.capabilities().max_value_size, Some(max));
                assert_too_large(
                    b.set(
                        &format!("{p}:w"),
                        Bytes::from(vec![1u8; max + 1]),
                        Expiry::NEVER,
                    )
                    .await,
                    "set past the bound",
                );
                b.quit().await;
            }
        }
    }

    // an oversized *sliding* entry (written by a backend with a larger bound) on the script
    // paths, which parse its header: refused, and touch still re-arms it
    for client in CLIENTS {
        let p = prefix(&format!("bigsliding-{client}"));
        let writer = backend(&server, client, SlidingReads::Script, 1 << 20).await;
        let key = format!("{p}:s");
        let value = envelope(now_ms() + 600_000, 30_000, &vec![7u8; 300 * 1024]);
        writer
            .set(
                &key,
                value,
                Expiry::new(None, Some(Duration::from_secs(30))),
            )
            .await
            .unwrap();
        server.cmd(&["PEXPIRE", &key, "5000"]);
        for mode in [SlidingReads::Auto, SlidingReads::Script] {
            let b = backend(&server, client, mode, 256 * 1024).await;
            assert_too_large(b.get(&key).await, "get of an oversized sliding entry");
            assert_too_large(b.get_many(&[key.as_str()]).await, "get_many of it");
            assert!(b.touch(&key).await.unwrap());
            let pttl = server.cmd(&["PTTL", &key]).as_int().unwrap();
            assert!(pttl > 5_000, "touch re-armed the sliding window: {pttl}");
            server.cmd(&["PEXPIRE", &key, "5000"]);
        }
    }
}

/// Every text an error shows: `Display`, `Debug`, and both for each source in the chain.
fn error_texts(e: &Error) -> Vec<String> {
    let mut out = vec![e.to_string(), format!("{e:?}")];
    let mut src = e.source();
    while let Some(s) = src {
        out.push(s.to_string());
        out.push(format!("{s:?}"));
        src = s.source();
    }
    out
}

fn assert_redacted(e: &Error, secrets: &[&str], code: &str, what: &str) {
    let texts = error_texts(e);
    for t in &texts {
        for s in secrets {
            assert!(!t.contains(s), "{what}: the error shows {s:?}: {t}");
        }
    }
    assert!(
        texts.iter().any(|t| t.contains(code)),
        "{what}: the error keeps the code {code}: {texts:?}"
    );
}

/// Real server errors whose text quotes the key and the value — an unknown (renamed) command
/// echoes its arguments — and a `WRONGTYPE` from plain commands and from inside the read
/// script: the memstache error keeps the kind and the Redis code, never the key or the value,
/// in `Display`, `Debug` or any source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_text_never_reaches_errors() {
    // GETRANGE and SET renamed away: Redis answers "ERR unknown command 'SET', with args
    // beginning with: '<key>' '<value>' …"
    let renamed = RedisServer::start_with_args(&[
        "--rename-command",
        "GETRANGE",
        "",
        "--rename-command",
        "SET",
        "",
    ]);
    let plain = RedisServer::start();
    for client in CLIENTS {
        eprintln!("client {client}");
        let p = prefix(&format!("redact-{client}"));
        let key = format!("{p}:secret-key-7f3a");
        let value = "secret-value-91c2";

        let b = backend(&renamed, client, SlidingReads::Disabled, 1 << 20).await;
        // the server's text for these quotes the key (and the value)
        let e = b.get(&key).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend);
        assert_redacted(&e, &[&key, "secret-key"], "ERR", "get, unknown command");
        let e = b
            .set(&key, Bytes::from(value), Expiry::NEVER)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Backend);
        assert_redacted(
            &e,
            &[&key, "secret-key", value],
            "ERR",
            "set, unknown command",
        );
        let e = b
            .set_many(vec![BackendEntry {
                key: key.clone(),
                value: Bytes::from(value),
                expiry: Expiry::new(Some(now_ms() + 60_000), None),
            }])
            .await
            .unwrap_err();
        assert_redacted(
            &e,
            &[&key, "secret-key", value],
            "ERR",
            "set_many, unknown command",
        );
        b.quit().await;

        // WRONGTYPE: a list under the key, read by a plain command and by the script
        let list = format!("{p}:secret-list-key");
        plain.cmd(&["RPUSH", &list, value]);
        for mode in MODES {
            let b = backend(&plain, client, mode, 1 << 20).await;
            let e = b.get(&list).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Backend, "{mode:?}");
            assert!(!e.is_temporary());
            assert_redacted(
                &e,
                &[&list, "secret-list", value],
                "WRONGTYPE",
                "get of a list",
            );
            let e = b.get_many(&[list.as_str()]).await.unwrap_err();
            assert_redacted(
                &e,
                &[&list, "secret-list", value],
                "WRONGTYPE",
                "get_many of a list",
            );
            b.quit().await;
        }
    }
}

/// A far-future expiry (200 years, `u64::MAX` ms, a `Duration::MAX` sliding window) is stored
/// with a clamped `PX` (about 317 years) and reads back, on every write path; Redis refuses a
/// `PX` that reaches past `i64::MAX` ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_future_expiry_is_stored_and_read_back() {
    let server = RedisServer::start();
    let year_ms = 365 * 24 * 3600 * 1000u64;
    let expiries = [
        (
            "200 years",
            Expiry::new(Some(now_ms() + 200 * year_ms), None),
        ),
        ("u64::MAX deadline", Expiry::new(Some(u64::MAX), None)),
        (
            "Duration::MAX sliding",
            Expiry::new(None, Some(Duration::MAX)),
        ),
        (
            "sliding 1000 years, deadline u64::MAX",
            Expiry::new(Some(u64::MAX), Some(Duration::from_millis(1000 * year_ms))),
        ),
    ];
    for client in CLIENTS {
        let b = backend(&server, client, SlidingReads::Auto, 1 << 20).await;
        let p = prefix(&format!("far-{client}"));
        for (i, (what, expiry)) in expiries.iter().enumerate() {
            let value = envelope(expiry.deadline_ms.unwrap_or(0), 0, b"far");
            let k = |op: &str| format!("{p}:{i}:{op}");
            b.set(&k("set"), value.clone(), *expiry)
                .await
                .unwrap_or_else(|e| panic!("{client} set {what}: {e:?}"));
            b.set_many(vec![BackendEntry {
                key: k("many"),
                value: value.clone(),
                expiry: *expiry,
            }])
            .await
            .unwrap_or_else(|e| panic!("{client} set_many {what}: {e:?}"));
            assert!(
                b.set_if_absent(&k("nx"), value.clone(), *expiry)
                    .await
                    .unwrap_or_else(|e| panic!("{client} set_if_absent {what}: {e:?}"))
            );
            let guard = format!("{p}:{i}:guard");
            b.set(&guard, Bytes::from_static(b"g1"), Expiry::NEVER)
                .await
                .unwrap();
            b.set_many_guarded(
                &guard,
                b"g1",
                vec![BackendEntry {
                    key: k("guarded"),
                    value: value.clone(),
                    expiry: *expiry,
                }],
            )
            .await
            .unwrap_or_else(|e| panic!("{client} set_many_guarded {what}: {e:?}"));
            for op in ["set", "many", "nx", "guarded"] {
                assert_eq!(
                    b.get(&k(op)).await.unwrap().as_ref(),
                    Some(&value),
                    "{what} {op}"
                );
                let pttl = server.cmd(&["PTTL", &k(op)]).as_int().unwrap();
                assert!(
                    pttl > 100 * i64::try_from(year_ms).unwrap(),
                    "{what} {op}: {pttl}"
                );
            }
        }
        b.quit().await;
    }
}
