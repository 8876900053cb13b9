//! Read-through with a loader that may outlive the call: [`MemStache::get_or_load`], with
//! eager refresh, loader soft and hard timeouts, background completion, and loaders that
//! decide what their result does ([`Loaded`]). The rules are in `docs/read-through.md`.
//!
//! `get_or_set` takes any loader (it may borrow the caller's state) and so never lets it run
//! past the call; `get_or_load` takes a `Send + 'static` loader, and that is what lets a
//! refresh or a slow load go on in the background while the caller already has a value.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tracing::{Instrument, field};

use super::flight::{FlightKey, Joined, LeaderGuard, SharedLoaderError};
use super::lock::Lock;
use super::pipeline::fingerprint_of;
use super::{MemStache, Outcome, record_outcome};
use crate::{BoxError, EntryOptions, Error, ErrorKind, ReadOptions, Result};

/// Default of the number of background loads a cache runs at once
/// ([`MemStacheBuilder::background_loads`](crate::MemStacheBuilder::background_loads)).
pub const DEFAULT_MAX_BACKGROUND_LOADS: usize = 64;
/// Default of how long a background load may run before it is dropped.
pub const DEFAULT_BACKGROUND_LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// What a [`get_or_load`](MemStache::get_or_load) loader produced: a value (or "not found"),
/// and what to do with it. A loader that returns a plain `T` means `Loaded::value(t)`
/// (`From<T>`), so the simple case stays simple.
///
/// A loader that **fails** returns `Err`: with [`FailSafe`](crate::FailSafe) and a copy of the
/// key, the copy is served instead of the error (one code path for "source down").
///
/// ```
/// use memstache_core::{EntryOptions, Loaded};
/// use std::time::Duration;
///
/// struct Quote { price: u64, volatile: bool }
/// fn loaded(q: Quote) -> Loaded<u64> {
///     let ttl = if q.volatile { Duration::from_secs(5) } else { Duration::from_secs(600) };
///     Loaded::value(q.price).with_options(EntryOptions::new().absolute_expiration(ttl))
/// }
/// assert_eq!(loaded(Quote { price: 7, volatile: true }).get_options().unwrap().get_absolute_expiration(),
///            Some(memstache_core::Absolute::After(Duration::from_secs(5))));
/// assert!(!Loaded::value(1u8).uncached().is_cached());
/// assert!(Loaded::<u8>::not_found().get_value().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct Loaded<T> {
    value: Option<T>,
    options: Option<EntryOptions>,
    cache: bool,
}

impl<T> Loaded<T> {
    /// A value, cached with the call's options.
    pub fn value(value: T) -> Self {
        Loaded {
            value: Some(value),
            options: None,
            cache: true,
        }
    }

    /// The source has nothing for the key: `get_or_load` returns `Ok(None)` to this caller and
    /// to the callers waiting on the same load. Nothing is stored: the next call loads again
    /// (see [`not_found_for`](Self::not_found_for) to cache the answer).
    pub fn not_found() -> Self {
        Loaded {
            value: None,
            options: None,
            cache: false,
        }
    }

    /// The source has nothing for the key, and that answer is cached for `ttl` (**negative
    /// caching**): a "not found" marker is stored in the backend, and until it expires every
    /// `get_or_load` of the key on every node returns `Ok(None)` without calling its loader,
    /// and `get` returns `None` (counted in
    /// [`StatsSnapshot::negative_hits`](crate::StatsSnapshot::negative_hits)). A `set` of the
    /// key replaces the marker. `get_or_set`, whose loader must produce a value, treats the
    /// marker as a miss. Markers are never kept in the local tier.
    ///
    /// Pick a `ttl` shorter than the values' own: it bounds how long a key created at the
    /// source stays invisible through the cache.
    pub fn not_found_for(ttl: Duration) -> Self {
        Loaded {
            value: None,
            options: Some(EntryOptions::new().absolute_expiration(ttl)),
            cache: true,
        }
    }

    /// Options for this entry computed from the value (duration, sliding, compression, tier
    /// flags): their set fields win over the call's options, field by field (as the call's win
    /// over the cache defaults), and over options given earlier to this `Loaded`.
    pub fn with_options(mut self, options: EntryOptions) -> Self {
        self.options = Some(match self.options {
            Some(earlier) => options.or(&earlier),
            None => options,
        });
        self
    }

    /// Return the value (to this caller and its waiters) without storing it (for a
    /// [`not_found_for`](Self::not_found_for): store no marker).
    pub fn uncached(mut self) -> Self {
        self.cache = false;
        self
    }

    /// The value, `None` for [`not_found`](Self::not_found).
    pub fn get_value(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// The options set with [`with_options`](Self::with_options).
    pub fn get_options(&self) -> Option<&EntryOptions> {
        self.options.as_ref()
    }

    /// Whether the value, or for a "not found" its marker, is stored.
    pub fn is_cached(&self) -> bool {
        self.cache
    }
}

impl<T> From<T> for Loaded<T> {
    fn from(value: T) -> Self {
        Loaded::value(value)
    }
}

/// When a [`get_or_load`](MemStache::get_or_load) loader runs and how long a caller waits
/// for it. The cache's default is set with
/// [`MemStacheBuilder::read_through`](crate::MemStacheBuilder::read_through); one call can
/// pass its own to [`get_or_load_with`](MemStache::get_or_load_with).
///
/// * **Eager refresh** (`eager_refresh(0.8)`): a hit on an entry past 80 % of its life (from
///   its write to its absolute deadline) is returned at once, and the loader runs in the
///   background to replace it: one refresh per key on this node, and with
///   [`distributed_lock`](crate::MemStacheBuilder::distributed_lock) one across nodes (a node
///   that finds the lock taken, or the entry already refreshed, skips). The new value reaches
///   the other nodes' local tiers through the backplane, as any write does. Entries without an
///   absolute deadline are never refreshed early.
/// * **Soft timeout**: when the key has a stale copy ([`FailSafe`](crate::FailSafe) keeps
///   them), a caller waits for the loader at most this long, then gets the copy; the loader
///   goes on in the background and stores its value. Meanwhile the copy is served (as with a
///   failing loader's throttle) so the slow source is not called again.
/// * **Hard timeout**: a caller never waits longer. With a stale copy it gets the copy,
///   without one an [`ErrorKind::Timeout`] error; the loader goes on in the background.
///
/// Background loads are bounded: at most
/// [`DEFAULT_MAX_BACKGROUND_LOADS`] at once and [`DEFAULT_BACKGROUND_LOAD_TIMEOUT`] each by
/// default; past either they are dropped, and counted
/// ([`StatsSnapshot::background_loads_dropped`](crate::StatsSnapshot::background_loads_dropped)).
///
/// ```
/// use memstache_core::ReadThrough;
/// use std::time::Duration;
/// let rt = ReadThrough::new()
///     .eager_refresh(0.8)
///     .soft_timeout(Duration::from_millis(50))
///     .hard_timeout(Duration::from_secs(2));
/// assert_eq!(rt.get_eager_refresh(), Some(0.8));
/// assert!(rt.validate().is_ok());
/// assert!(ReadThrough::new().eager_refresh(1.5).validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[must_use]
pub struct ReadThrough {
    eager_refresh: Option<f32>,
    soft_timeout: Option<Duration>,
    hard_timeout: Option<Duration>,
}

impl ReadThrough {
    /// No eager refresh, no timeouts (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Refresh in the background once an entry is past this fraction of its life (strictly
    /// between 0 and 1).
    pub fn eager_refresh(mut self, fraction: f32) -> Self {
        self.eager_refresh = Some(fraction);
        self
    }

    /// With a stale copy at hand, wait at most this long for the loader.
    pub fn soft_timeout(mut self, timeout: Duration) -> Self {
        self.soft_timeout = Some(timeout);
        self
    }

    /// Never wait longer than this for the loader.
    pub fn hard_timeout(mut self, timeout: Duration) -> Self {
        self.hard_timeout = Some(timeout);
        self
    }

    /// The eager-refresh fraction, if set.
    pub fn get_eager_refresh(&self) -> Option<f32> {
        self.eager_refresh
    }

    /// The soft timeout, if set.
    pub fn get_soft_timeout(&self) -> Option<Duration> {
        self.soft_timeout
    }

    /// The hard timeout, if set.
    pub fn get_hard_timeout(&self) -> Option<Duration> {
        self.hard_timeout
    }

    /// An [`InvalidConfig`](ErrorKind::InvalidConfig) error for a fraction outside (0, 1) or a
    /// zero timeout.
    pub fn validate(&self) -> Result<()> {
        if let Some(f) = self.eager_refresh
            && !(f > 0.0 && f < 1.0)
        {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "eager_refresh must be strictly between 0 and 1",
            ));
        }
        if self.soft_timeout.is_some_and(|d| d.is_zero())
            || self.hard_timeout.is_some_and(|d| d.is_zero())
        {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "loader timeouts must be positive",
            ));
        }
        Ok(())
    }
}

/// An entry's life as its header says: written at, absolute deadline (0: none), ms since the
/// epoch. Filled in by the read-through reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Life {
    pub(crate) created_ms: u64,
    pub(crate) deadline_ms: u64,
    /// The read found a verified "not found" marker (negative caching).
    pub(crate) absent: bool,
}

impl Life {
    pub(crate) fn of_envelope(raw: &[u8]) -> Life {
        Life {
            created_ms: crate::envelope::peek_created(raw).unwrap_or(0),
            deadline_ms: crate::envelope::peek_expiry(raw).map_or(0, |(d, _)| d),
            absent: false,
        }
    }

    /// This life, of a "not found" marker.
    pub(crate) fn absent(self) -> Life {
        Life {
            absent: true,
            ..self
        }
    }

    /// Whether an entry of this life is past `fraction` of it at `now_ms`.
    pub(crate) fn due(&self, fraction: f32, now_ms: u64) -> bool {
        if self.deadline_ms == 0 || self.deadline_ms <= self.created_ms {
            return false;
        }
        let span = (self.deadline_ms - self.created_ms) as f64;
        let at = self.created_ms as f64 + span * f64::from(fraction);
        now_ms as f64 >= at
    }
}

/// The background loads of one cache: their bound, and the keys being refreshed.
#[derive(Debug)]
pub(crate) struct Background {
    pub(crate) max: usize,
    pub(crate) timeout: Duration,
    running: AtomicUsize,
    refreshing: parking_lot::Mutex<HashSet<String>>,
    /// The keys whose load went on in the background past a timeout: a watch that closes
    /// when it ends, under the id of its registration.
    pending: parking_lot::Mutex<HashMap<String, (u64, watch::Receiver<()>)>>,
    /// The id of the next registration in `pending`.
    next_pending: std::sync::atomic::AtomicU64,
}

impl Background {
    pub(crate) fn new(max: usize, timeout: Duration) -> Self {
        Background {
            max,
            timeout,
            running: AtomicUsize::new(0),
            refreshing: parking_lot::Mutex::new(HashSet::new()),
            pending: parking_lot::Mutex::new(HashMap::new()),
            next_pending: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The runtime and a slot for one more background load, or `None` (counted as dropped)
    /// without a tokio runtime or at the bound.
    fn start(cache: &MemStache) -> Option<(tokio::runtime::Handle, Slot)> {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            cache
                .inner
                .stats
                .background_loads_dropped
                .fetch_add(1, Relaxed);
            return None;
        };
        Some((rt, Self::slot(cache)?))
    }

    /// A slot for one more background load, or `None` at the bound.
    fn slot(cache: &MemStache) -> Option<Slot> {
        let bg = &cache.inner.background;
        if bg.running.fetch_add(1, Relaxed) >= bg.max {
            bg.running.fetch_sub(1, Relaxed);
            cache
                .inner
                .stats
                .background_loads_dropped
                .fetch_add(1, Relaxed);
            tracing::warn!(
                max = bg.max,
                "memstache: too many background loads; this one is dropped"
            );
            return None;
        }
        Some(Slot(cache.clone()))
    }
}

/// A running background load (frees its place when dropped, also on panic).
struct Slot(MemStache);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.inner.background.running.fetch_sub(1, Relaxed);
    }
}

/// The key being refreshed on this node (removed when the refresh ends).
struct Refreshing(MemStache, String);

impl Drop for Refreshing {
    fn drop(&mut self) {
        self.0.inner.background.refreshing.lock().remove(&self.1);
    }
}

/// A load of `sk` going on in the background: callers that miss the key meanwhile wait for
/// it ([`Pending::wait`]) rather than start their own. Ends (the watch closes) when dropped,
/// also when the load panicked or was cut off.
struct Pending {
    cache: MemStache,
    sk: String,
    id: u64,
    _done: watch::Sender<()>,
}

impl Pending {
    fn register(cache: &MemStache, sk: &str) -> Pending {
        let (tx, rx) = watch::channel(());
        let bg = &cache.inner.background;
        let id = bg.next_pending.fetch_add(1, Relaxed);
        bg.pending.lock().insert(sk.to_owned(), (id, rx));
        Pending {
            cache: cache.clone(),
            sk: sk.to_owned(),
            id,
            _done: tx,
        }
    }

    /// Waits, at most `limit`, for the background load of `sk` if one runs: `None` when none
    /// does, `Some(true)` when it ended, `Some(false)` when `limit` passed first.
    async fn wait(cache: &MemStache, sk: &str, limit: Option<Duration>) -> Option<bool> {
        let mut rx = cache.inner.background.pending.lock().get(sk)?.1.clone();
        // `changed` is an error once the sender is gone: that is the end of the load
        let ended = async move { while rx.changed().await.is_ok() {} };
        Some(match limit {
            None => {
                ended.await;
                true
            }
            Some(l) => tokio::time::timeout(l, ended).await.is_ok(),
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        // out of the table before the watch closes (the sender drops after this): a caller
        // that finds no entry reads the stored value instead. Only its own entry: a later
        // load of the key may have registered since.
        let mut map = self.cache.inner.background.pending.lock();
        if map.get(&self.sk).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.sk);
        }
    }
}

/// How long a caller waits for a load under `policy`: the soft timeout when it has a stale
/// copy to serve (capped by the hard one), otherwise the hard timeout.
fn limit_of(policy: ReadThrough, has_stale: bool) -> Option<Duration> {
    let soft = policy.soft_timeout.filter(|_| has_stale);
    match (soft, policy.hard_timeout) {
        (Some(s), Some(h)) => Some(s.min(h)),
        (s, h) => s.or(h),
    }
}

/// `d` in whole milliseconds (saturating).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The error of a caller that gave up on its loader at the hard timeout.
fn hard_timeout() -> Error {
    Error::new(
        ErrorKind::Timeout,
        "the loader did not finish within its hard timeout (it goes on in the background)",
    )
}

/// Hands a fail-safe or stale copy to a flight's waiters: its plaintext when it is in the
/// cache's own format; without one they retry, and read the (throttled) copy themselves.
pub(crate) fn share_copy(guard: LeaderGuard<'_>, shared: Option<Vec<u8>>) {
    match shared {
        Some(plain) => guard.complete(Ok(Some(Arc::new(plain)))),
        None => drop(guard),
    }
}

type HeldLock = Option<(String, Bytes)>;

impl MemStache {
    /// The value at `key`, or the loader's, stored with `options` — read-through with the
    /// cache's [`ReadThrough`] policy (eager refresh, loader timeouts), and a loader that
    /// decides what its result does ([`Loaded`]: options from the value, not cached, not
    /// found). `Ok(None)` when the loader said [`Loaded::not_found`].
    ///
    /// Single-flight and the distributed lock as [`get_or_set`](Self::get_or_set); unlike
    /// it, the loader must be `Send + 'static`, because it may run past the call (an eager
    /// refresh, a load past a timeout). A loader that borrows its caller's state belongs in
    /// `get_or_set`.
    ///
    /// ```
    /// use memstache_core::{EntryOptions, Loaded, MemStache};
    /// use std::time::Duration;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
    /// let cache = MemStache::builder().build()?;
    /// let v: Option<u32> = cache
    ///     .get_or_load("user:7", EntryOptions::new(), || async {
    ///         // the source decides: short-lived when it looks volatile
    ///         let value = 42u32;
    ///         let ttl = Duration::from_secs(if value > 40 { 10 } else { 600 });
    ///         Ok::<_, std::io::Error>(
    ///             Loaded::value(value).with_options(EntryOptions::new().absolute_expiration(ttl)),
    ///         )
    ///     })
    ///     .await?;
    /// assert_eq!(v, Some(42));
    /// let gone: Option<u32> = cache
    ///     .get_or_load("user:8", EntryOptions::new(), || async { Ok::<_, std::io::Error>(Loaded::not_found()) })
    ///     .await?;
    /// assert_eq!(gone, None);
    /// # Ok(()) }
    /// ```
    pub async fn get_or_load<T, F, Fut, E>(
        &self,
        key: &str,
        options: EntryOptions,
        loader: F,
    ) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Loaded<T>, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        self.get_or_load_with(key, options, self.inner.read_through, loader)
            .await
    }

    /// [`get_or_load`](Self::get_or_load) with this call's own [`ReadThrough`] policy.
    pub async fn get_or_load_with<T, F, Fut, E>(
        &self,
        key: &str,
        options: EntryOptions,
        policy: ReadThrough,
        loader: F,
    ) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Loaded<T>, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        let scope = self.root();
        let span = op_span!("memstache.get_or_load", self, scope, key);
        let r = self
            .get_or_load_inner(key, options, policy, loader)
            .instrument(span.clone())
            .await
            .map_err(|e| self.ctx(e, "get_or_load", &scope, Some(key)));
        record_outcome(&span, &r);
        r
    }

    async fn get_or_load_inner<T, F, Fut, E>(
        &self,
        key: &str,
        options: EntryOptions,
        policy: ReadThrough,
        loader: F,
    ) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Loaded<T>, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        policy.validate()?;
        let scope = self.root();
        let sk = self.inline_key_in(&scope, key)?;
        let sk = sk.as_str()?;
        let skip = options.or(&self.inner.defaults).skips();
        let mut loader = Some(loader);
        let mut first = true;
        loop {
            let mut life = Life::default();
            match self.read_for_load::<T>(&scope, sk, skip, &mut life).await {
                Outcome::Done(Some(v)) => {
                    if first
                        && let Some(fraction) = policy.eager_refresh
                        && life.due(fraction, self.inner.clock.now_ms())
                        && let Some(load) = loader.take()
                    {
                        self.refresh_in_background::<T, F, Fut, E>(sk, options, fraction, load);
                    }
                    return Ok(Some(v));
                }
                // the root scope has no guard
                Outcome::Stale(_) => return Err(Error::internal("the cache's own scope moved")),
                Outcome::Done(None) if life.absent => return Ok(None), // cached "not found"
                Outcome::Done(None) => {}
            }
            first = false;
            match self
                .inner
                .flights
                .join_or_wait(FlightKey::of::<T>(sk))
                .await
            {
                Joined::Done(Ok(Some(plain))) => {
                    return Ok(Some(self.inner.pipeline.deserialize(&plain)?));
                }
                Joined::Done(Ok(None)) => return Ok(None),
                Joined::Done(Err(e)) => return Err(e.to_error()),
                Joined::Abandoned => continue,
                Joined::Lead(guard) => {
                    let mut life = Life::default();
                    match self.read_for_load::<T>(&scope, sk, skip, &mut life).await {
                        Outcome::Done(Some(v)) => return Ok(Some(v)),
                        Outcome::Stale(_) => {
                            return Err(Error::internal("the cache's own scope moved"));
                        }
                        Outcome::Done(None) if life.absent => {
                            guard.complete(Ok(None));
                            return Ok(None);
                        }
                        Outcome::Done(None) => {}
                    }
                    // A load of the key outlived an earlier caller's timeout and goes on in
                    // the background: wait for it (within this call's hard timeout) rather
                    // than call the source again, then read what it stored.
                    match Pending::wait(self, sk, policy.hard_timeout).await {
                        Some(true) => {
                            drop(guard); // the waiters look again too
                            continue;
                        }
                        Some(false) => {
                            self.inner.stats.hard_timeouts.fetch_add(1, Relaxed);
                            guard.complete(Err(SharedLoaderError::new(Box::new(hard_timeout()))));
                            return Err(hard_timeout());
                        }
                        None => {}
                    }
                    let mut held = None;
                    if let Some(opts) = &self.inner.lock {
                        match self.try_lock(sk, opts).await {
                            Lock::Held { key, token } => held = Some((key, token)),
                            Lock::Unknown => {}
                            Lock::Busy => {
                                // Waited out without a value: the holder may be gone, so
                                // this caller loads.
                                // The wait is bounded by this call's timeouts too: past
                                // them it gets the stale copy (or the timeout error), as a
                                // caller of its own slow loader would.
                                let mut life = Life::default();
                                let stale = self.stale_for(policy, sk);
                                let limit = limit_of(policy, stale.is_some());
                                let wait = self
                                    .wait_for_other_loader::<T>(&scope, sk, opts, skip, &mut life);
                                let waited = match limit {
                                    None => Ok(wait.await),
                                    Some(l) => tokio::time::timeout(l, wait).await,
                                };
                                match waited {
                                    Ok(Some(Outcome::Done(Some(v)))) => return Ok(Some(v)),
                                    Ok(Some(Outcome::Done(None))) if life.absent => {
                                        guard.complete(Ok(None));
                                        return Ok(None);
                                    }
                                    Ok(_) => {}
                                    Err(_) => {
                                        let by_soft = limit != policy.hard_timeout;
                                        return self.give_up(guard, stale, by_soft);
                                    }
                                }
                            }
                        }
                    }
                    let Some(load) = loader.take() else {
                        return Err(Error::internal("loader already used"));
                    };
                    return self
                        .lead_load::<T, Fut, E>(sk, options, policy, load(), guard, held)
                        .await;
                }
            }
        }
    }

    /// The leader's load: waits for the loader within the policy's timeouts, stores and shares
    /// its value, or hands it to the background and serves the stale copy (or a timeout).
    async fn lead_load<T, Fut, E>(
        &self,
        sk: &str,
        options: EntryOptions,
        policy: ReadThrough,
        fut: Fut,
        guard: LeaderGuard<'_>,
        held: HeldLock,
    ) -> Result<Option<T>>
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        Fut: Future<Output = std::result::Result<Loaded<T>, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        self.inner.stats.loader_call();
        tracing::Span::current().record("hit", false);
        let mut fut = Box::pin(fut);
        let stale = self.stale_for(policy, sk);
        let limit = limit_of(policy, stale.is_some());
        let done = match limit {
            None => fut.as_mut().await,
            Some(limit) => match tokio::time::timeout(limit, fut.as_mut()).await {
                Ok(r) => r,
                Err(_) => {
                    let by_soft = Some(limit) != policy.hard_timeout;
                    let started = self.background(sk.to_owned(), options, fut, held);
                    if stale.is_some()
                        && let Some(l1) = self.l1()
                    {
                        // Serve the copy meanwhile, so the slow source is not called again:
                        // while the background load runs (it replaces the copy when it
                        // ends), or, when the background bound dropped the load, for the
                        // fail-safe throttle, as after a failed load. Otherwise every later
                        // caller would wait out the timeout in turn on an overloaded source.
                        let hold = if started {
                            self.inner.background.timeout
                        } else {
                            self.inner.loader_throttle.unwrap_or_default()
                        };
                        if !hold.is_zero() {
                            let until = self.inner.clock.now_ms().saturating_add(millis(hold));
                            l1.throttle(sk, fingerprint_of::<T>(), until);
                        }
                    }
                    return self.give_up(guard, stale, by_soft);
                }
            },
        };
        let out = match done {
            Ok(loaded) => match self.keep_loaded(sk, options, loaded).await {
                Ok(Some((v, plain))) => {
                    guard.complete(Ok(Some(Arc::new(plain))));
                    Ok(Some(v))
                }
                Ok(None) => {
                    guard.complete(Ok(None));
                    Ok(None)
                }
                Err(e) => Err(e),
            },
            Err(e) => self.leader_failed::<T>(sk, e.into(), guard).map(Some),
        };
        if let Some((lock_key, token)) = held {
            self.unlock(&lock_key, token).await;
        }
        out
    }

    /// The stale copy of `sk` a timed-out load may serve (fail-safe's), with its plaintext
    /// when it is in the cache's own format (for the waiters); only looked up when `policy`
    /// has a timeout.
    fn stale_for<T: DeserializeOwned>(
        &self,
        policy: ReadThrough,
        sk: &str,
    ) -> Option<(T, Option<Vec<u8>>)> {
        if policy.soft_timeout.is_none() && policy.hard_timeout.is_none() {
            return None;
        }
        self.recall_copy::<T>(sk).map(|(v, shared, _)| (v, shared))
    }

    /// A caller stops waiting for a load at a timeout: counted, and served the stale copy
    /// (shared with the flight's waiters) or a [`Timeout`](ErrorKind::Timeout) error.
    fn give_up<T>(
        &self,
        guard: LeaderGuard<'_>,
        stale: Option<(T, Option<Vec<u8>>)>,
        by_soft: bool,
    ) -> Result<Option<T>> {
        let stats = &self.inner.stats;
        let counter = if by_soft {
            &stats.soft_timeouts
        } else {
            &stats.hard_timeouts
        };
        counter.fetch_add(1, Relaxed);
        match stale {
            Some((v, shared)) => {
                share_copy(guard, shared);
                tracing::Span::current().record("fail_safe", true);
                tracing::debug!(
                    soft = by_soft,
                    "memstache: the loader is slow; served the stale copy, the load goes on"
                );
                Ok(Some(v))
            }
            None => {
                guard.complete(Err(SharedLoaderError::new(Box::new(hard_timeout()))));
                Err(hard_timeout())
            }
        }
    }

    /// Stores what a loader produced as it asked ([`Loaded`]): the value with its own options
    /// over the call's, a "not found" marker ([`Loaded::not_found_for`]), or nothing. The
    /// value comes back with its plaintext (for the waiters); a failed store is logged and
    /// counted, and the value is still returned.
    async fn keep_loaded<T: Serialize>(
        &self,
        sk: &str,
        options: EntryOptions,
        loaded: Loaded<T>,
    ) -> Result<Option<(T, Vec<u8>)>> {
        let Loaded {
            value,
            options: own,
            cache,
        } = loaded;
        let options = own.map_or(options, |o| o.or(&options));
        match value {
            None => {
                if cache {
                    // a marker is never kept in a local tier: the next read on any node
                    // finds it in the backend (and other nodes drop their copies of the key)
                    let mut marker = options.skip_local_write(true);
                    marker.absent = true;
                    let plain = self.inner.pipeline.serialize(&())?;
                    self.store_loaded::<()>(sk, &plain, &marker).await;
                }
                Ok(None)
            }
            Some(v) => {
                let plain = self.inner.pipeline.serialize(&v)?;
                if cache {
                    self.store_loaded::<T>(sk, &plain, &options).await;
                }
                Ok(Some((v, plain)))
            }
        }
    }

    /// Stores a loaded value; a failure is logged and counted (the value is still returned).
    async fn store_loaded<T: ?Sized>(&self, sk: &str, plain: &[u8], options: &EntryOptions) {
        if let Err(e) = self.store::<T>(&self.root(), sk, plain, options).await {
            self.inner.stats.error();
            let e = e.with_operation("get_or_load");
            tracing::warn!(error = %e, "memstache: storing the loaded value failed");
        }
    }

    /// Hands a running load to the background: it stores its value when it finishes (within
    /// the background time limit), then releases the distributed lock. Until it ends, this
    /// node's callers that miss the key wait for it instead of starting a load of their own
    /// (within their timeouts). `false` when it could not be started (at the bound, or no
    /// tokio runtime): the load is dropped.
    fn background<T, Fut, E>(
        &self,
        sk: String,
        options: EntryOptions,
        fut: Pin<Box<Fut>>,
        held: HeldLock,
    ) -> bool
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        Fut: Future<Output = std::result::Result<Loaded<T>, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        let Some((rt, slot)) = Background::start(self) else {
            return false;
        };
        let pending = Pending::register(self, &sk);
        let span = tracing::debug_span!(
            "memstache.background_load",
            namespace = %self.inner.namespace,
            error = field::Empty,
        );
        rt.spawn(
            async move {
                let cache = slot.0.clone();
                cache.finish_background::<T, _, E>(&sk, options, fut).await;
                if let Some((lock_key, token)) = held {
                    cache.unlock(&lock_key, token).await;
                }
                drop(pending);
                drop(slot);
            }
            .instrument(span),
        );
        true
    }

    /// Runs a background load to its end: bounded in time, panics caught, its value stored.
    async fn finish_background<T, Fut, E>(&self, sk: &str, options: EntryOptions, fut: Fut)
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        Fut: Future<Output = std::result::Result<Loaded<T>, E>> + Send,
        E: Into<BoxError> + Send + 'static,
    {
        let stats = &self.inner.stats;
        let run = std::panic::AssertUnwindSafe(fut).catch_unwind();
        let failed = |what: &str| {
            stats.background_load_failures.fetch_add(1, Relaxed);
            tracing::Span::current().record("error", "loader");
            tracing::warn!("memstache: a background load {what}; nothing was stored");
        };
        match tokio::time::timeout(self.inner.background.timeout, run).await {
            Err(_) => failed("ran past the background time limit"),
            Ok(Err(_panic)) => failed("panicked"),
            Ok(Ok(Err(e))) => {
                stats.loader_error();
                let e: BoxError = e.into();
                tracing::warn!(error = %e, "memstache: a background load failed");
                stats.background_load_failures.fetch_add(1, Relaxed);
            }
            Ok(Ok(Ok(loaded))) => match self.keep_loaded(sk, options, loaded).await {
                Ok(_) => {
                    stats.background_loads.fetch_add(1, Relaxed);
                }
                Err(e) => {
                    stats.error();
                    tracing::warn!(error = %e, "memstache: a background load's value did not serialize");
                }
            },
        }
    }

    /// Starts the eager refresh of `sk` in the background, unless one runs on this node.
    fn refresh_in_background<T, F, Fut, E>(
        &self,
        sk: &str,
        options: EntryOptions,
        fraction: f32,
        load: F,
    ) where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<Loaded<T>, E>> + Send + 'static,
        E: Into<BoxError> + Send + 'static,
    {
        if !self
            .inner
            .background
            .refreshing
            .lock()
            .insert(sk.to_owned())
        {
            return; // this node refreshes it already
        }
        let mark = Refreshing(self.clone(), sk.to_owned());
        let Some((rt, slot)) = Background::start(self) else {
            return;
        };
        let span = tracing::debug_span!(
            "memstache.eager_refresh",
            namespace = %self.inner.namespace,
            error = field::Empty,
        );
        rt.spawn(
            async move {
                let cache = slot.0.clone();
                let sk = mark.1.clone();
                let mut held = None;
                if let Some(opts) = &cache.inner.lock {
                    match cache.try_lock(&sk, opts).await {
                        Lock::Held { key, token } => held = Some((key, token)),
                        Lock::Busy => return, // another node refreshes it
                        Lock::Unknown => {}
                    }
                }
                // another node may have refreshed it since this node's read: look at the
                // backend (not this node's copy, which the backplane may not have dropped yet)
                let mut life = Life::default();
                let skip = ReadOptions::new().skip_local_read(true).skip;
                let still_due = match cache
                    .read_for_load::<T>(&cache.root(), &sk, skip, &mut life)
                    .await
                {
                    Outcome::Done(Some(_)) => life.due(fraction, cache.inner.clock.now_ms()),
                    _ => true,
                };
                if still_due {
                    cache.inner.stats.eager_refreshes.fetch_add(1, Relaxed);
                    cache.inner.stats.loader_call();
                    cache
                        .finish_background::<T, _, E>(&sk, options, load())
                        .await;
                }
                if let Some((lock_key, token)) = held {
                    cache.unlock(&lock_key, token).await;
                }
                drop(slot);
                drop(mark);
            }
            .instrument(span),
        );
    }
}
