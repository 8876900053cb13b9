//! In-process single-flight for `get_or_set` and `get_or_set_many`: one loader per missing key,
//! every waiter gets its result.

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use crate::{BoxError, Error, ErrorKind};

/// What a flight ends with: the serialized value, `None` when a batch loader
/// (`get_or_set_many`) returned nothing for the key, or the loader's error.
pub(crate) type FlightResult = std::result::Result<Option<Arc<Vec<u8>>>, SharedLoaderError>;

/// A loader error shared by every waiter of a flight.
#[derive(Clone)]
pub(crate) struct SharedLoaderError(Arc<BoxError>);

impl SharedLoaderError {
    pub(crate) fn new(e: BoxError) -> Self {
        SharedLoaderError(Arc::new(e))
    }

    /// A fresh [`Error`] of kind `Loader` whose `source()` is the loader's error.
    pub(crate) fn to_error(&self) -> Error {
        Error::new(ErrorKind::Loader, "the loader failed; nothing was cached")
            .with_source(SharedSource(Arc::clone(&self.0)))
    }
}

impl fmt::Debug for SharedLoaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedLoaderError").finish_non_exhaustive()
    }
}

/// The loader's error, shared; displays and chains like the original.
struct SharedSource(Arc<BoxError>);

impl fmt::Debug for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self.0, f)
    }
}
impl fmt::Display for SharedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self.0, f)
    }
}
impl std::error::Error for SharedSource {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// The mutexes the flight table is built from: a parameter so that the model test
/// (`tests_flight_model.rs`) runs this very code under the shuttle scheduler, with shuttle's
/// mutex, while the cache uses parking_lot's.
pub(crate) trait SyncFamily: 'static {
    /// A mutex holding a `T`.
    type Mutex<T: Send + 'static>: Send + Sync;
    /// A new mutex.
    fn new<T: Send + 'static>(value: T) -> Self::Mutex<T>;
    /// Runs `f` on the locked value.
    fn with<T: Send + 'static, R>(m: &Self::Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R;
}

/// parking_lot's mutex: what the cache uses.
pub(crate) struct ParkingLot;

impl SyncFamily for ParkingLot {
    type Mutex<T: Send + 'static> = parking_lot::Mutex<T>;
    fn new<T: Send + 'static>(value: T) -> Self::Mutex<T> {
        parking_lot::Mutex::new(value)
    }
    fn with<T: Send + 'static, R>(m: &Self::Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut m.lock())
    }
}

/// What a flight is for: a storage key **and the type the callers want**. Callers asking for
/// different types never share a flight: a waiter decodes the leader's serialized value with
/// its own type, and bytes serialized from another type could decode as wrong data (postcard
/// is not self-describing) — so each type gets its own flight (and loader call).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct FlightKey {
    storage_key: String,
    ty: TypeId,
}

impl FlightKey {
    /// The flight of `storage_key` for callers of type `T`.
    pub(crate) fn of<T: ?Sized>(storage_key: &str) -> Self {
        FlightKey {
            storage_key: storage_key.to_owned(),
            ty: typeid::of::<T>(),
        }
    }
}

/// A flight's shared state: its result once the leader completes it, or that it was abandoned,
/// and the wakers of the waiters.
#[derive(Default)]
struct SlotState {
    result: Option<FlightResult>,
    abandoned: bool,
    /// One place per waiter (a dropped waiter empties its place).
    wakers: Vec<Option<Waker>>,
}

impl SlotState {
    fn take_wakers(&mut self) -> Vec<Option<Waker>> {
        std::mem::take(&mut self.wakers)
    }
}

fn wake_all(wakers: Vec<Option<Waker>>) {
    for w in wakers.into_iter().flatten() {
        w.wake();
    }
}

type SlotRef<S> = Arc<<S as SyncFamily>::Mutex<SlotState>>;

/// The flights in progress, by [`FlightKey`].
pub(crate) struct Flights<S: SyncFamily = ParkingLot> {
    map: S::Mutex<HashMap<FlightKey, (u64, SlotRef<S>)>>,
    next_id: AtomicU64,
}

impl<S: SyncFamily> Default for Flights<S> {
    fn default() -> Self {
        Flights {
            map: S::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        }
    }
}

impl<S: SyncFamily> fmt::Debug for Flights<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flights")
            .field("in_progress", &self.len())
            .finish()
    }
}

/// The caller's part in a flight.
pub(crate) enum Role<'a, S: SyncFamily = ParkingLot> {
    /// Run the loader and complete the flight.
    Leader(LeaderGuard<'a, S>),
    /// Wait for the leader.
    Waiter(Wait<S>),
}

/// What [`Flights::join_or_wait`] came back with.
pub(crate) enum Joined<'a, S: SyncFamily = ParkingLot> {
    /// This caller leads: run the loader, then [`LeaderGuard::complete`].
    Lead(LeaderGuard<'a, S>),
    /// The leader's result.
    Done(FlightResult),
    /// The leader gave up (cancelled, or it panicked): look again (the value may be stored by
    /// now), then join again.
    Abandoned,
}

impl<S: SyncFamily> Flights<S> {
    /// Joins the flight for `key`, or starts one.
    pub(crate) fn join(&self, key: FlightKey) -> Role<'_, S> {
        S::with(&self.map, |map| {
            if let Some((_, slot)) = map.get(&key) {
                return Role::Waiter(Wait {
                    slot: Arc::clone(slot),
                    place: None,
                });
            }
            let slot: SlotRef<S> = Arc::new(S::new(SlotState::default()));
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            map.insert(key.clone(), (id, Arc::clone(&slot)));
            Role::Leader(LeaderGuard {
                flights: self,
                key,
                id,
                slot,
            })
        })
    }

    /// Joins the flight for `key` and, as a waiter, waits for its end: the protocol step of
    /// `get_or_set` (which looks at the cache again after [`Joined::Abandoned`]).
    pub(crate) async fn join_or_wait(&self, key: FlightKey) -> Joined<'_, S> {
        match self.join(key) {
            Role::Leader(guard) => Joined::Lead(guard),
            Role::Waiter(wait) => match wait.await {
                Some(result) => Joined::Done(result),
                None => Joined::Abandoned,
            },
        }
    }

    /// Number of flights in progress.
    pub(crate) fn len(&self) -> usize {
        S::with(&self.map, |m| m.len())
    }

    fn remove(&self, key: &FlightKey, id: u64) {
        S::with(&self.map, |map| {
            if map.get(key).is_some_and(|(i, _)| *i == id) {
                map.remove(key);
            }
        });
    }
}

/// Held by the leader; completes the flight, or abandons it when dropped (cancelled, or
/// unwinding from a panic): the waiters then retry and one of them leads.
pub(crate) struct LeaderGuard<'a, S: SyncFamily = ParkingLot> {
    flights: &'a Flights<S>,
    key: FlightKey,
    id: u64,
    slot: SlotRef<S>,
}

impl<S: SyncFamily> LeaderGuard<'_, S> {
    /// Hands `result` to every waiter and ends the flight.
    pub(crate) fn complete(self, result: FlightResult) {
        let wakers = S::with(&self.slot, |s| {
            s.result = Some(result);
            s.take_wakers()
        });
        wake_all(wakers);
        // Drop removes the map entry.
    }
}

impl<S: SyncFamily> Drop for LeaderGuard<'_, S> {
    fn drop(&mut self) {
        // Out of the table first: a caller arriving now starts a new flight rather than
        // joining one that is about to be abandoned.
        self.flights.remove(&self.key, self.id);
        let wakers = S::with(&self.slot, |s| {
            if s.result.is_none() {
                s.abandoned = true;
            }
            s.take_wakers()
        });
        wake_all(wakers);
    }
}

/// A waiter's future: the flight's result, or `None` when the leader gave up.
pub(crate) struct Wait<S: SyncFamily = ParkingLot> {
    slot: SlotRef<S>,
    /// This waiter's place among the slot's wakers, once registered.
    place: Option<usize>,
}

impl<S: SyncFamily> Future for Wait<S> {
    type Output = Option<FlightResult>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        S::with(&this.slot, |s| {
            if let Some(r) = &s.result {
                return Poll::Ready(Some(r.clone()));
            }
            if s.abandoned {
                return Poll::Ready(None);
            }
            match this.place {
                Some(i) if i < s.wakers.len() => s.wakers[i] = Some(cx.waker().clone()),
                _ => {
                    this.place = Some(s.wakers.len());
                    s.wakers.push(Some(cx.waker().clone()));
                }
            }
            Poll::Pending
        })
    }
}

impl<S: SyncFamily> Drop for Wait<S> {
    fn drop(&mut self) {
        if let Some(i) = self.place {
            S::with(&self.slot, |s| {
                if let Some(w) = s.wakers.get_mut(i) {
                    *w = None;
                }
            });
        }
    }
}

#[cfg(test)]
#[path = "tests_flight_model.rs"]
mod tests_flight_model;
