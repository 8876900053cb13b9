//! `MemStacheBuilder`: every knob of a cache, validated in `build()`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::{Layer, Service};

use super::pipeline::Pipeline;
use super::{FailSafe, Inner, LockOptions, MemStache, Stats};
use crate::raw::{
    Backend, BackendRequest, BackendResponse, BackendService, BoxBackendService, Clock, Compressor,
    Encryptor, KeyManager, Serializer, ServiceBackend, SystemClock,
};
use crate::{EntryOptions, Error, ErrorKind, Result};

/// Default longest user key, in bytes.
pub const DEFAULT_MAX_KEY_LEN: usize = 1024;
/// Default largest serialized value, in bytes.
pub const DEFAULT_MAX_VALUE_SIZE: usize = 16 * 1024 * 1024;
/// Default size from which values are compressed (when a compressor is set).
pub const DEFAULT_COMPRESS_THRESHOLD: usize = 1024;
/// Default namespace.
pub const DEFAULT_NAMESPACE: &str = "ms";
/// Default key id used with the key manager.
pub const DEFAULT_KEY_ID: &str = "default";
/// Default bound on each call to a distributed backend.
pub const DEFAULT_DISTRIBUTED_TIMEOUT: Duration = Duration::from_secs(1);
/// Default bound on each key-manager call (`current_key` on a write, `key` on a read).
pub const DEFAULT_KEY_MANAGER_TIMEOUT: Duration = Duration::from_secs(2);

/// Wraps the stack built so far in one more layer.
type LayerFn = Box<dyn Fn(BoxBackendService) -> BoxBackendService + Send + Sync>;

/// Builds a [`MemStache`]. Every setter is optional.
///
/// ```
/// use memstache_core::{MemStache, EntryOptions};
/// use std::time::Duration;
///
/// let cache = MemStache::builder()
///     .namespace("orders")
///     .default_entry_options(EntryOptions::new().absolute_expiration(Duration::from_secs(60)))
///     .max_value_size(1 << 20)
///     .build()?;
/// assert_eq!(cache.namespace(), "orders");
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[must_use]
pub struct MemStacheBuilder {
    namespace: String,
    backend: Option<Arc<dyn Backend>>,
    serializer: Option<Arc<dyn Serializer>>,
    /// `serializer` is one of memstache's own (called with typed functions).
    serializer_builtin: Option<crate::serializer::Builtin>,
    compressor: Option<Arc<dyn Compressor>>,
    compress_threshold: usize,
    encryptor: Option<Arc<dyn Encryptor>>,
    key_manager: Option<Arc<dyn KeyManager>>,
    key_id: String,
    defaults: EntryOptions,
    operation_timeout: Option<Option<Duration>>,
    max_key_len: usize,
    max_value_size: usize,
    clock: Option<Arc<dyn Clock>>,
    type_check: bool,
    schemas: super::schema::Registrations,
    policies: std::collections::HashMap<u64, super::schema::Policy>,
    decode_failure: crate::DecodeFailure,
    read_through: crate::ReadThrough,
    background_loads: (usize, Duration),
    accept_unencrypted: bool,
    layers: Vec<LayerFn>,
    fail_safe: Option<FailSafe>,
    local_tier: Option<crate::tiers::LocalTier>,
    backplane: Option<Arc<dyn crate::raw::Backplane>>,
    lock: Option<LockOptions>,
    accepted: Vec<Arc<dyn Serializer>>,
    max_depth: usize,
    key_manager_timeout: Option<Duration>,
}

impl fmt::Debug for MemStacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemStacheBuilder")
            .field("namespace", &self.namespace)
            .field("backend", &self.backend.as_ref().map(|b| b.name()))
            .field("serializer", &self.serializer.as_ref().map(|s| s.name()))
            .field("compressor", &self.compressor.as_ref().map(|c| c.name()))
            .field("encryptor", &self.encryptor.as_ref().map(|e| e.name()))
            .field("key_manager", &self.key_manager.is_some())
            .field("key_id", &self.key_id)
            .field("layers", &self.layers.len())
            .field("fail_safe", &self.fail_safe)
            .field("local_tier", &self.local_tier)
            .field("backplane", &self.backplane.as_ref().map(|b| b.name()))
            .field("distributed_lock", &self.lock)
            .field(
                "accepted_serializers",
                &self.accepted.iter().map(|s| s.name()).collect::<Vec<_>>(),
            )
            .field("max_nesting_depth", &self.max_depth)
            .field("key_manager_timeout", &self.key_manager_timeout)
            .field("registered_schemas", &self.schemas.0.len())
            .field("entry_policies", &self.policies.len())
            .field("decode_failure", &self.decode_failure)
            .finish_non_exhaustive()
    }
}

impl Default for MemStacheBuilder {
    fn default() -> Self {
        MemStacheBuilder {
            namespace: DEFAULT_NAMESPACE.to_owned(),
            backend: None,
            serializer: None,
            serializer_builtin: None,
            compressor: None,
            compress_threshold: DEFAULT_COMPRESS_THRESHOLD,
            encryptor: None,
            key_manager: None,
            key_id: DEFAULT_KEY_ID.to_owned(),
            defaults: EntryOptions::new(),
            operation_timeout: None,
            max_key_len: DEFAULT_MAX_KEY_LEN,
            max_value_size: DEFAULT_MAX_VALUE_SIZE,
            clock: None,
            type_check: false,
            schemas: Default::default(),
            policies: Default::default(),
            decode_failure: crate::DecodeFailure::Error,
            read_through: crate::ReadThrough::new(),
            background_loads: (
                super::load::DEFAULT_MAX_BACKGROUND_LOADS,
                super::load::DEFAULT_BACKGROUND_LOAD_TIMEOUT,
            ),
            accept_unencrypted: false,
            layers: Vec::new(),
            fail_safe: None,
            local_tier: None,
            backplane: None,
            lock: None,
            accepted: Vec::new(),
            max_depth: crate::DEFAULT_MAX_NESTING_DEPTH,
            key_manager_timeout: Some(DEFAULT_KEY_MANAGER_TIMEOUT),
        }
    }
}

impl MemStacheBuilder {
    /// The key prefix of this cache: storage keys are `"{namespace}:{key}"`. 1–64 bytes of
    /// `[A-Za-z0-9._-]`. Default: `"ms"`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The store. Default: a [`MemoryBackend`](crate::memory::MemoryBackend) with its defaults
    /// (bounded, LRU), sharing this builder's clock.
    pub fn backend(mut self, backend: impl Backend) -> Self {
        self.backend = Some(Arc::new(backend));
        self
    }

    /// The store, already shared.
    pub fn backend_arc(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// The data format. Default: postcard.
    pub fn serializer<S: Serializer>(mut self, serializer: S) -> Self {
        self.serializer_builtin = crate::serializer::Builtin::of::<S>();
        self.serializer = Some(Arc::new(serializer));
        self
    }

    /// Also reads entries written with `serializer` (by its id), besides the cache's own
    /// [`serializer`](Self::serializer). Call it once per extra format, for example while
    /// switching formats: the new cache reads what the old one wrote until it has expired.
    ///
    /// Without it, an entry whose header names another serializer id is
    /// [`ErrorKind::UnsupportedFormat`] and is not decoded, even when that serializer is
    /// compiled in: the header is written by whoever can write to the store, and each format's
    /// decoder is more attack surface (its own parser, its own limits). Every accepted
    /// serializer decodes under the same [`max_nesting_depth`](Self::max_nesting_depth).
    /// Default: only the cache's own serializer.
    ///
    /// ```
    /// # #[cfg(all(feature = "postcard", feature = "json"))] {
    /// use memstache_core::MemStache;
    /// use memstache_core::serializer::{Json, Postcard};
    /// // moving from JSON to postcard: keep reading the JSON entries
    /// let cache = MemStache::builder()
    ///     .serializer(Postcard)
    ///     .accept_serializer(Json)
    ///     .build()?;
    /// # }
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    pub fn accept_serializer<S: Serializer>(mut self, serializer: S) -> Self {
        self.accepted.push(Arc::new(serializer));
        self
    }

    /// The deepest a stored value may nest (each sequence, map, struct, tuple, enum, `Option`
    /// or newtype inside another is one level). A deeper value is an
    /// [`ErrorKind::Serialization`] error instead of a stack overflow, which would abort the
    /// process: bytes in the store may be hostile, and postcard (like most binary formats)
    /// has no limit of its own. Applies to every serializer, including your own. Values you
    /// store must fit it too, or they cannot be read back.
    ///
    /// Default: 128 ([`DEFAULT_MAX_NESTING_DEPTH`](crate::DEFAULT_MAX_NESTING_DEPTH)), which
    /// decodes within a 2 MiB thread stack. Raise it only with a larger stack.
    pub fn max_nesting_depth(mut self, levels: usize) -> Self {
        self.max_depth = levels;
        self
    }

    /// Bound on each call to the key manager (`current_key` when writing an encrypted entry,
    /// `key` when reading one); a call that takes longer fails with [`ErrorKind::Timeout`]
    /// (temporary), so a hung KMS gives fast errors instead of hanging every encrypted
    /// operation. `None` disables it. Needs a Tokio runtime with time enabled.
    ///
    /// Default: 2 s ([`DEFAULT_KEY_MANAGER_TIMEOUT`]), separate from the
    /// [`operation_timeout`](Self::operation_timeout) (which bounds backend calls).
    pub fn key_manager_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.key_manager_timeout = timeout.into();
        self
    }

    /// Compresses values of at least the compress threshold, when it makes them smaller.
    /// Default: no compression.
    pub fn compressor(mut self, compressor: impl Compressor) -> Self {
        self.compressor = Some(Arc::new(compressor));
        self
    }

    /// Serialized size from which compression is tried. Default: 1 KiB.
    pub fn compress_threshold(mut self, bytes: usize) -> Self {
        self.compress_threshold = bytes;
        self
    }

    /// Encrypts every entry (unless `EntryOptions::encrypt(false)`); needs a key manager.
    /// Default: no encryption.
    pub fn encryptor(mut self, encryptor: impl Encryptor) -> Self {
        self.encryptor = Some(Arc::new(encryptor));
        self
    }

    /// The source of encryption keys. A clone kept by the caller acts on the same keys (to
    /// rotate or destroy them). Default: none.
    pub fn key_manager(mut self, key_manager: impl KeyManager) -> Self {
        self.key_manager = Some(Arc::new(key_manager));
        self
    }

    /// The key manager, already shared.
    pub fn key_manager_arc(mut self, key_manager: Arc<dyn KeyManager>) -> Self {
        self.key_manager = Some(key_manager);
        self
    }

    /// The key id this cache seals entries under. Default: `"default"`.
    pub fn key_id(mut self, key_id: impl Into<String>) -> Self {
        self.key_id = key_id.into();
        self
    }

    /// Options applied to every write where the per-entry options leave a field unset.
    /// Default: no expiration, compress and encrypt when configured.
    pub fn default_entry_options(mut self, options: EntryOptions) -> Self {
        self.defaults = options;
        self
    }

    /// Bound on every backend call; a call that takes longer fails with
    /// [`ErrorKind::Timeout`] (temporary). It is the outermost bound: it covers the whole
    /// [`backend_layer`](Self::backend_layer) stack, retries and backoff included, so no
    /// backend call of an operation outlasts it. `None` disables it. Needs a Tokio runtime with
    /// time enabled.
    ///
    /// Default: 1 s ([`DEFAULT_DISTRIBUTED_TIMEOUT`]) for distributed backends, none for
    /// in-process ones.
    pub fn operation_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Self {
        self.operation_timeout = Some(timeout.into());
        self
    }

    /// Longest user key, in bytes. Default: 1024.
    pub fn max_key_len(mut self, bytes: usize) -> Self {
        self.max_key_len = bytes;
        self
    }

    /// Largest serialized value, in bytes; also bounds decompression. Default: 16 MiB.
    pub fn max_value_size(mut self, bytes: usize) -> Self {
        self.max_value_size = bytes;
        self
    }

    /// The default [`ReadThrough`](crate::ReadThrough) policy of
    /// [`get_or_load`](crate::MemStache::get_or_load): eager refresh, loader soft and hard
    /// timeouts. Default: none of them.
    pub fn read_through(mut self, policy: crate::ReadThrough) -> Self {
        self.read_through = policy;
        self
    }

    /// Bounds the loads `get_or_load` runs in the background (eager refreshes, loads that
    /// outlive a timeout): at most `max` at once (more are dropped and counted in
    /// [`StatsSnapshot::background_loads_dropped`](crate::StatsSnapshot::background_loads_dropped)),
    /// each at most `timeout` (then dropped, counted in `background_load_failures`). Default:
    /// [`DEFAULT_MAX_BACKGROUND_LOADS`](crate::DEFAULT_MAX_BACKGROUND_LOADS),
    /// [`DEFAULT_BACKGROUND_LOAD_TIMEOUT`](crate::DEFAULT_BACKGROUND_LOAD_TIMEOUT).
    pub fn background_loads(mut self, max: usize, timeout: Duration) -> Self {
        self.background_loads = (max, timeout);
        self
    }

    /// The time source for envelopes and the default memory backend. Default: the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Stores a fingerprint of the value's Rust type name and rejects reads as another type
    /// with [`ErrorKind::SchemaMismatch`]. The fingerprint changes when the type is renamed or
    /// moved, not when its fields change: for that, [`register_schema`](Self::register_schema)
    /// (or [`schema_version`](Self::schema_version)), which take precedence for the types
    /// they name. Default: off.
    pub fn type_check(mut self, on: bool) -> Self {
        self.type_check = on;
        self
    }

    /// Fingerprints `T` by its serde data model, traced once here by serde-reflection, so that
    /// an entry written by a build where `T` had another shape is found from its header
    /// ([`ErrorKind::SchemaMismatch`], or a miss: see [`decode_failure`](Self::decode_failure))
    /// instead of being decoded into a wrong value. Any change to what `T`'s `Deserialize`
    /// expects changes the fingerprint: a field added, removed, renamed, reordered or
    /// retyped, a variant added, a container renamed (moving `T` to another module does not).
    /// Register every type you cache whose shape may change; other types keep the
    /// [`type_check`](Self::type_check) behaviour. Entries without a fingerprint (written
    /// before the type was registered) are still decoded.
    ///
    /// [`build`](Self::build) fails with [`ErrorKind::InvalidConfig`] when `T` cannot be
    /// traced: a `Deserialize` that validates its input, `#[serde(flatten)]`, untagged
    /// enums, values that need `deserialize_any` (`serde_json::Value`). Give those a
    /// [`schema_version`](Self::schema_version) instead. Only the serde data model is traced:
    /// a change in meaning with the same shape (metres to feet) needs a `schema_version` bump
    /// too. Cargo feature `schema`.
    ///
    /// ```
    /// use memstache_core::{DecodeFailure, MemStache, memory::MemoryBackend};
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct User { id: u64, name: String }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
    /// let store = MemoryBackend::new();
    /// // the previous release cached `User` as a bare id, with a schema version
    /// let old = MemStache::builder().backend(store.clone()).schema_version::<(u64,)>(1).build()?;
    /// old.set("user:1", &(1u64,), Default::default()).await?;
    ///
    /// let cache = MemStache::builder()
    ///     .backend(store)
    ///     .register_schema::<User>()
    ///     .decode_failure(DecodeFailure::Miss)
    ///     .build()?;
    /// assert!(cache.get::<User>("user:1").await?.is_none());
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "schema")]
    pub fn register_schema<T: serde::de::DeserializeOwned>(self) -> Self {
        self.register_schema_with::<T>(|t| t)
    }

    /// [`register_schema`](Self::register_schema) for a type with enums nested in it, which
    /// serde-reflection needs traced on their own (`build` names them when one is missing).
    /// Cargo feature `schema`.
    ///
    /// ```
    /// use memstache_core::MemStache;
    /// #[derive(serde::Deserialize)]
    /// enum Status { Active, Suspended { reason: String } }
    /// #[derive(serde::Deserialize)]
    /// struct Account { id: u64, status: Status }
    ///
    /// let e = MemStache::builder().register_schema::<Account>().build().unwrap_err();
    /// assert!(e.to_string().contains("Status"));
    /// MemStache::builder()
    ///     .register_schema_with::<Account>(|t| t.enum_type::<Status>())
    ///     .build()?;
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    #[cfg(feature = "schema")]
    pub fn register_schema_with<T: serde::de::DeserializeOwned>(
        mut self,
        enums: impl FnOnce(crate::SchemaTrace) -> crate::SchemaTrace,
    ) -> Self {
        let traced = super::schema::canonical_schema::<T>(enums);
        self.schemas.entry::<T>().traced = Some(traced);
        self
    }

    /// Gives `T` an explicit schema version, mixed into its fingerprint: bump it when `T`
    /// changes in a way the fingerprint cannot see (a meaning, a unit, a hand-written
    /// `Deserialize`). Without [`register_schema`](Self::register_schema) the fingerprint is
    /// the type name and this version; with it, the traced data model and this version.
    pub fn schema_version<T: ?Sized>(mut self, version: u32) -> Self {
        self.schemas.entry::<T>().version = Some(version);
        self
    }

    /// Computes the options of every entry of type `P` from its value (moka's `Expiry`, per
    /// type): a TTL, a sliding window, compression or tier flags that depend on what is being
    /// cached. Applies to every write of a `P` — `set`, `set_many`, and what `get_or_set`,
    /// `get_or_load` and `get_or_set_many` store — field by field below the options of the
    /// call (and below a loader's own [`Loaded::with_options`](crate::Loaded::with_options)),
    /// above the cache's [`default_entry_options`](Self::default_entry_options).
    ///
    /// The policy sees an owned `P` decoded from the bytes being written, so it applies to
    /// writes of `P` whatever their lifetimes, and can never hold on to the caller's data. That
    /// costs one deserialization per write of a `P` (writes of other types pay one branch).
    /// A `P` is recognised by its type name, as [`register_schema`](Self::register_schema) does.
    ///
    /// ```
    /// use memstache_core::{EntryOptions, MemStache, memory::MemoryBackend};
    /// use std::time::Duration;
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Quote { symbol: String, live: bool }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
    /// let store = MemoryBackend::new();
    /// let cache = MemStache::builder()
    ///     .backend(store.clone())
    ///     .entry_policy(|q: &Quote| {
    ///         let ttl = if q.live { Duration::from_secs(1) } else { Duration::from_secs(3600) };
    ///         EntryOptions::new().absolute_expiration(ttl)
    ///     })
    ///     .build()?;
    /// cache.set("q:ACME", &Quote { symbol: "ACME".into(), live: true }, Default::default()).await?;
    /// // the entry's own deadline, in its header: one second after it was written
    /// let raw = memstache_core::raw::Backend::get(&store, &cache.storage_key("q:ACME")?).await?.unwrap();
    /// let created = memstache_core::envelope::peek_created(&raw).unwrap();
    /// let (deadline, _) = memstache_core::envelope::peek_expiry(&raw).unwrap();
    /// assert_eq!(deadline - created, 1_000);
    /// # Ok(()) }
    /// ```
    pub fn entry_policy<P, F>(mut self, policy: F) -> Self
    where
        P: serde::de::DeserializeOwned + 'static,
        F: Fn(&P) -> EntryOptions + Send + Sync + 'static,
    {
        let erased: super::schema::Policy =
            Box::new(move |pipeline, plain| pipeline.deserialize::<P>(plain).map(|v| policy(&v)));
        self.policies.insert(super::fingerprint_of::<P>(), erased);
        self
    }

    /// What [`get`](MemStache::get) and [`get_many`](MemStache::get_many) do with an entry
    /// that verifies but cannot be read as the requested type (another schema, an unknown
    /// format, refused by the type's `Deserialize`): return the error (the default) or treat
    /// it as a miss. Read-through (`get_or_set`, `get_or_load`) always treats it as a miss
    /// and overwrites the entry. See [`DecodeFailure`](crate::DecodeFailure).
    pub fn decode_failure(mut self, policy: crate::DecodeFailure) -> Self {
        self.decode_failure = policy;
        self
    }

    /// On an encrypting cache, also accept unencrypted entries (written with
    /// `EntryOptions::encrypt(false)`). Off by default because anyone who can write to the
    /// store could then plant plaintext values. Default: `false`.
    pub fn accept_unencrypted(mut self, on: bool) -> Self {
        self.accept_unencrypted = on;
        self
    }

    /// Wraps every backend call in a [`tower::Layer`]: retries, a circuit breaker, metrics,
    /// rate limits — from tower, tower-resilience, `memstache-resilience` or your own.
    ///
    /// The layer wraps a [`BoxBackendService`] (the backend as a service, or the layers added
    /// after this one) and its service must answer [`BackendRequest`]s with
    /// [`BackendResponse`]s and memstache [`Error`]s, so errors stay typed: map a
    /// dependency's error into an [`Error`] of the right kind inside the layer (a timeout is
    /// [`ErrorKind::Timeout`], an open circuit [`ErrorKind::CircuitOpen`]).
    ///
    /// Several calls stack like `tower::ServiceBuilder`: **the first call is the outermost
    /// layer**, the last one sits next to the backend. The
    /// [`operation_timeout`](Self::operation_timeout) is outside all of them. The stack is
    /// the cache's one backend (a [`ServiceBackend`]); without any layer, the cache calls the
    /// store directly.
    ///
    /// ```
    /// use memstache_core::MemStache;
    /// use memstache_core::raw::{BackendRequest, BoxBackendService};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use tower::ServiceExt;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
    /// // count the calls that reach the backend
    /// let calls = Arc::new(AtomicU64::new(0));
    /// let counter = Arc::clone(&calls);
    /// let cache = MemStache::builder()
    ///     .backend_layer(tower::layer::layer_fn(move |inner: BoxBackendService| {
    ///         let counter = Arc::clone(&counter);
    ///         inner.map_request(move |req: BackendRequest| {
    ///             counter.fetch_add(1, Ordering::Relaxed);
    ///             req
    ///         })
    ///     }))
    ///     .build()?;
    /// let _: Option<u8> = cache.get("k").await?;
    /// assert_eq!(calls.load(Ordering::Relaxed), 1);
    /// # Ok(()) }
    /// ```
    pub fn backend_layer<L>(mut self, layer: L) -> Self
    where
        L: Layer<BoxBackendService> + Send + Sync + 'static,
        L::Service: Service<BackendRequest, Response = BackendResponse, Error = Error>
            + Clone
            + Send
            + Sync
            + 'static,
        <L::Service as Service<BackendRequest>>::Future: Send + 'static,
    {
        self.layers.push(Box::new(move |inner| {
            BoxBackendService::new(layer.layer(inner))
        }));
        self
    }

    /// A local in-process tier (L1) in front of the backend: hits are served without the
    /// network, the cipher or the decompressor. With a distributed backend, give it a
    /// [`backplane`](Self::backplane) too, so that other nodes' writes drop this node's copies
    /// (without one, a copy may be served up to the tier's `max_duration` after another node
    /// replaced it). See [`tiers`](crate::tiers) and `docs/tiers.md`.
    pub fn local_tier(mut self, tier: crate::tiers::LocalTier) -> Self {
        self.local_tier = Some(tier);
        self
    }

    /// The backplane the nodes of this cache tell each other about writes on, so that every
    /// node drops its L1 copy of a key another node set or removed. Needs a
    /// [`local_tier`](Self::local_tier) (or fail-safe).
    pub fn backplane(mut self, backplane: impl crate::raw::Backplane) -> Self {
        self.backplane = Some(Arc::new(backplane));
        self
    }

    /// [`backplane`](Self::backplane) from an `Arc`.
    pub fn backplane_arc(mut self, backplane: Arc<dyn crate::raw::Backplane>) -> Self {
        self.backplane = Some(backplane);
        self
    }

    /// Serves the last good value of a key from a local tier when the backend fails with a
    /// temporary error (see [`FailSafe`]). Default: off.
    pub fn fail_safe(mut self, fail_safe: FailSafe) -> Self {
        self.fail_safe = Some(fail_safe);
        self
    }

    /// Distributed stampede protection for `get_or_set`: instances missing the same key run
    /// the loader about once (see [`LockOptions`]). Default: off (single-flight within this
    /// process only).
    pub fn distributed_lock(mut self, options: LockOptions) -> Self {
        self.lock = Some(options);
        self
    }

    /// Validates the configuration and builds the cache.
    ///
    /// Errors with [`ErrorKind::InvalidConfig`] for a bad namespace or key id, an encryptor
    /// without a key manager (or the reverse), or zero limits.
    pub fn build(self) -> Result<MemStache> {
        let invalid = |m: &'static str| Error::new(ErrorKind::InvalidConfig, m);
        if self.namespace.is_empty()
            || self.namespace.len() > 64
            || !self
                .namespace
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(invalid("namespace must be 1-64 bytes of [A-Za-z0-9._-]"));
        }
        if self.encryptor.is_some() != self.key_manager.is_some() {
            return Err(invalid(
                "an encryptor needs a key manager and a key manager needs an encryptor",
            ));
        }
        crate::raw::validate_key_id(&self.key_id)?;
        let schemas = self.schemas.resolve()?;
        if self.max_depth == 0 {
            return Err(invalid("max_nesting_depth must be positive"));
        }
        if self.key_manager_timeout.is_some_and(|t| t.is_zero()) {
            return Err(invalid("key_manager_timeout must be positive (or None)"));
        }
        if self.max_key_len == 0 || self.max_value_size == 0 {
            return Err(invalid("max_key_len and max_value_size must be positive"));
        }
        if self.max_value_size > u32::MAX as usize {
            return Err(invalid("max_value_size must be below 4 GiB"));
        }
        if self.defaults.get_encrypt() == Some(true) && self.encryptor.is_none() {
            return Err(invalid(
                "default options ask for encryption but there is no encryptor",
            ));
        }
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let has_backend = self.backend.is_some();
        let backend = match self.backend {
            Some(b) => b,
            None if let Some(t) = &self.local_tier => Arc::new(t.build_store(&clock)?),
            None => Arc::new(
                crate::memory::MemoryBackend::builder()
                    .clock(Arc::clone(&clock))
                    .build()?,
            ),
        };
        let caps = backend.capabilities();
        let operation_timeout = self.operation_timeout.unwrap_or(if caps.distributed {
            Some(DEFAULT_DISTRIBUTED_TIMEOUT)
        } else {
            None
        });
        let (serializer, builtin) = match self.serializer {
            Some(s) => (s, self.serializer_builtin),
            None => (default_serializer()?, default_builtin()),
        };
        if let Some(l) = &self.lock {
            l.validate()?;
        }
        if let Some(f) = &self.fail_safe {
            f.validate()?;
        }
        if let Some(t) = &self.local_tier {
            t.validate()?;
        }
        // A local tier and no backend: the tier's store is the backend (one in-process tier,
        // not two copies of each entry).
        let backend_is_local = self.local_tier.is_some() && !has_backend;
        let stale = self
            .fail_safe
            .as_ref()
            .map_or(Duration::ZERO, |f| f.max_staleness);
        let store = match (&self.local_tier, &self.fail_safe) {
            (Some(_), _) if backend_is_local => None,
            (Some(t), Some(f)) if f.local.is_some() && t.store.is_some() => {
                return Err(invalid(
                    "give the local store to the LocalTier only (fail-safe uses the local tier)",
                ));
            }
            (Some(t), _) => Some((t.build_store(&clock)?, t.max_duration, t.max_decoded)),
            (None, Some(f)) => Some((f.build_store(&clock)?, Duration::ZERO, 0)),
            (None, None) => None,
        };
        if self.backplane.is_some() && store.is_none() {
            return Err(invalid(
                "a backplane needs a local tier (and a distributed backend) to keep coherent",
            ));
        }
        let local = store.map(|(store, fresh, decoded)| {
            Arc::new(super::local::LocalCopies::new(
                store,
                fresh,
                stale,
                self.backplane.is_none(),
                decoded,
            ))
        });
        let sender = super::backplane::sender_id();
        let channel = super::backplane::channel(&self.namespace);
        let subscription = match (&self.backplane, &local) {
            (Some(bp), Some(l1)) => Some(bp.subscribe(
                &channel,
                Arc::new(super::backplane::Listener {
                    local: Arc::clone(l1),
                    namespace: self.namespace.clone(),
                    sender,
                }),
            )?),
            _ => None,
        };
        let layered = !self.layers.is_empty();
        let backend: Arc<dyn Backend> = if layered {
            let mut svc = BoxBackendService::new(BackendService::new(Arc::clone(&backend)));
            for wrap in self.layers.iter().rev() {
                svc = wrap(svc);
            }
            Arc::new(ServiceBackend::new(backend.as_ref(), svc))
        } else {
            backend
        };
        let prefix = format!("{}:", self.namespace);
        Ok(MemStache {
            inner: Arc::new(Inner {
                namespace: self.namespace,
                prefix,
                backend_name: backend.name(),
                backend,
                layered,
                local,
                backplane: self.backplane,
                channel,
                sender,
                _subscription: subscription,
                loader_throttle: self.fail_safe.as_ref().map(|f| f.throttle),
                backend_is_local,
                lock: self.lock,
                backend_max_value: caps.max_value_size,
                pipeline: Pipeline {
                    serializer,
                    compressor: self.compressor,
                    compress_threshold: self.compress_threshold,
                    encryptor: self.encryptor,
                    key_manager: self.key_manager,
                    max_value_size: self.max_value_size,
                    accept_unencrypted: self.accept_unencrypted,
                    size_hint: Arc::default(),
                    builtin,
                    accepted: self.accepted,
                    max_depth: self.max_depth,
                    key_manager_timeout: self.key_manager_timeout,
                },
                key_id: self.key_id,
                defaults: self.defaults,
                operation_timeout,
                max_key_len: self.max_key_len,
                clock,
                type_check: self.type_check,
                schemas,
                policies: self.policies,
                decode_failure: self.decode_failure,
                flights: Default::default(),
                read_through: self.read_through,
                background: super::load::Background::new(
                    self.background_loads.0,
                    self.background_loads.1,
                ),
                stats: Stats::default(),
            }),
        })
    }
}

/// The built-in serializer [`default_serializer`] returns.
fn default_builtin() -> Option<crate::serializer::Builtin> {
    #[cfg(feature = "postcard")]
    {
        Some(crate::serializer::Builtin::Postcard)
    }
    #[cfg(not(feature = "postcard"))]
    {
        None
    }
}

#[cfg(feature = "postcard")]
fn default_serializer() -> Result<Arc<dyn Serializer>> {
    Ok(Arc::new(crate::serializer::Postcard))
}

#[cfg(not(feature = "postcard"))]
fn default_serializer() -> Result<Arc<dyn Serializer>> {
    Err(Error::new(
        ErrorKind::InvalidConfig,
        "no serializer configured and the `postcard` feature is off",
    ))
}
