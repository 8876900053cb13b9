//! Compression + encryption end to end on the memory backend: the behaviour suite with every
//! stage on, combinations of serializer × compressor × encryption, rotation and
//! crypto-shredding, and tampering (edited headers, swapped keys, planted plaintext).

use std::sync::Arc;

use bytes::Bytes;
use memstache::compression::{Gzip, Zstd};
use memstache::crypto::{Aes256Gcm, LocalKeyManager};
use memstache::envelope::{self, DEADLINE_OFFSET};
use memstache::memory::MemoryBackend;
use memstache::raw::{Backend, Expiry, KeyManager, Serializer};
use memstache::serializer::{Json, MessagePack, Postcard};
use memstache::{EntryOptions, ErrorKind, MemStache, MemStacheBuilder};
use memstache_testkit::behaviour::{Configured, MemoryHarness};
use proptest::prelude::*;

fn encrypted(b: MemStacheBuilder, keys: &LocalKeyManager) -> MemStacheBuilder {
    b.compressor(Zstd::default())
        .compress_threshold(64)
        .encryptor(Aes256Gcm::default())
        .key_manager(keys.clone())
}

mod behaviour_with_zstd_and_aes {
    use super::*;
    memstache_testkit::behaviour_tests!(async {
        let keys = LocalKeyManager::generate();
        Configured::new(MemoryHarness::new(), move |b| encrypted(b, &keys))
    });
}

mod behaviour_with_gzip_only {
    use super::*;
    memstache_testkit::behaviour_tests!(async {
        Configured::new(MemoryHarness::new(), |b| {
            b.compressor(Gzip::default()).compress_threshold(32)
        })
    });
}

fn serializer(i: u8) -> Arc<dyn Serializer> {
    match i {
        0 => Arc::new(Postcard),
        1 => Arc::new(MessagePack),
        _ => Arc::new(Json),
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Doc {
    id: u64,
    title: String,
    lines: Vec<String>,
}

fn doc() -> impl Strategy<Value = Doc> {
    (
        any::<u64>(),
        ".{0,40}",
        proptest::collection::vec("[a-z ]{0,80}", 0..40),
    )
        .prop_map(|(id, title, lines)| Doc { id, title, lines })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Every serializer × compressor × encryption combination round-trips, and reads back on a
    /// cache with the same stages; the envelope says which stages ran.
    #[test]
    fn every_combination_round_trips(d in doc(), s in 0u8..3, c in 0u8..3, enc in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let backend = MemoryBackend::new();
            let keys = LocalKeyManager::generate();
            let make = || {
                let mut b = MemStache::builder()
                    .backend(backend.clone())
                    .namespace("combo")
                    .compress_threshold(128);
                b = match s {
                    0 => b.serializer(Postcard),
                    1 => b.serializer(MessagePack),
                    _ => b.serializer(Json),
                };
                b = match c {
                    0 => b,
                    1 => b.compressor(Gzip::default()),
                    _ => b.compressor(Zstd::default()),
                };
                if enc {
                    b = b.encryptor(Aes256Gcm::default()).key_manager(keys.clone());
                }
                b.build().unwrap()
            };
            let (writer, reader) = (make(), make());
            writer.set("d", &d, EntryOptions::default()).await.unwrap();
            prop_assert_eq!(reader.get::<Doc>("d").await.unwrap(), Some(d.clone()));
            let raw = backend.get("combo:d").await.unwrap().unwrap();
            let e = envelope::decode(&raw, 1 << 24).unwrap();
            prop_assert_eq!(e.header.serializer, serializer(s).id());
            prop_assert_eq!(e.header.is_encrypted(), enc);
            if e.header.is_compressed() {
                prop_assert!(c != 0 && e.header.plain_len >= 128);
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn compressible_values_are_stored_compressed_and_small_ones_are_not() {
    let backend = MemoryBackend::new();
    let cache = MemStache::builder()
        .backend(backend.clone())
        .namespace("z")
        .compressor(Zstd::default())
        .build()
        .unwrap();
    let big = "abc ".repeat(1000);
    cache
        .set("big", &big, EntryOptions::default())
        .await
        .unwrap();
    cache
        .set("small", &"abc ".repeat(10), EntryOptions::default())
        .await
        .unwrap();
    cache
        .set("off", &big, EntryOptions::new().compress(false))
        .await
        .unwrap();
    let h = |k: &'static str| {
        let backend = backend.clone();
        async move {
            let raw = backend.get(k).await.unwrap().unwrap();
            (
                envelope::decode(&raw, 1 << 24)
                    .unwrap()
                    .header
                    .is_compressed(),
                raw.len(),
            )
        }
    };
    let (big_c, big_len) = h("z:big").await;
    assert!(big_c && big_len < big.len() / 10, "compressed to {big_len}");
    assert!(!h("z:small").await.0, "below the 1 KiB threshold");
    assert!(!h("z:off").await.0, "compress(false) wins");
    assert_eq!(cache.get::<String>("big").await.unwrap(), Some(big));
}

#[tokio::test]
async fn rotation_keeps_old_entries_and_destroy_shreds_them() {
    let keys = LocalKeyManager::generate();
    let cache = encrypted(MemStache::builder(), &keys).build().unwrap();
    cache
        .set("v1", &"old", EntryOptions::default())
        .await
        .unwrap();
    let v2 = keys.rotate_key("default").await.unwrap();
    assert_eq!(v2.version, 2);
    cache
        .set("v2", &"new", EntryOptions::default())
        .await
        .unwrap();
    let raw = cache
        .backend()
        .get(&cache.storage_key("v2").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        envelope::decode(&raw, 1 << 20).unwrap().header.key_version,
        2
    );
    assert_eq!(
        cache.get::<String>("v1").await.unwrap().as_deref(),
        Some("old")
    );
    assert_eq!(
        cache.get::<String>("v2").await.unwrap().as_deref(),
        Some("new")
    );

    keys.destroy_key("default").await.unwrap();
    for k in ["v1", "v2"] {
        assert_eq!(
            cache.get::<String>(k).await.unwrap_err().kind(),
            ErrorKind::KeyDestroyed
        );
        assert_eq!(cache.try_get::<String>(k).await, None);
    }
    // and nothing new can be sealed under the destroyed key id
    assert_eq!(
        cache
            .set("v3", &"x", EntryOptions::default())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::KeyDestroyed
    );
}

#[tokio::test]
async fn unknown_key_version_is_a_typed_error() {
    let keys = LocalKeyManager::generate();
    let cache = encrypted(MemStache::builder(), &keys).build().unwrap();
    cache
        .set("k", &1u32, EntryOptions::default())
        .await
        .unwrap();
    // another process's key ring does not have this key
    let stranger = encrypted(
        MemStache::builder(),
        &LocalKeyManager::generate().with_auto_create(false),
    )
    .backend_arc(Arc::clone(cache.backend()))
    .namespace(cache.namespace())
    .build()
    .unwrap();
    assert_eq!(
        stranger.get::<u32>("k").await.unwrap_err().kind(),
        ErrorKind::KeyNotFound
    );
}

async fn tamper_setup() -> (MemStache, MemoryBackend, LocalKeyManager) {
    let backend = MemoryBackend::new();
    let keys = LocalKeyManager::generate();
    let cache = encrypted(MemStache::builder(), &keys)
        .backend(backend.clone())
        .namespace("secure")
        .build()
        .unwrap();
    (cache, backend, keys)
}

#[tokio::test]
async fn every_bit_flip_of_an_encrypted_entry_is_an_integrity_error() {
    let (cache, backend, _) = tamper_setup().await;
    cache
        .set("k", &"secret value".to_owned(), EntryOptions::default())
        .await
        .unwrap();
    let good = backend.get("secure:k").await.unwrap().unwrap().to_vec();
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut b = good.clone();
            b[i] ^= 1 << bit;
            backend
                .set("secure:k", Bytes::from(b), Expiry::NEVER)
                .await
                .unwrap();
            let e = match cache.get::<String>("k").await {
                Err(e) => e,
                // a flip that moves the deadline into the past reads as expired: a miss
                Ok(None) if (DEADLINE_OFFSET..DEADLINE_OFFSET + 8).contains(&i) => continue,
                Ok(v) => panic!("byte {i} bit {bit}: flipped entry returned as {v:?}"),
            };
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::Integrity
                        | ErrorKind::UnsupportedFormat
                        | ErrorKind::ValueTooLarge
                        | ErrorKind::KeyNotFound
                ),
                "byte {i} bit {bit}: {:?}",
                e.kind()
            );
        }
    }
}

#[tokio::test]
async fn an_extended_deadline_fails_authentication() {
    let (cache, backend, _) = tamper_setup().await;
    cache
        .set(
            "k",
            &"short-lived",
            EntryOptions::new().absolute_expiration(std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let mut b = backend.get("secure:k").await.unwrap().unwrap().to_vec();
    b[DEADLINE_OFFSET..DEADLINE_OFFSET + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    backend
        .set("secure:k", Bytes::from(b), Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(
        cache.get::<String>("k").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
}

#[tokio::test]
async fn swapped_and_replayed_entries_fail_authentication() {
    let (cache, backend, keys) = tamper_setup().await;
    cache
        .set("alice", &"alice's data", EntryOptions::default())
        .await
        .unwrap();
    cache
        .set("bob", &"bob's data", EntryOptions::default())
        .await
        .unwrap();
    // copy alice's entry over bob's
    let alice = backend.get("secure:alice").await.unwrap().unwrap();
    backend
        .set("secure:bob", alice.clone(), Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(
        cache.get::<String>("bob").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    // replay it into another namespace that shares the key ring
    let other = encrypted(MemStache::builder(), &keys)
        .backend(backend.clone())
        .namespace("other")
        .build()
        .unwrap();
    backend
        .set("other:alice", alice, Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(
        other.get::<String>("alice").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(other.try_get::<String>("alice").await, None);
}

#[tokio::test]
async fn planted_plaintext_is_rejected_by_an_encrypting_cache() {
    let (cache, backend, _) = tamper_setup().await;
    // an attacker with write access builds a valid *unencrypted* envelope for the key
    let plain = MemStache::builder()
        .backend(backend.clone())
        .namespace("secure")
        .build()
        .unwrap();
    plain
        .set("k", &"forged".to_owned(), EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(
        cache.get::<String>("k").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    // unless the cache opted in to plaintext entries
    let lenient = encrypted(MemStache::builder(), &LocalKeyManager::generate())
        .backend(backend)
        .namespace("secure")
        .accept_unencrypted(true)
        .build()
        .unwrap();
    assert_eq!(
        lenient.get::<String>("k").await.unwrap().as_deref(),
        Some("forged")
    );
}

#[tokio::test]
async fn a_decompression_bomb_is_rejected_within_the_value_limit() {
    let backend = MemoryBackend::new();
    let cache = MemStache::builder()
        .backend(backend.clone())
        .namespace("bomb")
        .compressor(Zstd::default())
        .max_value_size(1 << 20)
        .build()
        .unwrap();
    // a legitimate 512 KiB compressible value, then the header lies about its size
    cache
        .set("k", &vec![0u8; 512 << 10], EntryOptions::default())
        .await
        .unwrap();
    let mut b = backend.get("bomb:k").await.unwrap().unwrap().to_vec();
    b[40..44].copy_from_slice(&(1u32 << 20).to_le_bytes());
    backend
        .set("bomb:k", Bytes::from(b), Expiry::NEVER)
        .await
        .unwrap();
    let e = cache.get::<Vec<u8>>("k").await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Integrity | ErrorKind::ValueTooLarge),
        "{:?}",
        e.kind()
    );
}

#[tokio::test]
async fn a_replayed_entry_is_not_served_past_its_authenticated_deadline() {
    use memstache::raw::ManualClock;
    let clock = ManualClock::starting_now();
    let backend = MemoryBackend::builder()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let keys = LocalKeyManager::generate();
    let cache = encrypted(MemStache::builder(), &keys)
        .backend(backend.clone())
        .clock(Arc::new(clock.clone()))
        .namespace("replay")
        .build()
        .unwrap();
    cache
        .set(
            "k",
            &"v",
            EntryOptions::new().absolute_expiration(std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let captured = backend.get("replay:k").await.unwrap().unwrap();
    clock.advance(std::time::Duration::from_secs(120));
    assert_eq!(cache.get::<String>("k").await.unwrap(), None);
    // an attacker re-SETs the captured bytes without a TTL
    backend
        .set("replay:k", captured, Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(
        cache.get::<String>("k").await.unwrap(),
        None,
        "served past its deadline"
    );
    let got: Vec<Option<String>> = cache.get_many(&["k"]).await.unwrap();
    assert_eq!(got, vec![None]);
}
