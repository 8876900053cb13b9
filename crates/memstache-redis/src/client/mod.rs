//! The Redis clients behind one small internal trait. Everything Redis-specific that is not a
//! command (key layout, scripts, slot grouping, the client-independent error rules, config
//! parsing) lives outside this module, so a second client can be added behind a feature without
//! touching the backend.
//!
//! Dependency direction: one way only, from the dispatch down to the trait, so no two files
//! import each other (`→` = imports from):
//!
//! ```text
//! backend.rs             → client/mod.rs, config.rs, hints.rs, scripts.rs, slot.rs
//! client/mod.rs          → client/raw.rs, client/redis_rs.rs, client/fred.rs, config.rs
//! backplane.rs           → backend.rs, client/mod.rs, config.rs
//! client/redis_rs.rs     → client/raw.rs, client/redis_rs/error.rs, config.rs, scripts.rs, error.rs, slot.rs
//! client/fred.rs         → client/raw.rs, client/fred/error.rs,     config.rs, scripts.rs, error.rs
//! client/*/subscriber.rs → its client's file, client/raw.rs, config.rs
//! client/*/error.rs      → error.rs
//! client/raw.rs, error.rs, config.rs, scripts.rs, hints.rs, slot.rs → nothing in the crate
//! ```
//!
//! * `raw.rs`: the [`RawClient`] trait and [`SetPx`].
//! * `redis_rs.rs`, `fred.rs`: one client each, implementing `raw::RawClient`; each maps its
//!   own library's errors in its `error.rs`, with the client-independent rules of the crate's
//!   `error.rs`. They never import this file, nor each other.
//! * `redis_rs/subscriber.rs`, `fred/subscriber.rs`: one backplane subscriber connection each
//!   (connect, `SUBSCRIBE` confirmed, messages, `PING`).
//! * this file: the [`Client`] enum that dispatches statically to the compiled-in clients, and
//!   [`Client::connect`], which picks one from the configuration; [`Subscriber`], the same for
//!   backplane subscriber connections.

#[cfg(feature = "fred")]
mod fred;
mod raw;
#[cfg(feature = "redis-rs")]
mod redis_rs;

use bytes::Bytes;
use memstache_core::{Error, ErrorKind, Result};

pub(crate) use self::raw::{Op, RawClient, Reply, SetPx, SubscribeTo};
use crate::config::{RedisClient, RedisConfig};

/// The compiled-in clients, dispatched statically: no boxed future per command.
#[derive(Debug)]
pub(crate) enum Client {
    /// redis-rs 1.x.
    #[cfg(feature = "redis-rs")]
    RedisRs(redis_rs::RedisRsClient),
    /// fred 10.
    #[cfg(feature = "fred")]
    Fred(fred::FredClient),
}

impl Client {
    /// Connects the client `config.client` names (the configuration is already validated).
    pub(crate) async fn connect(config: &RedisConfig) -> Result<Client> {
        Ok(match config.client {
            #[cfg(feature = "redis-rs")]
            RedisClient::RedisRs => {
                Client::RedisRs(redis_rs::RedisRsClient::connect(config).await?)
            }
            #[cfg(feature = "fred")]
            RedisClient::Fred => Client::Fred(fred::FredClient::connect(config).await?),
            #[allow(
                unreachable_patterns,
                reason = "depends on the enabled client features"
            )]
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "the selected Redis client is not compiled in (features `redis-rs`, `fred`)",
                ));
            }
        })
    }
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
    async fn getrange(&self, key: &str, len: usize) -> Result<Bytes> {
        dispatch_await!(self, c => c.getrange(key, len))
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
    async fn eval_bytes(
        &self,
        script: &str,
        keys: &[&str],
        args: Vec<Bytes>,
    ) -> Result<Vec<Option<Bytes>>> {
        dispatch_await!(self, c => c.eval_bytes(script, keys, args))
    }
    async fn script_load(&self, script: &str) -> Result<String> {
        dispatch_await!(self, c => c.script_load(script))
    }
    async fn config_set_all(&self, param: &str, value: &str) -> Result<()> {
        dispatch_await!(self, c => c.config_set_all(param, value))
    }
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<u64> {
        dispatch_await!(self, c => c.publish(channel, payload))
    }
    async fn batch(&self, ops: &[Op]) -> Result<Vec<Result<Reply>>> {
        dispatch_await!(self, c => c.batch(ops))
    }
    async fn quit(&self) {
        dispatch_await!(self, c => c.quit())
    }
}

/// One backplane subscriber connection of the client `config.client` names.
#[derive(Debug)]
pub(crate) enum Subscriber {
    /// redis-rs 1.x.
    #[cfg(feature = "redis-rs")]
    RedisRs(redis_rs::RedisRsSubscriber),
    /// fred 10.
    #[cfg(feature = "fred")]
    Fred(fred::FredSubscriber),
}

impl Subscriber {
    /// Connects to `to` and subscribes to `channel`; returns once the server confirmed the
    /// subscription. Unbounded: the caller bounds it.
    pub(crate) async fn connect(
        config: &RedisConfig,
        to: SubscribeTo<'_>,
        channel: &str,
    ) -> Result<Subscriber> {
        Ok(match config.client {
            #[cfg(feature = "redis-rs")]
            RedisClient::RedisRs => Subscriber::RedisRs(
                redis_rs::RedisRsSubscriber::connect(config, to, channel).await?,
            ),
            #[cfg(feature = "fred")]
            RedisClient::Fred => {
                Subscriber::Fred(fred::FredSubscriber::connect(config, to, channel).await?)
            }
            #[allow(
                unreachable_patterns,
                reason = "depends on the enabled client features"
            )]
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "the selected Redis client is not compiled in (features `redis-rs`, `fred`)",
                ));
            }
        })
    }

    /// The next message's payload; `None` once the subscription is lost (connection closed or
    /// failed, or messages missed). Cancel-safe.
    pub(crate) async fn next_message(&mut self) -> Option<Bytes> {
        match self {
            #[cfg(feature = "redis-rs")]
            Subscriber::RedisRs(s) => s.next_message().await,
            #[cfg(feature = "fred")]
            Subscriber::Fred(s) => s.next_message().await,
        }
    }

    /// A `PING` on the subscribed connection, independent of `self` (so that messages are read
    /// while it is in flight). Unbounded: the caller bounds it.
    pub(crate) fn ping(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<()>> + Send + 'static>> {
        match self {
            #[cfg(feature = "redis-rs")]
            Subscriber::RedisRs(s) => Box::pin(s.ping()),
            #[cfg(feature = "fred")]
            Subscriber::Fred(s) => Box::pin(s.ping()),
        }
    }

    /// Closes the connection.
    pub(crate) async fn close(self) {
        match self {
            #[cfg(feature = "redis-rs")]
            Subscriber::RedisRs(s) => s.close().await,
            #[cfg(feature = "fred")]
            Subscriber::Fred(s) => s.close().await,
        }
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
            (
                "getrange",
                future_size::<Client, _, _>(|c, k| c.getrange(k, 1)),
            ),
            (
                "set_px",
                future_size::<Client, _, _>(|c, k| c.set_px(k, Bytes::new(), None)),
            ),
            ("unlink", future_size::<Client, _, _>(|c, _| c.unlink(&[]))),
            ("exists", future_size::<Client, _, _>(|c, k| c.exists(k))),
        ];
        for (name, size) in sizes {
            assert!(size <= budget, "{name}: {size} bytes > {budget}");
        }
    }
}
