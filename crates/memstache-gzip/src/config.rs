//! Serde configuration of the gzip compressor.

use serde::{Deserialize, Serialize};

/// Configuration of [`Gzip`](crate::Gzip), for loading from a config file.
///
/// ```
/// use memstache_gzip::{Gzip, GzipConfig};
/// let mut config = GzipConfig::default();
/// config.level = 6;
/// let gzip = Gzip::from_config(&config)?;
/// assert_eq!(gzip.level(), 6);
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GzipConfig {
    /// Compression level, 0 (stored, no compression) to 9 (smallest, slowest). Level 1 is about
    /// twice as fast as level 6 on cache-sized values and rarely more than 10 % larger.
    /// Default: `1`.
    pub level: u32,
}

impl Default for GzipConfig {
    fn default() -> Self {
        GzipConfig {
            level: crate::gzip::DEFAULT_LEVEL,
        }
    }
}
