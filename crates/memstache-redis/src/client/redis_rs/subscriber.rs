//! A backplane subscriber on redis-rs: a dedicated [`redis::aio::PubSub`] connection (split
//! into its sink, for `SUBSCRIBE` and `PING`, and its message stream).

use bytes::Bytes;
use futures::StreamExt;
use memstache_core::Result;
use redis::Value;
use redis::aio::{PubSubSink, PubSubStream};

use super::{connection_info, from_redis_rs, open_client, sentinel_client};
use crate::client::raw::SubscribeTo;
use crate::config::{RedisConfig, Topology};

/// One subscribed connection.
pub(crate) struct RedisRsSubscriber {
    sink: PubSubSink,
    stream: PubSubStream,
}

impl std::fmt::Debug for RedisRsSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisRsSubscriber")
    }
}

impl RedisRsSubscriber {
    /// Connects to `to` (TLS, credentials and protocol from `config`) and subscribes to
    /// `channel`; returns once the server confirmed the subscription. Unbounded: the caller
    /// bounds it.
    pub(crate) async fn connect(
        config: &RedisConfig,
        to: SubscribeTo<'_>,
        channel: &str,
    ) -> Result<RedisRsSubscriber> {
        let client = match to {
            SubscribeTo::Node { host, port } => {
                // (a cluster node only has database 0, which validation ensures)
                open_client(config, connection_info(config, host, port)?)?
            }
            SubscribeTo::SentinelPrimary => {
                let Topology::Sentinel {
                    sentinels,
                    service_name,
                } = &config.topology
                else {
                    return Err(memstache_core::Error::internal(
                        "a Sentinel subscription without a Sentinel topology",
                    ));
                };
                sentinel_client(config, sentinels, service_name)?
                    .async_get_client()
                    .await
                    .map_err(from_redis_rs)?
            }
        };
        let pubsub = client.get_async_pubsub().await.map_err(from_redis_rs)?;
        let (mut sink, stream) = pubsub.split();
        // answered once the server has confirmed the subscription
        sink.subscribe(channel).await.map_err(from_redis_rs)?;
        Ok(RedisRsSubscriber { sink, stream })
    }

    /// The next message's payload; `None` once the connection is closed or failed.
    pub(crate) async fn next_message(&mut self) -> Option<Bytes> {
        let msg = self.stream.next().await?;
        Some(Bytes::copy_from_slice(msg.get_payload_bytes()))
    }

    /// A `PING` on the subscribed connection (unbounded: the caller bounds it).
    pub(crate) fn ping(&self) -> impl Future<Output = Result<()>> + Send + 'static {
        let mut sink = self.sink.clone();
        async move {
            sink.ping::<Value>()
                .await
                .map(|_| ())
                .map_err(from_redis_rs)
        }
    }

    /// Closes the connection (dropping the stream ends redis-rs's connection task).
    pub(crate) async fn close(self) {}
}
