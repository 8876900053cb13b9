//! Corrupted, tampered, copied and unknown entries: a typed error from `get`, `None` from
//! `try_get`, never data.

use bytes::Bytes;
use memstache_core::envelope;
use memstache_core::raw::Expiry;
use memstache_core::{EntryOptions, ErrorKind};
use serde::{Deserialize, Serialize};

use super::Harness;
use super::basic::raw;

async fn stored(h: &dyn Harness, sk: &str) -> Vec<u8> {
    raw(h)
        .get(sk)
        .await
        .unwrap()
        .expect("entry is stored")
        .to_vec()
}

async fn put(h: &dyn Harness, sk: &str, bytes: Vec<u8>) {
    raw(h)
        .set(sk, Bytes::from(bytes), Expiry::NEVER)
        .await
        .unwrap();
}

/// Bytes that are not an envelope at all.
pub async fn corrupt_entry_is_integrity_error(h: &dyn Harness) {
    let c = h.cache();
    put(
        h,
        &c.storage_key("k").unwrap(),
        b"definitely not an envelope".to_vec(),
    )
    .await;
    assert_eq!(
        c.get::<u32>("k").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(c.try_get::<u32>("k").await, None);
    // get_or_set heals it: the read error counts as a miss and the loaded value replaces it
    let v = c
        .get_or_set("k", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(9u32)
        })
        .await
        .unwrap();
    assert_eq!(v, 9);
    assert_eq!(c.get::<u32>("k").await.unwrap(), Some(9));
}

/// Every single-bit flip anywhere in a stored entry is detected (checksum or header checks);
/// none is ever returned as a value. Header claims are judged only after the checksum or AEAD
/// verified them, so a flip reads as `Integrity`, except in the two fields a reader must
/// understand before it can verify anything: the format version (byte 3) and the cipher id
/// (byte 7) are `UnsupportedFormat`; a flipped key version of an encrypted entry is the key
/// manager's `KeyNotFound`.
pub async fn flipped_byte_is_detected(h: &dyn Harness) {
    let c = h.cache();
    c.set("k", &"payload".to_owned(), EntryOptions::default())
        .await
        .unwrap();
    let sk = c.storage_key("k").unwrap();
    let good = stored(h, &sk).await;
    for i in 0..good.len() {
        for bit in [0u8, 3, 7] {
            let mut b = good.clone();
            b[i] ^= 1 << bit;
            put(h, &sk, b).await;
            // with a local tier, this node still holds its own write (the store was edited
            // behind its back, not written through a cache): the next read that reaches the
            // store is the one that must catch it
            c.clear_local_tier();
            match c.get::<String>("k").await {
                Err(e) => assert!(
                    match e.kind() {
                        ErrorKind::Integrity => true,
                        // format version, cipher id: cannot be verified by this reader
                        ErrorKind::UnsupportedFormat => i == 3 || i == 7,
                        // a flipped key version names a version that does not exist
                        ErrorKind::KeyNotFound => good[4] & envelope::FLAG_ENCRYPTED != 0,
                        _ => false,
                    },
                    "byte {i} bit {bit}: unexpected kind {:?}",
                    e.kind()
                ),
                // a flip that puts the deadline in the past reads as expired: a miss, not data
                Ok(None)
                    if (envelope::DEADLINE_OFFSET..envelope::DEADLINE_OFFSET + 8).contains(&i) => {}
                Ok(v) => panic!("byte {i} bit {bit}: a flipped entry was returned as {v:?}"),
            }
        }
    }
}

/// An entry copied to another key is rejected (the checksum binds the storage key).
pub async fn copied_entry_is_detected(h: &dyn Harness) {
    let c = h.cache();
    c.set("from", &123u64, EntryOptions::default())
        .await
        .unwrap();
    let bytes = stored(h, &c.storage_key("from").unwrap()).await;
    put(h, &c.storage_key("to").unwrap(), bytes.clone()).await;
    assert_eq!(
        c.get::<u64>("to").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    // and into another namespace
    let other = h.cache();
    put(h, &other.storage_key("from").unwrap(), bytes).await;
    assert_eq!(
        other.get::<u64>("from").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
    assert_eq!(c.get::<u64>("from").await.unwrap(), Some(123));
}

/// An envelope of a future format version is `UnsupportedFormat`.
pub async fn unknown_format_version_is_unsupported(h: &dyn Harness) {
    let c = h.cache();
    c.set("k", &1u8, EntryOptions::default()).await.unwrap();
    let sk = c.storage_key("k").unwrap();
    let mut b = stored(h, &sk).await;
    b[3] = 9;
    put(h, &sk, b).await;
    c.clear_local_tier(); // see `flipped_byte_is_detected`
    let e = c.get::<u8>("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnsupportedFormat);
    assert!(!e.is_temporary());
    assert_eq!(c.try_get::<u8>("k").await, None);
}

/// Every truncation of a stored entry is an `Integrity` error.
pub async fn truncated_entry_is_integrity_error(h: &dyn Harness) {
    let c = h.cache();
    c.set("k", &vec![5u16; 40], EntryOptions::default())
        .await
        .unwrap();
    let sk = c.storage_key("k").unwrap();
    let good = stored(h, &sk).await;
    for cut in [0, 1, 3, 10, 49, 50, good.len() / 2, good.len() - 1] {
        put(h, &sk, good[..cut].to_vec()).await;
        c.clear_local_tier(); // see `flipped_byte_is_detected`
        let e = c.get::<Vec<u16>>("k").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "cut at {cut}");
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Celsius(f64);
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Fahrenheit(f64);

/// With `type_check`, a value read as another type of the same shape is `SchemaMismatch`.
pub async fn type_check_rejects_other_type(h: &dyn Harness) {
    let c = h.builder().type_check(true).build().unwrap();
    c.set("t", &Celsius(21.5), EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(c.get::<Celsius>("t").await.unwrap(), Some(Celsius(21.5)));
    let e = c.get::<Fahrenheit>("t").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
}
