//! `get_or_set` and `get_or_set_many`: single-flight, loader errors, cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use memstache_core::{EntryOptions, ErrorKind};
use tokio::sync::Barrier;

use super::Harness;

/// N concurrent callers for one missing key run the loader once and all get its value
/// (barrier + call counter).
pub async fn get_or_set_single_flight(h: &dyn Harness) {
    const N: usize = 32;
    let c = h.cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (c, calls, barrier) = (c.clone(), Arc::clone(&calls), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            c.get_or_set("hot", EntryOptions::default(), || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                // slow enough that every caller arrives while the flight is open
                tokio::time::sleep(Duration::from_millis(200)).await;
                Ok::<_, std::io::Error>(String::from("loaded"))
            })
            .await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "loaded");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "loader ran more than once");
    assert_eq!(
        c.get::<String>("hot").await.unwrap().as_deref(),
        Some("loaded")
    );
    assert_eq!(c.stats().loader_calls, 1);
}

/// A loader error reaches every waiter as `Loader` (with the loader's error as source) and
/// nothing is cached; the next call runs the loader again.
pub async fn get_or_set_loader_error_reaches_every_waiter(h: &dyn Harness) {
    const N: usize = 8;
    let c = h.cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(N));
    let mut tasks = Vec::new();
    for _ in 0..N {
        let (c, calls, barrier) = (c.clone(), Arc::clone(&calls), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            c.get_or_set("bad", EntryOptions::default(), || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err::<u32, _>(std::io::Error::other("database is down"))
            })
            .await
        }));
    }
    for t in tasks {
        let e = t.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Loader);
        let src = std::error::Error::source(&e).expect("loader error kept as source");
        assert_eq!(src.to_string(), "database is down");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(c.get::<u32>("bad").await.unwrap(), None, "nothing cached");
    let v = c
        .get_or_set("bad", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(7u32)
        })
        .await
        .unwrap();
    assert_eq!(v, 7);
}

/// When the leading caller is cancelled, a waiter takes over and loads.
pub async fn get_or_set_leader_cancelled(h: &dyn Harness) {
    let c = h.cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let leader = {
        let (c, calls) = (c.clone(), Arc::clone(&calls));
        tokio::spawn(async move {
            c.get_or_set("k", EntryOptions::default(), || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, std::io::Error>(0u32)
            })
            .await
        })
    };
    // let the leader start its loader
    while calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let waiter = {
        let (c, calls) = (c.clone(), Arc::clone(&calls));
        tokio::spawn(async move {
            c.get_or_set("k", EntryOptions::default(), || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::io::Error>(2u32)
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    leader.abort();
    let v = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("waiter hung after the leader was cancelled")
        .unwrap()
        .unwrap();
    assert_eq!(v, 2);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// A cached value is returned without calling the loader.
pub async fn get_or_set_returns_cached_value(h: &dyn Harness) {
    let c = h.cache();
    c.set("k", &5u32, EntryOptions::default()).await.unwrap();
    let v = c
        .get_or_set("k", EntryOptions::default(), || async {
            Err::<u32, _>(std::io::Error::other("must not be called"))
        })
        .await
        .unwrap();
    assert_eq!(v, 5);
    assert_eq!(c.stats().loader_calls, 0);
}

/// `get_or_set_many`: hits are returned as stored, the misses go to one loader call (each
/// once, in request order), what it returns is stored and what it leaves out is absent.
pub async fn get_or_set_many_hits_and_misses(h: &dyn Harness) {
    let c = h.cache();
    c.set_many(&[("m:1", &1u64), ("m:3", &3u64)], EntryOptions::default())
        .await
        .unwrap();
    let asked = std::sync::Mutex::new(Vec::new());
    let got: Vec<Option<u64>> = c
        .get_or_set_many(
            &["m:1", "m:2", "m:3", "m:4", "m:2", "m:5"],
            EntryOptions::default(),
            |missing| {
                asked.lock().unwrap().push(missing.clone());
                async move {
                    // m:5 is not in the source
                    Ok::<_, std::io::Error>(missing.into_iter().filter(|k| k != "m:5").map(|k| {
                        let n = k[2..].parse::<u64>().unwrap();
                        (k, n * 10)
                    }))
                }
            },
        )
        .await
        .unwrap();
    assert_eq!(
        got,
        [Some(1), Some(20), Some(3), Some(40), Some(20), None],
        "hits as stored, misses loaded, the absent key None"
    );
    assert_eq!(
        *asked.lock().unwrap(),
        [vec!["m:2".to_owned(), "m:4".to_owned(), "m:5".to_owned()]]
    );
    let stored: Vec<Option<u64>> = c.get_many(&["m:2", "m:4", "m:5"]).await.unwrap();
    assert_eq!(stored, [Some(20), Some(40), None]);
    assert_eq!(c.stats().loader_calls, 1);
}

/// A failing `get_or_set_many` loader is a `Loader` error with its error as source; nothing
/// is cached and the next call loads again.
pub async fn get_or_set_many_loader_error_caches_nothing(h: &dyn Harness) {
    let c = h.cache();
    let e = c
        .get_or_set_many(&["f:1", "f:2"], EntryOptions::default(), |_| async {
            Err::<Vec<(String, u32)>, _>(std::io::Error::other("database is down"))
        })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Loader);
    let src = std::error::Error::source(&e).expect("loader error kept as source");
    assert_eq!(src.to_string(), "database is down");
    let none: Vec<Option<u32>> = c.get_many(&["f:1", "f:2"]).await.unwrap();
    assert_eq!(none, [None, None], "nothing cached");
    let got: Vec<Option<u32>> = c
        .get_or_set_many(
            &["f:1", "f:2"],
            EntryOptions::default(),
            |keys| async move {
                assert_eq!(keys, ["f:1", "f:2"], "both load again");
                Ok::<_, std::io::Error>(keys.into_iter().zip([1, 2]))
            },
        )
        .await
        .unwrap();
    assert_eq!(got, [Some(1), Some(2)]);
    assert_eq!(c.stats().loader_errors, 1);
}
