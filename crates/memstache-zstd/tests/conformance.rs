//! The shared compressor conformance suite, run against `Zstd`.

use memstache_testkit::conformance::compressor;
use memstache_zstd::Zstd;

#[test]
fn zstd_default_passes_the_compressor_suite() {
    compressor::run_compressor_suite(&Zstd::default());
}

#[test]
fn zstd_level_19_passes_the_compressor_suite() {
    compressor::run_compressor_suite(&Zstd::new(19).unwrap());
}

#[test]
fn zstd_fast_level_passes_the_compressor_suite() {
    compressor::run_compressor_suite(&Zstd::new(-5).unwrap());
}

/// Without the content checksum, flipped literal bytes can decode to different data: that is
/// exactly what the checksum is for, so only the bound and truncation checks apply here.
#[test]
fn zstd_without_checksum_is_still_bounded() {
    let zstd = Zstd::default().with_checksum(false);
    compressor::round_trips(&zstd);
    compressor::max_len_is_exact(&zstd);
    compressor::rejects_bombs(&zstd);
    compressor::rejects_truncated_input(&zstd);
    compressor::prop_round_trip(&zstd, 32);
    compressor::prop_decompress_is_bounded(&zstd, 64);
}
