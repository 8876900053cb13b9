use std::io::{Read, Write};

use flate2::GzBuilder;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

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

#[test]
fn output_is_standard_gzip() {
    let data = text(10_000);
    for level in [0, 1, 6, 9] {
        let mut packed = Vec::new();
        Gzip::new(level)
            .unwrap()
            .compress(&data, &mut packed)
            .unwrap();
        let mut plain = Vec::new();
        GzDecoder::new(&packed[..]).read_to_end(&mut plain).unwrap();
        assert_eq!(plain, data, "level {level}");
    }
}

#[test]
fn reads_gzip_written_by_others_with_optional_header_fields() {
    let data = text(5_000);
    let mut enc = GzBuilder::new()
        .filename("name.txt")
        .comment("a comment")
        .extra(vec![1, 2, 3, 4])
        .mtime(1234)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(&data).unwrap();
    let packed = enc.finish().unwrap();
    let mut out = Vec::new();
    Gzip::default()
        .decompress(&packed, data.len(), &mut out)
        .unwrap();
    assert_eq!(out, data);

    // A header CRC (FHCRC), computed by hand: flate2 does not write one.
    let mut with_hcrc = packed[..10].to_vec();
    with_hcrc[3] = 0x02;
    let mut crc = Crc::new();
    crc.update(&with_hcrc);
    with_hcrc.extend_from_slice(&u16::try_from(crc.sum() & 0xffff).unwrap().to_le_bytes());
    let mut plain_enc = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    plain_enc.write_all(&data).unwrap();
    let plain_packed = plain_enc.finish().unwrap();
    with_hcrc.extend_from_slice(&plain_packed[10..]);
    out.clear();
    Gzip::default()
        .decompress(&with_hcrc, data.len(), &mut out)
        .unwrap();
    assert_eq!(out, data);
    // and a wrong header CRC is caught
    with_hcrc[10] ^= 1;
    let err = Gzip::default()
        .decompress(&with_hcrc, data.len(), &mut out)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression);
}

#[test]
fn trailing_bytes_and_second_members_are_rejected() {
    let gzip = Gzip::default();
    let mut packed = Vec::new();
    gzip.compress(b"hello hello hello", &mut packed).unwrap();
    let mut two = packed.clone();
    two.extend_from_slice(&packed);
    let mut out = Vec::new();
    let err = gzip.decompress(&two, 1 << 20, &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression);
    assert!(out.is_empty(), "no partial output is left behind");
}

#[test]
fn wrong_crc_or_length_in_trailer_is_rejected() {
    let gzip = Gzip::default();
    let mut packed = Vec::new();
    gzip.compress(&text(3000), &mut packed).unwrap();
    let n = packed.len();
    for (i, what) in [(n - 8, "crc"), (n - 1, "isize")] {
        let mut bad = packed.clone();
        bad[i] ^= 0x10;
        let err = gzip.decompress(&bad, 1 << 20, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Compression, "{what}");
    }
}

#[test]
fn appends_and_keeps_existing_output_on_error() {
    let gzip = Gzip::default();
    let mut packed = b"prefix".to_vec();
    gzip.compress(b"abcabcabc", &mut packed).unwrap();
    assert_eq!(&packed[..6], b"prefix");
    let mut out = b"keep".to_vec();
    gzip.decompress(&packed[6..], 100, &mut out).unwrap();
    assert_eq!(out, b"keepabcabcabc");
    let err = gzip
        .decompress(&packed[6..packed.len() - 3], 100, &mut out)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression);
    assert_eq!(out, b"keepabcabcabc");
}

#[test]
fn lying_isize_does_not_cause_a_large_allocation() {
    let gzip = Gzip::default();
    let mut packed = Vec::new();
    gzip.compress(b"tiny", &mut packed).unwrap();
    let n = packed.len();
    packed[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut out = Vec::new();
    let err = gzip.decompress(&packed, 64 << 20, &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Compression);
    assert!(out.capacity() < 64 * 1024, "capacity {}", out.capacity());
}

#[test]
fn alternating_levels_on_one_thread_use_the_right_level() {
    let data = text(50_000);
    let (mut fast, mut best, mut again) = (Vec::new(), Vec::new(), Vec::new());
    Gzip::new(1).unwrap().compress(&data, &mut fast).unwrap();
    Gzip::new(9).unwrap().compress(&data, &mut best).unwrap();
    Gzip::new(1).unwrap().compress(&data, &mut again).unwrap();
    assert_eq!(fast, again, "reused state gives identical output");
    assert_ne!(fast, best);
}
