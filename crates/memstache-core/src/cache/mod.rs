//! `MemStache`: the typed cache.

mod backplane;
mod builder;
mod failsafe;
mod flight;
mod local;
mod lock;
mod many;
mod pipeline;
mod road;
mod schema;
mod stats;
mod tiered;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use serde::de::DeserializeOwned;

pub use builder::{
    DEFAULT_COMPRESS_THRESHOLD, DEFAULT_DISTRIBUTED_TIMEOUT, DEFAULT_KEY_ID,
    DEFAULT_KEY_MANAGER_TIMEOUT, DEFAULT_MAX_KEY_LEN, DEFAULT_MAX_VALUE_SIZE, DEFAULT_NAMESPACE,
    MemStacheBuilder,
};
pub use failsafe::{
    DEFAULT_FAIL_SAFE_BYTES, DEFAULT_FAIL_SAFE_ENTRIES, DEFAULT_FAIL_SAFE_THROTTLE, FailSafe,
};
pub use load::{
    DEFAULT_BACKGROUND_LOAD_TIMEOUT, DEFAULT_MAX_BACKGROUND_LOADS, Loaded, ReadThrough,
};
pub use lock::{DEFAULT_LOCK_LEASE, DEFAULT_LOCK_POLL, DEFAULT_LOCK_WAIT, LockOptions};
pub use schema::DecodeFailure;
#[cfg(feature = "schema")]
pub use schema::{SchemaTrace, schema_fingerprint, schema_fingerprint_with};
pub use stats::StatsSnapshot;

use crate::raw::{Backend, Clock, Expiry};
use crate::scope::{Outcome, Scope};
use crate::{Absolute, EntryOptions, Error, ErrorKind, Result};
use flight::Flights;
pub(crate) use pipeline::decode_error;
pub(crate) use pipeline::fingerprint_of;
use pipeline::{EncodeParams, Opened, Pipeline};
use stats::Stats;

/// Longest storage key (namespace prefix + user key) kept inline by [`StorageKey`].
const INLINE_KEY: usize = 96;

/// A storage key: inline up to [`INLINE_KEY`] bytes, on the heap beyond.
pub(crate) enum StorageKey {
    Inline { len: u8, buf: [u8; INLINE_KEY] },
    Heap(String),
}

impl StorageKey {
    /// The key as text. It is two `str`s back to back, so it is valid UTF-8; checking it again
    /// costs a few instructions for a short key and keeps this crate free of `unsafe`. Call it
    /// once per operation.
    pub(crate) fn as_str(&self) -> Result<&str> {
        match self {
            StorageKey::Inline { len, buf } => std::str::from_utf8(&buf[..usize::from(*len)])
                .map_err(|_| Error::internal("storage key is not UTF-8")),
            StorageKey::Heap(s) => Ok(s),
        }
    }
}

/// `prefix` then `key`, in one allocation of the exact size.
fn joined(prefix: &str, key: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + key.len());
    s.push_str(prefix);
    s.push_str(key);
    s
}

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
    /// The one road to the store: the backend itself, or its layered stack as a
    /// [`ServiceBackend`](crate::raw::ServiceBackend).
    backend: Arc<dyn Backend>,
    /// Whether `backend` is a layered stack.
    layered: bool,
    /// The local tier (L1): fresh copies, fail-safe copies, or both.
    local: Option<Arc<local::LocalCopies>>,
    /// The backplane this node publishes its writes on.
    backplane: Option<Arc<dyn crate::raw::Backplane>>,
    /// The backplane channel of this namespace.
    channel: String,
    /// This node's id in backplane messages.
    sender: [u8; 16],
    /// The backplane subscription (ends with the last clone of the cache).
    _subscription: Option<crate::raw::Subscription>,
    /// How long a failing loader is not called again after fail-safe answered for it (`None`
    /// without fail-safe).
    loader_throttle: Option<Duration>,
    /// The backend is the local tier's store (a cache built with a local tier and no backend):
    /// its hits count as L1 hits.
    backend_is_local: bool,
    /// Distributed stampede protection for `get_or_set`.
    lock: Option<LockOptions>,
    backend_name: &'static str,
    backend_max_value: Option<usize>,
    pipeline: Pipeline,
    key_id: String,
    defaults: EntryOptions,
    operation_timeout: Option<Duration>,
    max_key_len: usize,
    clock: Arc<dyn Clock>,
    type_check: bool,
    /// Registered schema fingerprints (`register_schema`, `schema_version`).
    schemas: schema::Schemas,
    /// Entry policies (`entry_policy`), by the type-name fingerprint of their type.
    policies: std::collections::HashMap<u64, schema::Policy>,
    /// What `get` and `get_many` do with an entry they cannot decode.
    decode_failure: DecodeFailure,
    flights: Flights,
    /// The default policy of `get_or_load`.
    read_through: load::ReadThrough,
    /// The background loads of `get_or_load` (eager refreshes, loads past a timeout).
    background: load::Background,
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
            .field("layered", &i.layered)
            .field("local", &i.local)
            .field("distributed_lock", &i.lock)
            .finish_non_exhaustive()
    }
}

/// Starts a span for an operation; the key hash is only computed when the span is enabled.
macro_rules! op_span {
    ($name:literal, $self:ident, $scope:expr, $key:expr) => {{
        let span = tracing::debug_span!(
            $name,
            namespace = %$self.inner.namespace,
            backend = $self.inner.backend_name,
            scope = $scope.label.map(crate::scope::Label::value),
            key_hash = field::Empty,
            hit = field::Empty,
            size = field::Empty,
            fail_safe = field::Empty,
            level = field::Empty,
            error = field::Empty,
        );
        if !span.is_disabled() {
            span.record("key_hash", field::display(crate::key_hash($key)));
        }
        span
    }};
}

// after the macro, which they use
mod load;
mod ops;

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

    /// The backend this cache stores into: the one every operation calls, with the
    /// [`backend_layer`](MemStacheBuilder::backend_layer)s around the store when there are any.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.inner.backend
    }

    /// The key manager, when the cache encrypts.
    pub fn key_manager(&self) -> Option<&Arc<dyn crate::raw::KeyManager>> {
        self.inner.pipeline.key_manager.as_ref()
    }

    /// Waits until the local tier may serve fresh copies: at once without a backplane,
    /// otherwise once the backplane reported its subscription live (see `docs/tiers.md`).
    /// Readiness probes and tests await it; operations never wait for it (until then they
    /// read the backend).
    pub async fn local_tier_ready(&self) {
        if let Some(l1) = self.l1() {
            l1.trusted().await;
        }
    }

    /// Whether the local tier may serve fresh copies now (`false` without one).
    pub fn local_tier_trusted(&self) -> bool {
        self.l1()
            .is_some_and(|l| l.is_trusted() && l.serves_fresh())
    }

    /// The number of copies in the local tier (due ones not reclaimed yet included).
    pub fn local_tier_len(&self) -> usize {
        self.l1().map_or(0, local::LocalCopies::len)
    }

    /// Drops every copy of this node's local tier (other nodes keep theirs; use it after
    /// [`KeyManager::destroy_key`](crate::raw::KeyManager::destroy_key), for example, on
    /// every node). Reads in flight keep nothing.
    pub fn clear_local_tier(&self) {
        if let Some(l1) = self.l1() {
            l1.clear();
        }
    }

    /// For scope plugins: the guard `guard_key` changed (a tenant was cleared). Drops this
    /// node's local copies of every scope guarded by it and tells the other nodes to do the
    /// same. Call it after the guard's new value is stored.
    pub async fn scope_guard_changed(&self, guard_key: &str) {
        if let Some(l1) = self.l1() {
            l1.guard_changed(local::guard_tag(guard_key));
            self.publish(backplane::Kind::Guards, &[guard_key]).await;
        }
    }

    /// Counters of hits, misses, errors and loader calls since the cache was built.
    pub fn stats(&self) -> StatsSnapshot {
        let mut s = self
            .inner
            .stats
            .snapshot(self.inner.local.as_deref().map(|l| &l.stats));
        if self.inner.backend_is_local {
            s.l1_hits = s.hits;
            s.l2_hits = 0;
        }
        s
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
        self.key_in(&self.root(), key)
    }

    /// The storage key of `key` (validated) in `scope`.
    pub fn storage_key_in(&self, scope: &Scope<'_>, key: &str) -> Result<String> {
        self.key_in(scope, key)
    }

    /// The storage key of `key` in `scope`.
    pub(crate) fn key_in(&self, scope: &Scope<'_>, key: &str) -> Result<String> {
        self.validate_key(key)?;
        Ok(joined(scope.prefix, key))
    }

    /// The storage key of `key` in `scope`, on the stack when it fits (most keys do): the
    /// single-key operations build one per call, and a heap `String` was an allocation and a
    /// free on every `get` and `set`.
    pub(crate) fn inline_key_in(&self, scope: &Scope<'_>, key: &str) -> Result<StorageKey> {
        self.validate_key(key)?;
        let prefix = scope.prefix;
        let len = prefix.len() + key.len();
        if len > INLINE_KEY {
            return Ok(StorageKey::Heap(joined(prefix, key)));
        }
        let mut buf = [0u8; INLINE_KEY];
        buf[..prefix.len()].copy_from_slice(prefix.as_bytes());
        buf[prefix.len()..len].copy_from_slice(key.as_bytes());
        Ok(StorageKey::Inline {
            len: u8::try_from(len).map_err(|_| Error::internal("inline key too long"))?,
            buf,
        })
    }

    /// The storage keys of `keys` in `scope`, built into one buffer: one allocation per batch,
    /// not one per key.
    pub(crate) fn keys_in<K: AsRef<str>>(&self, scope: &Scope<'_>, keys: &[K]) -> Result<KeyBatch> {
        let len = keys
            .iter()
            .map(|k| scope.prefix.len() + k.as_ref().len())
            .sum();
        let mut buf = String::with_capacity(len);
        let mut ends = Vec::with_capacity(keys.len());
        for k in keys {
            let k = k.as_ref();
            self.validate_key(k)?;
            buf.push_str(scope.prefix);
            buf.push_str(k);
            ends.push(buf.len());
        }
        Ok(KeyBatch { buf, ends })
    }

    /// The scope of the cache itself: its namespace and key id, no label, no guard.
    pub(crate) fn root(&self) -> Scope<'_> {
        Scope::new(&self.inner.prefix, &self.inner.key_id)
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
        // Control characters are U+0000–U+001F and U+007F–U+009F. One branch-free pass (it
        // vectorises) asks whether any byte is outside printable ASCII; only such a key, rare,
        // is looked at closely (non-ASCII text is fine, C1 controls are not).
        let unusual = key
            .bytes()
            .fold(false, |acc, b| acc | !(0x20..0x7f).contains(&b));
        if unusual
            && (key.bytes().any(|b| b < 0x20 || b == 0x7f) || key.chars().any(char::is_control))
        {
            return Err(Error::new(
                ErrorKind::InvalidKey,
                "key contains control characters",
            ));
        }
        Ok(())
    }

    /// Adds operation and context to an error, in this one place.
    fn ctx(&self, e: Error, op: &'static str, scope: &Scope<'_>, key: Option<&str>) -> Error {
        let mut e = e
            .with_operation(op)
            .with_context("backend", self.inner.backend_name)
            .with_context("namespace", self.inner.namespace.clone());
        if let Some(label) = scope.label {
            e = e.with_context(label.name(), label.value());
        }
        match key {
            Some(k) => e.with_context("key_hash", crate::key_hash(k)),
            None => e,
        }
    }

    /// The fingerprint entries of `T` are written with and checked against: the registered
    /// schema's, else the type name's under `type_check`, else none (0).
    fn expected_fingerprint<T: ?Sized>(&self) -> u64 {
        let i = &self.inner;
        if !i.schemas.is_empty()
            && let Some(fp) = i.schemas.get(fingerprint_of::<T>())
        {
            return fp;
        }
        if i.type_check {
            fingerprint_of::<T>()
        } else {
            0
        }
    }

    /// Whether an entry's own (authenticated) absolute deadline has passed. The backend
    /// enforces expiry, but a replayed or re-`SET` entry could outlive it there; the header's
    /// deadline is covered by the checksum or the AEAD, so it cannot be extended.
    fn expired_by_header(&self, bytes: &[u8]) -> bool {
        crate::envelope::peek_expiry(bytes)
            .is_some_and(|(deadline, _)| deadline != 0 && deadline <= self.inner.clock.now_ms())
    }

    /// Opens and deserializes an entry read from `storage_key`. An unencrypted entry is
    /// decoded here, before the returned future is first polled (which is then ready at once):
    /// a batch read decodes a hundred entries without a state machine each, and a plain
    /// read's future holds nothing of the envelope. Only an encrypted entry's key lookup is
    /// awaited.
    ///
    /// `key_id` is the key id of the scope the entry was read in: an encrypted entry naming
    /// another one is refused before any key-manager call.
    fn decode<'a, T: DeserializeOwned + 'a>(
        &'a self,
        bytes: &'a [u8],
        storage_key: &'a str,
        key_id: &str,
    ) -> impl Future<Output = Result<T>> + 'a {
        use futures::future::{Either, ready};
        let pipeline = &self.inner.pipeline;
        let fingerprint = self.expected_fingerprint::<T>();
        let depth = pipeline.max_depth;
        match pipeline.open(bytes, storage_key, fingerprint, key_id) {
            Err(e) => Either::Left(ready(Err(e))),
            Ok(Opened::Plain(plain, serializer)) => {
                Either::Left(ready(serializer.deserialize_typed(&plain, depth)))
            }
            Ok(Opened::Sealed { key_id, version }) => Either::Right(async move {
                let key = pipeline.entry_key(key_id, version).await?;
                let (plain, serializer) =
                    pipeline.open_sealed(bytes, storage_key, &key, fingerprint)?;
                serializer.deserialize_typed(&plain, depth)
            }),
        }
    }

    /// The entry policy registered for values of type `T`, if any (one branch when none is).
    pub(crate) fn policy_for<T: ?Sized>(&self) -> Option<&schema::Policy> {
        let p = &self.inner.policies;
        if p.is_empty() {
            None
        } else {
            p.get(&fingerprint_of::<T>())
        }
    }

    /// Encodes a value of a type with an entry policy: serialized first, so that the policy
    /// sees the value (decoded as its own type), then encoded with the options it computed.
    pub(crate) async fn encode_by_policy<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
        sk: &str,
        key_id: &str,
        options: &EntryOptions,
        now_ms: u64,
    ) -> Result<(Bytes, Expiry)> {
        let plain = self.inner.pipeline.serialize(value)?;
        self.encode_serialized::<T>(&plain, sk, key_id, options, now_ms)
            .await
    }

    /// The decode-failure policy of operation `op`: read-through (`get_or_…`) always reads
    /// past an entry it cannot decode (and overwrites it); `get` and `get_many` follow
    /// [`MemStacheBuilder::decode_failure`].
    pub(crate) fn decode_policy(&self, op: &'static str) -> DecodeFailure {
        if op.starts_with("get_or_") {
            DecodeFailure::Miss
        } else {
            self.inner.decode_failure
        }
    }

    /// An entry that could not be decoded: under [`DecodeFailure::Miss`] a decode failure is
    /// a miss (counted in `decode_misses` and `misses`, logged at debug level), any other
    /// error stays an error (for the caller to count).
    pub(crate) fn undecodable<T>(&self, e: Error, policy: DecodeFailure) -> Result<Option<T>> {
        if policy == DecodeFailure::Miss && schema::is_decode_failure(e.kind()) {
            self.inner.stats.decode_miss();
            tracing::debug!(error = %e, "memstache: an entry could not be read as the requested type; a miss");
            Ok(None)
        } else {
            Err(e)
        }
    }

    /// A read on the read-through path failed: a decode failure is a miss (the loader runs
    /// and overwrites the entry), anything else is counted and logged as an error, and the
    /// loader runs too.
    pub(crate) fn read_through_failed(&self, e: Error, op: &'static str) {
        if let Err(e) = self.undecodable::<()>(e, DecodeFailure::Miss) {
            self.inner.stats.error();
            let e = e.with_operation(op);
            tracing::warn!(error = %e, "memstache: cache read failed; loading instead");
        }
    }

    /// For an entry carrying the "not found" marker of negative caching
    /// ([`FLAG_ABSENT`](crate::envelope::FLAG_ABSENT)): the entry opened and verified like any
    /// other (so a forged or edited flag is an integrity error, not a miss), `Ok(())`. `None`
    /// for any other entry.
    async fn open_absent(&self, raw: &[u8], sk: &str, key_id: &str) -> Option<Result<()>> {
        if !crate::envelope::peek_absent(raw) {
            return None;
        }
        let r = self.decode::<()>(raw, sk, key_id).await;
        if r.is_ok() {
            self.inner.stats.negative_hit();
        }
        Some(r)
    }

    /// Computes the envelope expiry fields and the backend expiry for a write at `now_ms`,
    /// from options already merged with the cache defaults.
    fn expiry(o: &EntryOptions, now_ms: u64) -> (u64, u64, Expiry) {
        let deadline_ms = match o.get_absolute_expiration() {
            Some(Absolute::After(d)) => {
                let ttl = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                let spread = o
                    .get_jitter()
                    .map_or(0, |j| u64::try_from(j.as_millis()).unwrap_or(u64::MAX));
                let extra = if spread == 0 {
                    0
                } else {
                    fastrand::u64(0..=spread)
                };
                now_ms.saturating_add(ttl).saturating_add(extra)
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

    /// The encoding parameters of a write at `now_ms` (after the option checks), and the
    /// backend expiry.
    fn encode_params<'a, T: ?Sized>(
        &self,
        storage_key: &'a str,
        key_id: &'a str,
        options: &EntryOptions,
        now_ms: u64,
    ) -> Result<(EncodeParams<'a>, Expiry)> {
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
        let (deadline_ms, sliding_ms, expiry) = Self::expiry(&o, now_ms);
        let params = EncodeParams {
            storage_key,
            key_id,
            compress: o.get_compress().unwrap_or(true),
            encrypt,
            now_ms,
            deadline_ms,
            sliding_ms,
            fingerprint: self.expected_fingerprint::<T>(),
            absent: o.absent,
        };
        Ok((params, expiry))
    }

    /// Rejects an encoded entry larger than the backend accepts.
    fn check_backend_size(&self, enc: &[u8]) -> Result<()> {
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
        Ok(())
    }

    async fn encode_serialized<T: ?Sized>(
        &self,
        plain: &[u8],
        storage_key: &str,
        key_id: &str,
        options: &EntryOptions,
        now_ms: u64,
    ) -> Result<(Bytes, Expiry)> {
        let with_policy;
        let options = match self.policy_for::<T>() {
            Some(policy) => {
                with_policy = options.or(&policy(&self.inner.pipeline, plain)?);
                &with_policy
            }
            None => options,
        };
        let (params, expiry) = self.encode_params::<T>(storage_key, key_id, options, now_ms)?;
        let enc = self
            .inner
            .pipeline
            .encode_serialized(plain, &params)
            .await?;
        self.check_backend_size(&enc)?;
        Ok((enc, expiry))
    }
}

/// The storage keys of a batch ([`MemStache::keys_in`]), in order.
pub(crate) struct KeyBatch {
    buf: String,
    ends: Vec<usize>,
}

impl KeyBatch {
    /// The keys, in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let k = &self.buf[start..end];
            start = end;
            k
        })
    }
}

/// [`MemStache::expired_by_header`] at a given time (a batch reads the clock once).
fn expired_at(bytes: &[u8], now_ms: u64) -> bool {
    crate::envelope::peek_expiry(bytes)
        .is_some_and(|(deadline, _)| deadline != 0 && deadline <= now_ms)
}

/// Test-only access to the typed deserialization used by the pipeline.
#[cfg(test)]
pub(crate) fn deserialize_for_tests<T: DeserializeOwned>(
    s: &dyn crate::raw::Serializer,
    bytes: &[u8],
) -> Result<T> {
    pipeline::deserialize_with(s, bytes, crate::DEFAULT_MAX_NESTING_DEPTH)
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_load;
#[cfg(test)]
mod tests_local;
#[cfg(test)]
mod tests_many;
#[cfg(test)]
mod tests_resilience;
#[cfg(test)]
mod tests_schema;
#[cfg(test)]
mod tests_tiers;
