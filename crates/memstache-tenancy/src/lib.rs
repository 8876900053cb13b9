#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
//!
//! # Key layout
//!
//! | key | what |
//! |---|---|
//! | `{namespace}:{user key}` | the cache's own entries (no tenant) |
//! | `{namespace}#{<tenant>}:gen` | the tenant's generation token (16 hex digits) |
//! | `{namespace}#{<tenant>}:<token>:{user key}` | a tenant entry |
//!
//! Namespaces are `[A-Za-z0-9._-]`, so the character after the namespace (`:` or `#`) says
//! whether a key belongs to a tenant; tenant ids are `[A-Za-z0-9._-]`, so the tenant ends at
//! the first `}`; the token is fixed-width. Every (tenant, key) pair therefore maps to a
//! distinct storage key, whatever the user key contains (proven by a property test). The
//! braces are a Redis Cluster hash tag: a tenant's entries and its generation live in one slot,
//! so a read fetches the entry and the generation in one round trip on every topology.
//!
//! # Generations
//!
//! The generation is a random 64-bit token, not a counter: if the token is ever lost (evicted,
//! flushed), a new random one is created and every earlier entry stays unreadable — losing it
//! can only clear a tenant, never resurrect old entries. `clear()` writes a new token; reads
//! fetch the token together with the entry and retry under the new one when it changed, so
//! after `clear()` returns no node serves an earlier entry. Writes (`set`, `set_many`) go
//! through the token as a guard in the same backend call (`Backend::set_many_guarded`: one
//! atomic Lua script on Redis), so a write after a `clear()` on another node adopts the new
//! token and lands in the new generation, in one round trip while the known token is current.
//! `remove`, `exists` and `refresh` still read the token first (two round trips). Old entries
//! are never read again and disappear with their TTLs (or the backend's eviction).
//!
//! # Encryption
//!
//! With an encryptor, each tenant's entries are sealed under the key id `tenant:<id>`, and the
//! storage key (tenant and generation included) is part of the AAD, so an entry replayed under
//! another tenant fails authentication. [`TenantCache::destroy_key`] crypto-shreds a tenant.

mod partition;

pub use partition::{partition_name, partition_of};

use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use memstache_core::raw::Expiry;
use memstache_core::scope::{Label, Outcome, Scope, absorb};
use memstache_core::{BoxError, EntryOptions, Error, ErrorKind, MemStache, Result};
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Longest tenant id, in bytes.
pub const MAX_TENANT_ID_LEN: usize = 48;

/// How many times an operation retries after finding its generation stale (a `clear()` ran
/// concurrently) before reporting a temporary error.
const STALE_RETRIES: usize = 4;

/// Hands out [`TenantCache`]s over one cache. Cheap to clone; clones share the tenants'
/// cached generation tokens.
#[derive(Clone)]
pub struct TenantManager {
    cache: MemStache,
    states: Arc<Mutex<std::collections::HashMap<String, Arc<TenantState>>>>,
}

impl fmt::Debug for TenantManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantManager")
            .field("cache", &self.cache)
            .field("tenants", &self.states.lock().len())
            .finish()
    }
}

#[derive(Debug)]
struct TenantState {
    id: String,
    /// `tenant = <id>`, for spans and errors.
    label: Label,
    gen_key: String,
    key_id: String,
    /// The last generation token seen, as its 16 hex digits.
    token: RwLock<Option<String>>,
}

impl TenantManager {
    /// Tenants over `cache` (its namespace, backend, pipeline and defaults).
    pub fn new(cache: MemStache) -> Self {
        TenantManager {
            cache,
            states: Arc::default(),
        }
    }

    /// The cache for tenant `id`.
    ///
    /// Tenant ids are 1–48 bytes of `[A-Za-z0-9._-]`; anything else is
    /// [`ErrorKind::InvalidTenant`].
    pub fn tenant(&self, id: &str) -> Result<TenantCache> {
        validate_tenant_id(id)?;
        let state = {
            let mut states = self.states.lock();
            Arc::clone(states.entry(id.to_owned()).or_insert_with(|| {
                let ns = self.cache.namespace();
                Arc::new(TenantState {
                    id: id.to_owned(),
                    label: Label::new("tenant", id),
                    gen_key: format!("{ns}#{{{id}}}:gen"),
                    key_id: format!("tenant:{id}"),
                    token: RwLock::new(None),
                })
            }))
        };
        Ok(TenantCache {
            cache: self.cache.clone(),
            state,
        })
    }
}

/// Checks a tenant id: 1–48 bytes of `[A-Za-z0-9._-]`.
///
/// ```
/// use memstache_tenancy::validate_tenant_id;
/// assert!(validate_tenant_id("acme-eu.2").is_ok());
/// for bad in ["", "a:b", "a}b", "a b", "ünï"] {
///     assert!(validate_tenant_id(bad).is_err());
/// }
/// ```
pub fn validate_tenant_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= MAX_TENANT_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::InvalidTenant,
            "tenant id must be 1-48 bytes of [A-Za-z0-9._-]",
        ))
    }
}

/// One tenant's view of a cache: every cache operation, in an isolated keyspace, sealed under
/// the tenant's own key, with an O(1) [`clear`](Self::clear). Cheap to clone.
#[derive(Clone)]
pub struct TenantCache {
    cache: MemStache,
    state: Arc<TenantState>,
}

impl fmt::Debug for TenantCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantCache")
            .field("tenant", &self.state.id)
            .field("namespace", &self.cache.namespace())
            .finish()
    }
}

/// A fresh random generation token: 64 bits from SipHash keyed by the process's random
/// `RandomState` (seeded from the OS), over a counter and the time, as 16 hex digits.
/// Tokens need to be unique, not secret.
fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(nanos);
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

fn parse_token(raw: Option<&[u8]>) -> Option<String> {
    let raw = raw?;
    (raw.len() == 16 && raw.iter().all(u8::is_ascii_hexdigit))
        .then(|| String::from_utf8_lossy(raw).into_owned())
}

impl TenantCache {
    /// The tenant id.
    pub fn id(&self) -> &str {
        &self.state.id
    }

    /// The key id this tenant's entries are sealed under (`tenant:<id>`).
    pub fn key_id(&self) -> &str {
        &self.state.key_id
    }

    /// The current generation token, from the backend when `fresh` or unknown; created when
    /// the backend has none.
    async fn token(&self, fresh: bool) -> Result<String> {
        if let Some(t) = self.state.token.read().clone().filter(|_| !fresh) {
            return Ok(t);
        }
        for _ in 0..STALE_RETRIES {
            let raw = self.cache.control_get(&self.state.gen_key).await?;
            if let Some(t) = parse_token(raw.as_deref()) {
                *self.state.token.write() = Some(t.clone());
                return Ok(t);
            }
            if let Some(malformed) = raw {
                // Not a token (written by something else, or corrupted): a generation nobody
                // can name. Replacing it only clears the tenant, the safe direction; removing
                // it only while it still holds those bytes leaves a token written meanwhile
                // by another node in place.
                tracing::warn!(
                    tenant = %self.state.id,
                    "memstache: a tenant's generation held no valid token; starting a new generation"
                );
                self.cache
                    .control_remove_if_equals(&self.state.gen_key, &malformed)
                    .await?;
                continue;
            }
            let t = new_token();
            let created = self
                .cache
                .control_set_if_absent(
                    &self.state.gen_key,
                    Bytes::from(t.clone().into_bytes()),
                    Expiry::NEVER,
                )
                .await?;
            if created {
                // a new generation (the first, or after the old one was evicted or
                // malformed): copies other nodes kept under an older one must go
                self.cache.scope_guard_changed(&self.state.gen_key).await;
                *self.state.token.write() = Some(t.clone());
                return Ok(t);
            }
            // another node created it first: read theirs
        }
        Err(Error::new(
            ErrorKind::Unavailable,
            "could not establish the tenant's generation",
        )
        .with_context("tenant", self.state.id.clone()))
    }

    fn on_stale(&self, seen: Option<Bytes>) {
        *self.state.token.write() = parse_token(seen.as_deref());
    }

    fn stale_error(&self) -> Error {
        Error::new(
            ErrorKind::Unavailable,
            "the tenant was cleared repeatedly during the operation",
        )
        .with_context("tenant", self.state.id.clone())
    }

    /// Runs a guarded operation, retrying under the new generation when a clear intervened.
    async fn guarded<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut(String) -> Fut,
        Fut: Future<Output = Result<Outcome<T>>>,
    {
        for _ in 0..STALE_RETRIES {
            let token = self.token(false).await?;
            match op(token).await? {
                Outcome::Done(v) => return Ok(v),
                Outcome::Stale(seen) => self.on_stale(seen),
            }
        }
        Err(self.stale_error())
    }

    fn prefix(&self, token: &str) -> String {
        format!(
            "{}#{{{}}}:{}:",
            self.cache.namespace(),
            self.state.id,
            token
        )
    }

    fn scope<'a>(&'a self, prefix: &'a str, token: &'a str) -> Scope<'a> {
        Scope::new(prefix, &self.state.key_id)
            .labelled(&self.state.label)
            .guarded(&self.state.gen_key, token.as_bytes())
    }

    /// The storage key of `key` for this tenant under its current generation.
    pub async fn storage_key(&self, key: &str) -> Result<String> {
        let token = self.token(false).await?;
        let prefix = self.prefix(&token);
        self.cache.storage_key_in(&self.scope(&prefix, &token), key)
    }

    /// [`MemStache::get`] for this tenant: one backend round trip (the entry and the
    /// generation are read together).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        self.guarded(|token| async move {
            let prefix = self.prefix(&token);
            self.cache.get_in(&self.scope(&prefix, &token), key).await
        })
        .await
    }

    /// [`MemStache::try_get`] for this tenant.
    pub async fn try_get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        absorb(self.get(key).await)
    }

    /// [`MemStache::set`] for this tenant: one backend round trip. The write goes through the
    /// tenant's generation as a guard (atomically on Redis), so a write after a `clear()` on
    /// another node never lands in the cleared generation: it finds the new token, adopts it
    /// and writes again.
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        options: EntryOptions,
    ) -> Result<()> {
        self.guarded(|token| async move {
            let prefix = self.prefix(&token);
            self.cache
                .set_in(&self.scope(&prefix, &token), key, value, options)
                .await
        })
        .await
    }

    /// [`MemStache::remove`] for this tenant.
    pub async fn remove(&self, key: &str) -> Result<bool> {
        let token = self.token(true).await?;
        let prefix = self.prefix(&token);
        self.cache
            .remove_in(&self.scope(&prefix, &token), key)
            .await
    }

    /// [`MemStache::exists`] for this tenant.
    pub async fn exists(&self, key: &str) -> Result<bool> {
        let token = self.token(true).await?;
        let prefix = self.prefix(&token);
        self.cache
            .exists_in(&self.scope(&prefix, &token), key)
            .await
    }

    /// [`MemStache::refresh`] for this tenant.
    pub async fn refresh(&self, key: &str) -> Result<bool> {
        let token = self.token(true).await?;
        let prefix = self.prefix(&token);
        self.cache
            .refresh_in(&self.scope(&prefix, &token), key)
            .await
    }

    /// [`MemStache::get_or_set`] for this tenant (single-flight per tenant and key).
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
        for _ in 0..STALE_RETRIES {
            let token = self.token(false).await?;
            let prefix = self.prefix(&token);
            match self
                .cache
                .get_or_set_in(&self.scope(&prefix, &token), key, options, &mut loader)
                .await?
            {
                Outcome::Done(v) => return Ok(v),
                Outcome::Stale(seen) => self.on_stale(seen),
            }
        }
        Err(self.stale_error())
    }

    /// [`MemStache::get_or_set_many`] for this tenant: each batch read carries the
    /// generation, the loaded values are written through it, single-flight per tenant and
    /// key. A generation changed before the loader ran is adopted and the call retried with
    /// the same loader; after it ran, the values are returned (uncached in the old
    /// generation).
    pub async fn get_or_set_many<T, K, F, Fut, I, E>(
        &self,
        keys: &[K],
        options: EntryOptions,
        loader: F,
    ) -> Result<Vec<Option<T>>>
    where
        T: Serialize + DeserializeOwned + Send,
        K: AsRef<str>,
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = std::result::Result<I, E>>,
        I: IntoIterator<Item = (String, T)>,
        E: Into<BoxError>,
    {
        let mut loader = Some(loader);
        for _ in 0..STALE_RETRIES {
            let token = self.token(false).await?;
            let prefix = self.prefix(&token);
            match self
                .cache
                .get_or_set_many_in(&self.scope(&prefix, &token), keys, options, &mut loader)
                .await?
            {
                Outcome::Done(v) => return Ok(v),
                Outcome::Stale(seen) => self.on_stale(seen),
            }
        }
        Err(self.stale_error())
    }

    /// [`MemStache::get_many`] for this tenant (one batch with the generation).
    pub async fn get_many<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        keys: &[K],
    ) -> Result<Vec<Option<T>>> {
        self.guarded(|token| async move {
            let prefix = self.prefix(&token);
            self.cache
                .get_many_in(&self.scope(&prefix, &token), keys)
                .await
        })
        .await
    }

    /// [`MemStache::set_many`] for this tenant: one backend round trip, through the
    /// generation guard like [`set`](Self::set).
    pub async fn set_many<T: Serialize, K: AsRef<str>>(
        &self,
        items: &[(K, &T)],
        options: EntryOptions,
    ) -> Result<()> {
        self.guarded(|token| async move {
            let prefix = self.prefix(&token);
            self.cache
                .set_many_in(&self.scope(&prefix, &token), items, options)
                .await
        })
        .await
    }

    /// [`MemStache::remove_many`] for this tenant.
    pub async fn remove_many<K: AsRef<str>>(&self, keys: &[K]) -> Result<u64> {
        let token = self.token(true).await?;
        let prefix = self.prefix(&token);
        self.cache
            .remove_many_in(&self.scope(&prefix, &token), keys)
            .await
    }

    /// Makes every entry of this tenant written so far unreadable, on every node, in one
    /// backend write (a new generation token). Old entries expire with their TTLs.
    ///
    /// With a local tier, this node's copies of the tenant's entries are dropped and the other
    /// nodes are told over the backplane to drop theirs (even when the write failed: it may
    /// have been applied).
    pub async fn clear(&self) -> Result<()> {
        let token = new_token();
        let r = self
            .cache
            .control_set(
                &self.state.gen_key,
                Bytes::from(token.clone().into_bytes()),
                Expiry::NEVER,
            )
            .await;
        self.cache.scope_guard_changed(&self.state.gen_key).await;
        r.map_err(|e| {
            e.with_operation("clear")
                .with_context("tenant", self.state.id.clone())
        })?;
        *self.state.token.write() = Some(token);
        Ok(())
    }

    /// Destroys this tenant's encryption key in the cache's key manager (crypto-shredding):
    /// every entry of the tenant, on every node and replica, becomes unreadable
    /// ([`ErrorKind::KeyDestroyed`]), while other tenants are untouched.
    ///
    /// [`ErrorKind::InvalidConfig`] when the cache does not encrypt.
    pub async fn destroy_key(&self) -> Result<()> {
        let km = self.cache.key_manager().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                "destroy_key needs a cache with an encryptor and key manager",
            )
        })?;
        let r = km.destroy_key(&self.state.key_id).await;
        // local copies are plaintext: drop them here and on every node
        self.cache.scope_guard_changed(&self.state.gen_key).await;
        r
    }
}
