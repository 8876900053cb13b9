//! The internal client trait, [`RawClient`], the one batch item type it takes, and where a
//! backplane subscriber connects ([`SubscribeTo`]). This file
//! imports nothing from the crate: the per-client modules depend on it, and `client/mod.rs`
//! depends on them.

use std::fmt::Debug;

use bytes::Bytes;
use memstache_core::Result;

/// The server a backplane subscriber connects to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SubscribeTo<'a> {
    /// A fixed server: the standalone server, or one node of a cluster.
    Node {
        /// Host name or IP address.
        host: &'a str,
        /// TCP port.
        port: u16,
    },
    /// The primary the configured Sentinels name now.
    SentinelPrimary,
}

/// One `SET key value [PX ms]` of a batch.
#[derive(Debug, Clone)]
pub(crate) struct SetPx {
    pub(crate) key: String,
    pub(crate) value: Bytes,
    pub(crate) px_ms: Option<u64>,
}

/// What the backend needs from a Redis client. Multi-key methods receive keys of one hash slot
/// when the client talks to a cluster (the backend groups them).
///
/// Writes (`set_px`, `set_many_px`, `set_nx_px`, `del_if_equals`, `unlink`, `eval_bytes`)
/// follow the configured [`Durability`](crate::Durability): with `Replicas`, the client sends
/// them and `WAIT` in one pipeline on one connection and fails unless enough replicas
/// acknowledged. Script replies holding [`TOO_LARGE`](crate::scripts::TOO_LARGE) fail with
/// `ValueTooLarge`.
///
/// Statically dispatched (through [`Client`]), not `dyn`: a boxed future per command costs an
/// allocation and a copy of the whole future on every `GET`, which is measurable against the
/// raw client at 64 requests in flight (docs/BENCHMARKS.md).
pub(crate) trait RawClient: Debug + Send + Sync + 'static {
    /// A short name for `Debug` (`"fred"`).
    fn name(&self) -> &'static str;
    /// `GETRANGE key 0 len-1`: at most `len` bytes of the value, empty for a missing key.
    fn getrange(&self, key: &str, len: usize) -> impl Future<Output = Result<Bytes>> + Send;
    /// `SET key value [PX ms]`.
    fn set_px(
        &self,
        key: &str,
        value: Bytes,
        px_ms: Option<u64>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Every `SET … PX` pipelined (any slots: the client routes each command).
    fn set_many_px(&self, entries: Vec<SetPx>) -> impl Future<Output = Result<()>> + Send;
    /// `SET key value NX [PX ms]`; whether it stored.
    fn set_nx_px(
        &self,
        key: &str,
        value: Bytes,
        px_ms: Option<u64>,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// [`DEL_IF_EQUALS`](crate::scripts::DEL_IF_EQUALS) on `key`; whether it deleted.
    fn del_if_equals(
        &self,
        key: &str,
        expected: Bytes,
    ) -> impl Future<Output = Result<bool>> + Send;
    /// `UNLINK k…` (one slot); how many existed.
    fn unlink(&self, keys: &[&str]) -> impl Future<Output = Result<u64>> + Send;
    /// `EXISTS key`.
    fn exists(&self, key: &str) -> impl Future<Output = Result<bool>> + Send;
    /// `EVALSHA sha n k… arg` for a script returning one bulk or nil per key; `Ok(None)` on
    /// `NOSCRIPT`.
    fn evalsha(
        &self,
        sha: &str,
        keys: &[&str],
        arg: &str,
    ) -> impl Future<Output = Result<Option<Vec<Option<Bytes>>>>> + Send;
    /// `EVAL script n k… arg` (also caches the script on that node).
    fn eval(
        &self,
        script: &str,
        keys: &[&str],
        arg: &str,
    ) -> impl Future<Output = Result<Vec<Option<Bytes>>>> + Send;
    /// `EVAL script n k… a…` of a write script with binary arguments (also caches the script on
    /// that node); the reply as one bulk or nil per element.
    fn eval_bytes(
        &self,
        script: &str,
        keys: &[&str],
        args: Vec<Bytes>,
    ) -> impl Future<Output = Result<Vec<Option<Bytes>>>> + Send;
    /// `SCRIPT LOAD script`; the SHA1.
    fn script_load(&self, script: &str) -> impl Future<Output = Result<String>> + Send;
    /// `CONFIG SET param value` on every primary.
    fn config_set_all(&self, param: &str, value: &str) -> impl Future<Output = Result<()>> + Send;
    /// `PUBLISH channel payload` (on a cluster, always on the node of the channel's hash slot);
    /// how many subscribers of that node received it.
    fn publish(&self, channel: &str, payload: Bytes) -> impl Future<Output = Result<u64>> + Send;
    /// Closes the connections.
    fn quit(&self) -> impl Future<Output = ()> + Send;
}
