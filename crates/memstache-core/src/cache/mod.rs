//! `MemStache`: the typed cache.

mod builder;
mod flight;
mod pipeline;
mod stats;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, field};

pub use builder::{
    DEFAULT_COMPRESS_THRESHOLD, DEFAULT_DISTRIBUTED_TIMEOUT, DEFAULT_KEY_ID, DEFAULT_MAX_KEY_LEN,
    DEFAULT_MAX_VALUE_SIZE, DEFAULT_NAMESPACE, MemStacheBuilder,
};
pub use stats::StatsSnapshot;

use crate::raw::{Backend, BackendEntry, Clock, Expiry};
use crate::{Absolute, BoxError, EntryOptions, Error, ErrorKind, Result};
use flight::{Flights, Role, SharedLoaderError};
use pipeline::{EncodeParams, Pipeline, fingerprint_of};
use stats::Stats;

/// A typed cache over a [`Backend`]: serialize → compress → encrypt → store, and back.
///
/// Cheap to clone (an `Arc` inside); clones share everything. A miss is `Ok(None)`; an `Err`
/// means the cache could not tell (backend down, entry corrupt, …).
///
/// ```
/// use memstache_core::{MemStache, EntryOptions};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
/// let cache = MemStache::builder().build()?; // in-memory, bounded, LRU
/// cache.set("user:42", &"Ada".to_owned(), EntryOptions::default()).await?;
/// let name: Option<String> = cache.get("user:42").await?;
/// assert_eq!(name.as_deref(), Some("Ada"));
///
/// let n: u64 = cache
///     .get_or_set("answer", EntryOptions::new().absolute_expiration(Duration::from_secs(60)), || async {
///         Ok::<_, std::io::Error>(42)
///     })
///     .await?;
/// assert_eq!(n, 42);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemStache {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    namespace: String,
    prefix: String,
    backend: Arc<dyn Backend>,
    backend_name: &'static str,
    backend_max_value: Option<usize>,
    pipeline: Pipeline,
    key_id: String,
    defaults: EntryOptions,
    operation_timeout: Option<Duration>,
    max_key_len: usize,
    clock: Arc<dyn Clock>,
    type_check: bool,
    flights: Flights,
    stats: Stats,
}

impl fmt::Debug for MemStache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("MemStache")
            .field("namespace", &i.namespace)
            .field("backend", &i.backend_name)
            .field("serializer", &i.pipeline.serializer.name())
            .field(
                "compressor",
                &i.pipeline.compressor.as_ref().map(|c| c.name()),
            )
            .field(
                "encryptor",
                &i.pipeline.encryptor.as_ref().map(|e| e.name()),
            )
            .field("operation_timeout", &i.operation_timeout)
            .finish_non_exhaustive()
    }
}

/// Starts a span for an operation; the key hash is only computed when the span is enabled.
macro_rules! op_span {
    ($name:literal, $self:ident, $key:expr) => {{
        let span = tracing::debug_span!(
            $name,
            namespace = %$self.inner.namespace,
            backend = $self.inner.backend_name,
            key_hash = field::Empty,
            hit = field::Empty,
            size = field::Empty,
            error = field::Empty,
        );
        if !span.is_disabled() {
            span.record("key_hash", field::display(crate::key_hash($key)));
        }
        span
    }};
}

fn record_outcome<T>(span: &tracing::Span, r: &Result<T>) {
    if let Err(e) = r {
        span.record("error", e.kind().as_str());
    }
}

impl MemStache {
    /// A builder with every default: in-memory bounded LRU backend, postcard, no compression,
    /// no encryption, namespace `"ms"`.
    pub fn builder() -> MemStacheBuilder {
        MemStacheBuilder::default()
    }

    /// The namespace (key prefix) of this cache.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The backend this cache stores into.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    /// Counters of hits, misses, errors and loader calls since the cache was built.
    pub fn stats(&self) -> StatsSnapshot {
        self.inner.stats.snapshot()
    }

    /// The storage key for a user key (validated): `"{namespace}:{key}"`.
    ///
    /// ```
    /// let cache = memstache_core::MemStache::builder().namespace("orders").build()?;
    /// assert_eq!(cache.storage_key("42")?, "orders:42");
    /// assert!(cache.storage_key("").is_err());
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    pub fn storage_key(&self, key: &str) -> Result<String> {
        self.validate_key(key)?;
        let mut s = String::with_capacity(self.inner.prefix.len() + key.len());
        s.push_str(&self.inner.prefix);
        s.push_str(key);
        Ok(s)
    }

    fn validate_key(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::new(ErrorKind::InvalidKey, "key is empty"));
        }
        if key.len() > self.inner.max_key_len {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                format!("key is longer than {} bytes", self.inner.max_key_len),
            ));
        }
        if key.chars().any(char::is_control) {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                "key contains control characters",
            ));
        }
        Ok(())
    }

    /// Adds operation and context to an error, in this one place.
    fn ctx(&self, e: Error, op: &'static str, key: Option<&str>) -> Error {
        let e = e
            .with_operation(op)
            .with_context("backend", self.inner.backend_name)
            .with_context("namespace", self.inner.namespace.clone());
        match key {
            Some(k) => e.with_context("key_hash", crate::key_hash(k)),
            None => e,
        }
    }

    /// Runs a backend call under the operation timeout.
    async fn call<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        match self.inner.operation_timeout {
            None => fut.await,
            Some(limit) => match tokio::time::timeout(limit, fut).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("backend did not answer within {limit:?}"),
                )),
            },
        }
    }

    fn expected_fingerprint<T>(&self) -> u64 {
        if self.inner.type_check {
            fingerprint_of::<T>()
        } else {
            0
        }
    }

    async fn decode<T: DeserializeOwned>(&self, bytes: &[u8], storage_key: &str) -> Result<T> {
        let (plain, serializer) = self
            .inner
            .pipeline
            .open(bytes, storage_key, self.expected_fingerprint::<T>())
            .await?;
        pipeline::deserialize_with(serializer.as_ref(), &plain)
    }

    /// Computes the envelope expiry fields and the backend expiry for a write at `now_ms`.
    fn expiry(&self, options: &EntryOptions, now_ms: u64) -> (u64, u64, Expiry) {
        let o = options.or(&self.inner.defaults);
        let deadline_ms = match o.get_absolute_expiration() {
            Some(Absolute::After(d)) => {
                now_ms.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            }
            Some(Absolute::At(t)) => t.duration_since(UNIX_EPOCH).map_or(1, |d| {
                u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
            }),
            _ => 0,
        };
        let sliding = o.get_sliding_expiration();
        let sliding_ms = sliding.map_or(0, |s| u64::try_from(s.as_millis()).unwrap_or(u64::MAX));
        let expiry = Expiry::new(
            (deadline_ms != 0).then_some(deadline_ms),
            sliding.map(|_| Duration::from_millis(sliding_ms)),
        );
        (deadline_ms, sliding_ms, expiry)
    }

    async fn encode_serialized<T: ?Sized>(
        &self,
        plain: &[u8],
        storage_key: &str,
        options: &EntryOptions,
        now_ms: u64,
    ) -> Result<(Bytes, Expiry)> {
        let o = options.or(&self.inner.defaults);
        let has_encryptor = self.inner.pipeline.encryptor.is_some();
        let encrypt = o.get_encrypt().unwrap_or(has_encryptor);
        if encrypt && !has_encryptor {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "encrypt(true) on a cache without an encryptor",
            ));
        }
        if !encrypt && has_encryptor && !self.inner.pipeline.accept_unencrypted {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "encrypt(false) on an encrypting cache needs accept_unencrypted(true), or the entry could not be read back",
            ));
        }
        let (deadline_ms, sliding_ms, expiry) = self.expiry(options, now_ms);
        let enc = self
            .inner
            .pipeline
            .encode_serialized(
                plain,
                &EncodeParams {
                    storage_key,
                    key_id: &self.inner.key_id,
                    compress: o.get_compress().unwrap_or(true),
                    encrypt,
                    now_ms,
                    deadline_ms,
                    sliding_ms,
                    fingerprint: if self.inner.type_check {
                        fingerprint_of::<T>()
                    } else {
                        0
                    },
                },
            )
            .await?;
        if self
            .inner
            .backend_max_value
            .is_some_and(|max| enc.len() > max)
        {
            return Err(Error::new(
                ErrorKind::ValueTooLarge,
                "encoded entry is larger than the backend accepts",
            ));
        }
        Ok((enc, expiry))
    }

    /// The value at `key`, or `None` on a miss. A hit re-arms a sliding expiration.
    ///
    /// Errors: bad key ([`InvalidKey`](ErrorKind::InvalidKey)), backend failures
    /// ([`Unavailable`](ErrorKind::Unavailable), [`Timeout`](ErrorKind::Timeout), …), and an
    /// entry that cannot be trusted or decoded ([`Integrity`](ErrorKind::Integrity),
    /// [`Serialization`](ErrorKind::Serialization), [`UnsupportedFormat`](ErrorKind::UnsupportedFormat),
    /// [`KeyDestroyed`](ErrorKind::KeyDestroyed), …). Never wrong data.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let span = op_span!("memstache.get", self, key);
        let r = async {
            let sk = self.storage_key(key)?;
            let raw = self.call(self.inner.backend.get(&sk)).await?;
            let Some(raw) = raw else {
                self.inner.stats.miss();
                tracing::Span::current().record("hit", false);
                return Ok(None);
            };
            let cur = tracing::Span::current();
            cur.record("hit", true);
            cur.record("size", raw.len());
            let v = self.decode::<T>(&raw, &sk).await?;
            self.inner.stats.hit();
            Ok(Some(v))
        }
        .instrument(span.clone())
        .await
        .map_err(|e| {
            self.inner.stats.error();
            self.ctx(e, "get", Some(key))
        });
        record_outcome(&span, &r);
        r
    }

    /// Like [`get`](Self::get), but never fails: any error is logged (with the key hash, never
    /// the key), counted in [`stats`](Self::stats), and reported as `None`.
    pub async fn try_get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        match self.get(key).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "memstache.try_get failed; treated as a miss");
                None
            }
        }
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
        let span = op_span!("memstache.set", self, key);
        let r = async {
            let sk = self.storage_key(key)?;
            let plain = self.inner.pipeline.serialize(&value)?;
            self.store::<T>(&sk, &plain, &options).await
        }
        .instrument(span.clone())
        .await
        .map_err(|e| {
            self.inner.stats.error();
            self.ctx(e, "set", Some(key))
        });
        record_outcome(&span, &r);
        r
    }

    async fn store<T: ?Sized>(&self, sk: &str, plain: &[u8], options: &EntryOptions) -> Result<()> {
        let now = self.inner.clock.now_ms();
        let (bytes, expiry) = self.encode_serialized::<T>(plain, sk, options, now).await?;
        tracing::Span::current().record("size", bytes.len());
        if expiry.is_due(now) {
            // Already expired: make sure an older value is not served either.
            self.call(self.inner.backend.remove(sk)).await?;
            return Ok(());
        }
        self.call(self.inner.backend.set(sk, bytes, expiry)).await?;
        self.inner.stats.set();
        Ok(())
    }

    /// Removes `key`; `true` when an entry was there.
    pub async fn remove(&self, key: &str) -> Result<bool> {
        let span = op_span!("memstache.remove", self, key);
        let r = async {
            let sk = self.storage_key(key)?;
            self.call(self.inner.backend.remove(&sk)).await
        }
        .instrument(span.clone())
        .await
        .map_err(|e| self.ctx(e, "remove", Some(key)));
        record_outcome(&span, &r);
        r
    }

    /// Whether a live entry is at `key` (does not decode it, does not re-arm sliding).
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let span = op_span!("memstache.exists", self, key);
        let r = async {
            let sk = self.storage_key(key)?;
            self.call(self.inner.backend.exists(&sk)).await
        }
        .instrument(span.clone())
        .await
        .map_err(|e| self.ctx(e, "exists", Some(key)));
        record_outcome(&span, &r);
        r
    }

    /// Re-arms the sliding expiration of `key` without reading its value; `true` when a live
    /// entry was there.
    pub async fn refresh(&self, key: &str) -> Result<bool> {
        let span = op_span!("memstache.refresh", self, key);
        let r = async {
            let sk = self.storage_key(key)?;
            self.call(self.inner.backend.touch(&sk)).await
        }
        .instrument(span.clone())
        .await
        .map_err(|e| self.ctx(e, "refresh", Some(key)));
        record_outcome(&span, &r);
        r
    }

    /// The value at `key`, or the loader's value, stored with `options`.
    ///
    /// Single-flight inside the process: concurrent callers for the same missing key share one
    /// loader call. If the loader fails, every waiter gets an [`ErrorKind::Loader`] error whose
    /// `source()` is the loader's error, and nothing is cached.
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
        let span = op_span!("memstache.get_or_set", self, key);
        let r = self
            .get_or_set_inner(key, options, loader)
            .instrument(span.clone())
            .await
            .map_err(|e| self.ctx(e, "get_or_set", Some(key)));
        record_outcome(&span, &r);
        r
    }

    async fn get_or_set_inner<T, F, Fut, E>(
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
        let sk = self.storage_key(key)?;
        let mut loader = Some(loader);
        loop {
            if let Some(v) = self.read_for_load::<T>(&sk).await {
                return Ok(v);
            }
            match self.inner.flights.join(&sk) {
                Role::Waiter(slot) => match flight::wait(slot).await {
                    Some(Ok(plain)) => return self.inner.pipeline.deserialize(&plain),
                    Some(Err(e)) => return Err(e.to_error()),
                    None => continue, // the leader was cancelled: try again
                },
                Role::Leader(guard) => {
                    // Another leader may have just finished between our read and our join.
                    if let Some(v) = self.read_for_load::<T>(&sk).await {
                        return Ok(v);
                    }
                    let Some(load) = loader.take() else {
                        return Err(Error::internal("loader already used"));
                    };
                    self.inner.stats.loader_call();
                    tracing::Span::current().record("hit", false);
                    match load().await {
                        Ok(value) => {
                            let plain = self.inner.pipeline.serialize(&value)?;
                            if let Err(e) = self.store::<T>(&sk, &plain, &options).await {
                                self.inner.stats.error();
                                let e = self.ctx(e, "get_or_set", Some(key));
                                tracing::warn!(error = %e, "memstache: storing the loaded value failed; returning it uncached");
                            }
                            guard.complete(Ok(Arc::new(plain)));
                            return Ok(value);
                        }
                        Err(e) => {
                            self.inner.stats.loader_error();
                            let shared = SharedLoaderError::new(e.into());
                            let err = shared.to_error();
                            guard.complete(Err(shared));
                            return Err(err);
                        }
                    }
                }
            }
        }
    }

    /// A read on the `get_or_set` path: errors count as misses (logged and counted).
    async fn read_for_load<T: DeserializeOwned>(&self, sk: &str) -> Option<T> {
        let r: Result<Option<T>> = async {
            match self.call(self.inner.backend.get(sk)).await? {
                Some(raw) => Ok(Some(self.decode::<T>(&raw, sk).await?)),
                None => Ok(None),
            }
        }
        .await;
        match r {
            Ok(Some(v)) => {
                self.inner.stats.hit();
                tracing::Span::current().record("hit", true);
                Some(v)
            }
            Ok(None) => {
                self.inner.stats.miss();
                None
            }
            Err(e) => {
                self.inner.stats.error();
                let e = e.with_operation("get_or_set");
                tracing::warn!(error = %e, "memstache: cache read failed; loading instead");
                None
            }
        }
    }

    /// The values at `keys`, in order (`None` for misses). One backend batch call: on Redis,
    /// one round trip per node.
    pub async fn get_many<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<T>>> {
        let span = tracing::debug_span!(
            "memstache.get_many",
            namespace = %self.inner.namespace,
            backend = self.inner.backend_name,
            keys = keys.len(),
            hits = field::Empty,
            error = field::Empty,
        );
        let r = async {
            let sks = keys
                .iter()
                .map(|k| self.storage_key(k.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            let raws = self.call(self.inner.backend.get_many(&sks)).await?;
            if raws.len() != sks.len() {
                return Err(Error::internal(
                    "backend returned the wrong number of values",
                ));
            }
            let mut out = Vec::with_capacity(raws.len());
            let mut hits = 0usize;
            for (raw, sk) in raws.iter().zip(&sks) {
                match raw {
                    Some(raw) => {
                        out.push(Some(self.decode::<T>(raw, sk).await?));
                        hits += 1;
                    }
                    None => out.push(None),
                }
            }
            self.inner
                .stats
                .hits(hits as u64, (out.len() - hits) as u64);
            tracing::Span::current().record("hits", hits);
            Ok(out)
        }
        .instrument(span.clone())
        .await
        .map_err(|e| self.ctx(e, "get_many", None));
        record_outcome(&span, &r);
        r
    }

    /// Stores every `(key, value)` with the same options, in one backend batch call. Every key
    /// and value is validated and encoded before anything is written.
    pub async fn set_many<T: Serialize, K: AsRef<str>>(
        &self,
        items: &[(K, &T)],
        options: EntryOptions,
    ) -> Result<()> {
        let span = tracing::debug_span!(
            "memstache.set_many",
            namespace = %self.inner.namespace,
            backend = self.inner.backend_name,
            keys = items.len(),
            error = field::Empty,
        );
        let r = async {
            let now = self.inner.clock.now_ms();
            let mut entries = Vec::with_capacity(items.len());
            let mut due = Vec::new();
            for (k, v) in items {
                let sk = self.storage_key(k.as_ref())?;
                let plain = self.inner.pipeline.serialize(v)?;
                let (bytes, expiry) = self
                    .encode_serialized::<T>(&plain, &sk, &options, now)
                    .await?;
                if expiry.is_due(now) {
                    due.push(sk);
                } else {
                    entries.push(BackendEntry {
                        key: sk,
                        value: bytes,
                        expiry,
                    });
                }
            }
            if !due.is_empty() {
                self.call(self.inner.backend.remove_many(&due)).await?;
            }
            let n = entries.len() as u64;
            self.call(self.inner.backend.set_many(entries)).await?;
            self.inner.stats.sets(n);
            Ok(())
        }
        .instrument(span.clone())
        .await
        .map_err(|e| self.ctx(e, "set_many", None));
        record_outcome(&span, &r);
        r
    }

    /// Removes every key in one backend batch call; returns how many entries were there.
    pub async fn remove_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<u64> {
        let span = tracing::debug_span!(
            "memstache.remove_many",
            namespace = %self.inner.namespace,
            backend = self.inner.backend_name,
            keys = keys.len(),
            error = field::Empty,
        );
        let r = async {
            let sks = keys
                .iter()
                .map(|k| self.storage_key(k.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            self.call(self.inner.backend.remove_many(&sks)).await
        }
        .instrument(span.clone())
        .await
        .map_err(|e| self.ctx(e, "remove_many", None));
        record_outcome(&span, &r);
        r
    }
}

/// Test-only access to the typed deserialization used by the pipeline.
#[cfg(test)]
pub(crate) fn deserialize_for_tests<T: DeserializeOwned>(
    s: &dyn crate::raw::Serializer,
    bytes: &[u8],
) -> Result<T> {
    pipeline::deserialize_with(s, bytes)
}

#[cfg(test)]
mod tests;
