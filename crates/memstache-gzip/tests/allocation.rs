//! Peak heap allocation while reading forged gzip members, counted by a global allocator.
//!
//! Each read is done as the cache does it: the output `Vec` is reserved for the serialized
//! length the envelope header declares (at most the max value size, [`MAX`] here), then
//! `decompress` is called with that length as its bound. The promise (docs/security.md): a
//! read never holds more than twice the max value size, and a forged member is a typed error.
//! flate2's zlib-rs backend allocates its inflate state with the Rust allocator, so it is
//! counted too.

use std::sync::Mutex;

use memstache_core::ErrorKind;
use memstache_core::raw::Compressor;
use memstache_gzip::Gzip;
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// One measurement at a time: the counters are process-wide.
static SERIAL: Mutex<()> = Mutex::new(());

/// The max value size of these reads.
const MAX: usize = 4 << 20;

/// What the decoder may allocate besides the output (its inflate state and window).
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

/// Reads `member` as the cache does: room reserved for `declared`, bounded by it.
fn read(member: &[u8], declared: usize) -> (memstache_core::Result<Vec<u8>>, usize) {
    measure(|| {
        let mut out = Vec::with_capacity(declared);
        Gzip::default()
            .decompress(member, declared, &mut out)
            .map(|()| out)
    })
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Gzip::default().compress(data, &mut out).unwrap();
    out
}

/// Overwrites the trailer's ISIZE.
fn with_isize(mut member: Vec<u8>, isize: u32) -> Vec<u8> {
    let n = member.len();
    member[n - 4..].copy_from_slice(&isize.to_le_bytes());
    member
}

#[test]
fn a_value_of_exactly_the_bound_is_read_into_the_reserved_room_only() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let member = gzip(&vec![0u8; MAX]);
    let (r, peak) = read(&member, MAX);
    let out = r.unwrap();
    assert_eq!(out.len(), MAX);
    assert_eq!(
        out.capacity(),
        MAX,
        "no reallocation past the reserved room"
    );
    // measured: 8,436,161 bytes (the room, then a second buffer of MAX + 1 to grow into)
    // before the fix; 4,241,856 after (the room and the inflate state)
    assert!(
        peak < 2 * MAX,
        "peak {peak} bytes for a max value size of {MAX}"
    );
    assert!(peak <= MAX + SLACK, "peak {peak}");
}

#[test]
fn a_bomb_with_an_honest_trailer_is_refused_before_inflating() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let bomb = gzip(&vec![0u8; 64 << 20]);
    let (r, peak) = read(&bomb, MAX);
    assert_eq!(r.unwrap_err().kind(), ErrorKind::ValueTooLarge);
    assert!(peak <= MAX + SLACK, "peak {peak}");
    let (r, peak) = measure(|| Gzip::default().decompress(&bomb, MAX, &mut Vec::new()));
    assert_eq!(r.unwrap_err().kind(), ErrorKind::ValueTooLarge);
    assert!(
        peak < SLACK,
        "nothing allocated for the output: peak {peak}"
    );
}

#[test]
fn a_bomb_whose_trailer_claims_a_small_size_stops_at_that_size() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for claimed in [0, 1000, MAX as u32 / 2, MAX as u32] {
        let bomb = with_isize(gzip(&vec![0u8; 64 << 20]), claimed);
        // the cache reserved MAX (the envelope header said so); measured before the fix:
        // 8,436,161 bytes for every claim, after: 4,194,304 (the room; inflate state reused)
        let (r, peak) = read(&bomb, MAX);
        let err = r.unwrap_err();
        assert!(
            matches!(
                err.kind(),
                ErrorKind::Compression | ErrorKind::ValueTooLarge
            ),
            "{claimed}: {err}"
        );
        assert!(peak < 2 * MAX, "{claimed}: peak {peak}");
        assert!(peak <= MAX + SLACK, "{claimed}: peak {peak}");
        // reserving nothing: at most the claimed size is allocated
        let (r, peak) = measure(|| Gzip::default().decompress(&bomb, MAX, &mut Vec::new()));
        assert!(r.is_err());
        assert!(peak <= claimed as usize + SLACK, "{claimed}: peak {peak}");
    }
}

#[test]
fn a_trailer_claiming_more_than_the_data_can_hold_is_refused_before_allocating() {
    let _serial = SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let forged = with_isize(gzip(b"tiny value"), MAX as u32);
    let (r, peak) = measure(|| Gzip::default().decompress(&forged, MAX, &mut Vec::new()));
    let err = r.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression, "{err}");
    assert!(peak < SLACK, "peak {peak}");
}
