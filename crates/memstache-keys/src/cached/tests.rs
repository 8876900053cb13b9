use std::sync::atomic::{AtomicUsize, Ordering};

use memstache_core::ErrorKind;
use memstache_core::raw::ManualClock;

use super::*;
use crate::LocalKeyManager;

/// A real `LocalKeyManager` that counts the calls reaching it, and can hold `key` and
/// `current_key` calls at a gate until the test opens it.
#[derive(Debug)]
struct Counting {
    inner: LocalKeyManager,
    calls: AtomicUsize,
    gate: Option<tokio::sync::Semaphore>,
}

impl Counting {
    async fn pass_gate(&self) {
        if let Some(gate) = &self.gate {
            gate.acquire().await.expect("gate").forget();
        }
    }
}

#[async_trait]
impl KeyManager for Counting {
    async fn current_key(&self, key_id: &str) -> Result<Arc<KeyVersion>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.pass_gate().await;
        self.inner.current_key(key_id).await
    }
    async fn key(&self, key_id: &str, version: u32) -> Result<Arc<KeyVersion>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.pass_gate().await;
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
        gate: None,
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

/// Lets every spawned task run until it waits (current-thread runtime: deterministic).
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "current_thread")]
async fn concurrent_misses_make_one_call_and_all_get_the_key() {
    let local = LocalKeyManager::generate();
    let v1 = local.current_key("a").await.unwrap();
    let counting = Arc::new(Counting {
        inner: local.clone(),
        calls: AtomicUsize::new(0),
        gate: Some(tokio::sync::Semaphore::new(0)),
    });
    let cached = CachedKeyManager::new(counting.clone(), Duration::from_secs(60))
        .with_clock(Arc::new(ManualClock::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let c = cached.clone();
        tasks.push(tokio::spawn(async move { c.key("a", 1).await }));
    }
    for _ in 0..16 {
        let c = cached.clone();
        tasks.push(tokio::spawn(async move { c.current_key("a").await }));
    }
    settle().await;
    assert_eq!(
        counting.calls.load(Ordering::SeqCst),
        2,
        "one call for key(a, 1), one for current_key(a)"
    );
    counting.gate.as_ref().unwrap().add_permits(2);
    for t in tasks {
        let k = t.await.unwrap().unwrap();
        assert_eq!(k.material.expose(), v1.material.expose());
    }
    cached.key("a", 1).await.unwrap();
    assert_eq!(
        counting.calls.load(Ordering::SeqCst),
        2,
        "and then it is cached"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_shared_failure_reaches_every_waiter_with_its_kind() {
    let counting = Arc::new(Counting {
        inner: LocalKeyManager::generate().with_auto_create(false),
        calls: AtomicUsize::new(0),
        gate: Some(tokio::sync::Semaphore::new(0)),
    });
    let cached = CachedKeyManager::new(counting.clone(), Duration::from_secs(60));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = cached.clone();
        tasks.push(tokio::spawn(async move { c.current_key("missing").await }));
    }
    settle().await;
    counting.gate.as_ref().unwrap().add_permits(1);
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::KeyNotFound);
        assert_eq!(err.context_value("key_id"), Some("missing"));
    }
    assert_eq!(counting.calls.load(Ordering::SeqCst), 1);
    // failures are not cached: the next call asks again
    counting.gate.as_ref().unwrap().add_permits(1);
    assert!(cached.current_key("missing").await.is_err());
    assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_fetch_in_flight_across_a_destroy_is_not_cached() {
    let local = LocalKeyManager::generate();
    local.current_key("a").await.unwrap();
    let counting = Arc::new(Counting {
        inner: local.clone(),
        calls: AtomicUsize::new(0),
        gate: Some(tokio::sync::Semaphore::new(0)),
    });
    let cached = CachedKeyManager::new(counting.clone(), Duration::from_secs(3600));
    let c = cached.clone();
    let early = tokio::spawn(async move { c.key("a", 1).await });
    settle().await; // the fetch is waiting at the gate, before the destroy
    cached.destroy_key("a").await.unwrap();
    counting.gate.as_ref().unwrap().add_permits(1);
    // Behind the gate the local manager already answers KeyDestroyed (the destroy happened
    // first); either way nothing may be cached for the destroyed id.
    let _ = early.await.unwrap();
    counting.gate.as_ref().unwrap().add_permits(1);
    assert_eq!(
        cached.key("a", 1).await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
}

/// Past 1,024 live versions, a purge that frees nothing must not run again on every insert
/// (that made each insert scan the whole cache: quadratic in the number of versions).
#[tokio::test]
async fn purging_stays_amortised_with_many_live_versions() {
    let (cached, _, _, _) = setup(3600);
    for i in 0..5_000 {
        let id = format!("k{i}");
        cached.current_key(&id).await.unwrap();
    }
    let cache = cached.inner.cache.lock();
    assert_eq!(cache.versions.len(), 5_000, "every version is live");
    // 1,024, 2,048, 4,096: one scan per doubling, not one per insert past 1,024 (3,977).
    assert_eq!(cache.purges, 3);
}

/// A manager whose first call never returns (a request lost on a dead connection) and whose
/// later calls answer.
#[derive(Debug)]
struct FirstCallHangs {
    inner: LocalKeyManager,
    calls: AtomicUsize,
}

#[async_trait]
impl KeyManager for FirstCallHangs {
    async fn current_key(&self, key_id: &str) -> Result<Arc<KeyVersion>> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        self.inner.current_key(key_id).await
    }
    async fn key(&self, key_id: &str, version: u32) -> Result<Arc<KeyVersion>> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            std::future::pending::<()>().await;
        }
        self.inner.key(key_id, version).await
    }
    async fn rotate_key(&self, key_id: &str) -> Result<Arc<KeyVersion>> {
        self.inner.rotate_key(key_id).await
    }
    async fn destroy_key(&self, key_id: &str) -> Result<()> {
        self.inner.destroy_key(key_id).await
    }
}

/// A shared fetch whose caller gave up (timed out) does not wedge its key version: the next
/// caller starts a new fetch and gets the key. Before, it joined the hung fetch and hung too,
/// until restart. (The first caller is cancelled with `now_or_never`: polled once, then
/// dropped, as a timeout drops it; the second must be ready within a bounded number of polls
/// of a manager that answers at once.)
#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_shared_fetch_does_not_wedge_later_lookups() {
    let local = LocalKeyManager::generate();
    let version = local.current_key("a").await.unwrap().version;
    let manager = Arc::new(FirstCallHangs {
        inner: local,
        calls: AtomicUsize::new(0),
    });
    let cached = CachedKeyManager::new(manager.clone(), Duration::from_secs(60));
    for lookup in [true, false] {
        manager.calls.store(0, Ordering::SeqCst);
        let first = if lookup {
            cached.key("a", version).now_or_never()
        } else {
            cached.current_key("a").now_or_never()
        };
        assert!(first.is_none(), "the first call hangs");
        let second = if lookup {
            cached.key("a", version).now_or_never()
        } else {
            cached.current_key("a").now_or_never()
        };
        let second = second.expect("the second call joined the hung fetch");
        assert_eq!(second.unwrap().version, version);
        assert_eq!(manager.calls.load(Ordering::SeqCst), 2);
        cached.clear();
    }
}
