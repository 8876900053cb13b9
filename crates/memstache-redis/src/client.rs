//! The small internal client trait: everything Redis-specific (key layout, scripts, slot
//! grouping, error classification, config parsing) lives outside it, so a second client can be
//! added behind a feature without touching the backend.

use std::fmt::Debug;

use async_trait::async_trait;
use bytes::Bytes;
use memstache_core::Result;

/// One `SET key value [PX ms]` of a batch.
#[derive(Debug, Clone)]
pub(crate) struct SetPx {
    pub(crate) key: String,
    pub(crate) value: Bytes,
    pub(crate) px_ms: Option<u64>,
}

/// What the backend needs from a Redis client. Multi-key methods receive keys of one hash slot
/// when the client talks to a cluster (the backend groups them).
#[async_trait]
pub(crate) trait RawClient: Debug + Send + Sync + 'static {
    /// A short name for `Debug` (`"fred"`).
    fn name(&self) -> &'static str;
    /// `GET key`.
    async fn get(&self, key: &str) -> Result<Option<Bytes>>;
    /// `SET key value [PX ms]`.
    async fn set_px(&self, key: &str, value: Bytes, px_ms: Option<u64>) -> Result<()>;
    /// Every `SET … PX` pipelined (any slots: the client routes each command).
    async fn set_many_px(&self, entries: Vec<SetPx>) -> Result<()>;
    /// `SET key value NX [PX ms]`; whether it stored.
    async fn set_nx_px(&self, key: &str, value: Bytes, px_ms: Option<u64>) -> Result<bool>;
    /// [`DEL_IF_EQUALS`](crate::scripts::DEL_IF_EQUALS) on `key`; whether it deleted.
    async fn del_if_equals(&self, key: &str, expected: Bytes) -> Result<bool>;
    /// `UNLINK k…` (one slot); how many existed.
    async fn unlink(&self, keys: &[&str]) -> Result<u64>;
    /// `EXISTS key`.
    async fn exists(&self, key: &str) -> Result<bool>;
    /// `MGET k…` (one slot), in order.
    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>>;
    /// `EVALSHA sha n k… arg` for a script returning one bulk or nil per key; `Ok(None)` on
    /// `NOSCRIPT`.
    async fn evalsha(
        &self,
        sha: &str,
        keys: &[&str],
        arg: &str,
    ) -> Result<Option<Vec<Option<Bytes>>>>;
    /// `EVAL script n k… arg` (also caches the script on that node).
    async fn eval(&self, script: &str, keys: &[&str], arg: &str) -> Result<Vec<Option<Bytes>>>;
    /// `SCRIPT LOAD script`; the SHA1.
    async fn script_load(&self, script: &str) -> Result<String>;
    /// `CONFIG SET param value` on every primary.
    async fn config_set_all(&self, param: &str, value: &str) -> Result<()>;
    /// Closes the connections.
    async fn quit(&self);
}
