//! Backend layers, the operation timeout around them, fail-safe and the distributed lock,
//! against mock backends (the real-Redis fault tests live in `memstache-resilience`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tower::ServiceExt;

use super::test_support::{Flaky, capture_logs, fail_safe_cache};
use crate::memory::MemoryBackend;
use crate::raw::{Backend, BackendRequest, BackendResponse, BoxBackendService, Expiry};
use crate::{EntryOptions, Error, ErrorKind, FailSafe, LockOptions, MemStache, Result};

fn tag_layer(
    log: Arc<Mutex<Vec<&'static str>>>,
    tag: &'static str,
) -> tower::layer::LayerFn<impl Fn(BoxBackendService) -> BoxBackendService + Send + Sync + 'static>
{
    tower::layer::layer_fn(move |inner: BoxBackendService| {
        let log = Arc::clone(&log);
        BoxBackendService::new(inner.map_request(move |r: BackendRequest| {
            log.lock().unwrap().push(tag);
            r
        }))
    })
}

#[tokio::test(flavor = "current_thread")]
async fn layers_stack_first_call_outermost() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let cache = MemStache::builder()
        .backend_layer(tag_layer(Arc::clone(&log), "outer"))
        .backend_layer(tag_layer(Arc::clone(&log), "inner"))
        .build()
        .unwrap();
    cache.set("k", &1u8, EntryOptions::default()).await.unwrap();
    assert_eq!(cache.get::<u8>("k").await.unwrap(), Some(1));
    assert!(cache.remove("k").await.unwrap());
    assert_eq!(
        *log.lock().unwrap(),
        ["outer", "inner", "outer", "inner", "outer", "inner"]
    );
    // batch operations go through the stack too
    cache
        .set_many(&[("a", &1u8)], EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(log.lock().unwrap().len(), 8);
}

#[tokio::test(flavor = "current_thread")]
async fn layer_errors_stay_typed() {
    let cache = MemStache::builder()
        .backend_layer(tower::layer::layer_fn(|_inner: BoxBackendService| {
            tower::service_fn(|_req: BackendRequest| async {
                Err::<BackendResponse, _>(Error::new(ErrorKind::CircuitOpen, "open"))
            })
        }))
        .build()
        .unwrap();
    let e = cache.get::<u8>("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CircuitOpen);
    assert!(e.is_temporary());
    assert_eq!(e.operation(), Some("get"));
}

/// A layer answering the wrong response kind is an `Internal` error, not a panic.
#[tokio::test(flavor = "current_thread")]
async fn wrong_response_kind_is_internal() {
    let cache = MemStache::builder()
        .backend_layer(tower::layer::layer_fn(|_inner: BoxBackendService| {
            tower::service_fn(|_req: BackendRequest| async {
                Ok::<_, Error>(BackendResponse::Done)
            })
        }))
        .build()
        .unwrap();
    assert_eq!(
        cache.get::<u8>("k").await.unwrap_err().kind(),
        ErrorKind::Internal
    );
}

/// The operation timeout is outside every layer: a layer that never answers cannot hold a
/// call longer than it.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn operation_timeout_bounds_the_whole_stack() {
    let cache = MemStache::builder()
        .operation_timeout(Duration::from_millis(200))
        .backend_layer(tower::layer::layer_fn(|inner: BoxBackendService| {
            inner.and_then(|r| async move {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(r)
            })
        }))
        .build()
        .unwrap();
    let t = tokio::time::Instant::now();
    let e = cache.get::<u8>("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.is_temporary());
    assert_eq!(t.elapsed(), Duration::from_millis(200));
}

#[tokio::test(flavor = "current_thread")]
async fn backend_service_dispatches_every_request() {
    let svc = crate::raw::BackendService::new(Arc::new(MemoryBackend::new()));
    let call = |r| svc.clone().oneshot(r);
    let v = Bytes::from_static(b"v");
    assert_eq!(
        call(BackendRequest::SetIfAbsent {
            key: "k".into(),
            value: v.clone(),
            expiry: Expiry::NEVER
        })
        .await
        .unwrap(),
        BackendResponse::Flag(true)
    );
    assert_eq!(
        call(BackendRequest::Get { key: "k".into() }).await.unwrap(),
        BackendResponse::Value(Some(v.clone()))
    );
    assert_eq!(
        call(BackendRequest::RemoveIfEquals {
            key: "k".into(),
            expected: Bytes::from_static(b"x")
        })
        .await
        .unwrap(),
        BackendResponse::Flag(false)
    );
    assert_eq!(
        call(BackendRequest::RemoveIfEquals {
            key: "k".into(),
            expected: v.clone()
        })
        .await
        .unwrap(),
        BackendResponse::Flag(true)
    );
    assert_eq!(
        call(BackendRequest::GetMany {
            keys: vec!["k".into()]
        })
        .await
        .unwrap(),
        BackendResponse::Values(vec![None])
    );
    assert_eq!(
        call(BackendRequest::RemoveMany {
            keys: vec!["k".into()]
        })
        .await
        .unwrap(),
        BackendResponse::Count(0)
    );
    let dbg = format!(
        "{:?}",
        BackendRequest::Set {
            key: "secret-key".into(),
            value: v,
            expiry: Expiry::NEVER
        }
    );
    assert!(!dbg.contains("secret-key") && dbg.contains("size"), "{dbg}");
}

#[tokio::test(flavor = "current_thread")]
async fn fail_safe_serves_last_good_value_within_max_staleness() {
    let (out, _guard) = capture_logs(tracing::Level::DEBUG);

    let (cache, flaky, clock) = fail_safe_cache(ErrorKind::Unavailable);
    cache
        .set("a", &"one".to_owned(), EntryOptions::default())
        .await
        .unwrap();
    // a value only read (written by "another node") is kept too
    let other = MemStache::builder()
        .backend(flaky.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    other
        .set("b", &"two".to_owned(), EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(
        cache.get::<String>("b").await.unwrap().as_deref(),
        Some("two")
    );

    flaky.set_down(true);
    assert_eq!(
        cache.get::<String>("a").await.unwrap().as_deref(),
        Some("one")
    );
    clock.advance(Duration::from_secs(59));
    assert_eq!(
        cache.get::<String>("b").await.unwrap().as_deref(),
        Some("two")
    );
    // never seen: the error comes through
    assert_eq!(
        cache.get::<String>("c").await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    let s = cache.stats();
    assert_eq!(s.fail_safe_hits, 2);
    assert!(s.errors >= 3);
    // get_or_set serves the fail-safe copy without running the loader
    let v: String = cache
        .get_or_set("a", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>("loaded".to_owned())
        })
        .await
        .unwrap();
    assert_eq!(v, "one");
    assert_eq!(cache.stats().loader_calls, 0);

    // older than max staleness: the error again
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        cache.get::<String>("a").await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );

    // back up: fresh values again
    flaky.set_down(false);
    assert_eq!(
        cache.get::<String>("a").await.unwrap().as_deref(),
        Some("one")
    );
    let logs = out.text();
    assert!(logs.contains("fail_safe=true"), "{logs}");
    assert!(!logs.contains("\"one\"") && !logs.contains("two"), "{logs}");
}

/// `get_many` keeps every hit and, when the backend fails, is served from the local tier only
/// when every key has a usable copy: a key never seen is not reported as a miss.
#[tokio::test(flavor = "current_thread")]
async fn fail_safe_serves_a_batch_only_when_every_key_has_a_copy() {
    let (out, _guard) = capture_logs(tracing::Level::DEBUG);
    let (cache, flaky, clock) = fail_safe_cache(ErrorKind::Unavailable);
    // written by "another node", seen here only through get_many
    let other = MemStache::builder()
        .backend(flaky.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    for (k, v) in [("a", 1u32), ("b", 2)] {
        other.set(k, &v, EntryOptions::default()).await.unwrap();
    }
    let got: Vec<Option<u32>> = cache.get_many(&["a", "b", "absent"]).await.unwrap();
    assert_eq!(got, vec![Some(1), Some(2), None]);

    flaky.set_down(true);
    let got: Vec<Option<u32>> = cache.get_many(&["b", "a"]).await.unwrap();
    assert_eq!(got, vec![Some(2), Some(1)]);
    assert_eq!(cache.stats().fail_safe_hits, 1);
    // a key without a copy (never a value, or never seen): the backend's error, not a miss
    for keys in [&["a", "absent"][..], &["a", "never-read"]] {
        assert_eq!(
            cache.get_many::<u32, _>(keys).await.unwrap_err().kind(),
            ErrorKind::Unavailable,
            "{keys:?}"
        );
    }
    // a copy that does not decode as the requested type: the error too
    assert_eq!(
        cache
            .get_many::<String, _>(&["a"])
            .await
            .map(|_| ())
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );
    // the single-key path sees the copies get_many kept
    assert_eq!(cache.get::<u32>("b").await.unwrap(), Some(2));
    // older than max staleness: the error
    clock.advance(Duration::from_secs(61));
    assert_eq!(
        cache
            .get_many::<u32, _>(&["a", "b"])
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(cache.stats().fail_safe_hits, 2);
    let logs = out.text();
    assert!(
        logs.contains("served the batch from fail-safe copies"),
        "{logs}"
    );
    assert!(logs.contains("fail_safe=true"), "{logs}");
}

#[tokio::test(flavor = "current_thread")]
async fn fail_safe_never_masks_permanent_errors_nor_removed_or_replaced_values() {
    let (cache, flaky, _clock) = fail_safe_cache(ErrorKind::Backend);
    cache
        .set("a", &1u32, EntryOptions::default())
        .await
        .unwrap();
    flaky.set_down(true);
    assert_eq!(
        cache.get::<u32>("a").await.unwrap_err().kind(),
        ErrorKind::Backend
    );
    assert_eq!(cache.stats().fail_safe_hits, 0);

    let (cache, flaky, _clock) = fail_safe_cache(ErrorKind::Timeout);
    cache
        .set("removed", &1u32, EntryOptions::default())
        .await
        .unwrap();
    cache
        .set("replaced", &1u32, EntryOptions::default())
        .await
        .unwrap();
    cache
        .set("kept", &1u32, EntryOptions::default())
        .await
        .unwrap();
    flaky.set_down(true);
    assert!(cache.remove("removed").await.is_err());
    assert!(
        cache
            .set("replaced", &2u32, EntryOptions::default())
            .await
            .is_err()
    );
    assert_eq!(
        cache.get::<u32>("removed").await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    assert_eq!(
        cache.get::<u32>("replaced").await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    assert_eq!(cache.get::<u32>("kept").await.unwrap(), Some(1));
    // a copy that does not decode as the requested type is not served: the backend's error
    assert_eq!(
        cache
            .get::<String>("kept")
            .await
            .map(|_| ())
            .unwrap_err()
            .kind(),
        ErrorKind::Timeout
    );
    assert!(FailSafe::new(Duration::ZERO).validate().is_err());
}

#[tokio::test(flavor = "current_thread")]
async fn memory_remove_if_equals_compares_and_deletes() {
    let b = MemoryBackend::new();
    b.set("k", Bytes::from_static(b"mine"), Expiry::NEVER)
        .await
        .unwrap();
    assert!(!b.remove_if_equals("k", b"theirs").await.unwrap());
    assert!(b.exists("k").await.unwrap());
    assert!(b.remove_if_equals("k", b"mine").await.unwrap());
    assert!(!b.exists("k").await.unwrap());
    assert!(!b.remove_if_equals("k", b"mine").await.unwrap());
}

/// N caches on one shared store (N "instances": no shared single-flight) × M tasks missing the
/// same key: the loader runs once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_lock_runs_the_loader_about_once_across_instances() {
    let shared = MemoryBackend::new();
    let loads = Arc::new(AtomicU64::new(0));
    let opts = LockOptions::new()
        .wait(Duration::from_secs(30))
        .poll(Duration::from_millis(5));
    let instances: Vec<MemStache> = (0..4)
        .map(|_| {
            MemStache::builder()
                .backend(shared.clone())
                .distributed_lock(opts)
                .build()
                .unwrap()
        })
        .collect();
    let barrier = Arc::new(tokio::sync::Barrier::new(4 * 8));
    let mut tasks = Vec::new();
    for c in &instances {
        for _ in 0..8 {
            let (c, loads, barrier) = (c.clone(), Arc::clone(&loads), Arc::clone(&barrier));
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                c.get_or_set("hot", EntryOptions::default(), || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<_, std::io::Error>(7u64)
                })
                .await
                .unwrap()
            }));
        }
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 7);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    // the lock was released
    let lk = instances[0].lock_key(&instances[0].storage_key("hot").unwrap());
    assert!(!shared.exists(&lk).await.unwrap());
}

/// A holder that never releases (died): the others load after the bounded wait.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn dead_lock_holder_costs_at_most_the_wait() {
    let shared = MemoryBackend::new();
    let cache = MemStache::builder()
        .backend(shared.clone())
        .distributed_lock(
            LockOptions::new()
                .wait(Duration::from_millis(300))
                .poll(Duration::from_millis(20)),
        )
        .build()
        .unwrap();
    let lk = cache.lock_key(&cache.storage_key("k").unwrap());
    assert!(
        shared
            .set_if_absent(&lk, Bytes::from_static(b"dead-holder"), Expiry::NEVER)
            .await
            .unwrap()
    );
    let t = tokio::time::Instant::now();
    let v: u8 = cache
        .get_or_set("k", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(3)
        })
        .await
        .unwrap();
    assert_eq!(v, 3);
    assert_eq!(t.elapsed(), Duration::from_millis(300));
    assert_eq!(cache.stats().loader_calls, 1);
    // the foreign lock is left alone (only its holder's token may release it)
    assert!(shared.exists(&lk).await.unwrap());
}

/// The lock cannot be taken (backend refuses): load anyway.
#[tokio::test(flavor = "current_thread")]
async fn unavailable_lock_does_not_block_loading() {
    let flaky = Flaky::new(MemoryBackend::new(), ErrorKind::Unavailable);
    flaky.set_down(true);
    let cache = MemStache::builder()
        .backend(flaky.clone())
        .distributed_lock(LockOptions::new())
        .build()
        .unwrap();
    let v: u8 = cache
        .get_or_set("k", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(9)
        })
        .await
        .unwrap();
    assert_eq!(v, 9);
    assert!(
        MemStache::builder()
            .distributed_lock(LockOptions::new().poll(Duration::ZERO))
            .build()
            .is_err()
    );
}

/// A store whose first `set_if_absent` is applied and then reported as a timeout; with
/// `retry`, the call is resent once on that timeout, as a retry layer does (the resend then
/// finds the lock the first attempt wrote).
#[derive(Debug, Clone)]
struct AppliedThenTimedOut {
    inner: MemoryBackend,
    retry: bool,
    failed_once: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait::async_trait]
impl Backend for AppliedThenTimedOut {
    fn name(&self) -> &'static str {
        "applied-then-timed-out"
    }
    fn capabilities(&self) -> crate::raw::Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.inner.set(key, value, expiry).await
    }
    async fn remove(&self, key: &str) -> Result<bool> {
        self.inner.remove(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner.exists(key).await
    }
    async fn touch(&self, key: &str) -> Result<bool> {
        self.inner.touch(key).await
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let first = self.inner.set_if_absent(key, value.clone(), expiry).await?;
        if self.failed_once.swap(true, Ordering::SeqCst) {
            return Ok(first);
        }
        // applied, but the answer is lost
        if self.retry {
            self.inner.set_if_absent(key, value, expiry).await
        } else {
            Err(Error::new(
                ErrorKind::Timeout,
                "injected: applied, then timed out",
            ))
        }
    }
    async fn remove_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool> {
        self.inner.remove_if_equals(key, expected).await
    }
}

/// A lock acquisition whose write was applied but whose answer was lost (a timeout, or a
/// retried `set_if_absent` that then finds the lock present) recognises its own token: the
/// loader runs at once (no wait for "another" holder, on the paused clock) and the lock is
/// released afterwards. Without the read-back, the cache waits the whole `wait` for itself and
/// leaves its own lock behind until the lease ends.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_retried_lock_acquisition_recognises_its_own_lock() {
    for retry in [true, false] {
        let shared = MemoryBackend::new();
        let backend = AppliedThenTimedOut {
            inner: shared.clone(),
            retry,
            failed_once: Arc::default(),
        };
        let cache = MemStache::builder()
            .backend(backend)
            .distributed_lock(
                LockOptions::new()
                    .wait(Duration::from_secs(3))
                    .poll(Duration::from_millis(50)),
            )
            .build()
            .unwrap();
        let t = tokio::time::Instant::now();
        let v: u8 = cache
            .get_or_set("k", EntryOptions::default(), || async {
                Ok::<_, std::io::Error>(5)
            })
            .await
            .unwrap();
        assert_eq!(v, 5);
        assert_eq!(
            t.elapsed(),
            Duration::ZERO,
            "retry={retry}: waited for its own lock"
        );
        assert_eq!(cache.stats().loader_calls, 1);
        let lk = cache.lock_key(&cache.storage_key("k").unwrap());
        assert!(
            !shared.exists(&lk).await.unwrap(),
            "retry={retry}: its own lock was not released"
        );
    }
}
