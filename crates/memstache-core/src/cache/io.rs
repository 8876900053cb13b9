//! Every backend call of a cache goes through here: straight to the [`Backend`] when no layer
//! is configured (no boxing, no allocation), through the layered [`BoxBackendService`]
//! otherwise; always under the operation timeout, which bounds the whole stack.
//!
//! The `b_*` calls are combinators, not `async fn`s (their state would otherwise be part of,
//! and copied with, every operation's future), so they start when *called*: the operation
//! timeout's clock starts then, and creating it needs a Tokio runtime. Call them only where
//! the returned future is awaited at once, inside an operation's body. `MemStache::decode`
//! is the same: it decodes an unencrypted entry when called.
//!
//! [`Backend`]: crate::raw::Backend

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures::future::Either;
use tower::ServiceExt;

use super::MemStache;
use crate::Result;
use crate::raw::{BackendEntry, BackendRequest, BackendResponse, BoxBackendService, Expiry};

/// Owned keys, for a layered stack's request.
fn owned(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|k| (*k).to_owned()).collect()
}

/// Runs one request through the layered stack.
async fn through(stack: &BoxBackendService, req: BackendRequest) -> Result<BackendResponse> {
    stack.clone().oneshot(req).await
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

impl MemStache {
    // Every layered branch is boxed, so the request and the `Oneshot` state of the tower stack
    // are not part of (and copied with) every operation's future when no layer is configured:
    // an unboxed one made `b_remove` 384 bytes, inside every `set`'s future.

    /// `req` through the layered stack, under the operation timeout, its response read by
    /// `into`.
    fn layered<'a, T: 'a>(
        &'a self,
        stack: &'a BoxBackendService,
        req: BackendRequest,
        into: fn(BackendResponse) -> Result<T>,
    ) -> Boxed<'a, T> {
        Box::pin(async move { into(self.call(through(stack, req)).await?) })
    }

    pub(crate) fn b_get<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Future<Output = Result<Option<Bytes>>> + Send + 'a {
        match &self.inner.stack {
            None => Either::Left(self.call(self.inner.backend.get(key))),
            Some(s) => {
                let req = BackendRequest::Get {
                    key: key.to_owned(),
                };
                Either::Right(self.layered(s, req, BackendResponse::into_value))
            }
        }
    }

    pub(crate) fn b_set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expiry: Expiry,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        match &self.inner.stack {
            None => Either::Left(self.call(self.inner.backend.set(key, value, expiry))),
            Some(s) => {
                let req = BackendRequest::Set {
                    key: key.to_owned(),
                    value,
                    expiry,
                };
                Either::Right(self.layered(s, req, BackendResponse::into_done))
            }
        }
    }

    pub(crate) fn b_remove<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Future<Output = Result<bool>> + Send + 'a {
        match &self.inner.stack {
            None => Either::Left(self.call(self.inner.backend.remove(key))),
            Some(s) => {
                let req = BackendRequest::Remove {
                    key: key.to_owned(),
                };
                Either::Right(self.layered(s, req, BackendResponse::into_flag))
            }
        }
    }

    pub(crate) fn b_exists<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Future<Output = Result<bool>> + Send + 'a {
        match &self.inner.stack {
            None => Either::Left(self.call(self.inner.backend.exists(key))),
            Some(s) => {
                let req = BackendRequest::Exists {
                    key: key.to_owned(),
                };
                Either::Right(self.layered(s, req, BackendResponse::into_flag))
            }
        }
    }

    pub(crate) fn b_touch<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Future<Output = Result<bool>> + Send + 'a {
        match &self.inner.stack {
            None => Either::Left(self.call(self.inner.backend.touch(key))),
            Some(s) => {
                let req = BackendRequest::Touch {
                    key: key.to_owned(),
                };
                Either::Right(self.layered(s, req, BackendResponse::into_flag))
            }
        }
    }

    pub(crate) fn b_set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expiry: Expiry,
    ) -> impl Future<Output = Result<bool>> + Send + 'a {
        match &self.inner.stack {
            None => Either::Left(self.call(self.inner.backend.set_if_absent(key, value, expiry))),
            Some(s) => {
                let req = BackendRequest::SetIfAbsent {
                    key: key.to_owned(),
                    value,
                    expiry,
                };
                Either::Right(self.layered(s, req, BackendResponse::into_flag))
            }
        }
    }

    /// (An `async fn`: the backend borrows `expected`. Not a hot path.)
    pub(crate) async fn b_remove_if_equals(&self, key: &str, expected: Bytes) -> Result<bool> {
        match &self.inner.stack {
            None => {
                self.call(self.inner.backend.remove_if_equals(key, &expected))
                    .await
            }
            Some(s) => {
                let req = BackendRequest::RemoveIfEquals {
                    key: key.to_owned(),
                    expected,
                };
                self.layered(s, req, BackendResponse::into_flag).await
            }
        }
    }

    pub(crate) fn b_get_many<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> impl Future<Output = Result<Vec<Option<Bytes>>>> + Send + 'a {
        match &self.inner.stack {
            None => Either::Left(self.call(self.inner.backend.get_many(keys))),
            Some(s) => {
                let req = BackendRequest::GetMany { keys: owned(keys) };
                Either::Right(self.layered(s, req, BackendResponse::into_values))
            }
        }
    }

    pub(crate) fn b_set_many<'a>(
        &'a self,
        entries: Vec<BackendEntry>,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        match &self.inner.stack {
            None => Either::Left(self.call(self.inner.backend.set_many(entries))),
            Some(s) => {
                let req = BackendRequest::SetMany { entries };
                Either::Right(self.layered(s, req, BackendResponse::into_done))
            }
        }
    }

    pub(crate) fn b_remove_many<'a>(
        &'a self,
        keys: &'a [&'a str],
    ) -> impl Future<Output = Result<u64>> + Send + 'a {
        match &self.inner.stack {
            None => Either::Left(self.call(self.inner.backend.remove_many(keys))),
            Some(s) => {
                let req = BackendRequest::RemoveMany { keys: owned(keys) };
                Either::Right(self.layered(s, req, BackendResponse::into_count))
            }
        }
    }
}
