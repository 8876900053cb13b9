//! Helpers the multi-node integration tests share (`tiers.rs`, `read_through.rs`).

use std::future::Future;
use std::time::{Duration, Instant};

use memstache::MemStache;
use memstache::redis::RedisBackend;
use memstache::tiers::LocalTier;

/// Both Redis clients, as the URL's `client=` parameter names them.
pub(crate) const CLIENTS: [&str; 2] = ["redis-rs", "fred"];

/// `url` with the Redis client chosen.
pub(crate) fn with_client(url: &str, client: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}client={client}")
}

/// A node: its own backend connection(s), backplane subscription and L1 (copies kept up to
/// 120 s), with whatever else `f` adds; returned once the backplane is subscribed.
pub(crate) async fn node(
    url: &str,
    namespace: &str,
    f: impl FnOnce(memstache::MemStacheBuilder) -> memstache::MemStacheBuilder,
) -> MemStache {
    let backend = RedisBackend::connect(url).await.expect("connect");
    let builder = MemStache::builder()
        .namespace(namespace)
        .backplane(backend.backplane())
        .backend(backend)
        .local_tier(LocalTier::new().max_duration(Duration::from_secs(120)));
    let cache = f(builder).build().expect("cache");
    tokio::time::timeout(Duration::from_secs(20), cache.local_tier_ready())
        .await
        .expect("the backplane subscribed");
    cache
}

/// Polls `check` every 2 ms until it holds; fails after `limit`.
pub(crate) async fn until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
