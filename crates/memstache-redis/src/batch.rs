//! Coalescing: concurrent single-key commands gathered into pipelined batches, without a
//! fixed delay.
//!
//! * A command that finds nothing in flight is sent **at once**, on its own, by its caller
//!   ([`Turn::Direct`]): one request in flight costs what it cost without coalescing (a lock
//!   and an `Arc` clone more).
//! * Commands that arrive while one is in flight wait in a queue ([`Turn::Queued`]). When the
//!   direct command finishes (or its caller is cancelled), the queue is handed to one spawned
//!   task that sends it as one pipeline ([`RawClient::batch`]), hands each caller its own
//!   reply, lets the woken callers run once (`yield_now`), and sends what queued meanwhile as
//!   the next batch — up to `max_batch` commands each — until the queue is empty.
//! * Errors stay per command (a refused command fails alone); a batch that fails as a whole
//!   fails each of its commands. Timeouts stay per call: a caller that gives up drops its
//!   receiver and the batch goes on without it. Every batch is bounded by `bound`.
//! * Order: batches go out one at a time, each in arrival order, on one connection; a caller's
//!   next command starts after its previous one finished, so no caller sees its own commands
//!   reordered.
//!
//! Why not `MGET`: an `MGET` reply carries every value whole, so one oversized value stored by
//! someone else under a hot key would be received in full by every batch — the bounded read
//! (`GETRANGE 0 max`) is what keeps a read from exhausting memory (the crate docs, "Bounded
//! reads"). A pipeline of bounded `GETRANGE`s costs the server more per key than an `MGET`
//! (about 1.5×, within 10 % of pipelined `GET`s: docs/BENCHMARKS.md, "Coalescing"), and keeps
//! the bound and per-key errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use memstache_core::{Error, ErrorKind, Result};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::client::{Op, RawClient, Reply};

/// The owner of a [`Coalescer`] and the client its batches go to: what a spawned batch task
/// keeps alive.
pub(crate) trait Batching: Send + Sync + 'static {
    /// The client the batches are sent on.
    type Client: RawClient;
    /// The coalescer.
    fn coalescer(&self) -> &Coalescer;
    /// The client.
    fn batch_client(&self) -> &Self::Client;
}

/// A command waiting for the next batch, and where its reply goes.
struct Waiting {
    op: Op,
    reply: oneshot::Sender<Result<Reply>>,
}

#[derive(Default)]
struct State {
    /// A command or batch is in flight (or a batch task is about to send the queue).
    busy: bool,
    queue: Vec<Waiting>,
}

/// Gathers concurrent commands into batches (the module docs).
pub(crate) struct Coalescer {
    state: Mutex<State>,
    max_batch: usize,
    bound: Duration,
    direct: AtomicU64,
    batches: AtomicU64,
    batched: AtomicU64,
}

/// What a backend's coalescing did since it connected ([`RedisBackend::coalesce_stats`]).
///
/// [`RedisBackend::coalesce_stats`]: crate::RedisBackend::coalesce_stats
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoalesceStats {
    /// Commands sent on their own (nothing was in flight).
    pub direct: u64,
    /// Pipelined batches sent.
    pub batches: u64,
    /// Commands sent inside those batches.
    pub batched: u64,
}

/// What a caller does with its command.
pub(crate) enum Turn<B: Batching> {
    /// Send it now, directly; dropping the guard (after the reply, or on cancellation) hands
    /// whatever queued meanwhile to a batch task.
    Direct(DirectGuard<B>),
    /// It is queued: the reply arrives here.
    Queued(oneshot::Receiver<Result<Reply>>),
}

/// Held while a direct command is in flight.
pub(crate) struct DirectGuard<B: Batching> {
    owner: Arc<B>,
}

impl<B: Batching> Drop for DirectGuard<B> {
    fn drop(&mut self) {
        release(&self.owner);
    }
}

impl Coalescer {
    /// A coalescer sending at most `max_batch` commands per batch (at least 1), each batch
    /// bounded by `bound`.
    pub(crate) fn new(max_batch: usize, bound: Duration) -> Coalescer {
        Coalescer {
            state: Mutex::new(State::default()),
            max_batch: max_batch.max(1),
            bound,
            direct: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            batched: AtomicU64::new(0),
        }
    }

    /// The counters.
    pub(crate) fn stats(&self) -> CoalesceStats {
        CoalesceStats {
            direct: self.direct.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            batched: self.batched.load(Ordering::Relaxed),
        }
    }

    /// Takes the next batch, or marks the coalescer idle when nothing waits.
    fn next_batch(&self) -> Option<Vec<Waiting>> {
        let mut st = self.state.lock();
        if st.queue.is_empty() {
            st.busy = false;
            return None;
        }
        let n = st.queue.len().min(self.max_batch);
        if n == st.queue.len() {
            Some(std::mem::take(&mut st.queue))
        } else {
            Some(st.queue.drain(..n).collect())
        }
    }
}

/// Whether `owner`'s next command goes out now or waits; `make` builds the command only when
/// it must wait.
pub(crate) fn turn<B: Batching>(owner: &Arc<B>, make: impl FnOnce() -> Op) -> Turn<B> {
    let mut st = owner.coalescer().state.lock();
    if !st.busy {
        st.busy = true;
        drop(st);
        owner.coalescer().direct.fetch_add(1, Ordering::Relaxed);
        return Turn::Direct(DirectGuard {
            owner: owner.clone(),
        });
    }
    let (tx, rx) = oneshot::channel();
    st.queue.push(Waiting {
        op: make(),
        reply: tx,
    });
    Turn::Queued(rx)
}

/// The reply to a queued command.
pub(crate) async fn queued_reply(rx: oneshot::Receiver<Result<Reply>>) -> Result<Reply> {
    rx.await.unwrap_or_else(|_| {
        Err(Error::new(
            ErrorKind::Unavailable,
            "the batch carrying this command was dropped (runtime shutting down)",
        )
        .with_context("backend", "redis"))
    })
}

/// After a direct command: hands the queue to a batch task, or marks the coalescer idle.
fn release<B: Batching>(owner: &Arc<B>) {
    let Some(batch) = owner.coalescer().next_batch() else {
        return;
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(drain(owner.clone(), batch));
        }
        Err(_) => {
            // no runtime to send it on: the waiting callers get an error, and the next command
            // goes out directly
            drop(batch);
            let mut st = owner.coalescer().state.lock();
            st.queue.clear();
            st.busy = false;
        }
    }
}

/// Resets the coalescer if a batch task is dropped before it finished (runtime shutdown): the
/// waiting callers get an error instead of waiting for a batch nobody sends.
struct Reset<'a>(Option<&'a Coalescer>);

impl Drop for Reset<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.0 {
            let mut st = c.state.lock();
            st.queue.clear();
            st.busy = false;
        }
    }
}

/// Sends batches until the queue is empty.
async fn drain<B: Batching>(owner: Arc<B>, mut batch: Vec<Waiting>) {
    let c = owner.coalescer();
    let mut reset = Reset(Some(c));
    loop {
        let (ops, replies): (Vec<Op>, Vec<oneshot::Sender<Result<Reply>>>) =
            batch.into_iter().map(|w| (w.op, w.reply)).unzip();
        c.batches.fetch_add(1, Ordering::Relaxed);
        c.batched.fetch_add(ops.len() as u64, Ordering::Relaxed);
        let result = match tokio::time::timeout(c.bound, owner.batch_client().batch(&ops)).await {
            Ok(r) => r,
            Err(elapsed) => Err(
                Error::new(ErrorKind::Timeout, "a pipelined batch timed out")
                    .with_context("backend", "redis")
                    .with_source(elapsed),
            ),
        };
        drop(ops);
        match result {
            Ok(values) => {
                for (tx, v) in replies.into_iter().zip(values) {
                    let _ = tx.send(v);
                }
            }
            Err(e) => {
                for tx in replies {
                    let _ = tx.send(Err(copy_error(&e)));
                }
            }
        }
        // let the callers just answered run (and queue their next commands) before the next
        // batch is cut: without this, the first of them would find the coalescer idle and go
        // out alone, and the rest would wait a whole round trip behind it
        tokio::task::yield_now().await;
        match c.next_batch() {
            Some(next) => batch = next,
            None => {
                reset.0 = None;
                return;
            }
        }
    }
}

/// The same error for another command of a failed batch (without its source, which is not
/// `Clone`).
fn copy_error(e: &Error) -> Error {
    let mut copy = Error::new(e.kind(), e.message().to_owned()).set_temporary(e.is_temporary());
    for (name, value) in e.context() {
        copy = copy.with_context(name, value.clone());
    }
    copy
}
