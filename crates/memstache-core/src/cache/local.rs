//! The local tier (L1): an in-process store of decoded entries — the serialized plaintext,
//! the type it was read or written as, and how long it may be served — and the ordering rules
//! that keep it from ever holding a copy older than the stored entry or a key removed since.
//! It serves fresh reads (with a [`LocalTier`](crate::tiers::LocalTier)) and fail-safe reads
//! (with [`FailSafe`](crate::FailSafe)): one store for both.
//!
//! Every operation of the cache reaches the copies through the tiered paths of
//! [`ops`](super::ops) and [`road`](super::road): a read takes a [`ReadTicket`] before it calls
//! the backend and keeps what it read only if nothing touched that key in between; a write or
//! removal holds a [`WriteTicket`] for as long as its backend call is in flight. Backplane
//! messages from other nodes drop copies through [`LocalCopies::invalidate`].
//!
//! # The rules
//!
//! Keys are spread over [`STRIPES`] stripes by hash. Each stripe has a sequence number, bumped
//! by every change to a copy of one of its keys, and a count of writes in flight. One epoch
//! counts the changes to the whole tier (cleared, trust lost or regained, a guard changed).
//!
//! * A write or removal, before its backend call: drops the key's copy, bumps the sequence,
//!   counts itself in flight. Until it ends, no read keeps a copy of a key of that stripe
//!   (the backend may still answer with the value it replaces).
//! * When the backend call succeeded, a write keeps its own value only if it is the last
//!   change of the stripe (no other write started since, none still in flight): of two
//!   concurrent writes the backend's order is unknown, so neither is kept. A failed,
//!   cancelled or removing call drops the copy. Either way the sequence is bumped.
//! * A read keeps what it read only if the stripe's sequence and the epoch are the ones it saw
//!   before its backend call, and no write is in flight.
//! * An invalidation from another node drops the copy and bumps the sequence, like a removal.
//!
//! So a copy is always a value the backend held at some instant after the last change this
//! process made or heard of for that key: never an older one, never one of a removed key. A
//! stripe shared by two hot keys can only cost a copy not kept, never a wrong one.
//!
//! # Trust
//!
//! With a backplane, the tier starts *untrusted* and becomes trusted when the backplane reports
//! its subscription live. While untrusted (never subscribed yet, or the subscription lost),
//! copies are kept but never served fresh, only as fail-safe; when trust comes back the tier is
//! cleared first (it may have missed invalidations meanwhile).

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};

use crate::memory::MemoryBackend;
use crate::raw::Expiry;
use crate::shard_hash;

/// Stripes of the ordering state (a power of two).
pub(crate) const STRIPES: usize = 256;

/// Bytes of the header in front of each copy's plaintext in the store.
const HEADER: usize = 8 * 8 + 1;

/// Ids of kept copies: a decoded value is served only with the copy it was decoded from.
static COPY_IDS: AtomicU64 = AtomicU64::new(1);

/// A decoded value kept beside a copy, for [`MemStache::get_arc`](crate::MemStache::get_arc).
type Object = Arc<dyn Any + Send + Sync>;

/// One stripe's decoded values, by storage key, each with the id of its copy.
type Objects = Mutex<HashMap<Box<str>, (u64, Object)>>;

#[derive(Debug, Default)]
struct Stripe {
    /// Bumped by every change to a copy of a key of this stripe.
    seq: u64,
    /// Writes and removals of this stripe's keys whose backend call has not ended.
    writes: u32,
}

/// Counters of the tier and its backplane.
#[derive(Debug, Default)]
pub(crate) struct TierStats {
    pub(crate) sent: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) publish_errors: AtomicU64,
    pub(crate) invalidations: AtomicU64,
    pub(crate) reconnects: AtomicU64,
}

/// What a copy was kept as: the facts its serving depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    /// [`fingerprint_of`](super::fingerprint_of) the type the value was read or written as.
    pub(crate) fingerprint: u64,
    /// The id of the serializer that produced the plaintext.
    pub(crate) serializer: u8,
    /// The entry's absolute deadline (ms since the epoch), 0 for none.
    pub(crate) deadline_ms: u64,
    /// When the entry was written (ms since the epoch): with the deadline, its life, which
    /// eager refresh measures.
    pub(crate) created_ms: u64,
    /// Whether the entry has a sliding expiration (then it is never served fresh from L1).
    pub(crate) sliding: bool,
    /// The guard key of the scope it was kept in (its [`guard_tag`]), 0 for none.
    pub(crate) guard_tag: u64,
}

#[cfg(test)]
impl Meta {
    /// A copy of a `T` in postcard (serializer id 1), no deadline, no guard.
    pub(crate) fn for_tests<T: ?Sized>() -> Meta {
        Meta {
            fingerprint: super::fingerprint_of::<T>(),
            serializer: 1,
            deadline_ms: 0,
            created_ms: 0,
            sliding: false,
            guard_tag: 0,
        }
    }
}

/// The tag of a guard key in copies' headers (never 0).
pub(crate) fn guard_tag(guard_key: &str) -> u64 {
    shard_hash(guard_key.as_bytes()) | 1
}

/// The local tier (see the [module docs](self)). Entries of the store are a [`HEADER`] then
/// the plaintext.
pub(crate) struct LocalCopies {
    store: MemoryBackend,
    /// How long a copy is served fresh at most (0: never, a fail-safe-only tier).
    fresh_ms: u64,
    /// How long after it was last confirmed a copy may be served by fail-safe (0: never).
    stale_ms: u64,
    stripes: Box<[Mutex<Stripe>]>,
    epoch: AtomicU64,
    trusted: AtomicBool,
    /// The subscription was lost since it was last live.
    lost: AtomicBool,
    /// Per guard tag, how many times it changed; a copy kept under an older count is dead.
    guards: RwLock<HashMap<u64, u64>>,
    trust: tokio::sync::watch::Sender<bool>,
    /// Decoded values per stripe, by storage key, each with the id of the copy it came from.
    objects: Box<[Objects]>,
    /// At most this many decoded values per stripe.
    objects_per_stripe: usize,
    pub(crate) stats: TierStats,
}

impl fmt::Debug for LocalCopies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCopies")
            .field("fresh_ms", &self.fresh_ms)
            .field("stale_ms", &self.stale_ms)
            .field("trusted", &self.trusted.load(Ordering::Relaxed))
            .field("entries", &self.store.len())
            .finish()
    }
}

/// A copy, with how long ago it was last confirmed good.
#[derive(Debug)]
pub(crate) struct LocalCopy {
    /// Which kept copy this is.
    pub(crate) id: u64,
    pub(crate) plain: Bytes,
    pub(crate) serializer: u8,
    pub(crate) age_ms: u64,
    /// When the entry was written, and its absolute deadline (0: none), ms since the epoch.
    pub(crate) created_ms: u64,
    pub(crate) deadline_ms: u64,
}

/// Taken by a read before its backend call.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub(crate) struct ReadTicket {
    stripe: usize,
    seq: u64,
    epoch: u64,
}

/// Held by a write or removal while its backend call is in flight; dropping it unfinished
/// (a cancelled call) drops the copy.
#[must_use]
pub(crate) struct WriteTicket<'a> {
    copies: &'a LocalCopies,
    stripe: usize,
    seq: u64,
    /// The tier's epoch when the write started: a write in flight across a clear, a trust
    /// change or a guard change keeps nothing (it may have missed what they stand for).
    epoch: u64,
    open: bool,
}

impl fmt::Debug for WriteTicket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteTicket")
            .field("stripe", &self.stripe)
            .finish_non_exhaustive()
    }
}

fn stripe_of(sk: &str) -> usize {
    (shard_hash(sk.as_bytes()) as usize) & (STRIPES - 1)
}

fn le(raw: &[u8], at: usize) -> u64 {
    raw.get(at..at + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A parsed stored copy.
struct Stored {
    id: u64,
    stored_at: u64,
    fresh_until: u64,
    fingerprint: u64,
    guard_tag: u64,
    guard_count: u64,
    created_ms: u64,
    deadline_ms: u64,
    serializer: u8,
}

impl Stored {
    fn parse(raw: &[u8]) -> Option<Stored> {
        if raw.len() < HEADER {
            return None;
        }
        Some(Stored {
            stored_at: le(raw, 0),
            fresh_until: le(raw, 8),
            fingerprint: le(raw, 16),
            guard_tag: le(raw, 24),
            guard_count: le(raw, 32),
            id: le(raw, 40),
            created_ms: le(raw, 48),
            deadline_ms: le(raw, 56),
            serializer: raw[64],
        })
    }

    fn write(&self, plain: &[u8]) -> Bytes {
        let mut b = BytesMut::with_capacity(HEADER + plain.len());
        b.put_u64_le(self.stored_at);
        b.put_u64_le(self.fresh_until);
        b.put_u64_le(self.fingerprint);
        b.put_u64_le(self.guard_tag);
        b.put_u64_le(self.guard_count);
        b.put_u64_le(self.id);
        b.put_u64_le(self.created_ms);
        b.put_u64_le(self.deadline_ms);
        b.put_u8(self.serializer);
        b.extend_from_slice(plain);
        b.freeze()
    }
}

impl LocalCopies {
    /// Copies in `store`, served fresh at most `fresh` (zero: never) and by fail-safe at most
    /// `stale` after they were last confirmed (zero: never). `trusted`: whether fresh copies
    /// may be served from the start (false with a backplane, until it is subscribed).
    pub(crate) fn new(
        store: MemoryBackend,
        fresh: Duration,
        stale: Duration,
        trusted: bool,
        max_objects: usize,
    ) -> Self {
        LocalCopies {
            store,
            fresh_ms: ms(fresh),
            stale_ms: ms(stale),
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
            epoch: AtomicU64::new(0),
            trusted: AtomicBool::new(trusted),
            lost: AtomicBool::new(false),
            guards: RwLock::default(),
            trust: tokio::sync::watch::Sender::new(trusted),
            objects: (0..STRIPES).map(|_| Mutex::default()).collect(),
            objects_per_stripe: max_objects.div_ceil(STRIPES),
            stats: TierStats::default(),
        }
    }

    /// Whether this tier serves fresh reads at all (a fail-safe-only tier does not, except
    /// the copies a failing loader's throttle re-armed).
    pub(crate) fn serves_fresh(&self) -> bool {
        self.fresh_ms != 0
    }

    /// Whether fresh copies may be served now.
    pub(crate) fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// Waits until the tier is trusted.
    pub(crate) async fn trusted(&self) {
        let mut rx = self.trust.subscribe();
        // `wait_for` only fails when the sender is gone, and `self` holds it
        let _ = rx.wait_for(|t| *t).await;
    }

    /// The backplane's subscription is live (`true`) or lost (`false`).
    pub(crate) fn set_trusted(&self, live: bool) {
        if live {
            // it may have missed invalidations: forget everything first
            self.clear();
            if self.lost.swap(false, Ordering::AcqRel) {
                self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            }
            self.trusted.store(true, Ordering::Release);
        } else {
            self.trusted.store(false, Ordering::Release);
            self.lost.store(true, Ordering::Release);
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
        self.trust.send_replace(live);
    }

    /// Drops every copy; reads in flight keep nothing.
    pub(crate) fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.store.clear();
        for o in self.objects.iter() {
            o.lock().clear();
        }
    }

    /// The decoded value of the fresh copy of `sk`, when one was kept for that very copy.
    /// (A value of another copy — replaced, removed, cleared — is never returned: the ids
    /// differ, or there is no fresh copy.) Otherwise the fresh copy, if any, to decode.
    pub(crate) fn object<T: Send + Sync + 'static>(
        &self,
        sk: &str,
        fingerprint: u64,
        now_ms: u64,
    ) -> Result<Arc<T>, Option<LocalCopy>> {
        let Some(c) = self.lookup(sk, fingerprint, now_ms) else {
            return Err(None);
        };
        let found = self.objects[stripe_of(sk)]
            .lock()
            .get(sk)
            .filter(|(id, _)| *id == c.id)
            .map(|(_, o)| Arc::clone(o));
        match found.map(Arc::downcast::<T>) {
            Some(Ok(v)) => Ok(v),
            _ => Err(Some(c)),
        }
    }

    /// Keeps `value`, decoded from the copy `id` of `sk`, for later [`object`](Self::object)
    /// calls. At most the configured number per stripe: a full stripe drops one (any: the
    /// hash map's order is as good as random).
    pub(crate) fn keep_object(&self, sk: &str, id: u64, value: Object) {
        if self.objects_per_stripe == 0 {
            return;
        }
        let mut map = self.objects[stripe_of(sk)].lock();
        if map.len() >= self.objects_per_stripe && !map.contains_key(sk) {
            let victim = map.keys().next().cloned();
            if let Some(k) = victim {
                map.remove(&k);
            }
        }
        map.insert(sk.into(), (id, value));
    }

    fn guard_count(&self, tag: u64) -> u64 {
        if tag == 0 {
            return 0;
        }
        self.guards.read().get(&tag).copied().unwrap_or(0)
    }

    /// The guard `tag` changed (a tenant cleared): copies kept under it are dead; reads in
    /// flight keep nothing.
    pub(crate) fn guard_changed(&self, tag: u64) {
        // the epoch first: a keep that read the new count must see the new epoch after its
        // put (see `put_in_epoch`)
        self.epoch.fetch_add(1, Ordering::SeqCst);
        *self.guards.write().entry(tag).or_insert(0) += 1;
    }

    /// Keeps `plain` for `sk` if the tier's epoch is still `epoch`, and checks again after:
    /// a clear, a trust change or a guard change racing the put (they bump the epoch before
    /// they act) then removes what was put. Called with the key's stripe lock held.
    fn put_in_epoch(&self, sk: &str, plain: &[u8], meta: Meta, now_ms: u64, epoch: u64) -> bool {
        if self.epoch.load(Ordering::SeqCst) != epoch {
            return false;
        }
        self.put(sk, plain, meta, now_ms);
        if self.epoch.load(Ordering::SeqCst) != epoch {
            self.store.remove_sync(sk);
            return false;
        }
        true
    }

    /// Drops the copy of `sk` (one that did not decode), like a removal that ended; not an
    /// invalidation by another node, so not counted as one.
    pub(crate) fn discard(&self, sk: &str) {
        let mut s = self.stripes[stripe_of(sk)].lock();
        self.store.remove_sync(sk);
        s.seq += 1;
    }

    /// Another node changed `sk`: drops its copy, like a removal that ended.
    pub(crate) fn invalidate(&self, sk: &str) {
        let mut s = self.stripes[stripe_of(sk)].lock();
        if self.store.remove_sync(sk) {
            self.stats.invalidations.fetch_add(1, Ordering::Relaxed);
        }
        s.seq += 1;
    }

    /// Keeps `plain` for `sk`, confirmed good at `now_ms`.
    fn put(&self, sk: &str, plain: &[u8], meta: Meta, now_ms: u64) {
        let fresh_until = if meta.sliding || self.fresh_ms == 0 {
            0
        } else {
            let cap = now_ms.saturating_add(self.fresh_ms);
            if meta.deadline_ms == 0 {
                cap
            } else {
                cap.min(meta.deadline_ms)
            }
        };
        let keep_until = fresh_until.max(if self.stale_ms == 0 {
            0
        } else {
            now_ms.saturating_add(self.stale_ms)
        });
        if keep_until <= now_ms {
            self.store.remove_sync(sk);
            return;
        }
        let stored = Stored {
            id: COPY_IDS.fetch_add(1, Ordering::Relaxed),
            stored_at: now_ms,
            fresh_until,
            fingerprint: meta.fingerprint,
            guard_tag: meta.guard_tag,
            guard_count: self.guard_count(meta.guard_tag),
            created_ms: meta.created_ms,
            deadline_ms: meta.deadline_ms,
            serializer: meta.serializer,
        };
        let expiry = Expiry::new(Some(keep_until), None);
        if let Err(e) = self.store.set_sync(sk, stored.write(plain), expiry) {
            tracing::debug!(error = %e, "memstache: the local tier refused an entry");
        }
    }

    /// The copy of `sk` kept as `fingerprint`, when its guard is still current.
    fn copy_of(&self, sk: &str, fingerprint: u64) -> Option<(Stored, Bytes)> {
        let raw = self.store.get_sync(sk)?;
        let s = Stored::parse(&raw)?;
        if s.fingerprint != fingerprint || s.guard_count != self.guard_count(s.guard_tag) {
            return None;
        }
        Some((s, raw))
    }

    /// The fresh copy of `sk`, kept as the type of `fingerprint`, when the tier is trusted.
    #[inline]
    pub(crate) fn lookup(&self, sk: &str, fingerprint: u64, now_ms: u64) -> Option<LocalCopy> {
        if !self.is_trusted() {
            return None;
        }
        let (s, raw) = self.copy_of(sk, fingerprint)?;
        (now_ms < s.fresh_until).then(|| LocalCopy {
            id: s.id,
            plain: raw.slice(HEADER..),
            serializer: s.serializer,
            age_ms: now_ms.saturating_sub(s.stored_at),
            created_ms: s.created_ms,
            deadline_ms: s.deadline_ms,
        })
    }

    /// The copy of `sk` fail-safe may serve: kept as the type of `fingerprint`, confirmed at
    /// most the fail-safe staleness before `now_ms`.
    pub(crate) fn recall(&self, sk: &str, fingerprint: u64, now_ms: u64) -> Option<LocalCopy> {
        let (s, raw) = self.copy_of(sk, fingerprint)?;
        let age_ms = now_ms.saturating_sub(s.stored_at);
        (self.stale_ms != 0 && age_ms <= self.stale_ms).then(|| LocalCopy {
            id: s.id,
            plain: raw.slice(HEADER..),
            serializer: s.serializer,
            age_ms,
            created_ms: s.created_ms,
            deadline_ms: s.deadline_ms,
        })
    }

    /// A failing loader's value was replaced by the fail-safe copy of `sk`: serve that copy
    /// fresh until `until_ms` (its confirmation time, and so its staleness, is unchanged).
    pub(crate) fn throttle(&self, sk: &str, fingerprint: u64, until_ms: u64) -> bool {
        let epoch = self.epoch.load(Ordering::SeqCst);
        let stripe = self.stripes[stripe_of(sk)].lock();
        if stripe.writes != 0 {
            return false;
        }
        let Some((mut s, raw)) = self.copy_of(sk, fingerprint) else {
            return false;
        };
        s.fresh_until = s.fresh_until.max(until_ms);
        let keep_until = until_ms.max(s.stored_at.saturating_add(self.stale_ms));
        let _ = self.store.set_sync(
            sk,
            s.write(&raw[HEADER..]),
            Expiry::new(Some(keep_until), None),
        );
        if self.epoch.load(Ordering::SeqCst) != epoch {
            // a clear raced the rewrite: the copy must not come back
            self.store.remove_sync(sk);
            return false;
        }
        drop(stripe);
        true
    }

    /// Before a read's backend call.
    pub(crate) fn read_ticket(&self, sk: &str) -> ReadTicket {
        let stripe = stripe_of(sk);
        ReadTicket {
            stripe,
            epoch: self.epoch.load(Ordering::SeqCst),
            seq: self.stripes[stripe].lock().seq,
        }
    }

    /// After a read's backend call found (and decoded) `plain` at `sk`: keeps it when the
    /// rules allow.
    pub(crate) fn read_done(
        &self,
        ticket: ReadTicket,
        sk: &str,
        plain: &[u8],
        meta: Meta,
        now_ms: u64,
    ) {
        let mut s = self.stripes[ticket.stripe].lock();
        if s.seq == ticket.seq
            && s.writes == 0
            && self.put_in_epoch(sk, plain, meta, now_ms, ticket.epoch)
        {
            s.seq += 1;
        }
    }

    /// Before a write's or a removal's backend call: the copy of `sk` is dropped now.
    pub(crate) fn write_ticket(&self, sk: &str) -> WriteTicket<'_> {
        let stripe = stripe_of(sk);
        let epoch = self.epoch.load(Ordering::SeqCst);
        let mut s = self.stripes[stripe].lock();
        self.store.remove_sync(sk);
        s.seq += 1;
        s.writes += 1;
        WriteTicket {
            copies: self,
            stripe,
            seq: s.seq,
            epoch,
            open: true,
        }
    }

    /// The number of decoded values kept (tests).
    #[cfg(test)]
    pub(crate) fn objects_len(&self) -> usize {
        self.objects.iter().map(|o| o.lock().len()).sum()
    }

    /// The number of copies (due ones not reclaimed yet included).
    pub(crate) fn len(&self) -> usize {
        self.store.len()
    }
}

impl WriteTicket<'_> {
    /// The backend call ended: `Some((plain, meta))` when it stored that value at `sk`,
    /// `None` when it failed or was a removal.
    pub(crate) fn done(mut self, sk: &str, stored: Option<(&[u8], Meta)>, now_ms: u64) {
        self.open = false;
        let copies = self.copies;
        let mut s = copies.stripes[self.stripe].lock();
        s.writes -= 1;
        match stored {
            Some((plain, meta)) if s.seq == self.seq && s.writes == 0 => {
                if !copies.put_in_epoch(sk, plain, meta, now_ms, self.epoch) {
                    copies.store.remove_sync(sk);
                }
            }
            _ => {
                copies.store.remove_sync(sk);
            }
        }
        s.seq += 1;
    }

    /// A batch write of `keys` (with their plaintexts) ended: `ok` when the backend stored
    /// them all (on an error none counts as stored, and every copy is dropped).
    pub(crate) fn done_many(
        tickets: Vec<Self>,
        keys: &[String],
        plains: &[(Vec<u8>, Meta)],
        ok: bool,
        now_ms: u64,
    ) {
        for ((t, k), (plain, meta)) in tickets.into_iter().zip(keys).zip(plains) {
            t.done(k, ok.then_some((plain.as_slice(), *meta)), now_ms);
        }
    }
}

impl Drop for WriteTicket<'_> {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        // cancelled mid-call: the backend may or may not hold the new value
        let mut s = self.copies.stripes[self.stripe].lock();
        s.writes -= 1;
        s.seq += 1;
        // `sk` is not kept in the ticket; nothing was kept for it since `write_ticket` dropped
        // its copy (no read or write keeps one while this write is in flight).
    }
}
