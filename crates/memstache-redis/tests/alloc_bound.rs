//! Peak heap allocation while reading an oversized entry from a real Redis stays under the
//! backend's `max_entry_size`: the reply is never read whole (a plain `GET` or `MGET` would
//! allocate the whole 32 MiB value, twice on redis-rs: read buffer and parsed value).
//!
//! Its own test binary: the counting `#[global_allocator]` sees every allocation of the
//! process, so nothing else may run beside the measured reads (one test function, a
//! current-thread runtime).

mod common;

use common::prefix;
use memstache_core::ErrorKind;
use memstache_core::raw::Backend;
use memstache_harness::redis::RedisServer;
use memstache_redis::{RedisBackend, RedisConfig, SlidingReads};
use peak_alloc::PeakAlloc;

/// The system allocator, counting the bytes live now and the peak since the last reset.
#[global_allocator]
static ALLOC: PeakAlloc = PeakAlloc;

/// The peak live bytes above the level at the start, while `f` runs.
async fn peak_during<F: Future>(f: F) -> (F::Output, usize) {
    ALLOC.reset_peak_usage();
    let base = ALLOC.current_usage();
    let out = f.await;
    (out, ALLOC.peak_usage().saturating_sub(base))
}

#[tokio::test(flavor = "current_thread")]
async fn reading_an_oversized_entry_allocates_less_than_the_bound() {
    const MAX: usize = 4 << 20;
    const VALUE: usize = 32 << 20;
    let server = RedisServer::start();
    let p = prefix("alloc");
    let big = format!("{p}:big");
    let small = format!("{p}:small");
    server.cmd(&["SET", &big, &"x".repeat(VALUE)]);
    server.cmd(&["SET", &small, "s"]);
    for client in ["redis-rs", "fred"] {
        for mode in [
            SlidingReads::Auto,
            SlidingReads::Script,
            SlidingReads::Disabled,
        ] {
            let mut config =
                RedisConfig::from_url(&format!("{}?client={client}", server.url())).unwrap();
            config.sliding_reads = mode;
            config.max_entry_size = MAX;
            let b = RedisBackend::from_config(config).await.unwrap();
            // warm up: connections, buffers, script loaded
            assert!(b.get(&small).await.unwrap().is_some());
            assert!(b.get_many(&[small.as_str()]).await.unwrap()[0].is_some());

            let (r, peak) = peak_during(b.get(&big)).await;
            let kind = r.map(|_| ()).unwrap_err().kind();
            assert_eq!(kind, ErrorKind::ValueTooLarge);
            println!("{client} {mode:?} get: peak {peak} bytes (bound {MAX}, value {VALUE})");
            assert!(peak < MAX, "{client} {mode:?} get: peak {peak} bytes");

            let keys = [small.as_str(), big.as_str()];
            let (r, peak) = peak_during(b.get_many(&keys)).await;
            let kind = r.map(|_| ()).unwrap_err().kind();
            assert_eq!(kind, ErrorKind::ValueTooLarge);
            println!("{client} {mode:?} get_many: peak {peak} bytes");
            assert!(peak < MAX, "{client} {mode:?} get_many: peak {peak} bytes");
            b.quit().await;
        }
    }
}
