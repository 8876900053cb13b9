//! memstache on Redis beside the same work done by hand, and beside the raw clients, against a
//! `redis-server` this bench starts itself (testkit harness), all in one run.
//!
//! `cargo bench -p memstache-benches --bench redis` — prints one table of medians (ops/s or
//! keys/s, and client CPU per operation) and the ratios the Redis issue sets as targets. For
//! sequential-latency rows (1 in flight) to mean anything, run client and server on one vCPU:
//! `taskset -c 0 cargo bench -p memstache-benches --bench redis` (the server inherits the
//! affinity). Set `MEMSTACHE_BENCH_RUNS` to change the number of rounds and
//! `MEMSTACHE_BENCH_FILTER` to run only rows whose name contains it.
//!
//! The timing harness (rows, interleaved rounds, client CPU, ratios, the table) and the peers
//! (memstache, raw `Backend`, raw / hand-rolled / checked hand-rolled redis-rs) are the
//! `memstache-bench` crate's, the same `memstache bench` (the CLI) runs on: a row is written
//! once per [`Peer`] and the groups are lists of peers. Only fred's peers live here (fred is a
//! bench-only dependency).
//!
//! Rows, one connection each, 1 KiB values, postcard, no compression or encryption:
//! * `fred` / `redis-rs` raw bytes `GET` / `SET`;
//! * hand-rolled: postcard + raw `GET` / `SET` on each client (what memstache does, minus
//!   memstache), and the *checked* hand-rolled path on redis-rs (postcard + CRC-32 over key and
//!   bytes + the same operation timeout: memstache's guarantees by hand);
//! * `RedisBackend` through the raw `Backend` trait, and memstache `get` / `set` over it, on
//!   each client, with coalescing off (`coalesce=false`) and on (`, coalesce` rows); `get` also
//!   without the operation timeout and with `SlidingReads::Script`; `get` / `set` with
//!   `tcp_nodelay=false` beside the default (on), at 1 and at 64 in flight;
//! * value types at 64 in flight on redis-rs: memstache `get` / `set` of a 1 KiB `Vec<u8>`, a
//!   1 KiB `String` and a small struct of about 1 KiB, beside raw `GET` / `SET` of 1 KiB;
//! * `get_many(100)` beside 100 single `get`s, hand-rolled `MGET` + postcard, and raw `MGET`.
//!
//! Not a criterion bench: the targets are ratios of rows that must come from the same run and
//! the same server. Rows are measured in **interleaved rounds** (every row of a group once per
//! round, in a rotating order), so a ratio is the median of per-round ratios of measurements
//! taken seconds apart: on a shared VM whose speed drifts by ±30 % over a minute, running one
//! row's five runs and then the other's would measure the drift, not the code.

use fred::prelude::{ClientLike, KeysInterface};
use futures::StreamExt;
use memstache::MemStache;
use memstache_bench::redis_rs::{
    self, CHECKED_TIMEOUT, CheckedHandRolled, HandRolled, RedisRsRaw, checked_decode,
};
use memstache_bench::{
    BackendPeer, Bench, DynPeer, Keys, MemStachePeer, Op, Peer, bytes_value, row, rows, text_value,
};
use memstache_harness::redis::RedisServer;
use memstache_redis::RedisBackend;
use serde::{Deserialize, Serialize};

const BATCH: usize = 100;

/// fred raw bytes `GET` / `SET`.
struct FredRaw {
    client: fred::prelude::Client,
    keys: Keys,
    bytes: Vec<u8>,
}

impl Peer for FredRaw {
    fn name(&self, op: Op) -> String {
        format!("fred raw {}", op.upper())
    }

    async fn fill(&self) -> Result<(), String> {
        for k in self.keys.all_read() {
            let _: () = self
                .client
                .set(k.as_str(), self.bytes.as_slice(), None, None, false)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn get(&self, i: usize) {
        let x: Option<bytes::Bytes> = self.client.get(self.keys.read(i)).await.expect("get");
        assert!(x.is_some());
    }

    async fn set(&self, i: usize) {
        let _: () = self
            .client
            .set(self.keys.write(i), self.bytes.as_slice(), None, None, false)
            .await
            .expect("set");
    }
}

/// postcard + fred `GET` / `SET` of a `String`.
struct FredHandRolled {
    client: fred::prelude::Client,
    keys: Keys,
    value: String,
}

impl Peer for FredHandRolled {
    fn name(&self, op: Op) -> String {
        format!("hand-rolled {op} (postcard + fred {})", op.upper())
    }

    async fn fill(&self) -> Result<(), String> {
        let bytes = redis_rs::encode(&self.value);
        for k in self.keys.all_read() {
            let _: () = self
                .client
                .set(k.as_str(), bytes.as_slice(), None, None, false)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    async fn get(&self, i: usize) {
        let x: Option<bytes::Bytes> = self.client.get(self.keys.read(i)).await.expect("get");
        let s: String = postcard::from_bytes(&x.expect("hit")).expect("decode");
        std::hint::black_box(s);
    }

    async fn set(&self, i: usize) {
        let bytes = postcard::to_allocvec(&self.value).expect("encode");
        let _: () = self
            .client
            .set(self.keys.write(i), bytes, None, None, false)
            .await
            .expect("set");
    }
}

/// A small struct of about 1 KiB, as a service caches a record.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Profile {
    id: u64,
    name: String,
    email: String,
    tags: Vec<String>,
    bio: String,
    score: f64,
    active: bool,
}

fn profile() -> Profile {
    let text = text_value(1024);
    Profile {
        id: 42,
        name: text[..24].to_owned(),
        email: format!("{}@example.com", &text[24..40]),
        tags: (0..8)
            .map(|i| text[40 + i * 16..56 + i * 16].to_owned())
            .collect(),
        bio: text[168..968].to_owned(),
        score: 0.75,
        active: true,
    }
}

/// The `i`-th batch of `BATCH` keys of `keys` (wrapping around).
fn window(keys: &[String], i: usize) -> &[String] {
    let start = (i * BATCH) % keys.len();
    &keys[start..start + BATCH]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = RedisServer::start();
    let url = server.url();
    let v = text_value(1024);
    let raw_value = redis_rs::encode(&v);
    let keys = Keys::new("bench:", "w:");
    let checked_keys = Keys::new("c:bench:", "c:w:");

    // --- clients: raw fred and redis-rs, and RedisBackend + MemStache on each
    let connect = |query: String| {
        let url = format!("{url}?{query}");
        async move { RedisBackend::connect(&url).await.expect("backend") }
    };
    let cache_on = |backend: RedisBackend| {
        MemStache::builder()
            .namespace("m")
            .backend(backend)
            .build()
            .expect("cache")
    };
    let (fred, redisrs, backends, coalesced_backends, cache_nt, script, nodelay_off) =
        rt.block_on(async {
            let fred = fred::prelude::Builder::from_config(
                fred::prelude::Config::from_url(&url).expect("fred url"),
            )
            .build()
            .expect("fred client");
            fred.init().await.expect("fred connect");
            let redisrs = redis_rs::connect(&url).await.expect("redis-rs connect");
            let mut backends = Vec::new();
            let mut coalesced = Vec::new();
            for client in ["fred", "redis-rs"] {
                backends.push((
                    client,
                    connect(format!("client={client}&coalesce=false")).await,
                ));
                coalesced.push((
                    client,
                    connect(format!("client={client}&coalesce=true")).await,
                ));
            }
            let rr = backends[1].1.clone();
            let cache_nt = MemStache::builder()
                .namespace("m")
                .backend(rr)
                .operation_timeout(None)
                .build()
                .expect("cache");
            let script =
                connect("client=redis-rs&coalesce=false&sliding_reads=script".into()).await;
            let nodelay_off =
                connect("client=redis-rs&coalesce=false&tcp_nodelay=false".into()).await;
            (
                fred,
                redisrs,
                backends,
                coalesced,
                cache_nt,
                script,
                nodelay_off,
            )
        });

    // --- peers: a row is written once per peer, the groups are lists of peers
    let fred_raw = FredRaw {
        client: fred.clone(),
        keys: keys.clone(),
        bytes: raw_value.clone(),
    };
    let fred_hand = FredHandRolled {
        client: fred.clone(),
        keys: keys.clone(),
        value: v.clone(),
    };
    let rr_raw = RedisRsRaw::new("", redisrs.clone(), keys.clone(), raw_value.clone());
    let rr_hand = HandRolled::new(redisrs.clone(), keys.clone(), v.clone());
    let rr_checked = CheckedHandRolled::new(redisrs.clone(), checked_keys.clone(), v.clone());
    let memstache = |label: String, backend: RedisBackend| {
        MemStachePeer::new(label, cache_on(backend), keys.clone(), v.clone())
    };
    let raw_backends: Vec<_> = backends
        .iter()
        .map(|(client, b)| {
            let suffix = format!(" on {client} (raw Backend, bytes)");
            BackendPeer::new(
                "RedisBackend",
                suffix,
                b.clone(),
                keys.clone(),
                raw_value.clone(),
            )
        })
        .collect();
    let caches: Vec<_> = backends
        .iter()
        .map(|(client, b)| memstache(format!(" on {client}"), b.clone()))
        .collect();
    let coalesced: Vec<_> = coalesced_backends
        .iter()
        .map(|(client, b)| memstache(format!(" on {client}, coalesce"), b.clone()))
        .collect();
    let nt = MemStachePeer::new(
        " on redis-rs, no operation_timeout",
        cache_nt,
        keys.clone(),
        v.clone(),
    );
    let script = memstache(" on redis-rs, SlidingReads::Script".into(), script);
    let nodelay_off = memstache(" on redis-rs, tcp_nodelay=false".into(), nodelay_off);

    // value types, 64 in flight on redis-rs (coalescing off), each on keys of its own
    let rr_backend = backends[1].1.clone();
    let vt_keys = |t: &str| Keys::new(&format!("vt:{t}:"), &format!("vt:{t}:w:"));
    let vt_raw = RedisRsRaw::new(
        " (1 KiB bytes)",
        redisrs.clone(),
        vt_keys("raw"),
        bytes_value(1024),
    );
    let vt_bytes = MemStachePeer::new(
        " on redis-rs, Vec<u8> 1 KiB",
        cache_on(rr_backend.clone()),
        vt_keys("bytes"),
        bytes_value(1024),
    );
    let vt_string = MemStachePeer::new(
        " on redis-rs, String 1 KiB",
        cache_on(rr_backend.clone()),
        vt_keys("string"),
        text_value(1024),
    );
    let vt_struct = MemStachePeer::new(
        " on redis-rs, struct ~1 KiB",
        cache_on(rr_backend),
        vt_keys("struct"),
        profile(),
    );

    let mut single: Vec<&dyn DynPeer> = vec![&fred_raw, &rr_raw, &fred_hand, &rr_hand, &rr_checked];
    for (b, c) in raw_backends.iter().zip(&caches) {
        single.push(b);
        single.push(c);
    }
    for c in &coalesced {
        single.push(c);
    }
    single.push(&nodelay_off);
    let reads: Vec<&dyn DynPeer> = single
        .iter()
        .copied()
        .chain([&nt as &dyn DynPeer, &script])
        .collect();
    let writes = single;
    let value_types: [&dyn DynPeer; 4] = [&vt_raw, &vt_bytes, &vt_string, &vt_struct];
    let mut b = Bench::from_env(rt, 5);
    b.runtime()
        .block_on(async {
            memstache_bench::fill_all(&reads).await?;
            memstache_bench::fill_all(&value_types).await
        })
        .expect("fill");

    println!(
        "memstache on Redis: {} interleaved rounds, 1 KiB values, one connection per client\n",
        b.rounds()
    );
    for inflight in [1usize, 64] {
        let ops = if inflight == 1 { 10_000 } else { 100_000 };
        let at = format!(" @{inflight}");
        b.group(
            &format!("reads, {inflight} in flight"),
            rows(&reads, Op::Get, ops, inflight, &at),
        );
        b.group(
            &format!("writes, {inflight} in flight"),
            rows(&writes, Op::Set, ops, inflight, &at),
        );
        for ((client, backend), peer) in coalesced_backends.iter().zip(&coalesced) {
            if b.find(&format!("{}{at}", Peer::name(peer, Op::Get)))
                .is_none()
                && b.find(&format!("{}{at}", Peer::name(peer, Op::Set)))
                    .is_none()
            {
                continue;
            }
            let s = backend.coalesce_stats();
            println!(
                "coalescing on {client} so far: {} sent alone, {} batches of {:.1} commands on average\n",
                s.direct,
                s.batches,
                s.batched as f64 / s.batches.max(1) as f64
            );
        }
    }
    let mut vt_rows = rows(&value_types, Op::Get, 100_000, 64, " @64");
    vt_rows.extend(rows(&value_types, Op::Set, 100_000, 64, " @64"));
    b.group("value types, 64 in flight, redis-rs", vt_rows);

    // --- batches of 100 keys, 8 batches in flight
    let (read_keys, checked_read) = (keys.all_read(), checked_keys.all_read());
    let batch = move |i: usize| window(read_keys, i);
    let batches = 2_000;
    let (fred, redisrs) = (&fred, &redisrs);
    let mut batch_rows = Vec::new();
    for ((client, _), peer) in backends.iter().zip(&caches) {
        let cache = peer.cache();
        batch_rows.push(row(
            format!("memstache get_many(100) on {client} @8"),
            "keys/s",
            BATCH,
            batches,
            8,
            move |i| {
                let ks = batch(i);
                async move {
                    let xs: Vec<Option<String>> = cache.get_many(ks).await.expect("get_many");
                    assert!(xs.iter().all(Option::is_some));
                }
            },
        ));
    }
    let rr_cache = caches[1].cache();
    batch_rows.extend([
        row(
            "memstache 100 × get on redis-rs (100 in flight) @8",
            "keys/s",
            BATCH,
            batches / 4,
            8,
            move |i| {
                let ks = batch(i);
                async move {
                    futures::stream::iter(ks)
                        .for_each_concurrent(BATCH, |k| async move {
                            let s: Option<String> = rr_cache.get(k).await.expect("get");
                            assert!(s.is_some());
                        })
                        .await;
                }
            },
        ),
        row(
            "hand-rolled MGET(100) + postcard, redis-rs @8",
            "keys/s",
            BATCH,
            batches,
            8,
            move |i| {
                let c = redisrs.clone();
                let ks = batch(i);
                async move {
                    for x in redis_rs::mget(c, ks).await {
                        let s: String = postcard::from_bytes(&x.expect("hit")).expect("decode");
                        std::hint::black_box(s);
                    }
                }
            },
        ),
        row(
            "hand-rolled checked MGET(100) + postcard (CRC-32 + timeout), redis-rs @8",
            "keys/s",
            BATCH,
            batches,
            8,
            move |i| {
                let c = redisrs.clone();
                let ks = window(checked_read, i);
                async move {
                    let xs = tokio::time::timeout(CHECKED_TIMEOUT, redis_rs::mget(c, ks))
                        .await
                        .expect("in time");
                    for (k, x) in ks.iter().zip(xs) {
                        std::hint::black_box(checked_decode::<String>(k, &x.expect("hit")));
                    }
                }
            },
        ),
        row(
            "fred raw MGET(100) @8",
            "keys/s",
            BATCH,
            batches,
            8,
            move |i| {
                let ks: Vec<String> = batch(i).to_vec();
                async move {
                    let xs: Vec<Option<bytes::Bytes>> = fred.mget(ks).await.expect("mget");
                    assert_eq!(xs.len(), BATCH);
                }
            },
        ),
        row(
            "redis-rs raw MGET(100) @8",
            "keys/s",
            BATCH,
            batches,
            8,
            move |i| {
                let c = redisrs.clone();
                let ks = batch(i);
                async move {
                    assert_eq!(redis_rs::mget(c, ks).await.len(), BATCH);
                }
            },
        ),
    ]);
    b.group("batches of 100 keys, 8 in flight", batch_rows);

    for client in ["redis-rs", "fred"] {
        b.ratio(
            &format!("memstache get / hand-rolled get, {client} @64"),
            &format!("memstache get on {client} @64"),
            &format!("hand-rolled get (postcard + {client} GET) @64"),
            Some(0.95),
        );
        b.ratio(
            &format!("memstache set / hand-rolled set, {client} @64"),
            &format!("memstache set on {client} @64"),
            &format!("hand-rolled set (postcard + {client} SET) @64"),
            Some(0.95),
        );
    }
    for op in ["get", "set"] {
        b.ratio(
            &format!("memstache {op} / checked hand-rolled {op} (CRC-32 + timeout), redis-rs @64"),
            &format!("memstache {op} on redis-rs @64"),
            &format!("hand-rolled checked {op} (postcard + CRC-32 + timeout, redis-rs) @64"),
            None,
        );
    }
    let fastest_get = b.faster("fred raw GET @64", "redis-rs raw GET @64");
    for client in ["redis-rs", "fred"] {
        b.ratio(
            &format!("memstache get ({client}) / {fastest_get} (fastest raw GET)"),
            &format!("memstache get on {client} @64"),
            fastest_get,
            Some(0.8),
        );
    }
    for client in ["redis-rs", "fred"] {
        b.ratio(
            &format!("memstache get ({client}, coalesce) / {fastest_get} (fastest raw GET)"),
            &format!("memstache get on {client}, coalesce @64"),
            fastest_get,
            Some(2.0),
        );
        b.ratio(
            &format!("memstache set ({client}, coalesce) / redis-rs raw SET"),
            &format!("memstache set on {client}, coalesce @64"),
            "redis-rs raw SET @64",
            Some(1.5),
        );
        for (op, hand) in [("get", "get"), ("set", "set")] {
            b.ratio(
                &format!("memstache {op} ({client}, coalesce) / hand-rolled {hand} @1 (latency)"),
                &format!("memstache {op} on {client}, coalesce @1"),
                &format!("hand-rolled checked {hand} (postcard + CRC-32 + timeout, redis-rs) @1"),
                None,
            );
        }
    }
    // latency at 1 in flight: memstache beside the checked hand-rolled path, p50 ≤ 1.05× and
    // p99 ≤ 1.10× (meaningful with client and server on one vCPU: `taskset -c 0`)
    for op in ["get", "set"] {
        let checked =
            format!("hand-rolled checked {op} (postcard + CRC-32 + timeout, redis-rs) @1");
        for (variant, row_name) in [
            ("", format!("memstache {op} on redis-rs @1")),
            (
                ", coalesce",
                format!("memstache {op} on redis-rs, coalesce @1"),
            ),
        ] {
            b.latency_ratio(
                &format!(
                    "latency: memstache {op} (redis-rs{variant}) / checked hand-rolled {op} @1"
                ),
                &row_name,
                &checked,
                Some((1.05, 1.10)),
            );
        }
    }
    let fastest_mget = b.faster("fred raw MGET(100) @8", "redis-rs raw MGET(100) @8");
    for client in ["redis-rs", "fred"] {
        b.ratio(
            &format!("memstache get_many(100) ({client}) / {fastest_mget}"),
            &format!("memstache get_many(100) on {client} @8"),
            fastest_mget,
            Some(0.9),
        );
    }
    for client in ["redis-rs", "fred"] {
        b.ratio(
            &format!("RedisBackend::get / raw GET, {client} @64"),
            &format!("RedisBackend::get on {client} (raw Backend, bytes) @64"),
            &format!("{client} raw GET @64"),
            None,
        );
    }
    for (label, a, bb) in [
        (
            "fred GET / redis-rs GET @64",
            "fred raw GET @64",
            "redis-rs raw GET @64",
        ),
        (
            "fred SET / redis-rs SET @64",
            "fred raw SET @64",
            "redis-rs raw SET @64",
        ),
        (
            "memstache get: no operation timeout / default, redis-rs @64",
            "memstache get on redis-rs, no operation_timeout @64",
            "memstache get on redis-rs @64",
        ),
        (
            "memstache get: Auto / Script read path, redis-rs @64",
            "memstache get on redis-rs @64",
            "memstache get on redis-rs, SlidingReads::Script @64",
        ),
        (
            "memstache get_many(100) / 100 single gets, redis-rs",
            "memstache get_many(100) on redis-rs @8",
            "memstache 100 × get on redis-rs (100 in flight) @8",
        ),
        (
            "memstache get_many(100) / checked hand-rolled MGET + postcard (CRC-32 + timeout), redis-rs",
            "memstache get_many(100) on redis-rs @8",
            "hand-rolled checked MGET(100) + postcard (CRC-32 + timeout), redis-rs @8",
        ),
        (
            "fred MGET / redis-rs MGET",
            "fred raw MGET(100) @8",
            "redis-rs raw MGET(100) @8",
        ),
        (
            "memstache get_many(100) / hand-rolled MGET + postcard, redis-rs",
            "memstache get_many(100) on redis-rs @8",
            "hand-rolled MGET(100) + postcard, redis-rs @8",
        ),
        (
            "memstache get / hand-rolled get @1, redis-rs (latency)",
            "memstache get on redis-rs @1",
            "hand-rolled get (postcard + redis-rs GET) @1",
        ),
        (
            "memstache set / hand-rolled set @1, redis-rs (latency)",
            "memstache set on redis-rs @1",
            "hand-rolled set (postcard + redis-rs SET) @1",
        ),
    ] {
        b.ratio(label, a, bb, None);
    }
    // value types: each beside raw bytes of the same size, and bytes beside text
    for op in [Op::Get, Op::Set] {
        let (o, up) = (op.lower(), op.upper());
        for t in ["Vec<u8> 1 KiB", "String 1 KiB", "struct ~1 KiB"] {
            b.ratio(
                &format!("memstache {o} {t} / raw {up} (1 KiB bytes), redis-rs @64"),
                &format!("memstache {o} on redis-rs, {t} @64"),
                &format!("redis-rs raw {up} (1 KiB bytes) @64"),
                None,
            );
        }
        b.ratio(
            &format!("memstache {o}: Vec<u8> / String (1 KiB), redis-rs @64"),
            &format!("memstache {o} on redis-rs, Vec<u8> 1 KiB @64"),
            &format!("memstache {o} on redis-rs, String 1 KiB @64"),
            None,
        );
    }
    // TCP_NODELAY: off beside the default (on)
    for inflight in [1, 64] {
        for o in ["get", "set"] {
            b.ratio(
                &format!("memstache {o}: tcp_nodelay=false / default (on), redis-rs @{inflight}"),
                &format!("memstache {o} on redis-rs, tcp_nodelay=false @{inflight}"),
                &format!("memstache {o} on redis-rs @{inflight}"),
                None,
            );
        }
    }
    drop(server);
}
