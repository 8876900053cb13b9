//! Errors of this crate as [`memstache_core::Error`]s. None of them carries key material.

use memstache_core::{Error, ErrorKind};

/// A cryptographic operation (drawing a random key, finding a next version) failed.
pub(crate) fn crypto(message: &'static str) -> Error {
    Error::new(ErrorKind::Crypto, message)
}

/// A key ring could not be loaded.
pub(crate) fn keyring(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidConfig, message)
}

/// The key id or the version is not in the ring.
pub(crate) fn not_found() -> Error {
    Error::new(ErrorKind::KeyNotFound, "unknown key id or key version")
}

/// The key id was destroyed (crypto-shredded).
pub(crate) fn destroyed() -> Error {
    Error::new(
        ErrorKind::KeyDestroyed,
        "the key was destroyed: entries sealed under it are unreadable",
    )
}
