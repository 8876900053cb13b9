//! A backplane subscriber on fred: a dedicated, non-reconnecting fred [`Client`] (one
//! connection) whose loss is seen on fred's error and connection-task events; memstache's
//! backplane does the reconnecting.
//!
//! fred resolves `SUBSCRIBE` as soon as it is written (its confirmation arrives out of band),
//! so the subscription is confirmed by a `PING` sent after it on the same connection: Redis
//! answers commands of one connection in order, so the `PONG` means the subscription is live.

use bytes::Bytes;
use fred::clients::Client;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::config::{ConnectionConfig, PerformanceConfig, ServerConfig};
use fred::types::{ConnectHandle, Value};
use memstache_core::Result;
use tokio::sync::broadcast::error::RecvError;

use super::{from_fred, to_fred_config};
use crate::client::raw::SubscribeTo;
use crate::config::RedisConfig;

/// Room for messages between fred's reader and the backplane task; a lagging receiver counts
/// as a lost subscription (messages were missed).
const MESSAGE_BUFFER: usize = 4096;

/// A fred client that is told to quit when dropped (also when the backplane task is aborted
/// mid-connect): fred's connection task holds its own reference and would keep the connection
/// open otherwise.
struct QuitOnDrop(Client);

impl Drop for QuitOnDrop {
    fn drop(&mut self) {
        let client = self.0.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = client.quit().await;
            });
        }
    }
}

/// One subscribed connection.
pub(crate) struct FredSubscriber {
    client: QuitOnDrop,
    messages: tokio::sync::broadcast::Receiver<fred::types::Message>,
    errors:
        tokio::sync::broadcast::Receiver<(fred::error::Error, Option<fred::types::config::Server>)>,
    task: ConnectHandle,
}

impl std::fmt::Debug for FredSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FredSubscriber")
    }
}

impl FredSubscriber {
    /// Connects to `to` (TLS, credentials and protocol from `config`) and subscribes to
    /// `channel`; returns once the server confirmed the subscription. Unbounded: the caller
    /// bounds it.
    pub(crate) async fn connect(
        config: &RedisConfig,
        to: SubscribeTo<'_>,
        channel: &str,
    ) -> Result<FredSubscriber> {
        let mut fc = to_fred_config(config)?;
        if let SubscribeTo::Node { host, port } = to {
            // one node, even of a cluster: classic pub/sub reaches every node
            fc.server = ServerConfig::new_centralized(host, port);
        }
        let perf = PerformanceConfig {
            default_command_timeout: config.command_timeout,
            broadcast_channel_capacity: MESSAGE_BUFFER,
            ..PerformanceConfig::default()
        };
        let conn = ConnectionConfig {
            connection_timeout: config.connect_timeout,
            internal_command_timeout: config.connect_timeout,
            ..ConnectionConfig::default()
        };
        let client = QuitOnDrop(Client::new(fc, Some(perf), Some(conn), None));
        let messages = client.0.message_rx();
        let errors = client.0.error_rx();
        let task = client.0.init().await.map_err(from_fred)?;
        client.0.subscribe(channel).await.map_err(from_fred)?;
        let _: Value = client.0.ping(None).await.map_err(from_fred)?;
        Ok(FredSubscriber {
            client,
            messages,
            errors,
            task,
        })
    }

    /// The next message's payload; `None` once the connection is closed or failed, or when
    /// messages were missed.
    pub(crate) async fn next_message(&mut self) -> Option<Bytes> {
        loop {
            tokio::select! {
                m = self.messages.recv() => match m {
                    Ok(m) => return Some(m.value.into_bytes().unwrap_or_default()),
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
                },
                e = self.errors.recv() => match e {
                    // the only events of a one-connection client without reconnects are its
                    // connection's failures
                    Ok(_) | Err(RecvError::Closed) => return None,
                    Err(RecvError::Lagged(_)) => continue,
                },
                _ = &mut self.task => return None,
            }
        }
    }

    /// A `PING` on the subscribed connection (unbounded: the caller bounds it).
    pub(crate) fn ping(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let client = self.client.0.clone();
        async move {
            client
                .ping::<Value>(None)
                .await
                .map(|_| ())
                .map_err(from_fred)
        }
    }

    /// Closes the connection (`QUIT`, sent by the drop guard).
    pub(crate) async fn close(self) {}
}
