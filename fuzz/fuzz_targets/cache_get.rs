//! Arbitrary bytes stored under a key, read back through the whole pipeline as several
//! types: must never panic; anything returned must have come from a valid envelope.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use memstache_core::memory::MemoryBackend;
use memstache_core::raw::{Backend, Expiry};
use memstache_core::MemStache;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let backend = MemoryBackend::new();
        let cache = MemStache::builder().backend(backend.clone()).build().unwrap();
        let sk = cache.storage_key("k").unwrap();
        backend.set(&sk, Bytes::copy_from_slice(data), Expiry::NEVER).await.unwrap();
        let _ = cache.get::<String>("k").await;
        let _ = cache.get::<Vec<u64>>("k").await;
        let _ = cache.get::<(u8, Option<String>)>("k").await;
    });
});
