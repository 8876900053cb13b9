//! The road: every backend call of a cache goes through here, to its one
//! [`Backend`](crate::raw::Backend) (the store itself, or the layered stack as a
//! [`ServiceBackend`](crate::raw::ServiceBackend)), under the operation timeout.
//!
//! These calls have no effect on the local tier: an operation of a cache with a local tier
//! takes the tiered path of [`tiered`](super::tiered), which takes its tickets of
//! [`local`](super::local) around these calls, and only that path touches the copies. Every
//! entry call takes a [`Via`], the proof of which path it comes from.
//!
//! Entry calls (`read`, `write`, `delete` and their batch forms) act on entries of a scope.
//! Control calls (`control_*`) act on keys that are not entries and never have local copies:
//! distributed locks and scope guards (tenancy's generation tokens).
//!
//! The calls are combinators, not `async fn`s, where they are on the plain path (their state
//! would otherwise be part of, and copied with, every operation's future): they start when
//! *called* — the timeout's clock starts then, and creating it needs a Tokio runtime. Call them
//! only where the returned future is awaited at once. Paths with a guard are boxed, so their
//! state stays out of the plain operation's future.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::Either;

use super::local::LocalCopies;
use super::{MemStache, expired_at};
use crate::raw::{BackendEntry, Expiry};
use crate::scope::{Guard, Outcome, Scope};
use crate::{Error, ErrorKind, Result};

type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

/// The path an entry call comes from, as a proof the caller took the local tier into account:
/// every entry call of the road takes one. [`Via::plain`] is for a cache without a local tier
/// (checked in debug builds, which the tests run); [`Via::tiered`] needs the tier itself, and
/// only the tiered paths of [`tiered`](super::tiered) hold it. So a new operation cannot reach
/// the store past the local copies by mistake: the plain path it would take fails the check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Via(());

impl Via {
    /// An operation of a cache without a local tier.
    #[inline]
    pub(crate) fn plain(cache: &MemStache) -> Via {
        debug_assert!(
            cache.inner.local.is_none(),
            "an entry call on the plain path of a cache with a local tier"
        );
        Via(())
    }

    /// An operation of the tiered path, which holds the local tier.
    #[inline]
    pub(crate) fn tiered(_: &LocalCopies) -> Via {
        Via(())
    }
}

impl MemStache {
    /// Runs a backend call under the operation timeout (the outermost bound: it covers every
    /// layer, retries included).
    pub(crate) fn call<T>(
        &self,
        fut: impl Future<Output = Result<T>>,
    ) -> impl Future<Output = Result<T>> {
        match self.inner.operation_timeout {
            None => Either::Left(fut),
            Some(limit) => Either::Right(tokio::time::timeout(limit, fut).map(move |r| {
                r.unwrap_or_else(|_| {
                    Err(Error::new(
                        ErrorKind::Timeout,
                        format!("backend did not answer within {limit:?}"),
                    ))
                })
            })),
        }
    }

    /// The local tier, when the cache has one.
    #[inline]
    pub(crate) fn l1(&self) -> Option<&LocalCopies> {
        self.inner.local.as_deref()
    }

    // ---- entries -----------------------------------------------------------------------

    /// The entry at `sk` (`None` when absent or past its header's deadline), checked against
    /// the scope's guard in the same backend call when there is one.
    pub(crate) fn read<'a>(
        &'a self,
        _via: Via,
        scope: &Scope<'a>,
        sk: &'a str,
    ) -> impl Future<Output = Result<Outcome<Option<Bytes>>>> + Send + 'a {
        if let Some(g) = scope.guard {
            return Either::Right(Box::pin(self.read_guarded(g, sk)) as Boxed<'a, _>);
        }
        Either::Left(self.call(self.inner.backend.get(sk)).map(move |r| {
            r.map(|raw| Outcome::Done(raw.filter(|raw| !self.expired_by_header(raw))))
        }))
    }

    async fn read_guarded(&self, g: Guard<'_>, sk: &str) -> Result<Outcome<Option<Bytes>>> {
        let mut got = self.call(self.inner.backend.get_many(&[g.key, sk])).await?;
        if got.len() != 2 {
            return Err(Error::internal(
                "backend returned the wrong number of values",
            ));
        }
        let value = got
            .pop()
            .flatten()
            .filter(|raw| !self.expired_by_header(raw));
        let guard = got.pop().flatten();
        if guard.as_deref() == Some(g.expected) {
            Ok(Outcome::Done(value))
        } else {
            Ok(Outcome::Stale(guard))
        }
    }

    /// The entries at `sks`, in order, in one backend batch call (with the scope's guard).
    pub(crate) async fn read_many(
        &self,
        _via: Via,
        scope: &Scope<'_>,
        sks: &[&str],
    ) -> Result<Outcome<Vec<Option<Bytes>>>> {
        let mut raws = match scope.guard {
            None => self.call(self.inner.backend.get_many(sks)).await?,
            Some(g) => {
                let mut keys = Vec::with_capacity(sks.len() + 1);
                keys.push(g.key);
                keys.extend_from_slice(sks);
                let mut raws = self.call(self.inner.backend.get_many(&keys)).await?;
                if raws.len() != keys.len() {
                    return Err(Error::internal(
                        "backend returned the wrong number of values",
                    ));
                }
                let guard = raws.remove(0);
                if guard.as_deref() != Some(g.expected) {
                    return Ok(Outcome::Stale(guard));
                }
                raws
            }
        };
        if raws.len() != sks.len() {
            return Err(Error::internal(
                "backend returned the wrong number of values",
            ));
        }
        let now = self.inner.clock.now_ms();
        for raw in &mut raws {
            if raw.as_ref().is_some_and(|r| expired_at(r, now)) {
                *raw = None;
            }
        }
        Ok(Outcome::Done(raws))
    }

    /// Stores `bytes` at `sk` in an unguarded scope (a guarded scope writes through
    /// [`write_guarded`](Self::write_guarded)).
    pub(crate) fn write<'a>(
        &'a self,
        _via: Via,
        sk: &'a str,
        bytes: Bytes,
        expiry: Expiry,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        self.call(self.inner.backend.set(sk, bytes, expiry))
    }

    /// Stores `bytes` at `sk` through the guard `g`, in one backend call: [`Outcome::Stale`]
    /// and nothing written when the guard moved on.
    pub(crate) async fn write_guarded(
        &self,
        _via: Via,
        g: Guard<'_>,
        sk: &str,
        bytes: Bytes,
        expiry: Expiry,
    ) -> Result<Outcome<()>> {
        let entry = BackendEntry {
            key: sk.to_owned(),
            value: bytes,
            expiry,
        };
        self.call(
            self.inner
                .backend
                .set_many_guarded(g.key, g.expected, vec![entry]),
        )
        .await
    }

    /// Stores every entry in one backend batch call (through the scope's guard).
    pub(crate) async fn write_many(
        &self,
        _via: Via,
        scope: &Scope<'_>,
        entries: Vec<BackendEntry>,
    ) -> Result<Outcome<()>> {
        if let Some(g) = scope.guard {
            return self
                .call(
                    self.inner
                        .backend
                        .set_many_guarded(g.key, g.expected, entries),
                )
                .await;
        }
        self.call(self.inner.backend.set_many(entries))
            .await
            .map(Outcome::Done)
    }

    /// Removes `sk`; `true` when an entry was there.
    pub(crate) fn delete<'a>(
        &'a self,
        _via: Via,
        sk: &'a str,
    ) -> impl Future<Output = Result<bool>> + Send + 'a {
        self.call(self.inner.backend.remove(sk))
    }

    /// Removes every key in one backend batch call; how many entries were there.
    pub(crate) async fn delete_many(&self, _via: Via, sks: &[&str]) -> Result<u64> {
        self.call(self.inner.backend.remove_many(sks)).await
    }

    /// Whether a live entry is at `sk` (no local effect).
    pub(crate) fn probe<'a>(&'a self, sk: &'a str) -> impl Future<Output = Result<bool>> + 'a {
        self.call(self.inner.backend.exists(sk))
    }

    /// Re-arms the sliding window of `sk` (no local effect: a copy's age counts from when it
    /// was last read or written).
    pub(crate) fn touch<'a>(&'a self, sk: &'a str) -> impl Future<Output = Result<bool>> + 'a {
        self.call(self.inner.backend.touch(sk))
    }

    // ---- control keys ------------------------------------------------------------------

    /// Reads a control key (a [`Guard`]'s key, for example) under the operation timeout.
    /// Control keys are not entries: no envelope, no local copy.
    pub fn control_get<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Future<Output = Result<Option<Bytes>>> + 'a {
        self.call(self.inner.backend.get(key))
    }

    /// Writes a control key under the operation timeout.
    pub fn control_set<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expiry: Expiry,
    ) -> impl Future<Output = Result<()>> + 'a {
        self.call(self.inner.backend.set(key, value, expiry))
    }

    /// Writes a control key only when it is absent (atomic on distributed backends), under
    /// the operation timeout; `true` when it wrote.
    pub fn control_set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expiry: Expiry,
    ) -> impl Future<Output = Result<bool>> + 'a {
        self.call(self.inner.backend.set_if_absent(key, value, expiry))
    }

    /// Removes a control key only when it holds `expected` (atomic on distributed backends),
    /// under the operation timeout; `true` when it removed.
    pub fn control_remove_if_equals<'a>(
        &'a self,
        key: &'a str,
        expected: &'a [u8],
    ) -> impl Future<Output = Result<bool>> + 'a {
        self.call(self.inner.backend.remove_if_equals(key, expected))
    }
}
