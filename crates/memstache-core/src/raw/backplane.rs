//! The backplane SPI: how the nodes of one cache tell each other which local (L1) copies to
//! drop.
//!
//! A backplane is a publish/subscribe transport of opaque messages on named channels. The cache
//! owns the message format (versioned, namespaced, checked on receipt: see `docs/tiers.md`);
//! a backplane only moves bytes, and reports whether its subscription is live. That report is
//! what keeps two tiers coherent: while a node is not subscribed it may miss invalidations, so
//! it stops trusting its L1 until [`BackplaneListener::connected`] is called again.
//!
//! `memstache-redis` implements it on Redis pub/sub ([`RedisBackend::backplane`]); the
//! in-process [`MemoryBackplane`] connects caches of one process (and tests).
//!
//! [`RedisBackend::backplane`]: https://docs.rs/memstache-redis

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;

use crate::{Error, ErrorKind, Result};

/// Largest backplane message the cache sends or accepts (a bigger one received is dropped and
/// counted). A backplane SHOULD refuse to deliver bigger payloads.
pub const MAX_BACKPLANE_MESSAGE: usize = 1 << 20;

/// What a backplane reports to the subscriber of a channel.
///
/// Calls come from the backplane's own task, in order; they MUST be cheap and MUST NOT block
/// (the cache's listener only touches in-process state).
pub trait BackplaneListener: Send + Sync + 'static {
    /// The subscription is live: every message published on the channel from now on will be
    /// delivered. A backplane MUST call it only once the server confirmed the subscription,
    /// and again after every reconnect.
    fn connected(&self);
    /// The subscription is lost, or may be (connection closed, health check unanswered):
    /// messages may be missed until the next [`connected`](Self::connected). A backplane MUST
    /// call it as soon as it suspects a loss, before reconnecting.
    fn disconnected(&self);
    /// A message published on the channel, possibly by this very node. The payload is
    /// untrusted bytes.
    fn message(&self, payload: &[u8]);
}

/// A publish/subscribe transport between the nodes of a cache (see the [`raw`](crate::raw)
/// module and `docs/tiers.md`).
///
/// Contract:
/// * `publish` MUST return `Ok` only once the server accepted the message; it delivers it to
///   every live subscription of `channel` (this node's included), in the order of the calls
///   of one publisher.
/// * `subscribe` MUST NOT wait on the network: it starts a background task that connects,
///   subscribes, reports through the listener, reconnects by itself (with backoff) and stops
///   when the returned [`Subscription`] is dropped.
/// * A subscription SHOULD check its connection's health (a periodic ping) so that a silent
///   loss (a network partition, a server that hangs) is reported as
///   [`disconnected`](BackplaneListener::disconnected) within a bounded time.
#[async_trait]
pub trait Backplane: fmt::Debug + Send + Sync + 'static {
    /// Short name for spans and errors, e.g. `"redis"`.
    fn name(&self) -> &'static str;

    /// Publishes `payload` on `channel`.
    async fn publish(&self, channel: &str, payload: Bytes) -> Result<()>;

    /// Subscribes `listener` to `channel` until the returned handle is dropped.
    fn subscribe(
        &self,
        channel: &str,
        listener: Arc<dyn BackplaneListener>,
    ) -> Result<Subscription>;
}

/// A live subscription: dropping it ends it (and the backplane's task for it).
#[must_use = "the subscription ends when this handle is dropped"]
pub struct Subscription {
    _guard: Box<dyn Any + Send + Sync>,
}

impl Subscription {
    /// A subscription that ends when `guard` is dropped (an abort handle, a channel sender…).
    pub fn new<G: Send + Sync + 'static>(guard: G) -> Self {
        Subscription {
            _guard: Box::new(guard),
        }
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subscription")
    }
}

/// An in-process backplane: caches built with clones of one `MemoryBackplane` are nodes of
/// one cluster inside a process. Delivery is synchronous (a `publish` has reached every
/// listener when it returns). [`disconnect`](Self::disconnect) and
/// [`reconnect`](Self::reconnect) simulate a lost connection, for tests.
///
/// ```
/// use memstache_core::raw::MemoryBackplane;
/// use memstache_core::tiers::LocalTier;
/// use memstache_core::MemStache;
///
/// let plane = MemoryBackplane::new();
/// let store = memstache_core::memory::MemoryBackend::new(); // shared: the "distributed" tier
/// let node = |plane: &MemoryBackplane| {
///     MemStache::builder()
///         .backend(store.clone())
///         .local_tier(LocalTier::new())
///         .backplane(plane.clone())
///         .build()
/// };
/// let (a, b) = (node(&plane)?, node(&plane)?);
/// # drop((a, b));
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct MemoryBackplane {
    inner: Arc<Mutex<Hub>>,
}

#[derive(Default)]
struct Hub {
    next: u64,
    connected: bool,
    subs: Vec<(u64, String, Arc<dyn BackplaneListener>)>,
    fail_publish: bool,
}

impl fmt::Debug for MemoryBackplane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hub = self.inner.lock();
        f.debug_struct("MemoryBackplane")
            .field("subscriptions", &hub.subs.len())
            .field("connected", &hub.connected)
            .finish()
    }
}

impl MemoryBackplane {
    /// A backplane with no subscriber yet, connected.
    pub fn new() -> Self {
        let plane = MemoryBackplane::default();
        plane.inner.lock().connected = true;
        plane
    }

    /// Every subscription loses its connection: listeners hear `disconnected`, messages
    /// published meanwhile reach nobody, and `publish` fails with
    /// [`ErrorKind::Unavailable`].
    pub fn disconnect(&self) {
        let subs = {
            let mut hub = self.inner.lock();
            hub.connected = false;
            hub.subs.clone()
        };
        for (_, _, l) in subs {
            l.disconnected();
        }
    }

    /// Every subscription is live again: listeners hear `connected`.
    pub fn reconnect(&self) {
        let subs = {
            let mut hub = self.inner.lock();
            hub.connected = true;
            hub.subs.clone()
        };
        for (_, _, l) in subs {
            l.connected();
        }
    }

    /// Makes `publish` fail (while connected) from now on, or not.
    pub fn fail_publish(&self, fail: bool) {
        self.inner.lock().fail_publish = fail;
    }

    /// Delivers `payload` on `channel` as if another node had published it (for tests of
    /// forged messages).
    pub fn inject(&self, channel: &str, payload: &[u8]) {
        let subs = self.inner.lock().subs.clone();
        for (_, ch, l) in subs {
            if ch == channel {
                l.message(payload);
            }
        }
    }
}

#[async_trait]
impl Backplane for MemoryBackplane {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<()> {
        let subs = {
            let hub = self.inner.lock();
            if !hub.connected || hub.fail_publish {
                return Err(Error::new(
                    ErrorKind::Unavailable,
                    "memory backplane is disconnected",
                ));
            }
            hub.subs.clone()
        };
        for (_, ch, l) in subs {
            if ch == channel {
                l.message(&payload);
            }
        }
        Ok(())
    }

    fn subscribe(
        &self,
        channel: &str,
        listener: Arc<dyn BackplaneListener>,
    ) -> Result<Subscription> {
        let (id, connected) = {
            let mut hub = self.inner.lock();
            hub.next += 1;
            let id = hub.next;
            hub.subs
                .push((id, channel.to_owned(), Arc::clone(&listener)));
            (id, hub.connected)
        };
        if connected {
            listener.connected();
        }
        struct Unsubscribe(std::sync::Weak<Mutex<Hub>>, u64);
        impl Drop for Unsubscribe {
            fn drop(&mut self) {
                if let Some(hub) = self.0.upgrade() {
                    hub.lock().subs.retain(|(id, _, _)| *id != self.1);
                }
            }
        }
        Ok(Subscription::new(Unsubscribe(
            Arc::downgrade(&self.inner),
            id,
        )))
    }
}
