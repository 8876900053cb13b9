//! The pipeline's compression and encryption stages, raw library calls beside memstache's
//! plugins, in the same run, so the plugin overhead is visible:
//!
//! * `compress` / `decompress`: zstd level 1 through a reused `zstd_safe` context (raw) vs
//!   `memstache_zstd::Zstd`; flate2 gzip level 1 through a reused `Compress`/`GzDecoder`-free
//!   raw inflate (raw) vs `memstache_gzip::Gzip`;
//! * `seal` / `open`: ring AES-256-GCM with a prepared `LessSafeKey` (raw), ring building the
//!   key on every call (what an `Encryptor` that receives key bytes must do), and
//!   `memstache_aes::Aes256Gcm`.
//!
//! Values are 1 KiB and 64 KiB of seeded, JSON-like records (moderately compressible).
//!
//! `cargo bench -p memstache-benches --bench stages` (or `cargo xtask bench --bench stages`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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

/// Raw zstd: one reused compression and decompression context, level 1, with checksum (the
/// plugin's settings).
struct RawZstd {
    cctx: CCtx<'static>,
    dctx: DCtx<'static>,
}

impl RawZstd {
    fn new() -> Self {
        let mut cctx = CCtx::create();
        cctx.set_parameter(CParameter::CompressionLevel(1))
            .expect("level");
        cctx.set_parameter(CParameter::ChecksumFlag(true))
            .expect("checksum");
        RawZstd {
            cctx,
            dctx: DCtx::create(),
        }
    }
    fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.reserve(zstd::zstd_safe::compress_bound(input.len()));
        self.cctx.compress2(out, input).expect("compress");
    }
    fn decompress(&mut self, input: &[u8], len: usize, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(len);
        self.dctx.decompress(out, input).expect("decompress");
    }
}

/// Raw gzip: a reused deflate state with the gzip wrapper, and a reused gzip inflate state.
fn raw_gzip_compress(c: &mut Compress, input: &[u8], out: &mut Vec<u8>) {
    c.reset();
    out.clear();
    out.reserve(input.len() + 64);
    c.compress_vec(input, out, FlushCompress::Finish)
        .expect("deflate");
}

fn raw_gzip_decompress(d: &mut Decompress, input: &[u8], len: usize, out: &mut Vec<u8>) {
    d.reset(true);
    out.clear();
    out.reserve(len + 1);
    d.decompress_vec(input, out, FlushDecompress::Finish)
        .expect("inflate");
}

fn bench_compression(c: &mut Criterion) {
    for (label, size) in [("1KiB", 1024usize), ("64KiB", 64 << 10)] {
        let value = records(size, 7);
        let mut out = Vec::with_capacity(2 * size + 1024);

        let zstd = Zstd::default();
        let gzip = Gzip::default();
        let mut raw_zstd = RawZstd::new();
        let mut deflate = Compress::new_gzip(Compression::new(1), 15);
        let mut inflate = Decompress::new_gzip(15);

        let mut zpacked = Vec::new();
        zstd.compress(&value, &mut zpacked).expect("zstd");
        let mut gpacked = Vec::new();
        gzip.compress(&value, &mut gpacked).expect("gzip");
        eprintln!(
            "stages/{label}: zstd-1 {} -> {} bytes ({:.2}x), gzip-1 {} -> {} bytes ({:.2}x)",
            size,
            zpacked.len(),
            size as f64 / zpacked.len() as f64,
            size,
            gpacked.len(),
            size as f64 / gpacked.len() as f64
        );

        let mut g = c.benchmark_group(format!("compress/{label}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("zstd_raw", |b| {
            b.iter(|| raw_zstd.compress(black_box(&value), &mut out))
        });
        g.bench_function("zstd_plugin", |b| {
            b.iter(|| {
                out.clear();
                zstd.compress(black_box(&value), &mut out).expect("zstd")
            })
        });
        g.bench_function("gzip_raw", |b| {
            b.iter(|| raw_gzip_compress(&mut deflate, black_box(&value), &mut out))
        });
        g.bench_function("gzip_plugin", |b| {
            b.iter(|| {
                out.clear();
                gzip.compress(black_box(&value), &mut out).expect("gzip")
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("decompress/{label}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("zstd_raw", |b| {
            b.iter(|| raw_zstd.decompress(black_box(&zpacked), size, &mut out))
        });
        g.bench_function("zstd_plugin", |b| {
            b.iter(|| {
                out.clear();
                zstd.decompress(black_box(&zpacked), size, &mut out)
                    .expect("zstd")
            })
        });
        g.bench_function("gzip_raw", |b| {
            b.iter(|| raw_gzip_decompress(&mut inflate, black_box(&gpacked), size, &mut out))
        });
        g.bench_function("gzip_plugin", |b| {
            b.iter(|| {
                out.clear();
                gzip.decompress(black_box(&gpacked), size, &mut out)
                    .expect("gzip")
            })
        });
        g.finish();
    }
}

fn bench_aead(c: &mut Criterion) {
    let key_bytes = [0x42u8; 32];
    let nonce_bytes = [7u8; 12];
    let aad = b"MS\x01 header bytes + ns:tenant:7:user:42";
    let prepared = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key_bytes).expect("key"));
    let aes = Aes256Gcm::default();
    for (label, size) in [("1KiB", 1024usize), ("64KiB", 64 << 10)] {
        let value = records(size, 9);
        let mut buf = value.clone();
        let mut tag = [0u8; 16];

        let mut g = c.benchmark_group(format!("seal/{label}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("ring_prepared_key", |b| {
            b.iter(|| {
                let nonce = Nonce::assume_unique_for_key(nonce_bytes);
                prepared
                    .seal_in_place_separate_tag(nonce, Aad::from(&aad[..]), black_box(&mut buf))
                    .expect("seal")
            })
        });
        g.bench_function("ring_key_per_call", |b| {
            b.iter(|| {
                let key = LessSafeKey::new(
                    UnboundKey::new(&AES_256_GCM, black_box(&key_bytes)).expect("key"),
                );
                let nonce = Nonce::assume_unique_for_key(nonce_bytes);
                key.seal_in_place_separate_tag(nonce, Aad::from(&aad[..]), black_box(&mut buf))
                    .expect("seal")
            })
        });
        g.bench_function("aes_plugin", |b| {
            b.iter(|| {
                aes.seal_in_place(&key_bytes, &nonce_bytes, aad, black_box(&mut buf), &mut tag)
                    .expect("seal")
            })
        });
        g.bench_function("aes_plugin_with_fill_nonce", |b| {
            let mut nonce = [0u8; 12];
            b.iter(|| {
                aes.fill_nonce(&mut nonce).expect("nonce");
                aes.seal_in_place(&key_bytes, &nonce, aad, black_box(&mut buf), &mut tag)
                    .expect("seal")
            })
        });
        g.finish();

        // A sealed copy to open: each iteration opens a fresh clone (the clone is measured
        // separately as `copy_only` so it can be subtracted).
        let mut sealed = value.clone();
        let mut t = [0u8; 16];
        aes.seal_in_place(&key_bytes, &nonce_bytes, aad, &mut sealed, &mut t)
            .expect("seal");
        sealed.extend_from_slice(&t);
        let mut work = sealed.clone();
        let mut g = c.benchmark_group(format!("open/{label}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("copy_only", |b| {
            b.iter(|| work.copy_from_slice(black_box(&sealed)))
        });
        g.bench_function("ring_prepared_key", |b| {
            b.iter(|| {
                work.copy_from_slice(&sealed);
                let nonce = Nonce::assume_unique_for_key(nonce_bytes);
                prepared
                    .open_in_place(nonce, Aad::from(&aad[..]), black_box(&mut work))
                    .expect("open")
                    .len()
            })
        });
        g.bench_function("aes_plugin", |b| {
            b.iter(|| {
                work.copy_from_slice(&sealed);
                aes.open_in_place(&key_bytes, &nonce_bytes, aad, black_box(&mut work))
                    .expect("open")
            })
        });
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = bench_compression, bench_aead
}
criterion_main!(benches);
