#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

mod lfu;
mod list;
mod s3fifo;
mod shadow;
mod sieve;
mod sketch;
mod time_based;
mod tinylfu;

pub use lfu::Lfu;
pub use memstache_core::memory::Lru;
pub use s3fifo::S3Fifo;
pub use sieve::Sieve;
pub use time_based::TimeBased;
pub use tinylfu::TinyLfu;

use memstache_core::raw::EvictionPolicy;

/// A builder's share-of-the-capacity setting: `fraction` clamped to 0 ..= 1, or `current`
/// when `fraction` is NaN.
pub(crate) fn share(fraction: f64, current: f64) -> f64 {
    if fraction.is_nan() {
        current
    } else {
        fraction.clamp(0.0, 1.0)
    }
}
use std::sync::Arc;

/// Every built-in policy with its default settings, by [`name`](EvictionPolicy::name):
/// `lru`, `lfu`, `time`, `tinylfu`, `sieve`, `s3fifo`.
///
/// ```
/// let names: Vec<_> = memstache_eviction::all().iter().map(|p| p.name()).collect();
/// assert_eq!(names, ["lru", "lfu", "time", "tinylfu", "sieve", "s3fifo"]);
/// ```
pub fn all() -> Vec<Arc<dyn EvictionPolicy>> {
    vec![
        Arc::new(Lru),
        Arc::new(Lfu),
        Arc::new(TimeBased),
        Arc::new(TinyLfu::default()),
        Arc::new(Sieve),
        Arc::new(S3Fifo::default()),
    ]
}

/// The built-in policy called `name` (see [`all`]), with default settings.
///
/// ```
/// assert_eq!(memstache_eviction::by_name("tinylfu").unwrap().name(), "tinylfu");
/// assert!(memstache_eviction::by_name("nope").is_none());
/// ```
pub fn by_name(name: &str) -> Option<Arc<dyn EvictionPolicy>> {
    all().into_iter().find(|p| p.name() == name)
}
