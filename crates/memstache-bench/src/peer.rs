//! The peer abstraction: one thing to measure `get` and `set` on, and the rows built from it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use memstache::raw::{Backend, Expiry};
use memstache::{EntryOptions, MemStache};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::harness::{Row, row};

/// Distinct keys a workload cycles through.
pub const KEYS: usize = 1_000;

/// A single-key operation a row measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// A read of a key that was filled (every read is a hit).
    Get,
    /// A write.
    Set,
}

impl Op {
    /// `get` / `set`.
    pub fn lower(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Set => "set",
        }
    }

    /// `GET` / `SET`, as the Redis command.
    pub fn upper(self) -> &'static str {
        match self {
            Op::Get => "GET",
            Op::Set => "SET",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.lower())
    }
}

/// The keys a peer reads (filled by [`Peer::fill`]) and writes, [`KEYS`] of each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    read: Vec<String>,
    write: Vec<String>,
}

impl Keys {
    /// Reads `{read_prefix}{i}` and writes `{write_prefix}{i}` for `i` in `0..KEYS`.
    ///
    /// ```
    /// let k = memstache_bench::Keys::new("bench:", "w:");
    /// assert_eq!(k.read(1_001), "bench:1");
    /// assert_eq!(k.write(2), "w:2");
    /// ```
    pub fn new(read_prefix: &str, write_prefix: &str) -> Self {
        let keys = |p: &str| (0..KEYS).map(|i| format!("{p}{i}")).collect();
        Keys {
            read: keys(read_prefix),
            write: keys(write_prefix),
        }
    }

    /// The key the `i`-th read uses.
    pub fn read(&self, i: usize) -> &str {
        &self.read[i % self.read.len()]
    }

    /// The key the `i`-th write uses.
    pub fn write(&self, i: usize) -> &str {
        &self.write[i % self.write.len()]
    }

    /// Every read key.
    pub fn all_read(&self) -> &[String] {
        &self.read
    }

    /// Every key, read and write (for cleaning up afterwards).
    pub fn all(&self) -> impl Iterator<Item = &String> {
        self.read.iter().chain(&self.write)
    }
}

/// Something to measure `get` and `set` of one value on: memstache, or the raw client or
/// hand-rolled code it is compared with. A row is written once for every peer
/// ([`DynPeer::row`]); a client is a constructor argument, not a copy of the row.
///
/// `get(i)` reads the `i`-th key (a hit: it panics otherwise, as a wrong bench must not report a
/// number), `set(i)` writes the `i`-th. Panics inside a row are the harness's way to stop a
/// broken measurement; [`fill`](Peer::fill) reports errors as values.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
///
/// use memstache_bench::{Bench, DynPeer, Keys, Op, Peer};
///
/// /// A `HashMap` behind a mutex, as a peer.
/// struct MapPeer {
///     map: Mutex<HashMap<String, String>>,
///     keys: Keys,
/// }
///
/// impl Peer for MapPeer {
///     fn name(&self, op: Op) -> String {
///         format!("map {op}")
///     }
///     async fn fill(&self) -> Result<(), String> {
///         let mut m = self.map.lock().unwrap();
///         for k in self.keys.all_read() {
///             m.insert(k.clone(), "v".into());
///         }
///         Ok(())
///     }
///     async fn get(&self, i: usize) {
///         assert!(self.map.lock().unwrap().contains_key(self.keys.read(i)));
///     }
///     async fn set(&self, i: usize) {
///         let k = self.keys.write(i).to_owned();
///         self.map.lock().unwrap().insert(k, "v".into());
///     }
/// }
///
/// let peer = MapPeer { map: Mutex::default(), keys: Keys::new("k", "w") };
/// let peers: [&dyn DynPeer; 1] = [&peer];
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// rt.block_on(memstache_bench::fill_all(&peers)).unwrap();
/// let mut bench = Bench::new(rt, 2);
/// bench.group("reads", memstache_bench::rows(&peers, Op::Get, 1_000, 1, " @1"));
/// assert!(bench.find("map get @1").is_some());
/// ```
pub trait Peer {
    /// The row's name for `op`, e.g. `redis-rs raw GET` or `memstache get on fred`.
    fn name(&self, op: Op) -> String;

    /// Writes every key `get` reads.
    fn fill(&self) -> impl Future<Output = Result<(), String>>;

    /// Reads the `i`-th key.
    fn get(&self, i: usize) -> impl Future<Output = ()>;

    /// Writes the `i`-th key.
    fn set(&self, i: usize) -> impl Future<Output = ()>;
}

/// A [`Peer`] as an object, so that a group's rows can be built from a list of different
/// peers. Implemented for every `Peer`; the operation futures stay unboxed (the row's workload
/// is boxed once per run).
pub trait DynPeer {
    /// [`Peer::name`].
    fn name(&self, op: Op) -> String;

    /// [`Peer::fill`], boxed.
    fn fill(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>>;

    /// The row of `ops` calls of `op`, `inflight` at once, named [`Peer::name`] + `suffix`.
    fn row(&self, op: Op, ops: usize, inflight: usize, suffix: &str) -> Row<'_>;
}

impl<P: Peer> DynPeer for P {
    fn name(&self, op: Op) -> String {
        Peer::name(self, op)
    }

    fn fill(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + '_>> {
        Box::pin(Peer::fill(self))
    }

    fn row(&self, op: Op, ops: usize, inflight: usize, suffix: &str) -> Row<'_> {
        let name = format!("{}{suffix}", Peer::name(self, op));
        match op {
            Op::Get => row(name, "ops/s", 1, ops, inflight, move |i| self.get(i)),
            Op::Set => row(name, "ops/s", 1, ops, inflight, move |i| self.set(i)),
        }
    }
}

/// The rows of `op` for every peer, in order.
pub fn rows<'a>(
    peers: &[&'a dyn DynPeer],
    op: Op,
    ops: usize,
    inflight: usize,
    suffix: &str,
) -> Vec<Row<'a>> {
    peers
        .iter()
        .map(|p| p.row(op, ops, inflight, suffix))
        .collect()
}

/// Fills every peer's read keys.
pub async fn fill_all(peers: &[&dyn DynPeer]) -> Result<(), String> {
    for p in peers {
        p.fill().await?;
    }
    Ok(())
}

/// memstache `get` / `set` of a `T` over a [`MemStache`], with the default entry options.
/// Named `memstache {op}{label}`, e.g. label ` on redis-rs`.
///
/// ```
/// use memstache_bench::{Keys, MemStachePeer, Op, Peer};
///
/// let cache = memstache::MemStache::builder().build().unwrap();
/// let peer = MemStachePeer::new(" (memory backend)", cache, Keys::new("k", "w"), 7u64);
/// assert_eq!(peer.name(Op::Get), "memstache get (memory backend)");
/// ```
#[derive(Debug)]
pub struct MemStachePeer<T> {
    label: String,
    cache: MemStache,
    keys: Keys,
    value: T,
}

impl<T> MemStachePeer<T> {
    /// A peer on `cache` writing `value`.
    pub fn new(label: impl Into<String>, cache: MemStache, keys: Keys, value: T) -> Self {
        MemStachePeer {
            label: label.into(),
            cache,
            keys,
            value,
        }
    }

    /// The cache.
    pub fn cache(&self) -> &MemStache {
        &self.cache
    }

    /// The keys.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }
}

impl<T: Serialize + DeserializeOwned> Peer for MemStachePeer<T> {
    fn name(&self, op: Op) -> String {
        format!("memstache {op}{}", self.label)
    }

    async fn fill(&self) -> Result<(), String> {
        for k in self.keys.all_read() {
            self.cache
                .set(k, &self.value, EntryOptions::default())
                .await
                .map_err(|e| format!("cannot fill the cache: {e}"))?;
        }
        Ok(())
    }

    async fn get(&self, i: usize) {
        let got: Option<T> = self
            .cache
            .get(self.keys.read(i))
            .await
            .expect("memstache get");
        assert!(got.is_some(), "every key was filled");
    }

    async fn set(&self, i: usize) {
        self.cache
            .set(self.keys.write(i), &self.value, EntryOptions::default())
            .await
            .expect("memstache set");
    }
}

/// Raw bytes through the plugin SPI's [`Backend`] `get` / `set` (no envelope, no pipeline):
/// what a backend costs under memstache. Named `{label}::{op}{suffix}`.
#[derive(Debug)]
pub struct BackendPeer<B> {
    label: String,
    suffix: String,
    backend: B,
    keys: Keys,
    bytes: Bytes,
}

impl<B> BackendPeer<B> {
    /// A peer writing `bytes` through `backend`, e.g. label `RedisBackend`, suffix
    /// ` on fred (raw Backend, bytes)`.
    pub fn new(
        label: impl Into<String>,
        suffix: impl Into<String>,
        backend: B,
        keys: Keys,
        bytes: impl Into<Bytes>,
    ) -> Self {
        BackendPeer {
            label: label.into(),
            suffix: suffix.into(),
            backend,
            keys,
            bytes: bytes.into(),
        }
    }
}

impl<B: Backend> Peer for BackendPeer<B> {
    fn name(&self, op: Op) -> String {
        format!("{}::{op}{}", self.label, self.suffix)
    }

    async fn fill(&self) -> Result<(), String> {
        for k in self.keys.all_read() {
            self.backend
                .set(k, self.bytes.clone(), Expiry::NEVER)
                .await
                .map_err(|e| format!("cannot fill the backend: {e}"))?;
        }
        Ok(())
    }

    async fn get(&self, i: usize) {
        let got = self.backend.get(self.keys.read(i)).await.expect("get");
        assert!(got.is_some(), "every key was filled");
    }

    async fn set(&self, i: usize) {
        self.backend
            .set(self.keys.write(i), self.bytes.clone(), Expiry::NEVER)
            .await
            .expect("set");
    }
}

/// A deterministic ASCII text value of `bytes` bytes (seeded, so every run writes the same).
///
/// ```
/// let v = memstache_bench::text_value(1024);
/// assert_eq!(v.len(), 1024);
/// assert_eq!(v, memstache_bench::text_value(1024));
/// ```
pub fn text_value(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 24);
    let mut seed = 42u64;
    while s.len() < bytes {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s.push_str(&format!("{:x} ", seed >> 24));
    }
    s.truncate(bytes);
    s
}

/// A deterministic byte value of `bytes` bytes (the text value's bytes).
pub fn bytes_value(bytes: usize) -> Vec<u8> {
    text_value(bytes).into_bytes()
}
