//! Configuration of the Redis backend: topology, credentials, pool, timeouts, protocol and
//! reconnect policy, and the URL grammar that produces it.

use std::fmt;
use std::time::Duration;

use memstache_core::{Error, ErrorKind, Result};

/// Where the Redis servers are.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Topology {
    /// One server (a primary, possibly with replicas the backend does not use).
    Standalone {
        /// Host name or IP address.
        host: String,
        /// TCP port.
        port: u16,
    },
    /// A Redis Cluster; any one reachable node is enough, the rest are discovered.
    Cluster {
        /// Seed nodes as `(host, port)`.
        nodes: Vec<(String, u16)>,
    },
    /// A primary found through Redis Sentinel, followed across failovers.
    Sentinel {
        /// Sentinel nodes as `(host, port)`.
        sentinels: Vec<(String, u16)>,
        /// The monitored service (`sentinel monitor <name> …`).
        service_name: String,
    },
}

impl Topology {
    /// Whether this is a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Topology::Cluster { .. })
    }
}

/// What the client does when a connection drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReconnectPolicy {
    /// Do not reconnect: the backend stays unavailable after a disconnect.
    Never,
    /// Wait `delay` between attempts, at most `max_attempts` times (0 = forever).
    Constant {
        /// Delay between attempts.
        delay: Duration,
        /// Attempts before giving up (0 = no limit).
        max_attempts: u32,
    },
    /// Exponential backoff from `min_delay` doubling up to `max_delay` (0 attempts = forever).
    Exponential {
        /// First delay.
        min_delay: Duration,
        /// Largest delay.
        max_delay: Duration,
        /// Attempts before giving up (0 = no limit).
        max_attempts: u32,
    },
}

impl Default for ReconnectPolicy {
    /// Exponential from 10 ms to 2 s, forever.
    fn default() -> Self {
        ReconnectPolicy::Exponential {
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(2),
            max_attempts: 0,
        }
    }
}

/// Which Redis client library carries the commands. Both sit behind the same internal trait;
/// everything Redis-specific (key layout, scripts, slot grouping, errors) is shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisClient {
    /// [redis-rs](https://docs.rs/redis) 1.x (feature `redis-rs`, on by default): the faster
    /// one on this machine, see `docs/BENCHMARKS.md`.
    RedisRs,
    /// [fred](https://docs.rs/fred) 10 (feature `fred`).
    Fred,
}

impl Default for RedisClient {
    /// `RedisRs` when the `redis-rs` feature is on, else `Fred`.
    fn default() -> Self {
        if cfg!(feature = "redis-rs") {
            RedisClient::RedisRs
        } else {
            RedisClient::Fred
        }
    }
}

/// Whether a backend gathers concurrent single-key commands into pipelined batches
/// ([`RedisConfig::coalesce`]).
///
/// Measured here (`docs/BENCHMARKS.md`, "Coalescing"), 64 requests in flight on one
/// connection, 1 KiB values: on redis-rs against one server, coalescing cuts the client's
/// instructions per `get` by 14 % (callgrind) and its CPU per `get` by 22 %; when the client
/// is short of CPU (the machine busy with other work) that turned into 15 % more `get`s per
/// second. On an idle machine it cost 24 % of the throughput instead: with one batch in
/// flight, the client and the server take turns instead of working at the same time. On a
/// cluster, where commands of different hash slots cannot share a pipeline, it adds 40 %
/// instructions; on fred, which pipelines concurrent commands itself, it doubles the client
/// CPU. So it is off by default; [`Auto`](Coalesce::Auto) is the setting for a service whose
/// client CPU is what limits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Coalesce {
    /// On where it lowers client CPU: [`RedisClient::RedisRs`] on [`Topology::Standalone`] and
    /// [`Topology::Sentinel`]; off on [`Topology::Cluster`] and for [`RedisClient::Fred`].
    Auto,
    /// Always on.
    On,
    /// Off (the default): every command goes to the client as it comes.
    #[default]
    Off,
}

impl RedisConfig {
    /// Whether this configuration coalesces commands: [`coalesce`](Self::coalesce) resolved
    /// against the client and topology.
    ///
    /// ```
    /// use memstache_redis::{Coalesce, RedisClient, RedisConfig};
    /// let standalone = RedisConfig::from_url("redis://127.0.0.1:6379?coalesce=auto").unwrap();
    /// assert_eq!(standalone.coalesce, Coalesce::Auto);
    /// assert!(standalone.coalescing());
    /// assert!(!RedisConfig::from_url("redis://127.0.0.1:6379").unwrap().coalescing());
    /// let mut fred = standalone.clone();
    /// fred.client = RedisClient::Fred;
    /// assert!(!fred.coalescing());
    /// let mut cluster = RedisConfig::from_url("redis-cluster://127.0.0.1:7000?coalesce=auto").unwrap();
    /// assert!(!cluster.coalescing());
    /// cluster.coalesce = Coalesce::On;
    /// assert!(cluster.coalescing());
    /// ```
    pub fn coalescing(&self) -> bool {
        match self.coalesce {
            Coalesce::Auto => {
                matches!(self.client, RedisClient::RedisRs) && !self.topology.is_cluster()
            }
            Coalesce::On => true,
            Coalesce::Off => false,
        }
    }
}

/// How reads serve sliding expiration.
///
/// Plain `GET` costs the server about a quarter of the Lua read script (measured here: 0.56–0.92M
/// `GET`/s against 0.19–0.20M script calls/s on non-sliding entries, 64 in flight), so by
/// default only reads that may hit a sliding entry pay for the script. See the crate docs
/// ("Sliding expiration").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SlidingReads {
    /// Keys this process wrote (or read) as sliding entries are remembered (a bounded set of
    /// 64-bit key hashes, [`RedisConfig::sliding_key_hints`]). Reads of those keys run the Lua
    /// script: value + re-arm in one round trip. Every other read is a plain `GET`/`MGET`;
    /// when it finds a sliding entry written elsewhere, the backend re-arms it with the script
    /// before returning (a second round trip, once per key and process) and remembers the key.
    #[default]
    Auto,
    /// Every `get`/`get_many` runs the Lua script (`EVALSHA`, `EVAL` on `NOSCRIPT`): one round
    /// trip for every sliding hit from any process, at the script's server cost on every read.
    Script,
    /// Reads are plain `GET`/`MGET`; writing an entry with a sliding window is refused with an
    /// [`Unsupported`](memstache_core::ErrorKind::Unsupported) error. For caches that never use
    /// sliding expiration.
    Disabled,
}

/// Redis's largest string value (`proto-max-bulk-len`'s default): the upper bound of
/// [`RedisConfig::max_entry_size`].
pub const MAX_VALUE_SIZE: usize = 512 * 1024 * 1024;

/// What [`RedisConfig::max_entry_size`] adds to memstache's default maximum value size: room
/// for the envelope's header (at most 150 bytes with the longest key id and nonce), its checksum
/// and an encryptor's tag.
pub const ENVELOPE_ALLOWANCE: usize = 1024;

/// When the backend reports a write `Ok` (see `docs/resilience.md`, "Durability").
///
/// Applies to every write through the backend: `set`, `set_many`, `set_if_absent`,
/// `set_many_guarded`, `remove`, `remove_many`, `remove_if_equals` — and so to the control
/// writes a cache or scope makes through them (`control_set`, tenancy generations, locks).
///
/// ```
/// use memstache_redis::{Durability, RedisConfig};
/// use std::time::Duration;
/// let mut config = RedisConfig::default();
/// config.durability = Durability::Replicas { replicas: 1, timeout: Duration::from_millis(200) };
/// assert!(config.validate().is_ok());
/// let url = RedisConfig::from_url("redis://127.0.0.1?wait_replicas=1&wait_timeout_ms=200")?;
/// assert_eq!(url.durability, config.durability);
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// A write is `Ok` once the primary applied it. Whether it survives a crash is the
    /// server's persistence settings' business: with `appendonly yes` a killed `redis-server`
    /// process loses no acknowledged write (Redis writes the AOF before it replies); an OS crash
    /// or power loss loses up to about a second with `appendfsync everysec` (the default), none
    /// with `appendfsync always`; without persistence (`appendonly no`, no snapshots) a restart
    /// loses everything. A failover to a replica loses what had not reached it yet
    /// (replication is asynchronous).
    #[default]
    Primary,
    /// After every write, `WAIT replicas timeout` on the same connection, in the same pipeline:
    /// the write is `Ok` only when at least `replicas` replicas acknowledged it. When fewer did
    /// within `timeout`, the write fails with a temporary [`ErrorKind::Timeout`] error — it
    /// was applied on the primary, but is not reported written. Survives the loss of the
    /// primary as long as one of the acknowledging replicas is promoted (Sentinel does pick the
    /// most up-to-date one). Standalone (a primary with replicas) and Sentinel; refused on a
    /// cluster. `timeout` must be positive (`WAIT … 0` would block forever) and shorter than
    /// the cache's `operation_timeout`.
    Replicas {
        /// How many replicas must acknowledge (at least 1).
        replicas: u32,
        /// How long `WAIT` waits for them.
        timeout: Duration,
    },
}

impl Durability {
    /// `(replicas, timeout in ms)` for `WAIT`, when this asks for it.
    pub(crate) fn wait(self) -> Option<(i64, i64)> {
        match self {
            Durability::Primary => None,
            Durability::Replicas { replicas, timeout } => Some((
                i64::from(replicas),
                i64::try_from(timeout.as_millis())
                    .unwrap_or(i64::MAX)
                    .max(1),
            )),
        }
    }
}

/// Configuration of a [`RedisBackend`](crate::RedisBackend).
///
/// Build it from a URL with [`RedisConfig::from_url`] or start from [`RedisConfig::default`]
/// and set fields. `Debug` never shows the password.
///
/// ```
/// use memstache_redis::{RedisConfig, Topology};
/// use std::time::Duration;
///
/// let mut config = RedisConfig::from_url("redis://:s3cret@127.0.0.1:6380/2?pool_size=4")?;
/// config.command_timeout = Duration::from_millis(250);
/// assert_eq!(config.pool_size, 4);
/// assert_eq!(config.database, Some(2));
/// assert!(matches!(config.topology, Topology::Standalone { port: 6380, .. }));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Where the servers are.
    ///
    /// Default: `Standalone { host: "127.0.0.1", port: 6379 }`.
    pub topology: Topology,
    /// Connect with TLS (rustls; `rediss://` URLs). Server certificates are verified against
    /// [`tls_ca_pem`](Self::tls_ca_pem) when set, the platform's root certificates otherwise;
    /// there is no way to turn verification off.
    ///
    /// Default: `false`.
    pub tls: bool,
    /// Root certificates (PEM, one or more) that the servers' TLS certificates must chain to,
    /// instead of the platform's roots: for Redis behind a private CA. Needs `tls`. URL:
    /// `tls_ca_file=/path/to/ca.pem` (the file is read when the URL is parsed).
    ///
    /// Default: `None` (the platform's root certificates).
    pub tls_ca_pem: Option<Vec<u8>>,
    /// The client certificate chain (PEM) presented to servers that require client
    /// authentication (mutual TLS, `tls-auth-clients yes`). Needs `tls` and
    /// [`tls_client_key_pem`](Self::tls_client_key_pem). URL: `tls_cert_file=path`.
    ///
    /// Default: `None` (no client certificate).
    pub tls_client_cert_pem: Option<Vec<u8>>,
    /// The private key (PEM) of [`tls_client_cert_pem`](Self::tls_client_cert_pem). Never
    /// shown by `Debug`. URL: `tls_key_file=path`.
    ///
    /// Default: `None`.
    pub tls_client_key_pem: Option<Vec<u8>>,
    /// ACL user name (`AUTH user pass`).
    ///
    /// Default: `None` (the `default` user).
    pub username: Option<String>,
    /// Password. Never shown by `Debug`.
    ///
    /// Default: `None`.
    pub password: Option<String>,
    /// Database number to `SELECT` (not available on a cluster).
    ///
    /// Default: `None` (database 0).
    pub database: Option<u8>,
    /// Number of connections; commands are spread over them round-robin. One connection
    /// already pipelines every concurrent request. fred opens this many per node; redis-rs uses
    /// it for a standalone server (its cluster and Sentinel connections are one multiplexed
    /// connection per node).
    ///
    /// Default: `1`.
    pub pool_size: usize,
    /// Bound on establishing a connection (TCP + TLS + `AUTH`/`HELLO`).
    ///
    /// Default: 5 s.
    pub connect_timeout: Duration,
    /// Bound on each command inside the client, including time queued while reconnecting; on
    /// expiry the call fails with [`ErrorKind::Timeout`]. `Duration::ZERO` means none.
    ///
    /// Off by default because `MemStache` already bounds every backend call with its
    /// `operation_timeout` (on by default for distributed backends) and a second timer per
    /// command costs measurable client CPU at high request rates. Set it when you use the
    /// backend without the cache.
    ///
    /// Default: `Duration::ZERO` (none).
    pub command_timeout: Duration,
    /// Speak RESP3 (`HELLO 3`) instead of RESP2.
    ///
    /// Default: `false` (RESP2; no RESP3 feature is needed by the backend).
    pub resp3: bool,
    /// What to do when a connection drops. Followed as closely as each client allows: redis-rs
    /// applies it to standalone connections, and re-resolves a Sentinel primary on the next
    /// command after an error; its cluster connection reconnects with its own backoff.
    ///
    /// Default: [`ReconnectPolicy::default`] (exponential 10 ms … 2 s, forever).
    pub reconnect: ReconnectPolicy,
    /// How reads serve sliding expiration.
    ///
    /// Default: [`SlidingReads::Auto`].
    pub sliding_reads: SlidingReads,
    /// The client library.
    ///
    /// Default: [`RedisClient::default`] (`RedisRs` when compiled in).
    pub client: RedisClient,
    /// How many keys [`SlidingReads::Auto`] remembers as sliding (8 bytes each, in 16 shards; a
    /// full shard is cleared, which only costs forgotten keys one extra round trip).
    ///
    /// Default: `262_144`.
    pub sliding_key_hints: usize,
    /// The largest stored entry (an encoded envelope) the backend reads or writes. Reads of a
    /// larger entry fail with [`ErrorKind::ValueTooLarge`] without transferring it: every read
    /// asks Redis for at most this many bytes (a bounded `GETRANGE`, and `STRLEN` in the read
    /// scripts), so a value someone else stored under a hot key cannot make every reader
    /// allocate it. Writes of a larger entry are refused the same way (it is the backend's
    /// [`Capabilities::max_value_size`](memstache_core::raw::Capabilities)). Raise it together
    /// with the cache's `max_value_size`. At most [`MAX_VALUE_SIZE`]. URL: `max_entry_size=N`.
    ///
    /// Default: memstache's [`DEFAULT_MAX_VALUE_SIZE`](memstache_core::DEFAULT_MAX_VALUE_SIZE)
    /// (16 MiB) + [`ENVELOPE_ALLOWANCE`] (1 KiB).
    pub max_entry_size: usize,
    /// When a write is reported `Ok`: [`Durability`]. URL: `wait_replicas=N` with
    /// `wait_timeout_ms=M` (default 1000).
    ///
    /// Default: [`Durability::Primary`] (no `WAIT`).
    pub durability: Durability,
    /// How often a [backplane](crate::RedisBackplane) subscription pings its connection, and
    /// how long it waits for the reply: an unanswered ping (a hung server, a silent network
    /// partition) reports the subscription lost within about twice this. Must be positive.
    /// URL: `backplane_ping_interval_ms=N`.
    ///
    /// Default: 1 s.
    pub backplane_ping_interval: Duration,
    /// The first wait before a lost backplane subscription reconnects; it doubles after each
    /// failed attempt up to [`backplane_max_backoff`](Self::backplane_max_backoff). Must be
    /// positive. URL: `backplane_min_backoff_ms=N`.
    ///
    /// Default: 50 ms.
    pub backplane_min_backoff: Duration,
    /// The longest wait between two reconnect attempts of a backplane subscription (attempts
    /// never stop while the subscription is alive). At least
    /// [`backplane_min_backoff`](Self::backplane_min_backoff). URL: `backplane_max_backoff_ms=N`.
    ///
    /// Default: 2 s.
    pub backplane_max_backoff: Duration,
    /// Gather concurrent single-key commands (`get`'s bounded `GETRANGE` and `EXISTS`, `set`'s
    /// `SET … PX`, `remove`'s `UNLINK`) into pipelined batches: a command that finds nothing
    /// in flight goes out at once, alone; commands that arrive while one is in flight go out
    /// together as the next batch, as soon as it returns (no fixed delay). Errors and timeouts
    /// stay per command. Writes with [`Durability::Replicas`] and the read script (sliding
    /// entries) are never coalesced. URL: `coalesce=auto|true|false`.
    ///
    /// Default: [`Coalesce::Off`]; [`Coalesce::Auto`] for services whose client CPU is the
    /// limit (the measurements are in [`Coalesce`]).
    pub coalesce: Coalesce,
    /// The most commands in one coalesced batch (at least 1). URL: `max_batch=N`.
    ///
    /// Default: 128.
    pub max_batch: usize,
    /// `TCP_NODELAY` on every connection (Nagle's algorithm off). URL: `tcp_nodelay=true|false`.
    ///
    /// Default: `true`.
    pub tcp_nodelay: bool,
    /// redis-rs only: how many requests may wait in a standalone or Sentinel connection's
    /// queue to its writer task before callers wait for room (redis-rs's
    /// `AsyncConnectionConfig::set_pipeline_buffer_size`). At least 1. URL:
    /// `pipeline_buffer_size=N`.
    ///
    /// Default: 50, redis-rs's own (see docs/BENCHMARKS.md "Coalescing" for the measurement).
    pub pipeline_buffer_size: usize,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            topology: Topology::Standalone {
                host: "127.0.0.1".to_owned(),
                port: 6379,
            },
            tls: false,
            tls_ca_pem: None,
            tls_client_cert_pem: None,
            tls_client_key_pem: None,
            username: None,
            password: None,
            database: None,
            pool_size: 1,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::ZERO,
            resp3: false,
            reconnect: ReconnectPolicy::default(),
            sliding_reads: SlidingReads::default(),
            sliding_key_hints: 262_144,
            client: RedisClient::default(),
            max_entry_size: memstache_core::DEFAULT_MAX_VALUE_SIZE + ENVELOPE_ALLOWANCE,
            durability: Durability::Primary,
            backplane_ping_interval: Duration::from_secs(1),
            backplane_min_backoff: Duration::from_millis(50),
            backplane_max_backoff: Duration::from_secs(2),
            coalesce: Coalesce::Off,
            max_batch: 128,
            tcp_nodelay: true,
            pipeline_buffer_size: 50,
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("topology", &self.topology)
            .field("tls", &self.tls)
            .field(
                "tls_ca_pem",
                &self
                    .tls_ca_pem
                    .as_ref()
                    .map(|p| format!("{} bytes", p.len())),
            )
            .field(
                "tls_client_cert_pem",
                &self
                    .tls_client_cert_pem
                    .as_ref()
                    .map(|p| format!("{} bytes", p.len())),
            )
            .field(
                "tls_client_key_pem",
                &self.tls_client_key_pem.as_ref().map(|_| "[REDACTED]"),
            )
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .field("database", &self.database)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("resp3", &self.resp3)
            .field("reconnect", &self.reconnect)
            .field("sliding_reads", &self.sliding_reads)
            .field("sliding_key_hints", &self.sliding_key_hints)
            .field("client", &self.client)
            .field("max_entry_size", &self.max_entry_size)
            .field("durability", &self.durability)
            .field("backplane_ping_interval", &self.backplane_ping_interval)
            .field("backplane_min_backoff", &self.backplane_min_backoff)
            .field("backplane_max_backoff", &self.backplane_max_backoff)
            .field("coalesce", &self.coalesce)
            .field("max_batch", &self.max_batch)
            .field("tcp_nodelay", &self.tcp_nodelay)
            .field("pipeline_buffer_size", &self.pipeline_buffer_size)
            .finish()
    }
}

/// Reads a PEM file named in a URL (the path is not repeated in the error).
fn read_pem(path: &str, message: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::new(ErrorKind::InvalidConfig, message).with_source(e))
}

fn invalid(message: &'static str) -> Error {
    Error::new(ErrorKind::InvalidConfig, message)
}

/// Decodes `%XX` escapes (user names and passwords in URLs).
fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid("bad percent escape in the URL credentials"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid("URL credentials are not UTF-8"))
}

fn parse_node(s: &str) -> Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| invalid("a `node` must be host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(invalid("a `node` must be host:port"));
    }
    let port = port
        .parse()
        .map_err(|_| invalid("a `node` port must be a number"))?;
    Ok((host.to_owned(), port))
}

fn parse_bool(v: &str, message: &'static str) -> Result<bool> {
    match v {
        "true" | "1" | "on" => Ok(true),
        "false" | "0" | "off" => Ok(false),
        _ => Err(invalid(message)),
    }
}

fn parse_ms(v: &str) -> Result<Duration> {
    v.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| invalid("a timeout must be a number of milliseconds"))
}

impl RedisConfig {
    /// Parses a connection URL.
    ///
    /// ```text
    /// redis[s]://[[user]:password@]host[:port][/db][?param=value&…]
    /// redis[s]-cluster://[[user]:password@]host:port[?node=host:port&node=…&…]
    /// redis[s]-sentinel://[[user]:password@]host[:port][/db]?service_name=name[&node=host:port&…]
    /// ```
    ///
    /// * `rediss…` connects with TLS. The default port is 6379 (26379 for Sentinel, where the
    ///   host and every `node` are Sentinels; user and password are for the Redis servers).
    /// * `/db` selects a database (not on a cluster). User and password are percent-decoded.
    /// * Parameters, all optional: `node=host:port` (repeatable: more cluster seeds or
    ///   Sentinels), `service_name` (Sentinel; `sentinelServiceName` is accepted too),
    ///   `pool_size`, `connect_timeout_ms`, `command_timeout_ms`, `protocol=resp2|resp3`,
    ///   `sliding_reads=auto|script|disabled`, `client=redis-rs|fred`, `max_entry_size=bytes`,
    ///   `wait_replicas=N` and `wait_timeout_ms=M` ([`Durability::Replicas`]), `tls_ca_file=path`
    ///   (PEM root certificates for a private CA), `tls_cert_file=path` and `tls_key_file=path`
    ///   (a client certificate and its key, for mutual TLS); the TLS files need `rediss`;
    ///   `backplane_ping_interval_ms`, `backplane_min_backoff_ms`, `backplane_max_backoff_ms`
    ///   (the [backplane](crate::RedisBackplane)'s health check and reconnect pacing);
    ///   `coalesce=auto|true|false` and `max_batch=N` ([`coalesce`](Self::coalesce)),
    ///   `tcp_nodelay=true|false`, `pipeline_buffer_size=N`. Anything else is an error.
    ///
    /// Errors are [`ErrorKind::InvalidConfig`] and never contain the URL (it may hold a
    /// password).
    ///
    /// ```
    /// use memstache_redis::{RedisConfig, Topology};
    /// let c = RedisConfig::from_url("redis-cluster://10.0.0.1:7000?node=10.0.0.2:7000")?;
    /// assert_eq!(
    ///     c.topology,
    ///     Topology::Cluster { nodes: vec![("10.0.0.1".into(), 7000), ("10.0.0.2".into(), 7000)] }
    /// );
    /// let s = RedisConfig::from_url("redis-sentinel://10.0.0.9?service_name=mymaster")?;
    /// assert!(matches!(s.topology, Topology::Sentinel { ref sentinels, .. } if sentinels[0].1 == 26379));
    /// assert!(RedisConfig::from_url("http://x").is_err());
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    pub fn from_url(url: &str) -> Result<RedisConfig> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::new(ErrorKind::InvalidConfig, "not a valid Redis URL").with_source(e)
        })?;
        #[derive(PartialEq)]
        enum Kind {
            Standalone,
            Cluster,
            Sentinel,
        }
        let (kind, tls) = match parsed.scheme() {
            "redis" => (Kind::Standalone, false),
            "rediss" => (Kind::Standalone, true),
            "redis-cluster" => (Kind::Cluster, false),
            "rediss-cluster" => (Kind::Cluster, true),
            "redis-sentinel" => (Kind::Sentinel, false),
            "rediss-sentinel" => (Kind::Sentinel, true),
            _ => {
                return Err(invalid(
                    "URL scheme must be redis, rediss, redis-cluster, rediss-cluster, \
                     redis-sentinel or rediss-sentinel",
                ));
            }
        };
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("the URL has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let default_port = if kind == Kind::Sentinel { 26379 } else { 6379 };
        let port = parsed.port().unwrap_or(default_port);

        let mut config = RedisConfig {
            tls,
            ..RedisConfig::default()
        };
        if !parsed.username().is_empty() {
            config.username = Some(percent_decode(parsed.username())?);
        }
        if let Some(p) = parsed.password() {
            config.password = Some(percent_decode(p)?);
        }
        let path = parsed.path().trim_matches('/');
        if !path.is_empty() {
            if kind == Kind::Cluster {
                return Err(invalid("a cluster URL cannot select a database"));
            }
            config.database = Some(
                path.parse()
                    .map_err(|_| invalid("the URL path must be a database number 0-255"))?,
            );
        }

        let mut nodes = vec![(host, port)];
        let mut service_name = None;
        let mut wait_replicas = None;
        let mut wait_timeout = Duration::from_secs(1);
        for (k, v) in parsed.query_pairs() {
            match k.as_ref() {
                "node" => nodes.push(parse_node(&v)?),
                "service_name" | "sentinelServiceName" => service_name = Some(v.into_owned()),
                "pool_size" => {
                    config.pool_size = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| invalid("pool_size must be a positive number"))?;
                }
                "connect_timeout_ms" => config.connect_timeout = parse_ms(&v)?,
                "command_timeout_ms" => config.command_timeout = parse_ms(&v)?,
                "protocol" => {
                    config.resp3 = match v.as_ref() {
                        "resp2" => false,
                        "resp3" => true,
                        _ => return Err(invalid("protocol must be resp2 or resp3")),
                    }
                }
                "sliding_reads" => {
                    config.sliding_reads = match v.as_ref() {
                        "auto" => SlidingReads::Auto,
                        "script" => SlidingReads::Script,
                        "disabled" => SlidingReads::Disabled,
                        _ => return Err(invalid("sliding_reads must be auto, script or disabled")),
                    }
                }
                "client" => {
                    config.client = match v.as_ref() {
                        "redis-rs" => RedisClient::RedisRs,
                        "fred" => RedisClient::Fred,
                        _ => return Err(invalid("client must be redis-rs or fred")),
                    }
                }
                "max_entry_size" => {
                    config.max_entry_size = v
                        .parse()
                        .map_err(|_| invalid("max_entry_size must be a number of bytes"))?;
                }
                "wait_replicas" => {
                    wait_replicas = Some(
                        v.parse()
                            .map_err(|_| invalid("wait_replicas must be a number"))?,
                    );
                }
                "wait_timeout_ms" => wait_timeout = parse_ms(&v)?,
                "backplane_ping_interval_ms" => config.backplane_ping_interval = parse_ms(&v)?,
                "backplane_min_backoff_ms" => config.backplane_min_backoff = parse_ms(&v)?,
                "backplane_max_backoff_ms" => config.backplane_max_backoff = parse_ms(&v)?,
                "coalesce" => {
                    config.coalesce = if v == "auto" {
                        Coalesce::Auto
                    } else if parse_bool(&v, "coalesce must be auto, true or false")? {
                        Coalesce::On
                    } else {
                        Coalesce::Off
                    };
                }
                "tcp_nodelay" => {
                    config.tcp_nodelay = parse_bool(&v, "tcp_nodelay must be true or false")?;
                }
                "pipeline_buffer_size" => {
                    config.pipeline_buffer_size =
                        v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                            invalid("pipeline_buffer_size must be a positive number")
                        })?;
                }
                "max_batch" => {
                    config.max_batch = v
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| invalid("max_batch must be a positive number"))?;
                }
                "tls_ca_file" => config.tls_ca_pem = Some(read_pem(&v, "cannot read tls_ca_file")?),
                "tls_cert_file" => {
                    config.tls_client_cert_pem = Some(read_pem(&v, "cannot read tls_cert_file")?);
                }
                "tls_key_file" => {
                    config.tls_client_key_pem = Some(read_pem(&v, "cannot read tls_key_file")?);
                }
                _ => return Err(invalid("unknown URL parameter")),
            }
        }
        if let Some(replicas) = wait_replicas {
            config.durability = Durability::Replicas {
                replicas,
                timeout: wait_timeout,
            };
        }
        config.topology = match kind {
            Kind::Standalone => {
                if nodes.len() > 1 {
                    return Err(invalid(
                        "`node` needs a redis-cluster:// or redis-sentinel:// URL",
                    ));
                }
                let (host, port) = nodes.remove(0);
                Topology::Standalone { host, port }
            }
            Kind::Cluster => Topology::Cluster { nodes },
            Kind::Sentinel => Topology::Sentinel {
                sentinels: nodes,
                service_name: service_name
                    .ok_or_else(|| invalid("a Sentinel URL needs service_name=<name>"))?,
            },
        };
        if kind != Kind::Sentinel && service_name_given(&parsed) {
            return Err(invalid("service_name needs a redis-sentinel:// URL"));
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks the combination of fields (done by `from_url` and on connect).
    ///
    /// ```
    /// let mut c = memstache_redis::RedisConfig::default();
    /// c.pool_size = 0;
    /// assert!(c.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<()> {
        if self.pool_size == 0 {
            return Err(invalid("pool_size must be at least 1"));
        }
        if self.max_entry_size == 0 || self.max_entry_size > MAX_VALUE_SIZE {
            return Err(invalid("max_entry_size must be between 1 byte and 512 MiB"));
        }
        if let Durability::Replicas { replicas, timeout } = self.durability {
            if replicas == 0 || timeout.is_zero() {
                return Err(invalid(
                    "Durability::Replicas needs at least one replica and a positive timeout",
                ));
            }
            if self.topology.is_cluster() {
                return Err(invalid(
                    "Durability::Replicas is not supported on Redis Cluster (standalone and Sentinel only)",
                ));
            }
        }
        if self.pipeline_buffer_size == 0 {
            return Err(invalid("pipeline_buffer_size must be at least 1"));
        }
        if self.max_batch == 0 {
            return Err(invalid("max_batch must be at least 1"));
        }
        if self.backplane_ping_interval.is_zero() {
            return Err(invalid("backplane_ping_interval must be positive"));
        }
        if self.backplane_min_backoff.is_zero()
            || self.backplane_min_backoff > self.backplane_max_backoff
        {
            return Err(invalid(
                "the backplane backoff needs 0 < backplane_min_backoff <= backplane_max_backoff",
            ));
        }
        let any_tls_file = self.tls_ca_pem.is_some()
            || self.tls_client_cert_pem.is_some()
            || self.tls_client_key_pem.is_some();
        if any_tls_file && !self.tls {
            return Err(invalid(
                "TLS certificates are set but TLS is off (use a rediss URL or set tls)",
            ));
        }
        if self.tls_client_cert_pem.is_some() != self.tls_client_key_pem.is_some() {
            return Err(invalid(
                "a TLS client certificate needs its key, and a key its certificate",
            ));
        }
        match &self.topology {
            Topology::Standalone { host, .. } if host.is_empty() => {
                Err(invalid("the host is empty"))
            }
            Topology::Cluster { nodes } if nodes.is_empty() => {
                Err(invalid("a cluster needs at least one node"))
            }
            Topology::Cluster { .. } if self.database.is_some_and(|d| d != 0) => {
                Err(invalid("a cluster has only database 0"))
            }
            Topology::Sentinel {
                sentinels,
                service_name,
            } if sentinels.is_empty() || service_name.is_empty() => Err(invalid(
                "Sentinel needs at least one sentinel and a service name",
            )),
            _ => Ok(()),
        }
    }
}

fn service_name_given(url: &url::Url) -> bool {
    url.query_pairs()
        .any(|(k, _)| k == "service_name" || k == "sentinelServiceName")
}

#[cfg(test)]
mod tests;
