//! A time-bounded cache in front of a (remote) key manager.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use memstache_core::raw::{Clock, KeyManager, KeyVersion, SystemClock};
use memstache_core::{Error, Result};
use parking_lot::Mutex;

/// Past this many cached versions, expired ones are purged on insert; the next purge waits
/// until the cache has doubled from what the purge left, so inserts stay amortised O(1)
/// however many versions are live.
const PURGE_ABOVE: usize = 1024;

/// One fetch from the wrapped manager, shared by every caller that misses meanwhile.
type Flight = Shared<BoxFuture<'static, std::result::Result<Arc<KeyVersion>, Arc<Error>>>>;

/// What a flight fetches: a key id and a version, or `None` for the current version.
type Slot = (String, Option<u32>);

/// Caches the key versions a key manager returns, each for at most `ttl`.
///
/// Meant for remote managers (Azure Key Vault, your KMS): without it every cache read of an
/// encrypted entry would be a network call. Specific versions (`key(id, v)`) and the current
/// version of each id are cached separately; both expire `ttl` after they were fetched.
///
/// Bounded staleness, stated plainly:
///
/// * a rotation made **through this wrapper** is seen at once; one made elsewhere is picked
///   up by `current_key` within `ttl`;
/// * `destroy_key` **through this wrapper** evicts every cached version of the id at once;
///   a destroy made elsewhere stops this process from using the key within `ttl`
///   (the [`KeyManager`] contract's "once their caches expire").
///
/// Concurrent misses for the same key id and version are served by **one** call to the
/// wrapped manager (single flight), so a cache expiry under load does not turn into a burst of
/// requests to a rate-limited key vault. A caller that stops waiting (the cache's
/// `key_manager_timeout` fired, or its request was dropped) takes that shared call out of the
/// table: the next caller starts a new call rather than joining one that may never end, so a
/// fetch that hangs does not block its key version until restart. The wrapper sets no timeout
/// of its own; the cache's `key_manager_timeout` bounds each caller.
///
/// Clones share the cache. `Debug` shows the cached ids and versions, never key bytes. Time is
/// read from a [`Clock`] ([`SystemClock`] unless [`with_clock`](Self::with_clock) says otherwise).
///
/// Lives in `memstache-keys` next to [`LocalKeyManager`](crate::LocalKeyManager) so that
/// `memstache-core` stays free of key-caching policy; it depends on the core traits only.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use memstache_core::raw::KeyManager;
/// use memstache_keys::{CachedKeyManager, LocalKeyManager};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> memstache_core::Result<()> {
/// let remote = LocalKeyManager::generate(); // stands in for a remote manager
/// let keys = CachedKeyManager::new(Arc::new(remote.clone()), Duration::from_secs(300));
/// let k = keys.current_key("default").await?;
/// assert_eq!(keys.key("default", k.version).await?.version, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct CachedKeyManager {
    inner: Arc<Inner>,
}

struct Inner {
    manager: Arc<dyn KeyManager>,
    ttl_ms: u64,
    clock: Arc<dyn Clock>,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    /// (key id, version) → key and the instant (ms) it stops being served from cache.
    versions: HashMap<(String, u32), (Arc<KeyVersion>, u64)>,
    /// key id → current version and the instant (ms) that fact expires.
    current: HashMap<String, (u32, u64)>,
    /// Bumped by every destroy: a fetch that started before a destroy must not be cached.
    epoch: u64,
    /// Fetches in progress and the epoch they started in (single flight per slot).
    flights: HashMap<Slot, (Flight, u64)>,
    /// The size at which the next purge runs (0: [`PURGE_ABOVE`]).
    purge_at: usize,
    /// Purges so far (observed by tests).
    purges: u64,
}

impl Cache {
    fn get(&self, key_id: &str, version: u32, now: u64) -> Option<Arc<KeyVersion>> {
        // A borrowed tuple key would need a custom Borrow impl; key ids are short.
        let (k, until) = self.versions.get(&(key_id.to_owned(), version))?;
        (now < *until).then(|| Arc::clone(k))
    }

    fn put(&mut self, key: &Arc<KeyVersion>, until: u64, now: u64) {
        if self.versions.len() >= self.purge_at.max(PURGE_ABOVE) {
            self.versions.retain(|_, (_, u)| now < *u);
            self.current.retain(|_, (_, u)| now < *u);
            self.purge_at = self.versions.len().saturating_mul(2);
            self.purges += 1;
        }
        self.versions
            .insert((key.key_id.clone(), key.version), (Arc::clone(key), until));
    }

    fn set_current(&mut self, key: &Arc<KeyVersion>, until: u64, now: u64) {
        self.put(key, until, now);
        self.current
            .insert(key.key_id.clone(), (key.version, until));
    }

    fn evict(&mut self, key_id: &str) {
        self.epoch = self.epoch.wrapping_add(1);
        self.flights.retain(|(id, _), _| id != key_id);
        self.versions.retain(|(id, _), _| id != key_id);
        self.current.remove(key_id);
    }
}

impl CachedKeyManager {
    /// Caches what `manager` returns for at most `ttl` (zero disables caching).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use memstache_keys::{CachedKeyManager, LocalKeyManager};
    /// let keys = CachedKeyManager::new(Arc::new(LocalKeyManager::generate()), Duration::from_secs(60));
    /// assert_eq!(keys.ttl(), Duration::from_secs(60));
    /// ```
    pub fn new(manager: Arc<dyn KeyManager>, ttl: Duration) -> Self {
        CachedKeyManager {
            inner: Arc::new(Inner {
                manager,
                ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
                clock: Arc::new(SystemClock),
                cache: Mutex::new(Cache::default()),
            }),
        }
    }

    /// The same cache reading time from `clock` (tests use a
    /// [`ManualClock`](memstache_core::raw::ManualClock)). Call it before cloning: clones made
    /// earlier keep the previous clock and their own (empty) cache.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use memstache_keys::{CachedKeyManager, LocalKeyManager};
    /// use memstache_core::raw::ManualClock;
    /// let clock = ManualClock::new(0);
    /// let keys = CachedKeyManager::new(Arc::new(LocalKeyManager::generate()), Duration::from_secs(60))
    ///     .with_clock(Arc::new(clock.clone()));
    /// ```
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        CachedKeyManager {
            inner: Arc::new(Inner {
                manager: Arc::clone(&self.inner.manager),
                ttl_ms: self.inner.ttl_ms,
                clock,
                cache: Mutex::new(Cache::default()),
            }),
        }
    }

    /// How long a fetched version is served from the cache.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use memstache_keys::{CachedKeyManager, LocalKeyManager};
    /// let keys = CachedKeyManager::new(Arc::new(LocalKeyManager::generate()), Duration::ZERO);
    /// assert_eq!(keys.ttl(), Duration::ZERO);
    /// ```
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.inner.ttl_ms)
    }

    /// Forgets everything cached (the next calls go to the wrapped manager).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Duration};
    /// # use memstache_keys::{CachedKeyManager, LocalKeyManager};
    /// let keys = CachedKeyManager::new(Arc::new(LocalKeyManager::generate()), Duration::from_secs(60));
    /// keys.clear();
    /// ```
    pub fn clear(&self) {
        let mut cache = self.inner.cache.lock();
        cache.versions.clear();
        cache.current.clear();
    }

    /// Fetches `version` (or the current version) from the wrapped manager, joining a fetch of
    /// the same slot already in flight, and caches the result unless a destroy intervened.
    async fn fetch(&self, key_id: &str, version: Option<u32>) -> Result<Arc<KeyVersion>> {
        let slot: Slot = (key_id.to_owned(), version);
        let (flight, epoch) = {
            let mut cache = self.inner.cache.lock();
            match cache.flights.get(&slot) {
                Some((flight, epoch)) => (flight.clone(), *epoch),
                None => {
                    let manager = Arc::clone(&self.inner.manager);
                    let id = key_id.to_owned();
                    let flight = async move {
                        match version {
                            Some(v) => manager.key(&id, v).await,
                            None => manager.current_key(&id).await,
                        }
                        .map_err(Arc::new)
                    }
                    .boxed()
                    .shared();
                    let epoch = cache.epoch;
                    cache.flights.insert(slot.clone(), (flight.clone(), epoch));
                    (flight, epoch)
                }
            }
        };
        // A caller cancelled while waiting (an operation or key-manager timeout, a dropped
        // request) takes the flight out of the table, so the next caller starts a fresh fetch
        // instead of joining one that may never resolve (a request lost on a dead
        // connection). Callers already waiting keep theirs.
        let mut abandon = Abandon {
            cache: &self.inner.cache,
            slot: &slot,
            flight: &flight,
            armed: true,
        };
        let result = flight.clone().await;
        abandon.armed = false;
        drop(abandon);
        {
            let (now, until) = self.now_and_until();
            let mut cache = self.inner.cache.lock();
            if cache
                .flights
                .get(&slot)
                .is_some_and(|(f, _)| f.ptr_eq(&flight))
            {
                cache.flights.remove(&slot);
            }
            if let Ok(k) = &result
                && cache.epoch == epoch
            {
                match version {
                    None => cache.set_current(k, until, now),
                    Some(_) => cache.put(k, until, now),
                }
            }
        }
        drop(flight);
        result.map_err(|shared| Arc::try_unwrap(shared).unwrap_or_else(|shared| unshare(&shared)))
    }

    fn now_and_until(&self) -> (u64, u64) {
        let now = self.inner.clock.now_ms();
        (now, now.saturating_add(self.inner.ttl_ms))
    }
}

/// Removes a flight from the table when the caller waiting on it is dropped before it ended.
struct Abandon<'a> {
    cache: &'a Mutex<Cache>,
    slot: &'a Slot,
    flight: &'a Flight,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let removed = {
            let mut cache = self.cache.lock();
            match cache.flights.get(self.slot) {
                Some((f, _)) if f.ptr_eq(self.flight) => cache.flights.remove(self.slot),
                _ => None,
            }
        };
        // dropped outside the lock: the last clone drops the wrapped manager's future
        drop(removed);
    }
}

/// A copy of an error that several waiters share: same kind, message, temporary flag,
/// operation and context, with the shared original as `source()`.
fn unshare(shared: &Arc<Error>) -> Error {
    let mut e =
        Error::new(shared.kind(), shared.message().to_owned()).set_temporary(shared.is_temporary());
    if let Some(op) = shared.operation() {
        e = e.with_operation(op);
    }
    for (name, value) in shared.context() {
        e = e.with_context(name, value.clone());
    }
    e.with_source(Arc::clone(shared))
}

#[async_trait]
impl KeyManager for CachedKeyManager {
    async fn current_key(&self, key_id: &str) -> Result<Arc<KeyVersion>> {
        let now = self.inner.clock.now_ms();
        {
            let cache = self.inner.cache.lock();
            if let Some(&(version, until)) = cache.current.get(key_id)
                && now < until
                && let Some(k) = cache.get(key_id, version, now)
            {
                return Ok(k);
            }
        }
        self.fetch(key_id, None).await
    }

    async fn key(&self, key_id: &str, version: u32) -> Result<Arc<KeyVersion>> {
        let now = self.inner.clock.now_ms();
        if let Some(k) = self.inner.cache.lock().get(key_id, version, now) {
            return Ok(k);
        }
        self.fetch(key_id, Some(version)).await
    }

    async fn rotate_key(&self, key_id: &str) -> Result<Arc<KeyVersion>> {
        let epoch = self.inner.cache.lock().epoch;
        let k = self.inner.manager.rotate_key(key_id).await?;
        let (now, until) = self.now_and_until();
        let mut cache = self.inner.cache.lock();
        if cache.epoch == epoch {
            cache.set_current(&k, until, now);
        }
        Ok(k)
    }

    async fn destroy_key(&self, key_id: &str) -> Result<()> {
        // Evict before and after: each eviction bumps the epoch, so a fetch that was in flight
        // across the destroy returns its key to its caller but does not cache it.
        self.inner.cache.lock().evict(key_id);
        let result = self.inner.manager.destroy_key(key_id).await;
        self.inner.cache.lock().evict(key_id);
        result
    }
}

impl fmt::Debug for CachedKeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached: Vec<(String, u32)> = {
            let cache = self.inner.cache.lock();
            let mut v: Vec<_> = cache.versions.keys().cloned().collect();
            v.sort();
            v
        };
        f.debug_struct("CachedKeyManager")
            .field("manager", &self.inner.manager)
            .field("ttl", &self.ttl())
            .field("cached", &cached)
            .finish()
    }
}

#[cfg(test)]
mod tests;
