//! Round trips, keys, values, isolation.

use std::sync::Arc;

use memstache_core::{EntryOptions, ErrorKind};
use serde::{Deserialize, Serialize};

use super::Harness;

/// A typed value used across the suite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Tags.
    pub tags: Vec<String>,
}

/// A sample [`User`].
pub fn user(id: u64) -> User {
    User {
        id,
        name: format!("user-{id}"),
        tags: vec!["a".into(), "β".into()],
    }
}

/// A typed value written with `set` reads back equal with `get`.
pub async fn roundtrip_typed(h: &dyn Harness) {
    let c = h.cache();
    c.set("user:42", &user(42), EntryOptions::default())
        .await
        .unwrap();
    let got: Option<User> = c.get("user:42").await.unwrap();
    assert_eq!(got, Some(user(42)));
}

/// A missing key is `Ok(None)`, never an error.
pub async fn miss_is_none(h: &dyn Harness) {
    let c = h.cache();
    let got: Option<User> = c.get("nobody").await.unwrap();
    assert_eq!(got, None);
    assert_eq!(c.try_get::<User>("nobody").await, None);
}

/// `remove` reports whether something was there; `exists` follows.
pub async fn remove_and_exists(h: &dyn Harness) {
    let c = h.cache();
    c.set("k", &1u32, EntryOptions::default()).await.unwrap();
    assert!(c.exists("k").await.unwrap());
    assert!(c.remove("k").await.unwrap());
    assert!(!c.exists("k").await.unwrap());
    assert!(!c.remove("k").await.unwrap());
    assert_eq!(c.get::<u32>("k").await.unwrap(), None);
}

/// A second `set` replaces the first.
pub async fn overwrite_replaces(h: &dyn Harness) {
    let c = h.cache();
    c.set("k", &"one", EntryOptions::default()).await.unwrap();
    c.set("k", &"two", EntryOptions::default()).await.unwrap();
    assert_eq!(c.get::<String>("k").await.unwrap().as_deref(), Some("two"));
}

/// Two caches with different namespaces on one backend never see each other's entries.
pub async fn namespaces_are_isolated(h: &dyn Harness) {
    let a = h.cache();
    let b = h.cache();
    a.set("shared", &1u32, EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(b.get::<u32>("shared").await.unwrap(), None);
    b.set("shared", &2u32, EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(a.get::<u32>("shared").await.unwrap(), Some(1));
    assert!(b.remove("shared").await.unwrap());
    assert_eq!(a.get::<u32>("shared").await.unwrap(), Some(1));
}

/// Many tasks writing and reading their own keys concurrently all read back their values.
pub async fn concurrent_tasks_see_their_own_values(h: &dyn Harness) {
    let c = h.cache();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50u64 {
                let key = format!("t{t}:k{i}");
                c.set(&key, &(t * 1000 + i), EntryOptions::default())
                    .await
                    .unwrap();
                assert_eq!(c.get::<u64>(&key).await.unwrap(), Some(t * 1000 + i));
            }
        }));
    }
    for t in tasks {
        t.await.expect("task panicked");
    }
    for t in 0..16u64 {
        assert_eq!(
            c.get::<u64>(&format!("t{t}:k49")).await.unwrap(),
            Some(t * 1000 + 49)
        );
    }
}

/// A 1 MiB value round-trips byte for byte.
pub async fn large_value_roundtrip(h: &dyn Harness) {
    let c = h.cache();
    let v: Vec<u8> = (0..(1usize << 20)).map(|i| (i * 31 % 251) as u8).collect();
    c.set("big", &v, EntryOptions::default()).await.unwrap();
    assert_eq!(c.get::<Vec<u8>>("big").await.unwrap(), Some(v));
}

/// Empty keys, keys over the limit and keys with control characters are `InvalidKey`, for
/// every operation, and nothing is written.
pub async fn invalid_keys_are_rejected(h: &dyn Harness) {
    let c = h.builder().max_key_len(16).build().unwrap();
    let long = "x".repeat(17);
    for bad in ["", long.as_str(), "a\nb", "nul\0"] {
        let e = c.set(bad, &1u8, EntryOptions::default()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey);
        assert_eq!(
            c.get::<u8>(bad).await.unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert_eq!(
            c.remove(bad).await.unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert_eq!(
            c.exists(bad).await.unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        assert_eq!(
            c.refresh(bad).await.unwrap_err().kind(),
            ErrorKind::InvalidKey
        );
        let e = c
            .get_or_set(bad, EntryOptions::default(), || async {
                Ok::<_, std::io::Error>(1u8)
            })
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidKey);
    }
    // exactly at the limit is fine, and the over-long key's prefix was not written
    let ok = "x".repeat(16);
    assert_eq!(c.get::<u8>(&ok).await.unwrap(), None);
    c.set(&ok, &1u8, EntryOptions::default()).await.unwrap();
    assert_eq!(c.get::<u8>(&ok).await.unwrap(), Some(1));
}

/// A value over the max value size is `ValueTooLarge` and the previous value stays.
pub async fn oversized_value_is_rejected_and_nothing_written(h: &dyn Harness) {
    let c = h.builder().max_value_size(1024).build().unwrap();
    c.set("k", &vec![1u8; 10], EntryOptions::default())
        .await
        .unwrap();
    let e = c
        .set("k", &vec![2u8; 2000], EntryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ValueTooLarge);
    assert!(!e.is_temporary());
    assert_eq!(c.get::<Vec<u8>>("k").await.unwrap(), Some(vec![1u8; 10]));
    let e = c
        .set_many(
            &[("a", &vec![0u8; 1]), ("b", &vec![0u8; 5000])],
            EntryOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ValueTooLarge);
    assert_eq!(
        c.get::<Vec<u8>>("a").await.unwrap(),
        None,
        "batch wrote a prefix"
    );
}

/// Reading a value as another, incompatible type is a `Serialization` error, never data.
pub async fn wrong_type_is_an_error_not_data(h: &dyn Harness) {
    let c = h.cache();
    c.set("s", &"hello world".to_owned(), EntryOptions::default())
        .await
        .unwrap();
    let e = c.get::<u64>("s").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Serialization);
    assert_eq!(c.try_get::<u64>("s").await, None);
    assert_eq!(c.stats().errors, 2);
}

/// Keys with separators, braces, spaces and unicode are distinct and round-trip.
pub async fn unicode_and_separator_keys(h: &dyn Harness) {
    let c = h.cache();
    let keys = [
        "a:b",
        "a",
        "a:",
        ":",
        "{tag}x",
        "spaces are fine",
        "ключ",
        "🦀:🦀",
        "a%3Ab",
    ];
    for (i, k) in keys.iter().enumerate() {
        c.set(k, &i, EntryOptions::default()).await.unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(c.get::<usize>(k).await.unwrap(), Some(i), "key #{i}");
    }
}

/// Counters follow hits and misses.
pub async fn stats_count_hits_and_misses(h: &dyn Harness) {
    let c = h.cache();
    let _ = c.get::<u8>("a").await.unwrap();
    c.set("a", &1u8, EntryOptions::default()).await.unwrap();
    let _ = c.get::<u8>("a").await.unwrap();
    let _ = c.get::<u8>("a").await.unwrap();
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.sets), (2, 1, 1));
    assert!((s.hit_ratio() - 2.0 / 3.0).abs() < 1e-9);
}

/// Shared handle used by tests that need the raw backend.
pub(crate) fn raw(h: &dyn Harness) -> Arc<dyn memstache_core::raw::Backend> {
    h.backend()
}
