//! The pipeline on the memory backend (get hit, set; 1 KiB and 64 KiB values) beside moka's
//! `future::Cache` get/insert of the same typed value, in the same run.
//!
//! `cargo bench -p memstache-benches --bench pipeline` (or `cargo xtask bench --bench pipeline`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memstache::{EntryOptions, MemStache};

/// A deterministic text value of `len` bytes (seeded LCG over a small vocabulary, so it
/// compresses like real text).
fn text(len: usize, mut seed: u64) -> String {
    const WORDS: [&str; 16] = [
        "order", "customer", "shipped", "total", "amount", "currency", "EUR", "address", "street",
        "city", "status", "pending", "item", "sku", "quantity", "price",
    ];
    let mut s = String::with_capacity(len + 16);
    while s.len() < len {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push_str(WORDS[(seed >> 60) as usize]);
        s.push(if seed & 1 == 0 { ' ' } else { ',' });
        s.push_str(&((seed >> 20) % 10_000).to_string());
        s.push(' ');
    }
    s.truncate(len);
    s
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for (label, size) in [("1KiB", 1024usize), ("64KiB", 64 * 1024)] {
        let value = text(size, 42);
        let mut g = c.benchmark_group(format!("pipeline/{label}"));
        g.throughput(Throughput::Elements(1));

        let cache = MemStache::builder().build().expect("cache");
        rt.block_on(cache.set("hot", &value, EntryOptions::default()))
            .expect("set");
        g.bench_function("memstache_get_hit", |b| {
            b.to_async(&rt).iter(|| async {
                let v: Option<String> = cache.get("hot").await.expect("get");
                black_box(v)
            })
        });
        // Two threads (each on its own current-thread runtime) reading hits of their own 16
        // keys: what the cache's shared state costs when two cores read at once. Time per
        // operation over both threads, so perfect scaling halves the 1-thread time.
        let keys: Vec<Vec<String>> = (0..2)
            .map(|t| (0..16).map(|i| format!("hot-{t}-{i}")).collect())
            .collect();
        for k in keys.iter().flatten() {
            rt.block_on(cache.set(k, &value, EntryOptions::default()))
                .expect("set");
        }
        g.bench_function("memstache_get_hit_2t", |b| {
            b.iter_custom(|iters| {
                let per = iters / 2 + 1;
                let start = std::time::Instant::now();
                std::thread::scope(|s| {
                    for mine in &keys {
                        let cache = &cache;
                        s.spawn(move || {
                            let rt = tokio::runtime::Builder::new_current_thread()
                                .enable_all()
                                .build()
                                .expect("runtime");
                            rt.block_on(async {
                                for i in 0..per {
                                    let k = &mine[i as usize % mine.len()];
                                    let v: Option<String> = cache.get(k).await.expect("get");
                                    black_box(v);
                                }
                            });
                        });
                    }
                });
                start.elapsed()
            })
        });
        g.bench_function("memstache_set", |b| {
            b.to_async(&rt).iter(|| async {
                cache
                    .set("k", black_box(&value), EntryOptions::default())
                    .await
                    .expect("set")
            })
        });

        let moka: moka::future::Cache<String, String> = moka::future::Cache::new(100_000);
        rt.block_on(moka.insert("hot".to_owned(), value.clone()));
        g.bench_function("moka_get_hit", |b| {
            b.to_async(&rt)
                .iter(|| async { black_box(moka.get("hot").await) })
        });
        g.bench_function("moka_insert", |b| {
            b.to_async(&rt)
                .iter(|| async { moka.insert("k".to_owned(), black_box(&value).clone()).await })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
