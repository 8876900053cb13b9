//! `get_or_set_many`: one loader call with the missed keys, single-flight per key across
//! overlapping callers, isolation of a failing loader, one batch write, tiers and fail-safe.
//! Concurrency is staged with oneshot gates and bounded yields on a current-thread runtime, never sleeps.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::oneshot;

use super::test_support::{Flaky, capture_logs};
use crate::memory::MemoryBackend;
use crate::raw::{Backend, BackendEntry, Capabilities, Expiry, ManualClock, MemoryBackplane};
use crate::scope::{Outcome, Scope};
use crate::tiers::LocalTier;
use crate::{EntryOptions, ErrorKind, FailSafe, MemStache};

/// A memory backend that counts its calls by kind, batch calls apart.
#[derive(Debug, Clone, Default)]
struct Counting {
    inner: MemoryBackend,
    gets: Arc<AtomicU64>,
    sets: Arc<AtomicU64>,
    get_manys: Arc<AtomicU64>,
    set_manys: Arc<AtomicU64>,
    /// Entries written by `set_many` calls.
    batched: Arc<AtomicU64>,
}

impl Counting {
    fn calls(&self) -> [u64; 4] {
        [&self.gets, &self.sets, &self.get_manys, &self.set_manys].map(|c| c.load(Ordering::SeqCst))
    }
}

#[async_trait]
impl Backend for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str) -> crate::Result<Option<Bytes>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> crate::Result<()> {
        self.sets.fetch_add(1, Ordering::SeqCst);
        self.inner.set(key, value, expiry).await
    }
    async fn remove(&self, key: &str) -> crate::Result<bool> {
        self.inner.remove(key).await
    }
    async fn exists(&self, key: &str) -> crate::Result<bool> {
        self.inner.exists(key).await
    }
    async fn touch(&self, key: &str) -> crate::Result<bool> {
        self.inner.touch(key).await
    }
    async fn get_many(&self, keys: &[&str]) -> crate::Result<Vec<Option<Bytes>>> {
        self.get_manys.fetch_add(1, Ordering::SeqCst);
        self.inner.get_many(keys).await
    }
    async fn set_many(&self, entries: Vec<BackendEntry>) -> crate::Result<()> {
        self.set_manys.fetch_add(1, Ordering::SeqCst);
        self.batched
            .fetch_add(entries.len() as u64, Ordering::SeqCst);
        self.inner.set_many(entries).await
    }
}

fn counting_cache() -> (MemStache, Counting) {
    let b = Counting::default();
    let cache = MemStache::builder().backend(b.clone()).build().unwrap();
    (cache, b)
}

fn opts() -> EntryOptions {
    EntryOptions::default()
}

/// Every key the loaders of a test were asked for, in order of the calls.
#[derive(Clone, Default)]
struct Asked(Arc<Mutex<Vec<Vec<String>>>>);

impl Asked {
    fn record(&self, keys: &[String]) {
        self.0.lock().unwrap().push(keys.to_vec());
    }
    fn calls(&self) -> Vec<Vec<String>> {
        self.0.lock().unwrap().clone()
    }
    /// How many times each key was loaded.
    fn per_key(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for k in self.calls().into_iter().flatten() {
            *m.entry(k).or_default() += 1;
        }
        m
    }
}

/// `value(k)`: what the test loaders return for `k`.
fn value(k: &str) -> String {
    format!("v-{k}")
}

fn some(ks: &[&str]) -> Vec<Option<String>> {
    ks.iter().map(|k| Some(value(k))).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn one_loader_call_with_exactly_the_missed_keys_and_hits_are_not_reloaded() {
    let (cache, b) = counting_cache();
    cache.set("a", &value("a"), opts()).await.unwrap();
    let asked = Asked::default();
    let got =
        cache
            .get_or_set_many(&["a", "b", "c"], opts(), |missing| {
                asked.record(&missing);
                async move {
                    Ok::<_, std::io::Error>(missing.into_iter().map(|k| (k.clone(), value(&k))))
                }
            })
            .await
            .unwrap();
    assert_eq!(got, some(&["a", "b", "c"]));
    assert_eq!(asked.calls(), [vec!["b".to_owned(), "c".to_owned()]]);
    // stored: a second call is all hits, its loader never runs
    let got = cache
        .get_or_set_many(&["c", "a", "b"], opts(), |missing| {
            asked.record(&missing);
            async { Ok::<_, std::io::Error>(Vec::<(String, String)>::new()) }
        })
        .await
        .unwrap();
    assert_eq!(got, some(&["c", "a", "b"]));
    assert_eq!(asked.calls().len(), 1, "hits were reloaded");
    let s = cache.stats();
    assert_eq!((s.loader_calls, s.hits, s.misses), (1, 4, 4));
    // batch reads only: the first read, the re-read of the led keys, the all-hit read
    assert_eq!(b.calls(), [0, 1, 3, 1]); // the one `set` is the test's own
}

#[tokio::test(flavor = "current_thread")]
async fn the_loaded_values_are_stored_in_one_batch_call() {
    let (cache, b) = counting_cache();
    let got: Vec<Option<u32>> = cache
        .get_or_set_many(&["x", "y", "z", "w"], opts(), |missing| async move {
            Ok::<_, std::io::Error>(missing.into_iter().zip(1u32..))
        })
        .await
        .unwrap();
    assert_eq!(got, [Some(1), Some(2), Some(3), Some(4)]);
    assert_eq!(b.set_manys.load(Ordering::SeqCst), 1, "one batch write");
    assert_eq!(b.batched.load(Ordering::SeqCst), 4);
    assert_eq!(b.sets.load(Ordering::SeqCst), 0, "no single-key writes");
    assert_eq!(cache.stats().sets, 4);
    assert_eq!(cache.get::<u32>("z").await.unwrap(), Some(3));
}

#[tokio::test(flavor = "current_thread")]
async fn keys_the_loader_does_not_return_are_absent_and_extra_keys_are_ignored() {
    let (cache, b) = counting_cache();
    cache.set("hit", &value("hit"), opts()).await.unwrap();
    let got = cache
        .get_or_set_many(&["hit", "found", "gone"], opts(), |missing| async move {
            assert_eq!(missing, ["found", "gone"]);
            Ok::<_, std::io::Error>(vec![
                ("found".to_owned(), "first".to_owned()),
                ("found".to_owned(), value("found")), // twice: the last one wins
                ("hit".to_owned(), "overwrite?".to_owned()), // not asked for: ignored
                ("stranger".to_owned(), "x".to_owned()), // not asked for: ignored
            ])
        })
        .await
        .unwrap();
    assert_eq!(got, [Some(value("hit")), Some(value("found")), None]);
    assert_eq!(
        b.batched.load(Ordering::SeqCst),
        1,
        "only the asked-for key is stored"
    );
    assert_eq!(cache.get::<String>("gone").await.unwrap(), None);
    assert_eq!(cache.get::<String>("stranger").await.unwrap(), None);
    assert_eq!(
        cache.get::<String>("hit").await.unwrap(),
        Some(value("hit"))
    );
}

#[tokio::test(flavor = "current_thread")]
async fn duplicate_keys_are_loaded_once_and_answered_at_every_position() {
    let (cache, _) = counting_cache();
    cache.set("a", &value("a"), opts()).await.unwrap();
    let asked = Asked::default();
    let got =
        cache
            .get_or_set_many(&["b", "a", "b", "a", "c", "b"], opts(), |missing| {
                asked.record(&missing);
                async move {
                    Ok::<_, std::io::Error>(missing.into_iter().map(|k| (k.clone(), value(&k))))
                }
            })
            .await
            .unwrap();
    assert_eq!(got, some(&["b", "a", "b", "a", "c", "b"]));
    assert_eq!(asked.calls(), [vec!["b".to_owned(), "c".to_owned()]]);
}

/// What a test loader returns.
type Loaded<T> = std::io::Result<Vec<(String, T)>>;

/// A loader that must not run.
fn never() -> impl FnOnce(Vec<String>) -> std::future::Ready<Loaded<u8>> {
    |_| panic!("the loader ran")
}

#[tokio::test(flavor = "current_thread")]
async fn no_keys_is_no_call_at_all() {
    let (cache, b) = counting_cache();
    let got: Vec<Option<u8>> = cache
        .get_or_set_many::<u8, &str, _, _, _, _>(&[], opts(), never())
        .await
        .unwrap();
    assert!(got.is_empty());
    assert_eq!(b.calls(), [0, 0, 0, 0]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_bad_key_is_a_typed_error_before_any_read_or_load() {
    let (cache, b) = counting_cache();
    for bad in ["", "has\ncontrol", &"k".repeat(10_000)] {
        let e = cache
            .get_or_set_many(&["fine", bad], opts(), never())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey);
        assert_eq!(e.operation(), Some("get_or_set_many"));
    }
    assert_eq!(b.calls(), [0, 0, 0, 0]);
    assert_eq!(cache.inner.flights.len(), 0);
}

/// Yields until `cond` holds (bounded: a broken staging fails instead of hanging).
async fn until(cond: impl Fn() -> bool) {
    for _ in 0..1_000 {
        if cond() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("the staged state was never reached");
}

/// A loader that records its keys, waits for `gate`, then returns `value(k)` for each key.
fn gated(
    asked: Asked,
    gate: oneshot::Receiver<()>,
) -> impl FnOnce(Vec<String>) -> futures::future::BoxFuture<'static, Loaded<String>> {
    move |keys| {
        asked.record(&keys);
        Box::pin(async move {
            let _ = gate.await;
            Ok(keys.into_iter().map(|k| (k.clone(), value(&k))).collect())
        })
    }
}

/// A leads {a, b}; B asks {b, c} while A loads: B's loader gets only `c`, B waits for A's `b`;
/// a single-key `get_or_set` of `a` waits for A too. Every key is loaded once.
#[tokio::test(flavor = "current_thread")]
async fn concurrent_overlapping_callers_load_each_key_once() {
    let (cache, _) = counting_cache();
    let asked = Asked::default();
    let (release_a, gate_a) = oneshot::channel();
    let c = cache.clone();
    let load_a = gated(asked.clone(), gate_a);
    let a = tokio::spawn(async move { c.get_or_set_many(&["a", "b"], opts(), load_a).await });
    until(|| cache.inner.flights.len() == 2).await; // A leads a and b, its loader waits
    let (c, q) = (cache.clone(), asked.clone());
    let b = tokio::spawn(async move {
        c.get_or_set_many(&["b", "c"], opts(), |keys| {
            q.record(&keys);
            async move { Ok::<_, std::io::Error>(keys.into_iter().map(|k| (k.clone(), value(&k)))) }
        })
        .await
    });
    let c = cache.clone();
    let single = tokio::spawn(async move {
        c.get_or_set("a", opts(), || async {
            Ok::<_, std::io::Error>("from single".to_owned())
        })
        .await
    });
    until(|| asked.calls().len() == 2).await; // B's loader ran (for c), B now waits for b
    for _ in 0..8 {
        tokio::task::yield_now().await; // the single caller reaches its wait on a
    }
    assert_eq!(cache.inner.flights.len(), 2, "a and b are still A's");
    release_a.send(()).unwrap();
    assert_eq!(a.await.unwrap().unwrap(), some(&["a", "b"]));
    assert_eq!(b.await.unwrap().unwrap(), some(&["b", "c"]));
    assert_eq!(
        single.await.unwrap().unwrap(),
        value("a"),
        "waited for A's value"
    );
    assert_eq!(
        asked.calls(),
        [vec!["a".to_owned(), "b".to_owned()], vec!["c".to_owned()]]
    );
    assert!(asked.per_key().values().all(|&n| n == 1));
    assert_eq!(cache.stats().loader_calls, 2);
    assert_eq!(cache.inner.flights.len(), 0);
}

/// A's loader fails for {a, b}; B asked {b, c}: B's own key `c` is loaded and stored, B's
/// waited key `b` fails B with A's error; nothing A led is cached.
#[tokio::test(flavor = "current_thread")]
async fn a_failing_loader_fails_only_the_keys_it_led() {
    let (cache, _) = counting_cache();
    let (release_a, gate_a) = oneshot::channel::<()>();
    let c = cache.clone();
    let a = tokio::spawn(async move {
        c.get_or_set_many(&["a", "b"], opts(), |_| async move {
            let _ = gate_a.await;
            Err::<Vec<(String, String)>, _>(std::io::Error::other("source down"))
        })
        .await
    });
    until(|| cache.inner.flights.len() == 2).await;
    let asked = Asked::default();
    let (c, q) = (cache.clone(), asked.clone());
    let b = tokio::spawn(async move {
        c.get_or_set_many(&["b", "c"], opts(), |keys| {
            q.record(&keys);
            async move { Ok::<_, std::io::Error>(keys.into_iter().map(|k| (k.clone(), value(&k)))) }
        })
        .await
    });
    until(|| asked.calls().len() == 1).await;
    release_a.send(()).unwrap();
    for e in [a.await.unwrap().unwrap_err(), b.await.unwrap().unwrap_err()] {
        assert_eq!(e.kind(), ErrorKind::Loader);
        let src = std::error::Error::source(&e).expect("the loader's error as source");
        assert_eq!(src.to_string(), "source down");
    }
    assert_eq!(asked.calls(), [vec!["c".to_owned()]]);
    assert_eq!(cache.get::<String>("c").await.unwrap(), Some(value("c")));
    assert_eq!(cache.get::<String>("a").await.unwrap(), None);
    assert_eq!(cache.get::<String>("b").await.unwrap(), None);
    assert_eq!(cache.stats().loader_errors, 1);
    assert_eq!(cache.inner.flights.len(), 0);
}

/// A batch leader cancelled mid-load does not strand its waiters: a batch waiter whose
/// loader has not run leads the key itself; a single-key waiter does too.
#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_leader_does_not_hang_its_waiters() {
    let (cache, _) = counting_cache();
    let c = cache.clone();
    let hung = tokio::spawn(async move {
        c.get_or_set_many(&["a", "b"], opts(), |_| async {
            std::future::pending::<std::io::Result<Vec<(String, String)>>>().await
        })
        .await
    });
    until(|| cache.inner.flights.len() == 2).await;
    let asked = Asked::default();
    let (c, q) = (cache.clone(), asked.clone());
    let batch = tokio::spawn(async move {
        c.get_or_set_many(&["a", "b"], opts(), |keys| {
            q.record(&keys);
            async move { Ok::<_, std::io::Error>(keys.into_iter().map(|k| (k.clone(), value(&k)))) }
        })
        .await
    });
    let c = cache.clone();
    let single = tokio::spawn(async move {
        c.get_or_set("b", opts(), || async {
            Ok::<_, std::io::Error>(value("b"))
        })
        .await
    });
    for _ in 0..8 {
        tokio::task::yield_now().await; // both wait now
    }
    assert!(asked.calls().is_empty());
    hung.abort();
    assert!(hung.await.unwrap_err().is_cancelled());
    assert_eq!(batch.await.unwrap().unwrap(), some(&["a", "b"]));
    assert_eq!(single.await.unwrap().unwrap(), value("b"));
    assert_eq!(cache.inner.flights.len(), 0);
}

/// A waiter whose own loader already ran when the leader it waited for is cancelled cannot
/// load that key: it gets a `Loader` error (no hang), and its own keys are still stored.
#[tokio::test(flavor = "current_thread")]
async fn a_leader_cancelled_after_the_waiters_loader_ran_is_an_error_not_a_hang() {
    let (cache, _) = counting_cache();
    let c = cache.clone();
    let hung = tokio::spawn(async move {
        c.get_or_set_many(&["a"], opts(), |_| async {
            std::future::pending::<std::io::Result<Vec<(String, String)>>>().await
        })
        .await
    });
    until(|| cache.inner.flights.len() == 1).await;
    let asked = Asked::default();
    let (c, q) = (cache.clone(), asked.clone());
    let batch = tokio::spawn(async move {
        c.get_or_set_many(&["a", "c"], opts(), |keys| {
            q.record(&keys);
            async move { Ok::<_, std::io::Error>(keys.into_iter().map(|k| (k.clone(), value(&k)))) }
        })
        .await
    });
    until(|| asked.calls().len() == 1).await;
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    hung.abort();
    let e = batch.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Loader);
    assert_eq!(
        e.context_value("key_hash"),
        Some(crate::key_hash("a").as_str())
    );
    assert_eq!(cache.get::<String>("c").await.unwrap(), Some(value("c")));
    assert_eq!(cache.inner.flights.len(), 0);
}

/// A single-key `get_or_set` waiting on a batch leader whose loader had nothing for the key
/// runs its own loader (its `T` cannot be absent).
#[tokio::test(flavor = "current_thread")]
async fn a_single_key_waiter_of_an_absent_key_loads_it_itself() {
    let (cache, _) = counting_cache();
    let (release, gate) = oneshot::channel::<()>();
    let c = cache.clone();
    let batch = tokio::spawn(async move {
        c.get_or_set_many(&["k"], opts(), |_| async move {
            let _ = gate.await;
            Ok::<_, std::io::Error>(Vec::<(String, String)>::new())
        })
        .await
    });
    until(|| cache.inner.flights.len() == 1).await;
    let c = cache.clone();
    let single = tokio::spawn(async move {
        c.get_or_set("k", opts(), || async {
            Ok::<_, std::io::Error>(value("k"))
        })
        .await
    });
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    release.send(()).unwrap();
    assert_eq!(batch.await.unwrap().unwrap(), [None]);
    assert_eq!(single.await.unwrap().unwrap(), value("k"));
    assert_eq!(cache.stats().loader_calls, 2);
}

/// In a guarded scope whose guard moved on, the call is stale before the loader runs, and the
/// loader is left for the retry.
#[tokio::test(flavor = "current_thread")]
async fn a_stale_scope_leaves_the_loader_for_the_retry() {
    let cache = MemStache::builder().namespace("app").build().unwrap();
    cache
        .control_set("app#v", Bytes::from_static(b"2"), Expiry::NEVER)
        .await
        .unwrap();
    let v1 = Scope::new("app#v1:", "default").guarded("app#v", b"1");
    let mut loader = Some(|keys: Vec<String>| async move {
        Ok::<_, std::io::Error>(keys.into_iter().map(|k| (k, 1u8)))
    });
    match cache
        .get_or_set_many_in(&v1, &["a"], opts(), &mut loader)
        .await
        .unwrap()
    {
        Outcome::Stale(now) => assert_eq!(now.as_deref(), Some(&b"2"[..])),
        Outcome::Done(_) => panic!("a stale scope answered"),
    }
    assert!(loader.is_some());
    let v2 = Scope::new("app#v2:", "default").guarded("app#v", b"2");
    let got = cache
        .get_or_set_many_in(&v2, &["a"], opts(), &mut loader)
        .await
        .unwrap()
        .into_done()
        .unwrap();
    assert_eq!(got, [Some(1)]);
    assert_eq!(
        cache
            .get_in::<u8>(&v2, "a")
            .await
            .unwrap()
            .into_done()
            .unwrap(),
        Some(1)
    );
}

const SECRET_KEY: &str = "customer-4711-secret-key";
const SECRET_VALUE: &str = "card-number-4111111111111111";

/// Neither keys nor values reach the logs or the errors of `get_or_set_many`.
#[tokio::test(flavor = "current_thread")]
async fn logs_and_errors_never_contain_keys_or_values() {
    let (out, _guard) = capture_logs(tracing::Level::TRACE);
    let (cache, _) = counting_cache();
    let got = cache
        .get_or_set_many(&[SECRET_KEY], opts(), |keys| async move {
            Ok::<_, std::io::Error>(
                keys.into_iter()
                    .map(|k| (k, SECRET_VALUE.to_owned()))
                    .chain([("other".to_owned(), SECRET_VALUE.to_owned())]),
            )
        })
        .await
        .unwrap();
    assert_eq!(got, [Some(SECRET_VALUE.to_owned())]);
    let e = cache
        .get_or_set_many(&[SECRET_KEY, "second-secret-key"], opts(), |_| async {
            Err::<Vec<(String, String)>, _>(std::io::Error::other("db down"))
        })
        .await
        .unwrap_err();
    let logs = out.text();
    assert!(logs.contains("hits=0 loaded=1"), "the span counts: {logs}");
    assert!(
        logs.contains("memstache.get_or_set_many"),
        "spans were captured: {logs}"
    );
    for text in [logs, e.to_string(), format!("{e:?}")] {
        assert!(!text.contains(SECRET_KEY), "key leaked into {text}");
        assert!(
            !text.contains("second-secret-key"),
            "key leaked into {text}"
        );
        assert!(!text.contains(SECRET_VALUE), "value leaked into {text}");
    }
    assert_eq!(
        e.context_value("key_hash"),
        Some(crate::key_hash("second-secret-key").as_str())
    );
}

// ---- tiers ---------------------------------------------------------------------------------

struct Nodes {
    clock: ManualClock,
    store: Flaky,
    plane: MemoryBackplane,
}

impl Nodes {
    fn new() -> Self {
        let clock = ManualClock::starting_now();
        let shared = MemoryBackend::builder()
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        Nodes {
            store: Flaky::new(shared, ErrorKind::Unavailable),
            plane: MemoryBackplane::new(),
            clock,
        }
    }

    fn node(&self, fail_safe: Option<FailSafe>) -> MemStache {
        let tier = LocalTier::new()
            .max_duration(Duration::from_secs(60))
            .store(
                MemoryBackend::builder()
                    .clock(Arc::new(self.clock.clone()))
                    .build()
                    .unwrap(),
            );
        let mut b = MemStache::builder()
            .backend(self.store.clone())
            .clock(Arc::new(self.clock.clone()))
            .local_tier(tier)
            .backplane(self.plane.clone());
        if let Some(f) = fail_safe {
            b = b.fail_safe(f);
        }
        b.build().unwrap()
    }

    fn backend_calls(&self) -> u64 {
        self.store.calls.load(Ordering::SeqCst)
    }
}

/// With a local tier, the loaded values are kept in L1: the next call is answered without the
/// backend; another node's write of one key is seen there (its L1 copy dropped) and only
/// that key is read again.
#[tokio::test(flavor = "current_thread")]
async fn with_a_local_tier_loaded_values_are_kept_in_l1_and_invalidated_by_other_nodes() {
    let n = Nodes::new();
    let (a, b) = (n.node(None), n.node(None));
    a.local_tier_ready().await;
    b.local_tier_ready().await;
    let load = |keys: Vec<String>| async move {
        Ok::<_, std::io::Error>(keys.into_iter().map(|k| (k.clone(), value(&k))))
    };
    assert_eq!(
        a.get_or_set_many(&["x", "y"], opts(), load).await.unwrap(),
        some(&["x", "y"])
    );
    let calls = n.backend_calls();
    assert_eq!(
        a.get_or_set_many(&["x", "y"], opts(), load).await.unwrap(),
        some(&["x", "y"])
    );
    assert_eq!(n.backend_calls(), calls, "answered from L1");
    assert_eq!(a.stats().l1_hits, 2);
    // node b replaces y: a's copy is dropped, a reads y (only) from the backend
    b.set("y", &"new".to_owned(), opts()).await.unwrap();
    until(|| a.local_tier_len() == 1).await;
    let calls = n.backend_calls();
    let got = a.get_or_set_many(&["x", "y"], opts(), load).await.unwrap();
    assert_eq!(got, [Some(value("x")), Some("new".to_owned())]);
    assert_eq!(n.backend_calls(), calls + 1, "one read, of y");
    assert_eq!(a.stats().loader_calls, 1);
}

/// With fail-safe, a failing loader's keys that have a copy get the copy (and the loader is
/// throttled for them); a key without one fails the call.
#[tokio::test(flavor = "current_thread")]
async fn with_fail_safe_a_failing_loader_serves_the_copies() {
    let n = Nodes::new();
    let a = n.node(Some(
        FailSafe::new(Duration::from_secs(3600)).loader_throttle(Duration::from_secs(10)),
    ));
    let ttl = EntryOptions::new().absolute_expiration(Duration::from_secs(30));
    a.set("p", &value("p"), ttl).await.unwrap();
    a.set("q", &value("q"), ttl).await.unwrap();
    n.clock.advance(Duration::from_secs(31)); // expired everywhere
    let calls = AtomicU64::new(0);
    let failing = |_: Vec<String>| async {
        calls.fetch_add(1, Ordering::SeqCst);
        Err::<Vec<(String, String)>, _>(std::io::Error::other("source down"))
    };
    assert_eq!(
        a.get_or_set_many(&["p", "q"], ttl, failing).await.unwrap(),
        some(&["p", "q"])
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(a.stats().loader_fail_safe_hits, 2);
    // throttled: served again without calling the loader
    assert_eq!(
        a.get_or_set_many(&["q", "p"], ttl, failing).await.unwrap(),
        some(&["q", "p"])
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // a key without a copy: the loader's error
    let e = a
        .get_or_set_many(&["p", "new"], ttl, failing)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Loader);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A value stored between the batch read and the join (another leader finishing) is found by
/// the re-read of the led keys: the loader does not run for it.
#[tokio::test(flavor = "current_thread")]
async fn a_value_stored_between_the_read_and_the_join_is_not_loaded() {
    let store = Flaky::new(MemoryBackend::new(), ErrorKind::Unavailable);
    let cache = MemStache::builder().backend(store.clone()).build().unwrap();
    let held = store.hold_next_get(); // the batch read of "k" (the default get_many: one get)
    let c = cache.clone();
    let asked = Asked::default();
    let q = asked.clone();
    let call = tokio::spawn(async move {
        c.get_or_set_many(&["k"], opts(), |keys| {
            q.record(&keys);
            async move { Ok::<_, std::io::Error>(keys.into_iter().map(|k| (k, "loaded".to_owned()))) }
        })
        .await
    });
    held.reached().await; // it read the store: a miss
    cache.set("k", &"stored".to_owned(), opts()).await.unwrap();
    held.release();
    assert_eq!(call.await.unwrap().unwrap(), [Some("stored".to_owned())]);
    assert!(
        asked.calls().is_empty(),
        "the loader ran for a stored value"
    );
    assert_eq!(cache.inner.flights.len(), 0);
}

/// The `EntryOptions` skip flags apply to the batch read and write as to `get_or_set`'s:
/// with `skip_distributed(true)` the call lives in L1 (no backend call at all).
#[tokio::test(flavor = "current_thread")]
async fn skip_distributed_keeps_the_batch_in_l1() {
    let n = Nodes::new();
    let a = n.node(None);
    a.local_tier_ready().await;
    let local_only = EntryOptions::new().skip_distributed(true);
    let asked = Asked::default();
    let load = |keys: Vec<String>| {
        asked.record(&keys);
        async move { Ok::<_, std::io::Error>(keys.into_iter().map(|k| (k.clone(), value(&k)))) }
    };
    let calls = n.backend_calls();
    assert_eq!(
        a.get_or_set_many(&["x", "y"], local_only, load)
            .await
            .unwrap(),
        some(&["x", "y"])
    );
    assert_eq!(
        a.get_or_set_many(&["y", "x"], local_only, load)
            .await
            .unwrap(),
        some(&["y", "x"])
    );
    assert_eq!(n.backend_calls(), calls, "the backend was called");
    assert_eq!(asked.calls().len(), 1);
    let from_backend: Option<String> = a
        .get_with("x", crate::ReadOptions::new().skip_local_read(true))
        .await
        .unwrap();
    assert_eq!(from_backend, None, "written to the backend");
}
