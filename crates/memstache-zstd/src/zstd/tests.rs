use super::*;

fn text(n: usize) -> Vec<u8> {
    let words = ["cache ", "value ", "tenant ", "orders ", "42 ", "user\n"];
    let mut v = Vec::with_capacity(n);
    let mut i = 7usize;
    while v.len() < n {
        i = i.wrapping_mul(31).wrapping_add(17) % 1009;
        v.extend_from_slice(words[i % words.len()].as_bytes());
    }
    v.truncate(n);
    v
}

/// A frame without a declared content size (as a streaming encoder writes it).
fn sizeless_frame(data: &[u8], level: i32, window_log: Option<u32>) -> Vec<u8> {
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::CompressionLevel(level))
        .unwrap();
    cctx.set_parameter(CParameter::ContentSizeFlag(false))
        .unwrap();
    if let Some(w) = window_log {
        cctx.set_parameter(CParameter::WindowLog(w)).unwrap();
    }
    let mut out = Vec::new();
    compress_with(&mut cctx, data, &mut out).unwrap();
    assert_eq!(zstd_safe::get_frame_content_size(&out).unwrap(), None);
    out
}

#[test]
fn output_is_a_standard_frame_with_size_and_checksum() {
    let data = text(20_000);
    let mut packed = Vec::new();
    Zstd::default().compress(&data, &mut packed).unwrap();
    assert_eq!(
        zstd_safe::get_frame_content_size(&packed).unwrap(),
        Some(data.len() as u64)
    );
    assert_eq!(zstd::stream::decode_all(&packed[..]).unwrap(), data);
    // frame header descriptor: bit 2 is the content checksum flag
    assert_ne!(packed[4] & 0x04, 0);
    let mut unchecked = Vec::new();
    Zstd::default()
        .with_checksum(false)
        .compress(&data, &mut unchecked)
        .unwrap();
    assert_eq!(unchecked[4] & 0x04, 0);
    assert_eq!(unchecked.len() + 4, packed.len());
}

#[test]
fn frames_without_declared_size_stream_within_the_bound() {
    let data = text(300_000);
    let frame = sizeless_frame(&data, 3, None);
    let mut out = b"keep".to_vec();
    Zstd::default()
        .decompress(&frame, data.len(), &mut out)
        .unwrap();
    assert_eq!(&out[4..], &data[..]);

    let err = Zstd::default()
        .decompress(&frame, data.len() - 1, &mut out)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    assert_eq!(
        out.len(),
        4 + data.len(),
        "existing output is kept on error"
    );
}

#[test]
fn sizeless_bomb_is_stopped_at_max_len() {
    let zeros = vec![0u8; 64 << 20];
    let frame = sizeless_frame(&zeros, 1, None);
    drop(zeros);
    let max_len = 1 << 20;
    let mut out = Vec::new();
    let err = Zstd::default()
        .decompress(&frame, max_len, &mut out)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    assert!(out.capacity() <= max_len + 1, "capacity {}", out.capacity());
}

#[test]
fn declared_bomb_is_rejected_before_decoding() {
    let zeros = vec![0u8; 64 << 20];
    let mut packed = Vec::new();
    Zstd::default().compress(&zeros, &mut packed).unwrap();
    drop(zeros);
    let mut out = Vec::new();
    let err = Zstd::default()
        .decompress(&packed, 1 << 20, &mut out)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ValueTooLarge);
    assert_eq!(out.capacity(), 0, "nothing allocated");
}

#[test]
fn oversized_window_is_refused_for_a_small_bound() {
    // 2 MiB of distinct text with a 128 MiB window, decoded with max_len 64 KiB: libzstd must
    // not allocate the window, whatever comes first (window check or output bound).
    let data = text(2 << 20);
    let frame = sizeless_frame(&data, 3, Some(27));
    let err = Zstd::default()
        .decompress(&frame, 64 << 10, &mut Vec::new())
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::Compression | ErrorKind::ValueTooLarge
        ),
        "{err:?}"
    );
}

#[test]
fn trailing_bytes_and_second_frames_are_rejected() {
    let zstd = Zstd::default();
    let mut packed = Vec::new();
    zstd.compress(b"hello hello hello", &mut packed).unwrap();
    let mut two = packed.clone();
    two.extend_from_slice(&packed);
    let err = zstd.decompress(&two, 1 << 20, &mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression);

    let mut sizeless = sizeless_frame(b"hello hello hello", 1, None);
    sizeless.extend_from_slice(b"junk");
    let err = zstd
        .decompress(&sizeless, 1 << 20, &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression);
}

#[test]
fn checksum_catches_a_flipped_literal() {
    // Random-looking bytes are stored as raw literals: flipping one changes the content, not the
    // structure, so only the checksum can tell.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..500)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut packed = Vec::new();
    Zstd::default().compress(&data, &mut packed).unwrap();
    let mid = packed.len() / 2;
    packed[mid] ^= 0x01;
    let err = Zstd::default()
        .decompress(&packed, 1 << 20, &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression);
}

#[test]
fn alternating_parameters_on_one_thread_use_the_right_ones() {
    let data = text(50_000);
    let (mut fast, mut best, mut again) = (Vec::new(), Vec::new(), Vec::new());
    Zstd::new(1).unwrap().compress(&data, &mut fast).unwrap();
    Zstd::new(19).unwrap().compress(&data, &mut best).unwrap();
    Zstd::new(1).unwrap().compress(&data, &mut again).unwrap();
    assert_eq!(fast, again, "reused context gives identical output");
    assert_ne!(fast, best);
}

#[test]
fn reads_frames_written_by_the_zstd_stream_api() {
    let data = text(10_000);
    let packed = zstd::stream::encode_all(&data[..], 5).unwrap();
    let mut out = Vec::new();
    Zstd::default()
        .decompress(&packed, data.len(), &mut out)
        .unwrap();
    assert_eq!(out, data);
}
