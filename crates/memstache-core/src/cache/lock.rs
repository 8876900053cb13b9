//! The distributed lock of `get_or_set`: the in-process flight leader also takes a lock in the
//! backend (`set_if_absent` with a random token and a lease; released with
//! `remove_if_equals`), so instances missing the same key run the loader about once.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;

use super::MemStache;
use crate::raw::Expiry;
use crate::{Error, ErrorKind, Result};

/// Default lease of a distributed `get_or_set` lock.
pub const DEFAULT_LOCK_LEASE: Duration = Duration::from_secs(10);
/// Default longest wait for another instance's loader.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(3);
/// Default interval between reads while waiting.
pub const DEFAULT_LOCK_POLL: Duration = Duration::from_millis(50);

/// Distributed stampede protection for `get_or_set`
/// ([`MemStacheBuilder::distributed_lock`](crate::MemStacheBuilder::distributed_lock)).
///
/// On a miss, the in-process flight leader tries to take the lock of the key in the backend:
/// `set_if_absent("{namespace}!lock:{storage key}", random token, lease)`. The lock key cannot
/// collide with an entry: storage keys start with `{namespace}:` or `{namespace}#`, and
/// namespaces cannot contain `!`; the full storage key follows, so distinct keys have distinct
/// locks.
///
/// * Taken: it runs the loader, stores the value, then releases the lock with
///   `remove_if_equals(lock key, token)`, so a lock that expired and was taken by another
///   instance is never released by the old holder.
/// * Held by another instance: it reads the cache every `poll` until the value appears or
///   `wait` has passed, then runs the loader anyway (the holder may have died: its lock only
///   disappears after `lease`).
/// * The lock cannot be read or written (backend down): it runs the loader (a lock never makes
///   `get_or_set` less available than it is without one).
/// * Retried attempts recognise their own lock: when `set_if_absent` answers "present", or
///   fails with a temporary error (a timeout whose write may still have been applied), the
///   lock is read back, and a lock holding this attempt's token counts as taken. So a retry
///   layer that resends a `set_if_absent` the backend had applied does not make the cache
///   wait for itself.
///
/// The backend must make `set_if_absent` and `remove_if_equals` atomic (the memory and Redis
/// backends do). A leader that is cancelled keeps the lock until the lease ends.
///
/// ```
/// use memstache_core::{LockOptions, MemStache};
/// use std::time::Duration;
///
/// let cache = MemStache::builder()
///     .distributed_lock(
///         LockOptions::new()
///             .lease(Duration::from_secs(30))
///             .wait(Duration::from_secs(5))
///             .poll(Duration::from_millis(25)),
///     )
///     .build()?;
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct LockOptions {
    pub(crate) lease: Duration,
    pub(crate) wait: Duration,
    pub(crate) poll: Duration,
}

impl fmt::Debug for LockOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockOptions")
            .field("lease", &self.lease)
            .field("wait", &self.wait)
            .field("poll", &self.poll)
            .finish()
    }
}

impl Default for LockOptions {
    fn default() -> Self {
        LockOptions::new()
    }
}

impl LockOptions {
    /// Every default: lease 10 s, wait 3 s, poll 50 ms.
    pub fn new() -> Self {
        LockOptions {
            lease: DEFAULT_LOCK_LEASE,
            wait: DEFAULT_LOCK_WAIT,
            poll: DEFAULT_LOCK_POLL,
        }
    }

    /// How long a taken lock lives when its holder never releases it (crash, cancellation).
    /// Longer than the slowest loader, or a second instance loads meanwhile. Default: 10 s.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Longest time an instance waits for another's loader before running its own.
    /// Default: 3 s.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Interval between reads of the cache while waiting. Default: 50 ms.
    pub fn poll(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.lease.is_zero() || self.poll.is_zero() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "distributed lock lease and poll must be positive",
            ));
        }
        Ok(())
    }
}

/// The outcome of trying to take a lock.
#[derive(Debug)]
pub(crate) enum Lock {
    /// Taken: release with this key and token.
    Held { key: String, token: Bytes },
    /// Another instance holds it.
    Busy,
    /// Could not tell (backend error): load without it.
    Unknown,
}

/// 128 random bits as hex: std's `RandomState` is seeded from the OS per process, mixed with
/// a counter and the time so tokens never repeat within a process.
fn new_token() -> Bytes {
    use std::hash::{BuildHasher, RandomState};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let a = RandomState::new().hash_one((seq, now, std::process::id()));
    let b = RandomState::new().hash_one((a, seq));
    Bytes::from(format!("{a:016x}{b:016x}"))
}

impl MemStache {
    /// The lock key of storage key `sk`.
    pub(crate) fn lock_key(&self, sk: &str) -> String {
        let ns = &self.inner.namespace;
        let mut k = String::with_capacity(ns.len() + 6 + sk.len());
        k.push_str(ns);
        k.push_str("!lock:");
        k.push_str(sk);
        k
    }

    pub(crate) async fn try_lock(&self, sk: &str, opts: &LockOptions) -> Lock {
        let key = self.lock_key(sk);
        let token = new_token();
        let now = self.inner.clock.now_ms();
        let lease_ms = u64::try_from(opts.lease.as_millis()).unwrap_or(u64::MAX);
        let expiry = Expiry::new(Some(now.saturating_add(lease_ms)), None);
        match self
            .control_set_if_absent(&key, token.clone(), expiry)
            .await
        {
            Ok(true) => Lock::Held { key, token },
            // A retry below the cache (a retry layer, a client that resends after a timeout)
            // may have found the lock its own first attempt wrote: the lock is ours when it
            // holds our token.
            Ok(false) => match self.holds_own_token(&key, &token).await {
                Some(true) => Lock::Held { key, token },
                // present, and not ours (or unreadable: someone holds it, maybe us)
                Some(false) | None => Lock::Busy,
            },
            Err(e) => {
                // A write reported as failed (timed out, connection reset) may still have
                // been applied: if the lock holds our token, we hold it.
                if e.is_temporary() && self.holds_own_token(&key, &token).await == Some(true) {
                    return Lock::Held { key, token };
                }
                let e = e.with_operation("get_or_set");
                tracing::warn!(error = %e, "memstache: distributed lock unavailable; loading without it");
                Lock::Unknown
            }
        }
    }

    /// Whether the lock at `key` holds `token` (`None`: could not read it).
    async fn holds_own_token(&self, key: &str, token: &[u8]) -> Option<bool> {
        match self.control_get(key).await {
            Ok(v) => Some(v.as_deref() == Some(token)),
            Err(_) => None,
        }
    }

    pub(crate) async fn unlock(&self, key: &str, token: Bytes) {
        if let Err(e) = self.control_remove_if_equals(key, &token).await {
            let e = e.with_operation("get_or_set");
            tracing::warn!(error = %e, "memstache: releasing the distributed lock failed; it ends with its lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn lock_keys_are_injective_and_apart_from_entries() {
        let c = MemStache::builder().namespace("ns").build().unwrap();
        let sk = c.storage_key("a:b").unwrap();
        let lk = c.lock_key(&sk);
        assert_eq!(lk, "ns!lock:ns:a:b");
        assert!(!lk.starts_with("ns:"));
        assert_ne!(c.lock_key("ns:a"), c.lock_key("ns:b"));
        assert!(LockOptions::new().lease(Duration::ZERO).validate().is_err());
    }
}
