//! A concurrency model test of single-flight: the real [`Flights`] code (its table, slots,
//! leader guard and waiter future) run under [shuttle](https://docs.rs/shuttle)'s scheduler,
//! which explores many interleavings of the tasks (randomised and PCT schedules), with
//! shuttle's mutex in place of parking_lot's through [`SyncFamily`].
//!
//! Why shuttle and not loom: the flight protocol is async (a waiter is a future woken by the
//! leader), and shuttle runs async tasks, their wakers and task cancellation (`abort`) under
//! its scheduler; loom models threads and atomics and has no executor for spawned async tasks.
//! Shuttle explores schedules randomly rather than exhaustively: each test runs a thousand
//! schedules of a handful of tasks, enough to hit every ordering of their few steps many times.
//!
//! Every caller runs the `get_or_set` protocol step by step as `ops.rs` does: join (or wait),
//! on an abandoned flight try again, as leader run the "loader" and complete the flight.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use shuttle::future::{block_on, spawn, yield_now};

use super::{FlightKey, Flights, Joined, Role, SyncFamily};

/// Shuttle's mutex: every lock is a scheduling point the model explores.
struct Shuttle;

impl SyncFamily for Shuttle {
    type Mutex<T: Send + 'static> = shuttle::sync::Mutex<T>;
    fn new<T: Send + 'static>(value: T) -> Self::Mutex<T> {
        shuttle::sync::Mutex::new(value)
    }
    fn with<T: Send + 'static, R>(m: &Self::Mutex<T>, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut m.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

type Table = Arc<Flights<Shuttle>>;

const ITERATIONS: usize = 1000;

/// What a caller's loader does when it leads.
#[derive(Clone)]
enum Loader {
    /// Yields (other callers join meanwhile), then returns `tag`.
    Returns(u8),
    /// Panics the first time any caller sharing `once` leads (unwinding through the leader
    /// guard, as a panicking loader does), returns `tag` afterwards.
    PanicsOnce(u8, Arc<AtomicBool>),
    /// Never finishes (the caller is cancelled meanwhile).
    Hangs,
}

/// One `get_or_set` caller: the value it ends with.
async fn caller(flights: Table, key: FlightKey, loader: Loader) -> Vec<u8> {
    loop {
        match flights.join_or_wait(key.clone()).await {
            Joined::Done(Ok(Some(v))) => return v.to_vec(),
            Joined::Done(Ok(None)) => panic!("no loader in this model returns nothing"),
            Joined::Done(Err(_)) => panic!("no loader in this model fails"),
            Joined::Abandoned => continue,
            Joined::Lead(guard) => {
                yield_now().await;
                let tag = match &loader {
                    Loader::Returns(tag) => *tag,
                    Loader::PanicsOnce(tag, once) => {
                        if !once.swap(true, Ordering::SeqCst) {
                            // `resume_unwind` unwinds without the panic hook (shuttle's hook
                            // would report a caught panic as a failure)
                            let unwound = catch_unwind(AssertUnwindSafe(move || {
                                let _guard = guard;
                                resume_unwind(Box::new("the loader panicked"));
                            }));
                            assert!(unwound.is_err());
                            continue;
                        }
                        *tag
                    }
                    Loader::Hangs => loop {
                        yield_now().await;
                    },
                };
                guard.complete(Ok(Some(Arc::new(vec![tag]))));
                return vec![tag];
            }
        }
    }
}

fn key_u8() -> FlightKey {
    FlightKey::of::<u8>("ns:k")
}

/// A panicking leader abandons its flight: its waiters are woken, one of them leads, every
/// caller ends with the value, and no flight is left behind.
#[test]
fn model_leader_panics() {
    shuttle::check_random(
        || {
            block_on(async {
                let flights: Table = Arc::default();
                let once = Arc::new(AtomicBool::new(false));
                let tasks: Vec<_> = (0..3)
                    .map(|_| {
                        spawn(caller(
                            Arc::clone(&flights),
                            key_u8(),
                            Loader::PanicsOnce(7, Arc::clone(&once)),
                        ))
                    })
                    .collect();
                for t in tasks {
                    assert_eq!(t.await.unwrap(), vec![7]);
                }
                assert!(once.load(Ordering::SeqCst), "a leader panicked");
                assert_eq!(flights.len(), 0);
            });
        },
        ITERATIONS,
    );
}

/// A leader cancelled at any point (before joining, while leading, its loader never
/// finishing) never strands the others: they end with a value from a leader of their own.
#[test]
fn model_leader_cancelled() {
    shuttle::check_random(
        || {
            block_on(async {
                let flights: Table = Arc::default();
                let hung = spawn(caller(Arc::clone(&flights), key_u8(), Loader::Hangs));
                let others: Vec<_> = (0..2)
                    .map(|_| spawn(caller(Arc::clone(&flights), key_u8(), Loader::Returns(3))))
                    .collect();
                yield_now().await;
                hung.abort();
                for t in others {
                    assert_eq!(t.await.unwrap(), vec![3]);
                }
                // cancelled, or it waited on another caller's flight and ended with its value
                if let Ok(v) = hung.await {
                    assert_eq!(v, vec![3]);
                }
                assert_eq!(flights.len(), 0);
            });
        },
        ITERATIONS,
    );
}

/// A waiter cancelled at any point does not disturb the flight: the leader and the other
/// waiters end with the value, no flight is left behind.
#[test]
fn model_waiter_cancelled() {
    shuttle::check_random(
        || {
            block_on(async {
                let flights: Table = Arc::default();
                let callers: Vec<_> = (0..3)
                    .map(|_| spawn(caller(Arc::clone(&flights), key_u8(), Loader::Returns(5))))
                    .collect();
                let cancelled = spawn(caller(Arc::clone(&flights), key_u8(), Loader::Returns(5)));
                yield_now().await;
                cancelled.abort();
                for t in callers {
                    assert_eq!(t.await.unwrap(), vec![5]);
                }
                // cancelled, or it finished first with the same value
                if let Ok(v) = cancelled.await {
                    assert_eq!(v, vec![5]);
                }
                assert_eq!(flights.len(), 0);
            });
        },
        ITERATIONS,
    );
}

/// Callers of one storage key with different types never share a flight: each ends with a
/// value of its own type's loader (`1` for the `u8` callers, `2` for the `bool` ones).
/// Before the type was part of the flight key, a `bool` caller could receive the bytes a `u8`
/// leader serialized — and postcard decodes `[1]` as `true`: wrong data.
#[test]
fn model_mixed_types_never_share_a_flight() {
    shuttle::check_random(
        || {
            block_on(async {
                let flights: Table = Arc::default();
                let mut tasks = Vec::new();
                for _ in 0..2 {
                    tasks.push((
                        1,
                        spawn(caller(
                            Arc::clone(&flights),
                            FlightKey::of::<u8>("ns:k"),
                            Loader::Returns(1),
                        )),
                    ));
                    tasks.push((
                        2,
                        spawn(caller(
                            Arc::clone(&flights),
                            FlightKey::of::<bool>("ns:k"),
                            Loader::Returns(2),
                        )),
                    ));
                }
                for (want, t) in tasks {
                    assert_eq!(t.await.unwrap(), vec![want]);
                }
                assert_eq!(flights.len(), 0);
            });
        },
        ITERATIONS,
    );
}

type Shared<T> = Arc<shuttle::sync::Mutex<T>>;

/// One `get_or_set_many` caller, step by step as `many.rs` runs it: read what is pending,
/// join the flights of the misses, look again at the led keys, then load the led keys (one
/// loader call) while waiting for the others; an abandoned flight goes back to pending. The
/// "backend" is `store`; `loads` counts the keys each loader call was given.
async fn batch_caller(
    flights: Table,
    store: Shared<HashMap<&'static str, u8>>,
    loads: Shared<HashMap<&'static str, usize>>,
    keys: &'static [&'static str],
    tag: u8,
) -> Vec<(&'static str, u8)> {
    let read = |k: &str| store.lock().unwrap().get(k).copied();
    let mut got = Vec::new();
    let mut pending: Vec<&'static str> = keys.to_vec();
    let mut loader_calls = 0;
    while !pending.is_empty() {
        let mut leads = Vec::new();
        let mut waits = Vec::new();
        for k in std::mem::take(&mut pending) {
            if let Some(v) = read(k) {
                got.push((k, v));
                continue;
            }
            match flights.join(FlightKey::of::<u8>(k)) {
                Role::Leader(guard) => match read(k) {
                    Some(v) => got.push((k, v)), // the guard drops: its waiters look again
                    None => leads.push((k, guard)),
                },
                Role::Waiter(wait) => waits.push(async move { (k, wait.await) }),
            }
        }
        if !leads.is_empty() {
            loader_calls += 1;
        }
        let load = async {
            if leads.is_empty() {
                return Vec::new();
            }
            yield_now().await; // the loader: others join meanwhile
            let mut loaded = Vec::new();
            for (k, _) in &leads {
                *loads.lock().unwrap().entry(k).or_default() += 1;
                store.lock().unwrap().insert(k, tag); // stored before the flights complete
            }
            for (k, guard) in leads {
                guard.complete(Ok(Some(Arc::new(vec![tag]))));
                loaded.push((k, tag));
            }
            loaded
        };
        let (loaded, waited) = futures::join!(load, futures::future::join_all(waits));
        got.extend(loaded);
        for (k, r) in waited {
            match r {
                Some(Ok(Some(v))) => got.push((k, v[0])),
                Some(_) => panic!("no loader in this model fails or returns nothing"),
                None => pending.push(k),
            }
        }
    }
    assert!(loader_calls <= 1, "a caller's loader ran twice");
    got
}

/// Three batch callers with cyclic overlaps ({a, b}, {b, c}, {c, a}): no deadlock (a caller
/// never waits before it has loaded what it leads), every key is loaded exactly once, every
/// caller ends with the stored value of each of its keys, and no flight is left behind.
#[test]
fn model_overlapping_batches_load_each_key_once() {
    const SETS: [&[&str]; 3] = [&["a", "b"], &["b", "c"], &["c", "a"]];
    shuttle::check_random(
        || {
            block_on(async {
                let flights: Table = Arc::default();
                let store: Shared<HashMap<&'static str, u8>> = Arc::default();
                let loads: Shared<HashMap<&'static str, usize>> = Arc::default();
                let tasks: Vec<_> = SETS
                    .iter()
                    .zip(1u8..)
                    .map(|(keys, tag)| {
                        spawn(batch_caller(
                            Arc::clone(&flights),
                            Arc::clone(&store),
                            Arc::clone(&loads),
                            keys,
                            tag,
                        ))
                    })
                    .collect();
                let mut results = Vec::new();
                for t in tasks {
                    results.push(t.await.unwrap());
                }
                let store = store.lock().unwrap().clone();
                for (keys, got) in SETS.iter().zip(results) {
                    let mut ks: Vec<_> = got.iter().map(|(k, _)| *k).collect();
                    ks.sort_unstable();
                    let mut want = keys.to_vec();
                    want.sort_unstable();
                    assert_eq!(ks, want, "every key answered once");
                    for (k, v) in got {
                        assert_eq!(Some(&v), store.get(k), "the stored value of {k}");
                    }
                }
                let loads = loads.lock().unwrap();
                assert_eq!(loads.len(), 3);
                assert!(
                    loads.values().all(|&n| n == 1),
                    "loaded more than once: {loads:?}"
                );
                assert_eq!(flights.len(), 0);
            });
        },
        ITERATIONS,
    );
}
