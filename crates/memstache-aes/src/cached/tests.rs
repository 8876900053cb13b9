use std::sync::atomic::{AtomicUsize, Ordering};

use memstache_core::ErrorKind;
use memstache_core::raw::ManualClock;

use super::*;
use crate::LocalKeyManager;

/// A real `LocalKeyManager` that counts the calls reaching it.
#[derive(Debug)]
struct Counting {
    inner: LocalKeyManager,
    calls: AtomicUsize,
}

#[async_trait]
impl KeyManager for Counting {
    async fn current_key(&self, key_id: &str) -> Result<Arc<KeyVersion>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.current_key(key_id).await
    }
    async fn key(&self, key_id: &str, version: u32) -> Result<Arc<KeyVersion>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.key(key_id, version).await
    }
    async fn rotate_key(&self, key_id: &str) -> Result<Arc<KeyVersion>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.rotate_key(key_id).await
    }
    async fn destroy_key(&self, key_id: &str) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.destroy_key(key_id).await
    }
}

fn setup(
    ttl_s: u64,
) -> (
    CachedKeyManager,
    Arc<Counting>,
    LocalKeyManager,
    ManualClock,
) {
    let local = LocalKeyManager::generate();
    let counting = Arc::new(Counting {
        inner: local.clone(),
        calls: AtomicUsize::new(0),
    });
    let clock = ManualClock::new(1_000_000);
    let cached = CachedKeyManager::new(counting.clone(), Duration::from_secs(ttl_s))
        .with_clock(Arc::new(clock.clone()));
    (cached, counting, local, clock)
}

#[tokio::test]
async fn versions_are_served_from_cache_until_the_ttl_passes() {
    let (cached, counting, _, clock) = setup(60);
    let k = cached.current_key("a").await.unwrap();
    for _ in 0..5 {
        assert_eq!(cached.current_key("a").await.unwrap().version, k.version);
        assert_eq!(cached.key("a", 1).await.unwrap().version, 1);
    }
    assert_eq!(
        counting.calls.load(Ordering::SeqCst),
        1,
        "one fetch, then cache hits"
    );
    clock.advance(Duration::from_secs(59));
    cached.key("a", 1).await.unwrap();
    assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(1));
    cached.key("a", 1).await.unwrap();
    cached.current_key("a").await.unwrap();
    assert_eq!(
        counting.calls.load(Ordering::SeqCst),
        3,
        "both expired at the ttl"
    );
}

#[tokio::test]
async fn rotation_elsewhere_is_seen_within_the_ttl_and_through_the_wrapper_at_once() {
    let (cached, _, local, clock) = setup(60);
    assert_eq!(cached.current_key("a").await.unwrap().version, 1);
    local.rotate_key("a").await.unwrap(); // behind the cache's back
    assert_eq!(
        cached.current_key("a").await.unwrap().version,
        1,
        "stale within the ttl"
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(cached.current_key("a").await.unwrap().version, 2);
    assert_eq!(cached.rotate_key("a").await.unwrap().version, 3);
    assert_eq!(
        cached.current_key("a").await.unwrap().version,
        3,
        "seen at once"
    );
    assert_eq!(
        cached.key("a", 1).await.unwrap().version,
        1,
        "old versions stay readable"
    );
}

#[tokio::test]
async fn destroy_through_the_wrapper_evicts_at_once() {
    let (cached, _, _, _) = setup(3600);
    cached.current_key("a").await.unwrap();
    cached.key("a", 1).await.unwrap();
    cached.current_key("b").await.unwrap();
    cached.destroy_key("a").await.unwrap();
    assert_eq!(
        cached.key("a", 1).await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
    assert_eq!(
        cached.current_key("a").await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
    assert_eq!(
        cached.current_key("b").await.unwrap().version,
        1,
        "other ids unaffected"
    );
}

#[tokio::test]
async fn destroy_elsewhere_stops_use_within_the_ttl() {
    let (cached, _, local, clock) = setup(30);
    cached.key("a", 1).await.ok();
    cached.current_key("a").await.unwrap();
    local.destroy_key("a").await.unwrap();
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        cached.key("a", 1).await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
    assert_eq!(
        cached.current_key("a").await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
}

#[tokio::test]
async fn zero_ttl_disables_caching_and_errors_are_not_cached() {
    let (cached, counting, _, _) = setup(0);
    cached.current_key("a").await.unwrap();
    cached.current_key("a").await.unwrap();
    assert_eq!(counting.calls.load(Ordering::SeqCst), 2);

    let (cached, counting, local, _) = setup(60);
    assert_eq!(
        cached.key("a", 1).await.unwrap_err().kind(),
        ErrorKind::KeyNotFound
    );
    local.current_key("a").await.unwrap();
    assert_eq!(cached.key("a", 1).await.unwrap().version, 1);
    assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn debug_shows_cached_ids_and_versions_but_no_key_bytes() {
    let (cached, _, _, _) = setup(60);
    let k = cached.current_key("tenant:acme").await.unwrap();
    let shown = format!("{cached:?}");
    assert!(shown.contains("tenant:acme"));
    let hex: String = k
        .material
        .expose()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert!(!shown.contains(&hex[..16]));
    assert!(!shown.contains(&format!("{:?}", &k.material.expose()[..4])[1..8]));
}
