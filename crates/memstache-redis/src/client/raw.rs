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

/// One single-key command of a coalesced batch ([`RawClient::batch`]).
#[derive(Debug)]
pub(crate) enum Op {
    /// `GETRANGE key 0 len-1`; replies [`Reply::Bytes`].
    GetRange {
        /// The key.
        key: String,
        /// At most this many bytes.
        len: usize,
    },
    /// `SET key value [PX ms]`; replies [`Reply::Done`].
    Set(SetPx),
    /// `UNLINK key`; replies [`Reply::Count`].
    Unlink {
        /// The key.
        key: String,
    },
    /// `EXISTS key`; replies [`Reply::Count`].
    Exists {
        /// The key.
        key: String,
    },
}

impl Op {
    /// The key the command acts on.
    pub(crate) fn key(&self) -> &str {
        match self {
            Op::GetRange { key, .. } | Op::Unlink { key } | Op::Exists { key } => key,
            Op::Set(s) => &s.key,
        }
    }
}

/// The reply to one [`Op`].
#[derive(Debug)]
pub(crate) enum Reply {
    /// A value (`GETRANGE`).
    Bytes(Bytes),
    /// `OK` (`SET`).
    Done,
    /// An integer (`UNLINK`, `EXISTS`).
    Count(u64),
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
    /// The commands `ops` in one pipeline (on a cluster, one pipeline per hash slot, sent
    /// concurrently), each with its own reply or error, in order: a command the server refuses
    /// fails alone. `Err` when the batch as a whole failed (connection lost, timeout). Never
    /// called with [`Durability::Replicas`](crate::Durability) writes: those keep their
    /// `WAIT` pipelines.
    fn batch(&self, ops: &[Op]) -> impl Future<Output = Result<Vec<Result<Reply>>>> + Send;
    /// Closes the connections.
    fn quit(&self) -> impl Future<Output = ()> + Send;
}
