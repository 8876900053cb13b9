//! The small internal client trait: everything Redis-specific (key layout, scripts, slot
//! grouping, error classification, config parsing) lives outside it, so a second client can be
//! added behind a feature without touching the backend.

use std::fmt::Debug;

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
///
/// Statically dispatched (through [`Client`]), not `dyn`: a boxed future per command costs an
/// allocation and a copy of the whole future on every `GET`, which is measurable against the
/// raw client at 64 requests in flight (docs/BENCHMARKS.md).
pub(crate) trait RawClient: Debug + Send + Sync + 'static {
    /// A short name for `Debug` (`"fred"`).
    fn name(&self) -> &'static str;
    /// `GET key`.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Bytes>>> + Send;
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
    /// `MGET k…` (one slot), in order.
    fn mget(&self, keys: &[&str]) -> impl Future<Output = Result<Vec<Option<Bytes>>>> + Send;
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
    /// `SCRIPT LOAD script`; the SHA1.
    fn script_load(&self, script: &str) -> impl Future<Output = Result<String>> + Send;
    /// `CONFIG SET param value` on every primary.
    fn config_set_all(&self, param: &str, value: &str) -> impl Future<Output = Result<()>> + Send;
    /// Closes the connections.
    fn quit(&self) -> impl Future<Output = ()> + Send;
}

/// The compiled-in clients, dispatched statically: no boxed future per command.
#[derive(Debug)]
pub(crate) enum Client {
    /// redis-rs 1.x.
    #[cfg(feature = "redis-rs")]
    RedisRs(crate::redis_rs::RedisRsClient),
    /// fred 10.
    #[cfg(feature = "fred")]
    Fred(crate::fred::FredClient),
}

/// Runs `$body` with `$c` bound to whichever client `$self` holds.
macro_rules! dispatch {
    ($self:ident, $c:ident => $body:expr) => {
        match $self {
            #[cfg(feature = "redis-rs")]
            Client::RedisRs($c) => $body,
            #[cfg(feature = "fred")]
            Client::Fred($c) => $body,
        }
    };
}

/// Awaits the command future `$fut` of whichever client `$self` holds. fred's command
/// futures are boxed: they are about 6.9 KB (redis-rs's are about 350 bytes), and an unboxed
/// enum of the two would make every redis-rs command future, and every boxed `Backend` call
/// above it, that large: a 7 KB allocation per operation that misses the allocator's
/// thread cache, and 7 KB to move.
macro_rules! dispatch_await {
    ($self:ident, $c:ident => $fut:expr) => {
        match $self {
            #[cfg(feature = "redis-rs")]
            Client::RedisRs($c) => $fut.await,
            #[cfg(feature = "fred")]
            Client::Fred($c) => Box::pin($fut).await,
        }
    };
}

impl RawClient for Client {
    fn name(&self) -> &'static str {
        dispatch!(self, c => c.name())
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        dispatch_await!(self, c => c.get(key))
    }
    async fn set_px(&self, key: &str, value: Bytes, px_ms: Option<u64>) -> Result<()> {
        dispatch_await!(self, c => c.set_px(key, value, px_ms))
    }
    async fn set_many_px(&self, entries: Vec<SetPx>) -> Result<()> {
        dispatch_await!(self, c => c.set_many_px(entries))
    }
    async fn set_nx_px(&self, key: &str, value: Bytes, px_ms: Option<u64>) -> Result<bool> {
        dispatch_await!(self, c => c.set_nx_px(key, value, px_ms))
    }
    async fn del_if_equals(&self, key: &str, expected: Bytes) -> Result<bool> {
        dispatch_await!(self, c => c.del_if_equals(key, expected))
    }
    async fn unlink(&self, keys: &[&str]) -> Result<u64> {
        dispatch_await!(self, c => c.unlink(keys))
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        dispatch_await!(self, c => c.exists(key))
    }
    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        dispatch_await!(self, c => c.mget(keys))
    }
    async fn evalsha(
        &self,
        sha: &str,
        keys: &[&str],
        arg: &str,
    ) -> Result<Option<Vec<Option<Bytes>>>> {
        dispatch_await!(self, c => c.evalsha(sha, keys, arg))
    }
    async fn eval(&self, script: &str, keys: &[&str], arg: &str) -> Result<Vec<Option<Bytes>>> {
        dispatch_await!(self, c => c.eval(script, keys, arg))
    }
    async fn script_load(&self, script: &str) -> Result<String> {
        dispatch_await!(self, c => c.script_load(script))
    }
    async fn config_set_all(&self, param: &str, value: &str) -> Result<()> {
        dispatch_await!(self, c => c.config_set_all(param, value))
    }
    async fn quit(&self) {
        dispatch_await!(self, c => c.quit())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn future_size<C: 'static, F, Fut>(_f: F) -> usize
    where
        F: Fn(&'static C, &'static str) -> Fut,
    {
        std::mem::size_of::<Fut>()
    }

    /// Every command's future is moved into the boxed `Backend` future of each operation: a
    /// large one costs an allocation outside the allocator's thread cache (glibc's ends at
    /// 1 KiB) and a large copy per operation. An unboxed fred future made them 6.9 KB.
    #[test]
    fn command_futures_stay_small() {
        let budget = 1024;
        let sizes = [
            ("get", future_size::<Client, _, _>(|c, k| c.get(k))),
            (
                "set_px",
                future_size::<Client, _, _>(|c, k| c.set_px(k, Bytes::new(), None)),
            ),
            ("mget", future_size::<Client, _, _>(|c, _| c.mget(&[]))),
            ("unlink", future_size::<Client, _, _>(|c, _| c.unlink(&[]))),
            ("exists", future_size::<Client, _, _>(|c, k| c.exists(k))),
        ];
        for (name, size) in sizes {
            assert!(size <= budget, "{name}: {size} bytes > {budget}");
        }
    }
}
