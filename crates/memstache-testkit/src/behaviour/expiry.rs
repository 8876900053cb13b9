//! Absolute and sliding expiration. Durations are a few hundred ms so that real-clock
//! backends (Redis) run them quickly; margins are generous on both sides.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memstache_core::EntryOptions;

use super::Harness;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An entry is there before its absolute expiration and gone after it.
pub async fn absolute_expiration(h: &dyn Harness) {
    let c = h.cache();
    c.set("k", &1u8, EntryOptions::new().absolute_expiration(ms(600)))
        .await
        .unwrap();
    h.advance(ms(150)).await;
    assert_eq!(c.get::<u8>("k").await.unwrap(), Some(1));
    h.advance(ms(700)).await;
    assert_eq!(c.get::<u8>("k").await.unwrap(), None);
    assert!(!c.exists("k").await.unwrap());
}

/// Expiration at an instant works like a relative one.
pub async fn absolute_expiration_at_instant(h: &dyn Harness) {
    let c = h.cache();
    let now = UNIX_EPOCH + Duration::from_millis(h.clock().now_ms());
    c.set(
        "k",
        &1u8,
        EntryOptions::new().absolute_expiration_at(now + ms(600)),
    )
    .await
    .unwrap();
    h.advance(ms(150)).await;
    assert_eq!(c.get::<u8>("k").await.unwrap(), Some(1));
    h.advance(ms(700)).await;
    assert_eq!(c.get::<u8>("k").await.unwrap(), None);
    // an instant in the past is never readable
    let past = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
    c.set("p", &1u8, EntryOptions::new().absolute_expiration_at(past))
        .await
        .unwrap();
    assert_eq!(c.get::<u8>("p").await.unwrap(), None);
}

/// The cache's default options apply where the entry's leave a field unset; `no_expiration`
/// overrides them.
pub async fn default_entry_options_apply(h: &dyn Harness) {
    let c = h
        .builder()
        .default_entry_options(EntryOptions::new().absolute_expiration(ms(600)))
        .build()
        .unwrap();
    c.set("d", &1u8, EntryOptions::default()).await.unwrap();
    c.set("n", &1u8, EntryOptions::new().no_expiration())
        .await
        .unwrap();
    h.advance(ms(800)).await;
    assert_eq!(c.get::<u8>("d").await.unwrap(), None);
    assert_eq!(c.get::<u8>("n").await.unwrap(), Some(1));
}

/// Each hit re-arms the sliding window, but never past the absolute deadline.
pub async fn sliding_expiration_rearms_and_is_capped(h: &dyn Harness) {
    let c = h.cache();
    let o = EntryOptions::new()
        .sliding_expiration(ms(500))
        .absolute_expiration(ms(1300));
    c.set("s", &1u8, o).await.unwrap();
    c.set("quiet", &1u8, o).await.unwrap();
    for _ in 0..3 {
        h.advance(ms(300)).await;
        assert_eq!(
            c.get::<u8>("s").await.unwrap(),
            Some(1),
            "sliding hit re-arms"
        );
    }
    // t = 900: "quiet" was never read, its window (500) is over
    assert_eq!(c.get::<u8>("quiet").await.unwrap(), None);
    h.advance(ms(300)).await; // t = 1200: re-armed at 900, still alive
    assert_eq!(c.get::<u8>("s").await.unwrap(), Some(1));
    h.advance(ms(250)).await; // t = 1450: past the absolute deadline (1300)
    assert_eq!(
        c.get::<u8>("s").await.unwrap(),
        None,
        "absolute deadline caps sliding"
    );
}

/// `refresh` re-arms the sliding window without reading.
pub async fn refresh_rearms_sliding(h: &dyn Harness) {
    let c = h.cache();
    c.set("s", &1u8, EntryOptions::new().sliding_expiration(ms(500)))
        .await
        .unwrap();
    h.advance(ms(300)).await;
    assert!(c.refresh("s").await.unwrap());
    h.advance(ms(300)).await;
    assert!(c.refresh("s").await.unwrap());
    h.advance(ms(300)).await;
    assert_eq!(c.get::<u8>("s").await.unwrap(), Some(1));
    assert!(!c.refresh("missing").await.unwrap());
}

/// `exists` does not count as a read for sliding expiration.
pub async fn exists_does_not_rearm_sliding(h: &dyn Harness) {
    let c = h.cache();
    c.set("s", &1u8, EntryOptions::new().sliding_expiration(ms(500)))
        .await
        .unwrap();
    h.advance(ms(300)).await;
    assert!(c.exists("s").await.unwrap());
    h.advance(ms(350)).await;
    assert!(!c.exists("s").await.unwrap());
    assert_eq!(c.get::<u8>("s").await.unwrap(), None);
}

/// Writing with a deadline already past stores nothing and removes the older value.
pub async fn past_deadline_removes_the_old_value(h: &dyn Harness) {
    let c = h.cache();
    c.set("k", &1u8, EntryOptions::default()).await.unwrap();
    c.set(
        "k",
        &2u8,
        EntryOptions::new().absolute_expiration(Duration::ZERO),
    )
    .await
    .unwrap();
    assert_eq!(c.get::<u8>("k").await.unwrap(), None);
}
