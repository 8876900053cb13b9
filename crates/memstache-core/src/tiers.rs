//! Two tiers: a local in-process tier (L1) in front of the distributed backend (L2), kept
//! coherent across nodes by a [`Backplane`](crate::raw::Backplane).
//!
//! The consistency model, in plain words, is in `docs/tiers.md`. In short: a `set` or
//! `remove` on one node drops every other node's L1 copy as soon as its backplane message
//! arrives (milliseconds); until then another node may serve its copy, never longer than the
//! L1 duration cap. A node that is not subscribed to its backplane serves nothing from L1 and
//! keeps nothing in it.
//!
//! ```
//! use memstache_core::tiers::LocalTier;
//! use memstache_core::MemStache;
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
//! let cache = MemStache::builder()
//!     .local_tier(LocalTier::new().max_entries(10_000).max_duration(Duration::from_secs(30)))
//!     .build()?;
//! cache.set("k", &7u32, Default::default()).await?;
//! assert_eq!(cache.get::<u32>("k").await?, Some(7)); // served by L1
//! assert_eq!(cache.stats().l1_hits, 1);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::memory::MemoryBackend;
use crate::raw::Clock;
use crate::{Error, ErrorKind, Result};

/// Default number of entries of an L1 built by [`LocalTier::new`].
pub const DEFAULT_L1_ENTRIES: usize = 10_000;
/// Default bytes of an L1 built by [`LocalTier::new`].
pub const DEFAULT_L1_BYTES: u64 = 64 << 20;
/// Default number of decoded values kept for `get_arc` (see [`LocalTier::max_decoded`]).
pub const DEFAULT_L1_DECODED: usize = 10_000;
/// Default cap on how long an L1 copy is served without asking the backend.
pub const DEFAULT_L1_MAX_DURATION: Duration = Duration::from_secs(60);

/// The local tier (L1) of a cache: a bounded in-process store of decoded entries (the
/// serialized plaintext, its type fingerprint and its deadline), served without touching the
/// network, the cipher or the decompressor. `get` deserializes the plaintext on each hit;
/// [`MemStache::get_arc`](crate::MemStache::get_arc) also keeps the deserialized value (up to
/// [`max_decoded`](Self::max_decoded)) and hands out clones of one `Arc`.
///
/// A copy is served for the entry's own lifetime, capped by [`max_duration`](Self::max_duration).
/// Entries with a sliding expiration are not served from L1 (a read must reach the backend to
/// re-arm the window); they are kept for fail-safe only.
///
/// Build it with the bounds you want, or pass your own [`MemoryBackend`] (any eviction policy;
/// TinyLFU-style admission, `memstache::eviction::Lfu`, keeps the hot set best under scans).
#[derive(Clone)]
#[must_use]
pub struct LocalTier {
    pub(crate) store: Option<MemoryBackend>,
    pub(crate) max_entries: usize,
    pub(crate) max_bytes: u64,
    pub(crate) max_duration: Duration,
    pub(crate) max_decoded: usize,
}

impl fmt::Debug for LocalTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalTier")
            .field("store", &self.store)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .field("max_duration", &self.max_duration)
            .field("max_decoded", &self.max_decoded)
            .finish()
    }
}

impl Default for LocalTier {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalTier {
    /// An L1 of [`DEFAULT_L1_ENTRIES`] entries and [`DEFAULT_L1_BYTES`] bytes (LRU), serving a
    /// copy at most [`DEFAULT_L1_MAX_DURATION`].
    pub fn new() -> Self {
        LocalTier {
            store: None,
            max_entries: DEFAULT_L1_ENTRIES,
            max_bytes: DEFAULT_L1_BYTES,
            max_duration: DEFAULT_L1_MAX_DURATION,
            max_decoded: DEFAULT_L1_DECODED,
        }
    }

    /// How many decoded values [`MemStache::get_arc`](crate::MemStache::get_arc) keeps beside
    /// the copies (each is the value of one copy, shared by every hit of that copy; bounded by
    /// count, so keep it low for large values). Zero: `get_arc` decodes on every hit. Default
    /// [`DEFAULT_L1_DECODED`].
    pub fn max_decoded(mut self, n: usize) -> Self {
        self.max_decoded = n;
        self
    }

    /// At most `n` entries (ignored with [`store`](Self::store)).
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n;
        self
    }

    /// At most `bytes` bytes of keys and values (ignored with [`store`](Self::store)).
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The longest an L1 copy is served without asking the backend (must be positive). An
    /// entry that expires sooner is served until it expires.
    pub fn max_duration(mut self, d: Duration) -> Self {
        self.max_duration = d;
        self
    }

    /// The store to keep copies in: your own bounded [`MemoryBackend`], with the eviction
    /// policy of your choice. It should not be shared with anything else.
    pub fn store(mut self, store: MemoryBackend) -> Self {
        self.store = Some(store);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_duration.is_zero() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "local tier max_duration must be positive",
            ));
        }
        Ok(())
    }

    pub(crate) fn build_store(&self, clock: &Arc<dyn Clock>) -> Result<MemoryBackend> {
        match &self.store {
            Some(s) => Ok(s.clone()),
            None => MemoryBackend::builder()
                .max_entries(self.max_entries)
                .max_bytes(self.max_bytes)
                .clock(Arc::clone(clock))
                .build(),
        }
    }
}
