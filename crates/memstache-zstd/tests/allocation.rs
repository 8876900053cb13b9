//! Peak heap allocation while reading forged zstd frames, counted by a global allocator.
//!
//! Each read is done as the cache does it: the output `Vec` is reserved for the serialized
//! length the envelope header declares (at most the max value size, [`MAX`] here), then
//! `decompress` is called with that length as its bound. The promise (docs/security.md): a
//! read never holds more than twice the max value size, and a forged frame is a typed error.
//!
//! libzstd allocates its contexts and windows with the C allocator, which a Rust global
//! allocator does not see; the unit tests in `src/zstd/tests.rs` measure the thread's
//! decompression context (`ZSTD_sizeof_DCtx`) for that part.

use std::sync::Mutex;

use memstache_core::ErrorKind;
use memstache_core::raw::Compressor;
use memstache_zstd::Zstd;
use peak_alloc::PeakAlloc;
use zstd::zstd_safe::{CCtx, CParameter};

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// One measurement at a time: the counters are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// The max value size of these reads.
const MAX: usize = 4 << 20;

/// What a decoder may allocate besides the output (its own state).
const SLACK: usize = 256 << 10;

/// Runs `f` and returns its result and the peak of live heap bytes above what was live
/// before it.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = ALLOC.current_usage();
    ALLOC.reset_peak_usage();
    let r = f();
    let peak = ALLOC.peak_usage().saturating_sub(base);
    eprintln!("peak: {peak} bytes"); // shown with --nocapture
    (r, peak)
}

/// Reads `frame` as the cache does: room reserved for `declared`, bounded by it.
fn read(frame: &[u8], declared: usize) -> (memstache_core::Result<Vec<u8>>, usize) {
    measure(|| {
        let mut out = Vec::with_capacity(declared);
        Zstd::default()
            .decompress(frame, declared, &mut out)
            .map(|()| out)
    })
}

/// A frame of `data` with the given content-size flag and window log.
fn frame(data: &[u8], content_size: bool, window_log: Option<u32>) -> Vec<u8> {
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::CompressionLevel(1)).unwrap();
    cctx.set_parameter(CParameter::ContentSizeFlag(content_size))
        .unwrap();
    if let Some(w) = window_log {
        cctx.set_parameter(CParameter::WindowLog(w)).unwrap();
    }
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
    cctx.compress2(&mut out, data).unwrap();
    out
}

/// Compresses `len` zeros (a bomb: a few KiB for many MiB).
fn zeros_frame(len: usize, content_size: bool, window_log: Option<u32>) -> Vec<u8> {
    frame(&vec![0u8; len], content_size, window_log)
}

#[test]
fn a_frame_without_declared_size_is_refused_within_the_bound() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // 64 MiB of zeros in a frame that does not say how large it is, with a window of MAX
    let bomb = zeros_frame(64 << 20, false, Some(22));
    let (r, peak) = read(&bomb, MAX);
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression, "{err}");
    // measured: 8,388,609 bytes (2 x MAX + 1: the room, then a buffer of MAX + 1 to grow into)
    // before the fix, plus libzstd's 4 MiB window on the C heap; 4,194,304 (the room) after
    assert!(
        peak < 2 * MAX,
        "peak {peak} bytes for a max value size of {MAX}"
    );
    assert!(peak <= MAX + SLACK, "peak {peak}");
}

#[test]
fn a_frame_declaring_more_than_the_bound_is_refused_before_decoding() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let bomb = zeros_frame(64 << 20, true, None);
    let (r, peak) = read(&bomb, MAX);
    assert_eq!(r.unwrap_err().kind(), ErrorKind::ValueTooLarge);
    assert!(peak <= MAX + SLACK, "peak {peak}");
    // and a caller that reserved nothing gets nothing allocated at all
    let (r, peak) = measure(|| Zstd::default().decompress(&bomb, MAX, &mut Vec::new()));
    assert_eq!(r.unwrap_err().kind(), ErrorKind::ValueTooLarge);
    assert!(peak < SLACK, "peak {peak}");
}

#[test]
fn a_frame_asking_for_a_huge_window_is_refused() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // 64 KiB of content; libzstd fits the window to it, so forge the header to ask for 2^30
    let data: Vec<u8> = (0..64u32 << 10).map(|i| (i * 7 % 251) as u8).collect();
    let mut forged = frame(&data, true, None);
    let descriptor = forged[4];
    assert_ne!(descriptor & 0x20, 0, "libzstd wrote a single-segment frame");
    forged[4] = descriptor & !0x20;
    forged.insert(5, (30 - 10) << 3);
    let (r, peak) = read(&forged, MAX);
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression, "{err}");
    assert!(peak <= MAX + SLACK, "peak {peak}");
}

#[test]
fn a_bomb_declaring_its_size_within_the_bound_decodes_into_exactly_that_much() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let bomb = zeros_frame(MAX, true, None);
    assert!(bomb.len() < 64 << 10);
    // the cache's way: the room it reserved is the only allocation
    let (r, peak) = read(&bomb, MAX);
    let out = r.unwrap();
    assert_eq!(out.len(), MAX);
    assert!(out.iter().all(|&b| b == 0));
    assert_eq!(out.capacity(), MAX);
    assert!(peak <= MAX + SLACK, "peak {peak}");
    drop(out);
    // reserving nothing: one allocation of exactly the declared size
    let (r, peak) = measure(|| {
        let mut out = Vec::new();
        Zstd::default()
            .decompress(&bomb, MAX, &mut out)
            .map(|()| out)
    });
    let out = r.unwrap();
    assert_eq!((out.len(), out.capacity()), (MAX, MAX));
    assert!(peak <= MAX + SLACK, "peak {peak}");
}
