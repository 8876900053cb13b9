//! The one error type of memstache.
//!
//! Every fallible operation returns [`Error`]: a [`kind`](Error::kind), a one-line message, a
//! [`is_temporary`](Error::is_temporary) flag that drives retries, the operation that failed,
//! a few context pairs (backend name, short key hash, tenant …) and the underlying
//! [`source`](std::error::Error::source), kept as an error value and never flattened into text.
//!
//! Errors never contain raw cache keys, values or key material: context carries a short key
//! *hash* only (see [`crate::key_hash`]).

use std::borrow::Cow;
use std::fmt;

/// Shorthand for `std::result::Result<T, memstache_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error from a dependency or a user callback.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, as a closed set callers can match on.
///
/// New kinds may be added in minor releases, so matches need a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The cache key is empty, too long or contains forbidden characters. Nothing was written.
    InvalidKey,
    /// A tenant id is empty, too long or contains forbidden characters.
    InvalidTenant,
    /// The value (serialized, or after decompression) is larger than the configured maximum.
    ValueTooLarge,
    /// A builder or configuration value is invalid.
    InvalidConfig,
    /// The value could not be serialized, or stored bytes could not be deserialized into the
    /// requested type.
    Serialization,
    /// The stored value was written for another type (the type fingerprint differs).
    SchemaMismatch,
    /// Compression or decompression failed (corrupt compressed data, unknown codec).
    Compression,
    /// Authentication of an encrypted entry failed, or an entry is corrupted or truncated:
    /// it was tampered with, copied to another key or tenant, or damaged. Never returned as data.
    Integrity,
    /// The entry was written in an envelope format version, or with a serializer, compressor or
    /// cipher id, that this build does not know.
    UnsupportedFormat,
    /// The key manager does not know the requested key id or key version.
    KeyNotFound,
    /// The key was destroyed (crypto-shredding): entries sealed under it are unreadable forever.
    KeyDestroyed,
    /// Encryption or key management failed for another reason (no randomness, bad key size).
    Crypto,
    /// The backend could not be reached (connection refused or reset, no node for a slot).
    /// Temporary.
    Unavailable,
    /// The backend did not answer within the operation timeout. Temporary.
    Timeout,
    /// The circuit breaker is open: the call was rejected without reaching the backend.
    /// Temporary.
    CircuitOpen,
    /// The backend answered with an error (protocol error, script error, wrong type).
    Backend,
    /// The loader passed to `get_or_set` or `get_or_set_many` failed (or, for a key of a
    /// `get_or_set_many` batch, the caller loading it was cancelled after this call's loader
    /// ran); nothing was cached for the key.
    Loader,
    /// The operation is not supported by this backend or configuration.
    Unsupported,
    /// An invariant inside memstache broke. Please report it.
    Internal,
}

impl ErrorKind {
    /// A stable, lowercase name for logs and metrics labels.
    ///
    /// ```
    /// assert_eq!(memstache_core::ErrorKind::Timeout.as_str(), "timeout");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidKey => "invalid_key",
            ErrorKind::InvalidTenant => "invalid_tenant",
            ErrorKind::ValueTooLarge => "value_too_large",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::Serialization => "serialization",
            ErrorKind::SchemaMismatch => "schema_mismatch",
            ErrorKind::Compression => "compression",
            ErrorKind::Integrity => "integrity",
            ErrorKind::UnsupportedFormat => "unsupported_format",
            ErrorKind::KeyNotFound => "key_not_found",
            ErrorKind::KeyDestroyed => "key_destroyed",
            ErrorKind::Crypto => "crypto",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::Backend => "backend",
            ErrorKind::Loader => "loader",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether errors of this kind are temporary by default (worth retrying later).
    pub const fn is_temporary_by_default(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::CircuitOpen
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every memstache operation.
///
/// ```
/// use memstache_core::{Error, ErrorKind};
///
/// let err = Error::new(ErrorKind::Timeout, "backend did not answer in time")
///     .with_operation("get")
///     .with_context("backend", "redis");
/// assert_eq!(err.kind(), ErrorKind::Timeout);
/// assert!(err.is_temporary());
/// assert_eq!(
///     err.to_string(),
///     "timeout: backend did not answer in time (operation: get, backend: redis)"
/// );
/// ```
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    temporary: bool,
    operation: Option<&'static str>,
    context: Vec<(&'static str, String)>,
    source: Option<BoxError>,
}

impl Error {
    /// A new error of `kind`; temporary when the kind is temporary by default.
    ///
    /// The message must not contain cache keys, values or key material.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            message: message.into(),
            temporary: kind.is_temporary_by_default(),
            operation: None,
            context: Vec::new(),
            source: None,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line message, without kind, operation or context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying the same call later may succeed (drives the retry layer).
    pub fn is_temporary(&self) -> bool {
        self.temporary
    }

    /// The cache operation that failed (`get`, `set`, …), when known.
    pub fn operation(&self) -> Option<&'static str> {
        self.operation
    }

    /// Context pairs (`backend`, `key_hash`, `tenant`, …), in the order they were added.
    pub fn context(&self) -> &[(&'static str, String)] {
        &self.context
    }

    /// Looks up one context value by name.
    pub fn context_value(&self, name: &str) -> Option<&str> {
        self.context
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Marks the error temporary or permanent, overriding the kind's default.
    #[must_use]
    pub fn set_temporary(mut self, temporary: bool) -> Self {
        self.temporary = temporary;
        self
    }

    /// Records the operation, unless one is recorded already (the innermost one wins).
    #[must_use]
    pub fn with_operation(mut self, operation: &'static str) -> Self {
        if self.operation.is_none() {
            self.operation = Some(operation);
        }
        self
    }

    /// Adds a context pair, unless a pair with that name exists already. Never pass a raw
    /// key, value or secret: use [`crate::key_hash`] for keys.
    #[must_use]
    pub fn with_context(mut self, name: &'static str, value: impl Into<String>) -> Self {
        if self.context_value(name).is_none() {
            self.context.push((name, value.into()));
        }
        self
    }

    /// Attaches the underlying error, kept as `source()`.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Shorthand for an [`ErrorKind::Integrity`] error.
    pub fn integrity(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::Integrity, message)
    }

    /// Shorthand for an [`ErrorKind::Internal`] error.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if self.operation.is_some() || !self.context.is_empty() {
            f.write_str(" (")?;
            let mut first = true;
            if let Some(op) = self.operation {
                write!(f, "operation: {op}")?;
                first = false;
            }
            for (k, v) in &self.context {
                if !first {
                    f.write_str(", ")?;
                }
                write!(f, "{k}: {v}")?;
                first = false;
            }
            f.write_str(")")?;
        }
        if self.temporary && !self.kind.is_temporary_by_default() {
            f.write_str(" [temporary]")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.kind)
            .field("message", &self.message)
            .field("temporary", &self.temporary);
        if let Some(op) = self.operation {
            d.field("operation", &op);
        }
        if !self.context.is_empty() {
            d.field("context", &self.context);
        }
        if let Some(source) = &self.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|s| s.as_ref() as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn temporary_follows_kind_and_can_be_overridden() {
        assert!(Error::new(ErrorKind::Unavailable, "x").is_temporary());
        assert!(!Error::new(ErrorKind::Integrity, "x").is_temporary());
        let e = Error::new(ErrorKind::Backend, "busy").set_temporary(true);
        assert!(e.is_temporary());
        assert!(e.to_string().ends_with("[temporary]"));
    }

    #[test]
    fn source_is_kept_not_flattened() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::new(ErrorKind::Unavailable, "cannot connect").with_source(io);
        let src = e.source().expect("source kept");
        assert!(src.downcast_ref::<std::io::Error>().is_some());
        assert!(!e.to_string().contains("refused"));
    }

    #[test]
    fn first_operation_and_context_win() {
        let e = Error::new(ErrorKind::Timeout, "slow")
            .with_operation("get")
            .with_operation("outer")
            .with_context("backend", "memory")
            .with_context("backend", "other");
        assert_eq!(e.operation(), Some("get"));
        assert_eq!(e.context_value("backend"), Some("memory"));
        assert_eq!(e.context().len(), 1);
    }

    #[test]
    fn kinds_have_distinct_names() {
        use std::collections::HashSet;
        let kinds = [
            ErrorKind::InvalidKey,
            ErrorKind::InvalidTenant,
            ErrorKind::ValueTooLarge,
            ErrorKind::InvalidConfig,
            ErrorKind::Serialization,
            ErrorKind::SchemaMismatch,
            ErrorKind::Compression,
            ErrorKind::Integrity,
            ErrorKind::UnsupportedFormat,
            ErrorKind::KeyNotFound,
            ErrorKind::KeyDestroyed,
            ErrorKind::Crypto,
            ErrorKind::Unavailable,
            ErrorKind::Timeout,
            ErrorKind::CircuitOpen,
            ErrorKind::Backend,
            ErrorKind::Loader,
            ErrorKind::Unsupported,
            ErrorKind::Internal,
        ];
        let names: HashSet<_> = kinds.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), kinds.len());
    }
}
