#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod byte_values;
mod cache;
mod depth;
pub mod envelope;
mod error;
pub mod memory;
mod options;
pub mod raw;
pub mod scope;
pub mod serializer;
pub mod tiers;

pub use cache::{
    DEFAULT_BACKGROUND_LOAD_TIMEOUT, DEFAULT_COMPRESS_THRESHOLD, DEFAULT_DISTRIBUTED_TIMEOUT,
    DEFAULT_FAIL_SAFE_BYTES, DEFAULT_FAIL_SAFE_ENTRIES, DEFAULT_FAIL_SAFE_THROTTLE, DEFAULT_KEY_ID,
    DEFAULT_KEY_MANAGER_TIMEOUT, DEFAULT_LOCK_LEASE, DEFAULT_LOCK_POLL, DEFAULT_LOCK_WAIT,
    DEFAULT_MAX_BACKGROUND_LOADS, DEFAULT_MAX_KEY_LEN, DEFAULT_MAX_VALUE_SIZE, DEFAULT_NAMESPACE,
    DecodeFailure, FailSafe, Loaded, LockOptions, MemStache, MemStacheBuilder, ReadThrough,
    StatsSnapshot,
};
#[cfg(feature = "schema")]
pub use cache::{SchemaTrace, schema_fingerprint, schema_fingerprint_with};
pub use depth::DEFAULT_MAX_NESTING_DEPTH;
pub use error::{BoxError, Error, ErrorKind, Result};
pub use options::{Absolute, EntryOptions, ReadOptions};

/// A short hash of a cache key for logs, spans and error context.
///
/// 16 hex digits of SipHash-1-3 under a 128-bit secret key. Without
/// [`set_key_hash_secret`], the secret is random per process: a hash cannot be recomputed
/// from a guessed key outside the process (so guessable keys such as `user:42` cannot be
/// recovered from logs by trying candidates), and hashes do not match across processes. To
/// correlate one key's log lines across nodes, give every node the same secret at startup;
/// whoever holds it can confirm guessed keys, so keep it with your other secrets.
///
/// ```
/// let h = memstache_core::key_hash("user:42");
/// assert_eq!(h.len(), 16);
/// assert_eq!(h, memstache_core::key_hash("user:42"));
/// assert_ne!(h, memstache_core::key_hash("user:43"));
/// ```
pub fn key_hash(key: &str) -> String {
    let (k0, k1) = *log_secret();
    let mut h = siphasher::sip::SipHasher13::new_with_keys(k0, k1);
    std::hash::Hasher::write(&mut h, key.as_bytes());
    format!("{:016x}", std::hash::Hasher::finish(&h))
}

static LOG_SECRET: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();

fn log_secret() -> &'static (u64, u64) {
    LOG_SECRET.get_or_init(random_keys)
}

/// Sets the secret of [`key_hash`] for this process, so that every node given the same secret
/// logs the same hash for the same key. Call it once at startup, before the first cache
/// operation.
///
/// ```standalone_crate
/// memstache_core::set_key_hash_secret(*b"shared by nodes!")?;
/// let h = memstache_core::key_hash("user:42");
/// // Another process with the same secret logs the same hash.
/// assert_eq!(h, memstache_core::key_hash("user:42"));
/// # Ok::<(), memstache_core::Error>(())
/// ```
///
/// # Errors
///
/// [`ErrorKind::InvalidConfig`] when the secret was already set, or a key hash was already
/// computed with the random one (hashes already logged would not match the new ones).
pub fn set_key_hash_secret(secret: [u8; 16]) -> Result<()> {
    let mut k0 = [0u8; 8];
    let mut k1 = [0u8; 8];
    k0.copy_from_slice(&secret[..8]);
    k1.copy_from_slice(&secret[8..]);
    LOG_SECRET
        .set((u64::from_le_bytes(k0), u64::from_le_bytes(k1)))
        .map_err(|_| {
            Error::new(
                ErrorKind::InvalidConfig,
                "the key hash secret is already set, or a key hash was already computed",
            )
        })
}

/// Two random 64-bit keys, from std's per-process random SipHash keys (the OS's randomness,
/// drawn once per thread by std).
fn random_keys() -> (u64, u64) {
    use std::hash::BuildHasher;
    let state = std::hash::RandomState::new();
    (
        state.hash_one(0x6d65_6d73_u64),
        state.hash_one(0x7461_6368_u64),
    )
}

/// The hash that picks memory shards, fail-safe stripes and feeds the eviction sketches:
/// SipHash-1-3 under a random per-process key, so keys chosen to collide in one shard or one
/// sketch counter cannot be computed outside the process.
pub(crate) fn shard_hash(bytes: &[u8]) -> u64 {
    static KEYS: std::sync::OnceLock<(u64, u64)> = std::sync::OnceLock::new();
    let &(k0, k1) = KEYS.get_or_init(random_keys);
    let mut h = siphasher::sip::SipHasher13::new_with_keys(k0, k1);
    std::hash::Hasher::write(&mut h, bytes);
    std::hash::Hasher::finish(&h)
}
