//! Exact, repeatable costs of the pipeline stages for callgrind (wall-clock timings on a shared
//! 2-vCPU VM are noisy; instruction counts are not). Each stage runs `N` times inside its own
//! `#[inline(never)]` function, so the inclusive instruction count of that function divided by
//! `N` is the cost of one call:
//!
//! ```text
//! cargo bench -p memstache-benches --bench stages_count --no-run
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/deps/stages_count-<hash>
//! callgrind_annotate --inclusive=yes cg.out | grep stages_count::
//! ```
//!
//! Run without valgrind it only checks that every stage works (and prints `N`).

use std::hint::black_box;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use memstache_aes::Aes256Gcm;
use memstache_core::raw::{Compressor, Encryptor};
use memstache_gzip::Gzip;
use memstache_zstd::Zstd;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use zstd::zstd_safe::{CCtx, CParameter, DCtx};

#[path = "stages_data.rs"]
mod stages_data;
use stages_data::records;

/// Calls per stage.
const N: usize = 1000;
/// Value size: 1 KiB, the size where per-call overhead matters most.
const SIZE: usize = 1024;

#[inline(never)]
fn zstd_raw_compress(cctx: &mut CCtx<'static>, v: &[u8], out: &mut Vec<u8>) {
    for _ in 0..N {
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(v.len()));
        cctx.compress2(out, black_box(v)).expect("zstd");
    }
}

#[inline(never)]
fn zstd_plugin_compress(z: &Zstd, v: &[u8], out: &mut Vec<u8>) {
    for _ in 0..N {
        out.clear();
        z.compress(black_box(v), out).expect("zstd");
    }
}

#[inline(never)]
fn zstd_raw_decompress(dctx: &mut DCtx<'static>, p: &[u8], out: &mut Vec<u8>) {
    for _ in 0..N {
        out.clear();
        out.reserve(SIZE);
        dctx.decompress(out, black_box(p)).expect("zstd");
    }
}

#[inline(never)]
fn zstd_plugin_decompress(z: &Zstd, p: &[u8], out: &mut Vec<u8>) {
    for _ in 0..N {
        out.clear();
        z.decompress(black_box(p), SIZE, out).expect("zstd");
    }
}

#[inline(never)]
fn gzip_raw_compress(c: &mut Compress, v: &[u8], out: &mut Vec<u8>) {
    for _ in 0..N {
        c.reset();
        out.clear();
        out.reserve(v.len() + 64);
        c.compress_vec(black_box(v), out, FlushCompress::Finish)
            .expect("deflate");
    }
}

#[inline(never)]
fn gzip_plugin_compress(g: &Gzip, v: &[u8], out: &mut Vec<u8>) {
    for _ in 0..N {
        out.clear();
        g.compress(black_box(v), out).expect("gzip");
    }
}

#[inline(never)]
fn gzip_raw_decompress(d: &mut Decompress, p: &[u8], out: &mut Vec<u8>) {
    for _ in 0..N {
        d.reset(true);
        out.clear();
        out.reserve(SIZE + 1);
        d.decompress_vec(black_box(p), out, FlushDecompress::Finish)
            .expect("inflate");
    }
}

#[inline(never)]
fn gzip_plugin_decompress(g: &Gzip, p: &[u8], out: &mut Vec<u8>) {
    for _ in 0..N {
        out.clear();
        g.decompress(black_box(p), SIZE, out).expect("gzip");
    }
}

#[inline(never)]
fn ring_prepared_seal(key: &LessSafeKey, nonce: [u8; 12], buf: &mut [u8]) {
    for _ in 0..N {
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"aad"),
                black_box(&mut *buf),
            )
            .expect("seal");
        let _ = black_box(tag);
    }
}

#[inline(never)]
fn aes_plugin_seal(aes: &Aes256Gcm, key: &[u8], nonce: &[u8], buf: &mut [u8], tag: &mut [u8]) {
    for _ in 0..N {
        aes.seal_in_place(key, nonce, b"aad", black_box(&mut *buf), tag)
            .expect("seal");
    }
}

#[inline(never)]
fn aes_plugin_fill_nonce(aes: &Aes256Gcm, nonce: &mut [u8]) {
    for _ in 0..N {
        aes.fill_nonce(black_box(&mut *nonce)).expect("nonce");
    }
}

#[inline(never)]
fn ring_prepared_open(key: &LessSafeKey, nonce: [u8; 12], sealed: &[u8], work: &mut [u8]) {
    for _ in 0..N {
        work.copy_from_slice(sealed);
        key.open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(b"aad"),
            black_box(&mut *work),
        )
        .expect("open");
    }
}

#[inline(never)]
fn aes_plugin_open(aes: &Aes256Gcm, key: &[u8], nonce: &[u8], sealed: &[u8], work: &mut [u8]) {
    for _ in 0..N {
        work.copy_from_slice(sealed);
        aes.open_in_place(key, nonce, b"aad", black_box(&mut *work))
            .expect("open");
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let value = records(SIZE, 7);
    let mut out = Vec::with_capacity(4 * SIZE);

    let zstd = Zstd::default();
    let mut cctx = CCtx::create();
    cctx.set_parameter(CParameter::CompressionLevel(1))
        .expect("level");
    cctx.set_parameter(CParameter::ChecksumFlag(true))
        .expect("checksum");
    let mut dctx = DCtx::create();
    let mut zpacked = Vec::new();
    zstd.compress(&value, &mut zpacked).expect("zstd");
    zstd_raw_compress(&mut cctx, &value, &mut out);
    zstd_plugin_compress(&zstd, &value, &mut out);
    zstd_raw_decompress(&mut dctx, &zpacked, &mut out);
    zstd_plugin_decompress(&zstd, &zpacked, &mut out);
    assert_eq!(out, value);

    let gzip = Gzip::default();
    let mut deflate = Compress::new_gzip(Compression::new(1), 15);
    let mut inflate = Decompress::new_gzip(15);
    let mut gpacked = Vec::new();
    gzip.compress(&value, &mut gpacked).expect("gzip");
    gzip_raw_compress(&mut deflate, &value, &mut out);
    gzip_plugin_compress(&gzip, &value, &mut out);
    gzip_raw_decompress(&mut inflate, &gpacked, &mut out);
    gzip_plugin_decompress(&gzip, &gpacked, &mut out);
    assert_eq!(out, value);

    let key = [0x42u8; 32];
    let nonce = [7u8; 12];
    let prepared = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("key"));
    let aes = Aes256Gcm::default();
    let mut buf = value.clone();
    let mut tag = [0u8; 16];
    ring_prepared_seal(&prepared, nonce, &mut buf);
    aes_plugin_seal(&aes, &key, &nonce, &mut buf, &mut tag);
    let mut fresh = [0u8; 12];
    aes_plugin_fill_nonce(&aes, &mut fresh);
    let mut sealed = value.clone();
    aes.seal_in_place(&key, &nonce, b"aad", &mut sealed, &mut tag)
        .expect("seal");
    sealed.extend_from_slice(&tag);
    let mut work = sealed.clone();
    ring_prepared_open(&prepared, nonce, &sealed, &mut work);
    aes_plugin_open(&aes, &key, &nonce, &sealed, &mut work);
    assert_eq!(&work[..SIZE], &value[..]);
    println!("stages_count: {N} calls per stage, {SIZE}-byte values");
}
