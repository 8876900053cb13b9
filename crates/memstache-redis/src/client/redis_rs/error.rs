//! redis-rs's errors as memstache [`Error`]s (the table is in the crate's `error.rs`), keeping
//! the redis-rs error as `source()` for connection, I/O, timeout, TLS and configuration
//! errors, and a [`RedactedReply`] (code and fixed description) for server replies and reply
//! mismatches, whose text can quote keys and values.

use memstache_core::{Error, ErrorKind};

use crate::error::{RedactedReply, classify_reply, with_source};
#[cfg(feature = "tls")]
use crate::error::{is_tls_trust_failure, tls_refused};

/// redis-rs errors → memstache kinds.
pub(super) fn from_redis_rs(e: redis::RedisError) -> Error {
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
    // (the error path only: a TLS refusal surfaces as a connection failure)
    #[cfg(feature = "tls")]
    if kind == ErrorKind::Unavailable
        // a connection failure, not a server reply (whose text the server partly controls)
        && e.code().is_none()
        && match rustls_error(&e) {
            Some(r) => is_tls_trust_failure(&format!("{r:?}")),
            // the cluster client keeps only the message
            None => is_tls_trust_failure(&e.to_string()),
        }
    {
        return tls_refused(e);
    }
    if let Some(code) = e.code() {
        return with_source(kind, RedactedReply::from_reply(code));
    }
    let keeps_no_arguments = e.is_timeout()
        || e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || matches!(
            e.kind(),
            R::Io
                | R::AuthenticationFailed
                | R::InvalidClientConfig
                | R::MasterNameNotFoundBySentinel
                | R::NoValidReplicasFoundBySentinel
                | R::EmptySentinelList
                | R::ClusterConnectionNotFound
        );
    if keeps_no_arguments {
        with_source(kind, e)
    } else {
        with_source(
            kind,
            RedactedReply::client("redis-rs could not use the reply (type or protocol mismatch)"),
        )
    }
}

/// The rustls error under a redis-rs error, if any. redis-rs keeps an I/O failure as an
/// `Arc<dyn Error>` holding the `io::Error`, and rustls reports through an `io::Error` whose
/// inner error (not its `source()`) is the `rustls::Error`.
#[cfg(feature = "tls")]
fn rustls_error(e: &redis::RedisError) -> Option<&rustls::Error> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(shared) = err.downcast_ref::<Shared>() {
            return find(shared.as_ref());
        }
        if let Some(inner) = err
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            return find(inner);
        }
        err.source().and_then(find)
    }
    std::error::Error::source(e).and_then(find)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;
    use std::io;

    use redis::{ErrorKind as R, RedisError, ServerErrorKind as S};

    #[test]
    fn redis_rs_errors_map_and_keep_source() {
        let cases: [(RedisError, ErrorKind, bool); 9] = [
            (
                io::Error::from(io::ErrorKind::ConnectionRefused).into(),
                ErrorKind::Unavailable,
                true,
            ),
            (
                io::Error::from(io::ErrorKind::TimedOut).into(),
                ErrorKind::Timeout,
                true,
            ),
            (
                (R::EmptySentinelList, "no sentinels").into(),
                ErrorKind::Unavailable,
                true,
            ),
            (
                (R::AuthenticationFailed, "bad password").into(),
                ErrorKind::InvalidConfig,
                false,
            ),
            (
                (R::Server(S::BusyLoading), "loading").into(),
                ErrorKind::Unavailable,
                true,
            ),
            (
                (R::Server(S::ReadOnly), "replica").into(),
                ErrorKind::Unavailable,
                true,
            ),
            (
                (R::Server(S::NoPerm), "acl").into(),
                ErrorKind::InvalidConfig,
                false,
            ),
            (
                (R::Server(S::ResponseError), "script failed").into(),
                ErrorKind::Backend,
                false,
            ),
            (
                (R::UnexpectedReturnType, "not bytes").into(),
                ErrorKind::Backend,
                false,
            ),
        ];
        for (i, (re, kind, temporary)) in cases.into_iter().enumerate() {
            let shown = format!("{re:?}");
            let e = from_redis_rs(re);
            assert_eq!(e.kind(), kind, "{shown}");
            assert_eq!(e.is_temporary(), temporary, "{shown}");
            let src = e.source().expect("source kept");
            // connection and configuration errors keep redis-rs's error; server replies and
            // reply mismatches a redacted one
            if i < 4 {
                assert!(src.downcast_ref::<RedisError>().is_some(), "{shown}");
            } else {
                assert!(src.downcast_ref::<RedactedReply>().is_some(), "{shown}");
                assert!(!format!("{e:?}").contains("script failed"), "{shown}");
            }
        }
    }

    /// A refused certificate inside redis-rs's I/O error is a configuration error, not an
    /// outage; a connection reset during the handshake stays temporary.
    #[cfg(feature = "tls")]
    #[test]
    fn tls_refusals_under_redis_rs_errors_are_configuration_errors() {
        use rustls::{CertificateError, Error as T};
        let refused: RedisError = io::Error::new(
            io::ErrorKind::InvalidData,
            T::InvalidCertificate(CertificateError::UnknownIssuer),
        )
        .into();
        let e = from_redis_rs(refused);
        assert_eq!(e.kind(), ErrorKind::InvalidConfig);
        assert!(!e.is_temporary());

        let reset: RedisError = io::Error::from(io::ErrorKind::ConnectionReset).into();
        let e = from_redis_rs(reset);
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_temporary());
    }
}
