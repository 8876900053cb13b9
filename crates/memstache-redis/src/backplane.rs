//! [`RedisBackplane`]: memstache's [`Backplane`] on Redis pub/sub (`PUBLISH` / `SUBSCRIBE`),
//! on every topology and with either client. The subscription loop here (connect, confirm,
//! health check, reconnect with backoff) is the same for both clients; each client's
//! `subscriber.rs` only opens the connection, reads messages and pings.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use memstache_core::raw::{Backplane, BackplaneListener, MAX_BACKPLANE_MESSAGE, Subscription};
use memstache_core::{Error, ErrorKind, Result};

use crate::RedisBackend;
use crate::client::{RawClient, SubscribeTo, Subscriber};
use crate::config::{RedisConfig, Topology};

/// memstache's [`Backplane`] on Redis pub/sub, from [`RedisBackend::backplane`].
///
/// * `publish` is one `PUBLISH` on the backend's own connections (on a cluster, always on the
///   master of the channel's hash slot, so that one publisher's messages stay in order; the
///   cluster bus broadcasts every `PUBLISH` to all nodes). Payloads larger than
///   [`MAX_BACKPLANE_MESSAGE`] are refused with [`ErrorKind::ValueTooLarge`].
/// * Each `subscribe` runs a background task with a connection of its own: the standalone
///   server, the primary the Sentinels name, or one cluster node (the seeds in turn). It calls
///   [`connected`](BackplaneListener::connected) once Redis confirmed the `SUBSCRIBE`, pings
///   every [`RedisConfig::backplane_ping_interval`] (an unanswered ping, a closed connection or
///   a read error calls [`disconnected`](BackplaneListener::disconnected) at once), and
///   reconnects with exponential backoff ([`RedisConfig::backplane_min_backoff`] doubling to
///   [`RedisConfig::backplane_max_backoff`]). Received payloads larger than
///   [`MAX_BACKPLANE_MESSAGE`] are dropped and counted. Dropping the [`Subscription`] stops
///   the task and closes its connection.
///
/// A cheap-to-clone handle; clones share the [`stats`](Self::stats) (each call of
/// [`RedisBackend::backplane`] starts new counters). `Debug` shows the client and the topology
/// kind, never credentials.
///
/// ```no_run
/// use std::sync::Arc;
/// use memstache_core::raw::{Backplane, BackplaneListener};
/// # struct Log;
/// # impl BackplaneListener for Log {
/// #     fn connected(&self) {}
/// #     fn disconnected(&self) {}
/// #     fn message(&self, _payload: &[u8]) {}
/// # }
/// # async fn demo() -> memstache_core::Result<()> {
/// let backend = memstache_redis::RedisBackend::connect("redis://127.0.0.1:6379").await?;
/// let plane = backend.backplane();
/// let subscription = plane.subscribe("orders:invalidate", Arc::new(Log))?;
/// plane.publish("orders:invalidate", bytes::Bytes::from_static(b"k1")).await?;
/// println!("{:?}", plane.stats());
/// drop(subscription); // unsubscribes
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackplane {
    backend: RedisBackend,
    counters: Arc<Counters>,
}

/// The counters of a [`RedisBackplane`] (its clones and all its subscriptions), from
/// [`RedisBackplane::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackplaneStats {
    /// Messages `publish` sent (accepted by Redis).
    pub published: u64,
    /// Messages the subscriptions received and passed to their listeners.
    pub received: u64,
    /// Received messages larger than [`MAX_BACKPLANE_MESSAGE`], dropped.
    pub dropped_oversized: u64,
    /// Subscriptions lost (each reported once with `disconnected`).
    pub disconnects: u64,
    /// Subscriptions re-established after a loss (each reported with `connected`).
    pub reconnects: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    received: AtomicU64,
    dropped_oversized: AtomicU64,
    disconnects: AtomicU64,
    reconnects: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let topology = match &self.backend.config().topology {
            Topology::Standalone { .. } => "standalone",
            Topology::Cluster { .. } => "cluster",
            Topology::Sentinel { .. } => "sentinel",
        };
        f.debug_struct("RedisBackplane")
            .field("client", &self.backend.client().name())
            .field("topology", &topology)
            .field("stats", &self.stats())
            .finish()
    }
}

impl RedisBackend {
    /// The [`Backplane`] on this backend's Redis servers: `PUBLISH` on the backend's
    /// connections, a dedicated connection per subscription (see [`RedisBackplane`]).
    ///
    /// ```no_run
    /// # async fn demo() -> memstache_core::Result<()> {
    /// let backend = memstache_redis::RedisBackend::connect("redis://127.0.0.1:6379").await?;
    /// let plane = backend.backplane();
    /// assert_eq!(plane.stats().published, 0);
    /// # Ok(()) }
    /// ```
    pub fn backplane(&self) -> RedisBackplane {
        RedisBackplane {
            backend: self.clone(),
            counters: Arc::new(Counters::default()),
        }
    }
}

impl RedisBackplane {
    /// A snapshot of the counters.
    ///
    /// ```no_run
    /// # fn demo(plane: memstache_redis::RedisBackplane) {
    /// let s = plane.stats();
    /// println!("{} received, {} dropped, {} reconnects", s.received, s.dropped_oversized, s.reconnects);
    /// # }
    /// ```
    pub fn stats(&self) -> BackplaneStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BackplaneStats {
            published: get(&c.published),
            received: get(&c.received),
            dropped_oversized: get(&c.dropped_oversized),
            disconnects: get(&c.disconnects),
            reconnects: get(&c.reconnects),
        }
    }
}

#[async_trait]
impl Backplane for RedisBackplane {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<()> {
        let op = |e: Error| e.with_operation("publish").with_context("backend", "redis");
        if payload.len() > MAX_BACKPLANE_MESSAGE {
            return Err(op(Error::new(
                ErrorKind::ValueTooLarge,
                "a backplane message is larger than MAX_BACKPLANE_MESSAGE",
            )));
        }
        self.backend
            .client()
            .publish(channel, payload)
            .await
            .map_err(op)?;
        bump(&self.counters.published);
        Ok(())
    }

    fn subscribe(
        &self,
        channel: &str,
        listener: Arc<dyn BackplaneListener>,
    ) -> Result<Subscription> {
        let rt = tokio::runtime::Handle::try_current().map_err(|e| {
            Error::new(
                ErrorKind::Unsupported,
                "the Redis backplane subscribes from within a Tokio runtime",
            )
            .with_operation("subscribe")
            .with_context("backend", "redis")
            .with_source(e)
        })?;
        let task = SubscriptionTask {
            config: self.backend.config().clone(),
            channel: channel.to_owned(),
            listener,
            counters: Arc::clone(&self.counters),
        };
        let handle = rt.spawn(task.run());
        Ok(Subscription::new(AbortOnDrop(handle.abort_handle())))
    }
}

/// Ends the subscription's task when the [`Subscription`] is dropped: its connection is
/// dropped with it (redis-rs's connection task ends, fred's client is told to quit).
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The wait before reconnect attempt `attempt` (0-based) of one loss: `min · 2^attempt`, at
/// most `max`.
fn backoff(min: Duration, max: Duration, attempt: u32) -> Duration {
    min.saturating_mul(1u32 << attempt.min(20)).min(max)
}

/// Why a live subscription ended.
#[derive(Debug, Clone, Copy)]
enum Lost {
    /// The connection closed or failed, or messages were missed.
    Connection,
    /// A ping failed or went unanswered within the ping interval.
    Ping,
}

struct SubscriptionTask {
    config: RedisConfig,
    channel: String,
    listener: Arc<dyn BackplaneListener>,
    counters: Arc<Counters>,
}

impl SubscriptionTask {
    /// Where to connect, in turn: the standalone server, the Sentinels' primary, or each
    /// cluster seed.
    fn targets(&self) -> Vec<SubscribeTo<'_>> {
        match &self.config.topology {
            Topology::Standalone { host, port } => vec![SubscribeTo::Node { host, port: *port }],
            Topology::Cluster { nodes } => nodes
                .iter()
                .map(|(host, port)| SubscribeTo::Node { host, port: *port })
                .collect(),
            _ => vec![SubscribeTo::SentinelPrimary],
        }
    }

    /// Connects and subscribes, bounded like the backend's connects (1.5 × the connect timeout:
    /// TCP, TLS, `AUTH`/`HELLO`, a Sentinel lookup and the confirmed `SUBSCRIBE`).
    async fn attempt(&self, to: SubscribeTo<'_>) -> Result<Subscriber> {
        let limit = self.config.connect_timeout + self.config.connect_timeout / 2;
        match tokio::time::timeout(limit, Subscriber::connect(&self.config, to, &self.channel))
            .await
        {
            Ok(r) => r,
            Err(elapsed) => Err(Error::new(
                ErrorKind::Timeout,
                "subscribing to the Redis backplane timed out",
            )
            .with_source(elapsed)),
        }
    }

    /// Runs until aborted: subscribe, serve, and after every loss report it and reconnect.
    async fn run(self) {
        let targets = self.targets();
        if targets.is_empty() {
            // (validation refuses a cluster without nodes)
            return;
        }
        let (min, max) = (
            self.config.backplane_min_backoff,
            self.config.backplane_max_backoff,
        );
        let mut next = 0usize;
        let mut after_loss = false;
        loop {
            let mut attempt = 0u32;
            let sub = loop {
                if after_loss || attempt > 0 {
                    // after a loss the first attempt waits too: a connection that is accepted
                    // and dropped at once must not make this loop spin
                    let n = if after_loss { attempt } else { attempt - 1 };
                    tokio::time::sleep(backoff(min, max, n)).await;
                }
                match self.attempt(targets[next % targets.len()]).await {
                    Ok(sub) => break sub,
                    Err(e) => {
                        tracing::debug!(
                            target: "memstache::redis",
                            kind = ?e.kind(),
                            attempt,
                            "backplane subscribe attempt failed"
                        );
                        attempt = attempt.saturating_add(1);
                        next = next.wrapping_add(1);
                    }
                }
            };
            if after_loss {
                bump(&self.counters.reconnects);
                tracing::info!(target: "memstache::redis", "backplane subscription re-established");
            }
            self.listener.connected();
            let mut sub = sub;
            let why = self.serve(&mut sub).await;
            self.listener.disconnected();
            bump(&self.counters.disconnects);
            tracing::warn!(
                target: "memstache::redis",
                reason = ?why,
                "backplane subscription lost; reconnecting"
            );
            sub.close().await;
            after_loss = true;
        }
    }

    /// Delivers messages and pings until the subscription is lost. The ping runs beside the
    /// reads, so messages keep flowing while it is in flight.
    async fn serve(&self, sub: &mut Subscriber) -> Lost {
        let every = self.config.backplane_ping_interval;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ping: Option<Pin<Box<tokio::time::Timeout<_>>>> = None;
        loop {
            tokio::select! {
                m = sub.next_message() => match m {
                    Some(payload) => self.deliver(&payload),
                    None => return Lost::Connection,
                },
                _ = tick.tick(), if ping.is_none() => {
                    ping = Some(Box::pin(tokio::time::timeout(every, sub.ping())));
                }
                r = async {
                    match ping.as_mut() {
                        Some(p) => p.await,
                        None => std::future::pending().await,
                    }
                }, if ping.is_some() => {
                    ping = None;
                    if !matches!(r, Ok(Ok(()))) {
                        return Lost::Ping;
                    }
                }
            }
        }
    }

    fn deliver(&self, payload: &[u8]) {
        if payload.len() > MAX_BACKPLANE_MESSAGE {
            bump(&self.counters.dropped_oversized);
            tracing::warn!(
                target: "memstache::redis",
                len = payload.len(),
                "dropped an oversized backplane message"
            );
            return;
        }
        bump(&self.counters.received);
        self.listener.message(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_bound() {
        let (min, max) = (Duration::from_millis(50), Duration::from_secs(2));
        let waits: Vec<u64> = (0..8)
            .map(|n| u64::try_from(backoff(min, max, n).as_millis()).unwrap())
            .collect();
        assert_eq!(waits, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(backoff(min, max, u32::MAX), max);
    }

    #[test]
    fn handles_are_send_sync() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<RedisBackplane>();
        check::<BackplaneStats>();
    }
}
