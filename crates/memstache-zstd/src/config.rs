//! Serde configuration of the zstd compressor.

use serde::{Deserialize, Serialize};

/// The level of [`Zstd::default`](crate::Zstd::default).
pub(crate) const DEFAULT_LEVEL: i32 = 1;

/// Configuration of [`Zstd`](crate::Zstd), for loading from a config file.
///
/// ```
/// use memstache_zstd::{Zstd, ZstdConfig};
/// let mut config = ZstdConfig::default();
/// config.level = 3;
/// let zstd = Zstd::from_config(&config)?;
/// assert_eq!(zstd.level(), 3);
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ZstdConfig {
    /// Compression level: zstd's negative "fast" levels up to 22. Level 1 is the fastest
    /// regular level; on cache-sized values higher levels cost more CPU for little gain.
    /// Default: `1`.
    pub level: i32,
    /// Whether frames carry a 32-bit checksum of their content (4 bytes per value), so that
    /// corruption is detected without encryption. Default: `true`.
    pub checksum: bool,
}

impl Default for ZstdConfig {
    fn default() -> Self {
        ZstdConfig {
            level: DEFAULT_LEVEL,
            checksum: true,
        }
    }
}
