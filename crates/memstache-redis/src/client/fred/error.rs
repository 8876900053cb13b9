//! fred's errors as memstache [`Error`]s (the table is in the crate's `error.rs`), keeping the
//! fred error as `source()` for connection, I/O, timeout, TLS and configuration errors, and a
//! [`RedactedReply`] (code and fixed description) for everything else: fred keeps a server
//! reply's whole text in its details, and that can quote keys and values.

use memstache_core::{Error, ErrorKind};

use crate::error::{RedactedReply, classify_reply, with_source};
#[cfg(feature = "tls")]
use crate::error::{is_tls_trust_failure, tls_refused};

/// fred's error kinds → memstache kinds.
pub(super) fn from_fred(e: fred::error::Error) -> Error {
    use fred::error::ErrorKind as F;
    #[cfg(feature = "tls")]
    if matches!(e.kind(), F::IO | F::Tls) && is_tls_trust_failure(e.details()) {
        return tls_refused(e);
    }
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
    let keeps_no_arguments = matches!(
        e.kind(),
        F::IO | F::Canceled | F::Timeout | F::Config | F::Url | F::Backpressure
    );
    #[cfg(feature = "tls")]
    let keeps_no_arguments = keeps_no_arguments || matches!(e.kind(), F::Tls);
    if keeps_no_arguments {
        with_source(kind, e)
    } else {
        with_source(kind, RedactedReply::from_reply(e.details()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

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
            let e = from_fred(FredError::new(fk.clone(), "details with user:42"));
            assert_eq!(e.kind(), kind);
            assert_eq!(e.is_temporary(), temporary);
            assert!(!e.to_string().contains("user:42"), "{e}");
            let src = e.source().expect("source kept");
            if matches!(fk, F::IO | F::Timeout) {
                assert!(src.downcast_ref::<FredError>().is_some());
            } else {
                assert!(src.downcast_ref::<RedactedReply>().is_some());
                assert!(!format!("{e:?}").contains("user:42"), "{e:?}");
            }
        }
        let script = from_fred(FredError::new(F::Unknown, "ERR Error running script"));
        assert_eq!(script.kind(), ErrorKind::Backend);
        assert!(!script.is_temporary());
        let down = from_fred(FredError::new(F::Unknown, "LOADING dataset"));
        assert_eq!(down.kind(), ErrorKind::Unavailable);
    }
}
