//! The shared compressor conformance suite, run against `Gzip`.

use memstache_gzip::Gzip;
use memstache_testkit::conformance::compressor;

#[test]
fn gzip_default_passes_the_compressor_suite() {
    compressor::run_compressor_suite(&Gzip::default());
}

#[test]
fn gzip_best_level_passes_the_compressor_suite() {
    compressor::run_compressor_suite(&Gzip::new(9).unwrap());
}

/// Level 0 stores instead of compressing, so the "compressible inputs shrink" and bomb checks
/// do not apply; everything about correctness and bounds does.
#[test]
fn gzip_stored_level_is_correct_and_bounded() {
    let gzip = Gzip::new(0).unwrap();
    compressor::appends_to_existing_output(&gzip);
    compressor::max_len_is_exact(&gzip);
    compressor::rejects_truncated_input(&gzip);
    compressor::corrupt_input_never_yields_wrong_data(&gzip);
    compressor::prop_round_trip(&gzip, 32);
    compressor::prop_decompress_is_bounded(&gzip, 64);
}

#[test]
fn gzip_is_send_sync_copy_and_usable_as_a_trait_object() {
    fn check<T: Send + Sync + Copy + std::fmt::Debug + 'static>() {}
    check::<Gzip>();
    let boxed: std::sync::Arc<dyn memstache_core::raw::Compressor> =
        std::sync::Arc::new(Gzip::default());
    assert_eq!(boxed.id(), 1);
}
