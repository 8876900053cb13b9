use super::*;
use proptest::prelude::*;

fn sample(encrypted: bool) -> Vec<u8> {
    let nonce = [9u8; 12];
    let h = Header {
        flags: if encrypted {
            FLAG_ENCRYPTED
        } else {
            FLAG_CHECKSUM
        },
        serializer: 1,
        compressor: 0,
        cipher: u8::from(encrypted),
        created_at_ms: 1_700_000_000_000,
        deadline_ms: 1_700_000_060_000,
        sliding_ms: 0,
        fingerprint: 0,
        plain_len: 5,
        key_id: if encrypted { "default" } else { "" },
        key_version: u32::from(encrypted),
        nonce: if encrypted { &nonce } else { &[] },
    };
    let mut out = Vec::new();
    h.encode(&mut out);
    out.extend_from_slice(b"hello");
    if encrypted {
        out.extend_from_slice(&[0u8; 16]);
    } else {
        let c = checksum(&out[..h.encoded_len()], "ns:k", b"hello");
        out.extend_from_slice(&c.to_le_bytes());
    }
    out
}

#[test]
fn round_trip_plain_and_encrypted() {
    let plain = sample(false);
    let e = decode(&plain, 1024).unwrap();
    assert_eq!(e.body, b"hello");
    assert_eq!(e.header.deadline_ms, 1_700_000_060_000);
    assert_eq!(e.header_bytes.len(), MIN_HEADER_LEN);
    assert_eq!(e.checksum, Some(checksum(e.header_bytes, "ns:k", e.body)));
    let enc = sample(true);
    let e = decode(&enc, 1024).unwrap();
    assert_eq!(e.header.key_id, "default");
    assert_eq!(e.header.nonce, &[9u8; 12]);
    assert_eq!(e.body.len(), 5 + 16);
}

#[test]
fn fixed_offsets_match_the_docs() {
    let plain = sample(false);
    assert_eq!(&plain[..3], b"MSC");
    assert_eq!(plain[3], FORMAT_VERSION);
    assert_eq!(
        u64::from_le_bytes(
            plain[DEADLINE_OFFSET..DEADLINE_OFFSET + 8]
                .try_into()
                .unwrap()
        ),
        1_700_000_060_000
    );
}

#[test]
fn unknown_version_and_flags_are_unsupported() {
    let mut b = sample(false);
    b[3] = 2;
    assert_eq!(
        decode(&b, 1024).unwrap_err().kind(),
        ErrorKind::UnsupportedFormat
    );
    let mut b = sample(false);
    b[4] |= 0x80;
    assert_eq!(
        decode(&b, 1024).unwrap_err().kind(),
        ErrorKind::UnsupportedFormat
    );
}

#[test]
fn bad_magic_and_truncation_are_integrity_errors() {
    let b = sample(false);
    for cut in 0..b.len() {
        let err = decode(&b[..cut], 1024).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Integrity, "cut at {cut}");
    }
    let mut b = sample(false);
    b[0] = b'X';
    assert_eq!(decode(&b, 1024).unwrap_err().kind(), ErrorKind::Integrity);
}

#[test]
fn oversized_claim_is_rejected_before_allocation() {
    let b = sample(false);
    assert_eq!(decode(&b, 4).unwrap_err().kind(), ErrorKind::ValueTooLarge);
}

#[test]
fn inconsistent_headers_are_rejected() {
    // compressed flag without a compressor id
    let mut b = sample(false);
    b[4] |= FLAG_COMPRESSED;
    assert_eq!(decode(&b, 1024).unwrap_err().kind(), ErrorKind::Integrity);
    // encrypted flag cleared on an encrypted entry
    let mut b = sample(true);
    b[4] = FLAG_CHECKSUM;
    assert_eq!(decode(&b, 1024).unwrap_err().kind(), ErrorKind::Integrity);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes, 1 << 20);
        let _ = peek_expiry(&bytes);
    }

    #[test]
    fn mutated_envelopes_never_panic_and_flips_are_detected(
        encrypted in any::<bool>(),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = sample(encrypted);
        let i = pos.index(b.len());
        b[i] ^= 1 << bit;
        match decode(&b, 1024) {
            Ok(e) => {
                // Structure still parses: for a plain entry the checksum must catch the flip.
                if !encrypted && e.checksum.is_some() {
                    prop_assert_ne!(e.checksum, Some(checksum(e.header_bytes, "ns:k", e.body)));
                }
            }
            Err(err) => prop_assert!(matches!(
                err.kind(),
                ErrorKind::Integrity | ErrorKind::UnsupportedFormat | ErrorKind::ValueTooLarge
            )),
        }
        let c = cut.index(b.len());
        let _ = decode(&b[..c], 1024);
    }
}

/// The checksum is CRC-32 of header ‖ key length (u32 LE) ‖ key ‖ body, whether the prefix is
/// hashed from the stack buffer (short keys) or piecewise (long ones).
#[test]
fn checksum_is_crc32_of_the_concatenation() {
    let header = [7u8; 50];
    let body = b"payload bytes";
    // 106 and 107 straddle the 160-byte buffer with this 50-byte header
    for key_len in [0usize, 1, 12, 105, 106, 107, 300, 1000] {
        let key = "k".repeat(key_len);
        let mut all = header.to_vec();
        all.extend_from_slice(&u32::try_from(key_len).unwrap().to_le_bytes());
        all.extend_from_slice(key.as_bytes());
        all.extend_from_slice(body);
        assert_eq!(
            checksum(&header, &key, body),
            crc32fast::hash(&all),
            "key length {key_len}"
        );
    }
}
