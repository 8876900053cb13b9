//! The byte-value fast paths against the generic serde paths: the same bytes written, each
//! other's output decoded, and the same decision (value, or error of the same kind) on any
//! input, valid, truncated, extended or garbage.

use bytes::Bytes;
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_bytes::ByteBuf;

use crate::raw::Serializer;
use crate::serializer::{Builtin, Json, MessagePack, Postcard};
use crate::{DEFAULT_MAX_NESTING_DEPTH, ErrorKind};

/// Each built-in serializer, typed and through its `Serializer` implementation.
fn formats() -> [(Builtin, &'static dyn Serializer); 3] {
    [
        (Builtin::Postcard, &Postcard),
        (Builtin::MessagePack, &MessagePack),
        (Builtin::Json, &Json),
    ]
}

fn typed<T: Serialize + ?Sized>(b: Builtin, v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    b.write(v, &mut out).expect("typed write");
    out
}

fn erased<T: Serialize>(s: &dyn Serializer, v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    s.serialize(v, &mut out).expect("erased write");
    out
}

fn read<T: DeserializeOwned>(b: Builtin, bytes: &[u8]) -> crate::Result<T> {
    b.read(bytes, DEFAULT_MAX_NESTING_DEPTH)
}

fn generic_read<T: DeserializeOwned>(s: &dyn Serializer, bytes: &[u8]) -> crate::Result<T> {
    crate::cache::deserialize_for_tests(s, bytes)
}

/// The typed read and the generic read decide alike on `bytes`.
fn same_decision<T: DeserializeOwned + PartialEq + std::fmt::Debug>(
    b: Builtin,
    s: &dyn Serializer,
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    match (read::<T>(b, bytes), generic_read::<T>(s, bytes)) {
        (Ok(a), Ok(g)) => prop_assert_eq!(a, g, "{}", s.name()),
        (Err(a), Err(g)) => {
            prop_assert_eq!(a.kind(), g.kind(), "{}", s.name());
            prop_assert_eq!(a.kind(), ErrorKind::Serialization);
        }
        (a, g) => prop_assert!(false, "{}: typed {:?} but generic {:?}", s.name(), a, g),
    }
    Ok(())
}

/// Every check of one byte value, for every format and byte type.
fn check_value(v: &[u8]) -> Result<(), TestCaseError> {
    let vec = v.to_vec();
    let bytes = Bytes::copy_from_slice(v);
    let buf = ByteBuf::from(v.to_vec());
    for (b, s) in formats() {
        // same bytes as the generic path, for each type
        let written = typed(b, &vec);
        prop_assert_eq!(&written, &erased(s, &vec), "Vec<u8> {}", s.name());
        prop_assert_eq!(&typed(b, v), &written, "[u8] {}", s.name());
        let as_bytes = typed(b, &bytes);
        prop_assert_eq!(&as_bytes, &erased(s, &bytes), "Bytes {}", s.name());
        prop_assert_eq!(&typed(b, &buf), &erased(s, &buf), "ByteBuf {}", s.name());
        // each path decodes the other's output
        prop_assert_eq!(
            &read::<Vec<u8>>(b, &erased(s, &vec)).expect("typed read"),
            &vec
        );
        prop_assert_eq!(
            &generic_read::<Vec<u8>>(s, &written).expect("generic read"),
            &vec
        );
        prop_assert_eq!(&read::<Bytes>(b, &as_bytes).expect("typed read"), &bytes);
        prop_assert_eq!(
            &generic_read::<ByteBuf>(s, &as_bytes).expect("generic read"),
            &buf
        );
        // the fast reader takes exactly what the fast writer wrote
        let fast = match b {
            Builtin::Postcard => super::postcard::read(&written),
            Builtin::MessagePack => super::msgpack::read(&written),
            Builtin::Json => super::json::read(&written),
        };
        prop_assert_eq!(fast.as_deref(), Some(v), "fast read {}", s.name());
        // cut short, one byte more, one byte changed: both paths still decide alike
        for cut in [0, written.len() / 2, written.len().saturating_sub(1)] {
            same_decision::<Vec<u8>>(b, s, &written[..cut])?;
        }
        let mut longer = written.clone();
        longer.push(0);
        same_decision::<Vec<u8>>(b, s, &longer)?;
        if !written.is_empty() {
            let mut changed = written.clone();
            let i = v.len() % written.len();
            changed[i] ^= 0x5a;
            same_decision::<Vec<u8>>(b, s, &changed)?;
            same_decision::<Bytes>(b, s, &changed)?;
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn fast_and_generic_paths_agree(v in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_value(&v)?;
    }

    #[test]
    fn any_input_gets_the_same_decision(input in proptest::collection::vec(any::<u8>(), 0..64)) {
        for (b, s) in formats() {
            same_decision::<Vec<u8>>(b, s, &input)?;
            same_decision::<Bytes>(b, s, &input)?;
            same_decision::<ByteBuf>(b, s, &input)?;
            same_decision::<String>(b, s, &input)?;
        }
    }

    /// Inputs near the fast forms (an array of small numbers in some encoding), where a fast
    /// reader that accepted too much would show.
    #[test]
    fn near_misses_get_the_same_decision(
        v in proptest::collection::vec(any::<u8>(), 0..40),
        at in any::<prop::sample::Index>(),
        with in any::<u8>(),
    ) {
        for (b, s) in formats() {
            let mut bytes = typed(b, &v);
            let i = at.index(bytes.len());
            bytes[i] = with;
            same_decision::<Vec<u8>>(b, s, &bytes)?;
        }
    }
}

/// The boundaries of every length encoding (postcard varints, MessagePack fixarray / array16 /
/// array32), and a large value.
#[test]
fn lengths_at_every_boundary() {
    for len in [
        0usize,
        1,
        15,
        16,
        127,
        128,
        255,
        256,
        16_383,
        16_384,
        65_535,
        65_536,
        1 << 20,
    ] {
        let v: Vec<u8> = (0..len).map(|i| (i * 131 % 256) as u8).collect();
        check_value(&v).unwrap_or_else(|e| panic!("length {len}: {e}"));
    }
}

/// Forms the generic readers accept and the fast ones leave to them: same values.
#[test]
fn other_encodings_still_decode() {
    // MessagePack: an array16 of two, 5 as a uint16, 200 as a uint8
    let m = [0xdc, 0x00, 0x02, 0xcd, 0x00, 0x05, 0xcc, 200];
    assert_eq!(
        read::<Vec<u8>>(Builtin::MessagePack, &m).unwrap(),
        vec![5, 200]
    );
    assert!(super::msgpack::read(&m).is_none());
    // MessagePack: bin (how `serialize_bytes` writes), which rmp-serde also reads as a sequence
    let bin = [0xc4, 2, 7, 250];
    assert_eq!(
        read::<Vec<u8>>(Builtin::MessagePack, &bin).unwrap(),
        vec![7, 250]
    );
    assert!(super::msgpack::read(&bin).is_none());
    // JSON: whitespace, and a trailing newline
    let j = b"[ 1, 2 ,3]\n";
    assert_eq!(read::<Vec<u8>>(Builtin::Json, j).unwrap(), vec![1, 2, 3]);
    assert!(super::json::read(j).is_none());
    // postcard: a non-minimal varint length
    let p = [0x82, 0x00, 7, 8];
    assert_eq!(
        read::<Vec<u8>>(Builtin::Postcard, &p).unwrap(),
        generic_read::<Vec<u8>>(&Postcard, &p).unwrap()
    );
}

/// Values the generic readers reject are typed errors on the typed path too.
#[test]
fn corrupt_values_are_typed_errors() {
    let cases: [(Builtin, &[u8]); 9] = [
        (Builtin::Postcard, &[5, 1, 2]),             // length past the end
        (Builtin::Postcard, &[1, 1, 2]),             // trailing byte
        (Builtin::Postcard, &[0xff; 11]),            // varint too long
        (Builtin::MessagePack, &[0x93, 1, 2]),       // truncated
        (Builtin::MessagePack, &[0x91, 0xcd, 1, 0]), // 256 is not a u8
        (Builtin::MessagePack, &[0x91, 0xff]),       // -1 is not a u8
        (Builtin::Json, b"[1,2"),                    // truncated
        (Builtin::Json, b"[256]"),                   // not a u8
        (Builtin::Json, b"[01]"),                    // leading zero
    ];
    for (b, input) in cases {
        let e = read::<Vec<u8>>(b, input).expect_err("corrupt input must be an error");
        assert_eq!(e.kind(), ErrorKind::Serialization, "{b:?} {input:?}");
    }
}
