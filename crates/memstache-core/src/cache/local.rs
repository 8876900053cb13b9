//! The local copies: an in-process store of the last good envelope of each key, and the
//! ordering rules that keep it from ever holding a copy older than the stored entry or a key
//! removed since. Today fail-safe serves these copies when the backend fails; they are also
//! the place a first-level (L1) tier will serve reads from.
//!
//! Every operation of the cache reaches the copies through [`road`](super::road) and only
//! there: a read takes a [`ReadTicket`] before it calls the backend and keeps what it read
//! only if nothing touched that key in between; a write or removal holds a [`WriteTicket`]
//! for as long as its backend call is in flight.
//!
//! # The rules
//!
//! Keys are spread over [`STRIPES`] stripes by hash. Each stripe has a sequence number, bumped
//! by every change to a copy of one of its keys, and a count of writes in flight.
//!
//! * A write or removal, before its backend call: drops the key's copy, bumps the sequence,
//!   counts itself in flight. Until it ends, no read keeps a copy of a key of that stripe
//!   (the backend may still answer with the value it replaces).
//! * When the backend call succeeded, a write keeps its own value only if it is the last
//!   change of the stripe (no other write started since, none still in flight): of two
//!   concurrent writes the backend's order is unknown, so neither is kept. A failed,
//!   cancelled or removing call drops the copy. Either way the sequence is bumped.
//! * A read keeps what it read only if the stripe's sequence is the one it saw before its
//!   backend call, and no write is in flight.
//!
//! So a copy is always a value the backend held at some instant after the last change the
//! process made to that key: never an older one, never one of a removed key. A stripe shared
//! by two hot keys can only cost a copy not kept, never a wrong one.

use std::fmt;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;

use crate::memory::MemoryBackend;
use crate::raw::{BackendEntry, Expiry};
use crate::shard_hash;

/// Stripes of the ordering state (a power of two).
pub(crate) const STRIPES: usize = 256;

#[derive(Debug, Default)]
struct Stripe {
    /// Bumped by every change to a copy of a key of this stripe.
    seq: u64,
    /// Writes and removals of this stripe's keys whose backend call has not ended.
    writes: u32,
}

/// The local copies (see the [module docs](self)). Entries of the store are
/// `stored_at_ms (u64 LE) ++ envelope`.
pub(crate) struct LocalCopies {
    store: MemoryBackend,
    max_age_ms: u64,
    stripes: Box<[Mutex<Stripe>]>,
}

impl fmt::Debug for LocalCopies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCopies")
            .field("max_age_ms", &self.max_age_ms)
            .field("entries", &self.store.len())
            .finish()
    }
}

/// A local copy, with how long ago it was last confirmed good.
#[derive(Debug)]
pub(crate) struct LocalCopy {
    pub(crate) envelope: Bytes,
    pub(crate) age_ms: u64,
}

/// Taken by a read before its backend call.
#[derive(Debug, Clone, Copy)]
#[must_use]
pub(crate) struct ReadTicket {
    stripe: usize,
    seq: u64,
}

/// Held by a write or removal while its backend call is in flight; dropping it unfinished
/// (a cancelled call) drops the copy.
#[must_use]
pub(crate) struct WriteTicket<'a> {
    copies: &'a LocalCopies,
    stripe: usize,
    seq: u64,
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

fn stamped(envelope: &[u8], now_ms: u64) -> Bytes {
    let mut b = BytesMut::with_capacity(8 + envelope.len());
    b.put_u64_le(now_ms);
    b.extend_from_slice(envelope);
    b.freeze()
}

impl LocalCopies {
    /// Copies in `store`, each kept at most `max_age` after it was last confirmed good.
    pub(crate) fn new(store: MemoryBackend, max_age: Duration) -> Self {
        LocalCopies {
            store,
            max_age_ms: u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX),
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
        }
    }

    fn put(&self, sk: &str, envelope: &[u8], now_ms: u64) {
        let expiry = Expiry::new(Some(now_ms.saturating_add(self.max_age_ms)), None);
        if let Err(e) = self.store.set_sync(sk, stamped(envelope, now_ms), expiry) {
            tracing::debug!(error = %e, "memstache: the local tier refused an entry");
        }
    }

    /// Before a read's backend call.
    pub(crate) fn read_ticket(&self, sk: &str) -> ReadTicket {
        let stripe = stripe_of(sk);
        ReadTicket {
            stripe,
            seq: self.stripes[stripe].lock().seq,
        }
    }

    /// After a read's backend call found `envelope` at `sk`: keeps it when the rules allow.
    pub(crate) fn read_done(&self, ticket: ReadTicket, sk: &str, envelope: &[u8], now_ms: u64) {
        let mut s = self.stripes[ticket.stripe].lock();
        if s.seq == ticket.seq && s.writes == 0 {
            self.put(sk, envelope, now_ms);
            s.seq += 1;
        }
    }

    /// Before a write's or a removal's backend call: the copy of `sk` is dropped now.
    pub(crate) fn write_ticket(&self, sk: &str) -> WriteTicket<'_> {
        let stripe = stripe_of(sk);
        let mut s = self.stripes[stripe].lock();
        self.store.remove_sync(sk);
        s.seq += 1;
        s.writes += 1;
        WriteTicket {
            copies: self,
            stripe,
            seq: s.seq,
            open: true,
        }
    }

    /// The copies of `sks`, each `None` when missing or older than the maximum age.
    pub(crate) fn recall_many(&self, sks: &[&str], now_ms: u64) -> Vec<Option<LocalCopy>> {
        sks.iter().map(|sk| self.recall(sk, now_ms)).collect()
    }

    /// The copy of `sk`, when it was confirmed at most the maximum age before `now_ms`.
    pub(crate) fn recall(&self, sk: &str, now_ms: u64) -> Option<LocalCopy> {
        let raw = self.store.get_sync(sk)?;
        let stamp: [u8; 8] = raw.get(..8)?.try_into().ok()?;
        let age_ms = now_ms.saturating_sub(u64::from_le_bytes(stamp));
        (age_ms <= self.max_age_ms).then(|| LocalCopy {
            envelope: raw.slice(8..),
            age_ms,
        })
    }
}

impl WriteTicket<'_> {
    /// The backend call ended: `Some(envelope)` when it stored `envelope` at `sk`, `None` when
    /// it failed or was a removal.
    pub(crate) fn done(mut self, sk: &str, stored: Option<&[u8]>, now_ms: u64) {
        self.open = false;
        let copies = self.copies;
        let mut s = copies.stripes[self.stripe].lock();
        s.writes -= 1;
        match stored {
            Some(envelope) if s.seq == self.seq && s.writes == 0 => {
                copies.put(sk, envelope, now_ms);
            }
            _ => {
                copies.store.remove_sync(sk);
            }
        }
        s.seq += 1;
    }

    /// A batch write of `entries` ended: `ok` when the backend stored them all (on an error
    /// none counts as stored, and every copy is dropped).
    pub(crate) fn done_many(tickets: Vec<Self>, entries: &[BackendEntry], ok: bool, now_ms: u64) {
        for (t, e) in tickets.into_iter().zip(entries) {
            t.done(&e.key, ok.then_some(e.value.as_ref()), now_ms);
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
