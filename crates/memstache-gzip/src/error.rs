//! Mapping of flate2's errors and of gzip framing problems to [`memstache_core::Error`].

use memstache_core::{Error, ErrorKind};

/// Corrupt gzip data, with the dependency's error kept as `source()`.
pub(crate) fn corrupt(message: &'static str, source: impl Into<memstache_core::BoxError>) -> Error {
    Error::new(ErrorKind::Compression, message).with_source(source)
}

/// Corrupt gzip framing found by this crate (header, trailer, length).
pub(crate) fn bad_format(message: &'static str) -> Error {
    Error::new(ErrorKind::Compression, message)
}

/// The content would exceed the caller's bound.
pub(crate) fn too_large() -> Error {
    Error::new(
        ErrorKind::ValueTooLarge,
        "decompressed gzip data exceeds the maximum value size",
    )
}
