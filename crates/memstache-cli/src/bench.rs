//! `memstache bench`: memstache beside its raw peer, measured in the same run.
//!
//! * Embedded (the default): `MemStache` `get` / `set` of a `--value-bytes` `String` on the
//!   memory backend, beside `moka::future::Cache` `get` / `insert` of the same value.
//! * `--redis URL` (feature `redis`): memstache `get` / `set` over `RedisBackend`, beside the
//!   same work by hand (postcard + redis-rs) and raw-bytes `GET` / `SET` on redis-rs, with
//!   `--inflight` requests in flight on one connection each.
//!
//! The rows of a group run in interleaved rounds: each round runs every row once, starting one
//! row later than the round before. A row's figure is its median over rounds; a ratio is the
//! median of the per-round ratios, so both sides were measured seconds apart. Nothing here is
//! a pass/fail check: the targets are printed beside the ratios for the reader.
//!
//! The harness (rows, interleaved rounds, client CPU, ratios, the printed table) and the
//! memstache and redis-rs peers are the `memstache-bench` crate's, shared with
//! `benches/redis.rs`; only moka's peer is written here.

use memstache::MemStache;
use memstache_bench::{Bench, DynPeer, Keys, MemStachePeer, Op, Peer, Report};

/// The knobs of one bench run.
#[derive(Debug, Clone)]
pub(crate) struct BenchConfig {
    pub(crate) ops: usize,
    pub(crate) rounds: usize,
    pub(crate) inflight: usize,
    pub(crate) value_bytes: usize,
    pub(crate) redis: Option<String>,
}

impl BenchConfig {
    /// Checks the ranges clap cannot express; the message names the flag.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.ops == 0 {
            return Err("--ops must be at least 1".into());
        }
        if self.rounds == 0 {
            return Err("--rounds must be at least 1".into());
        }
        if self.inflight == 0 {
            return Err("--inflight must be at least 1".into());
        }
        Ok(())
    }
}

/// Runs the bench the configuration asks for.
pub(crate) fn run(config: &BenchConfig) -> Result<Report, String> {
    config.validate()?;
    match &config.redis {
        None => embedded(config),
        #[cfg(feature = "redis")]
        Some(url) => on_redis::run(config, url),
        #[cfg(not(feature = "redis"))]
        Some(_) => Err("--redis needs a memstache built with `--features redis`".into()),
    }
}

/// moka's `get` / `insert` of the same value: the raw peer of the embedded cache.
struct MokaPeer {
    cache: moka::future::Cache<String, String>,
    keys: Keys,
    value: String,
}

impl Peer for MokaPeer {
    fn name(&self, op: Op) -> String {
        match op {
            Op::Set => "moka insert".into(),
            _ => format!("moka {op}"),
        }
    }

    async fn fill(&self) -> Result<(), String> {
        for k in self.keys.all_read() {
            self.cache.insert(k.clone(), self.value.clone()).await;
        }
        Ok(())
    }

    async fn get(&self, i: usize) {
        let got = self.cache.get(self.keys.read(i)).await;
        assert!(got.is_some(), "every key was filled");
    }

    async fn set(&self, i: usize) {
        self.cache
            .insert(self.keys.write(i).to_owned(), self.value.clone())
            .await;
    }
}

/// The reads and writes groups of `peers`, `ops` calls per row and round, `inflight` at once.
fn measure(bench: &mut Bench, peers: &[&dyn DynPeer], ops: usize, inflight: usize) {
    for (title, op) in [("reads", Op::Get), ("writes", Op::Set)] {
        let rows = memstache_bench::rows(peers, op, ops, inflight, "");
        bench.group(title, rows);
    }
}

/// memstache on the memory backend beside moka, sequentially on a current-thread runtime.
fn embedded(config: &BenchConfig) -> Result<Report, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
    let v = memstache_bench::text_value(config.value_bytes);
    let cache = MemStache::builder()
        .build()
        .map_err(|e| format!("cannot build the cache: {e}"))?;
    let keys = Keys::new("bench:", "bench:");
    let memstache = MemStachePeer::new(" (memory backend)", cache, keys.clone(), v.clone());
    let moka = MokaPeer {
        cache: moka::future::Cache::new(memstache_bench::KEYS as u64 * 2),
        keys,
        value: v,
    };
    let peers: [&dyn DynPeer; 2] = [&memstache, &moka];
    rt.block_on(memstache_bench::fill_all(&peers))?;
    let mut bench = Bench::new(rt, config.rounds).title(format!(
        "memstache bench: embedded, {} B values, {} interleaved rounds of {} sequential operations",
        config.value_bytes, config.rounds, config.ops
    ));
    measure(&mut bench, &peers, config.ops, 1);
    bench.ratio(
        "memstache get / moka get",
        "memstache get (memory backend)",
        "moka get",
        None,
    );
    bench.ratio(
        "memstache set / moka insert",
        "memstache set (memory backend)",
        "moka insert",
        None,
    );
    Ok(bench.into_report())
}

#[cfg(feature = "redis")]
mod on_redis {
    //! memstache over `RedisBackend` beside hand-rolled and raw redis-rs.

    use memstache::MemStache;
    use memstache::redis::RedisBackend;
    use memstache_bench::redis_rs::{self, HandRolled, RedisRsRaw};
    use memstache_bench::{Bench, DynPeer, Keys, MemStachePeer, Report};

    use super::{BenchConfig, measure};

    pub(super) fn run(config: &BenchConfig, url: &str) -> Result<Report, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the tokio runtime: {e}"))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let namespace = format!("memstache-bench-{}-{nanos}", std::process::id());
        let v = memstache_bench::text_value(config.value_bytes);
        // the raw rows store what the hand-rolled ones do, so both read the same bytes
        let encoded = redis_rs::encode(&v);
        // raw and hand-rolled rows read and write the same keys (both hold postcard bytes)
        let raw_keys = Keys::new(&format!("{namespace}:raw:"), &format!("{namespace}:raw:"));
        let cache_keys = Keys::new("k", "k");
        let (cache, conn) = rt.block_on(async {
            // errors never echo the URL: it may hold a password
            let backend = RedisBackend::connect(url)
                .await
                .map_err(|e| format!("cannot connect memstache to Redis: {e}"))?;
            let cache = MemStache::builder()
                .namespace(namespace.as_str())
                .backend(backend)
                .build()
                .map_err(|e| format!("cannot build the cache: {e}"))?;
            let conn = redis_rs::connect(url).await?;
            Ok::<_, String>((cache, conn))
        })?;
        let raw = RedisRsRaw::new("", conn.clone(), raw_keys.clone(), encoded);
        let hand = HandRolled::new(conn.clone(), raw_keys.clone(), v.clone());
        let memstache = MemStachePeer::new("", cache.clone(), cache_keys.clone(), v);
        let peers: [&dyn DynPeer; 3] = [&raw, &hand, &memstache];
        rt.block_on(memstache_bench::fill_all(&peers))?;

        let mut bench = Bench::new(rt, config.rounds).title(format!(
            "memstache bench: Redis, {} B values, {} interleaved rounds of {} operations, {} in flight",
            config.value_bytes, config.rounds, config.ops, config.inflight
        ));
        measure(&mut bench, &peers, config.ops, config.inflight);
        let hand_get = "hand-rolled get (postcard + redis-rs GET)";
        let hand_set = "hand-rolled set (postcard + redis-rs SET)";
        bench.ratio(
            "memstache get / hand-rolled get",
            "memstache get",
            hand_get,
            Some(0.95),
        );
        bench.ratio(
            "memstache set / hand-rolled set",
            "memstache set",
            hand_set,
            Some(0.95),
        );
        bench.ratio(
            "memstache get / raw GET",
            "memstache get",
            "redis-rs raw GET",
            Some(0.8),
        );
        bench.ratio(
            "memstache set / raw SET",
            "memstache set",
            "redis-rs raw SET",
            None,
        );

        // leave the server as it was found
        bench.runtime().block_on(async {
            let _ = cache.remove_many(cache_keys.all_read()).await;
            let _ = redis_rs::unlink(&conn, raw_keys.all_read()).await;
        });
        Ok(bench.into_report())
    }
}
