#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub use memstache_core::{
    Absolute, BoxError, DEFAULT_BACKGROUND_LOAD_TIMEOUT, DEFAULT_COMPRESS_THRESHOLD,
    DEFAULT_DISTRIBUTED_TIMEOUT, DEFAULT_KEY_ID, DEFAULT_MAX_BACKGROUND_LOADS, DEFAULT_MAX_KEY_LEN,
    DEFAULT_MAX_VALUE_SIZE, DEFAULT_NAMESPACE, DecodeFailure, EntryOptions, Error, ErrorKind,
    FailSafe, Loaded, LockOptions, MemStache, MemStacheBuilder, ReadOptions, ReadThrough, Result,
    StatsSnapshot, key_hash, set_key_hash_secret,
};

/// Schema fingerprints traced from a type's serde data model (feature `schema`).
#[cfg(feature = "schema")]
pub use memstache_core::{SchemaTrace, schema_fingerprint, schema_fingerprint_with};

/// The plugin SPI: traits for custom backends, serializers, compressors, encryptors, key
/// managers and eviction policies (re-exported from `memstache-core`).
pub use memstache_core::raw;

/// The embedded, bounded in-process backend (the default).
pub use memstache_core::memory;

/// The versioned envelope every entry is stored in (see `docs/wire-format.md`).
pub use memstache_core::envelope;

/// Two tiers: the local in-process tier (L1) and how it is kept coherent (see
/// `docs/tiers.md`).
pub use memstache_core::tiers;

/// Serializers: postcard (default), MessagePack and JSON (behind `serializer-*` features).
pub use memstache_core::serializer;

/// Compression codecs, one feature each.
#[cfg(any(feature = "compression-gzip", feature = "compression-zstd"))]
pub mod compression {
    #[cfg(feature = "compression-gzip")]
    pub use memstache_gzip::*;
    #[cfg(feature = "compression-zstd")]
    pub use memstache_zstd::*;
}

/// Authenticated encryption (`encryption-aes`) and key managers (`keys`, implied by
/// `encryption-aes`).
#[cfg(feature = "keys")]
pub mod crypto {
    #[cfg(feature = "encryption-aes")]
    pub use memstache_aes::*;
    pub use memstache_keys::*;
}

/// Eviction policies for the memory backend (`eviction`); `Lru` is always in [`memory`].
#[cfg(feature = "eviction")]
pub mod eviction {
    pub use memstache_eviction::*;
}

/// Multi-tenancy (`tenancy`): isolated keyspaces, per-tenant keys, O(1) clear.
#[cfg(feature = "tenancy")]
pub mod tenancy {
    pub use memstache_tenancy::*;
}

/// Resilience layers for the backend stack (`resilience`): retry, circuit breaker, attempt
/// timeout, and the ready-made [`Resilience`](resilience::Resilience) stack. See
/// `docs/resilience.md`.
#[cfg(feature = "resilience")]
pub mod resilience {
    pub use memstache_resilience::*;
}

/// The Redis backend (`redis`).
#[cfg(feature = "redis")]
pub mod redis {
    pub use memstache_redis::*;
}

#[cfg(test)]
mod tests {
    /// Everything users hold across tasks is `Send + Sync` (checked at compile time).
    #[test]
    fn public_types_are_send_sync() {
        fn assert<T: Send + Sync + 'static>() {}
        assert::<crate::MemStache>();
        assert::<crate::Error>();
        assert::<crate::EntryOptions>();
        assert::<crate::memory::MemoryBackend>();
        assert::<crate::StatsSnapshot>();
        #[cfg(feature = "encryption-aes")]
        assert::<crate::crypto::Aes256Gcm>();
        #[cfg(feature = "keys")]
        {
            assert::<crate::crypto::LocalKeyManager>();
            assert::<crate::crypto::CachedKeyManager>();
        }
        #[cfg(feature = "redis")]
        assert::<crate::redis::RedisBackend>();
    }

    /// Futures of the typed API can be spawned on a multi-threaded runtime.
    #[test]
    fn futures_are_send() {
        fn assert_send<T: Send>(_: T) {}
        let c = crate::MemStache::builder().build().unwrap();
        assert_send(c.get::<String>("k"));
        assert_send(c.set("k", &1u8, crate::EntryOptions::default()));
        assert_send(c.get_or_set("k", crate::EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(1u8)
        }));
        assert_send(c.get_many::<u8, &str>(&["a"]));
        assert_send(
            c.get_or_set_many(&["a"], crate::EntryOptions::default(), |keys| async move {
                Ok::<_, std::io::Error>(keys.into_iter().map(|k| (k, 1u8)))
            }),
        );
    }
}

/// The repository README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
