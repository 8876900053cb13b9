//! [`RawClient`] on redis-rs 1.x: a `ConnectionManager` per pooled connection (standalone),
//! a `ClusterConnection` (cluster), or a multiplexed connection to the primary Sentinel names,
//! re-resolved after a connection error or a `READONLY` reply (Sentinel).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use memstache_core::{Error, ErrorKind, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, FromRedisValue, IntoConnectionInfo, ProtocolVersion,
    RedisConnectionInfo, Value,
};

use crate::client::{RawClient, SetPx};
use crate::config::{ReconnectPolicy, RedisConfig, Topology};
use crate::error::{from_redis_rs, is_noscript};

enum Conn {
    Single {
        conns: Vec<ConnectionManager>,
        next: AtomicUsize,
    },
    Cluster(ClusterConnection),
    Sentinel(Box<SentinelConn>),
}

/// A redis-rs connection set for one topology.
pub(crate) struct RedisRsClient {
    conn: Conn,
}

impl fmt::Debug for RedisRsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.conn {
            Conn::Single { conns, .. } => format!("standalone x{}", conns.len()),
            Conn::Cluster(_) => "cluster".to_owned(),
            Conn::Sentinel(_) => "sentinel".to_owned(),
        };
        f.debug_struct("RedisRsClient")
            .field("conn", &kind)
            .finish()
    }
}

fn tls_unavailable() -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        "TLS needs the `tls` feature of memstache-redis",
    )
}

fn addr(host: &str, port: u16, tls: bool) -> Result<ConnectionAddr> {
    if tls {
        if cfg!(feature = "tls") {
            Ok(ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: false,
                tls_params: None,
            })
        } else {
            Err(tls_unavailable())
        }
    } else {
        Ok(ConnectionAddr::Tcp(host.to_owned(), port))
    }
}

fn redis_info(config: &RedisConfig) -> RedisConnectionInfo {
    let mut info = RedisConnectionInfo::default()
        .set_db(i64::from(config.database.unwrap_or(0)))
        .set_protocol(if config.resp3 {
            ProtocolVersion::RESP3
        } else {
            ProtocolVersion::RESP2
        });
    if let Some(u) = &config.username {
        info = info.set_username(u);
    }
    if let Some(p) = &config.password {
        info = info.set_password(p);
    }
    info
}

fn connection_info(config: &RedisConfig, host: &str, port: u16) -> Result<ConnectionInfo> {
    let info = addr(host, port, config.tls)?
        .into_connection_info()
        .map_err(from_redis_rs)?;
    Ok(info.set_redis_settings(redis_info(config)))
}

fn none_if_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

fn manager_config(config: &RedisConfig) -> ConnectionManagerConfig {
    let mut c = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout))
        .set_response_timeout(none_if_zero(config.command_timeout));
    match config.reconnect {
        ReconnectPolicy::Never => c = c.set_number_of_retries(0),
        ReconnectPolicy::Constant {
            delay,
            max_attempts,
        } => {
            c = c
                .set_min_delay(delay)
                .set_max_delay(delay)
                .set_exponent_base(1.0)
                .set_number_of_retries(attempts(max_attempts));
        }
        ReconnectPolicy::Exponential {
            min_delay,
            max_delay,
            max_attempts,
        } => {
            c = c
                .set_min_delay(min_delay)
                .set_max_delay(max_delay)
                .set_exponent_base(2.0)
                .set_number_of_retries(attempts(max_attempts));
        }
    }
    c
}

/// redis-rs retries a reconnect `n` times per failure, then tries again on the next command;
/// "forever" is a large count.
fn attempts(max_attempts: u32) -> usize {
    if max_attempts == 0 {
        usize::MAX / 2
    } else {
        usize::try_from(max_attempts).unwrap_or(usize::MAX / 2)
    }
}

async fn bounded<T>(limit: Duration, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(elapsed) => Err(
            Error::new(ErrorKind::Timeout, "connecting to Redis timed out")
                .with_context("backend", "redis")
                .with_source(elapsed),
        ),
    }
}

impl RedisRsClient {
    pub(crate) async fn connect(config: &RedisConfig) -> Result<RedisRsClient> {
        let limit = config.connect_timeout + config.connect_timeout / 2;
        let conn = match &config.topology {
            Topology::Standalone { host, port } => {
                let info = connection_info(config, host, *port)?;
                let client = redis::Client::open(info).map_err(from_redis_rs)?;
                // One plain connection first: the connection manager retries failed handshakes
                // (a wrong password included) until our bound, hiding the real error.
                let probe = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(config.connect_timeout));
                bounded(limit, async {
                    client
                        .get_multiplexed_async_connection_with_config(&probe)
                        .await
                        .map_err(from_redis_rs)
                })
                .await?;
                let mut conns = Vec::with_capacity(config.pool_size);
                for _ in 0..config.pool_size {
                    let m = bounded(limit, async {
                        ConnectionManager::new_with_config(client.clone(), manager_config(config))
                            .await
                            .map_err(from_redis_rs)
                    })
                    .await?;
                    conns.push(m);
                }
                Conn::Single {
                    conns,
                    next: AtomicUsize::new(0),
                }
            }
            Topology::Cluster { nodes } => {
                let infos = nodes
                    .iter()
                    .map(|(h, p)| connection_info(config, h, *p))
                    .collect::<Result<Vec<_>>>()?;
                let mut b = redis::cluster::ClusterClientBuilder::new(infos)
                    .connection_timeout(config.connect_timeout)
                    .use_protocol(if config.resp3 {
                        ProtocolVersion::RESP3
                    } else {
                        ProtocolVersion::RESP2
                    });
                if let Some(u) = &config.username {
                    b = b.username(u);
                }
                if let Some(p) = &config.password {
                    b = b.password(p);
                }
                if let Some(t) = none_if_zero(config.command_timeout) {
                    b = b.response_timeout(t);
                }
                if config.tls {
                    if cfg!(feature = "tls") {
                        b = b.tls(redis::TlsMode::Secure);
                    } else {
                        return Err(tls_unavailable());
                    }
                }
                let client = b.build().map_err(from_redis_rs)?;
                let c = bounded(limit, async {
                    client.get_async_connection().await.map_err(from_redis_rs)
                })
                .await?;
                Conn::Cluster(c)
            }
            Topology::Sentinel {
                sentinels,
                service_name,
            } => {
                let addrs = sentinels
                    .iter()
                    .map(|(h, p)| addr(h, *p, config.tls))
                    .collect::<Result<Vec<_>>>()?;
                let mut b =
                    SentinelClientBuilder::new(addrs, service_name, SentinelServerType::Master)
                        .map_err(from_redis_rs)?
                        .set_client_to_redis_db(i64::from(config.database.unwrap_or(0)))
                        .set_client_to_redis_protocol(if config.resp3 {
                            ProtocolVersion::RESP3
                        } else {
                            ProtocolVersion::RESP2
                        });
                if let Some(u) = &config.username {
                    b = b.set_client_to_redis_username(u);
                }
                if let Some(p) = &config.password {
                    b = b.set_client_to_redis_password(p);
                }
                if config.tls {
                    b = b
                        .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
                }
                let client = b.build().map_err(from_redis_rs)?;
                let s = SentinelConn {
                    sentinel: tokio::sync::Mutex::new(client),
                    current: parking_lot::RwLock::new(None),
                    limit,
                    command_timeout: none_if_zero(config.command_timeout),
                };
                s.connection().await?;
                Conn::Sentinel(Box::new(s))
            }
        };
        Ok(RedisRsClient { conn })
    }

    async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        match &self.conn {
            Conn::Single { conns, next } => {
                let i = if conns.len() == 1 {
                    0
                } else {
                    next.fetch_add(1, Ordering::Relaxed) % conns.len()
                };
                let mut c = conns[i].clone();
                cmd.query_async(&mut c).await.map_err(from_redis_rs)
            }
            Conn::Cluster(c) => {
                let mut c = c.clone();
                cmd.query_async(&mut c).await.map_err(from_redis_rs)
            }
            Conn::Sentinel(s) => s.run(cmd).await,
        }
    }
}

/// The connection to the primary a Sentinel names; dropped after a connection error or a
/// `READONLY` reply (the primary was demoted) so the next command asks the Sentinels again.
struct SentinelConn {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    current: parking_lot::RwLock<Option<MultiplexedConnection>>,
    limit: Duration,
    command_timeout: Option<Duration>,
}

impl SentinelConn {
    async fn connection(&self) -> Result<MultiplexedConnection> {
        if let Some(c) = self.current.read().as_ref() {
            return Ok(c.clone());
        }
        let mut sentinel = self.sentinel.lock().await;
        if let Some(c) = self.current.read().as_ref() {
            return Ok(c.clone());
        }
        let cfg = redis::AsyncConnectionConfig::new().set_response_timeout(self.command_timeout);
        let c = bounded(self.limit, async {
            let client = sentinel.async_get_client().await.map_err(from_redis_rs)?;
            client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
                .map_err(from_redis_rs)
        })
        .await?;
        *self.current.write() = Some(c.clone());
        Ok(c)
    }

    async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        let mut c = self.connection().await?;
        match cmd.query_async(&mut c).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() || e.code() == Some("READONLY") {
                    *self.current.write() = None;
                }
                Err(from_redis_rs(e))
            }
        }
    }
}

fn value_list(v: Value) -> Result<Vec<Option<Bytes>>> {
    match v {
        Value::Array(items) => Ok(items
            .into_iter()
            .map(|item| match item {
                Value::BulkString(b) => Some(Bytes::from(b)),
                Value::SimpleString(s) => Some(Bytes::from(s)),
                _ => None,
            })
            .collect()),
        Value::Nil => Ok(Vec::new()),
        _ => Err(Error::new(
            ErrorKind::Backend,
            "unexpected reply type from Redis for a multi-key read",
        )
        .with_context("backend", "redis")),
    }
}

fn set_cmd(key: &str, value: &[u8], px_ms: Option<u64>) -> Cmd {
    let mut c = redis::cmd("SET");
    c.arg(key).arg(value);
    if let Some(ms) = px_ms {
        c.arg("PX").arg(ms);
    }
    c
}

fn script_cmd(name: &str, script_or_sha: &str, keys: &[&str], arg: &str) -> Cmd {
    let mut c = redis::cmd(name);
    c.arg(script_or_sha).arg(keys.len()).arg(keys).arg(arg);
    c
}

#[async_trait]
impl RawClient for RedisRsClient {
    fn name(&self) -> &'static str {
        "redis-rs"
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let v: Option<Vec<u8>> = self.run(redis::cmd("GET").arg(key)).await?;
        Ok(v.map(Bytes::from))
    }

    async fn set_px(&self, key: &str, value: Bytes, px_ms: Option<u64>) -> Result<()> {
        self.run(&set_cmd(key, &value, px_ms)).await
    }

    async fn set_many_px(&self, entries: Vec<SetPx>) -> Result<()> {
        // Concurrent commands on a multiplexed connection are pipelined: one round trip per
        // node (the cluster connection routes each command by its key).
        let cmds: Vec<Cmd> = entries
            .iter()
            .map(|e| set_cmd(&e.key, &e.value, e.px_ms))
            .collect();
        futures::future::try_join_all(cmds.iter().map(|c| self.run::<()>(c)))
            .await
            .map(|_| ())
    }

    async fn set_nx_px(&self, key: &str, value: Bytes, px_ms: Option<u64>) -> Result<bool> {
        let mut c = set_cmd(key, &value, px_ms);
        c.arg("NX");
        let v: Value = self.run(&c).await?;
        Ok(!matches!(v, Value::Nil))
    }

    async fn del_if_equals(&self, key: &str, expected: Bytes) -> Result<bool> {
        let mut c = redis::cmd("EVAL");
        c.arg(crate::scripts::DEL_IF_EQUALS)
            .arg(1)
            .arg(key)
            .arg(expected.as_ref());
        let n: i64 = self.run(&c).await?;
        Ok(n > 0)
    }

    async fn unlink(&self, keys: &[&str]) -> Result<u64> {
        self.run(redis::cmd("UNLINK").arg(keys)).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let n: u64 = self.run(redis::cmd("EXISTS").arg(key)).await?;
        Ok(n > 0)
    }

    async fn mget(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let v: Value = self.run(redis::cmd("MGET").arg(keys)).await?;
        value_list(v)
    }

    async fn evalsha(
        &self,
        sha: &str,
        keys: &[&str],
        arg: &str,
    ) -> Result<Option<Vec<Option<Bytes>>>> {
        match self
            .run::<Value>(&script_cmd("EVALSHA", sha, keys, arg))
            .await
        {
            Ok(v) => value_list(v).map(Some),
            Err(e) if is_noscript_error(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn eval(&self, script: &str, keys: &[&str], arg: &str) -> Result<Vec<Option<Bytes>>> {
        let v: Value = self.run(&script_cmd("EVAL", script, keys, arg)).await?;
        value_list(v)
    }

    async fn script_load(&self, script: &str) -> Result<String> {
        self.run(redis::cmd("SCRIPT").arg("LOAD").arg(script)).await
    }

    async fn config_set_all(&self, param: &str, value: &str) -> Result<()> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("SET").arg(param).arg(value);
        match &self.conn {
            Conn::Cluster(c) => {
                use redis::cluster_routing::{
                    MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo,
                };
                let mut c = c.clone();
                c.route_command(
                    cmd,
                    RoutingInfo::MultiNode((
                        MultipleNodeRoutingInfo::AllMasters,
                        Some(ResponsePolicy::AllSucceeded),
                    )),
                )
                .await
                .map(|_| ())
                .map_err(from_redis_rs)
            }
            _ => self.run(&cmd).await,
        }
    }

    async fn quit(&self) {}
}

/// `NOSCRIPT` as redis-rs reports it (kept as the source of the mapped error).
fn is_noscript_error(e: &Error) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<redis::RedisError>())
        .is_some_and(|r| r.code().is_some_and(is_noscript))
}
