//! Every backend call of a cache goes through here: straight to the [`Backend`] when no layer
//! is configured (no boxing, no allocation), through the layered [`BoxBackendService`]
//! otherwise; always under the operation timeout, which bounds the whole stack.
//!
//! [`Backend`]: crate::raw::Backend

use bytes::Bytes;
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

impl MemStache {
    // `get` and `set` are the hot calls: their layered branch is boxed, so the request and the
    // `Oneshot` state of the tower stack are not part of (and copied with) every operation's
    // future when no layer is configured.

    pub(crate) async fn b_get(&self, key: &str) -> Result<Option<Bytes>> {
        match &self.inner.stack {
            None => self.call(self.inner.backend.get(key)).await,
            Some(s) => Box::pin(self.call(through(
                s,
                BackendRequest::Get {
                    key: key.to_owned(),
                },
            )))
            .await?
            .into_value(),
        }
    }

    pub(crate) async fn b_set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        match &self.inner.stack {
            None => self.call(self.inner.backend.set(key, value, expiry)).await,
            Some(s) => Box::pin(self.call(through(
                s,
                BackendRequest::Set {
                    key: key.to_owned(),
                    value,
                    expiry,
                },
            )))
            .await?
            .into_done(),
        }
    }

    pub(crate) async fn b_remove(&self, key: &str) -> Result<bool> {
        match &self.inner.stack {
            None => self.call(self.inner.backend.remove(key)).await,
            Some(s) => self
                .call(through(
                    s,
                    BackendRequest::Remove {
                        key: key.to_owned(),
                    },
                ))
                .await?
                .into_flag(),
        }
    }

    pub(crate) async fn b_exists(&self, key: &str) -> Result<bool> {
        match &self.inner.stack {
            None => self.call(self.inner.backend.exists(key)).await,
            Some(s) => self
                .call(through(
                    s,
                    BackendRequest::Exists {
                        key: key.to_owned(),
                    },
                ))
                .await?
                .into_flag(),
        }
    }

    pub(crate) async fn b_touch(&self, key: &str) -> Result<bool> {
        match &self.inner.stack {
            None => self.call(self.inner.backend.touch(key)).await,
            Some(s) => self
                .call(through(
                    s,
                    BackendRequest::Touch {
                        key: key.to_owned(),
                    },
                ))
                .await?
                .into_flag(),
        }
    }

    pub(crate) async fn b_set_if_absent(
        &self,
        key: &str,
        value: Bytes,
        expiry: Expiry,
    ) -> Result<bool> {
        match &self.inner.stack {
            None => {
                self.call(self.inner.backend.set_if_absent(key, value, expiry))
                    .await
            }
            Some(s) => self
                .call(through(
                    s,
                    BackendRequest::SetIfAbsent {
                        key: key.to_owned(),
                        value,
                        expiry,
                    },
                ))
                .await?
                .into_flag(),
        }
    }

    pub(crate) async fn b_remove_if_equals(&self, key: &str, expected: Bytes) -> Result<bool> {
        match &self.inner.stack {
            None => {
                self.call(self.inner.backend.remove_if_equals(key, &expected))
                    .await
            }
            Some(s) => self
                .call(through(
                    s,
                    BackendRequest::RemoveIfEquals {
                        key: key.to_owned(),
                        expected,
                    },
                ))
                .await?
                .into_flag(),
        }
    }

    pub(crate) async fn b_get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        match &self.inner.stack {
            None => self.call(self.inner.backend.get_many(keys)).await,
            Some(s) => self
                .call(through(s, BackendRequest::GetMany { keys: owned(keys) }))
                .await?
                .into_values(),
        }
    }

    pub(crate) async fn b_set_many(&self, entries: Vec<BackendEntry>) -> Result<()> {
        match &self.inner.stack {
            None => self.call(self.inner.backend.set_many(entries)).await,
            Some(s) => self
                .call(through(s, BackendRequest::SetMany { entries }))
                .await?
                .into_done(),
        }
    }

    pub(crate) async fn b_remove_many(&self, keys: &[&str]) -> Result<u64> {
        match &self.inner.stack {
            None => self.call(self.inner.backend.remove_many(keys)).await,
            Some(s) => self
                .call(through(s, BackendRequest::RemoveMany { keys: owned(keys) }))
                .await?
                .into_count(),
        }
    }
}
