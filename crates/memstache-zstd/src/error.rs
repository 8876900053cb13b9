//! Mapping of libzstd's error codes to [`memstache_core::Error`].

use std::fmt;

use memstache_core::{Error, ErrorKind};

/// A libzstd error code, kept as the `source()` of the [`Error`] it becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ZstdError(pub(crate) zstd::zstd_safe::ErrorCode);

impl fmt::Debug for ZstdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZstdError({}: {})", self.0, self)
    }
}

impl fmt::Display for ZstdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(zstd::zstd_safe::get_error_name(self.0))
    }
}

impl std::error::Error for ZstdError {}

/// A libzstd failure as an [`ErrorKind::Compression`] error.
pub(crate) fn zstd_failed(message: &'static str, code: zstd::zstd_safe::ErrorCode) -> Error {
    Error::new(ErrorKind::Compression, message).with_source(ZstdError(code))
}

/// Corrupt framing found by this crate.
pub(crate) fn bad_format(message: &'static str) -> Error {
    Error::new(ErrorKind::Compression, message)
}

/// The output would exceed the caller's bound.
pub(crate) fn too_large() -> Error {
    Error::new(
        ErrorKind::ValueTooLarge,
        "decompressed zstd data exceeds the maximum value size",
    )
}
