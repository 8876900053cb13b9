//! The redis-rs peers: raw bytes, and the same work as memstache done by hand.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::peer::{Keys, Op, Peer};

pub use redis::aio::MultiplexedConnection as Connection;

/// The operation timeout a careful hand-rolled cache puts around each call: memstache's default
/// for distributed backends.
pub const CHECKED_TIMEOUT: Duration = memstache::DEFAULT_DISTRIBUTED_TIMEOUT;

/// Opens one multiplexed redis-rs connection to `url`. The error never contains the URL (it
/// may hold a password): only the kind of failure.
pub async fn connect(url: &str) -> Result<MultiplexedConnection, String> {
    redis::Client::open(url)
        .map_err(|_| "redis-rs does not accept this URL".to_owned())?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("cannot connect redis-rs to Redis: {:?}", e.kind()))
}

/// `UNLINK`s `keys` (in one command), leaving the server as it was found.
pub async fn unlink<'k>(
    conn: &MultiplexedConnection,
    keys: impl IntoIterator<Item = &'k String>,
) -> Result<(), String> {
    let keys: Vec<&String> = keys.into_iter().collect();
    if keys.is_empty() {
        return Ok(());
    }
    let mut c = conn.clone();
    redis::cmd("UNLINK")
        .arg(keys)
        .query_async::<u64>(&mut c)
        .await
        .map(drop)
        .map_err(|e| format!("cannot remove the bench keys: {:?}", e.kind()))
}

/// redis-rs `GET key`, raw bytes.
pub async fn get(mut c: MultiplexedConnection, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query_async(&mut c)
        .await
        .expect("GET")
}

/// redis-rs `MGET keys…`, raw bytes.
pub async fn mget(mut c: MultiplexedConnection, keys: &[String]) -> Vec<Option<Vec<u8>>> {
    redis::cmd("MGET")
        .arg(keys)
        .query_async(&mut c)
        .await
        .expect("MGET")
}

async fn set(mut c: MultiplexedConnection, key: &str, bytes: &[u8]) -> redis::RedisResult<()> {
    redis::cmd("SET")
        .arg(key)
        .arg(bytes)
        .query_async(&mut c)
        .await
}

/// What the plain hand-rolled path stores: the postcard bytes of `value`.
///
/// # Panics
///
/// When postcard cannot encode `value` (a type it does not support).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("postcard")
}

/// What a careful hand-rolled cache stores: the postcard bytes and a CRC-32 over storage key
/// and bytes (so a corrupted or misplaced value is never returned), as memstache's plaintext
/// envelope does, minus the header.
pub fn checked_encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Vec<u8> {
    let mut out = postcard::to_allocvec(value).expect("postcard");
    let mut h = crc32fast::Hasher::new();
    h.update(key.as_bytes());
    h.update(&out);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out
}

/// Checks and decodes what [`checked_encode`] stored at `key`.
///
/// # Panics
///
/// On a value without a checksum, a wrong checksum, or bytes that do not decode: a bench that
/// reads wrong data must not report a number.
pub fn checked_decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> T {
    let (body, sum) = bytes.split_at(bytes.len().checked_sub(4).expect("has a checksum"));
    let mut h = crc32fast::Hasher::new();
    h.update(key.as_bytes());
    h.update(body);
    assert_eq!(h.finalize().to_le_bytes(), sum, "checksum");
    postcard::from_bytes(body).expect("decode")
}

/// Raw bytes `GET` / `SET` on one redis-rs connection. Named `redis-rs raw {OP}{label}`.
#[derive(Debug)]
pub struct RedisRsRaw {
    label: String,
    conn: MultiplexedConnection,
    keys: Keys,
    bytes: Vec<u8>,
}

impl RedisRsRaw {
    /// A peer writing `bytes`.
    pub fn new(
        label: impl Into<String>,
        conn: MultiplexedConnection,
        keys: Keys,
        bytes: Vec<u8>,
    ) -> Self {
        RedisRsRaw {
            label: label.into(),
            conn,
            keys,
            bytes,
        }
    }
}

impl Peer for RedisRsRaw {
    fn name(&self, op: Op) -> String {
        format!("redis-rs raw {}{}", op.upper(), self.label)
    }

    async fn fill(&self) -> Result<(), String> {
        for k in self.keys.all_read() {
            set(self.conn.clone(), k, &self.bytes)
                .await
                .map_err(|e| format!("cannot fill Redis: {:?}", e.kind()))?;
        }
        Ok(())
    }

    async fn get(&self, i: usize) {
        let got = get(self.conn.clone(), self.keys.read(i)).await;
        assert!(got.is_some(), "every key was filled");
        std::hint::black_box(got);
    }

    async fn set(&self, i: usize) {
        set(self.conn.clone(), self.keys.write(i), &self.bytes)
            .await
            .expect("SET");
    }
}

/// What a user writes by hand: postcard + redis-rs `GET` / `SET` of a `T`. Named
/// `hand-rolled {op} (postcard + redis-rs {OP})`.
#[derive(Debug)]
pub struct HandRolled<T> {
    conn: MultiplexedConnection,
    keys: Keys,
    value: T,
}

impl<T> HandRolled<T> {
    /// A peer writing `value`.
    pub fn new(conn: MultiplexedConnection, keys: Keys, value: T) -> Self {
        HandRolled { conn, keys, value }
    }
}

impl<T: Serialize + DeserializeOwned> Peer for HandRolled<T> {
    fn name(&self, op: Op) -> String {
        format!("hand-rolled {op} (postcard + redis-rs {})", op.upper())
    }

    async fn fill(&self) -> Result<(), String> {
        let bytes = postcard::to_allocvec(&self.value).map_err(|e| format!("postcard: {e}"))?;
        for k in self.keys.all_read() {
            set(self.conn.clone(), k, &bytes)
                .await
                .map_err(|e| format!("cannot fill Redis: {:?}", e.kind()))?;
        }
        Ok(())
    }

    async fn get(&self, i: usize) {
        let got = get(self.conn.clone(), self.keys.read(i)).await;
        let v: T = postcard::from_bytes(&got.expect("every key was filled")).expect("postcard");
        std::hint::black_box(v);
    }

    async fn set(&self, i: usize) {
        let bytes = postcard::to_allocvec(&self.value).expect("postcard");
        set(self.conn.clone(), self.keys.write(i), &bytes)
            .await
            .expect("SET");
    }
}

/// The checked hand-rolled path, memstache's guarantees by hand: postcard + CRC-32 over key and
/// bytes ([`checked_encode`] / [`checked_decode`]) + [`CHECKED_TIMEOUT`] around each redis-rs
/// call. Named `hand-rolled checked {op} (postcard + CRC-32 + timeout, redis-rs)`.
#[derive(Debug)]
pub struct CheckedHandRolled<T> {
    conn: MultiplexedConnection,
    keys: Keys,
    value: T,
}

impl<T> CheckedHandRolled<T> {
    /// A peer writing `value`.
    pub fn new(conn: MultiplexedConnection, keys: Keys, value: T) -> Self {
        CheckedHandRolled { conn, keys, value }
    }
}

impl<T: Serialize + DeserializeOwned> Peer for CheckedHandRolled<T> {
    fn name(&self, op: Op) -> String {
        format!("hand-rolled checked {op} (postcard + CRC-32 + timeout, redis-rs)")
    }

    async fn fill(&self) -> Result<(), String> {
        for k in self.keys.all_read() {
            set(self.conn.clone(), k, &checked_encode(k, &self.value))
                .await
                .map_err(|e| format!("cannot fill Redis: {:?}", e.kind()))?;
        }
        Ok(())
    }

    async fn get(&self, i: usize) {
        let k = self.keys.read(i);
        let got = tokio::time::timeout(CHECKED_TIMEOUT, get(self.conn.clone(), k))
            .await
            .expect("in time");
        std::hint::black_box(checked_decode::<T>(k, &got.expect("every key was filled")));
    }

    async fn set(&self, i: usize) {
        let k = self.keys.write(i);
        let bytes = checked_encode(k, &self.value);
        tokio::time::timeout(CHECKED_TIMEOUT, set(self.conn.clone(), k, &bytes))
            .await
            .expect("in time")
            .expect("SET");
    }
}
