//! Conformance suite for [`Compressor`] implementations.
//!
//! ```no_run
//! # #[derive(Debug)] struct MyCompressor;
//! # impl memstache_core::raw::Compressor for MyCompressor {
//! #     fn id(&self) -> u8 { 200 }
//! #     fn name(&self) -> &'static str { "mine" }
//! #     fn compress(&self, i: &[u8], o: &mut Vec<u8>) -> memstache_core::Result<()> { o.extend_from_slice(i); Ok(()) }
//! #     fn decompress(&self, i: &[u8], _m: usize, o: &mut Vec<u8>) -> memstache_core::Result<()> { o.extend_from_slice(i); Ok(()) }
//! # }
//! // in the plugin's tests:
//! memstache_testkit::conformance::compressor::run_compressor_suite(&MyCompressor);
//! ```

use memstache_core::ErrorKind;
use memstache_core::raw::Compressor;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::TestRng;

/// The largest input the round-trip checks use.
pub const MAX_INPUT: usize = 1 << 20;

/// Runs every check of this suite (a few seconds in a debug build).
pub fn run_compressor_suite(c: &dyn Compressor) {
    identity(c);
    round_trips(c);
    appends_to_existing_output(c);
    max_len_is_exact(c);
    rejects_bombs(c);
    rejects_truncated_input(c);
    corrupt_input_never_yields_wrong_data(c);
    rejects_garbage(c);
    prop_round_trip(c, 64);
    prop_decompress_is_bounded(c, 256);
}

fn compress(c: &dyn Compressor, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    c.compress(input, &mut out)
        .unwrap_or_else(|e| panic!("{}: compress failed: {e}", c.name()));
    out
}

/// Decompresses `packed` with `max_len` into a fresh buffer.
fn decompress(
    c: &dyn Compressor,
    packed: &[u8],
    max_len: usize,
) -> memstache_core::Result<Vec<u8>> {
    let mut out = Vec::new();
    c.decompress(packed, max_len, &mut out).map(|()| out)
}

/// `id` is not 0 and `name` is not empty.
pub fn identity(c: &dyn Compressor) {
    assert_ne!(c.id(), 0, "compressor id 0 means \"none\"");
    assert!(!c.name().is_empty());
}

/// Empty, tiny, incompressible, highly compressible, realistic and maximum-size inputs come back
/// unchanged; compressible inputs shrink.
pub fn round_trips(c: &dyn Compressor) {
    let mut rng = TestRng::new(1);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("one byte", vec![0x42]),
        ("tiny", b"hi!".to_vec()),
        ("random 4 KiB", rng.bytes(4096)),
        ("random 256 KiB", rng.bytes(256 << 10)),
        ("zeros 1 MiB", vec![0; MAX_INPUT]),
        ("records 1 KiB", rng.records(1024)),
        ("records 64 KiB", rng.records(64 << 10)),
        ("records max", rng.records(MAX_INPUT)),
    ];
    for (what, input) in &cases {
        let packed = compress(c, input);
        let back = decompress(c, &packed, input.len())
            .unwrap_or_else(|e| panic!("{} {what}: decompress failed: {e}", c.name()));
        assert!(
            back == *input,
            "{} {what}: round trip changed the data",
            c.name()
        );
        if what.starts_with("zeros") || what.starts_with("records 64") {
            assert!(
                packed.len() < input.len() / 2,
                "{} {what}: {} -> {} bytes",
                c.name(),
                input.len(),
                packed.len()
            );
        }
    }
}

/// `compress` and `decompress` append to `out` and keep what was there.
pub fn appends_to_existing_output(c: &dyn Compressor) {
    let input = TestRng::new(2).records(3000);
    let mut packed = b"prefix".to_vec();
    c.compress(&input, &mut packed).unwrap();
    assert_eq!(
        &packed[..6],
        b"prefix",
        "{}: compress overwrote output",
        c.name()
    );
    let mut out = b"existing".to_vec();
    c.decompress(&packed[6..], input.len(), &mut out).unwrap();
    assert_eq!(
        &out[..8],
        b"existing",
        "{}: decompress overwrote output",
        c.name()
    );
    assert!(out[8..] == input[..], "{}: appended data differs", c.name());
    // the bound is about the appended part only
    let mut out = vec![7u8; 10_000];
    c.decompress(&packed[6..], input.len(), &mut out).unwrap();
    assert_eq!(out.len(), 10_000 + input.len());
}

/// A value of exactly `max_len` bytes decompresses; one byte less of budget is
/// [`ErrorKind::ValueTooLarge`].
pub fn max_len_is_exact(c: &dyn Compressor) {
    for len in [1usize, 1000, 100_000] {
        let input = TestRng::new(len as u64).records(len);
        let packed = compress(c, &input);
        assert!(
            decompress(c, &packed, len).is_ok(),
            "{}: len {len}",
            c.name()
        );
        let err = decompress(c, &packed, len - 1).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::ValueTooLarge,
            "{}: len {len}: {err}",
            c.name()
        );
    }
    assert_eq!(decompress(c, &compress(c, b""), 0).unwrap(), b"");
}

/// 64 MiB of zeros, compressed, read with a 1 MiB budget: [`ErrorKind::ValueTooLarge`], the
/// output buffer never grew much past the budget, and what `out` held before is intact.
pub fn rejects_bombs(c: &dyn Compressor) {
    let max_len = 1 << 20;
    let bomb = {
        let zeros = vec![0u8; 64 << 20];
        compress(c, &zeros)
    };
    assert!(
        bomb.len() < 1 << 20,
        "{}: 64 MiB of zeros compressed to {}",
        c.name(),
        bomb.len()
    );
    let mut out = b"before".to_vec();
    let err = c.decompress(&bomb, max_len, &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge, "{}: {err}", c.name());
    assert_eq!(&out[..6], b"before");
    assert!(
        out.capacity() <= max_len + (64 << 10),
        "{}: the output grew to {} bytes for a {max_len}-byte budget",
        c.name(),
        out.capacity()
    );
}

/// Every strict prefix of a valid stream is [`ErrorKind::Compression`].
pub fn rejects_truncated_input(c: &dyn Compressor) {
    let input = TestRng::new(3).records(2000);
    let packed = compress(c, &input);
    for cut in 0..packed.len() {
        match decompress(c, &packed[..cut], 1 << 20) {
            Ok(_) => panic!(
                "{}: a stream truncated to {cut} bytes was accepted",
                c.name()
            ),
            Err(e) => assert_eq!(
                e.kind(),
                ErrorKind::Compression,
                "{}: cut {cut}: {e}",
                c.name()
            ),
        }
    }
}

/// Flipping bits anywhere in a valid stream never yields different data: the result is an
/// error of kind `Compression` (or `ValueTooLarge`), or exactly the original data (for bits the
/// format ignores, such as a gzip timestamp).
pub fn corrupt_input_never_yields_wrong_data(c: &dyn Compressor) {
    let mut rng = TestRng::new(4);
    let mut input = rng.records(1500);
    input.extend_from_slice(&rng.bytes(200)); // raw literals: only a checksum can catch these
    let packed = compress(c, &input);
    for i in 0..packed.len() {
        for mask in [0x01u8, 0x10, 0x80, 0xff] {
            let mut bad = packed.clone();
            bad[i] ^= mask;
            match decompress(c, &bad, 1 << 20) {
                Ok(out) => assert!(
                    out == input,
                    "{}: flipping {mask:#04x} at byte {i} of {} decoded to different data",
                    c.name(),
                    packed.len()
                ),
                Err(e) => assert!(
                    matches!(e.kind(), ErrorKind::Compression | ErrorKind::ValueTooLarge),
                    "{}: byte {i} mask {mask:#04x}: unexpected kind {e}",
                    c.name()
                ),
            }
        }
    }
}

/// Random bytes are [`ErrorKind::Compression`].
pub fn rejects_garbage(c: &dyn Compressor) {
    let mut rng = TestRng::new(5);
    for len in [1usize, 2, 7, 64, 1000, 100_000] {
        let garbage = rng.bytes(len);
        let err = decompress(c, &garbage, 1 << 20).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::Compression,
            "{}: {len} random bytes",
            c.name()
        );
    }
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Property: any input (random or repetitive, up to 16 KiB) round-trips, with `max_len` equal
/// to its length.
pub fn prop_round_trip(c: &dyn Compressor, cases: u32) {
    let random = prop::collection::vec(any::<u8>(), 0..16_384);
    let repetitive = (prop::collection::vec(any::<u8>(), 1..32), 0usize..2000)
        .prop_map(|(unit, times)| unit.repeat(times));
    let strategy = prop_oneof![random, repetitive];
    let result = runner(cases).run(&strategy, |input| {
        let mut packed = Vec::new();
        c.compress(&input, &mut packed)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut out = Vec::new();
        c.decompress(&packed, input.len(), &mut out)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(
            out == input,
            "round trip changed {} bytes of input",
            input.len()
        );
        Ok(())
    });
    if let Err(e) = result {
        panic!("{}: round-trip property failed: {e}", c.name());
    }
}

/// Property: decompressing arbitrary bytes, or a valid stream with arbitrary bytes overwritten,
/// never panics, and a success never produces more than `max_len` bytes.
pub fn prop_decompress_is_bounded(c: &dyn Compressor, cases: u32) {
    let valid = compress(c, &TestRng::new(6).records(5000));
    let max_len = 4096; // smaller than the valid stream's content: it must not sneak past
    let arbitrary = prop::collection::vec(any::<u8>(), 0..2048);
    let mutated = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
        .prop_map(move |edits| {
            let mut v = valid.clone();
            for (at, byte) in edits {
                let i = at.index(v.len());
                v[i] = byte;
            }
            v
        });
    let strategy = prop_oneof![arbitrary, mutated];
    let result = runner(cases).run(&strategy, |input| {
        let mut out = Vec::new();
        match c.decompress(&input, max_len, &mut out) {
            Ok(()) => prop_assert!(out.len() <= max_len),
            Err(e) => prop_assert!(
                matches!(e.kind(), ErrorKind::Compression | ErrorKind::ValueTooLarge),
                "unexpected error kind {}",
                e.kind()
            ),
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{}: bounded-decompress property failed: {e}", c.name());
    }
}
