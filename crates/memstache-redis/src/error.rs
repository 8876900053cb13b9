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
//!
//! Nor does the source keep them. A server error reply can quote the command's arguments —
//! keys and values (`ERR unknown command 'GETRANGE', with args beginning with: 'user:42' …`,
//! a script error, a module's message) — and the source is printed by `Debug` and by
//! error-chain reporters. So for server replies, and for client errors about a reply (a type or
//! protocol mismatch, which can quote the reply), the source is a [`RedactedReply`]: the
//! reply's code when it is one Redis defines (`WRONGTYPE`, `NOSCRIPT`, `BUSY`, `READONLY`,
//! `CLUSTERDOWN`, …; anything else is `OTHER`) and a fixed description. Connection, I/O,
//! timeout, TLS and configuration errors keep the client's own error, which holds no command
//! arguments.

use std::fmt;

use memstache_core::{Error, ErrorKind};

/// The Redis error codes a [`RedactedReply`] keeps, with their fixed descriptions.
const CODES: &[(&str, &str)] = &[
    ("ERR", "the command failed"),
    (
        "WRONGTYPE",
        "operation against a key holding the wrong kind of value",
    ),
    ("NOSCRIPT", "no matching script"),
    ("BUSY", "a script or function is running"),
    ("BUSYKEY", "the target key already exists"),
    ("READONLY", "the server is a read-only replica"),
    ("CLUSTERDOWN", "the cluster is down"),
    ("LOADING", "the server is loading its data set"),
    ("MASTERDOWN", "the link with the primary is down"),
    ("TRYAGAIN", "a multi-key command during resharding"),
    ("MOVED", "the hash slot is served by another node"),
    ("ASK", "the hash slot is being migrated"),
    ("CROSSSLOT", "the keys are in different hash slots"),
    ("NOAUTH", "authentication is required"),
    ("WRONGPASS", "invalid user name or password"),
    ("NOPERM", "the user lacks a permission"),
    ("NOREPLICAS", "not enough good replicas to write"),
    ("OOM", "out of memory (maxmemory reached)"),
    ("MISCONF", "persistence failed; writes are refused"),
    ("EXECABORT", "the transaction was discarded"),
    ("NOPROTO", "unsupported protocol version"),
];

/// A Redis error with its text withheld: the error code and a fixed description, never the
/// server's message (it can quote keys and values). Kept as the `source()` of memstache errors
/// for server replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RedactedReply {
    code: &'static str,
    description: &'static str,
}

impl RedactedReply {
    /// The code of a server error reply (its first word when Redis defines it, else `OTHER`)
    /// with that code's fixed description.
    pub(crate) fn from_reply(reply: &str) -> RedactedReply {
        let first = reply.split_whitespace().next().unwrap_or("");
        CODES.iter().find(|(code, _)| *code == first).map_or(
            RedactedReply {
                code: "OTHER",
                description: "the server answered with an error",
            },
            |&(code, description)| RedactedReply { code, description },
        )
    }

    /// A client-side error about a reply (type or protocol mismatch).
    #[cfg_attr(
        not(feature = "redis-rs"),
        allow(dead_code, reason = "only redis-rs reports reply mismatches this way")
    )]
    pub(crate) fn client(description: &'static str) -> RedactedReply {
        RedactedReply {
            code: "CLIENT",
            description,
        }
    }

    /// The Redis error code (`WRONGTYPE`, …), `OTHER` or `CLIENT`.
    #[cfg_attr(
        not(feature = "redis-rs"),
        allow(
            dead_code,
            reason = "redis-rs recognises NOSCRIPT by it; fred before mapping"
        )
    )]
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }
}

impl fmt::Display for RedactedReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Redis error {}: {} (the server's text is withheld: it can quote keys and values)",
            self.code, self.description
        )
    }
}

impl std::error::Error for RedactedReply {}

/// The error for a write that fewer replicas than [`Durability::Replicas`] asks for acknowledged
/// within its timeout (`WAIT`'s reply): temporary, like a timeout. The write was applied on the
/// primary, but it is not reported written.
///
/// [`Durability::Replicas`]: crate::Durability::Replicas
pub(crate) fn check_replicas(acked: i64, wanted: i64) -> Result<(), Error> {
    if acked >= wanted {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Timeout,
        "fewer Redis replicas than Durability::Replicas asks for acknowledged the write in time \
         (it was applied on the primary, but is not reported written)",
    )
    .with_context("backend", "redis")
    .with_context("replicas_acknowledged", acked.max(0).to_string()))
}

/// The error for an entry longer than the backend's `max_entry_size` (it was not read).
pub(crate) fn too_large() -> Error {
    Error::new(
        ErrorKind::ValueTooLarge,
        "an entry in Redis is larger than the backend's max_entry_size; it was not read",
    )
    .with_context("backend", "redis")
}

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
        let r = RedactedReply::from_reply("WRONGTYPE Operation against a key");
        assert_eq!(r.code(), "WRONGTYPE");
        let r = RedactedReply::from_reply("user:42 is not a code");
        assert_eq!(r.code(), "OTHER");
        assert!(!r.to_string().contains("user:42"));
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
