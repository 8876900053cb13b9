//! Schema fingerprints and decode failures: a type that changed between two deploys is found
//! from the envelope header; `get` returns the error or a miss as configured; read-through
//! reloads and overwrites. "Two deploys" are two caches over one store, each with its own
//! version of a type of the same serde name (`v1::User`, `v2::User`).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::memory::MemoryBackend;
use crate::raw::{Backend, Expiry};
use crate::tiers::LocalTier;
use crate::{DecodeFailure, EntryOptions, ErrorKind, Loaded, MemStache, MemStacheBuilder};

mod v1 {
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    pub(super) struct User {
        pub(super) id: u32,
        pub(super) age: u32,
    }
}

mod v2 {
    /// `v1::User` with its two fields swapped: postcard, being positional, decodes either
    /// from the other's bytes, with the values swapped.
    #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
    pub(super) struct User {
        pub(super) age: u32,
        pub(super) id: u32,
    }
}

fn deploy(
    store: &MemoryBackend,
    f: impl FnOnce(MemStacheBuilder) -> MemStacheBuilder,
) -> MemStache {
    f(MemStache::builder().backend(store.clone()))
        .build()
        .unwrap()
}

/// What changes a fingerprint and what does not.
#[cfg(feature = "schema")]
mod traced {
    use std::collections::BTreeMap;

    use crate::schema_fingerprint as fp;

    #[derive(serde::Deserialize)]
    #[allow(dead_code, reason = "only traced")]
    struct Base {
        id: u64,
        name: String,
    }
    mod same {
        /// `Base` in another module: the same serde data model.
        #[derive(serde::Deserialize)]
        #[allow(dead_code, reason = "only traced")]
        pub(super) struct Base {
            id: u64,
            name: String,
        }
    }
    mod added {
        #[derive(serde::Deserialize)]
        #[allow(dead_code, reason = "only traced")]
        pub(super) struct Base {
            id: u64,
            name: String,
            email: Option<String>,
        }
    }
    mod renamed_field {
        #[derive(serde::Deserialize)]
        #[allow(dead_code, reason = "only traced")]
        pub(super) struct Base {
            id: u64,
            title: String,
        }
    }
    mod reordered {
        #[derive(serde::Deserialize)]
        #[allow(dead_code, reason = "only traced")]
        pub(super) struct Base {
            name: String,
            id: u64,
        }
    }
    mod retyped {
        #[derive(serde::Deserialize)]
        #[allow(dead_code, reason = "only traced")]
        pub(super) struct Base {
            id: u32,
            name: String,
        }
    }
    mod renamed_type {
        #[derive(serde::Deserialize)]
        #[allow(dead_code, reason = "only traced")]
        pub(super) struct Account {
            id: u64,
            name: String,
        }
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code, reason = "only traced")]
    enum Inner {
        A,
        B(u8),
        C { x: String },
        D(u8, u16),
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code, reason = "only traced")]
    enum Mid {
        X(Inner),
        Y(Vec<Inner>),
        Z,
    }
    /// Enums nested in options, sequences, maps and tuples, and recursion.
    #[derive(serde::Deserialize)]
    #[allow(dead_code, reason = "only traced")]
    struct Tree {
        a: Option<Mid>,
        b: Vec<Inner>,
        c: BTreeMap<String, Mid>,
        t: (u8, Inner),
        children: Vec<Tree>,
        next: Option<Box<Tree>>,
    }
    mod tree_more {
        use super::BTreeMap;
        #[derive(serde::Deserialize)]
        #[allow(dead_code, reason = "only traced")]
        pub(super) enum Mid {
            X(Inner),
            Y(Vec<Inner>),
            Z,
        }
        #[derive(serde::Deserialize)]
        #[allow(dead_code, reason = "only traced")]
        pub(super) enum Inner {
            A,
            B(u8),
            C { x: String },
            D(u8, u16),
            E,
        }
        /// `Tree` whose nested `Inner` gained a variant.
        #[derive(serde::Deserialize)]
        #[allow(dead_code, reason = "only traced")]
        pub(super) struct Tree {
            a: Option<Mid>,
            b: Vec<Inner>,
            c: BTreeMap<String, Mid>,
            t: (u8, Inner),
            children: Vec<Tree>,
            next: Option<Box<Tree>>,
        }
    }

    /// A type whose `Deserialize` needs a self-describing format.
    struct Any;
    impl<'de> serde::Deserialize<'de> for Any {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(serde::de::IgnoredAny).map(|_| Any)
        }
    }

    #[test]
    fn every_change_to_the_data_model_changes_the_fingerprint_and_a_move_does_not() {
        let base = fp::<Base>().unwrap();
        assert_eq!(
            fp::<same::Base>().unwrap(),
            base,
            "a move to another module"
        );
        let changed = [
            ("a field added", fp::<added::Base>().unwrap()),
            ("a field renamed", fp::<renamed_field::Base>().unwrap()),
            ("fields reordered", fp::<reordered::Base>().unwrap()),
            ("a field retyped", fp::<retyped::Base>().unwrap()),
            ("the type renamed", fp::<renamed_type::Account>().unwrap()),
        ];
        let mut all = vec![base];
        for (what, f) in changed {
            assert_ne!(f, base, "{what}");
            assert!(!all.contains(&f), "{what} collides with another variant");
            all.push(f);
        }
        assert_ne!(fp::<u32>().unwrap(), fp::<u64>().unwrap());
        assert_ne!(fp::<Vec<u8>>().unwrap(), fp::<Option<u8>>().unwrap());
    }

    #[test]
    fn nested_enums_and_recursive_types_are_traced_completely() {
        use crate::schema_fingerprint_with as fp_with;
        // a nested enum not named is an error naming it, never a partial fingerprint
        let e = fp::<Tree>().unwrap_err().to_string();
        assert!(
            e.contains("Inner") && e.contains("Mid") && e.contains("enum_type"),
            "{e}"
        );
        let tree = fp_with::<Tree>(|t| t.enum_type::<Mid>().enum_type::<Inner>()).unwrap();
        let again = fp_with::<Tree>(|t| t.enum_type::<Inner>().enum_type::<Mid>()).unwrap();
        assert_eq!(
            again, tree,
            "deterministic, whatever the order the enums are named in"
        );
        let more = fp_with::<tree_more::Tree>(|t| {
            t.enum_type::<tree_more::Mid>()
                .enum_type::<tree_more::Inner>()
        })
        .unwrap();
        assert_ne!(
            more, tree,
            "a variant added to an enum nested three levels down"
        );
        // the canonical form names every variant of every enum
        let canon = super::super::schema::canonical_schema::<Tree>(|t| {
            t.enum_type::<Mid>().enum_type::<Inner>()
        })
        .unwrap();
        for v in ["A", "B", "C", "D", "X", "Y", "Z"] {
            let needle = [&(v.len() as u64).to_le_bytes()[..], v.as_bytes()].concat();
            assert!(
                canon.windows(needle.len()).any(|w| w == needle.as_slice()),
                "variant {v} is missing from the traced schema"
            );
        }
    }

    /// Pinned: a change here (to the canonical form, or in serde-reflection's tracing after
    /// an upgrade) makes every cached entry of a registered type a miss after the deploy.
    /// Bump deliberately, and say so in the release notes.
    #[test]
    fn the_fingerprint_is_stable_across_releases() {
        assert_eq!(fp::<Base>().unwrap(), 0xde54_5978_83de_1055);
    }

    #[test]
    fn an_untraceable_type_is_a_clear_build_error_and_schema_version_is_the_way_out() {
        let e = crate::MemStache::builder()
            .register_schema::<Any>()
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::InvalidConfig);
        let text = e.to_string();
        assert!(text.contains("Any"), "{text}");
        assert!(text.contains("schema_version"), "{text}");
        assert!(text.contains("deserialize_any"), "{text}");
        assert_eq!(
            fp::<Any>().unwrap_err().kind(),
            crate::ErrorKind::InvalidConfig
        );
        crate::MemStache::builder()
            .schema_version::<Any>(3)
            .build()
            .unwrap();
    }

    /// What `build` registers is what `schema_fingerprint` reports (so the pin above covers
    /// what is written), and a `schema_version` beside it changes it.
    #[tokio::test]
    async fn the_written_fingerprint_is_the_reported_one() {
        use crate::raw::Backend as _;
        let store = crate::memory::MemoryBackend::new();
        let header_fp = |raw: &[u8]| u64::from_le_bytes(raw[32..40].try_into().unwrap());
        let plain = super::deploy(&store, |b| b.register_schema::<super::v1::User>());
        let versioned = super::deploy(&store, |b| {
            b.register_schema::<super::v1::User>()
                .schema_version::<super::v1::User>(2)
        });
        let user = super::v1::User { id: 1, age: 2 };
        plain.set("a", &user, Default::default()).await.unwrap();
        versioned.set("b", &user, Default::default()).await.unwrap();
        let a = store
            .get(&plain.storage_key("a").unwrap())
            .await
            .unwrap()
            .unwrap();
        let b = store
            .get(&plain.storage_key("b").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(header_fp(&a), fp::<super::v1::User>().unwrap());
        assert_ne!(header_fp(&b), header_fp(&a));
        assert_ne!(header_fp(&b), 0);
    }

    #[tokio::test]
    async fn a_registered_type_that_changed_is_refused_from_the_header() {
        let store = crate::memory::MemoryBackend::new();
        let old = super::deploy(&store, |b| b.register_schema::<super::v1::User>());
        let new = super::deploy(&store, |b| b.register_schema::<super::v2::User>());
        old.set("u", &super::v1::User { id: 1, age: 40 }, Default::default())
            .await
            .unwrap();
        let e = new.get::<super::v2::User>("u").await.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::SchemaMismatch);
        // the same registration reads it
        let again = super::deploy(&store, |b| b.register_schema::<super::v1::User>());
        assert_eq!(
            again.get::<super::v1::User>("u").await.unwrap(),
            Some(super::v1::User { id: 1, age: 40 })
        );
    }
}

/// Why a fingerprint: without one, postcard decodes the old bytes into the new type with the
/// fields swapped, and nothing can tell. (This pins the hazard, so that the test below that
/// shows it gone means something.)
#[tokio::test]
async fn without_a_fingerprint_a_reordered_type_decodes_into_wrong_values() {
    let store = MemoryBackend::new();
    let old = deploy(&store, |b| b);
    let new = deploy(&store, |b| b);
    old.set("u", &v1::User { id: 1, age: 40 }, Default::default())
        .await
        .unwrap();
    assert_eq!(
        new.get::<v2::User>("u").await.unwrap(),
        Some(v2::User { age: 1, id: 40 })
    );
}

#[tokio::test]
async fn a_schema_version_bump_is_a_mismatch_and_the_same_version_reads() {
    let store = MemoryBackend::new();
    let old = deploy(&store, |b| b.schema_version::<v1::User>(1));
    let same = deploy(&store, |b| b.schema_version::<v1::User>(1));
    let bumped = deploy(&store, |b| b.schema_version::<v1::User>(2));
    old.set("u", &v1::User { id: 1, age: 40 }, Default::default())
        .await
        .unwrap();
    assert_eq!(
        same.get::<v1::User>("u").await.unwrap(),
        Some(v1::User { id: 1, age: 40 })
    );
    let e = bumped.get::<v1::User>("u").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
    assert_eq!(bumped.stats().errors, 1);
    assert_eq!(bumped.stats().decode_misses, 0);
}

/// An entry written without a fingerprint (before the type was registered) is still read.
#[tokio::test]
async fn entries_without_a_fingerprint_are_still_decoded() {
    let store = MemoryBackend::new();
    let before = deploy(&store, |b| b);
    let after = deploy(&store, |b| b.schema_version::<v1::User>(1));
    before
        .set("u", &v1::User { id: 1, age: 40 }, Default::default())
        .await
        .unwrap();
    assert_eq!(
        after.get::<v1::User>("u").await.unwrap(),
        Some(v1::User { id: 1, age: 40 })
    );
}

/// Two deploys with the type changed; `new` under `policy`.
async fn changed(policy: DecodeFailure, tiered: bool) -> (MemStache, MemStache) {
    let store = MemoryBackend::new();
    let old = deploy(&store, |b| b.schema_version::<v1::User>(1));
    let new = deploy(&store, |b| {
        let b = b.schema_version::<v2::User>(2).decode_failure(policy);
        if tiered {
            b.local_tier(LocalTier::new())
        } else {
            b
        }
    });
    for (k, id) in [("a", 1), ("b", 2)] {
        old.set(k, &v1::User { id, age: 40 }, Default::default())
            .await
            .unwrap();
    }
    (old, new)
}

#[tokio::test]
async fn get_returns_the_error_by_default_and_a_miss_when_asked_on_both_roads() {
    for tiered in [false, true] {
        let (_, new) = changed(DecodeFailure::Error, tiered).await;
        let e = new.get::<v2::User>("a").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SchemaMismatch, "tiered: {tiered}");
        assert_eq!(new.stats().errors, 1);

        let (_, new) = changed(DecodeFailure::Miss, tiered).await;
        assert_eq!(
            new.get::<v2::User>("a").await.unwrap(),
            None,
            "tiered: {tiered}"
        );
        let s = new.stats();
        assert_eq!((s.decode_misses, s.misses, s.errors, s.hits), (1, 1, 0, 0));
        // nothing of it was kept in the local tier: the next read goes to the store again
        assert_eq!(new.get::<v2::User>("a").await.unwrap(), None);
        assert_eq!(new.stats().decode_misses, 2);
        assert_eq!(new.stats().l1_hits, 0);
    }
}

#[tokio::test]
async fn get_many_follows_the_policy_per_key_on_both_roads() {
    for tiered in [false, true] {
        let (_, new) = changed(DecodeFailure::Miss, tiered).await;
        new.set("c", &v2::User { age: 30, id: 3 }, Default::default())
            .await
            .unwrap();
        let each = new
            .get_many_results::<v2::User, _>(&["a", "c", "d"])
            .await
            .unwrap();
        assert_eq!(each[0].as_ref().unwrap(), &None, "tiered: {tiered}");
        assert_eq!(
            each[1].as_ref().unwrap(),
            &Some(v2::User { age: 30, id: 3 })
        );
        assert_eq!(each[2].as_ref().unwrap(), &None);
        let s = new.stats();
        assert_eq!((s.decode_misses, s.errors), (1, 0), "tiered: {tiered}");

        let (_, new) = changed(DecodeFailure::Error, tiered).await;
        let each = new
            .get_many_results::<v2::User, _>(&["a", "d"])
            .await
            .unwrap();
        assert_eq!(
            each[0].as_ref().unwrap_err().kind(),
            ErrorKind::SchemaMismatch,
            "tiered: {tiered}"
        );
        assert_eq!(each[1].as_ref().unwrap(), &None);
        assert_eq!(new.stats().errors, 1);
    }
}

/// The read-through policy: whatever `decode_failure` says, `get_or_set` loads, returns the
/// loaded value and overwrites the entry, which then reads in the new schema (and no longer
/// in the old one).
#[tokio::test]
async fn get_or_set_reloads_and_overwrites_an_entry_of_another_schema() {
    for tiered in [false, true] {
        let (old, new) = changed(DecodeFailure::Error, tiered).await;
        let calls = AtomicU64::new(0);
        let load = || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Ok::<_, std::io::Error>(v2::User { age: 41, id: 1 })
        };
        let got = new
            .get_or_set("a", EntryOptions::default(), load)
            .await
            .unwrap();
        assert_eq!(got, v2::User { age: 41, id: 1 }, "tiered: {tiered}");
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        // each read of the entry counts: the leader reads it before and again after it
        // takes the flight
        let s = new.stats();
        assert_eq!((s.decode_misses, s.errors), (2, 0), "tiered: {tiered}");
        // overwritten: the next call hits without the loader, and `get` reads it
        let again = new
            .get_or_set("a", EntryOptions::default(), load)
            .await
            .unwrap();
        assert_eq!(again, got);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert_eq!(new.get::<v2::User>("a").await.unwrap(), Some(got));
        // and the old deploy now sees the new schema
        let e = old.get::<v1::User>("a").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::SchemaMismatch);
    }
}

#[tokio::test]
async fn get_or_load_and_get_or_set_many_reload_too() {
    let (_, new) = changed(DecodeFailure::Error, false).await;
    let got = new
        .get_or_load("a", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(Loaded::from(v2::User { age: 41, id: 1 }))
        })
        .await
        .unwrap();
    assert_eq!(got, Some(v2::User { age: 41, id: 1 }));
    assert_eq!(
        new.get::<v2::User>("a").await.unwrap(),
        Some(v2::User { age: 41, id: 1 })
    );

    let asked = std::sync::Mutex::new(Vec::new());
    let got = new
        .get_or_set_many(&["a", "b"], EntryOptions::default(), |keys: Vec<String>| {
            asked.lock().unwrap().extend(keys.clone());
            async move {
                Ok::<_, std::io::Error>(keys.into_iter().map(|k| (k, v2::User { age: 50, id: 2 })))
            }
        })
        .await
        .unwrap();
    assert_eq!(
        *asked.lock().unwrap(),
        vec!["b".to_owned()],
        "only the undecodable key"
    );
    assert_eq!(
        got,
        vec![
            Some(v2::User { age: 41, id: 1 }),
            Some(v2::User { age: 50, id: 2 })
        ]
    );
    // two reads of each undecodable entry (before and after taking the flight)
    assert_eq!(new.stats().decode_misses, 4);
    assert_eq!(new.stats().errors, 0);
}

/// A miss policy is for entries that verify: an edited entry stays an integrity error.
#[tokio::test]
async fn tampered_entries_are_errors_under_the_miss_policy() {
    let store = MemoryBackend::new();
    let cache = deploy(&store, |b| b.decode_failure(DecodeFailure::Miss));
    cache.set("k", &7u32, Default::default()).await.unwrap();
    let sk = cache.storage_key("k").unwrap();
    let mut bad = store.get(&sk).await.unwrap().unwrap().to_vec();
    *bad.last_mut().unwrap() ^= 1;
    store
        .set(&sk, Bytes::from(bad), Expiry::NEVER)
        .await
        .unwrap();
    let e = cache.get::<u32>("k").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity);
    assert_eq!(cache.stats().decode_misses, 0);
    // and read-through overwrites it, counted as an error, not a decode miss
    let v = cache
        .get_or_set("k", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(8u32)
        })
        .await
        .unwrap();
    assert_eq!(v, 8);
    assert_eq!(cache.get::<u32>("k").await.unwrap(), Some(8));
    assert_eq!(cache.stats().decode_misses, 0);
    // the `get`, and the two reads of `get_or_set`
    assert_eq!(cache.stats().errors, 3);
}

/// A value a type's `Deserialize` refuses (not a fingerprint matter) is a decode failure too.
#[tokio::test]
async fn a_value_the_type_refuses_is_a_miss_under_the_policy() {
    let store = MemoryBackend::new();
    let cache = deploy(&store, |b| b.decode_failure(DecodeFailure::Miss));
    cache.set("k", &u64::MAX, Default::default()).await.unwrap();
    assert_eq!(cache.get::<u8>("k").await.unwrap(), None);
    assert_eq!(cache.stats().decode_misses, 1);
}

// ---- entry policies (options computed from the value) ------------------------------------

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Quote {
    symbol: String,
    live: bool,
}

fn quote(live: bool) -> Quote {
    Quote {
        symbol: "ACME".into(),
        live,
    }
}

/// Live quotes for 1 s, the rest for an hour; defaults of the cache: 10 minutes, sliding 5.
fn with_policy(store: &MemoryBackend, tiered: bool) -> MemStache {
    use std::time::Duration;
    deploy(store, |b| {
        let b = b
            .default_entry_options(
                EntryOptions::new()
                    .absolute_expiration(Duration::from_secs(600))
                    .sliding_expiration(Duration::from_secs(300)),
            )
            .entry_policy(|q: &Quote| {
                let secs = if q.live { 1 } else { 3600 };
                EntryOptions::new().absolute_expiration(Duration::from_secs(secs))
            });
        if tiered {
            b.local_tier(LocalTier::new())
        } else {
            b
        }
    })
}

/// The written entry's life (deadline − created, ms) and sliding window (ms), from its header.
async fn life_of(store: &MemoryBackend, cache: &MemStache, key: &str) -> (u64, u64) {
    let raw = store
        .get(&cache.storage_key(key).unwrap())
        .await
        .unwrap()
        .expect("written");
    let created = crate::envelope::peek_created(&raw).unwrap();
    let (deadline, sliding) = crate::envelope::peek_expiry(&raw).unwrap();
    (deadline - created, sliding)
}

#[tokio::test]
async fn an_entry_policy_sets_the_options_of_every_write_of_its_type() {
    use std::time::Duration;
    for tiered in [false, true] {
        let store = MemoryBackend::new();
        let cache = with_policy(&store, tiered);
        cache
            .set("live", &quote(true), EntryOptions::default())
            .await
            .unwrap();
        cache
            .set("old", &quote(false), EntryOptions::default())
            .await
            .unwrap();
        // the policy's expiration over the default's (decided as a whole, as for a call's
        // options: an absolute deadline alone takes no default sliding window)
        assert_eq!(
            life_of(&store, &cache, "live").await,
            (1_000, 0),
            "tiered: {tiered}"
        );
        assert_eq!(life_of(&store, &cache, "old").await, (3_600_000, 0));
        // the call's own options win over the policy
        let o = EntryOptions::new().absolute_expiration(Duration::from_secs(5));
        cache.set("live", &quote(true), o).await.unwrap();
        assert_eq!(life_of(&store, &cache, "live").await.0, 5_000);
        // other types are left alone
        cache
            .set("n", &7u32, EntryOptions::default())
            .await
            .unwrap();
        assert_eq!(life_of(&store, &cache, "n").await, (600_000, 300_000));
        // per value in a batch
        cache
            .set_many(
                &[("b1", &quote(true)), ("b2", &quote(false))],
                EntryOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(life_of(&store, &cache, "b1").await.0, 1_000);
        assert_eq!(life_of(&store, &cache, "b2").await.0, 3_600_000);
        assert_eq!(cache.get::<Quote>("b1").await.unwrap(), Some(quote(true)));
    }
}

#[tokio::test]
async fn read_through_stores_follow_the_policy_below_the_loaders_own_options() {
    use std::time::Duration;
    let store = MemoryBackend::new();
    let cache = with_policy(&store, false);
    cache
        .get_or_set("gs", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(quote(true))
        })
        .await
        .unwrap();
    assert_eq!(life_of(&store, &cache, "gs").await.0, 1_000);
    cache
        .get_or_load("gl", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(Loaded::from(quote(false)))
        })
        .await
        .unwrap();
    assert_eq!(life_of(&store, &cache, "gl").await.0, 3_600_000);
    cache
        .get_or_load("own", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(
                Loaded::value(quote(true))
                    .with_options(EntryOptions::new().absolute_expiration(Duration::from_secs(42))),
            )
        })
        .await
        .unwrap();
    assert_eq!(life_of(&store, &cache, "own").await.0, 42_000);
    let got = cache
        .get_or_set_many(
            &["m1", "m2"],
            EntryOptions::default(),
            |keys: Vec<String>| async move {
                Ok::<_, std::io::Error>(keys.into_iter().map(|k| {
                    let live = k == "m1";
                    (k, quote(live))
                }))
            },
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(life_of(&store, &cache, "m1").await.0, 1_000);
    assert_eq!(life_of(&store, &cache, "m2").await.0, 3_600_000);
}
