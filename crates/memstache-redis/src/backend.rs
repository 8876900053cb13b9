//! [`RedisBackend`]: memstache's [`Backend`] on Redis (standalone, Sentinel, Cluster).

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::FutureExt;
use futures::future::Either;
use memstache_core::raw::{
    Backend, BackendEntry, Capabilities, Clock, EvictionPolicy, Expiry, SystemClock,
};
use memstache_core::scope::Outcome;
use memstache_core::{Error, ErrorKind, Result};

use crate::batch::{self, Batching, Coalescer, Turn};
use crate::client::{Client, Op, RawClient, Reply, SetPx};
use crate::config::{MAX_VALUE_SIZE, RedisConfig, SlidingReads, Topology};
use crate::error::too_large;
use crate::hints::SlidingHints;
use crate::scripts::{MAX_SLIDING_MS, set_if_guard_script, sliding_script};

/// How many bytes a plain `get` asks for first (`GETRANGE key 0 READ_WINDOW-1`): an entry
/// shorter than this arrives whole in one round trip, as with `GET`; a longer one is read again
/// through the read script, which checks its length before sending it. A miss costs a second
/// round trip (`EXISTS`): `GETRANGE` answers the same empty string for a missing key and for
/// an empty value.
const READ_WINDOW: usize = 64 * 1024;

/// The largest `PX` the backend sends: about 317 years (the read script's sliding bound too).
/// A longer time to live is clamped to it: Redis refuses a `PX` past `i64::MAX` ms from now,
/// and would fail the write of an entry whose deadline is merely far away.
const MAX_PX_MS: u64 = MAX_SLIDING_MS;
use crate::slot::group_by_slot;

/// The `maxmemory-policy` that matches a memstache eviction policy name: `"lru"` →
/// `allkeys-lru`, `"lfu"` → `allkeys-lfu`, `"time"` → `volatile-ttl`; `None` for others.
///
/// ```
/// assert_eq!(memstache_redis::maxmemory_policy_for("lfu"), Some("allkeys-lfu"));
/// assert_eq!(memstache_redis::maxmemory_policy_for("tinylfu"), None);
/// ```
pub fn maxmemory_policy_for(policy_name: &str) -> Option<&'static str> {
    match policy_name {
        "lru" => Some("allkeys-lru"),
        "lfu" => Some("allkeys-lfu"),
        "time" => Some("volatile-ttl"),
        _ => None,
    }
}

/// A memstache [`Backend`] on Redis: standalone, Sentinel or Cluster.
///
/// A cheap-to-clone handle: clones share the connections.
///
/// * `set` is `SET key value PX ttl` with the TTL from the entry's [`Expiry`] (`UNLINK` when
///   it is already due); `remove` is `UNLINK`, `exists` is `EXISTS`.
/// * Sliding entries are re-armed by one Lua script (`EVALSHA`, falling back to `EVAL` on
///   `NOSCRIPT`) that returns the value and sets the TTL to `min(sliding, deadline - now)` in
///   the same round trip; plain entries are read with a bounded `GETRANGE`. Which reads use
///   the script is [`SlidingReads`]'s choice; `touch` always uses it.
/// * No read receives more than [`RedisConfig::max_entry_size`] bytes: a larger entry is
///   [`ErrorKind::ValueTooLarge`] without being sent (the crate docs, "Bounded reads").
/// * `get_many` is one pipelined bounded `GETRANGE` per key (or one script call per hash
///   slot), `remove_many` one `UNLINK` per slot,
///   `set_many` one pipelined `SET … PX` per entry; on a cluster the per-slot commands for all
///   nodes are sent concurrently: one round trip per node, never per key.
/// * Writes follow [`RedisConfig::durability`]: with
///   [`Durability::Replicas`](crate::Durability::Replicas) each is pipelined with `WAIT` and
///   is `Ok` only when enough replicas acknowledged it.
///
/// ```no_run
/// use memstache_core::raw::{Backend, Expiry};
/// use memstache_redis::RedisBackend;
/// # async fn demo() -> memstache_core::Result<()> {
/// let backend = RedisBackend::connect("redis://127.0.0.1:6379").await?;
/// backend.set("k", bytes::Bytes::from_static(b"v"), Expiry::NEVER).await?;
/// assert!(backend.get("k").await?.is_some());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    topology: Topology,
    sliding: SlidingReads,
    script: String,
    sha: String,
    /// The guarded-write script, bounded by `max_entry`.
    guard_script: String,
    hints: SlidingHints,
    /// [`RedisConfig::max_entry_size`].
    max_entry: usize,
    /// The whole configuration, for the backplane's subscriber connections (never printed).
    config: RedisConfig,
    /// Gathers concurrent single-key commands into pipelines ([`RedisConfig::coalesce`]).
    coalescer: Coalescer,
    /// Single-key reads go through the coalescer.
    coalesce_reads: bool,
    /// Single-key writes go through the coalescer (not with `WAIT` durability).
    coalesce_writes: bool,
}

impl Batching for Inner {
    type Client = Client;
    fn coalescer(&self) -> &Coalescer {
        &self.coalescer
    }
    fn batch_client(&self) -> &Client {
        &self.client
    }
}

/// A reply of the wrong kind for a coalesced command (a bug, not a server answer).
fn wrong_reply() -> Error {
    Error::internal("a coalesced command received the reply of another kind")
        .with_context("backend", "redis")
}

/// Whether `value` is an envelope with a sliding window.
fn is_sliding(value: &[u8]) -> bool {
    memstache_core::envelope::peek_expiry(value).is_some_and(|(_, sliding)| sliding > 0)
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("client", &self.inner.client.name())
            .field("topology", &self.inner.topology)
            .field("sliding_reads", &self.inner.sliding)
            .finish_non_exhaustive()
    }
}

/// The bound on one coalesced batch: the command timeout when one is set, else 10 s (the
/// callers' own operation timeouts end their waits sooner; this only frees the coalescer if a
/// connection stops answering without failing).
fn batch_bound(config: &RedisConfig) -> std::time::Duration {
    if config.command_timeout.is_zero() {
        std::time::Duration::from_secs(10)
    } else {
        config.command_timeout
    }
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

/// [`px_for`] at the current time, reading the clock only for an entry that expires.
fn px_now(expiry: &Expiry) -> std::result::Result<Option<u64>, ()> {
    if *expiry == Expiry::NEVER {
        Ok(None)
    } else {
        px_for(expiry, now_ms())
    }
}

/// The `PX` for an entry written now: `Ok(None)` = no expiry, `Err(())` = already due. At
/// most [`MAX_PX_MS`].
fn px_for(expiry: &Expiry, now: u64) -> std::result::Result<Option<u64>, ()> {
    match expiry.ttl_from(now) {
        None => Ok(None),
        Some(d) => {
            let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
            if ms == 0 {
                Err(())
            } else {
                Ok(Some(ms.min(MAX_PX_MS)))
            }
        }
    }
}

impl RedisBackend {
    /// Connects with a URL (grammar: [`RedisConfig::from_url`]).
    ///
    /// ```no_run
    /// # async fn demo() -> memstache_core::Result<()> {
    /// let standalone = memstache_redis::RedisBackend::connect("redis://127.0.0.1:6379").await?;
    /// let cluster = memstache_redis::RedisBackend::connect(
    ///     "redis-cluster://10.0.0.1:7000?node=10.0.0.2:7000",
    /// ).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidConfig`] for a bad URL or rejected credentials,
    /// [`ErrorKind::Unavailable`] / [`ErrorKind::Timeout`] when Redis cannot be reached.
    pub async fn connect(url: &str) -> Result<RedisBackend> {
        Self::from_config(RedisConfig::from_url(url)?).await
    }

    /// Connects with a configuration.
    ///
    /// ```no_run
    /// use memstache_redis::{RedisBackend, RedisConfig, Topology};
    /// # async fn demo() -> memstache_core::Result<()> {
    /// let mut config = RedisConfig::default();
    /// config.topology = Topology::Standalone { host: "10.0.0.5".into(), port: 6379 };
    /// config.pool_size = 2;
    /// let backend = RedisBackend::from_config(config).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect).
    pub async fn from_config(config: RedisConfig) -> Result<RedisBackend> {
        config.validate()?;
        let client = Client::connect(&config).await?;
        // loaded in every mode: bounded reads of entries longer than READ_WINDOW use it
        let script = sliding_script(config.max_entry_size);
        let sha = client.script_load(&script).await?;
        tracing::debug!(
            target: "memstache::redis",
            client = client.name(),
            cluster = config.topology.is_cluster(),
            "connected to Redis"
        );
        Ok(RedisBackend {
            inner: Arc::new(Inner {
                client,
                topology: config.topology.clone(),
                sliding: config.sliding_reads,
                script,
                sha,
                guard_script: set_if_guard_script(config.max_entry_size),
                hints: SlidingHints::new(config.sliding_key_hints),
                max_entry: config.max_entry_size,
                coalescer: Coalescer::new(config.max_batch, batch_bound(&config)),
                coalesce_reads: config.coalescing(),
                coalesce_writes: config.coalescing() && config.durability.wait().is_none(),
                config,
            }),
        })
    }

    /// The connections, for the backplane's `PUBLISH`.
    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The configuration the backend was connected with.
    pub(crate) fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// What coalescing did since the backend connected ([`RedisConfig::coalesce`]): commands
    /// sent alone, batches, and commands inside batches. All zero when coalescing is off.
    ///
    /// ```no_run
    /// # async fn demo() -> memstache_core::Result<()> {
    /// let backend =
    ///     memstache_redis::RedisBackend::connect("redis://127.0.0.1:6379?coalesce=true").await?;
    /// let s = backend.coalesce_stats();
    /// println!("{} batches, {:.1} commands each", s.batches, s.batched as f64 / s.batches.max(1) as f64);
    /// # Ok(()) }
    /// ```
    pub fn coalesce_stats(&self) -> crate::CoalesceStats {
        self.inner.coalescer.stats()
    }

    /// Closes the connections. Other clones stop working too.
    pub async fn quit(&self) {
        self.inner.client.quit().await;
    }

    /// Sets Redis's `maxmemory-policy` on every primary from memstache's eviction policy: LRU →
    /// `allkeys-lru`, LFU → `allkeys-lfu`, time-based → `volatile-ttl` (see
    /// [`maxmemory_policy_for`]). Opt-in: call it once, after connecting, if this cache owns the
    /// Redis instance. Returns the policy that was set.
    ///
    /// `maxmemory` itself (the size bound) is left to the operator, as are replicas on a
    /// cluster (set them in `redis.conf`: a replica promoted later keeps its own policy).
    ///
    /// ```no_run
    /// # async fn demo(backend: memstache_redis::RedisBackend,
    /// #               lru: &dyn memstache_core::raw::EvictionPolicy) -> memstache_core::Result<()> {
    /// let set = backend.apply_eviction_policy(lru).await?;
    /// assert_eq!(set, "allkeys-lru");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Unsupported`] for a policy without a Redis equivalent (nothing is changed);
    /// the usual connection errors; [`ErrorKind::Backend`] when `CONFIG SET` is refused
    /// (managed Redis services often disable it).
    pub async fn apply_eviction_policy(&self, policy: &dyn EvictionPolicy) -> Result<&'static str> {
        let name = maxmemory_policy_for(policy.name()).ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "this eviction policy has no Redis maxmemory-policy equivalent",
            )
            .with_context("backend", "redis")
            .with_context("policy", policy.name())
        })?;
        self.inner
            .client
            .config_set_all("maxmemory-policy", name)
            .await
            .map_err(|e| e.with_operation("apply_eviction_policy"))?;
        Ok(name)
    }

    async fn script(&self, keys: &[&str], arg: &str) -> Result<Vec<Option<Bytes>>> {
        let c = &self.inner.client;
        let out = match c.evalsha(&self.inner.sha, keys, arg).await? {
            Some(v) => v,
            None => c.eval(&self.inner.script, keys, arg).await?,
        };
        if out.len() == keys.len() {
            Ok(out)
        } else {
            Err(
                Error::internal("the read script returned a wrong number of values")
                    .with_context("backend", "redis"),
            )
        }
    }

    /// Re-arms the sliding entries among the values of a plain read (touch mode of the script)
    /// and drops those the server found expired meanwhile.
    async fn rearm_plain_hits(&self, keys: &[&str], values: &mut [Option<Bytes>]) -> Result<()> {
        let idx: Vec<usize> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.as_deref().is_some_and(is_sliding))
            .map(|(i, _)| i)
            .collect();
        if idx.is_empty() {
            return Ok(());
        }
        let ks: Vec<&str> = idx.iter().map(|&i| keys[i]).collect();
        for k in &ks {
            self.inner.hints.insert(k);
        }
        let live = self.script(&ks, "t").await?;
        for (&i, l) in idx.iter().zip(live) {
            if l.is_none() {
                values[i] = None;
            }
        }
        Ok(())
    }

    /// Reads keys of one slot (all keys off a cluster) as [`SlidingReads`] says. Never an
    /// `MGET`, which would send an oversized value whole: plain reads are
    /// [`get_bounded_many`](Self::get_bounded_many), one pipeline of bounded `GETRANGE`s;
    /// script reads are one script call, which checks every value's length first.
    async fn read_group(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let plain = || self.get_bounded_many(keys);
        match self.inner.sliding {
            SlidingReads::Disabled => plain().await,
            SlidingReads::Script => self.script(keys, "g").await,
            _ => {
                let hints = &self.inner.hints;
                if keys.iter().any(|k| hints.contains(k)) {
                    let out = self.script(keys, "g").await?;
                    for (k, v) in keys.iter().zip(&out) {
                        if let Some(b) = v {
                            hints.learn(k, is_sliding(b));
                        }
                    }
                    Ok(out)
                } else {
                    let mut out = plain().await?;
                    self.rearm_plain_hits(keys, &mut out).await?;
                    Ok(out)
                }
            }
        }
    }

    /// A plain read of one key that never receives more than `max_entry_size` bytes:
    /// `GETRANGE` of the first [`READ_WINDOW`] bytes (or `max_entry_size + 1`, if smaller) —
    /// the whole value when it is shorter; otherwise the read script without re-arming
    /// (`"p"`), which sends the value only if it is within the bound.
    async fn get_bounded(&self, key: &str) -> Result<Option<Bytes>> {
        let max = self.inner.max_entry;
        let window = max.saturating_add(1).min(READ_WINDOW);
        let v = self.getrange(key, window).await?;
        if v.is_empty() {
            // GETRANGE answers "" for a missing key and for an empty value (which the pipeline
            // must see: it is a damaged entry, not a miss)
            return Box::pin(self.empty_or_missing(key)).await;
        }
        if v.len() < window {
            return Ok(Some(v));
        }
        if window > max {
            return Err(too_large());
        }
        drop(v);
        Box::pin(self.script(&[key], "p"))
            .await
            .map(|mut v| v.pop().flatten())
    }

    /// [`get_bounded`](Self::get_bounded) for many keys (of one slot on a cluster): one
    /// pipeline of bounded `GETRANGE`s (one message to the connection, one round trip; the
    /// server's cost per key is about 1.5× an `MGET` key, docs/BENCHMARKS.md), then one
    /// pipeline of `EXISTS` for the empty replies and one read script call for the values
    /// longer than the window, when there are any. The first error fails the call, as a
    /// failed key fails `get_many`.
    async fn get_bounded_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        let max = self.inner.max_entry;
        let window = max.saturating_add(1).min(READ_WINDOW);
        let ops: Vec<Op> = keys
            .iter()
            .map(|k| Op::GetRange {
                key: (*k).to_owned(),
                len: window,
            })
            .collect();
        let replies = self.inner.client.batch(&ops).await?;
        drop(ops);
        if replies.len() != keys.len() {
            return Err(wrong_reply());
        }
        let mut out = Vec::with_capacity(keys.len());
        let (mut empty, mut long) = (Vec::new(), Vec::new());
        for (i, r) in replies.into_iter().enumerate() {
            let Reply::Bytes(v) = r? else {
                return Err(wrong_reply());
            };
            if v.is_empty() {
                // a missing key or an empty value (a damaged entry the pipeline must see)
                empty.push(i);
                out.push(None);
            } else if v.len() < window {
                out.push(Some(v));
            } else if window > max {
                return Err(too_large());
            } else {
                long.push(i);
                out.push(None);
            }
        }
        if !empty.is_empty() {
            let ops: Vec<Op> = empty
                .iter()
                .map(|&i| Op::Exists {
                    key: keys[i].to_owned(),
                })
                .collect();
            let replies = self.inner.client.batch(&ops).await?;
            if replies.len() != ops.len() {
                return Err(wrong_reply());
            }
            for (&i, r) in empty.iter().zip(replies) {
                match r? {
                    Reply::Count(0) => {}
                    Reply::Count(_) => long.push(i),
                    _ => return Err(wrong_reply()),
                }
            }
        }
        if !long.is_empty() {
            let ks: Vec<&str> = long.iter().map(|&i| keys[i]).collect();
            let values = Box::pin(self.script(&ks, "p")).await?;
            if values.len() != ks.len() {
                return Err(wrong_reply());
            }
            for (&i, v) in long.iter().zip(values) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// After an empty `GETRANGE` reply: a miss when `EXISTS` says so (the common case, one cheap
    /// command); otherwise the bounded read script, which reads whatever is there now.
    async fn empty_or_missing(&self, key: &str) -> Result<Option<Bytes>> {
        if !self.exists_one(key).await? {
            return Ok(None);
        }
        self.script(&[key], "p")
            .await
            .map(|mut v| v.pop().flatten())
    }

    /// `GETRANGE key 0 len-1`, coalesced with concurrent commands when configured.
    async fn getrange(&self, key: &str, len: usize) -> Result<Bytes> {
        let inner = &self.inner;
        if !inner.coalesce_reads {
            return inner.client.getrange(key, len).await;
        }
        match batch::turn(inner, || Op::GetRange {
            key: key.to_owned(),
            len,
        }) {
            Turn::Direct(_sending) => inner.client.getrange(key, len).await,
            Turn::Queued(rx) => match batch::queued_reply(rx).await? {
                Reply::Bytes(b) => Ok(b),
                _ => Err(wrong_reply()),
            },
        }
    }

    /// `EXISTS key`, coalesced with concurrent commands when configured.
    async fn exists_one(&self, key: &str) -> Result<bool> {
        let inner = &self.inner;
        if !inner.coalesce_reads {
            return inner.client.exists(key).await;
        }
        match batch::turn(inner, || Op::Exists {
            key: key.to_owned(),
        }) {
            Turn::Direct(_sending) => inner.client.exists(key).await,
            Turn::Queued(rx) => match batch::queued_reply(rx).await? {
                Reply::Count(n) => Ok(n > 0),
                _ => Err(wrong_reply()),
            },
        }
    }

    /// `SET key value [PX ms]`, coalesced with concurrent commands when configured.
    ///
    /// Not an `async fn`: the client's future is made here and only it (with the coalescer's
    /// guard) is held, so the arguments are not stored twice and a write's future stays as
    /// small as without coalescing. The turn is taken when this is called, which for every
    /// caller is just before it is awaited.
    fn set_one<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        px_ms: Option<u64>,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        let inner = &self.inner;
        let mut value = Some(value);
        let sending = if inner.coalesce_writes {
            match batch::turn(inner, || {
                Op::Set(SetPx {
                    key: key.to_owned(),
                    value: value.take().unwrap_or_default(),
                    px_ms,
                })
            }) {
                Turn::Direct(guard) => Some(guard),
                Turn::Queued(rx) => {
                    return Either::Right(batch::queued_reply(rx).map(|r| match r? {
                        Reply::Done => Ok(()),
                        _ => Err(wrong_reply()),
                    }));
                }
            }
        } else {
            None
        };
        // `map`, not an `async` block: awaiting a captured future inside one would store it
        // twice (the capture and the awaited copy).
        let send = inner
            .client
            .set_px(key, value.take().unwrap_or_default(), px_ms);
        Either::Left(send.map(move |r| {
            drop(sending);
            r
        }))
    }

    /// `UNLINK key`, coalesced with concurrent commands when configured; how many existed.
    async fn unlink_one(&self, key: &str) -> Result<u64> {
        let inner = &self.inner;
        if !inner.coalesce_writes {
            return inner.client.unlink(&[key]).await;
        }
        match batch::turn(inner, || Op::Unlink {
            key: key.to_owned(),
        }) {
            Turn::Direct(_sending) => inner.client.unlink(&[key]).await,
            Turn::Queued(rx) => match batch::queued_reply(rx).await? {
                Reply::Count(n) => Ok(n),
                _ => Err(wrong_reply()),
            },
        }
    }

    /// One key, as [`SlidingReads`] says. The common case, a plain bounded read of a
    /// non-sliding entry, keeps its future small: the script paths are boxed, so their state is
    /// not part of (and copied with) every read's future.
    async fn read_one(&self, key: &str) -> Result<Option<Bytes>> {
        let (script_first, learn) = match self.inner.sliding {
            SlidingReads::Disabled => return self.get_bounded(key).await,
            SlidingReads::Script => (true, false),
            _ => (self.inner.hints.contains(key), true),
        };
        if script_first {
            return Box::pin(self.read_one_script(key, learn)).await;
        }
        let v = self.get_bounded(key).await?;
        if !v.as_deref().is_some_and(is_sliding) {
            return Ok(v);
        }
        Box::pin(async move {
            let mut v = [v];
            self.rearm_plain_hits(&[key], &mut v).await?;
            let [v] = v;
            Ok(v)
        })
        .await
    }

    /// A read through the script (`learn`: record what it found in the sliding hints).
    async fn read_one_script(&self, key: &str, learn: bool) -> Result<Option<Bytes>> {
        let v = self.script(&[key], "g").await?.pop().flatten();
        if learn && let Some(b) = &v {
            self.inner.hints.learn(key, is_sliding(b));
        }
        Ok(v)
    }

    /// Key index groups: per slot on a cluster, one group otherwise.
    fn groups(&self, keys: &[&str]) -> Vec<Vec<usize>> {
        if self.inner.topology.is_cluster() {
            group_by_slot(keys)
        } else {
            vec![(0..keys.len()).collect()]
        }
    }

    fn check_entry(&self, value: &Bytes, expiry: &Expiry) -> Result<()> {
        if value.len() > self.inner.max_entry {
            return Err(Error::new(
                ErrorKind::ValueTooLarge,
                "the entry is larger than the Redis backend's max_entry_size",
            )
            .with_context("backend", "redis"));
        }
        if expiry.sliding.is_some() && self.inner.sliding == SlidingReads::Disabled {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "sliding expiration needs SlidingReads::Script on this Redis backend",
            )
            .with_context("backend", "redis"));
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
            .with_native_batch(true)
            .with_cluster(self.inner.topology.is_cluster())
            .with_distributed(true)
            .with_max_value_size(Some(self.inner.max_entry.min(MAX_VALUE_SIZE)))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.read_one(key)
            .await
            .map_err(|e| e.with_operation("get"))
    }

    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.check_entry(&value, &expiry)
            .map_err(|e| e.with_operation("set"))?;
        self.inner.hints.learn(key, expiry.sliding.is_some());
        let r = match px_now(&expiry) {
            Ok(px) => self.set_one(key, value, px).await,
            // Already due: the key must not hold a live value afterwards.
            Err(()) => self.unlink_one(key).await.map(|_| ()),
        };
        r.map_err(|e| e.with_operation("set"))
    }

    /// `SET key value NX PX ttl`: atomic on every topology.
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.check_entry(&value, &expiry)
            .map_err(|e| e.with_operation("set_if_absent"))?;
        let r = match px_now(&expiry) {
            Ok(px) => {
                let stored = self.inner.client.set_nx_px(key, value, px).await;
                if let Ok(true) = stored {
                    self.inner.hints.learn(key, expiry.sliding.is_some());
                }
                stored
            }
            // Already due: nothing is stored.
            Err(()) => Ok(false),
        };
        r.map_err(|e| e.with_operation("set_if_absent"))
    }

    /// A compare-and-delete Lua script: atomic on every topology.
    async fn remove_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool> {
        self.inner
            .client
            .del_if_equals(key, Bytes::copy_from_slice(expected))
            .await
            .map_err(|e| e.with_operation("remove_if_equals"))
    }

    async fn remove(&self, key: &str) -> Result<bool> {
        self.inner.hints.remove(key);
        self.unlink_one(key)
            .await
            .map(|n| n > 0)
            .map_err(|e| e.with_operation("remove"))
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        self.inner
            .client
            .exists(key)
            .await
            .map_err(|e| e.with_operation("exists"))
    }

    async fn touch(&self, key: &str) -> Result<bool> {
        let r = match self.inner.sliding {
            SlidingReads::Disabled => self.inner.client.exists(key).await,
            _ => self
                .script(&[key], "t")
                .await
                .map(|v| v.first().is_some_and(Option::is_some)),
        };
        r.map_err(|e| e.with_operation("touch"))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if !self.inner.topology.is_cluster() {
            // one group in key order: no index lists, no reordering
            return self
                .read_group(keys)
                .await
                .map_err(|e| e.with_operation("get_many"));
        }
        let groups = self.groups(keys);
        let futs = groups.iter().map(|g| async move {
            let ks: Vec<&str> = g.iter().map(|&i| keys[i]).collect();
            self.read_group(&ks).await
        });
        let results = futures::future::try_join_all(futs)
            .await
            .map_err(|e| e.with_operation("get_many"))?;
        let mut out = vec![None; keys.len()];
        for (g, values) in groups.iter().zip(results) {
            for (&i, v) in g.iter().zip(values) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    async fn set_many(&self, entries: Vec<BackendEntry>) -> Result<()> {
        for e in &entries {
            self.check_entry(&e.value, &e.expiry)
                .map_err(|e| e.with_operation("set_many"))?;
        }
        let now = now_ms();
        let mut due = Vec::new();
        let mut sets = Vec::with_capacity(entries.len());
        for e in entries {
            self.inner.hints.learn(&e.key, e.expiry.sliding.is_some());
            match px_for(&e.expiry, now) {
                Ok(px_ms) => sets.push(SetPx {
                    key: e.key,
                    value: e.value,
                    px_ms,
                }),
                Err(()) => due.push(e.key),
            }
        }
        let write = async {
            if sets.is_empty() {
                Ok(())
            } else {
                self.inner.client.set_many_px(sets).await
            }
        };
        let drop_due = async {
            if due.is_empty() {
                Ok(0)
            } else {
                let due: Vec<&str> = due.iter().map(String::as_str).collect();
                self.remove_many(&due).await
            }
        };
        let (w, d) = futures::join!(write, drop_due);
        w.and(d.map(|_| ()))
            .map_err(|e| e.with_operation("set_many"))
    }

    /// One atomic Lua script (`set_if_guard_script` in `scripts.rs`): one round trip.
    /// On a cluster the guard and every entry must share a hash slot (tenancy's keys do,
    /// through their `{<tenant>}` hash tag); other keys are an `InvalidConfig` error.
    async fn set_many_guarded(
        &self,
        guard: &str,
        expected: &[u8],
        entries: Vec<BackendEntry>,
    ) -> Result<Outcome<()>> {
        let op = |e: Error| e.with_operation("set_many_guarded");
        for e in &entries {
            self.check_entry(&e.value, &e.expiry).map_err(op)?;
        }
        let slot = crate::slot::key_slot(guard.as_bytes());
        if self.inner.topology.is_cluster()
            && entries
                .iter()
                .any(|e| crate::slot::key_slot(e.key.as_bytes()) != slot)
        {
            return Err(op(Error::new(
                ErrorKind::InvalidConfig,
                "a guarded write on Redis Cluster needs the guard and every entry in one hash slot",
            )));
        }
        let now = now_ms();
        let mut keys = Vec::with_capacity(entries.len() + 1);
        keys.push(guard);
        let mut args = Vec::with_capacity(2 * entries.len() + 1);
        args.push(Bytes::copy_from_slice(expected));
        for e in &entries {
            self.inner.hints.learn(&e.key, e.expiry.sliding.is_some());
            keys.push(e.key.as_str());
            args.push(e.value.clone());
            args.push(match px_for(&e.expiry, now) {
                Ok(Some(ms)) => Bytes::from(ms.to_string()),
                Ok(None) => Bytes::new(),
                Err(()) => Bytes::from_static(b"-"),
            });
        }
        let reply = self
            .inner
            .client
            .eval_bytes(&self.inner.guard_script, &keys, args)
            .await
            .map_err(op)?;
        Ok(if reply.is_empty() {
            Outcome::Done(())
        } else {
            Outcome::Stale(reply.into_iter().nth(1).flatten())
        })
    }

    async fn remove_many(&self, keys: &[&str]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let groups = self.groups(keys);
        let futs = groups.iter().map(|g| async move {
            let ks: Vec<&str> = g.iter().map(|&i| keys[i]).collect();
            self.inner.client.unlink(&ks).await
        });
        futures::future::try_join_all(futs)
            .await
            .map(|counts| counts.into_iter().sum())
            .map_err(|e| e.with_operation("remove_many"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn px_follows_expiry() {
        assert_eq!(px_for(&Expiry::NEVER, 1_000), Ok(None));
        assert_eq!(px_now(&Expiry::NEVER), Ok(None));
        assert_eq!(
            px_now(&Expiry::new(Some(now_ms() + 60_000), None))
                .map(|p| p.is_some_and(|ms| ms > 50_000)),
            Ok(true)
        );
        let abs = Expiry::new(Some(5_000), None);
        assert_eq!(px_for(&abs, 1_000), Ok(Some(4_000)));
        assert_eq!(px_for(&abs, 5_000), Err(()));
        assert_eq!(px_for(&abs, 9_000), Err(()));
        let sliding = Expiry::new(Some(5_000), Some(Duration::from_millis(1_500)));
        assert_eq!(px_for(&sliding, 1_000), Ok(Some(1_500)));
        assert_eq!(px_for(&sliding, 4_000), Ok(Some(1_000)));
        // far-future expiries are clamped into the range Redis accepts
        let far = Expiry::new(Some(u64::MAX), None);
        assert_eq!(px_for(&far, 1_000), Ok(Some(MAX_PX_MS)));
        let slide_max = Expiry::new(None, Some(Duration::MAX));
        assert_eq!(px_for(&slide_max, 1_000), Ok(Some(MAX_PX_MS)));
        assert!(i64::try_from(MAX_PX_MS).is_ok_and(|ms| ms < i64::MAX / 2));
    }

    #[test]
    fn eviction_mapping() {
        assert_eq!(maxmemory_policy_for("lru"), Some("allkeys-lru"));
        assert_eq!(maxmemory_policy_for("lfu"), Some("allkeys-lfu"));
        assert_eq!(maxmemory_policy_for("time"), Some("volatile-ttl"));
        assert_eq!(maxmemory_policy_for("random"), None);
    }
}
