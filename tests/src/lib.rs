//! Integration tests of memstache (unpublished).
//!
//! This library holds [`BTreeBackend`], a custom backend written against `memstache-core`
//! alone, to prove that the plugin SPI is enough to build a backend that passes the behaviour
//! suite (`tests/custom_backend.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use memstache_core::Result;
use memstache_core::raw::{Backend, Capabilities, Clock, Expiry};
use parking_lot::Mutex;

#[derive(Debug)]
struct Entry {
    value: Bytes,
    expiry: Expiry,
    expires_at: Option<u64>,
}

/// A deliberately simple, unbounded backend: a `BTreeMap` behind a mutex, expiring entries
/// lazily on access with the injected clock.
#[derive(Debug, Clone)]
pub struct BTreeBackend {
    map: Arc<Mutex<BTreeMap<String, Entry>>>,
    clock: Arc<dyn Clock>,
}

impl BTreeBackend {
    /// An empty backend on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        BTreeBackend {
            map: Arc::default(),
            clock,
        }
    }

    fn live<'a>(
        map: &'a mut BTreeMap<String, Entry>,
        key: &str,
        now: u64,
    ) -> Option<&'a mut Entry> {
        if map
            .get(key)
            .is_some_and(|e| e.expires_at.is_some_and(|at| at <= now))
        {
            map.remove(key);
        }
        map.get_mut(key)
    }
}

#[async_trait]
impl Backend for BTreeBackend {
    fn name(&self) -> &'static str {
        "btree"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let now = self.clock.now_ms();
        let mut map = self.map.lock();
        Ok(Self::live(&mut map, key, now).map(|e| {
            e.expires_at = e.expiry.expires_at(now);
            e.value.clone()
        }))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        let now = self.clock.now_ms();
        self.map.lock().insert(
            key.to_owned(),
            Entry {
                value,
                expiry,
                expires_at: expiry.expires_at(now),
            },
        );
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<bool> {
        let now = self.clock.now_ms();
        let mut map = self.map.lock();
        let live = Self::live(&mut map, key, now).is_some();
        map.remove(key);
        Ok(live)
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let now = self.clock.now_ms();
        Ok(Self::live(&mut self.map.lock(), key, now).is_some())
    }

    async fn touch(&self, key: &str) -> Result<bool> {
        let now = self.clock.now_ms();
        let mut map = self.map.lock();
        Ok(Self::live(&mut map, key, now)
            .map(|e| e.expires_at = e.expiry.expires_at(now))
            .is_some())
    }
}
