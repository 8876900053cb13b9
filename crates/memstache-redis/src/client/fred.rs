//! [`RawClient`] on fred 10.

mod error;
mod subscriber;

use bytes::Bytes;
use fred::clients::{Client, Pipeline, Pool};
use fred::interfaces::{
    ClientLike, ClusterInterface, ConfigInterface, KeysInterface, LuaInterface, ServerInterface,
};
use fred::types::config::{
    Config, ConnectionConfig, PerformanceConfig, ReconnectPolicy as FredReconnect, ServerConfig,
};
use fred::types::{Expiration, RespVersion, Value};
use memstache_core::{Error, ErrorKind, Result};

use self::error::from_fred;
pub(crate) use self::subscriber::FredSubscriber;
use super::raw::{Op, RawClient, Reply, SetPx};
use crate::config::{ReconnectPolicy, RedisConfig, Topology};
use crate::error::{check_replicas, is_noscript, too_large};
use crate::scripts::TOO_LARGE;

/// A fred connection pool.
#[derive(Debug)]
pub(crate) struct FredClient {
    pool: Pool,
    cluster: bool,
    /// `WAIT numreplicas timeout_ms` after every write ([`crate::Durability`]).
    wait: Option<(i64, i64)>,
}

fn millis_u32(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// rustls with the platform's roots, or with the configured private roots only.
#[cfg(feature = "tls")]
fn tls_connector(config: &RedisConfig) -> Result<fred::types::config::TlsConnector> {
    use fred::types::config::TlsConnector;
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    use rustls::pki_types::PrivateKeyDer;

    let client = config
        .tls_client_cert_pem
        .as_ref()
        .zip(config.tls_client_key_pem.as_ref());
    if config.tls_ca_pem.is_none() && client.is_none() {
        return TlsConnector::default_rustls().map_err(from_fred);
    }
    let bad = |message: &'static str| Error::new(ErrorKind::InvalidConfig, message);
    let mut roots = rustls::RootCertStore::empty();
    match &config.tls_ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| bad("tls_ca_pem is not valid PEM").with_source(e))?;
                roots.add(cert).map_err(|e| {
                    bad("tls_ca_pem holds a certificate rustls cannot use").with_source(e)
                })?;
            }
            if roots.is_empty() {
                return Err(bad("tls_ca_pem holds no certificate"));
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(bad("no usable platform root certificates for TLS"));
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("rustls refused its default protocol versions").with_source(e))?
        .with_root_certificates(roots);
    let tls = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad("tls_client_cert_pem is not valid PEM").with_source(e))?;
            // the key's own parse error is not kept: it could quote key material
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|_| bad("tls_client_key_pem is not a PEM private key"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("rustls refused the client certificate or key").with_source(e))?
        }
    };
    Ok(TlsConnector::from(tls))
}

fn to_fred_config(config: &RedisConfig) -> Result<Config> {
    let server = match &config.topology {
        Topology::Standalone { host, port } => ServerConfig::new_centralized(host.as_str(), *port),
        Topology::Cluster { nodes } => {
            ServerConfig::new_clustered(nodes.iter().map(|(h, p)| (h.as_str(), *p)).collect())
        }
        Topology::Sentinel {
            sentinels,
            service_name,
        } => ServerConfig::new_sentinel(
            sentinels.iter().map(|(h, p)| (h.as_str(), *p)).collect(),
            service_name.as_str(),
        ),
    };
    let mut fc = Config {
        server,
        username: config.username.clone(),
        password: config.password.clone(),
        database: config.database,
        fail_fast: true,
        version: if config.resp3 {
            RespVersion::RESP3
        } else {
            RespVersion::RESP2
        },
        ..Config::default()
    };
    if config.tls {
        #[cfg(feature = "tls")]
        {
            fc.tls = Some(tls_connector(config)?.into());
        }
        #[cfg(not(feature = "tls"))]
        {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "TLS needs the `tls` feature of memstache-redis",
            ));
        }
    }
    let _ = &mut fc;
    Ok(fc)
}

impl FredClient {
    pub(crate) async fn connect(config: &RedisConfig) -> Result<FredClient> {
        let fc = to_fred_config(config)?;
        let perf = PerformanceConfig {
            default_command_timeout: config.command_timeout,
            ..PerformanceConfig::default()
        };
        let conn = ConnectionConfig {
            connection_timeout: config.connect_timeout,
            internal_command_timeout: config.connect_timeout,
            tcp: fred::types::config::TcpConfig {
                nodelay: Some(config.tcp_nodelay),
                ..Default::default()
            },
            ..ConnectionConfig::default()
        };
        let policy = match config.reconnect {
            ReconnectPolicy::Never => None,
            ReconnectPolicy::Constant {
                delay,
                max_attempts,
            } => Some(FredReconnect::new_constant(max_attempts, millis_u32(delay))),
            ReconnectPolicy::Exponential {
                min_delay,
                max_delay,
                max_attempts,
            } => Some(FredReconnect::new_exponential(
                max_attempts,
                millis_u32(min_delay),
                millis_u32(max_delay),
                2,
            )),
        };
        let pool =
            Pool::new(fc, Some(perf), Some(conn), policy, config.pool_size).map_err(from_fred)?;
        // `init` returns the first connection error (fail_fast); the outer timeout also covers
        // DNS and Sentinel discovery.
        let bound = config.connect_timeout + config.connect_timeout / 2;
        match tokio::time::timeout(bound, pool.init()).await {
            Ok(Ok(_handle)) => {}
            Ok(Err(e)) => {
                let _ = tokio::time::timeout(bound, pool.quit()).await;
                return Err(from_fred(e).with_operation("connect"));
            }
            Err(elapsed) => {
                let _ = tokio::time::timeout(bound, pool.quit()).await;
                return Err(
                    Error::new(ErrorKind::Timeout, "connecting to Redis timed out")
                        .with_operation("connect")
                        .with_context("backend", "redis")
                        .with_source(elapsed),
                );
            }
        }
        Ok(FredClient {
            pool,
            cluster: config.topology.is_cluster(),
            wait: config.durability.wait(),
        })
    }

    /// A pipeline on one of the pool's clients (one connection): the writes queued on it and
    /// the `WAIT` [`durable`](Self::durable) appends travel together.
    fn pipeline(&self) -> Pipeline<Client> {
        self.pool.next().pipeline()
    }

    /// Appends `WAIT` to `p`, sends it and fails unless enough replicas acknowledged; the
    /// replies of the queued writes, in order.
    async fn durable(
        &self,
        p: Pipeline<Client>,
        (replicas, timeout_ms): (i64, i64),
    ) -> Result<Vec<Value>> {
        let _: Value = p.wait(replicas, timeout_ms).await.map_err(from_fred)?;
        let mut replies: Vec<Value> = p.all().await.map_err(from_fred)?;
        let acked = replies.pop().and_then(|v| v.as_i64()).unwrap_or(0);
        check_replicas(acked, replicas)?;
        Ok(replies)
    }

    /// The reply of a pipeline of one write.
    async fn durable_one(&self, p: Pipeline<Client>, wait: (i64, i64)) -> Result<Value> {
        Ok(self.durable(p, wait).await?.pop().unwrap_or(Value::Null))
    }
}

/// A script's reply, one bulk or nil per element; [`TOO_LARGE`] in place of a value fails the
/// whole reply with `ValueTooLarge`.
fn value_list(v: Value) -> Result<Vec<Option<Bytes>>> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::Null => Ok(None),
                Value::Integer(TOO_LARGE) => Err(too_large()),
                other => Ok(other.into_bytes()),
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(Error::new(
            ErrorKind::Backend,
            "unexpected reply type from the memstache read script",
        )
        .with_context("backend", "redis")),
    }
}

fn px(ms: Option<u64>) -> Option<Expiration> {
    ms.map(|ms| Expiration::PX(i64::try_from(ms).unwrap_or(i64::MAX)))
}

/// Owned keys for fred, copied into one shared buffer and handed out as slices of it: two
/// allocations per batch instead of one per key.
fn owned(keys: &[&str]) -> Vec<fred::types::Key> {
    let mut buf = bytes::BytesMut::with_capacity(keys.iter().map(|k| k.len()).sum());
    for k in keys {
        buf.extend_from_slice(k.as_bytes());
    }
    let buf = buf.freeze();
    let mut at = 0;
    keys.iter()
        .map(|k| {
            let key = fred::types::Key::from(buf.slice(at..at + k.len()));
            at += k.len();
            key
        })
        .collect()
}

/// Queues `EVAL script n keys… args…` on a pipeline (fred's pipelines have no script
/// interface; the command is routed by its first key).
async fn queue_eval(
    p: &Pipeline<Client>,
    script: &str,
    keys: &[&str],
    args: Vec<Value>,
) -> Result<()> {
    let mut all = Vec::with_capacity(2 + keys.len() + args.len());
    all.push(Value::from(script));
    all.push(Value::Integer(
        i64::try_from(keys.len()).unwrap_or(i64::MAX),
    ));
    all.extend(keys.iter().map(|k| Value::from(*k)));
    all.extend(args);
    let cmd =
        fred::types::CustomCommand::new_static("EVAL", fred::types::ClusterHash::FirstKey, false);
    let _: Value = p.custom(cmd, all).await.map_err(from_fred)?;
    Ok(())
}

impl RawClient for FredClient {
    fn name(&self) -> &'static str {
        "fred"
    }

    async fn getrange(&self, key: &str, len: usize) -> Result<Bytes> {
        self.pool
            .getrange(key, 0, len.saturating_sub(1))
            .await
            .map_err(from_fred)
    }

    async fn set_px(&self, key: &str, value: Bytes, px_ms: Option<u64>) -> Result<()> {
        if let Some(wait) = self.wait {
            let p = self.pipeline();
            let _: Value = p
                .set(key, value, px(px_ms), None, false)
                .await
                .map_err(from_fred)?;
            return self.durable(p, wait).await.map(|_| ());
        }
        self.pool
            .set::<(), _, _>(key, value, px(px_ms), None, false)
            .await
            .map_err(from_fred)
    }

    async fn set_many_px(&self, entries: Vec<SetPx>) -> Result<()> {
        if let Some(wait) = self.wait {
            let p = self.pipeline();
            for e in entries {
                let _: Value = p
                    .set(e.key, e.value, px(e.px_ms), None, false)
                    .await
                    .map_err(from_fred)?;
            }
            return self.durable(p, wait).await.map(|_| ());
        }
        // Concurrent commands on one connection are written back to back (fred feeds up to
        // `max_feed_count` frames per flush): one round trip per node, routed per key.
        let futs = entries.into_iter().map(|e| {
            self.pool
                .set::<(), _, _>(e.key, e.value, px(e.px_ms), None, false)
        });
        futures::future::try_join_all(futs)
            .await
            .map(|_| ())
            .map_err(from_fred)
    }

    async fn set_nx_px(&self, key: &str, value: Bytes, px_ms: Option<u64>) -> Result<bool> {
        if let Some(wait) = self.wait {
            let p = self.pipeline();
            let _: Value = p
                .set(
                    key,
                    value,
                    px(px_ms),
                    Some(fred::types::SetOptions::NX),
                    false,
                )
                .await
                .map_err(from_fred)?;
            return Ok(!self.durable_one(p, wait).await?.is_null());
        }
        let v: Value = self
            .pool
            .set(
                key,
                value,
                px(px_ms),
                Some(fred::types::SetOptions::NX),
                false,
            )
            .await
            .map_err(from_fred)?;
        Ok(!v.is_null())
    }

    async fn del_if_equals(&self, key: &str, expected: Bytes) -> Result<bool> {
        if let Some(wait) = self.wait {
            let p = self.pipeline();
            queue_eval(
                &p,
                crate::scripts::DEL_IF_EQUALS,
                &[key],
                vec![Value::Bytes(expected)],
            )
            .await?;
            return Ok(self.durable_one(p, wait).await?.as_i64().unwrap_or(0) > 0);
        }
        let n: i64 = self
            .pool
            .eval(
                crate::scripts::DEL_IF_EQUALS,
                vec![key.to_owned()],
                vec![Value::Bytes(expected)],
            )
            .await
            .map_err(from_fred)?;
        Ok(n > 0)
    }

    async fn unlink(&self, keys: &[&str]) -> Result<u64> {
        let n: i64 = if let Some(wait) = self.wait {
            let p = self.pipeline();
            let _: Value = p.unlink(owned(keys)).await.map_err(from_fred)?;
            self.durable_one(p, wait).await?.as_i64().unwrap_or(0)
        } else {
            self.pool.unlink(owned(keys)).await.map_err(from_fred)?
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let n: i64 = self.pool.exists(key).await.map_err(from_fred)?;
        Ok(n > 0)
    }

    async fn evalsha(
        &self,
        sha: &str,
        keys: &[&str],
        arg: &str,
    ) -> Result<Option<Vec<Option<Bytes>>>> {
        match self
            .pool
            .evalsha::<Value, _, _, _>(sha, owned(keys), arg)
            .await
        {
            Ok(v) => value_list(v).map(Some),
            Err(e) if is_noscript(e.details()) => Ok(None),
            Err(e) => Err(from_fred(e)),
        }
    }

    async fn eval(&self, script: &str, keys: &[&str], arg: &str) -> Result<Vec<Option<Bytes>>> {
        let v: Value = self
            .pool
            .eval(script, owned(keys), arg)
            .await
            .map_err(from_fred)?;
        value_list(v)
    }

    async fn eval_bytes(
        &self,
        script: &str,
        keys: &[&str],
        args: Vec<Bytes>,
    ) -> Result<Vec<Option<Bytes>>> {
        let args: Vec<Value> = args.into_iter().map(Value::Bytes).collect();
        if let Some(wait) = self.wait {
            let p = self.pipeline();
            queue_eval(&p, script, keys, args).await?;
            return value_list(self.durable_one(p, wait).await?);
        }
        let v: Value = self
            .pool
            .eval(script, owned(keys), args)
            .await
            .map_err(from_fred)?;
        value_list(v)
    }

    async fn script_load(&self, script: &str) -> Result<String> {
        self.pool.script_load(script).await.map_err(from_fred)
    }

    async fn config_set_all(&self, param: &str, value: &str) -> Result<()> {
        if !self.cluster {
            self.pool
                .config_set(param.to_owned(), value)
                .await
                .map_err(from_fred)?;
            return Ok(());
        }
        let client = self.pool.next();
        let primaries = client
            .cached_cluster_state()
            .map(|s| s.unique_primary_nodes())
            .unwrap_or_default();
        for server in &primaries {
            client
                .with_cluster_node(server.clone())
                .config_set(param.to_owned(), value)
                .await
                .map_err(from_fred)?;
        }
        Ok(())
    }

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<u64> {
        // routed by the channel's slot on a cluster: one publisher's messages leave from one
        // node, in order (the cluster bus broadcasts them from there to every node)
        let cmd = fred::types::CustomCommand::new_static(
            "PUBLISH",
            fred::types::ClusterHash::FirstKey,
            false,
        );
        let n: i64 = self
            .pool
            .custom(cmd, vec![Value::from(channel), Value::Bytes(payload)])
            .await
            .map_err(from_fred)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn batch(&self, ops: &[Op]) -> Result<Vec<Result<Reply>>> {
        // one fred pipeline: its commands are written back to back and, on a cluster, each is
        // routed to the node of its key
        let p = self.pipeline();
        for op in ops {
            let queued: std::result::Result<Value, _> = match op {
                Op::GetRange { key, len } => {
                    p.getrange(key.as_str(), 0, len.saturating_sub(1)).await
                }
                Op::Set(e) => {
                    p.set(e.key.as_str(), e.value.clone(), px(e.px_ms), None, false)
                        .await
                }
                Op::Unlink { key } => p.unlink(key.as_str()).await,
                Op::Exists { key } => p.exists(key.as_str()).await,
            };
            queued.map_err(from_fred)?;
        }
        let replies: Vec<std::result::Result<Value, fred::error::Error>> = p.try_all().await;
        if replies.len() != ops.len() {
            // fred answers a batch that failed as a whole (connection lost) with its one error
            if let Some(Err(e)) = replies.into_iter().find(std::result::Result::is_err) {
                return Err(from_fred(e));
            }
            return Err(
                Error::internal("a pipelined batch returned fewer replies than commands")
                    .with_context("backend", "redis"),
            );
        }
        Ok(ops
            .iter()
            .zip(replies)
            .map(|(op, r)| {
                let v = r.map_err(from_fred)?;
                Ok(match op {
                    Op::GetRange { .. } => Reply::Bytes(v.into_bytes().unwrap_or_default()),
                    Op::Set(_) => Reply::Done,
                    Op::Unlink { .. } | Op::Exists { .. } => {
                        Reply::Count(u64::try_from(v.as_i64().unwrap_or(0)).unwrap_or(0))
                    }
                })
            })
            .collect())
    }

    async fn quit(&self) {
        let _ = self.pool.quit().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys come back whole and in order, each a slice of one buffer.
    #[test]
    fn owned_keys_keep_order_and_bytes() {
        let keys = ["a", "", "{tag}:key-2", "ü", "a"];
        let got = owned(&keys);
        let back: Vec<&[u8]> = got.iter().map(fred::types::Key::as_bytes).collect();
        let want: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        assert_eq!(back, want);
        assert!(owned(&[]).is_empty());
    }
}
