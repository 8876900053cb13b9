//! Errors of this crate as [`memstache_core::Error`]s. None of them carries key material.

use memstache_core::{Error, ErrorKind};

/// Authentication failed (tampered, truncated, wrong key, nonce or AAD).
pub(crate) fn integrity(source: Option<ring::error::Unspecified>) -> Error {
    let e = Error::new(
        ErrorKind::Integrity,
        "AES-256-GCM authentication failed: the entry was modified, moved or sealed under another key",
    );
    match source {
        Some(s) => e.with_source(s),
        None => e,
    }
}

/// A cryptographic operation failed for a reason other than authentication.
pub(crate) fn crypto(message: &'static str) -> Error {
    Error::new(ErrorKind::Crypto, message)
}
