//! The client-independent half of mapping Redis errors to memstache's [`ErrorKind`]s: server
//! error replies by their prefix, rustls's TLS refusals by their text, and the fixed messages.
//! Each client maps its own error type with these, keeping it as `source()`:
//! `client/redis_rs/error.rs` and `client/fred/error.rs`. Together they give:
//!
//! | cause | kind | temporary |
//! |---|---|---|
//! | connection refused / reset / closed, I/O, no node for a slot, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`, `TRYAGAIN`, `READONLY`, Sentinel lookup | `Unavailable` | yes |
//! | a TLS handshake refused for trust or settings: a server certificate that does not verify (an expired one too: it does not heal by retrying), a client certificate the server refuses (or none when one is required), no common protocol version or cipher | `InvalidConfig` | no |
//! | the same through Sentinel on fred: fred's Sentinel connector keeps only "failed to connect to all sentinel nodes", not the cause | `Unavailable` | yes |
//! | any other failed TLS handshake (a reset or a garbled message mid-handshake) | `Unavailable` | yes |
//! | command or connect timeout | `Timeout` | yes |
//! | authentication, bad URL or client configuration | `InvalidConfig` | no |
//! | any other server error reply (script error, wrong type, protocol error) | `Backend` | no |
//!
//! Messages are fixed strings: server replies never reach them (they could echo arguments).

use memstache_core::{Error, ErrorKind};

/// Classifies a server error reply by its first word (the Redis error prefix). Independent of
/// the client.
pub(crate) fn classify_reply(reply: &str) -> ErrorKind {
    match reply.split_whitespace().next().unwrap_or("") {
        "CLUSTERDOWN" | "LOADING" | "MASTERDOWN" | "TRYAGAIN" | "READONLY" | "BUSY" | "MOVED"
        | "ASK" => ErrorKind::Unavailable,
        "NOAUTH" | "WRONGPASS" | "NOPERM" => ErrorKind::InvalidConfig,
        _ => ErrorKind::Backend,
    }
}

/// Whether a server error reply is `NOSCRIPT` (the script cache lacks our script).
pub(crate) fn is_noscript(reply: &str) -> bool {
    reply.starts_with("NOSCRIPT")
}

fn message(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Unavailable => "Redis is unavailable",
        ErrorKind::Timeout => "Redis did not answer in time",
        ErrorKind::InvalidConfig => "Redis rejected the configuration or credentials",
        _ => "Redis answered with an error",
    }
}

/// rustls failures that retrying cannot fix: the peer's certificate does not verify, or one
/// side refused the other's identity or parameters. Like an authentication failure, they are
/// configuration errors: not retried, not served from fail-safe copies. Matched on rustls's
/// own text, in its `Debug` form (fred keeps only that, in its details string) and its
/// `Display` form (redis-rs's cluster client keeps only that, in its message); redis-rs's other
/// connections keep the typed error.
#[cfg(feature = "tls")]
const TLS_TRUST_FAILURES: &[&str] = &[
    // Debug
    "InvalidCertificate(",
    "NoCertificatesPresented",
    "UnsupportedNameType",
    "PeerIncompatible(",
    // Display
    "invalid peer certificate:",
    "peer sent no certificates",
    "presented server name type wasn't supported",
    "peer is incompatible:",
];

/// Alerts the peer sends when it refuses our identity or parameters (rustls: `AlertReceived(X)`,
/// shown as `received fatal alert: X`).
#[cfg(feature = "tls")]
const TLS_REFUSAL_ALERTS: &[&str] = &[
    "HandshakeFailure",
    "NoCertificate",
    "BadCertificate",
    "UnsupportedCertificate",
    "CertificateRevoked",
    "CertificateExpired",
    "CertificateUnknown",
    "UnknownCA",
    "AccessDenied",
    "ProtocolVersion",
    "InsufficientSecurity",
    "CertificateRequired",
    "UnrecognisedName",
];

/// Whether `text` (an error's `Debug`, `Display` or details) carries a TLS refusal for trust or
/// settings.
#[cfg(feature = "tls")]
pub(crate) fn is_tls_trust_failure(text: &str) -> bool {
    // an alert name must be followed by something that ends it (`BadCertificate` is a refusal,
    // `BadCertificateStatusResponse` is not)
    let alert = |prefix: &str| {
        text.match_indices(prefix).any(|(at, m)| {
            let rest = &text[at + m.len()..];
            TLS_REFUSAL_ALERTS.iter().any(|a| {
                rest.strip_prefix(a)
                    .is_some_and(|r| !r.starts_with(|c: char| c.is_ascii_alphanumeric()))
            })
        })
    };
    TLS_TRUST_FAILURES.iter().any(|m| text.contains(m))
        || alert("AlertReceived(")
        || alert("received fatal alert: ")
}

/// The error for a TLS handshake refused for trust or settings.
#[cfg(feature = "tls")]
pub(crate) fn tls_refused(source: impl Into<memstache_core::BoxError>) -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        "the TLS handshake with Redis was refused: certificate, CA or TLS settings",
    )
    .with_context("backend", "redis")
    .with_source(source)
}

/// Builds the memstache error for `kind` with `source` attached.
pub(crate) fn with_source(kind: ErrorKind, source: impl Into<memstache_core::BoxError>) -> Error {
    Error::new(kind, message(kind))
        .with_context("backend", "redis")
        .with_source(source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_replies_are_classified() {
        assert_eq!(
            classify_reply("CLUSTERDOWN The cluster is down"),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify_reply("LOADING Redis is loading"),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify_reply("READONLY You can't write"),
            ErrorKind::Unavailable
        );
        assert_eq!(
            classify_reply("WRONGPASS invalid"),
            ErrorKind::InvalidConfig
        );
        assert_eq!(
            classify_reply("ERR Error running script (call to f_x): oops"),
            ErrorKind::Backend
        );
        assert_eq!(classify_reply("WRONGTYPE Operation"), ErrorKind::Backend);
        assert!(is_noscript("NOSCRIPT No matching script."));
        assert!(!is_noscript("ERR NOSCRIPT"));
    }

    /// The markers are rustls's own `Debug` text: a rename in rustls fails this test, not a
    /// production classification.
    #[cfg(feature = "tls")]
    #[test]
    fn tls_trust_failures_are_recognised_in_rustls_text() {
        use rustls::{AlertDescription as A, CertificateError, Error as T};
        let refused = [
            T::InvalidCertificate(CertificateError::UnknownIssuer),
            T::InvalidCertificate(CertificateError::Expired),
            T::NoCertificatesPresented,
            T::AlertReceived(A::CertificateRequired),
            T::AlertReceived(A::UnknownCA),
            T::AlertReceived(A::HandshakeFailure),
            T::AlertReceived(A::BadCertificate),
        ];
        for e in refused {
            let io = std::io::Error::new(std::io::ErrorKind::InvalidData, e.clone());
            assert!(is_tls_trust_failure(&format!("{io:?}")), "{e:?}");
            assert!(is_tls_trust_failure(&format!("Io: {e}")), "{e}");
        }
        let transient = [
            T::DecryptError,
            T::AlertReceived(A::CloseNotify),
            T::AlertReceived(A::InternalError),
            T::AlertReceived(A::DecryptError),
        ];
        for e in transient {
            assert!(!is_tls_trust_failure(&format!("{e:?}")), "{e:?}");
            assert!(!is_tls_trust_failure(&format!("{e}")), "{e}");
        }
        // an alert name that merely starts like a refusal is not one, in either form
        for other in [A::BadCertificateStatusResponse, A::BadCertificateHashValue] {
            let e = T::AlertReceived(other);
            assert!(!is_tls_trust_failure(&format!("{e:?}")), "{e:?}");
            assert!(!is_tls_trust_failure(&format!("{e}")), "{e}");
            assert!(!is_tls_trust_failure(&format!("Io: {e} (os error)")), "{e}");
        }
    }
}
