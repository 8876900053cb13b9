//! The shared compressor conformance suite, run against `Zstd`.

use memstache_core::raw::Compressor;
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

#[test]
fn zstd_is_send_sync_copy_and_usable_as_a_trait_object() {
    fn check<T: Send + Sync + Copy + std::fmt::Debug + 'static>() {}
    check::<Zstd>();
    let boxed: std::sync::Arc<dyn memstache_core::raw::Compressor> =
        std::sync::Arc::new(Zstd::default());
    assert_eq!(boxed.id(), 2);
}

/// Compression on many threads at once: each thread's context is its own.
#[test]
fn zstd_contexts_are_per_thread() {
    let zstd = Zstd::default();
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut rng = memstache_testkit::conformance::TestRng::new(t);
                for i in 0..200 {
                    let v = rng.records(100 + i * 37);
                    let mut packed = Vec::new();
                    zstd.compress(&v, &mut packed).unwrap();
                    let mut out = Vec::new();
                    zstd.decompress(&packed, v.len(), &mut out).unwrap();
                    assert!(out == v);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
