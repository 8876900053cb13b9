//! [`RawClient`] on redis-rs 1.x: reconnecting multiplexed connections (standalone; Sentinel,
//! re-resolving the primary after a connection error or a `READONLY` reply), or a
//! `ClusterConnection` (cluster).

mod error;
mod subscriber;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use memstache_core::{Error, ErrorKind, Result};
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, FromRedisValue, IntoConnectionInfo, Pipeline,
    ProtocolVersion, RedisConnectionInfo, Value,
};

use self::error::from_redis_rs;
pub(crate) use self::subscriber::RedisRsSubscriber;
use super::raw::{Op, RawClient, Reply, SetPx};
use crate::config::{ReconnectPolicy, RedisConfig, Topology};
use crate::error::{RedactedReply, check_replicas, is_noscript, too_large};
use crate::scripts::TOO_LARGE;

enum Conn {
    /// Standalone or Sentinel: `pool_size` reconnecting multiplexed connections.
    Single {
        conns: Vec<Reconnecting>,
        next: AtomicUsize,
    },
    Cluster(ClusterConnection),
}

/// A redis-rs connection set for one topology.
pub(crate) struct RedisRsClient {
    conn: Conn,
    /// `WAIT numreplicas timeout_ms` after every write ([`crate::Durability`]).
    wait: Option<(i64, i64)>,
}

impl fmt::Debug for RedisRsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.conn {
            Conn::Single { conns, .. } => format!("{} connection(s)", conns.len()),
            Conn::Cluster(_) => "cluster".to_owned(),
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
    Ok(info
        .set_redis_settings(redis_info(config))
        .set_tcp_settings(tcp_settings(config)))
}

/// `TCP_NODELAY` as configured (redis-rs 1.x leaves it off by default).
fn tcp_settings(config: &RedisConfig) -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default().set_nodelay(config.tcp_nodelay)
}

/// The configured private roots and client certificate, for redis-rs (`None`: the platform's
/// roots and no client certificate).
#[cfg(feature = "tls")]
fn tls_certs(config: &RedisConfig) -> Option<redis::TlsCertificates> {
    let client_tls = match (&config.tls_client_cert_pem, &config.tls_client_key_pem) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: cert.clone(),
            client_key: key.clone(),
        }),
        _ => None,
    };
    if client_tls.is_none() && config.tls_ca_pem.is_none() {
        return None;
    }
    Some(redis::TlsCertificates {
        client_tls,
        root_cert: config.tls_ca_pem.clone(),
    })
}

/// A client for one server, verifying TLS against the configured roots when there are any.
fn open_client(config: &RedisConfig, info: ConnectionInfo) -> Result<redis::Client> {
    #[cfg(feature = "tls")]
    if let Some(certs) = tls_certs(config) {
        return redis::Client::build_with_tls(info, certs).map_err(from_redis_rs);
    }
    let _ = config;
    redis::Client::open(info).map_err(from_redis_rs)
}

fn none_if_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// A client that asks the Sentinels for the current primary of `service_name` (with the
/// configured credentials, protocol and TLS for both the Sentinels and the primary).
fn sentinel_client(
    config: &RedisConfig,
    sentinels: &[(String, u16)],
    service_name: &str,
) -> Result<SentinelClient> {
    let addrs = sentinels
        .iter()
        .map(|(h, p)| addr(h, *p, config.tls))
        .collect::<Result<Vec<_>>>()?;
    let mut b = SentinelClientBuilder::new(addrs, service_name, SentinelServerType::Master)
        .map_err(from_redis_rs)?
        .set_client_to_redis_db(i64::from(config.database.unwrap_or(0)))
        .set_client_to_redis_tcp_settings(tcp_settings(config))
        .set_client_to_sentinel_tcp_settings(tcp_settings(config))
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
        #[cfg(feature = "tls")]
        if let Some(certs) = tls_certs(config) {
            b = b
                .set_client_to_redis_certificates(certs.clone())
                .set_client_to_sentinel_certificates(certs);
        }
    }
    b.build().map_err(from_redis_rs)
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
                let client = open_client(config, info)?;
                let mut conns = Vec::with_capacity(config.pool_size);
                for _ in 0..config.pool_size {
                    let c = Reconnecting::new(Connector::Direct(Box::new(client.clone())), config);
                    c.connection().await?;
                    conns.push(c);
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
                    .tcp_settings(tcp_settings(config))
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
                    #[cfg(feature = "tls")]
                    {
                        b = b.tls(redis::TlsMode::Secure);
                        if let Some(certs) = tls_certs(config) {
                            b = b.certs(certs);
                        }
                    }
                    #[cfg(not(feature = "tls"))]
                    return Err(tls_unavailable());
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
                let client = sentinel_client(config, sentinels, service_name)?;
                let sentinel = std::sync::Arc::new(tokio::sync::Mutex::new(client));
                let mut conns = Vec::with_capacity(config.pool_size);
                for _ in 0..config.pool_size {
                    let c = Reconnecting::new(Connector::Sentinel(sentinel.clone()), config);
                    c.connection().await?;
                    conns.push(c);
                }
                Conn::Single {
                    conns,
                    next: AtomicUsize::new(0),
                }
            }
        };
        Ok(RedisRsClient {
            conn,
            wait: config.durability.wait(),
        })
    }

    async fn run<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        self.query(Query::Cmd(cmd)).await
    }

    async fn query<T: FromRedisValue>(&self, q: Query<'_>) -> Result<T> {
        match &self.conn {
            Conn::Single { conns, next } => {
                let i = if conns.len() == 1 {
                    0
                } else {
                    next.fetch_add(1, Ordering::Relaxed) % conns.len()
                };
                conns[i].run(q).await
            }
            Conn::Cluster(c) => {
                let mut c = c.clone();
                q.run(&mut c).await.map_err(from_redis_rs)
            }
        }
    }

    /// Runs write commands: as they are, or — with [`crate::Durability::Replicas`] — in one
    /// pipeline on one connection followed by `WAIT`, failing unless enough replicas
    /// acknowledged. The replies of `cmds`, in order.
    async fn write(&self, cmds: &[Cmd]) -> Result<Vec<Value>> {
        let Some((replicas, timeout_ms)) = self.wait else {
            // Concurrent commands on a multiplexed connection are pipelined: one round trip
            // per node (the cluster connection routes each command by its key).
            return futures::future::try_join_all(cmds.iter().map(|c| self.run::<Value>(c))).await;
        };
        let mut p = redis::pipe();
        for c in cmds {
            p.add_command(c.clone());
        }
        p.cmd("WAIT").arg(replicas).arg(timeout_ms);
        let mut replies: Vec<Value> = self.query(Query::Pipe(&p)).await?;
        let acked = match replies.pop() {
            Some(Value::Int(n)) => n,
            _ => 0,
        };
        check_replicas(acked, replicas)?;
        Ok(replies)
    }

    /// [`write`](Self::write) of one command, its reply converted.
    async fn write_one<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T> {
        if self.wait.is_none() {
            return self.run(&cmd).await;
        }
        let reply = self
            .write(std::slice::from_ref(&cmd))
            .await?
            .pop()
            .unwrap_or(Value::Nil);
        T::from_redis_value(reply).map_err(|e| from_redis_rs(e.into()))
    }
}

/// A command or a pipeline, sent on one connection.
#[derive(Clone, Copy)]
enum Query<'a> {
    Cmd(&'a Cmd),
    Pipe(&'a Pipeline),
}

impl Query<'_> {
    async fn run<T: FromRedisValue>(
        self,
        c: &mut impl redis::aio::ConnectionLike,
    ) -> redis::RedisResult<T> {
        match self {
            Query::Cmd(cmd) => cmd.query_async(c).await,
            Query::Pipe(p) => p.query_async(c).await,
        }
    }
}

/// How a [`Reconnecting`] connection finds its server.
enum Connector {
    /// A fixed address.
    Direct(Box<redis::Client>),
    /// The primary the Sentinels name at the time of (re)connecting.
    Sentinel(std::sync::Arc<tokio::sync::Mutex<SentinelClient>>),
}

/// A multiplexed connection that is dropped after a connection error (or a `READONLY` reply:
/// the primary was demoted) and re-established on a later command, pacing attempts by the
/// [`ReconnectPolicy`]. redis-rs's `ConnectionManager` does the same job but costs about a
/// microsecond of client CPU per command here (a shared future per request), which is most of
/// a 64-in-flight `GET`'s budget; this keeps the hot path to a read lock and a clone.
struct Reconnecting {
    connector: Connector,
    current: parking_lot::RwLock<Option<MultiplexedConnection>>,
    gate: tokio::sync::Mutex<()>,
    state: parking_lot::Mutex<Backoff>,
    conn_config: redis::AsyncConnectionConfig,
    policy: ReconnectPolicy,
    limit: Duration,
}

#[derive(Default)]
struct Backoff {
    connected_once: bool,
    failures: u32,
    last_failure: Option<Instant>,
}

impl Reconnecting {
    fn new(connector: Connector, config: &RedisConfig) -> Reconnecting {
        Reconnecting {
            connector,
            current: parking_lot::RwLock::new(None),
            gate: tokio::sync::Mutex::new(()),
            state: parking_lot::Mutex::new(Backoff::default()),
            conn_config: redis::AsyncConnectionConfig::new()
                .set_connection_timeout(Some(config.connect_timeout))
                .set_response_timeout(none_if_zero(config.command_timeout))
                .set_pipeline_buffer_size(config.pipeline_buffer_size),
            policy: config.reconnect,
            limit: config.connect_timeout + config.connect_timeout / 2,
        }
    }

    /// The wait before the next attempt after `failures` failed ones, and the attempt limit.
    fn pacing(&self, failures: u32) -> (Duration, u32) {
        match self.policy {
            ReconnectPolicy::Never => (Duration::ZERO, 0),
            ReconnectPolicy::Constant {
                delay,
                max_attempts,
            } => (delay, max_attempts),
            ReconnectPolicy::Exponential {
                min_delay,
                max_delay,
                max_attempts,
            } => {
                let factor = 1u32 << failures.saturating_sub(1).min(20);
                (
                    min_delay.saturating_mul(factor).min(max_delay),
                    max_attempts,
                )
            }
        }
    }

    fn unavailable(message: &'static str) -> Error {
        Error::new(ErrorKind::Unavailable, message).with_context("backend", "redis")
    }

    async fn connection(&self) -> Result<MultiplexedConnection> {
        if let Some(c) = self.current.read().as_ref() {
            return Ok(c.clone());
        }
        let _gate = self.gate.lock().await;
        if let Some(c) = self.current.read().as_ref() {
            return Ok(c.clone());
        }
        {
            let st = self.state.lock();
            if st.connected_once && self.policy == ReconnectPolicy::Never {
                return Err(Self::unavailable(
                    "the Redis connection was lost and the reconnect policy is Never",
                ));
            }
            if st.failures > 0 {
                let (wait, max) = self.pacing(st.failures);
                if max > 0 && st.failures >= max {
                    return Err(Self::unavailable(
                        "gave up reconnecting to Redis (reconnect policy attempts exhausted)",
                    ));
                }
                if st.last_failure.is_some_and(|t| t.elapsed() < wait) {
                    return Err(Self::unavailable("reconnecting to Redis (backing off)"));
                }
            }
        }
        let attempt = bounded(self.limit, async {
            let client = match &self.connector {
                Connector::Direct(c) => (**c).clone(),
                Connector::Sentinel(s) => s
                    .lock()
                    .await
                    .async_get_client()
                    .await
                    .map_err(from_redis_rs)?,
            };
            client
                .get_multiplexed_async_connection_with_config(&self.conn_config)
                .await
                .map_err(from_redis_rs)
        })
        .await;
        let mut st = self.state.lock();
        match attempt {
            Ok(c) => {
                st.connected_once = true;
                st.failures = 0;
                st.last_failure = None;
                *self.current.write() = Some(c.clone());
                Ok(c)
            }
            Err(e) => {
                st.failures = st.failures.saturating_add(1);
                st.last_failure = Some(Instant::now());
                Err(e)
            }
        }
    }

    async fn run<T: FromRedisValue>(&self, cmd: Query<'_>) -> Result<T> {
        // The hot path is a read lock and a clone; (re)connecting is boxed so its large future
        // is not part of (and copied with) every command's future.
        let current = self.current.read().clone();
        let mut c = match current {
            Some(c) => c,
            None => Box::pin(self.connection()).await?,
        };
        match cmd.run(&mut c).await {
            Ok(v) => Ok(v),
            Err(e) => {
                if e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.code() == Some("READONLY")
                {
                    *self.current.write() = None;
                }
                Err(from_redis_rs(e))
            }
        }
    }
}

/// A script's reply, one bulk or nil per element; [`TOO_LARGE`] in place of a value fails the
/// whole reply with `ValueTooLarge`.
fn value_list(v: Value) -> Result<Vec<Option<Bytes>>> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::BulkString(b) => Ok(Some(Bytes::from(b))),
                Value::SimpleString(s) => Ok(Some(Bytes::from(s))),
                Value::Int(TOO_LARGE) => Err(too_large()),
                _ => Ok(None),
            })
            .collect(),
        Value::Nil => Ok(Vec::new()),
        _ => Err(Error::new(
            ErrorKind::Backend,
            "unexpected reply type from Redis for a multi-key read",
        )
        .with_context("backend", "redis")),
    }
}

fn set_cmd(key: &str, value: &[u8], px_ms: Option<u64>) -> Cmd {
    // sized up front: growing the argument buffer past a 1 KiB value reallocates and copies it
    let mut c = Cmd::with_capacity(6, "SETPX".len() + key.len() + value.len() + 24);
    c.arg("SET").arg(key).arg(value);
    if let Some(ms) = px_ms {
        c.arg("PX").arg(ms);
    }
    c
}

/// `NAME key…` with its buffers sized up front. `redis::cmd(name).arg(key)` starts from empty
/// buffers and grows them once per argument: three reallocations for a `GET`, measurable at
/// a few hundred thousand commands a second.
fn keys_cmd(name: &str, keys: &[&str]) -> Cmd {
    let data = name.len() + keys.iter().map(|k| k.len()).sum::<usize>();
    let mut c = Cmd::with_capacity(1 + keys.len(), data);
    c.arg(name);
    for k in keys {
        c.arg(*k);
    }
    c
}

fn script_cmd(name: &str, script_or_sha: &str, keys: &[&str], arg: &str) -> Cmd {
    let data = name.len()
        + script_or_sha.len()
        + 20
        + keys.iter().map(|k| k.len()).sum::<usize>()
        + arg.len();
    let mut c = Cmd::with_capacity(4 + keys.len(), data);
    c.arg(name);
    c.arg(script_or_sha).arg(keys.len()).arg(keys).arg(arg);
    c
}

impl RawClient for RedisRsClient {
    fn name(&self) -> &'static str {
        "redis-rs"
    }

    async fn getrange(&self, key: &str, len: usize) -> Result<Bytes> {
        let v: Vec<u8> = self.run(&getrange_cmd(key, len)).await?;
        Ok(Bytes::from(v))
    }

    async fn set_px(&self, key: &str, value: Bytes, px_ms: Option<u64>) -> Result<()> {
        let cmd = set_cmd(key, &value, px_ms);
        // the command holds its own copy: free the envelope now, not after the reply
        drop(value);
        self.write_one(cmd).await
    }

    async fn set_many_px(&self, entries: Vec<SetPx>) -> Result<()> {
        let cmds: Vec<Cmd> = entries
            .iter()
            .map(|e| set_cmd(&e.key, &e.value, e.px_ms))
            .collect();
        drop(entries);
        self.write(&cmds).await.map(|_| ())
    }

    async fn set_nx_px(&self, key: &str, value: Bytes, px_ms: Option<u64>) -> Result<bool> {
        let mut c = set_cmd(key, &value, px_ms);
        c.arg("NX");
        let v: Value = self.write_one(c).await?;
        Ok(!matches!(v, Value::Nil))
    }

    async fn del_if_equals(&self, key: &str, expected: Bytes) -> Result<bool> {
        let mut c = redis::cmd("EVAL");
        c.arg(crate::scripts::DEL_IF_EQUALS)
            .arg(1)
            .arg(key)
            .arg(expected.as_ref());
        let n: i64 = self.write_one(c).await?;
        Ok(n > 0)
    }

    async fn unlink(&self, keys: &[&str]) -> Result<u64> {
        self.write_one(keys_cmd("UNLINK", keys)).await
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        let n: u64 = self.run(&keys_cmd("EXISTS", &[key])).await?;
        Ok(n > 0)
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

    async fn eval_bytes(
        &self,
        script: &str,
        keys: &[&str],
        args: Vec<Bytes>,
    ) -> Result<Vec<Option<Bytes>>> {
        let mut c = redis::cmd("EVAL");
        c.arg(script).arg(keys.len()).arg(keys);
        for a in &args {
            c.arg(a.as_ref());
        }
        drop(args);
        let v: Value = self.write_one(c).await?;
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

    async fn publish(&self, channel: &str, payload: Bytes) -> Result<u64> {
        let mut cmd = Cmd::with_capacity(3, "PUBLISH".len() + channel.len() + payload.len());
        cmd.arg("PUBLISH").arg(channel).arg(payload.as_ref());
        drop(payload);
        match &self.conn {
            // always the node of the channel's slot: one publisher's messages then leave from
            // one node, in order (the cluster bus broadcasts them from there to every node)
            Conn::Cluster(c) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let slot = crate::slot::key_slot(channel.as_bytes());
                let mut c = c.clone();
                let v = c
                    .route_command(
                        cmd,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
                            slot,
                            SlotAddr::Master,
                        ))),
                    )
                    .await
                    .map_err(from_redis_rs)?;
                u64::from_redis_value(v).map_err(|e| from_redis_rs(e.into()))
            }
            _ => self.run(&cmd).await,
        }
    }

    async fn batch(&self, ops: &[Op]) -> Result<Vec<Result<Reply>>> {
        if !matches!(self.conn, Conn::Cluster(_)) {
            return self.pipeline_ops(ops.iter()).await;
        }
        // a cluster pipeline must stay in one slot: one per slot, all sent at once
        let keys: Vec<&str> = ops.iter().map(Op::key).collect();
        let groups = crate::slot::group_by_slot(&keys);
        if groups.len() == 1 {
            return self.pipeline_ops(ops.iter()).await;
        }
        let futs = groups
            .iter()
            .map(|g| self.pipeline_ops(g.iter().map(|&i| &ops[i])));
        let results = futures::future::try_join_all(futs).await?;
        let mut out: Vec<Option<Result<Reply>>> = (0..ops.len()).map(|_| None).collect();
        for (g, replies) in groups.iter().zip(results) {
            for (&i, r) in g.iter().zip(replies) {
                out[i] = Some(r);
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(missing_reply())))
            .collect())
    }

    async fn quit(&self) {}
}

fn missing_reply() -> Error {
    Error::internal("a pipelined batch returned fewer replies than commands")
        .with_context("backend", "redis")
}

impl RedisRsClient {
    /// `ops` in one pipeline on one connection, each with its own reply.
    async fn pipeline_ops<'a>(
        &self,
        ops: impl ExactSizeIterator<Item = &'a Op>,
    ) -> Result<Vec<Result<Reply>>> {
        let mut p = Pipeline::with_capacity(ops.len());
        p.ignore_errors();
        let mut kinds = Vec::with_capacity(ops.len());
        for op in ops {
            kinds.push(OpKind::of(op));
            p.add_command(op_cmd(op));
        }
        let replies: Vec<Value> = self.query(Query::Pipe(&p)).await?;
        if replies.len() != kinds.len() {
            return Err(missing_reply());
        }
        Ok(kinds
            .into_iter()
            .zip(replies)
            .map(|(k, v)| k.reply(v))
            .collect())
    }
}

/// Which reply an [`Op`] expects.
#[derive(Clone, Copy)]
enum OpKind {
    Bytes,
    Done,
    Count,
}

impl OpKind {
    fn of(op: &Op) -> OpKind {
        match op {
            Op::GetRange { .. } => OpKind::Bytes,
            Op::Set(_) => OpKind::Done,
            Op::Unlink { .. } | Op::Exists { .. } => OpKind::Count,
        }
    }

    fn reply(self, v: Value) -> Result<Reply> {
        if let Value::ServerError(e) = v {
            return Err(from_redis_rs(e.into()));
        }
        let convert = |e: redis::ParsingError| from_redis_rs(e.into());
        Ok(match self {
            OpKind::Bytes => Reply::Bytes(Bytes::from(
                Vec::<u8>::from_redis_value(v).map_err(convert)?,
            )),
            OpKind::Done => {
                <()>::from_redis_value(v).map_err(convert)?;
                Reply::Done
            }
            OpKind::Count => Reply::Count(u64::from_redis_value(v).map_err(convert)?),
        })
    }
}

fn op_cmd(op: &Op) -> Cmd {
    match op {
        Op::GetRange { key, len } => getrange_cmd(key, *len),
        Op::Set(e) => set_cmd(&e.key, &e.value, e.px_ms),
        Op::Unlink { key } => keys_cmd("UNLINK", &[key]),
        Op::Exists { key } => keys_cmd("EXISTS", &[key]),
    }
}

fn getrange_cmd(key: &str, len: usize) -> Cmd {
    let mut c = Cmd::with_capacity(4, "GETRANGE".len() + key.len() + 21);
    c.arg("GETRANGE").arg(key).arg(0).arg(len.saturating_sub(1));
    c
}

/// `NOSCRIPT` as redis-rs reports it (kept as the source of the mapped error).
fn is_noscript_error(e: &Error) -> bool {
    use std::error::Error as _;
    e.source()
        .and_then(|s| s.downcast_ref::<RedactedReply>())
        .is_some_and(|r| is_noscript(r.code()))
}
