//! Every built-in policy passes the shared eviction conformance suite, directly and inside the
//! memory backend.

use std::sync::Arc;

use memstache_core::raw::EvictionPolicy;
use memstache_eviction::{Lfu, Lru, S3Fifo, Sieve, TimeBased, TinyLfu};
use memstache_testkit::conformance::eviction::{run_eviction_suite, run_memory_backend_suite};

fn policies() -> Vec<Arc<dyn EvictionPolicy>> {
    vec![
        Arc::new(Lru),
        Arc::new(Lfu),
        Arc::new(TimeBased),
        Arc::new(TinyLfu::default()),
        Arc::new(TinyLfu::default().adaptive(false)),
        Arc::new(TinyLfu::default().window_fraction(0.5)),
        Arc::new(TinyLfu::default().window_fraction(1.0)),
        Arc::new(TinyLfu::default().window_fraction(0.0)),
        Arc::new(Sieve),
        Arc::new(S3Fifo::default()),
        Arc::new(S3Fifo::default().small_fraction(0.5)),
        Arc::new(S3Fifo::default().small_fraction(1.0)),
        Arc::new(S3Fifo::default().small_fraction(0.0)),
        Arc::new(S3Fifo::default().small_fraction(f64::NAN)),
    ]
}

#[test]
fn every_policy_passes_the_state_suite() {
    for p in policies() {
        run_eviction_suite(p.as_ref());
    }
}

#[test]
fn every_policy_passes_the_memory_backend_suite() {
    for p in policies() {
        run_memory_backend_suite(p);
    }
}

#[test]
fn all_lists_every_policy_once_by_name() {
    let names: Vec<_> = memstache_eviction::all().iter().map(|p| p.name()).collect();
    assert_eq!(names, ["lru", "lfu", "time", "tinylfu", "sieve", "s3fifo"]);
    for n in names {
        assert_eq!(memstache_eviction::by_name(n).map(|p| p.name()), Some(n));
    }
}

#[test]
fn policies_are_send_sync_and_usable_as_trait_objects() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Lru>();
    assert_send_sync::<Lfu>();
    assert_send_sync::<TimeBased>();
    assert_send_sync::<TinyLfu>();
    assert_send_sync::<Sieve>();
    assert_send_sync::<S3Fifo>();
    assert_send_sync::<memstache_core::memory::MemoryBackend>();
    let _: Arc<dyn EvictionPolicy> = Arc::new(TinyLfu::new());
    let _: Arc<dyn EvictionPolicy> = Arc::new(Sieve::new());
    let _: Arc<dyn EvictionPolicy> = Arc::new(S3Fifo::new());
}
