//! The cache operations: the plain ones act on the cache's own scope; the `*_in` forms act on
//! any [`Scope`] (the scope SPI, see [`crate::scope`]).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::Either;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, field};

use super::flight::{FlightKey, Joined, LeaderGuard, SharedLoaderError};
use super::load::Life;
use super::lock::Lock;
use super::pipeline::Prepared;
use super::road::Via;
use super::{LockOptions, MemStache, Outcome, Scope, record_outcome};
use crate::options::Skip;
use crate::raw::BackendEntry;
use crate::scope::{Guard, Label, absorb};
use crate::{BoxError, EntryOptions, Error, ReadOptions, Result};

/// Encodes `value` for a write of `sk` at `now` into `(bytes, expiry)`, with `?` on errors.
/// A macro, not a function, so that both write bodies keep it inline: in a block, the encoding
/// state (parameters, serialized buffer, the compressing or encrypting future) ends before the
/// write is awaited, so the two share space in the future instead of adding up, and the
/// plain path awaits nothing.
macro_rules! encode_entry {
    ($self:ident, $scope:ident, $sk:ident, $value:ident, $options:expr, $now:ident) => {{
        let (bytes, expiry) = if $self.policy_for::<T>().is_some() {
            // boxed: the policy's path stays out of every write's future
            Box::pin($self.encode_by_policy($value, $sk, $scope.key_id, $options, $now)).await?
        } else {
            let (params, expiry) = $self.encode_params::<T>($sk, $scope.key_id, $options, $now)?;
            let bytes = match $self.inner.pipeline.encode_value($value, &params)? {
                Prepared::Done(b) => b,
                Prepared::Serialized { buf, offset } => {
                    $self
                        .inner
                        .pipeline
                        .encode_serialized(&buf[offset..], &params)
                        .await?
                }
            };
            (bytes, expiry)
        };
        $self.check_backend_size(&bytes)?;
        (bytes, expiry)
    }};
}

impl MemStache {
    /// The value at `key`, or `None` on a miss. A hit re-arms a sliding expiration.
    ///
    /// Errors: bad key ([`InvalidKey`](crate::ErrorKind::InvalidKey)), backend failures
    /// ([`Unavailable`](crate::ErrorKind::Unavailable), [`Timeout`](crate::ErrorKind::Timeout),
    /// …), and an entry that cannot be trusted or decoded
    /// ([`Integrity`](crate::ErrorKind::Integrity),
    /// [`Serialization`](crate::ErrorKind::Serialization),
    /// [`UnsupportedFormat`](crate::ErrorKind::UnsupportedFormat),
    /// [`KeyDestroyed`](crate::ErrorKind::KeyDestroyed), …). Never wrong data.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.get_in(&self.root(), key).await?.into_done()
    }

    /// [`get`](Self::get) with per-call [`ReadOptions`]: skip the local tier, or the backend,
    /// for this read.
    ///
    /// ```
    /// use memstache_core::{MemStache, ReadOptions, tiers::LocalTier};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
    /// let cache = MemStache::builder()
    ///     .backend(memstache_core::memory::MemoryBackend::new())
    ///     .local_tier(LocalTier::new())
    ///     .build()?;
    /// cache.set("k", &1u8, Default::default()).await?;
    /// let from_backend: Option<u8> = cache.get_with("k", ReadOptions::new().skip_local_read(true)).await?;
    /// assert_eq!(from_backend, Some(1));
    /// assert_eq!(cache.stats().l2_hits, 1);
    /// # Ok(()) }
    /// ```
    pub async fn get_with<T: DeserializeOwned>(
        &self,
        key: &str,
        options: ReadOptions,
    ) -> Result<Option<T>> {
        self.get_with_in(&self.root(), key, options)
            .await?
            .into_done()
    }

    /// [`get_with`](Self::get_with) in `scope`.
    pub async fn get_with_in<T: DeserializeOwned>(
        &self,
        scope: &Scope<'_>,
        key: &str,
        options: ReadOptions,
    ) -> Result<Outcome<Option<T>>> {
        let Some(l1) = self.l1() else {
            if options.skip.has(Skip::DISTRIBUTED_READ) {
                self.validate_key(key)?;
                self.inner.stats.miss();
                return Ok(Outcome::Done(None));
            }
            return Box::pin(self.get_in(scope, key)).await;
        };
        let span = op_span!("memstache.get", self, scope, key);
        self.traced(&span, "get", scope, Some(key), true, async {
            let sk = self.inline_key_in(scope, key)?;
            let sk = sk.as_str()?;
            Box::pin(self.get_tiered::<T>(l1, scope, sk, options.skip, &span)).await
        })
        .await
    }

    /// [`get`](Self::get) for values shared rather than owned: with a local tier, the value
    /// is deserialized once per kept copy and every L1 hit returns a clone of the same `Arc`
    /// (no deserialization; see [`LocalTier::max_decoded`](crate::tiers::LocalTier::max_decoded)).
    /// Without a local tier, or on an L1 miss, it is `get` wrapped in an `Arc`.
    ///
    /// The shared value is the one of the copy it was decoded from: a copy replaced, removed or
    /// invalidated by another node is never served this way either. It is returned only to a
    /// call of the type it was kept as.
    ///
    /// ```
    /// use memstache_core::{MemStache, tiers::LocalTier};
    /// use std::sync::Arc;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
    /// let cache = MemStache::builder()
    ///     .backend(memstache_core::memory::MemoryBackend::new())
    ///     .local_tier(LocalTier::new())
    ///     .build()?;
    /// cache.set("k", &vec![1u8; 1024], Default::default()).await?;
    /// let a: Arc<Vec<u8>> = cache.get_arc("k").await?.unwrap();
    /// let b: Arc<Vec<u8>> = cache.get_arc("k").await?.unwrap();
    /// assert!(Arc::ptr_eq(&a, &b)); // decoded once
    /// # Ok(()) }
    /// ```
    pub async fn get_arc<T: DeserializeOwned + Send + Sync + 'static>(
        &self,
        key: &str,
    ) -> Result<Option<Arc<T>>> {
        self.get_arc_in(&self.root(), key).await?.into_done()
    }

    /// [`get_arc`](Self::get_arc) in `scope`.
    pub async fn get_arc_in<T: DeserializeOwned + Send + Sync + 'static>(
        &self,
        scope: &Scope<'_>,
        key: &str,
    ) -> Result<Outcome<Option<Arc<T>>>> {
        let Some(l1) = self.l1() else {
            return Ok(match Box::pin(self.get_in::<T>(scope, key)).await? {
                Outcome::Done(v) => Outcome::Done(v.map(Arc::new)),
                Outcome::Stale(g) => Outcome::Stale(g),
            });
        };
        let span = op_span!("memstache.get", self, scope, key);
        self.traced(&span, "get", scope, Some(key), true, async {
            let sk = self.inline_key_in(scope, key)?;
            let sk = sk.as_str()?;
            if let Some(v) = self.l1_object::<T>(l1, sk, &span) {
                return Ok(Outcome::Done(Some(v)));
            }
            Ok(
                match Box::pin(self.get_below_l1::<T>(
                    l1,
                    scope,
                    sk,
                    Skip::default(),
                    &span,
                    &mut Life::default(),
                ))
                .await?
                {
                    Outcome::Done(v) => Outcome::Done(v.map(Arc::new)),
                    Outcome::Stale(g) => Outcome::Stale(g),
                },
            )
        })
        .await
    }

    /// Like [`get`](Self::get), but never fails: any error is logged (with the key hash, never
    /// the key), counted in [`stats`](Self::stats), and reported as `None`.
    pub async fn try_get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        absorb(self.get(key).await)
    }

    /// Stores `value` at `key`. `options` fields left unset take the cache defaults.
    ///
    /// On `Ok`, the entry is stored. On `Err`, nothing new is readable: bad keys, oversized
    /// values and serialization errors are detected before anything is written.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        options: EntryOptions,
    ) -> Result<()> {
        self.put(&self.root(), key, value, options).await
    }

    /// Removes `key`; `true` when an entry was there.
    pub async fn remove(&self, key: &str) -> Result<bool> {
        self.remove_in(&self.root(), key).await
    }

    /// Whether a live entry is at `key` (does not decode it, does not re-arm sliding).
    pub async fn exists(&self, key: &str) -> Result<bool> {
        self.exists_in(&self.root(), key).await
    }

    /// Re-arms the sliding expiration of `key` without reading its value; `true` when a live
    /// entry was there.
    pub async fn refresh(&self, key: &str) -> Result<bool> {
        self.refresh_in(&self.root(), key).await
    }

    /// The value at `key`, or the loader's value, stored with `options`.
    ///
    /// Single-flight inside the process: concurrent callers for the same missing key share one
    /// loader call. If the loader fails, every waiter gets an
    /// [`ErrorKind::Loader`](crate::ErrorKind::Loader) error whose `source()` is the loader's
    /// error, and nothing is cached.
    ///
    /// Availability over strictness: if reading the cache fails (backend down, corrupt entry),
    /// the loader runs as on a miss; if storing the loaded value fails, the value is still
    /// returned. Both failures are logged and counted.
    pub async fn get_or_set<T, F, Fut, E>(
        &self,
        key: &str,
        options: EntryOptions,
        loader: F,
    ) -> Result<T>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: Into<BoxError>,
    {
        let mut loader = Some(loader);
        self.get_or_set_in(&self.root(), key, options, &mut loader)
            .await?
            .into_done()
    }

    /// The values at `keys`, in order (`None` for misses). One backend batch call: on Redis,
    /// one round trip per node.
    ///
    /// Per key: an entry that cannot be trusted or decoded (tampered, corrupt, another type or
    /// format, its key destroyed) is `None` for that key only — logged with its key hash and
    /// counted in [`stats`](Self::stats) as an error, as [`try_get`](Self::try_get) does — and
    /// the other keys are still returned. `Err` is for the batch as a whole: a bad key, a
    /// backend that failed. Use [`get_many_results`](Self::get_many_results) to see each
    /// key's error.
    pub async fn get_many<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<T>>> {
        self.get_many_in(&self.root(), keys).await?.into_done()
    }

    /// Like [`get_many`](Self::get_many), with each key's own outcome: `Ok(Some(v))`, a miss
    /// `Ok(None)`, or that key's error (with the operation and key hash in its context). The
    /// outer `Err` is for the batch as a whole (a bad key, a backend that failed).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
    /// let cache = memstache_core::MemStache::builder().build()?;
    /// cache.set("a", &1u8, Default::default()).await?;
    /// let each = cache.get_many_results::<u8, _>(&["a", "b"]).await?;
    /// assert_eq!(each[0].as_ref().ok(), Some(&Some(1)));
    /// assert!(matches!(each[1], Ok(None)));
    /// # Ok(()) }
    /// ```
    pub async fn get_many_results<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Result<Option<T>>>> {
        self.get_many_results_in(&self.root(), keys)
            .await?
            .into_done()
    }

    /// Stores every `(key, value)` with the same options, in one backend batch call. Every key
    /// and value is validated and encoded before anything is written.
    pub async fn set_many<T: Serialize, K: AsRef<str>>(
        &self,
        items: &[(K, &T)],
        options: EntryOptions,
    ) -> Result<()> {
        self.set_many_in(&self.root(), items, options)
            .await?
            .into_done()
    }

    /// Removes every key in one backend batch call; returns how many entries were there.
    pub async fn remove_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<u64> {
        self.remove_many_in(&self.root(), keys).await
    }

    /// Runs an operation's body in its span, adds the error context in this one place, counts
    /// the error when asked, and records the outcome on the span. A disabled span (no
    /// subscriber wants it) is not entered at all: `Instrumented` costs an enter and an exit
    /// per poll, which is measurable on a Redis hit.
    ///
    /// A combinator, not an `async fn`: an `async fn` would keep `body` twice in its state
    /// (once as the argument, once while awaiting it), and every byte of an operation's
    /// future is copied when the caller spawns or boxes it.
    pub(super) fn traced<'a, T: 'a>(
        &'a self,
        span: &tracing::Span,
        op: &'static str,
        scope: &'a Scope<'a>,
        key: Option<&'a str>,
        count_errors: bool,
        body: impl Future<Output = Result<T>> + 'a,
    ) -> impl Future<Output = Result<T>> + 'a {
        let span = span.clone();
        let run = if span.is_disabled() {
            Either::Left(body)
        } else {
            Either::Right(body.instrument(span.clone()))
        };
        run.map(move |r| {
            let r = r.map_err(|e| {
                if count_errors {
                    self.inner.stats.error();
                }
                self.ctx(e, op, scope, key)
            });
            record_outcome(&span, &r);
            r
        })
    }

    // ---- scoped forms ------------------------------------------------------------------

    /// [`get`](Self::get) in `scope`; [`Outcome::Stale`] when the scope's guard moved on.
    pub async fn get_in<T: DeserializeOwned>(
        &self,
        scope: &Scope<'_>,
        key: &str,
    ) -> Result<Outcome<Option<T>>> {
        let span = op_span!("memstache.get", self, scope, key);
        self.traced(&span, "get", scope, Some(key), true, async {
            let sk = self.inline_key_in(scope, key)?;
            let sk = sk.as_str()?;
            if let Some(l1) = self.l1() {
                if let Some(v) = self.l1_hit::<T>(l1, sk, Skip::default(), &span) {
                    return Ok(Outcome::Done(Some(v)));
                }
                // boxed: the tiered path's state stays out of a plain cache's reads
                return Box::pin(self.get_below_l1::<T>(
                    l1,
                    scope,
                    sk,
                    Skip::default(),
                    &span,
                    &mut Life::default(),
                ))
                .await;
            }
            let raw = match self.read(Via::plain(self), scope, sk).await {
                Ok(Outcome::Done(raw)) => raw,
                Ok(Outcome::Stale(g)) => return Ok(Outcome::Stale(g)),
                // boxed: the fail-safe path's state stays out of every read's future
                Err(e) => {
                    return match Box::pin(self.fail_safe_value::<T>(sk, &e)).await {
                        Some(v) => Ok(Outcome::Done(Some(v))),
                        None => Err(e),
                    };
                }
            };
            let Some(raw) = raw else {
                self.inner.stats.miss();
                span.record("hit", false);
                return Ok(Outcome::Done(None));
            };
            if let Some(absent) = self.open_absent(&raw, sk, scope.key_id).await {
                absent?;
                span.record("hit", false);
                return Ok(Outcome::Done(None));
            }
            span.record("size", raw.len());
            let v = match self.decode::<T>(&raw, sk, scope.key_id).await {
                Ok(v) => v,
                Err(e) => {
                    span.record("hit", false);
                    return self
                        .undecodable(e, self.inner.decode_failure)
                        .map(Outcome::Done);
                }
            };
            span.record("hit", true);
            self.inner.stats.hit();
            Ok(Outcome::Done(Some(v)))
        })
        .await
    }

    /// [`set`](Self::set) in `scope`, through its guard in the same backend call
    /// ([`Outcome::Stale`], nothing written, when the guard moved on).
    pub async fn set_in<T: Serialize + ?Sized>(
        &self,
        scope: &Scope<'_>,
        key: &str,
        value: &T,
        options: EntryOptions,
    ) -> Result<Outcome<()>> {
        match scope.guard {
            None => self
                .put(scope, key, value, options)
                .await
                .map(Outcome::Done),
            // boxed: the guarded write's state stays out of the plain write's future
            Some(g) => Box::pin(self.put_guarded(scope, g, key, value, options)).await,
        }
    }

    /// `set` in an unguarded scope.
    async fn put<T: Serialize + ?Sized>(
        &self,
        scope: &Scope<'_>,
        key: &str,
        value: &T,
        options: EntryOptions,
    ) -> Result<()> {
        let span = op_span!("memstache.set", self, scope, key);
        self.traced(&span, "set", scope, Some(key), true, async {
            let sk = self.inline_key_in(scope, key)?;
            let sk = sk.as_str()?;
            if let Some(l1) = self.l1() {
                return Box::pin(self.put_tiered(l1, scope, sk, value, &options))
                    .await
                    .map(|_| ());
            }
            let now = self.inner.clock.now_ms();
            let (bytes, expiry) = encode_entry!(self, scope, sk, value, &options, now);
            self.store_encoded(sk, bytes, expiry, now).await
        })
        .await
    }

    /// `set` in a scope with the guard `g`: one guarded backend call.
    async fn put_guarded<T: Serialize + ?Sized>(
        &self,
        scope: &Scope<'_>,
        g: Guard<'_>,
        key: &str,
        value: &T,
        options: EntryOptions,
    ) -> Result<Outcome<()>> {
        let span = op_span!("memstache.set", self, scope, key);
        self.traced(&span, "set", scope, Some(key), true, async {
            let sk = self.inline_key_in(scope, key)?;
            let sk = sk.as_str()?;
            if let Some(l1) = self.l1() {
                return self.put_tiered(l1, scope, sk, value, &options).await;
            }
            let now = self.inner.clock.now_ms();
            let (bytes, expiry) = encode_entry!(self, scope, sk, value, &options, now);
            self.store_guarded(g, sk, bytes, expiry).await
        })
        .await
    }

    /// Encodes and stores a value already serialized (the loader's, in `get_or_set`).
    pub(crate) async fn store<T: ?Sized>(
        &self,
        scope: &Scope<'_>,
        sk: &str,
        plain: &[u8],
        options: &EntryOptions,
    ) -> Result<Outcome<()>> {
        if let Some(l1) = self.l1() {
            return Box::pin(self.store_tiered::<T>(l1, scope, sk, plain, options)).await;
        }
        let now = self.inner.clock.now_ms();
        let (bytes, expiry) = self
            .encode_serialized::<T>(plain, sk, scope.key_id, options, now)
            .await?;
        match scope.guard {
            None => self
                .store_encoded(sk, bytes, expiry, now)
                .await
                .map(Outcome::Done),
            Some(g) => self.store_guarded(g, sk, bytes, expiry).await,
        }
    }

    /// Writes an encoded entry in an unguarded scope (removes the key when its expiry is
    /// already due).
    async fn store_encoded(
        &self,
        sk: &str,
        bytes: Bytes,
        expiry: crate::raw::Expiry,
        now: u64,
    ) -> Result<()> {
        tracing::Span::current().record("size", bytes.len());
        if expiry.is_due(now) {
            // Already expired: make sure an older value is not served either. (Boxed: a rare
            // path, kept out of every write's future.)
            return Box::pin(self.delete(Via::plain(self), sk))
                .await
                .map(|_| ());
        }
        self.write(Via::plain(self), sk, bytes, expiry).await?;
        self.inner.stats.set();
        Ok(())
    }

    /// Writes an encoded entry through the guard `g`. (An entry already due is written too:
    /// a guarded scope keeps no local copy, and the backend never returns a due entry.)
    async fn store_guarded(
        &self,
        g: Guard<'_>,
        sk: &str,
        bytes: Bytes,
        expiry: crate::raw::Expiry,
    ) -> Result<Outcome<()>> {
        tracing::Span::current().record("size", bytes.len());
        let out = self
            .write_guarded(Via::plain(self), g, sk, bytes, expiry)
            .await?;
        if matches!(out, Outcome::Done(())) {
            self.inner.stats.set();
        }
        Ok(out)
    }

    /// [`remove`](Self::remove) in `scope`.
    pub async fn remove_in(&self, scope: &Scope<'_>, key: &str) -> Result<bool> {
        let span = op_span!("memstache.remove", self, scope, key);
        self.traced(&span, "remove", scope, Some(key), false, async {
            let sk = self.inline_key_in(scope, key)?;
            let sk = sk.as_str()?;
            if let Some(l1) = self.l1() {
                return Box::pin(self.remove_tiered(l1, sk)).await;
            }
            self.delete(Via::plain(self), sk).await
        })
        .await
    }

    /// [`exists`](Self::exists) in `scope`.
    pub async fn exists_in(&self, scope: &Scope<'_>, key: &str) -> Result<bool> {
        let span = op_span!("memstache.exists", self, scope, key);
        self.traced(&span, "exists", scope, Some(key), false, async {
            let sk = self.inline_key_in(scope, key)?;
            let sk = sk.as_str()?;
            self.probe(sk).await
        })
        .await
    }

    /// [`refresh`](Self::refresh) in `scope`.
    pub async fn refresh_in(&self, scope: &Scope<'_>, key: &str) -> Result<bool> {
        let span = op_span!("memstache.refresh", self, scope, key);
        self.traced(&span, "refresh", scope, Some(key), false, async {
            let sk = self.inline_key_in(scope, key)?;
            let sk = sk.as_str()?;
            self.touch(sk).await
        })
        .await
    }

    /// [`get_or_set`](Self::get_or_set) in `scope`. The loader is taken out of `loader` only
    /// when it runs, so a caller that gets [`Outcome::Stale`] back can retry with the same
    /// loader.
    pub async fn get_or_set_in<T, F, Fut, E>(
        &self,
        scope: &Scope<'_>,
        key: &str,
        options: EntryOptions,
        loader: &mut Option<F>,
    ) -> Result<Outcome<T>>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: Into<BoxError>,
    {
        let span = op_span!("memstache.get_or_set", self, scope, key);
        let r = self
            .get_or_set_inner(scope, key, options, loader)
            .instrument(span.clone())
            .await
            .map_err(|e| self.ctx(e, "get_or_set", scope, Some(key)));
        record_outcome(&span, &r);
        r
    }

    async fn get_or_set_inner<T, F, Fut, E>(
        &self,
        scope: &Scope<'_>,
        key: &str,
        options: EntryOptions,
        loader: &mut Option<F>,
    ) -> Result<Outcome<T>>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnOnce() -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: Into<BoxError>,
    {
        let sk = self.inline_key_in(scope, key)?;
        let sk = sk.as_str()?;
        let skip = options.or(&self.inner.defaults).skips();
        loop {
            match self
                .read_for_load::<T>(scope, sk, skip, &mut Life::default())
                .await
            {
                Outcome::Done(Some(v)) => return Ok(Outcome::Done(v)),
                Outcome::Stale(g) => return Ok(Outcome::Stale(g)),
                Outcome::Done(None) => {}
            }
            // one flight per storage key *and type*: a waiter decodes the leader's value
            // with its own type, so callers of different types never share one
            match self
                .inner
                .flights
                .join_or_wait(FlightKey::of::<T>(sk))
                .await
            {
                Joined::Done(Ok(Some(plain))) => {
                    return Ok(Outcome::Done(self.inner.pipeline.deserialize(&plain)?));
                }
                // a batch loader (`get_or_set_many`) had nothing for the key: this caller's
                // loader must give a value, so look again and lead
                Joined::Done(Ok(None)) => continue,
                Joined::Done(Err(e)) => return Err(e.to_error()),
                Joined::Abandoned => continue, // the leader was cancelled: try again
                Joined::Lead(guard) => {
                    // Another leader may have just finished between our read and our join.
                    match self
                        .read_for_load::<T>(scope, sk, skip, &mut Life::default())
                        .await
                    {
                        Outcome::Done(Some(v)) => return Ok(Outcome::Done(v)),
                        Outcome::Stale(g) => return Ok(Outcome::Stale(g)),
                        Outcome::Done(None) => {}
                    }
                    // Other instances: take the distributed lock, or wait for its holder.
                    let mut held = None;
                    if let Some(opts) = &self.inner.lock {
                        match self.try_lock(sk, opts).await {
                            Lock::Held { key, token } => held = Some((key, token)),
                            Lock::Unknown => {}
                            Lock::Busy => {
                                match self
                                    .wait_for_other_loader::<T>(
                                        scope,
                                        sk,
                                        opts,
                                        skip,
                                        &mut Life::default(),
                                    )
                                    .await
                                {
                                    // dropping `guard` lets local waiters read it too
                                    Some(Outcome::Done(Some(v))) => return Ok(Outcome::Done(v)),
                                    Some(Outcome::Stale(g)) => return Ok(Outcome::Stale(g)),
                                    _ => {} // waited out: the holder may be gone; load
                                }
                            }
                        }
                    }
                    let Some(load) = loader.take() else {
                        return Err(Error::internal("loader already used"));
                    };
                    self.inner.stats.loader_call();
                    tracing::Span::current().record("hit", false);
                    let loaded = load().await;
                    let out = match loaded {
                        Ok(value) => match self.inner.pipeline.serialize(&value) {
                            Ok(plain) => {
                                match self.store::<T>(scope, sk, &plain, &options).await {
                                    Ok(Outcome::Done(())) => {}
                                    // the scope's guard moved on (a tenant cleared meanwhile):
                                    // the value is returned, not cached in the stale scope
                                    Ok(Outcome::Stale(_)) => tracing::debug!(
                                        "memstache: scope changed during the load; returning the value uncached"
                                    ),
                                    Err(e) => {
                                        self.inner.stats.error();
                                        let e = self.ctx(e, "get_or_set", scope, Some(key));
                                        tracing::warn!(error = %e, "memstache: storing the loaded value failed; returning it uncached");
                                    }
                                }
                                guard.complete(Ok(Some(Arc::new(plain))));
                                Ok(Outcome::Done(value))
                            }
                            Err(e) => Err(e),
                        },
                        Err(e) => self
                            .leader_failed::<T>(sk, e.into(), guard)
                            .map(Outcome::Done),
                    };
                    if let Some((lock_key, token)) = held {
                        self.unlock(&lock_key, token).await;
                    }
                    return out;
                }
            }
        }
    }

    /// A leader's loader failed: with fail-safe and a copy of `sk`, the copy (shared with the
    /// flight's waiters rather than have them call the failing loader in turn), otherwise the
    /// loader's error (shared too).
    pub(crate) fn leader_failed<T: DeserializeOwned>(
        &self,
        sk: &str,
        e: BoxError,
        guard: LeaderGuard<'_>,
    ) -> Result<T> {
        self.inner.stats.loader_error();
        if let Some(throttle) = self.inner.loader_throttle
            && let Some((v, shared)) = self.loader_fail_safe::<T>(sk, throttle)
        {
            tracing::warn!(error = %e, "memstache: the loader failed; served the fail-safe copy");
            super::load::share_copy(guard, shared);
            return Ok(v);
        }
        let shared = SharedLoaderError::new(e);
        let err = shared.to_error();
        guard.complete(Err(shared));
        Err(err)
    }

    /// A read on the `get_or_set` path: errors count as misses (logged and counted), unless
    /// fail-safe answers for a failed backend.
    pub(crate) async fn read_for_load<T: DeserializeOwned>(
        &self,
        scope: &Scope<'_>,
        sk: &str,
        skip: Skip,
        life: &mut Life,
    ) -> Outcome<Option<T>> {
        if let Some(l1) = self.l1() {
            return Box::pin(self.read_for_load_tiered::<T>(l1, scope, sk, skip, life)).await;
        }
        let failed = |e: Error| {
            self.read_through_failed(e, "get_or_set");
            Outcome::Done(None)
        };
        let raw = match self.read(Via::plain(self), scope, sk).await {
            Ok(Outcome::Done(raw)) => raw,
            Ok(Outcome::Stale(g)) => return Outcome::Stale(g),
            Err(e) => {
                return match self.fail_safe_value::<T>(sk, &e).await {
                    Some(v) => Outcome::Done(Some(v)),
                    None => failed(e),
                };
            }
        };
        let Some(raw) = raw else {
            self.inner.stats.miss();
            return Outcome::Done(None);
        };
        match self.open_absent(&raw, sk, scope.key_id).await {
            Some(Ok(())) => {
                *life = Life::of_envelope(&raw).absent();
                return Outcome::Done(None);
            }
            Some(Err(e)) => return failed(e),
            None => {}
        }
        match self.decode::<T>(&raw, sk, scope.key_id).await {
            Ok(v) => {
                *life = Life::of_envelope(&raw);
                self.inner.stats.hit();
                tracing::Span::current().record("hit", true);
                Outcome::Done(Some(v))
            }
            Err(e) => failed(e),
        }
    }

    /// With a distributed lock held by another instance: reads every `poll` until the value
    /// appears (`Some`) or `wait` has passed (`None`: load anyway).
    pub(crate) async fn wait_for_other_loader<T: DeserializeOwned>(
        &self,
        scope: &Scope<'_>,
        sk: &str,
        opts: &LockOptions,
        skip: Skip,
        life: &mut Life,
    ) -> Option<Outcome<Option<T>>> {
        let deadline = tokio::time::Instant::now() + opts.wait;
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return None;
            }
            tokio::time::sleep(opts.poll.min(deadline - now)).await;
            match self.read_for_load::<T>(scope, sk, skip, life).await {
                // a cached "not found" ends the wait too (`life.absent` tells)
                Outcome::Done(None) if !life.absent => {}
                found => return Some(found),
            }
        }
    }

    /// [`get_many`](Self::get_many) in `scope` (the guard is read in the same batch).
    pub async fn get_many_in<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        scope: &Scope<'_>,
        keys: &[K],
    ) -> Result<Outcome<Vec<Option<T>>>> {
        Ok(match self.get_many_results_in(scope, keys).await? {
            Outcome::Stale(g) => Outcome::Stale(g),
            Outcome::Done(each) => Outcome::Done(
                each.into_iter()
                    .map(|r| match r {
                        Ok(v) => v,
                        Err(e) => {
                            // the error carries the key hash, never the key
                            tracing::warn!(error = %e, "memstache: an entry of a batch could not be read; reported as a miss");
                            None
                        }
                    })
                    .collect(),
            ),
        })
    }

    /// [`get_many_results`](Self::get_many_results) in `scope` (the guard is read in the same
    /// batch).
    pub async fn get_many_results_in<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        scope: &Scope<'_>,
        keys: &[K],
    ) -> Result<Outcome<Vec<Result<Option<T>>>>> {
        let span = tracing::debug_span!(
            "memstache.get_many",
            namespace = %self.inner.namespace,
            backend = self.inner.backend_name,
            scope = scope.label.map(Label::value),
            keys = keys.len(),
            hits = field::Empty,
            fail_safe = field::Empty,
            error = field::Empty,
        );
        self.traced(&span, "get_many", scope, None, false, async {
            let batch = self.keys_in(scope, keys)?;
            let sks: Vec<&str> = batch.iter().collect();
            self.read_many_typed::<T, K>(scope, &sks, keys, Skip::default(), "get_many", &span)
                .await
        })
        .await
    }

    /// The batch read of `get_many` and `get_or_set_many`: each of `sks` (the storage keys of
    /// the user keys `keys`) decoded, or its own error (named `op`); through the local tier
    /// when there is one (`skip` applies to it only).
    pub(crate) async fn read_many_typed<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        scope: &Scope<'_>,
        sks: &[&str],
        keys: &[K],
        skip: Skip,
        op: &'static str,
        span: &tracing::Span,
    ) -> Result<Outcome<Vec<Result<Option<T>>>>> {
        if let Some(l1) = self.l1() {
            return Box::pin(self.get_many_tiered::<T, K>(l1, scope, sks, keys, skip, op, span))
                .await;
        }
        let raws = match self.read_many(Via::plain(self), scope, sks).await {
            Ok(Outcome::Done(raws)) => raws,
            Ok(Outcome::Stale(g)) => return Ok(Outcome::Stale(g)),
            Err(e) => {
                // boxed: the fail-safe path's state stays out of every batch's future
                return match Box::pin(self.fail_safe_values::<T>(sks, &e, span)).await {
                    Some(values) => Ok(Outcome::Done(values.into_iter().map(Ok).collect())),
                    None => Err(e),
                };
            }
        };
        let mut out = Vec::with_capacity(raws.len());
        let (mut hits, mut misses) = (0u64, 0u64);
        let policy = self.decode_policy(op);
        for ((raw, sk), key) in raws.iter().zip(sks).zip(keys) {
            let absent = match raw {
                Some(raw) => self.open_absent(raw, sk, scope.key_id).await,
                None => None,
            };
            if let Some(absent) = absent {
                match absent {
                    Ok(()) => out.push(Ok(None)),
                    Err(e) => {
                        self.inner.stats.error();
                        out.push(Err(self.ctx(e, op, scope, Some(key.as_ref()))));
                    }
                }
                continue;
            }
            match raw {
                Some(raw) => match self.decode::<T>(raw, sk, scope.key_id).await {
                    Ok(v) => {
                        out.push(Ok(Some(v)));
                        hits += 1;
                    }
                    Err(e) => out.push(self.undecodable(e, policy).map_err(|e| {
                        self.inner.stats.error();
                        self.ctx(e, op, scope, Some(key.as_ref()))
                    })),
                },
                None => {
                    out.push(Ok(None));
                    misses += 1;
                }
            }
        }
        self.inner.stats.hits(hits, misses);
        span.record("hits", hits);
        Ok(Outcome::Done(out))
    }

    /// [`set_many`](Self::set_many) in `scope`, through its guard in the same backend call.
    pub async fn set_many_in<T: Serialize, K: AsRef<str>>(
        &self,
        scope: &Scope<'_>,
        items: &[(K, &T)],
        options: EntryOptions,
    ) -> Result<Outcome<()>> {
        let span = tracing::debug_span!(
            "memstache.set_many",
            namespace = %self.inner.namespace,
            backend = self.inner.backend_name,
            scope = scope.label.map(Label::value),
            keys = items.len(),
            error = field::Empty,
        );
        self.traced(&span, "set_many", scope, None, false, async {
            let mut plains = Vec::with_capacity(items.len());
            for (k, v) in items {
                let sk = self.key_in(scope, k.as_ref())?;
                plains.push((sk, self.inner.pipeline.serialize(*v)?));
            }
            self.store_many::<T>(scope, plains, &options).await
        })
        .await
    }

    /// The batch write of `set_many` and `get_or_set_many`: every `(storage key, serialized
    /// value of type T)` encoded (all before anything is written), then stored in one backend
    /// batch call (through the scope's guard, and the local tier when there is one).
    pub(crate) async fn store_many<T: ?Sized>(
        &self,
        scope: &Scope<'_>,
        items: Vec<(String, Vec<u8>)>,
        options: &EntryOptions,
    ) -> Result<Outcome<()>> {
        let now = self.inner.clock.now_ms();
        let l1 = self.l1();
        let mut entries = Vec::with_capacity(items.len());
        let mut plains = Vec::new();
        let mut due = Vec::new();
        for (sk, plain) in items {
            let (bytes, expiry) = self
                .encode_serialized::<T>(&plain, &sk, scope.key_id, options, now)
                .await?;
            if expiry.is_due(now) {
                due.push(sk);
            } else {
                if l1.is_some() {
                    plains.push((plain, self.meta_of_write::<T>(scope, &expiry)));
                }
                entries.push(BackendEntry {
                    key: sk,
                    value: bytes,
                    expiry,
                });
            }
        }
        if !due.is_empty() {
            let due: Vec<&str> = due.iter().map(String::as_str).collect();
            match l1 {
                Some(l1) => self.remove_many_tiered(l1, &due).await?,
                None => self.delete_many(Via::plain(self), &due).await?,
            };
        }
        let n = entries.len() as u64;
        let out = match l1 {
            Some(l1) => {
                let skip = options.or(&self.inner.defaults).skips();
                Box::pin(self.write_many_tiered(l1, scope, entries, plains, skip)).await?
            }
            None => self.write_many(Via::plain(self), scope, entries).await?,
        };
        if matches!(out, Outcome::Done(())) {
            self.inner.stats.sets(n);
        }
        Ok(out)
    }

    /// [`remove_many`](Self::remove_many) in `scope`.
    pub async fn remove_many_in<K: AsRef<str>>(
        &self,
        scope: &Scope<'_>,
        keys: &[K],
    ) -> Result<u64> {
        let span = tracing::debug_span!(
            "memstache.remove_many",
            namespace = %self.inner.namespace,
            backend = self.inner.backend_name,
            scope = scope.label.map(Label::value),
            keys = keys.len(),
            error = field::Empty,
        );
        self.traced(&span, "remove_many", scope, None, false, async {
            let batch = self.keys_in(scope, keys)?;
            let sks: Vec<&str> = batch.iter().collect();
            if let Some(l1) = self.l1() {
                return Box::pin(self.remove_many_tiered(l1, &sks)).await;
            }
            self.delete_many(Via::plain(self), &sks).await
        })
        .await
    }
}
