//! In-process single-flight for `get_or_set`: one loader per missing key, every waiter gets its
//! result.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::{BoxError, Error, ErrorKind};

/// What a flight ends with: the serialized value, or the loader's error.
pub(crate) type FlightResult = std::result::Result<Arc<Vec<u8>>, SharedLoaderError>;

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

type Slot = watch::Receiver<Option<FlightResult>>;

/// The flights in progress, by storage key.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, (u64, Slot)>>,
    next_id: AtomicU64,
}

impl fmt::Debug for Flights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flights")
            .field("in_progress", &self.map.lock().len())
            .finish()
    }
}

/// The caller's part in a flight.
pub(crate) enum Role<'a> {
    /// Run the loader and complete the flight.
    Leader(LeaderGuard<'a>),
    /// Wait for the leader.
    Waiter(Slot),
}

impl Flights {
    /// Joins the flight for `key`, or starts one.
    pub(crate) fn join(&self, key: &str) -> Role<'_> {
        let mut map = self.map.lock();
        if let Some((_, rx)) = map.get(key) {
            return Role::Waiter(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        map.insert(key.to_owned(), (id, rx));
        Role::Leader(LeaderGuard {
            flights: self,
            key: key.to_owned(),
            id,
            tx,
        })
    }

    /// Number of flights in progress.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }

    fn remove(&self, key: &str, id: u64) {
        let mut map = self.map.lock();
        if map.get(key).is_some_and(|(i, _)| *i == id) {
            map.remove(key);
        }
    }
}

/// Held by the leader; completes the flight, or abandons it when dropped (the waiters then
/// retry and one of them leads).
pub(crate) struct LeaderGuard<'a> {
    flights: &'a Flights,
    key: String,
    id: u64,
    tx: watch::Sender<Option<FlightResult>>,
}

impl LeaderGuard<'_> {
    /// Hands `result` to every waiter and ends the flight.
    pub(crate) fn complete(self, result: FlightResult) {
        self.tx.send_replace(Some(result));
        // Drop removes the map entry.
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        self.flights.remove(&self.key, self.id);
    }
}

/// Waits for a flight's result; `None` when the leader gave up (was cancelled).
pub(crate) async fn wait(mut slot: Slot) -> Option<FlightResult> {
    let done = match slot.wait_for(Option::is_some).await {
        Ok(v) => return v.clone(),
        Err(_) => None,
    };
    // The sender is gone; a value may still have been sent just before.
    done.or_else(|| slot.borrow().clone())
}
