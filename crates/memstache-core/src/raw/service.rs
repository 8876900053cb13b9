//! The backend as a [`tower::Service`]: one [`BackendRequest`] variant per [`Backend`] method,
//! so resilience and instrumentation layers (tower, tower-resilience, your own) can wrap every
//! call a cache makes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::Bytes;
use tower::ServiceExt;

use super::{Backend, BackendEntry, Capabilities, Expiry};
use crate::scope::Outcome;
use crate::{Error, Result};

/// One call to a [`Backend`], owning its data. Every variant is idempotent: repeating it has
/// the same effect as running it once (the retry layer relies on this).
///
/// `Debug` shows the operation, short key hashes and value sizes, never keys or values.
///
/// ```
/// use memstache_core::raw::BackendRequest;
/// let req = BackendRequest::Get { key: "orders:42".into() };
/// assert_eq!(req.operation(), "get");
/// assert!(!format!("{req:?}").contains("orders:42"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum BackendRequest {
    /// [`Backend::get`].
    Get {
        /// Storage key.
        key: String,
    },
    /// [`Backend::set`].
    Set {
        /// Storage key.
        key: String,
        /// Envelope bytes.
        value: Bytes,
        /// How long the entry lives.
        expiry: Expiry,
    },
    /// [`Backend::remove`].
    Remove {
        /// Storage key.
        key: String,
    },
    /// [`Backend::exists`].
    Exists {
        /// Storage key.
        key: String,
    },
    /// [`Backend::touch`].
    Touch {
        /// Storage key.
        key: String,
    },
    /// [`Backend::set_if_absent`].
    SetIfAbsent {
        /// Storage key.
        key: String,
        /// Bytes to store.
        value: Bytes,
        /// How long the entry lives.
        expiry: Expiry,
    },
    /// [`Backend::remove_if_equals`].
    RemoveIfEquals {
        /// Storage key.
        key: String,
        /// The value the key must hold for the removal to happen.
        expected: Bytes,
    },
    /// [`Backend::get_many`].
    GetMany {
        /// Storage keys.
        keys: Vec<String>,
    },
    /// [`Backend::set_many`].
    SetMany {
        /// Entries to store.
        entries: Vec<BackendEntry>,
    },
    /// [`Backend::set_many_guarded`].
    SetManyGuarded {
        /// The guard's control key.
        guard: String,
        /// The value it must hold.
        expected: Bytes,
        /// Entries to store.
        entries: Vec<BackendEntry>,
    },
    /// [`Backend::remove_many`].
    RemoveMany {
        /// Storage keys.
        keys: Vec<String>,
    },
}

impl BackendRequest {
    /// The [`Backend`] method this request calls (`"get"`, `"set_many"`, …).
    pub fn operation(&self) -> &'static str {
        match self {
            BackendRequest::Get { .. } => "get",
            BackendRequest::Set { .. } => "set",
            BackendRequest::Remove { .. } => "remove",
            BackendRequest::Exists { .. } => "exists",
            BackendRequest::Touch { .. } => "touch",
            BackendRequest::SetIfAbsent { .. } => "set_if_absent",
            BackendRequest::RemoveIfEquals { .. } => "remove_if_equals",
            BackendRequest::GetMany { .. } => "get_many",
            BackendRequest::SetMany { .. } => "set_many",
            BackendRequest::SetManyGuarded { .. } => "set_many_guarded",
            BackendRequest::RemoveMany { .. } => "remove_many",
        }
    }

    /// Whether the request only reads (`get`, `exists`, `get_many`). `touch` counts as a
    /// write: it re-arms a sliding window.
    pub fn is_read(&self) -> bool {
        matches!(
            self,
            BackendRequest::Get { .. }
                | BackendRequest::Exists { .. }
                | BackendRequest::GetMany { .. }
        )
    }

    /// Runs the request on `backend`.
    pub async fn dispatch(self, backend: &dyn Backend) -> Result<BackendResponse> {
        Ok(match self {
            BackendRequest::Get { key } => BackendResponse::Value(backend.get(&key).await?),
            BackendRequest::Set { key, value, expiry } => {
                backend.set(&key, value, expiry).await?;
                BackendResponse::Done
            }
            BackendRequest::Remove { key } => BackendResponse::Flag(backend.remove(&key).await?),
            BackendRequest::Exists { key } => BackendResponse::Flag(backend.exists(&key).await?),
            BackendRequest::Touch { key } => BackendResponse::Flag(backend.touch(&key).await?),
            BackendRequest::SetIfAbsent { key, value, expiry } => {
                BackendResponse::Flag(backend.set_if_absent(&key, value, expiry).await?)
            }
            BackendRequest::RemoveIfEquals { key, expected } => {
                BackendResponse::Flag(backend.remove_if_equals(&key, &expected).await?)
            }
            BackendRequest::GetMany { keys } => {
                BackendResponse::Values(backend.get_many(&str_refs(&keys)).await?)
            }
            BackendRequest::SetMany { entries } => {
                backend.set_many(entries).await?;
                BackendResponse::Done
            }
            BackendRequest::SetManyGuarded {
                guard,
                expected,
                entries,
            } => match backend.set_many_guarded(&guard, &expected, entries).await? {
                Outcome::Done(()) => BackendResponse::Done,
                Outcome::Stale(seen) => BackendResponse::Stale(seen),
            },
            BackendRequest::RemoveMany { keys } => {
                BackendResponse::Count(backend.remove_many(&str_refs(&keys)).await?)
            }
        })
    }
}

/// `&str`s of owned keys, for the batch calls of [`Backend`].
fn str_refs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

impl fmt::Debug for BackendRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("BackendRequest");
        d.field("operation", &self.operation());
        match self {
            BackendRequest::Get { key }
            | BackendRequest::Remove { key }
            | BackendRequest::Exists { key }
            | BackendRequest::Touch { key } => {
                d.field("key_hash", &crate::key_hash(key));
            }
            BackendRequest::Set { key, value, .. }
            | BackendRequest::SetIfAbsent { key, value, .. } => {
                d.field("key_hash", &crate::key_hash(key))
                    .field("size", &value.len());
            }
            BackendRequest::RemoveIfEquals { key, .. } => {
                d.field("key_hash", &crate::key_hash(key));
            }
            BackendRequest::GetMany { keys } | BackendRequest::RemoveMany { keys } => {
                d.field("keys", &keys.len());
            }
            BackendRequest::SetMany { entries }
            | BackendRequest::SetManyGuarded { entries, .. } => {
                d.field("keys", &entries.len());
            }
        }
        d.finish()
    }
}

/// What a [`BackendRequest`] returns.
///
/// `Debug` shows shapes and sizes, never values.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendResponse {
    /// `get`: the entry or `None`.
    Value(Option<Bytes>),
    /// `set`, `set_many`: done.
    Done,
    /// `remove`, `exists`, `touch`, `set_if_absent`, `remove_if_equals`.
    Flag(bool),
    /// `get_many`: the entries in key order.
    Values(Vec<Option<Bytes>>),
    /// `remove_many`: how many entries were there.
    Count(u64),
    /// `set_many_guarded`: the guard held something else (what it held); nothing written.
    Stale(Option<Bytes>),
}

fn mismatch() -> Error {
    Error::internal("backend service answered with the wrong response kind")
}

impl BackendResponse {
    /// The value of a `get`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Internal`](crate::ErrorKind::Internal) for another response kind (a layer
    /// answered the wrong request).
    pub fn into_value(self) -> Result<Option<Bytes>> {
        match self {
            BackendResponse::Value(v) => Ok(v),
            _ => Err(mismatch()),
        }
    }

    /// The completion of a `set` or `set_many`.
    ///
    /// # Errors
    ///
    /// As [`into_value`](Self::into_value).
    pub fn into_done(self) -> Result<()> {
        match self {
            BackendResponse::Done => Ok(()),
            _ => Err(mismatch()),
        }
    }

    /// The flag of `remove`, `exists`, `touch`, `set_if_absent` or `remove_if_equals`.
    ///
    /// # Errors
    ///
    /// As [`into_value`](Self::into_value).
    pub fn into_flag(self) -> Result<bool> {
        match self {
            BackendResponse::Flag(b) => Ok(b),
            _ => Err(mismatch()),
        }
    }

    /// The values of a `get_many`.
    ///
    /// # Errors
    ///
    /// As [`into_value`](Self::into_value).
    pub fn into_values(self) -> Result<Vec<Option<Bytes>>> {
        match self {
            BackendResponse::Values(v) => Ok(v),
            _ => Err(mismatch()),
        }
    }

    /// The outcome of a `set_many_guarded` (`Done` or `Stale`).
    ///
    /// # Errors
    ///
    /// As [`into_value`](Self::into_value).
    pub fn into_guarded(self) -> Result<Outcome<()>> {
        match self {
            BackendResponse::Done => Ok(Outcome::Done(())),
            BackendResponse::Stale(seen) => Ok(Outcome::Stale(seen)),
            _ => Err(mismatch()),
        }
    }

    /// The count of a `remove_many`.
    ///
    /// # Errors
    ///
    /// As [`into_value`](Self::into_value).
    pub fn into_count(self) -> Result<u64> {
        match self {
            BackendResponse::Count(n) => Ok(n),
            _ => Err(mismatch()),
        }
    }
}

impl fmt::Debug for BackendResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackendResponse::Value(v) => f
                .debug_tuple("Value")
                .field(&v.as_ref().map(|b| b.len()))
                .finish(),
            BackendResponse::Done => f.write_str("Done"),
            BackendResponse::Flag(b) => f.debug_tuple("Flag").field(b).finish(),
            BackendResponse::Values(v) => f
                .debug_struct("Values")
                .field("len", &v.len())
                .field("hits", &v.iter().filter(|x| x.is_some()).count())
                .finish(),
            BackendResponse::Count(n) => f.debug_tuple("Count").field(n).finish(),
            BackendResponse::Stale(seen) => f
                .debug_tuple("Stale")
                .field(&seen.as_ref().map(|b| b.len()))
                .finish(),
        }
    }
}

/// A [`Backend`] as a [`tower::Service`]: the innermost service of a cache's backend stack.
///
/// Always ready; cheap to clone (an `Arc` inside).
///
/// ```
/// use memstache_core::raw::{BackendRequest, BackendResponse, BackendService};
/// use memstache_core::memory::MemoryBackend;
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
/// let svc = BackendService::new(std::sync::Arc::new(MemoryBackend::new()));
/// let r = svc.oneshot(BackendRequest::Exists { key: "ms:k".into() }).await?;
/// assert_eq!(r, BackendResponse::Flag(false));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct BackendService {
    backend: Arc<dyn Backend>,
}

impl BackendService {
    /// Wraps `backend`.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        BackendService { backend }
    }

    /// The wrapped backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }
}

impl fmt::Debug for BackendService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendService")
            .field("backend", &self.backend.name())
            .finish()
    }
}

/// A boxed, `Send` future of a backend service.
pub type BackendFuture = Pin<Box<dyn Future<Output = Result<BackendResponse>> + Send + 'static>>;

impl tower::Service<BackendRequest> for BackendService {
    type Response = BackendResponse;
    type Error = Error;
    type Future = BackendFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: BackendRequest) -> Self::Future {
        let backend = Arc::clone(&self.backend);
        Box::pin(async move { req.dispatch(backend.as_ref()).await })
    }
}

/// The type-erased backend stack a cache calls when layers are configured
/// ([`MemStacheBuilder::backend_layer`](crate::MemStacheBuilder::backend_layer)): every layer
/// wraps one of these and is boxed into one.
pub type BoxBackendService =
    tower::util::BoxCloneSyncService<BackendRequest, BackendResponse, Error>;

/// A layered backend stack as a [`Backend`]: [`BackendRequest`]s through a
/// [`BoxBackendService`] (the layers, then the store). It is what a cache holds when
/// [`backend_layer`](crate::MemStacheBuilder::backend_layer)s are configured, so every
/// operation reaches its store by one road, layered or not — as OpenDAL's layers implement
/// its `Access` trait.
///
/// Name and capabilities are the wrapped store's. Cheap to clone.
///
/// ```
/// use memstache_core::memory::MemoryBackend;
/// use memstache_core::raw::{Backend, BackendService, BoxBackendService, Expiry, ServiceBackend};
/// use std::sync::Arc;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
/// let store: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
/// let stack = BoxBackendService::new(BackendService::new(Arc::clone(&store)));
/// let layered = ServiceBackend::new(store.as_ref(), stack);
/// layered.set("ms:k", bytes::Bytes::from_static(b"v"), Expiry::NEVER).await?;
/// assert!(store.exists("ms:k").await?);
/// assert_eq!(layered.name(), "memory");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ServiceBackend {
    name: &'static str,
    capabilities: Capabilities,
    stack: BoxBackendService,
}

impl ServiceBackend {
    /// `stack` as a backend, named and described as `store` (the backend at its bottom).
    pub fn new(store: &dyn Backend, stack: BoxBackendService) -> Self {
        ServiceBackend {
            name: store.name(),
            capabilities: store.capabilities(),
            stack,
        }
    }

    fn call(&self, req: BackendRequest) -> tower::util::Oneshot<BoxBackendService, BackendRequest> {
        self.stack.clone().oneshot(req)
    }
}

impl fmt::Debug for ServiceBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceBackend")
            .field("store", &self.name)
            .finish_non_exhaustive()
    }
}

/// Owned keys, for a batch request.
fn owned(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

#[async_trait]
impl Backend for ServiceBackend {
    fn name(&self) -> &'static str {
        self.name
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let key = key.to_owned();
        self.call(BackendRequest::Get { key }).await?.into_value()
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let key = key.to_owned();
        self.call(BackendRequest::Set { key, value, expiry })
            .await?
            .into_done()
    }

    async fn remove(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.call(BackendRequest::Remove { key }).await?.into_flag()
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.call(BackendRequest::Exists { key }).await?.into_flag()
    }

    async fn touch(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.call(BackendRequest::Touch { key }).await?.into_flag()
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        let key = key.to_owned();
        self.call(BackendRequest::SetIfAbsent { key, value, expiry })
            .await?
            .into_flag()
    }

    async fn remove_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool> {
        let key = key.to_owned();
        let expected = Bytes::copy_from_slice(expected);
        self.call(BackendRequest::RemoveIfEquals { key, expected })
            .await?
            .into_flag()
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let keys = owned(keys);
        self.call(BackendRequest::GetMany { keys })
            .await?
            .into_values()
    }

    async fn set_many(&self, entries: Vec<BackendEntry>) -> Result<()> {
        self.call(BackendRequest::SetMany { entries })
            .await?
            .into_done()
    }

    async fn set_many_guarded(
        &self,
        guard: &str,
        expected: &[u8],
        entries: Vec<BackendEntry>,
    ) -> Result<Outcome<()>> {
        let guard = guard.to_owned();
        let expected = Bytes::copy_from_slice(expected);
        self.call(BackendRequest::SetManyGuarded {
            guard,
            expected,
            entries,
        })
        .await?
        .into_guarded()
    }

    async fn remove_many(&self, keys: &[&str]) -> Result<u64> {
        let keys = owned(keys);
        self.call(BackendRequest::RemoveMany { keys })
            .await?
            .into_count()
    }
}
