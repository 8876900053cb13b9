//! The memory backend with each eviction policy beside `moka::sync::Cache` and
//! `quick_cache::sync::Cache` at the same capacity, on one seeded Zipf workload.
//!
//! Three workloads, each on 1 and 2 threads:
//!
//! * `get_hit` — reads of resident keys only (the cache is pre-filled with the hottest keys;
//!   nothing is inserted while measuring);
//! * `set` — writes of Zipf-distributed keys from a key space 10× the capacity (evictions);
//! * `zipf` — read-through: a get, and a set on a miss; the hit ratio of a 1 M-request cold run
//!   is printed next to the time.
//!
//! The memory backend is driven through the `raw::Backend` trait, as the cache uses it (one
//! boxed future per call — the peers are plain synchronous maps).
//!
//! `cargo bench -p memstache-benches --bench memory -- --warm-up-time 1 --measurement-time 3`

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memstache_core::memory::MemoryBackend;
use memstache_core::raw::{Backend, EvictionPolicy, Expiry};

const CAPACITY: usize = 10_000;
const KEYS: usize = 100_000;
const ZIPF_S: f64 = 0.99;
const TRACE_LEN: usize = 1 << 20;
const SEED: u64 = 0x5eed_cafe;

/// Polls a future that never waits (the memory backend's) to completion.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            return v;
        }
    }
}

/// SplitMix64.
struct Rng(u64);
impl Rng {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Key indices drawn from Zipf(`s`) over `n` ranks (rank 0 hottest), by inverse CDF.
fn zipf_trace(n: usize, s: f64, len: usize, seed: u64) -> Vec<u32> {
    let mut cdf = Vec::with_capacity(n);
    let mut sum = 0.0;
    for k in 1..=n {
        sum += 1.0 / (k as f64).powf(s);
        cdf.push(sum);
    }
    let mut rng = Rng(seed);
    (0..len)
        .map(|_| {
            let u = rng.next_f64() * sum;
            cdf.partition_point(|&c| c < u).min(n - 1) as u32
        })
        .collect()
}

/// The caches under test, behind one interface.
trait Subject: Sync {
    fn name(&self) -> String;
    fn get(&self, key: &str) -> bool;
    fn set(&self, key: &str, value: Bytes);
}

struct Memory(MemoryBackend);
impl Subject for Memory {
    fn name(&self) -> String {
        format!("memstache-{}", self.0.policy_name())
    }
    fn get(&self, key: &str) -> bool {
        run(self.0.get(key)).ok().flatten().is_some()
    }
    fn set(&self, key: &str, value: Bytes) {
        let _ = run(self.0.set(key, value, Expiry::NEVER));
    }
}

struct Moka(moka::sync::Cache<String, Bytes>);
impl Subject for Moka {
    fn name(&self) -> String {
        "moka".into()
    }
    fn get(&self, key: &str) -> bool {
        self.0.get(key).is_some()
    }
    fn set(&self, key: &str, value: Bytes) {
        self.0.insert(key.to_owned(), value);
    }
}

struct Quick(quick_cache::sync::Cache<String, Bytes>);
impl Subject for Quick {
    fn name(&self) -> String {
        "quick_cache".into()
    }
    fn get(&self, key: &str) -> bool {
        self.0.get(key).is_some()
    }
    fn set(&self, key: &str, value: Bytes) {
        self.0.insert(key.to_owned(), value);
    }
}

fn policies() -> Vec<Arc<dyn EvictionPolicy>> {
    memstache_eviction::all()
}

fn subjects() -> Vec<Box<dyn Subject>> {
    let mut out: Vec<Box<dyn Subject>> = policies()
        .into_iter()
        .map(|p| {
            let store = MemoryBackend::builder()
                .max_entries(CAPACITY)
                .max_bytes(1 << 30)
                .policy_arc(p)
                .build()
                .expect("valid config");
            Box::new(Memory(store)) as Box<dyn Subject>
        })
        .collect();
    out.push(Box::new(Moka(
        moka::sync::Cache::builder()
            .max_capacity(CAPACITY as u64)
            .build(),
    )));
    out.push(Box::new(Quick(quick_cache::sync::Cache::new(CAPACITY))));
    out
}

struct Workload {
    keys: Vec<String>,
    trace: Vec<u32>,
    hot_trace: Vec<u32>,
    value: Bytes,
}

/// Runs `iters` operations split over `threads` threads; returns the wall time.
fn split_run(threads: usize, iters: u64, op: impl Fn(usize, u64) + Sync) -> Duration {
    let per = iters / threads as u64 + 1;
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let op = &op;
            s.spawn(move || {
                for i in 0..per {
                    op(t, i);
                }
            });
        }
    });
    start.elapsed()
}

fn bench_memory(c: &mut Criterion) {
    let w = Workload {
        keys: (0..KEYS).map(|i| format!("user:{i:08}")).collect(),
        trace: zipf_trace(KEYS, ZIPF_S, TRACE_LEN, SEED),
        hot_trace: zipf_trace(CAPACITY, ZIPF_S, TRACE_LEN, SEED + 1),
        value: Bytes::from(vec![0xab; 64]),
    };
    let mask = TRACE_LEN - 1;
    for threads in [1usize, 2] {
        // get_hit
        let mut g = c.benchmark_group(format!("memory/get_hit/{threads}t"));
        g.throughput(Throughput::Elements(1));
        for s in subjects() {
            // coldest first, so that a shard that overflows evicts cold keys under any policy
            for k in w.keys[..CAPACITY].iter().rev() {
                s.set(k, w.value.clone());
            }
            let hits = w.hot_trace[..100_000]
                .iter()
                .filter(|&&k| s.get(&w.keys[k as usize]))
                .count();
            g.bench_function(s.name(), |b| {
                b.iter_custom(|iters| {
                    split_run(threads, iters, |t, i| {
                        let k = w.hot_trace[(t * 7_919 + i as usize) & mask] as usize;
                        black_box(s.get(&w.keys[k]));
                    })
                })
            });
            println!(
                "    {} get_hit: {:.1} % of the measured keys resident",
                s.name(),
                hits as f64 / 1_000.0
            );
        }
        g.finish();

        // set
        let mut g = c.benchmark_group(format!("memory/set/{threads}t"));
        g.throughput(Throughput::Elements(1));
        for s in subjects() {
            g.bench_function(s.name(), |b| {
                b.iter_custom(|iters| {
                    split_run(threads, iters, |t, i| {
                        let k = w.trace[(t * 7_919 + i as usize) & mask] as usize;
                        s.set(&w.keys[k], w.value.clone());
                    })
                })
            });
        }
        g.finish();

        // zipf read-through, with the hit ratio of a cold 1 M-request run
        let mut g = c.benchmark_group(format!("memory/zipf/{threads}t"));
        g.throughput(Throughput::Elements(1));
        for s in subjects() {
            let hit_count = std::sync::atomic::AtomicU64::new(0);
            let cold = split_run(threads, TRACE_LEN as u64, |t, i| {
                let k = w.trace[(t * (TRACE_LEN / 2) + i as usize) & mask] as usize;
                if s.get(&w.keys[k]) {
                    hit_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                } else {
                    s.set(&w.keys[k], w.value.clone());
                }
            });
            let hit_ratio = hit_count.into_inner() as f64 / TRACE_LEN as f64 * 100.0;
            g.bench_function(s.name(), |b| {
                b.iter_custom(|iters| {
                    split_run(threads, iters, |t, i| {
                        let k = w.trace[(t * 7_919 + i as usize) & mask] as usize;
                        if !s.get(&w.keys[k]) {
                            s.set(&w.keys[k], w.value.clone());
                        }
                    })
                })
            });
            println!(
                "    {} zipf/{threads}t: hit ratio {hit_ratio:.2} % (cold, {} requests, \
                 capacity {CAPACITY}, {KEYS} keys, s = {ZIPF_S}); cold run {:.0} ns/op",
                s.name(),
                TRACE_LEN,
                cold.as_nanos() as f64 / TRACE_LEN as f64
            );
        }
        g.finish();
    }
}

criterion_group!(benches, bench_memory);
criterion_main!(benches);
