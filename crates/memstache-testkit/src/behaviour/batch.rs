//! Batch operations.

use memstache_core::{EntryOptions, ErrorKind};

use super::Harness;

/// `set_many` then `get_many` returns every value in the order asked, `None` for misses.
pub async fn batch_roundtrip_in_order(h: &dyn Harness) {
    let c = h.cache();
    let keys: Vec<String> = (0..100).map(|i| format!("b:{i}")).collect();
    let vals: Vec<u64> = (0..100).map(|i| i * 7).collect();
    let items: Vec<(&str, &u64)> = keys.iter().map(String::as_str).zip(vals.iter()).collect();
    c.set_many(&items, EntryOptions::default()).await.unwrap();
    let mut ask: Vec<String> = keys.iter().rev().cloned().collect();
    ask.insert(10, "missing".into());
    let got: Vec<Option<u64>> = c.get_many(&ask).await.unwrap();
    assert_eq!(got.len(), 101);
    assert_eq!(got[10], None);
    let expect: Vec<Option<u64>> = vals.iter().rev().map(|v| Some(*v)).collect();
    let mut got_wo = got.clone();
    got_wo.remove(10);
    assert_eq!(got_wo, expect);
    let empty: Vec<Option<u64>> = c.get_many::<u64, &str>(&[]).await.unwrap();
    assert!(empty.is_empty());
}

/// A bad key anywhere in a batch fails the batch before anything is written.
pub async fn batch_rejects_bad_key_before_writing(h: &dyn Harness) {
    let c = h.cache();
    let e = c
        .set_many(&[("good", &1u8), ("", &2u8)], EntryOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKey);
    assert_eq!(c.get::<u8>("good").await.unwrap(), None);
    let e = c.get_many::<u8, &str>(&["good", ""]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidKey);
}

/// `remove_many` removes and counts what was there.
pub async fn remove_many_counts(h: &dyn Harness) {
    let c = h.cache();
    c.set_many(
        &[("a", &1u8), ("b", &2u8), ("c", &3u8)],
        EntryOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(c.remove_many(&["a", "c", "zzz"]).await.unwrap(), 2);
    let got: Vec<Option<u8>> = c.get_many(&["a", "b", "c"]).await.unwrap();
    assert_eq!(got, vec![None, Some(2), None]);
}

/// `set_many_guarded` writes only while the guard key holds the expected value (the keys share
/// a hash tag, as a guarded write on Redis Cluster requires), and otherwise writes nothing and
/// says what the guard holds; an entry already due is not readable afterwards.
pub async fn guarded_writes_check_the_guard(h: &dyn Harness) {
    use bytes::Bytes;
    use memstache_core::raw::{BackendEntry, Expiry};
    use memstache_core::scope::Outcome;

    let b = super::basic::raw(h);
    let ns = h.cache().namespace().to_owned();
    let (guard, ka, kb) = (
        format!("{{{ns}}}:guard"),
        format!("{{{ns}}}:a"),
        format!("{{{ns}}}:b"),
    );
    let entry = |k: &str, v: &'static [u8], expiry: Expiry| BackendEntry {
        key: k.to_owned(),
        value: Bytes::from_static(v),
        expiry,
    };
    let stale = |o: Outcome<()>| match o {
        Outcome::Stale(seen) => seen,
        Outcome::Done(()) => panic!("a guarded write went through a guard that did not hold"),
    };

    let seen = b
        .set_many_guarded(&guard, b"1", vec![entry(&ka, b"x", Expiry::NEVER)])
        .await
        .unwrap();
    assert_eq!(
        stale(seen),
        None,
        "no guard yet: stale, and it holds nothing"
    );
    assert!(
        !b.exists(&ka).await.unwrap(),
        "written through a missing guard"
    );

    b.set(&guard, Bytes::from_static(b"1"), Expiry::NEVER)
        .await
        .unwrap();
    let out = b
        .set_many_guarded(
            &guard,
            b"1",
            vec![
                entry(&ka, b"x", Expiry::NEVER),
                entry(&kb, b"y", Expiry::NEVER),
            ],
        )
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Done(())));
    assert_eq!(b.get(&ka).await.unwrap().as_deref(), Some(&b"x"[..]));
    assert_eq!(b.get(&kb).await.unwrap().as_deref(), Some(&b"y"[..]));

    b.set(&guard, Bytes::from_static(b"2"), Expiry::NEVER)
        .await
        .unwrap();
    let seen = b
        .set_many_guarded(&guard, b"1", vec![entry(&ka, b"z", Expiry::NEVER)])
        .await
        .unwrap();
    assert_eq!(stale(seen).as_deref(), Some(&b"2"[..]));
    assert_eq!(
        b.get(&ka).await.unwrap().as_deref(),
        Some(&b"x"[..]),
        "a stale guarded write changed an entry"
    );

    // an entry whose deadline has passed replaces the old value with nothing readable
    let due = Expiry::new(Some(1), None);
    let out = b
        .set_many_guarded(&guard, b"2", vec![entry(&kb, b"old", due)])
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Done(())));
    assert_eq!(b.get(&kb).await.unwrap(), None);
    b.remove_many(&[guard.as_str(), ka.as_str()]).await.unwrap();
}
