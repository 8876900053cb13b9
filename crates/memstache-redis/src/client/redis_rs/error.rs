//! redis-rs's errors as memstache [`Error`]s (the table is in the crate's `error.rs`), keeping
//! the redis-rs error as `source()`.

use memstache_core::{Error, ErrorKind};

use crate::error::{classify_reply, with_source};
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
    with_source(kind, e)
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
