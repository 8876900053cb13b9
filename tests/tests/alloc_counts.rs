//! Heap allocations per `get` and `set` (issue 15, point 3), counted exactly with dhat's
//! testing mode (a counting global allocator, this test binary only). The counts are asserted
//! exactly, so an allocation added to a hot path fails here and has to be argued for.
//!
//! One test function: dhat allows one profiler per process at a time. Each row warms its cache
//! up first (the size hint of the write buffer, compressor contexts, key lookups), then counts
//! `ROUNDS` operations inside one `block_on`, so runtime start-up is not counted. The value is
//! 1 KiB; the compressible one has repeating text, so zstd and gzip do compress it (the
//! default threshold is 1 KiB).
//!
//! ```text
//! cargo test -p memstache-integration-tests --test alloc_counts -- --nocapture
//! ```

use memstache::compression::{Gzip, Zstd};
use memstache::crypto::{Aes256Gcm, LocalKeyManager};
use memstache::serializer::{Json, MessagePack};
use memstache::{EntryOptions, MemStache};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Operations counted per row.
const ROUNDS: u64 = 40;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Record {
    id: u64,
    name: String,
    email: String,
    active: bool,
    score: i32,
    tags: Vec<String>,
}

/// Allocations per operation of `f`, run `ROUNDS` times.
async fn per_op<F, Fut>(mut f: F) -> u64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let before = dhat::HeapStats::get().total_blocks;
    for _ in 0..ROUNDS {
        f().await;
    }
    let n = dhat::HeapStats::get().total_blocks - before;
    assert_eq!(
        n % ROUNDS,
        0,
        "{n} allocations in {ROUNDS} operations: not the same each time"
    );
    n / ROUNDS
}

/// `(allocations per set, allocations per get)` of `v` in `cache`.
async fn counts<T>(cache: &MemStache, v: &T) -> (u64, u64)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    for _ in 0..3 {
        cache
            .set("k", v, EntryOptions::default())
            .await
            .expect("set");
        let back: Option<T> = cache.get("k").await.expect("get");
        assert_eq!(back.as_ref(), Some(v));
    }
    let set = per_op(|| async {
        cache
            .set("k", v, EntryOptions::default())
            .await
            .expect("set");
    })
    .await;
    // the first read after a run of writes allocates once more (not per operation)
    let _: Option<T> = cache.get("k").await.expect("get");
    let get = per_op(|| async {
        let back: Option<T> = cache.get("k").await.expect("get");
        std::hint::black_box(back.expect("hit"));
    })
    .await;
    (set, get)
}

#[test]
fn allocations_per_get_and_set() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let bytes: Vec<u8> = (0..1024).map(|i| (i * 37 % 256) as u8).collect();
    let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog; "
        .iter()
        .copied()
        .cycle()
        .take(1024)
        .collect();
    let record = Record {
        id: 42,
        name: "Ada Lovelace".to_owned(),
        email: "ada@example.org".to_owned(),
        active: true,
        score: -17,
        tags: vec!["admin".to_owned(), "beta".to_owned()],
    };
    let keys = LocalKeyManager::generate();
    let aes = || {
        MemStache::builder()
            .encryptor(Aes256Gcm::default())
            .key_manager(keys.clone())
    };
    let rows = rt.block_on(async {
        let plain = MemStache::builder().build().expect("cache");
        let zstd = MemStache::builder()
            .compressor(Zstd::default())
            .build()
            .expect("cache");
        let gzip = MemStache::builder()
            .compressor(Gzip::default())
            .build()
            .expect("cache");
        let aes = aes().build().expect("cache");
        let msgpack = MemStache::builder()
            .serializer(MessagePack)
            .build()
            .expect("cache");
        let json = MemStache::builder()
            .serializer(Json)
            .build()
            .expect("cache");
        vec![
            ("plain Vec<u8>", counts(&plain, &bytes).await),
            ("plain String", counts(&plain, &"x".repeat(1024)).await),
            ("plain struct", counts(&plain, &record).await),
            ("msgpack Vec<u8>", counts(&msgpack, &bytes).await),
            ("json Vec<u8>", counts(&json, &bytes).await),
            ("zstd Vec<u8>", counts(&zstd, &text).await),
            ("gzip Vec<u8>", counts(&gzip, &text).await),
            ("aes Vec<u8>", counts(&aes, &bytes).await),
        ]
    });
    for (name, (set, get)) in &rows {
        println!("{name:<16} set {set:>2}  get {get:>2}");
    }
    // (set, get), measured (docs/BENCHMARKS.md, "Value types and allocations"): a byte
    // value costs what a `String` does; compression and encryption add their buffers.
    let expected: [(&str, (u64, u64)); 8] = [
        ("plain Vec<u8>", (2, 2)),
        ("plain String", (2, 2)),
        ("plain struct", (2, 6)),
        ("msgpack Vec<u8>", (2, 2)),
        ("json Vec<u8>", (2, 2)),
        ("zstd Vec<u8>", (5, 3)),
        ("gzip Vec<u8>", (5, 3)),
        ("aes Vec<u8>", (5, 5)),
    ];
    assert_eq!(rows, expected);
}
