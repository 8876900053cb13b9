//! Mapping Redis client errors to memstache's [`ErrorKind`]s, keeping the client's error as
//! `source()`.
//!
//! | cause | kind | temporary |
//! |---|---|---|
//! | connection refused / reset / closed, I/O, no node for a slot, `CLUSTERDOWN`, `LOADING`, `MASTERDOWN`, `TRYAGAIN`, `READONLY`, Sentinel lookup | `Unavailable` | yes |
//! | a failed TLS handshake, including a server certificate that does not verify (both clients report it as an I/O failure; `source()` names the cause) | `Unavailable` | yes |
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

/// Builds the memstache error for `kind` with `source` attached.
pub(crate) fn with_source(kind: ErrorKind, source: impl Into<memstache_core::BoxError>) -> Error {
    Error::new(kind, message(kind))
        .with_context("backend", "redis")
        .with_source(source)
}

/// fred's error kinds → memstache kinds.
#[cfg(feature = "fred")]
pub(crate) fn from_fred(e: fred::error::Error) -> Error {
    use fred::error::ErrorKind as F;
    let kind = match e.kind() {
        F::IO | F::Canceled | F::Routing | F::Cluster | F::Sentinel | F::Backpressure => {
            ErrorKind::Unavailable
        }
        F::Timeout => ErrorKind::Timeout,
        F::Auth | F::Config | F::Url => ErrorKind::InvalidConfig,
        #[cfg(feature = "tls")]
        F::Tls => ErrorKind::Unavailable,
        _ => classify_reply(e.details()),
    };
    with_source(kind, e)
}

/// redis-rs errors → memstache kinds.
#[cfg(feature = "redis-rs")]
pub(crate) fn from_redis_rs(e: redis::RedisError) -> Error {
    use redis::ErrorKind as R;
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_cluster_error()
    {
        ErrorKind::Unavailable
    } else {
        match e.kind() {
            R::AuthenticationFailed | R::InvalidClientConfig => ErrorKind::InvalidConfig,
            R::Io
            | R::ClusterConnectionNotFound
            | R::MasterNameNotFoundBySentinel
            | R::NoValidReplicasFoundBySentinel
            | R::EmptySentinelList => ErrorKind::Unavailable,
            _ => e.code().map_or(ErrorKind::Backend, classify_reply),
        }
    };
    with_source(kind, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

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

    #[cfg(feature = "fred")]
    #[test]
    fn fred_errors_map_and_keep_source() {
        use fred::error::{Error as FredError, ErrorKind as F};
        let cases = [
            (F::IO, ErrorKind::Unavailable, true),
            (F::Timeout, ErrorKind::Timeout, true),
            (F::Cluster, ErrorKind::Unavailable, true),
            (F::Protocol, ErrorKind::Backend, false),
            (F::Auth, ErrorKind::InvalidConfig, false),
        ];
        for (fk, kind, temporary) in cases {
            let e = from_fred(FredError::new(fk, "details with user:42"));
            assert_eq!(e.kind(), kind);
            assert_eq!(e.is_temporary(), temporary);
            assert!(!e.to_string().contains("user:42"), "{e}");
            let src = e.source().expect("source kept");
            assert!(src.downcast_ref::<FredError>().is_some());
        }
        let script = from_fred(FredError::new(F::Unknown, "ERR Error running script"));
        assert_eq!(script.kind(), ErrorKind::Backend);
        assert!(!script.is_temporary());
        let down = from_fred(FredError::new(F::Unknown, "LOADING dataset"));
        assert_eq!(down.kind(), ErrorKind::Unavailable);
    }
}
