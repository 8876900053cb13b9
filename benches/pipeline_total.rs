//! The whole pipeline (serialize → zstd → AES-256-GCM → envelope → memory backend, and back)
//! beside the sum of its raw primitives called directly (postcard, zstd with a reused context,
//! ring with a prepared key, ring's random nonce), in the same run, for 1 KiB and 64 KiB values.
//!
//! Target (issue 4): at 64 KiB, the pipeline adds at most 10 % over the raw sum.
//!
//! Both sides do the same work: zstd level 1 without zstd's own content checksum (inside the
//! pipeline the AEAD tag already covers the compressed bytes), AES-256-GCM with a fresh random
//! nonce per value.
//!
//! `cargo bench -p memstache-benches --bench pipeline_total`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use memstache::compression::Zstd;
use memstache::crypto::{Aes256Gcm, LocalKeyManager};
use memstache::{EntryOptions, MemStache};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zstd::zstd_safe::{CCtx, CParameter, DCtx};

#[path = "stages_data.rs"]
mod stages_data;

/// The raw path: what a hand-rolled "serialize, compress, encrypt" costs.
struct Raw {
    cctx: CCtx<'static>,
    dctx: DCtx<'static>,
    key: LessSafeKey,
    rng: SystemRandom,
}

impl Raw {
    fn new() -> Self {
        let mut cctx = CCtx::create();
        cctx.set_parameter(CParameter::CompressionLevel(1))
            .expect("level");
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7u8; 32]).expect("key"));
        Raw {
            cctx,
            dctx: DCtx::create(),
            key,
            rng: SystemRandom::new(),
        }
    }

    /// serialize + compress + seal; returns (nonce, sealed)
    fn encode(&mut self, value: &String) -> ([u8; 12], Vec<u8>) {
        let plain = postcard::to_allocvec(value).expect("postcard");
        let mut sealed = Vec::with_capacity(zstd::zstd_safe::compress_bound(plain.len()) + 16);
        self.cctx.compress2(&mut sealed, &plain).expect("zstd");
        let mut nonce = [0u8; 12];
        self.rng.fill(&mut nonce).expect("rng");
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"k"),
                &mut sealed,
            )
            .expect("seal");
        (nonce, sealed)
    }

    /// open + decompress + deserialize
    fn decode(&mut self, nonce: [u8; 12], sealed: &[u8], len: usize) -> String {
        let mut buf = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(b"k"),
                &mut buf,
            )
            .expect("open");
        let mut out = Vec::with_capacity(len + 16);
        self.dctx.decompress(&mut out, plain).expect("zstd");
        postcard::from_bytes(&out).expect("postcard")
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (label, size) in [("1KiB", 1024usize), ("64KiB", 64 * 1024)] {
        let value = String::from_utf8(stages_data::records(size, 11)).expect("ascii");
        let mut g = c.benchmark_group(format!("pipeline_total/{label}"));

        let cache = MemStache::builder()
            .compressor(Zstd::default().with_checksum(false))
            .encryptor(Aes256Gcm::default())
            .key_manager(LocalKeyManager::generate())
            .compress_threshold(0)
            .build()
            .expect("cache");
        rt.block_on(cache.set("hot", &value, EntryOptions::default()))
            .expect("set");
        g.bench_function("memstache_set", |b| {
            b.to_async(&rt).iter(|| async {
                cache
                    .set("k", black_box(&value), EntryOptions::default())
                    .await
                    .expect("set")
            })
        });
        g.bench_function("memstache_get", |b| {
            b.to_async(&rt).iter(|| async {
                let v: Option<String> = cache.get("hot").await.expect("get");
                black_box(v)
            })
        });

        let mut raw = Raw::new();
        g.bench_function("raw_encode_sum", |b| {
            b.iter(|| black_box(raw.encode(black_box(&value))))
        });
        let (nonce, sealed) = raw.encode(&value);
        g.bench_function("raw_decode_sum", |b| {
            b.iter(|| black_box(raw.decode(nonce, black_box(&sealed), size)))
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
