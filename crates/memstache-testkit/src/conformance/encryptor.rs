//! Conformance suite for [`Encryptor`] implementations (AEADs).
//!
//! Keys are generated here from a seed, [`key_len`](Encryptor::key_len) bytes long.
//!
//! ```
//! // in an encryptor crate's tests, e.g. memstache-aes:
//! fn conformance(cipher: &dyn memstache_core::raw::Encryptor) {
//!     memstache_testkit::conformance::encryptor::run_encryptor_suite(cipher);
//! }
//! # let _ = conformance;
//! ```

use std::collections::HashSet;

use memstache_core::ErrorKind;
use memstache_core::raw::Encryptor;

use super::{TestRng, contains};

/// Runs every check of this suite.
pub fn run_encryptor_suite(e: &dyn Encryptor) {
    identity(e);
    round_trips(e);
    every_bit_flip_is_rejected(e);
    wrong_aad_is_rejected(e);
    wrong_key_is_rejected(e);
    truncated_input_is_rejected(e);
    nonces_are_fresh(e);
    wrong_lengths_are_errors(e);
}

/// A seeded key of the right length.
pub fn test_key(e: &dyn Encryptor, seed: u64) -> Vec<u8> {
    TestRng::new(seed).bytes(e.key_len())
}

fn nonce(e: &dyn Encryptor) -> Vec<u8> {
    let mut n = vec![0u8; e.nonce_len()];
    e.fill_nonce(&mut n)
        .unwrap_or_else(|err| panic!("{}: fill_nonce failed: {err}", e.name()));
    n
}

/// Seals `plain`, returning ciphertext followed by the tag (the envelope's layout).
pub fn seal(e: &dyn Encryptor, key: &[u8], nonce: &[u8], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    try_seal(e, key, nonce, aad, plain)
        .unwrap_or_else(|err| panic!("{}: seal failed: {err}", e.name()))
}

fn try_seal(
    e: &dyn Encryptor,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plain: &[u8],
) -> memstache_core::Result<Vec<u8>> {
    let mut buf = plain.to_vec();
    let mut tag = vec![0u8; e.tag_len()];
    e.seal_in_place(key, nonce, aad, &mut buf, &mut tag)?;
    buf.extend_from_slice(&tag);
    Ok(buf)
}

/// Opens ciphertext-then-tag in `buf`, truncating it to the plaintext on success (on failure
/// `buf` keeps its length, so callers can check what was left in it).
pub fn open(
    e: &dyn Encryptor,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    buf: &mut Vec<u8>,
) -> memstache_core::Result<()> {
    let len = e.open_in_place(key, nonce, aad, buf)?;
    assert!(
        len <= buf.len(),
        "{}: open_in_place returned a length past the buffer",
        e.name()
    );
    buf.truncate(len);
    Ok(())
}

/// Asserts that opening fails with `Integrity` and leaves no plaintext in the buffer.
fn assert_rejected(
    e: &dyn Encryptor,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    sealed: &[u8],
    plain: &[u8],
    what: &str,
) {
    let mut buf = sealed.to_vec();
    match open(e, key, nonce, aad, &mut buf) {
        Ok(()) => panic!("{}: {what}: a modified entry was accepted", e.name()),
        Err(err) => {
            assert_eq!(
                err.kind(),
                ErrorKind::Integrity,
                "{}: {what}: {err}",
                e.name()
            );
            assert!(
                !contains(&buf, plain),
                "{}: {what}: plaintext left in the buffer after a failed open",
                e.name()
            );
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains(&hex(key)),
                "{}: {what}: the error shows the key",
                e.name()
            );
        }
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `id` is not 0, the name is not empty, lengths are sensible.
pub fn identity(e: &dyn Encryptor) {
    assert_ne!(e.id(), 0, "cipher id 0 means \"none\"");
    assert!(!e.name().is_empty());
    assert!(
        e.key_len() >= 16,
        "{}: keys shorter than 128 bits",
        e.name()
    );
    assert!(
        e.nonce_len() >= 12,
        "{}: nonces shorter than 96 bits",
        e.name()
    );
    assert!(
        e.tag_len() >= 16,
        "{}: tags shorter than 128 bits",
        e.name()
    );
}

/// Seal then open gives the plaintext back, for empty to 1 MiB messages and empty or long AAD;
/// the sealed form is the plaintext's length plus the tag and differs from the plaintext.
pub fn round_trips(e: &dyn Encryptor) {
    let key = test_key(e, 10);
    let mut rng = TestRng::new(11);
    for len in [0usize, 1, 15, 16, 17, 1000, 65_536, 1 << 20] {
        for aad in [&b""[..], &b"header|ns:tenant:key"[..], &rng.bytes(300)[..]] {
            let plain = rng.records(len);
            let n = nonce(e);
            let sealed = seal(e, &key, &n, aad, &plain);
            assert_eq!(sealed.len(), len + e.tag_len(), "{}: len {len}", e.name());
            if len >= 16 {
                assert!(
                    !contains(&sealed, &plain[..16]),
                    "{}: ciphertext shows plaintext",
                    e.name()
                );
            }
            let mut buf = sealed.clone();
            open(e, &key, &n, aad, &mut buf)
                .unwrap_or_else(|err| panic!("{}: open failed for len {len}: {err}", e.name()));
            assert!(
                buf == plain,
                "{}: round trip changed data (len {len})",
                e.name()
            );
        }
    }
}

/// Every single-bit flip of the nonce, the ciphertext and the tag (and of the AAD) of a small
/// message is rejected with `Integrity`, leaving no plaintext behind.
pub fn every_bit_flip_is_rejected(e: &dyn Encryptor) {
    let key = test_key(e, 12);
    let plain = b"attack at dawn!!".to_vec(); // 16 bytes
    let aad = b"hdr:key".to_vec();
    let n = nonce(e);
    let sealed = seal(e, &key, &n, &aad, &plain);
    for bit in 0..n.len() * 8 {
        let mut bad = n.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_rejected(
            e,
            &key,
            &bad,
            &aad,
            &sealed,
            &plain,
            &format!("nonce bit {bit}"),
        );
    }
    for bit in 0..sealed.len() * 8 {
        let mut bad = sealed.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let what = if bit / 8 < plain.len() {
            "ciphertext"
        } else {
            "tag"
        };
        assert_rejected(
            e,
            &key,
            &n,
            &aad,
            &bad,
            &plain,
            &format!("{what} bit {bit}"),
        );
    }
    for bit in 0..aad.len() * 8 {
        let mut bad = aad.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_rejected(
            e,
            &key,
            &n,
            &bad,
            &sealed,
            &plain,
            &format!("aad bit {bit}"),
        );
    }
}

/// Another AAD (another storage key or header), a shorter or longer one, or none: `Integrity`.
pub fn wrong_aad_is_rejected(e: &dyn Encryptor) {
    let key = test_key(e, 13);
    let plain = TestRng::new(14).records(500);
    let aad = b"v1|ns=orders|tenant=acme|key=user:42".to_vec();
    let n = nonce(e);
    let sealed = seal(e, &key, &n, &aad, &plain);
    let others: Vec<Vec<u8>> = vec![
        b"v1|ns=orders|tenant=evil|key=user:42".to_vec(),
        b"v1|ns=orders|tenant=acme|key=user:43".to_vec(),
        aad[..aad.len() - 1].to_vec(),
        [&aad[..], b"x"].concat(),
        Vec::new(),
    ];
    for (i, other) in others.iter().enumerate() {
        assert_rejected(
            e,
            &key,
            &n,
            other,
            &sealed,
            &plain,
            &format!("other aad #{i}"),
        );
    }
}

/// Another key (random, or the right key with one bit flipped): `Integrity`.
pub fn wrong_key_is_rejected(e: &dyn Encryptor) {
    let key = test_key(e, 15);
    let plain = TestRng::new(16).records(200);
    let n = nonce(e);
    let sealed = seal(e, &key, &n, b"aad", &plain);
    let mut flipped = key.clone();
    flipped[0] ^= 1;
    assert_rejected(
        e,
        &test_key(e, 17),
        &n,
        b"aad",
        &sealed,
        &plain,
        "random key",
    );
    assert_rejected(
        e,
        &flipped,
        &n,
        b"aad",
        &sealed,
        &plain,
        "key with one bit flipped",
    );
}

/// Sealed data cut short (even below the tag length), or extended: `Integrity`, no panic.
pub fn truncated_input_is_rejected(e: &dyn Encryptor) {
    let key = test_key(e, 18);
    let plain = b"0123456789abcdefXYZ".to_vec();
    let n = nonce(e);
    let sealed = seal(e, &key, &n, b"", &plain);
    for cut in 0..sealed.len() {
        let mut buf = sealed[..cut].to_vec();
        let err = open(e, &key, &n, b"", &mut buf).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Integrity,
            "{}: cut at {cut}",
            e.name()
        );
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert_rejected(e, &key, &n, b"", &longer, &plain, "one extra byte");
}

/// `fill_nonce` gives a different nonce every call (1000 calls, no repeat, not all zero).
pub fn nonces_are_fresh(e: &dyn Encryptor) {
    let mut seen = HashSet::new();
    for _ in 0..1000 {
        let n = nonce(e);
        assert!(n.iter().any(|&b| b != 0), "{}: all-zero nonce", e.name());
        assert!(seen.insert(n), "{}: fill_nonce repeated a nonce", e.name());
    }
    // and the same plaintext sealed twice looks different
    let key = test_key(e, 19);
    let a = seal(e, &key, &nonce(e), b"", b"same value");
    let b = seal(e, &key, &nonce(e), b"", b"same value");
    assert_ne!(
        a,
        b,
        "{}: equal plaintexts give equal ciphertexts",
        e.name()
    );
}

/// Keys, nonces and tags of the wrong length are `Crypto` errors, never panics.
pub fn wrong_lengths_are_errors(e: &dyn Encryptor) {
    let key = test_key(e, 20);
    let n = nonce(e);
    let crypto = |r: memstache_core::Result<Vec<u8>>, what: &str| match r {
        Ok(_) => panic!("{}: {what} was accepted", e.name()),
        Err(err) => assert_eq!(err.kind(), ErrorKind::Crypto, "{}: {what}: {err}", e.name()),
    };
    for bad_len in [0, e.key_len() - 1, e.key_len() + 1] {
        crypto(
            try_seal(e, &vec![1u8; bad_len], &n, b"", b"value"),
            "a key of the wrong length",
        );
    }
    let mut short_nonce = vec![0u8; e.nonce_len() - 1];
    assert!(
        e.fill_nonce(&mut short_nonce).is_err(),
        "{}: fill_nonce of a short buffer",
        e.name()
    );
    crypto(
        try_seal(e, &key, &short_nonce, b"", b"value"),
        "a short nonce",
    );
    let mut data = b"value".to_vec();
    let mut short_tag = vec![0u8; e.tag_len() - 1];
    let r = e
        .seal_in_place(&key, &n, b"", &mut data, &mut short_tag)
        .map(|()| Vec::new());
    crypto(r, "a short tag buffer");

    let sealed = seal(e, &key, &n, b"", b"value");
    let mut buf = sealed.clone();
    crypto(
        open(e, &key, &short_nonce, b"", &mut buf).map(|()| Vec::new()),
        "open with a short nonce",
    );
    let mut buf = sealed;
    crypto(
        open(e, &key[..key.len() - 1], &n, b"", &mut buf).map(|()| Vec::new()),
        "open with a short key",
    );
}
