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

/// The size of this thread's decompression context, window buffers included.
fn dctx_size() -> usize {
    DCTX.with(|cell| cell.borrow().as_ref().map_or(0, |d| d.sizeof()))
}

#[test]
fn frames_without_declared_size_are_refused_before_decoding() {
    let data = text(300_000);
    let frame = sizeless_frame(&data, 3, None);
    let mut out = b"keep".to_vec();
    let err = Zstd::default()
        .decompress(&frame, data.len(), &mut out)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression, "{err}");
    assert_eq!(out, b"keep", "existing output is kept on error");
    assert_eq!(out.capacity(), 4, "nothing allocated for the output");
}

#[test]
fn sizeless_bomb_is_refused_and_leaves_no_window_in_the_thread_context() {
    let zeros = vec![0u8; 64 << 20];
    // an 8 MiB window, as large as the budget allows
    let frame = sizeless_frame(&zeros, 1, Some(23));
    drop(zeros);
    let max_len = 8 << 20;
    let mut out = Vec::new();
    let err = Zstd::default()
        .decompress(&frame, max_len, &mut out)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression, "{err}");
    assert_eq!(out.capacity(), 0, "nothing allocated");
    // Streaming this frame made libzstd allocate its 8 MiB window in the context kept per
    // thread (measured: 8,877,864 bytes before the fix, 95,976 after); refused up front, the context
    // stays small.
    assert!(
        dctx_size() < 512 << 10,
        "thread context holds {} bytes",
        dctx_size()
    );
}

#[test]
fn declared_frame_decodes_into_exactly_its_size_and_keeps_the_context_small() {
    let data = text(4 << 20);
    let mut packed = Vec::new();
    Zstd::default().compress(&data, &mut packed).unwrap();
    let mut out = Vec::new();
    Zstd::default()
        .decompress(&packed, 8 << 20, &mut out)
        .unwrap();
    assert_eq!(out, data);
    assert_eq!(
        out.capacity(),
        data.len(),
        "one allocation of the declared size"
    );
    assert!(
        dctx_size() < 1 << 20,
        "thread context holds {} bytes",
        dctx_size()
    );
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

/// Rewrites the header of `frame` (which must declare a content size of at least 256 bytes)
/// to ask for a window of `2^log` bytes; the blocks stay valid.
fn forge_window(frame: &mut Vec<u8>, log: u8) {
    let descriptor = frame[4];
    assert_ne!(
        descriptor >> 6,
        0,
        "needs a content size field of 2 bytes or more"
    );
    if descriptor & 0x20 != 0 {
        frame[4] = descriptor & !0x20;
        frame.insert(5, (log - 10) << 3);
    } else {
        frame[5] = (log - 10) << 3;
    }
}

#[test]
fn oversized_window_is_refused_before_decoding() {
    // 64 KiB of content with a 128 MiB window: refused from the header, whatever the budget.
    let data = text(64 << 10);
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::WindowLog(27)).unwrap();
    cctx.set_parameter(CParameter::ContentSizeFlag(true))
        .unwrap();
    let mut frame = Vec::new();
    compress_with(&mut cctx, &data, &mut frame).unwrap();
    // libzstd shrinks the window to the content: forge the descriptor back to 2^27.
    forge_window(&mut frame, 27);
    for max_len in [64 << 10, 64 << 20] {
        let err = Zstd::default()
            .decompress(&frame, max_len, &mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Compression, "{err}");
    }
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
fn frames_of_the_zstd_stream_api_are_read_only_with_a_declared_size() {
    let data = text(10_000);
    // streamed in pieces without a pledged size: no declared content size, refused
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 5).unwrap();
    for chunk in data.chunks(1000) {
        std::io::Write::write_all(&mut enc, chunk).unwrap();
        std::io::Write::flush(&mut enc).unwrap();
    }
    let packed = enc.finish().unwrap();
    assert_eq!(zstd_safe::get_frame_content_size(&packed).unwrap(), None);
    let err = Zstd::default()
        .decompress(&packed, data.len(), &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression);
    // encode_all hands libzstd the whole input at once, so the frame declares its size
    let packed = zstd::stream::encode_all(&data[..], 5).unwrap();
    let mut out = Vec::new();
    Zstd::default()
        .decompress(&packed, data.len(), &mut out)
        .unwrap();
    assert_eq!(out, data);
}

#[test]
fn skippable_frames_are_refused() {
    let mut skippable = 0x184D_2A50u32.to_le_bytes().to_vec();
    skippable.extend_from_slice(&4u32.to_le_bytes());
    skippable.extend_from_slice(b"skip");
    let err = Zstd::default()
        .decompress(&skippable, 1 << 20, &mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression);
}
