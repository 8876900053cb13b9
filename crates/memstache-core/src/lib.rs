#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod cache;
mod depth;
pub mod envelope;
mod error;
pub mod memory;
mod options;
pub mod raw;
pub mod scope;
pub mod serializer;

pub use cache::{
    DEFAULT_COMPRESS_THRESHOLD, DEFAULT_DISTRIBUTED_TIMEOUT, DEFAULT_FAIL_SAFE_BYTES,
    DEFAULT_FAIL_SAFE_ENTRIES, DEFAULT_KEY_ID, DEFAULT_KEY_MANAGER_TIMEOUT, DEFAULT_LOCK_LEASE,
    DEFAULT_LOCK_POLL, DEFAULT_LOCK_WAIT, DEFAULT_MAX_KEY_LEN, DEFAULT_MAX_VALUE_SIZE,
    DEFAULT_NAMESPACE, FailSafe, LockOptions, MemStache, MemStacheBuilder, StatsSnapshot,
};
pub use depth::DEFAULT_MAX_NESTING_DEPTH;
pub use error::{BoxError, Error, ErrorKind, Result};
pub use options::{Absolute, EntryOptions};

/// A short, non-reversible hash of a cache key for logs, spans and error context.
///
/// 16 hex digits of a keyed 64-bit FNV-1a variant; stable across processes and versions, so the
/// same key shows the same hash on every node. Raw keys never appear in logs.
///
/// ```
/// let h = memstache_core::key_hash("user:42");
/// assert_eq!(h.len(), 16);
/// assert_eq!(h, memstache_core::key_hash("user:42"));
/// assert_ne!(h, memstache_core::key_hash("user:43"));
/// ```
pub fn key_hash(key: &str) -> String {
    format!("{:016x}", hash64(key.as_bytes()))
}

/// 64-bit FNV-1a with a final avalanche (used for key hashes and shard selection).
pub(crate) fn hash64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finaliser so that nearby keys spread over shards
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}
