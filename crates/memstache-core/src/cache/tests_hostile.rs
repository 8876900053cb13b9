//! Hostile storage: entries written by whoever can write to the store. Deep nesting, formats
//! the cache was not configured for, forged headers, foreign key ids, and key managers that
//! hang or answer late.

use std::time::Duration;

use bytes::Bytes;

use super::test_support::{KeysMode, TestKeys, encrypting_cache};
use crate::envelope::{self, FLAG_CHECKSUM, Header};
use crate::memory::MemoryBackend;
use crate::raw::{Backend, Expiry};
use crate::{EntryOptions, ErrorKind, MemStache};

/// A checksummed, unencrypted envelope of `plain` (serialized with serializer `serializer`),
/// valid for storage key `sk`.
fn plain_envelope(sk: &str, serializer: u8, plain: &[u8]) -> Bytes {
    let h = Header {
        flags: FLAG_CHECKSUM,
        serializer,
        compressor: 0,
        cipher: 0,
        created_at_ms: 1,
        deadline_ms: 0,
        sliding_ms: 0,
        fingerprint: 0,
        plain_len: u32::try_from(plain.len()).unwrap(),
        key_id: "",
        key_version: 0,
        nonce: &[],
    };
    let mut out = Vec::new();
    h.encode(&mut out);
    let header_len = out.len();
    out.extend_from_slice(plain);
    let sum = envelope::checksum(&out[..header_len], sk, plain);
    out.extend_from_slice(&sum.to_le_bytes());
    Bytes::from(out)
}

/// Recomputes the CRC trailer of a plain envelope after its bytes were edited (what a forger
/// who knows the format does).
fn reseal_plain(bytes: &mut [u8], sk: &str) {
    let n = bytes.len();
    let sum = envelope::checksum(
        &bytes[..envelope::MIN_HEADER_LEN],
        sk,
        &bytes[envelope::MIN_HEADER_LEN..n - 4],
    );
    bytes[n - 4..].copy_from_slice(&sum.to_le_bytes());
}

// ---- deep nesting ----------------------------------------------------------------------------

/// A recursive type as deep as the bytes say.
#[derive(Debug, serde::Deserialize)]
#[expect(
    dead_code,
    reason = "only ever decoded, to see how deep the decoder goes"
)]
enum Nest {
    Leaf,
    Node(Box<Nest>),
}

/// A recursive sequence: `[[[…]]]`.
#[derive(Debug, serde::Deserialize)]
#[expect(
    dead_code,
    reason = "only ever decoded, to see how deep the decoder goes"
)]
struct Seq(Vec<Seq>);

const LEVELS: usize = 100_000;
const DEEP_CHILD: &str = "MEMSTACHE_DEEP_NESTING_CHILD";
const DEEP_TEST: &str = "cache::tests_hostile::deep_nesting_is_an_error_not_a_stack_overflow";

/// Runs in the child process, on a 2 MiB thread: a 100 000-level value in a valid envelope
/// (checksum and all) for each serializer, read with `get`; prints the error kinds.
fn deep_child() {
    let run = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let backend = MemoryBackend::new();
                #[cfg(feature = "postcard")]
                {
                    let cache = MemStache::builder()
                        .backend(backend.clone())
                        .build()
                        .unwrap();
                    let sk = cache.storage_key("deep").unwrap();
                    let mut plain = vec![1u8; LEVELS]; // Node, Node, …
                    plain.push(0); // Leaf
                    backend
                        .set(&sk, plain_envelope(&sk, 1, &plain), Expiry::NEVER)
                        .await
                        .unwrap();
                    let e = cache.get::<Nest>("deep").await.unwrap_err();
                    println!("deep postcard: {} ({})", e.kind(), e);
                }
                #[cfg(feature = "msgpack")]
                {
                    let cache = MemStache::builder()
                        .backend(backend.clone())
                        .serializer(crate::serializer::MessagePack)
                        .build()
                        .unwrap();
                    let sk = cache.storage_key("deep-m").unwrap();
                    let mut plain = vec![0x91u8; LEVELS]; // fixarray of 1, nested
                    plain.push(0x90); // empty fixarray
                    backend
                        .set(&sk, plain_envelope(&sk, 2, &plain), Expiry::NEVER)
                        .await
                        .unwrap();
                    let e = cache.get::<Seq>("deep-m").await.unwrap_err();
                    println!("deep msgpack: {} ({})", e.kind(), e);
                }
                #[cfg(feature = "json")]
                {
                    let cache = MemStache::builder()
                        .backend(backend.clone())
                        .serializer(crate::serializer::Json)
                        .build()
                        .unwrap();
                    let sk = cache.storage_key("deep-j").unwrap();
                    let plain = format!("{}{}", "[".repeat(LEVELS), "]".repeat(LEVELS));
                    backend
                        .set(&sk, plain_envelope(&sk, 3, plain.as_bytes()), Expiry::NEVER)
                        .await
                        .unwrap();
                    let e = cache.get::<Seq>("deep-j").await.unwrap_err();
                    println!("deep json: {} ({})", e.kind(), e);
                }
            });
        })
        .unwrap();
    run.join().unwrap();
}

/// A value nested 100 000 levels deep, in an entry with a valid checksum, is a typed
/// `Serialization` error on a 2 MiB stack — for every serializer — not a stack overflow.
/// A stack overflow aborts the whole process (SIGSEGV/SIGABRT, no unwinding), so the decode
/// runs in a child process (this test binary, re-run with an environment variable and a
/// filter for this one test) and the parent checks that the child exited normally and printed
/// the error kinds. Without the depth limit the child dies of the overflow.
#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    if std::env::var_os(DEEP_CHILD).is_some() {
        deep_child();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([DEEP_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(DEEP_CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    #[cfg(unix)]
    let signal = std::os::unix::process::ExitStatusExt::signal(&out.status);
    #[cfg(not(unix))]
    let signal: Option<i32> = None;
    assert!(
        out.status.success(),
        "the child died ({:?}, signal {signal:?}):\n{stdout}\n{stderr}",
        out.status
    );
    let mut formats = Vec::new();
    if cfg!(feature = "postcard") {
        formats.push("postcard");
    }
    if cfg!(feature = "msgpack") {
        formats.push("msgpack");
    }
    if cfg!(feature = "json") {
        formats.push("json");
    }
    for f in formats {
        assert!(
            stdout.contains(&format!("deep {f}: serialization")),
            "{f}: no typed error in the child's output:\n{stdout}"
        );
    }
}

/// A value at the limit decodes, one level deeper is refused; the limit is configurable.
#[cfg(feature = "postcard")]
#[tokio::test(flavor = "current_thread")]
async fn the_nesting_limit_is_configurable_and_exact() {
    let backend = MemoryBackend::new();
    let cache = MemStache::builder()
        .backend(backend.clone())
        .max_nesting_depth(10)
        .build()
        .unwrap();
    let sk = cache.storage_key("n").unwrap();
    for (nodes, ok) in [(9, true), (10, false)] {
        let mut plain = vec![1u8; nodes];
        plain.push(0);
        backend
            .set(&sk, plain_envelope(&sk, 1, &plain), Expiry::NEVER)
            .await
            .unwrap();
        let r = cache.get::<Nest>("n").await;
        assert_eq!(r.is_ok(), ok, "{nodes} nodes: {r:?}");
        if let Err(e) = r {
            assert_eq!(e.kind(), ErrorKind::Serialization);
            assert!(e.to_string().contains("nested deeper than 10"), "{e}");
        }
    }
    assert!(MemStache::builder().max_nesting_depth(0).build().is_err());
}

// ---- serializers the cache was not configured for ---------------------------------------------

/// An entry with a valid checksum whose header names another serializer is not decoded with
/// it unless the cache accepts that serializer: `UnsupportedFormat`. With
/// `accept_serializer`, it reads.
#[cfg(all(feature = "postcard", feature = "msgpack", feature = "json"))]
#[tokio::test(flavor = "current_thread")]
async fn serializers_not_accepted_are_refused() {
    use crate::raw::Serializer;
    let backend = MemoryBackend::new();
    let cache = MemStache::builder()
        .backend(backend.clone())
        .build()
        .unwrap();
    let accepting = MemStache::builder()
        .backend(backend.clone())
        .accept_serializer(crate::serializer::MessagePack)
        .build()
        .unwrap();
    let sk = cache.storage_key("k").unwrap();
    let mut plain = Vec::new();
    crate::serializer::MessagePack
        .serialize(&vec![1u16, 2], &mut plain)
        .unwrap();
    backend
        .set(&sk, plain_envelope(&sk, 2, &plain), Expiry::NEVER)
        .await
        .unwrap();
    let e = cache.get::<Vec<u16>>("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedFormat);
    assert_eq!(
        accepting.get::<Vec<u16>>("k").await.unwrap(),
        Some(vec![1, 2])
    );
    // JSON is compiled in, but neither cache accepts it
    backend
        .set(&sk, plain_envelope(&sk, 3, b"[1,2]"), Expiry::NEVER)
        .await
        .unwrap();
    for c in [&cache, &accepting] {
        let e = c.get::<Vec<u16>>("k").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnsupportedFormat);
    }
}

// ---- forged headers ---------------------------------------------------------------------------

/// What each edit of a plain entry's header reads as, with the checksum left as it was (a
/// careless or blind edit) and recomputed (a forger who knows the format). The rule: nothing
/// the header claims is reported before the checksum verified it; a failed checksum is
/// `Integrity`. The format version is the documented exception (its layout is unknown, so it
/// cannot be verified).
#[cfg(feature = "postcard")]
#[tokio::test(flavor = "current_thread")]
async fn forged_plain_headers_map_to_integrity_unless_verified() {
    let backend = MemoryBackend::new();
    let cache = MemStache::builder()
        .backend(backend.clone())
        .type_check(true)
        .build()
        .unwrap();
    cache
        .set("k", &7u32, EntryOptions::default())
        .await
        .unwrap();
    let sk = cache.storage_key("k").unwrap();
    let good = backend.get(&sk).await.unwrap().unwrap().to_vec();
    type Edit = fn(&mut Vec<u8>);
    let cases: [(&str, Edit, ErrorKind, ErrorKind); 7] = [
        (
            "magic",
            |b| b[0] = b'X',
            ErrorKind::Integrity,
            ErrorKind::Integrity,
        ),
        (
            "format version",
            |b| b[3] = 2,
            ErrorKind::UnsupportedFormat,
            ErrorKind::UnsupportedFormat,
        ),
        (
            "unknown flag bit",
            |b| b[4] |= 0x80,
            ErrorKind::Integrity,
            ErrorKind::UnsupportedFormat,
        ),
        (
            "serializer id",
            |b| b[5] = 3,
            ErrorKind::Integrity,
            ErrorKind::UnsupportedFormat,
        ),
        (
            "compressor id",
            |b| b[6] = 9,
            ErrorKind::Integrity,
            ErrorKind::Integrity,
        ),
        (
            "type fingerprint",
            |b| b[32] ^= 1,
            ErrorKind::Integrity,
            ErrorKind::SchemaMismatch,
        ),
        (
            "serialized length",
            |b| b[40..44].copy_from_slice(&u32::MAX.to_le_bytes()),
            ErrorKind::Integrity,
            ErrorKind::Integrity,
        ),
    ];
    for (what, edit, blind, resealed) in cases {
        for (reseal, want) in [(false, blind), (true, resealed)] {
            let mut b = good.clone();
            edit(&mut b);
            if reseal {
                reseal_plain(&mut b, &sk);
            }
            backend
                .set(&sk, Bytes::from(b), Expiry::NEVER)
                .await
                .unwrap();
            let e = cache.get::<u32>("k").await.unwrap_err();
            assert_eq!(e.kind(), want, "{what}, checksum recomputed: {reseal}: {e}");
        }
    }
    // a genuine entry larger than this cache's limit (written by a cache with a larger one):
    // verified, so `ValueTooLarge`
    let small = MemStache::builder()
        .backend(backend.clone())
        .max_value_size(2)
        .build()
        .unwrap();
    cache
        .set("big", &[9u8; 8], EntryOptions::default())
        .await
        .unwrap();
    let e = small.get::<[u8; 8]>("big").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ValueTooLarge);
}

/// Edits of an encrypted entry's header: authentication fails (`Integrity`) for everything
/// the AEAD covers. A key id other than the scope's is refused before any key-manager call;
/// another version of the scope's own key id is looked up, and an unknown one reads as the
/// key manager says (`KeyNotFound`, the documented rotation signal); an unknown cipher id
/// cannot be verified (`UnsupportedFormat`).
#[cfg(feature = "postcard")]
#[tokio::test(flavor = "current_thread")]
async fn forged_encrypted_headers() {
    let backend = MemoryBackend::new();
    let keys = TestKeys::new(KeysMode::Ready);
    let cache = encrypting_cache(backend.clone(), keys.clone());
    cache
        .set("k", &7u32, EntryOptions::default())
        .await
        .unwrap();
    let sk = cache.storage_key("k").unwrap();
    let good = backend.get(&sk).await.unwrap().unwrap().to_vec();
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(7));
    let key_id_at = 45; // "default", 7 bytes
    let version_at = key_id_at + 7;
    type Edit = fn(&mut Vec<u8>);
    let cases: [(&str, Edit, ErrorKind, bool); 7] = [
        ("key id", |b| b[45 + 6] = b'X', ErrorKind::Integrity, false),
        ("key version", |b| b[52] = 9, ErrorKind::KeyNotFound, true),
        (
            "cipher id",
            |b| b[7] = 201,
            ErrorKind::UnsupportedFormat,
            false,
        ),
        (
            "unknown flag bit",
            |b| b[4] |= 0x80,
            ErrorKind::Integrity,
            true,
        ),
        ("serializer id", |b| b[5] = 3, ErrorKind::Integrity, true),
        (
            "serialized length",
            |b| b[40..44].copy_from_slice(&u32::MAX.to_le_bytes()),
            ErrorKind::Integrity,
            true,
        ),
        ("deadline", |b| b[16 + 7] = 0x7f, ErrorKind::Integrity, true),
    ];
    assert_eq!(&good[key_id_at..version_at], b"default");
    for (what, edit, want, looks_up) in cases {
        let mut b = good.clone();
        edit(&mut b);
        backend
            .set(&sk, Bytes::from(b), Expiry::NEVER)
            .await
            .unwrap();
        let before = keys.calls();
        let e = cache.get::<u32>("k").await.unwrap_err();
        assert_eq!(e.kind(), want, "{what}: {e}");
        assert_eq!(
            keys.calls() - before,
            u64::from(looks_up),
            "{what}: key-manager calls"
        );
    }
}

/// A forged header naming another key id (another tenant's, say) drives no key-manager call:
/// `Integrity`, and the key manager saw nothing — through `get`, `get_many` and `get_or_set`.
#[cfg(feature = "postcard")]
#[tokio::test(flavor = "current_thread")]
async fn a_foreign_key_id_is_refused_without_a_key_lookup() {
    let backend = MemoryBackend::new();
    // an entry sealed under key id "other" by a cache with that key id…
    let other = MemStache::builder()
        .backend(backend.clone())
        .encryptor(super::test_support::ToyCipher)
        .key_manager(TestKeys::new(KeysMode::Ready))
        .key_id("other")
        .build()
        .unwrap();
    other.set("k", &1u8, EntryOptions::default()).await.unwrap();
    let raw = backend
        .get(&other.storage_key("k").unwrap())
        .await
        .unwrap()
        .unwrap();
    // …copied under a key of a cache that seals under "default"
    let keys = TestKeys::new(KeysMode::Ready);
    let cache = encrypting_cache(backend.clone(), keys.clone());
    backend
        .set(&cache.storage_key("k").unwrap(), raw, Expiry::NEVER)
        .await
        .unwrap();
    let e = cache.get::<u8>("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    assert_eq!(
        keys.calls(),
        0,
        "the key manager was asked for a foreign key id"
    );
    let _ = cache.get_many::<u8, _>(&["k"]).await;
    assert_eq!(keys.calls(), 0);
    let v: u8 = cache
        .get_or_set("k", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(2)
        })
        .await
        .unwrap();
    assert_eq!(v, 2);
    // the only call: `current_key` for storing the loaded value
    assert_eq!(keys.calls(), 1);
}

// ---- key managers that hang or answer late ----------------------------------------------------

/// A key manager that never answers: encrypted writes and reads fail with a temporary
/// `Timeout` after the key-manager timeout (on the paused clock), instead of hanging.
#[cfg(feature = "postcard")]
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_hung_key_manager_gives_a_timeout() {
    let backend = MemoryBackend::new();
    let keys = TestKeys::new(KeysMode::Ready);
    let cache = encrypting_cache(backend.clone(), keys.clone());
    cache
        .set("old", &1u8, EntryOptions::default())
        .await
        .unwrap();
    keys.set_mode(KeysMode::Hang);
    let t = tokio::time::Instant::now();
    let e = cache
        .set("k", &1u8, EntryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.is_temporary());
    assert_eq!(t.elapsed(), crate::DEFAULT_KEY_MANAGER_TIMEOUT);
    let t = tokio::time::Instant::now();
    let e = cache.get::<u8>("old").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(t.elapsed(), crate::DEFAULT_KEY_MANAGER_TIMEOUT);
    // try_get: a miss, not a hang
    assert_eq!(cache.try_get::<u8>("old").await, None);
}

/// A key manager slower than the timeout: the call times out; once it answers in time again,
/// reads and writes succeed (nothing is left wedged).
#[cfg(feature = "postcard")]
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_slow_key_manager_times_out_then_recovers() {
    let backend = MemoryBackend::new();
    let keys = TestKeys::new(KeysMode::Ready);
    let cache = MemStache::builder()
        .backend(backend)
        .encryptor(super::test_support::ToyCipher)
        .key_manager(keys.clone())
        .key_manager_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    cache.set("k", &3u8, EntryOptions::default()).await.unwrap();
    keys.set_mode(KeysMode::After(Duration::from_secs(1)));
    let t = tokio::time::Instant::now();
    let e = cache.get::<u8>("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(t.elapsed(), Duration::from_millis(500));
    keys.set_mode(KeysMode::After(Duration::from_millis(100)));
    assert_eq!(cache.get::<u8>("k").await.unwrap(), Some(3));
    cache
        .set("k2", &4u8, EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(cache.get::<u8>("k2").await.unwrap(), Some(4));
    assert!(
        MemStache::builder()
            .key_manager_timeout(Duration::ZERO)
            .build()
            .is_err()
    );
}

// ---- batches ----------------------------------------------------------------------------------

/// One undecodable entry in a batch fails only its own key: `get_many` returns the others and
/// `None` for it (counted as an error, logged with its key hash), `get_many_results` returns
/// its error (`Integrity`, with the key hash) beside the other keys' values.
#[cfg(feature = "postcard")]
#[tokio::test(flavor = "current_thread")]
async fn one_bad_entry_fails_only_its_own_key_in_a_batch() {
    let backend = MemoryBackend::new();
    let cache = MemStache::builder()
        .backend(backend.clone())
        .build()
        .unwrap();
    for (k, v) in [("a", 1u8), ("b", 2), ("c", 3)] {
        cache.set(k, &v, EntryOptions::default()).await.unwrap();
    }
    let sk = cache.storage_key("b").unwrap();
    let mut bad = backend.get(&sk).await.unwrap().unwrap().to_vec();
    *bad.last_mut().unwrap() ^= 1; // the checksum no longer matches
    backend
        .set(&sk, Bytes::from(bad), Expiry::NEVER)
        .await
        .unwrap();
    let before = cache.stats().errors;
    let (logs, _guard) = super::test_support::capture_logs(tracing::Level::WARN);
    let got = cache
        .get_many::<u8, _>(&["a", "b", "c", "d"])
        .await
        .unwrap();
    assert_eq!(got, vec![Some(1), None, Some(3), None]);
    assert_eq!(cache.stats().errors, before + 1);
    let text = logs.text();
    assert!(text.contains(&crate::key_hash("b")), "{text}");
    assert!(
        !text.contains("ms:b"),
        "the key leaked into the log: {text}"
    );
    let each = cache
        .get_many_results::<u8, _>(&["a", "b", "c", "d"])
        .await
        .unwrap();
    assert_eq!(*each[0].as_ref().unwrap(), Some(1));
    let e = each[1].as_ref().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    assert_eq!(e.operation(), Some("get_many"));
    assert!(e.context().iter().any(|(n, _)| *n == "key_hash"));
    assert_eq!(*each[2].as_ref().unwrap(), Some(3));
    assert!(matches!(each[3], Ok(None)));
}
