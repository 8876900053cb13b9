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
