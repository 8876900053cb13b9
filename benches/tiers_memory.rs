//! Heap bytes per entry of memstache's local tier beside moka (issue 14).
//!
//! `cargo bench -p memstache-benches --bench tiers_memory` — inserts N = 100,000 entries (keys
//! `key:000000`…, 10 bytes; values 64-byte `Vec<u8>`) into each store and prints the heap bytes
//! each entry costs beyond its key and value (the payload, 74 bytes), median of 3 runs, each on
//! a fresh store:
//!
//! * memstache with a local tier only (`MemStache::builder().local_tier(LocalTier::new()
//!   .max_entries(200_000).max_bytes(1 << 30)).build()`: one in-process store, read as the
//!   backend, holding envelopes);
//! * memstache with a `MemoryBackend` *and* a local tier of the same bounds (two in-process
//!   tiers: an envelope in the backend and a decoded copy in L1), and the same `MemoryBackend`
//!   without L1 — the difference is what an L1 copy costs;
//! * `moka::sync::Cache<String, Vec<u8>>` and `quick_cache::sync::Cache<String, Vec<u8>>` of
//!   capacity 200,000.
//!
//! Heap bytes are counted by `peak_alloc`'s global allocator: the sizes asked of the system
//! allocator (live bytes after − before the inserts), not malloc's own per-block overhead
//! (8–16 bytes a block with glibc), which the number of allocations per entry would add. What
//! the empty store allocated when it was built is shown apart. Its own bench target: the
//! counting allocator sees every allocation of the process and would slow the timing rows.

use std::hint::black_box;

use futures::executor::block_on;
use memstache::memory::MemoryBackend;
use memstache::tiers::LocalTier;
use memstache::{EntryOptions, MemStache};
use peak_alloc::PeakAlloc;

/// The system allocator, counting live bytes.
#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

const N: usize = 100_000;
const CAPACITY: usize = 200_000;
const VALUE: usize = 64;
const RUNS: usize = 3;

/// A store under test: built empty, then filled with `keys`.
struct Subject {
    name: &'static str,
    /// Builds an empty store.
    build: fn() -> Box<dyn Store>,
}

trait Store {
    fn insert(&self, key: &str, value: &[u8]);
    /// Finishes pending work (moka's write buffers) and checks that `n` entries are held.
    fn settle(&self, n: usize);
}

struct Ms(MemStache, bool);
impl Store for Ms {
    fn insert(&self, key: &str, value: &[u8]) {
        block_on(self.0.set(key, value, EntryOptions::default())).expect("set");
    }
    fn settle(&self, n: usize) {
        if self.1 {
            assert_eq!(self.0.local_tier_len(), n, "every entry has an L1 copy");
        }
        let probe: Option<Vec<u8>> = block_on(self.0.get("key:000000")).expect("get");
        assert!(probe.is_some());
    }
}

struct Moka(moka::sync::Cache<String, Vec<u8>>);
impl Store for Moka {
    fn insert(&self, key: &str, value: &[u8]) {
        self.0.insert(key.to_owned(), value.to_vec());
    }
    fn settle(&self, n: usize) {
        self.0.run_pending_tasks();
        assert_eq!(self.0.entry_count(), n as u64);
    }
}

struct Quick(quick_cache::sync::Cache<String, Vec<u8>>);
impl Store for Quick {
    fn insert(&self, key: &str, value: &[u8]) {
        self.0.insert(key.to_owned(), value.to_vec());
    }
    fn settle(&self, n: usize) {
        assert_eq!(self.0.len(), n);
    }
}

fn l1() -> LocalTier {
    LocalTier::new().max_entries(CAPACITY).max_bytes(1 << 30)
}

fn memory() -> MemoryBackend {
    MemoryBackend::builder()
        .max_entries(CAPACITY)
        .max_bytes(1 << 30)
        .build()
        .expect("memory backend")
}

fn subjects() -> Vec<Subject> {
    vec![
        Subject {
            name: "memstache, local tier only (one store)",
            build: || {
                Box::new(Ms(
                    MemStache::builder()
                        .local_tier(l1())
                        .build()
                        .expect("cache"),
                    false,
                ))
            },
        },
        Subject {
            name: "memstache, MemoryBackend + local tier (two stores)",
            build: || {
                Box::new(Ms(
                    MemStache::builder()
                        .backend(memory())
                        .local_tier(l1())
                        .build()
                        .expect("cache"),
                    true,
                ))
            },
        },
        Subject {
            name: "memstache, MemoryBackend, no local tier",
            build: || {
                Box::new(Ms(
                    MemStache::builder()
                        .backend(memory())
                        .build()
                        .expect("cache"),
                    false,
                ))
            },
        },
        Subject {
            name: "moka::sync::Cache<String, Vec<u8>>",
            build: || {
                Box::new(Moka(
                    moka::sync::Cache::builder()
                        .max_capacity(CAPACITY as u64)
                        .build(),
                ))
            },
        },
        Subject {
            name: "quick_cache::sync::Cache<String, Vec<u8>>",
            build: || Box::new(Quick(quick_cache::sync::Cache::new(CAPACITY))),
        },
    ]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let keys: Vec<String> = (0..N).map(|i| format!("key:{i:06}")).collect();
    let value: Vec<u8> = (0..VALUE).map(|i| i as u8).collect();
    let payload = keys[0].len() + VALUE;
    println!(
        "heap bytes per entry: {N} entries, {}-byte keys, {VALUE}-byte values (payload {payload} \
         bytes), capacity {CAPACITY}, median of {RUNS} runs\n",
        keys[0].len()
    );
    println!(
        "  {:<52} {:>12} {:>14} {:>14}",
        "store", "empty store", "bytes/entry", "overhead/entry"
    );
    let mut per_entry = Vec::new();
    for s in subjects() {
        let (mut empty, mut per) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let base = ALLOC.current_usage();
            let store = (s.build)();
            let built = ALLOC.current_usage();
            for k in &keys {
                store.insert(k, &value);
            }
            store.settle(N);
            let filled = ALLOC.current_usage();
            empty.push(built.saturating_sub(base) as f64);
            per.push(filled.saturating_sub(built) as f64 / N as f64);
            black_box(&store);
            drop(store);
        }
        let (e, p) = (median(empty), median(per));
        println!(
            "  {:<52} {:>10.0} B {:>12.1} B {:>12.1} B",
            s.name,
            e,
            p,
            p - payload as f64
        );
        per_entry.push((s.name, p));
    }
    let get = |n: &str| per_entry.iter().find(|(m, _)| *m == n).map(|(_, p)| *p);
    if let (Some(two), Some(one)) = (
        get("memstache, MemoryBackend + local tier (two stores)"),
        get("memstache, MemoryBackend, no local tier"),
    ) {
        println!(
            "\n  an L1 copy in front of a backend (two stores − backend only): {:.1} B/entry",
            two - one
        );
    }
    if let (Some(ms), Some(moka)) = (
        get("memstache, local tier only (one store)"),
        get("moka::sync::Cache<String, Vec<u8>>"),
    ) {
        println!(
            "  memstache local tier only / moka, overhead beyond the payload: {:.2}×",
            (ms - payload as f64) / (moka - payload as f64)
        );
    }
}
