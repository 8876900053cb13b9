//! Helpers shared by the Redis integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(unreachable_pub, reason = "a test helper module")]

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use memstache_core::envelope::{FLAG_CHECKSUM, Header};

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// An envelope-shaped value with the given deadline and sliding window (ms, 0 = none) and a
/// payload; only the header matters to the backend.
pub fn envelope(deadline_ms: u64, sliding_ms: u64, payload: &[u8]) -> Bytes {
    let h = Header {
        flags: FLAG_CHECKSUM,
        serializer: 1,
        compressor: 0,
        cipher: 0,
        created_at_ms: now_ms(),
        deadline_ms,
        sliding_ms,
        fingerprint: 0,
        plain_len: u32::try_from(payload.len()).unwrap(),
        key_id: "",
        key_version: 0,
        nonce: &[],
    };
    let mut out = Vec::new();
    h.encode(&mut out);
    out.extend_from_slice(payload);
    out.extend_from_slice(&[0, 0, 0, 0]);
    Bytes::from(out)
}

/// A random prefix so that tests sharing a server never collide.
pub fn prefix(label: &str) -> String {
    format!("{label}:{}:{}", std::process::id(), now_ms() % 1_000_000)
}

/// The keys as `&str`s, for the batch calls of `Backend`.
pub fn strs(keys: &[String]) -> Vec<&str> {
    keys.iter().map(String::as_str).collect()
}

/// Connects to `url` and reads one key: the first error a client meets. A refused TLS
/// handshake surfaces at connect or, with TLS 1.3, at the first command (the client side may
/// finish before the server's verdict arrives).
pub async fn first_read(url: &str) -> memstache_core::Result<Option<Bytes>> {
    let backend = memstache_redis::RedisBackend::connect(url).await?;
    memstache_core::raw::Backend::get(&backend, "x").await
}

/// The error `client` meets reading through `url` (a TLS URL) without the server's CA, which
/// must be a refusal: a certificate from an unknown CA is never trusted.
pub async fn refused_without_ca(url: &str, client: &str) -> memstache_core::Error {
    let sep = if url.contains('?') { '&' } else { '?' };
    first_read(&format!(
        "{url}{sep}client={client}&connect_timeout_ms=3000"
    ))
    .await
    .expect_err("a certificate from an unknown CA must be refused")
}
