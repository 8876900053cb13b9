//! The local copies (fail-safe's local tier) and the ordering rules of `cache/local.rs`: every
//! operation updates them, and a read that raced with a write or removal of the same key never
//! leaves an older value or a removed key behind. Each race is staged deterministically: the
//! read is held at a gate inside the backend, after it has read the store and before it
//! answers, while the other operation runs to completion.

use super::test_support::fail_safe_cache;
use crate::{EntryOptions, ErrorKind};

fn opts() -> EntryOptions {
    EntryOptions::default()
}

/// `set_many` replaces the copies it writes and `remove_many` drops the copies it removes:
/// during an outage neither a replaced nor a removed value is served.
#[tokio::test(flavor = "current_thread")]
async fn batch_writes_and_removals_update_the_copies() {
    let (cache, flaky, _clock) = fail_safe_cache(ErrorKind::Unavailable);
    for k in ["a", "b", "c"] {
        cache.set(k, &format!("old {k}"), opts()).await.unwrap();
    }
    cache
        .set_many(
            &[("a", &"new a".to_owned()), ("b", &"new b".to_owned())],
            opts(),
        )
        .await
        .unwrap();
    flaky.set_down(true);
    assert_eq!(
        cache.get::<String>("a").await.unwrap().as_deref(),
        Some("new a")
    );
    assert_eq!(
        cache.get::<String>("b").await.unwrap().as_deref(),
        Some("new b")
    );
    flaky.set_down(false);

    assert_eq!(cache.remove_many(&["a", "c"]).await.unwrap(), 2);
    flaky.set_down(true);
    for removed in ["a", "c"] {
        assert_eq!(
            cache.get::<String>(removed).await.unwrap_err().kind(),
            ErrorKind::Unavailable,
            "{removed} was removed: no copy may be served"
        );
    }
    assert_eq!(
        cache.get::<String>("b").await.unwrap().as_deref(),
        Some("new b")
    );
    // the batch read is all or nothing: `a` has no copy, so the batch fails
    assert!(cache.get_many::<String, _>(&["a", "b"]).await.is_err());
    assert_eq!(
        cache.get_many::<String, _>(&["b"]).await.unwrap(),
        vec![Some("new b".to_owned())]
    );
}

/// A failed `set_many` drops the copies of every key it tried to write.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_batch_write_drops_the_copies() {
    let (cache, flaky, _clock) = fail_safe_cache(ErrorKind::Unavailable);
    cache.set("a", &1u32, opts()).await.unwrap();
    flaky.set_down(true);
    assert!(cache.set_many(&[("a", &2u32)], opts()).await.is_err());
    assert_eq!(
        cache.get::<u32>("a").await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
}

/// A `get` reads the value, then a `remove` of the same key completes, then the `get` answers:
/// its value may be returned (it was read before the removal) but it is not kept.
#[tokio::test(flavor = "current_thread")]
async fn a_read_racing_a_remove_keeps_no_copy() {
    let (cache, flaky, _clock) = fail_safe_cache(ErrorKind::Unavailable);
    cache.set("k", &"v1".to_owned(), opts()).await.unwrap();

    let held = flaky.hold_next_get();
    let reader = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get::<String>("k").await })
    };
    held.reached().await;
    assert!(cache.remove("k").await.unwrap());
    held.release();
    assert_eq!(reader.await.unwrap().unwrap().as_deref(), Some("v1"));

    flaky.set_down(true);
    assert_eq!(
        cache.get::<String>("k").await.unwrap_err().kind(),
        ErrorKind::Unavailable,
        "the removed value came back from the local tier"
    );
}

/// A `get` reads `v1`, then a `set` of `v2` completes, then the `get` answers: the copy is
/// `v2`, never the older `v1`.
#[tokio::test(flavor = "current_thread")]
async fn a_read_racing_a_write_never_keeps_the_older_value() {
    let (cache, flaky, _clock) = fail_safe_cache(ErrorKind::Unavailable);
    cache.set("k", &"v1".to_owned(), opts()).await.unwrap();

    let held = flaky.hold_next_get();
    let reader = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get::<String>("k").await })
    };
    held.reached().await;
    cache.set("k", &"v2".to_owned(), opts()).await.unwrap();
    held.release();
    assert_eq!(reader.await.unwrap().unwrap().as_deref(), Some("v1"));

    flaky.set_down(true);
    assert_eq!(
        cache.get::<String>("k").await.unwrap().as_deref(),
        Some("v2")
    );
}

/// The same races through `get_many` and `get_or_set`, the other two reads that keep copies.
#[tokio::test(flavor = "current_thread")]
async fn batch_and_read_through_reads_follow_the_same_rules() {
    let (cache, flaky, _clock) = fail_safe_cache(ErrorKind::Unavailable);
    cache.set("a", &"a1".to_owned(), opts()).await.unwrap();
    cache.set("b", &"b1".to_owned(), opts()).await.unwrap();

    // get_many reads a1, b1; then a is removed and b rewritten
    let held = flaky.hold_next_get();
    let reader = {
        let cache = cache.clone();
        tokio::spawn(async move { cache.get_many::<String, _>(&["a", "b"]).await })
    };
    held.reached().await;
    cache.remove("a").await.unwrap();
    cache.set("b", &"b2".to_owned(), opts()).await.unwrap();
    held.release();
    reader.await.unwrap().unwrap();

    // get_or_set reads b2 (a hit), then b is removed
    let held = flaky.hold_next_get();
    let reader = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_set("b", opts(), || async {
                    Ok::<_, std::io::Error>("loaded".to_owned())
                })
                .await
        })
    };
    held.reached().await;
    cache.set("b", &"b3".to_owned(), opts()).await.unwrap();
    held.release();
    assert_eq!(reader.await.unwrap().unwrap(), "b2");

    flaky.set_down(true);
    assert_eq!(
        cache.get::<String>("a").await.unwrap_err().kind(),
        ErrorKind::Unavailable
    );
    assert_eq!(
        cache.get::<String>("b").await.unwrap().as_deref(),
        Some("b3")
    );
}

/// Two writes of one key in flight at once: the backend's order between them is unknown, so
/// neither value is kept; the next read keeps what the backend holds.
#[tokio::test(flavor = "current_thread")]
async fn overlapping_writes_keep_neither_until_a_read_confirms() {
    let (cache, flaky, _clock) = fail_safe_cache(ErrorKind::Unavailable);
    let local = cache.inner.local.as_ref().unwrap();
    let first = local.write_ticket("ms:k");
    let second = local.write_ticket("ms:k");
    let meta = super::local::Meta::for_tests::<u32>();
    let fp = meta.fingerprint;
    second.done("ms:k", Some((b"second", meta)), 0);
    first.done("ms:k", Some((b"first", meta)), 0);
    assert!(local.recall("ms:k", fp, 0).is_none());

    cache.set("k", &7u32, opts()).await.unwrap();
    let cancelled = local.write_ticket("ms:k");
    drop(cancelled); // a write whose future was dropped mid-call
    assert!(local.recall("ms:k", fp, 0).is_none());
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(7));
    flaky.set_down(true);
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(7));
}
