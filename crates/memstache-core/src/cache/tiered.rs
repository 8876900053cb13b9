//! The tiered paths: the operations of a cache with a local tier (L1). The one place that
//! takes the [`local`](super::local) tickets around the backend calls of
//! [`road`](super::road), serves L1 hits, keeps what was read or written, and tells the other
//! nodes over the backplane.
//!
//! Every path is reached from the operation in [`ops`](super::ops) when the cache has a local
//! tier, boxed: none of this state is part of a plain cache's operation futures.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::backplane::{self, Kind};
use super::load::Life;
use super::local::{LocalCopies, LocalCopy, Meta, WriteTicket, guard_tag};
use super::pipeline::{Opened, fingerprint_of};
use super::road::Via;
use super::{MemStache, Outcome, Scope};
use crate::options::Skip;
use crate::raw::{BackendEntry, Expiry};
use crate::{EntryOptions, Error, Result};

/// A guarded read found its guard moved on (another node cleared the scope): this node's
/// copies of every scope under that guard are dead.
fn stale<T>(l1: &LocalCopies, scope: &Scope<'_>, seen: Option<Bytes>) -> Outcome<T> {
    if let Some(guard) = scope.guard {
        l1.guard_changed(guard_tag(guard.key));
    }
    Outcome::Stale(seen)
}

impl MemStache {
    /// Deserializes a local copy with the serializer that produced it.
    pub(crate) fn decode_copy<T: DeserializeOwned>(&self, c: &LocalCopy) -> Result<T> {
        let p = &self.inner.pipeline;
        p.serializer_for(c.serializer)?
            .deserialize_typed(&c.plain, p.max_depth)
    }

    /// Opens an entry read from `sk` and deserializes it, returning the plaintext too (for
    /// the local tier) with the id of its serializer.
    async fn decode_keep<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        sk: &str,
        key_id: &str,
    ) -> Result<(T, Bytes, u8)> {
        let pipeline = &self.inner.pipeline;
        let fingerprint = self.expected_fingerprint::<T>();
        let depth = pipeline.max_depth;
        let opened = pipeline.open(bytes, sk, fingerprint, key_id)?;
        let (plain, serializer): (Cow<'_, [u8]>, _) = match opened {
            Opened::Plain(plain, s) => (plain, s),
            Opened::Sealed { key_id, version } => {
                let key = pipeline.entry_key(key_id, version).await?;
                pipeline.open_sealed(bytes, sk, &key, fingerprint)?
            }
        };
        let v = serializer.deserialize_typed(&plain, depth)?;
        let id = pipeline.serializer_id(&serializer);
        let plain = match plain {
            Cow::Borrowed(b) => Bytes::copy_from_slice(b),
            Cow::Owned(v) => Bytes::from(v),
        };
        Ok((v, plain, id))
    }

    /// What an entry read from the backend is kept as.
    fn meta_of_read<T: ?Sized>(&self, raw: &[u8], scope: &Scope<'_>, serializer: u8) -> Meta {
        let (deadline_ms, sliding_ms) = crate::envelope::peek_expiry(raw).unwrap_or((0, 0));
        Meta {
            fingerprint: fingerprint_of::<T>(),
            serializer,
            deadline_ms,
            created_ms: crate::envelope::peek_created(raw).unwrap_or(0),
            sliding: sliding_ms != 0,
            guard_tag: scope.guard.map_or(0, |g| guard_tag(g.key)),
        }
    }

    /// What a value written with `options` (merged with the defaults) is kept as.
    pub(crate) fn meta_of_write<T: ?Sized>(&self, scope: &Scope<'_>, expiry: &Expiry) -> Meta {
        Meta {
            fingerprint: fingerprint_of::<T>(),
            serializer: self.inner.pipeline.serializer.id(),
            deadline_ms: expiry.deadline_ms.unwrap_or(0),
            created_ms: self.inner.clock.now_ms(),
            sliding: expiry.sliding.is_some(),
            guard_tag: scope.guard.map_or(0, |g| guard_tag(g.key)),
        }
    }

    /// Tells the other nodes that `keys` changed (or, with [`Kind::Guards`], that these
    /// guards changed). Failures are counted and logged, never returned: the write they follow
    /// stood.
    pub(crate) async fn publish(&self, kind: Kind, keys: &[&str]) {
        let (Some(bp), Some(l1)) = (&self.inner.backplane, self.l1()) else {
            return;
        };
        let msgs = backplane::encode(kind, &self.inner.sender, keys)
            .or_else(|| backplane::encode(Kind::All, &self.inner.sender, &[]))
            .unwrap_or_default();
        for m in msgs {
            match self.call(bp.publish(&self.inner.channel, m)).await {
                Ok(()) => {
                    l1.stats.sent.fetch_add(1, Relaxed);
                }
                Err(e) => {
                    l1.stats.publish_errors.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, "memstache: backplane publish failed; other nodes may serve their copy until it expires from their local tier");
                }
            }
        }
    }

    /// The L1 hit of a `get`, synchronously (no future, no box: an L1 hit is the fast path):
    /// the fresh copy of `sk` decoded, or `None` to read on.
    #[inline]
    pub(crate) fn l1_hit<T: DeserializeOwned>(
        &self,
        l1: &LocalCopies,
        sk: &str,
        skip: Skip,
        span: &tracing::Span,
    ) -> Option<T> {
        if skip.has(Skip::LOCAL_READ) {
            return None;
        }
        let c = l1.lookup(sk, fingerprint_of::<T>(), self.inner.clock.now_ms())?;
        let v = self.decode_or_discard::<T>(l1, sk, &c)?;
        self.served_by_l1(span);
        Some(v)
    }

    /// A copy decoded, or dropped (and `None`) when it does not decode.
    fn decode_or_discard<T: DeserializeOwned>(
        &self,
        l1: &LocalCopies,
        sk: &str,
        c: &LocalCopy,
    ) -> Option<T> {
        match self.decode_copy::<T>(c) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::debug!(error = %e, "memstache: local copy did not decode; reading the backend");
                l1.discard(sk);
                None
            }
        }
    }

    /// Counts an L1 hit and records it on the operation's span.
    fn served_by_l1(&self, span: &tracing::Span) {
        self.inner.stats.l1_hit();
        if !span.is_disabled() {
            span.record("hit", true);
            span.record("level", "l1");
        }
    }

    /// The L1 hit of a `get_arc`: the value decoded once for the fresh copy of `sk` (decoded
    /// and kept now when this is the copy's first `get_arc`), or `None` to read on.
    pub(crate) fn l1_object<T: DeserializeOwned + Send + Sync + 'static>(
        &self,
        l1: &LocalCopies,
        sk: &str,
        span: &tracing::Span,
    ) -> Option<Arc<T>> {
        let v = match l1.object::<T>(sk, fingerprint_of::<T>(), self.inner.clock.now_ms()) {
            Ok(v) => v,
            Err(None) => return None,
            Err(Some(c)) => {
                let v = Arc::new(self.decode_or_discard::<T>(l1, sk, &c)?);
                l1.keep_object(sk, c.id, Arc::clone(&v) as _);
                v
            }
        };
        self.served_by_l1(span);
        Some(v)
    }

    /// `get` with a local tier.
    pub(crate) async fn get_tiered<T: DeserializeOwned>(
        &self,
        l1: &LocalCopies,
        scope: &Scope<'_>,
        sk: &str,
        skip: Skip,
        span: &tracing::Span,
    ) -> Result<Outcome<Option<T>>> {
        if let Some(v) = self.l1_hit::<T>(l1, sk, skip, span) {
            return Ok(Outcome::Done(Some(v)));
        }
        self.get_below_l1(l1, scope, sk, skip, span, &mut Life::default())
            .await
    }

    /// `get` with a local tier, past L1: the backend (or a miss when the call skips it).
    pub(crate) async fn get_below_l1<T: DeserializeOwned>(
        &self,
        l1: &LocalCopies,
        scope: &Scope<'_>,
        sk: &str,
        skip: Skip,
        span: &tracing::Span,
        life: &mut Life,
    ) -> Result<Outcome<Option<T>>> {
        if skip.has(Skip::DISTRIBUTED_READ) {
            self.inner.stats.miss();
            span.record("hit", false);
            return Ok(Outcome::Done(None));
        }
        let ticket = l1.read_ticket(sk);
        let raw = match self.read(Via::tiered(l1), scope, sk).await {
            Ok(Outcome::Done(raw)) => raw,
            Ok(Outcome::Stale(g)) => return Ok(stale(l1, scope, g)),
            Err(e) => {
                return match self.fail_safe_value::<T>(sk, &e).await {
                    Some(v) => Ok(Outcome::Done(Some(v))),
                    None => Err(e),
                };
            }
        };
        let Some(raw) = raw else {
            self.inner.stats.miss();
            span.record("hit", false);
            return Ok(Outcome::Done(None));
        };
        if let Some(absent) = self.open_absent(&raw, sk, scope.key_id).await {
            // a "not found" marker is never kept in the local tier
            absent?;
            *life = Life::of_envelope(&raw).absent();
            span.record("hit", false);
            return Ok(Outcome::Done(None));
        }
        span.record("size", raw.len());
        let (v, plain, serializer) = match self.decode_keep::<T>(&raw, sk, scope.key_id).await {
            Ok(d) => d,
            Err(e) => {
                span.record("hit", false);
                return self
                    .undecodable(e, self.inner.decode_failure)
                    .map(Outcome::Done);
            }
        };
        span.record("hit", true);
        span.record("level", "l2");
        *life = Life::of_envelope(&raw);
        if !skip.has(Skip::LOCAL_WRITE) {
            let meta = self.meta_of_read::<T>(&raw, scope, serializer);
            l1.read_done(ticket, sk, &plain, meta, self.inner.clock.now_ms());
        }
        self.inner.stats.hit();
        Ok(Outcome::Done(Some(v)))
    }

    /// A read on the `get_or_set` path with a local tier: errors count as misses (logged and
    /// counted), unless fail-safe answers for a failed backend.
    pub(crate) async fn read_for_load_tiered<T: DeserializeOwned>(
        &self,
        l1: &LocalCopies,
        scope: &Scope<'_>,
        sk: &str,
        skip: Skip,
        life: &mut Life,
    ) -> Outcome<Option<T>> {
        let span = tracing::Span::current();
        if !skip.has(Skip::LOCAL_READ)
            && let Some(c) = l1.lookup(sk, fingerprint_of::<T>(), self.inner.clock.now_ms())
            && let Some(v) = self.decode_or_discard::<T>(l1, sk, &c)
        {
            self.served_by_l1(&span);
            *life = Life {
                created_ms: c.created_ms,
                deadline_ms: c.deadline_ms,
                absent: false,
            };
            return Outcome::Done(Some(v));
        }
        match self
            .get_below_l1::<T>(l1, scope, sk, skip, &span, life)
            .await
        {
            Ok(o) => o,
            Err(e) => {
                self.read_through_failed(e, "get_or_set");
                Outcome::Done(None)
            }
        }
    }

    /// After a `get_or_set` loader failed: the fail-safe copy of `sk`, if there is one, which
    /// is then served fresh for `throttle` so that the failing loader is not called again
    /// meanwhile (on this node).
    ///
    /// Also returns the copy's plaintext when it is in the cache's own format, for the
    /// single-flight waiters to share (so they do not call the failing loader in turn).
    pub(crate) fn loader_fail_safe<T: DeserializeOwned>(
        &self,
        sk: &str,
        throttle: std::time::Duration,
    ) -> Option<(T, Option<Vec<u8>>)> {
        let (v, shared, age_ms) = self.recall_copy::<T>(sk)?;
        let l1 = self.l1()?;
        let until = self
            .inner
            .clock
            .now_ms()
            .saturating_add(u64::try_from(throttle.as_millis()).unwrap_or(u64::MAX));
        l1.throttle(sk, fingerprint_of::<T>(), until);
        self.inner.stats.loader_fail_safe_hit();
        let span = tracing::Span::current();
        span.record("fail_safe", true);
        tracing::debug!(
            age_ms,
            "memstache: the loader failed; served the fail-safe copy"
        );
        Some((v, shared))
    }

    /// The local copy of `sk` (fresh or kept for fail-safe) decoded, with its plaintext when
    /// it is in the cache's own format (for single-flight waiters) and its age.
    pub(crate) fn recall_copy<T: DeserializeOwned>(
        &self,
        sk: &str,
    ) -> Option<(T, Option<Vec<u8>>, u64)> {
        let l1 = self.l1()?;
        let copy = l1.recall(sk, fingerprint_of::<T>(), self.inner.clock.now_ms())?;
        let v = self.decode_copy::<T>(&copy).ok()?;
        let shared =
            (copy.serializer == self.inner.pipeline.serializer.id()).then(|| copy.plain.to_vec());
        Some((v, shared, copy.age_ms))
    }

    /// Writes `plain` (the serialized value of type `T`) at `sk` with a local tier: encodes it,
    /// stores it (through the scope's guard), keeps it locally, tells the other nodes.
    pub(crate) async fn store_tiered<T: ?Sized>(
        &self,
        l1: &LocalCopies,
        scope: &Scope<'_>,
        sk: &str,
        plain: &[u8],
        options: &EntryOptions,
    ) -> Result<Outcome<()>> {
        let skip = options.or(&self.inner.defaults).skips();
        let now = self.inner.clock.now_ms();
        let (bytes, expiry) = self
            .encode_serialized::<T>(plain, sk, scope.key_id, options, now)
            .await?;
        let meta = self.meta_of_write::<T>(scope, &expiry);
        tracing::Span::current().record("size", bytes.len());
        if expiry.is_due(now) {
            return self.remove_tiered(l1, sk).await.map(|_| Outcome::Done(()));
        }
        let ticket = l1.write_ticket(sk);
        let out = if skip.has(Skip::DISTRIBUTED_WRITE) {
            Ok(Outcome::Done(()))
        } else {
            match scope.guard {
                None => self
                    .write(Via::tiered(l1), sk, bytes, expiry)
                    .await
                    .map(Outcome::Done),
                Some(g) => {
                    self.write_guarded(Via::tiered(l1), g, sk, bytes, expiry)
                        .await
                }
            }
        };
        let stored = matches!(out, Ok(Outcome::Done(())));
        ticket.done(
            sk,
            (stored && !skip.has(Skip::LOCAL_WRITE)).then_some((plain, meta)),
            self.inner.clock.now_ms(),
        );
        if !matches!(out, Ok(Outcome::Stale(_))) {
            self.publish(Kind::Keys, &[sk]).await;
        }
        if stored {
            self.inner.stats.set();
        }
        out
    }

    /// `set` with a local tier.
    pub(crate) async fn put_tiered<T: Serialize + ?Sized>(
        &self,
        l1: &LocalCopies,
        scope: &Scope<'_>,
        sk: &str,
        value: &T,
        options: &EntryOptions,
    ) -> Result<Outcome<()>> {
        let plain = self.inner.pipeline.serialize(value)?;
        self.store_tiered::<T>(l1, scope, sk, &plain, options).await
    }

    /// `remove` with a local tier.
    pub(crate) async fn remove_tiered(&self, l1: &LocalCopies, sk: &str) -> Result<bool> {
        let ticket = l1.write_ticket(sk);
        let r = self.delete(Via::tiered(l1), sk).await;
        ticket.done(sk, None, self.inner.clock.now_ms());
        self.publish(Kind::Keys, &[sk]).await;
        r
    }

    /// `remove_many` with a local tier.
    pub(crate) async fn remove_many_tiered(&self, l1: &LocalCopies, sks: &[&str]) -> Result<u64> {
        let tickets: Vec<WriteTicket<'_>> = sks.iter().map(|sk| l1.write_ticket(sk)).collect();
        let r = self.delete_many(Via::tiered(l1), sks).await;
        let now = self.inner.clock.now_ms();
        for (ticket, sk) in tickets.into_iter().zip(sks) {
            ticket.done(sk, None, now);
        }
        self.publish(Kind::Keys, sks).await;
        r
    }

    /// `set_many` with a local tier: `entries` are encoded, `plains` their plaintexts.
    pub(crate) async fn write_many_tiered(
        &self,
        l1: &LocalCopies,
        scope: &Scope<'_>,
        entries: Vec<BackendEntry>,
        plains: Vec<(Vec<u8>, Meta)>,
        skip: Skip,
    ) -> Result<Outcome<()>> {
        let tickets: Vec<WriteTicket<'_>> =
            entries.iter().map(|e| l1.write_ticket(&e.key)).collect();
        let keys: Vec<String> = entries.iter().map(|e| e.key.clone()).collect();
        let out = if skip.has(Skip::DISTRIBUTED_WRITE) {
            Ok(Outcome::Done(()))
        } else {
            self.write_many(Via::tiered(l1), scope, entries).await
        };
        let ok = matches!(out, Ok(Outcome::Done(()))) && !skip.has(Skip::LOCAL_WRITE);
        WriteTicket::done_many(tickets, &keys, &plains, ok, self.inner.clock.now_ms());
        if !matches!(out, Ok(Outcome::Stale(_))) {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            self.publish(Kind::Keys, &keys).await;
        }
        out
    }

    /// `get_many` with a local tier: L1 first, then one backend batch for the rest. `skip`
    /// (from `get_or_set_many`'s options) skips L1 reads, backend reads (the rest are misses),
    /// or keeping what was read; `op` names the operation in per-key errors.
    #[expect(
        clippy::too_many_arguments,
        reason = "the one batch read of two operations"
    )]
    pub(crate) async fn get_many_tiered<T: DeserializeOwned, K: AsRef<str>>(
        &self,
        l1: &LocalCopies,
        scope: &Scope<'_>,
        sks: &[&str],
        keys: &[K],
        skip: Skip,
        op: &'static str,
        span: &tracing::Span,
    ) -> Result<Outcome<Vec<Result<Option<T>>>>> {
        let fingerprint = fingerprint_of::<T>();
        let now = self.inner.clock.now_ms();
        let mut out: Vec<Option<Result<Option<T>>>> = Vec::with_capacity(sks.len());
        let mut missing = Vec::new();
        for (i, sk) in sks.iter().enumerate() {
            match (!skip.has(Skip::LOCAL_READ))
                .then(|| l1.lookup(sk, fingerprint, now))
                .flatten()
                .and_then(|c| self.decode_copy::<T>(&c).ok())
            {
                Some(v) => out.push(Some(Ok(Some(v)))),
                None => {
                    out.push(None);
                    missing.push(i);
                }
            }
        }
        let l1_hits = (sks.len() - missing.len()) as u64;
        if !missing.is_empty() && skip.has(Skip::DISTRIBUTED_READ) {
            self.inner.stats.hits(0, missing.len() as u64);
        } else if !missing.is_empty() {
            let want: Vec<&str> = missing.iter().map(|&i| sks[i]).collect();
            let tickets: Vec<_> = want.iter().map(|sk| l1.read_ticket(sk)).collect();
            let raws = match self.read_many(Via::tiered(l1), scope, &want).await {
                Ok(Outcome::Done(raws)) => raws,
                Ok(Outcome::Stale(g)) => return Ok(stale(l1, scope, g)),
                Err(e) => {
                    return match self.fail_safe_values::<T>(sks, &e, span).await {
                        Some(values) => Ok(Outcome::Done(values.into_iter().map(Ok).collect())),
                        None => Err(e),
                    };
                }
            };
            let (mut hits, mut misses) = (0u64, 0u64);
            let policy = self.decode_policy(op);
            for ((i, raw), ticket) in missing.iter().zip(raws).zip(tickets) {
                let sk = sks[*i];
                let failed = |e: Error| {
                    self.inner.stats.error();
                    self.ctx(e, op, scope, Some(keys[*i].as_ref()))
                };
                let Some(raw) = raw else {
                    misses += 1;
                    out[*i] = Some(Ok(None));
                    continue;
                };
                out[*i] = Some(match self.open_absent(&raw, sk, scope.key_id).await {
                    Some(Ok(())) => Ok(None),
                    Some(Err(e)) => Err(failed(e)),
                    None => match self.decode_keep::<T>(&raw, sk, scope.key_id).await {
                        Ok((v, plain, ser)) => {
                            if !skip.has(Skip::LOCAL_WRITE) {
                                let meta = self.meta_of_read::<T>(&raw, scope, ser);
                                l1.read_done(ticket, sk, &plain, meta, self.inner.clock.now_ms());
                            }
                            hits += 1;
                            Ok(Some(v))
                        }
                        Err(e) => self.undecodable(e, policy).map_err(failed),
                    },
                });
            }
            self.inner.stats.hits(hits, misses);
        }
        // counted once the batch is answered (a fail-safe or stale answer above counts its own)
        self.inner.stats.l1_hits(l1_hits);
        self.inner.stats.hits(l1_hits, 0);
        span.record(
            "hits",
            out.iter()
                .filter(|r| matches!(r, Some(Ok(Some(_)))))
                .count(),
        );
        Ok(Outcome::Done(
            out.into_iter().map(|r| r.unwrap_or(Ok(None))).collect(),
        ))
    }
}
