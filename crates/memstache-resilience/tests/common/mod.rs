//! Shared helpers of the fault tests: a backend wrapper that counts the calls reaching Redis.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use memstache_core::Result;
use memstache_core::raw::{Backend, BackendEntry, Capabilities, Expiry};

/// Delegates every call to `inner` and counts it: the calls that reach the network.
#[derive(Debug, Clone)]
pub(crate) struct Counting<B> {
    pub(crate) inner: B,
    pub(crate) calls: Arc<AtomicU64>,
}

impl<B> Counting<B> {
    pub(crate) fn new(inner: B) -> Self {
        Counting {
            inner,
            calls: Arc::default(),
        }
    }
    fn hit(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl<B: Backend> Backend for Counting<B> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.hit();
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.hit();
        self.inner.set(key, value, expiry).await
    }
    async fn remove(&self, key: &str) -> Result<bool> {
        self.hit();
        self.inner.remove(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.hit();
        self.inner.exists(key).await
    }
    async fn touch(&self, key: &str) -> Result<bool> {
        self.hit();
        self.inner.touch(key).await
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.hit();
        self.inner.set_if_absent(key, value, expiry).await
    }
    async fn remove_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool> {
        self.hit();
        self.inner.remove_if_equals(key, expected).await
    }
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        self.hit();
        self.inner.get_many(keys).await
    }
    async fn set_many(&self, entries: Vec<BackendEntry>) -> Result<()> {
        self.hit();
        self.inner.set_many(entries).await
    }
    async fn remove_many(&self, keys: &[&str]) -> Result<u64> {
        self.hit();
        self.inner.remove_many(keys).await
    }
}
