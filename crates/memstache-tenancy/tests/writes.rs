//! Tenant writes go through the generation guard in the same backend call: one round trip
//! while the known generation is current, and never a write into a cleared generation.

use std::sync::{Arc, Mutex};

use memstache_core::memory::MemoryBackend;
use memstache_core::raw::{BackendRequest, BoxBackendService};
use memstache_core::{EntryOptions, MemStache};
use memstache_tenancy::TenantManager;
use tower::ServiceExt;

/// A cache over `store` that logs the operation of every backend request it sends.
fn counted(store: &MemoryBackend) -> (MemStache, Arc<Mutex<Vec<&'static str>>>) {
    let log: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let seen = Arc::clone(&log);
    let cache = MemStache::builder()
        .namespace("app")
        .backend(store.clone())
        .backend_layer(tower::layer::layer_fn(move |inner: BoxBackendService| {
            let seen = Arc::clone(&seen);
            inner.map_request(move |r: BackendRequest| {
                seen.lock().unwrap().push(r.operation());
                r
            })
        }))
        .build()
        .unwrap();
    (cache, log)
}

fn take(log: &Mutex<Vec<&'static str>>) -> Vec<&'static str> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_with_a_known_generation_is_one_request() {
    let store = MemoryBackend::new();
    let (cache, log) = counted(&store);
    let acme = TenantManager::new(cache).tenant("acme").unwrap();

    // first use: the generation is established (read, then created)
    acme.set("a", &1u32, EntryOptions::default()).await.unwrap();
    let first = take(&log);
    assert_eq!(first.last(), Some(&"set_many_guarded"), "{first:?}");

    acme.set("b", &2u32, EntryOptions::default()).await.unwrap();
    assert_eq!(take(&log), ["set_many_guarded"]);
    acme.set_many(&[("c", &3u32), ("d", &4u32)], EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(take(&log), ["set_many_guarded"]);
    assert_eq!(acme.get::<u32>("d").await.unwrap(), Some(4));
    assert_eq!(take(&log), ["get_many"]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_after_a_remote_clear_lands_in_the_new_generation() {
    let store = MemoryBackend::new();
    let (node_a, log) = counted(&store);
    let (node_b, _) = counted(&store);
    let on_a = TenantManager::new(node_a).tenant("acme").unwrap();
    let on_b = TenantManager::new(node_b).tenant("acme").unwrap();

    on_a.set("k", &1u32, EntryOptions::default()).await.unwrap();
    assert_eq!(on_b.get::<u32>("k").await.unwrap(), Some(1));
    on_b.clear().await.unwrap(); // node A still holds the old generation
    take(&log);

    on_a.set("k", &2u32, EntryOptions::default()).await.unwrap();
    // the guarded write found the new generation, adopted it and wrote again
    assert_eq!(take(&log), ["set_many_guarded", "set_many_guarded"]);
    assert_eq!(on_b.get::<u32>("k").await.unwrap(), Some(2));
    assert_eq!(on_a.get::<u32>("k").await.unwrap(), Some(2));
}
