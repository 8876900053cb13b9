//! `get_or_set_many`: the batch read-through protocol. One batch read; single-flight per key
//! (the same [`Flights`](super::flight::Flights) as `get_or_set`, so the two share flights);
//! one loader call for the keys this caller leads, while it waits for the keys other callers
//! are loading; one batch write of what was loaded.
//!
//! No distributed lock: a lock per key would cost a backend round trip per key before the
//! loader runs, and a caller holding some of its keys' locks while waiting for others' would
//! serialize overlapping batches across instances (or deadlock them, without the lease). The
//! in-process single-flight still holds; across instances a key missing on several at once
//! may be loaded by each (see `docs/resilience.md`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::field;

use super::flight::{FlightKey, LeaderGuard, Role, SharedLoaderError};
use super::{MemStache, Outcome, Scope};
use crate::options::Skip;
use crate::scope::Label;
use crate::{BoxError, EntryOptions, Error, ErrorKind, Result};

/// What this call found for each distinct key (`None`: not answered yet).
type Answers<T> = Vec<Option<Result<Option<T>>>>;

/// The keys of one call: storage keys, user keys, and which distinct key each position is.
struct Keys<'a> {
    /// Storage key of each distinct key, in the order of first occurrence.
    sks: Vec<&'a str>,
    /// User key of each distinct key.
    users: Vec<&'a str>,
    /// For each requested position, the index of its distinct key.
    slot: Vec<usize>,
}

impl<'a> Keys<'a> {
    fn new<K: AsRef<str>>(all_sks: &[&'a str], keys: &'a [K]) -> Self {
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(all_sks.len());
        let (mut sks, mut users) = (Vec::new(), Vec::new());
        let slot = all_sks
            .iter()
            .zip(keys)
            .map(|(&sk, k)| {
                *index.entry(sk).or_insert_with(|| {
                    sks.push(sk);
                    users.push(k.as_ref());
                    sks.len() - 1
                })
            })
            .collect();
        Keys { sks, users, slot }
    }
}

impl MemStache {
    /// The values at `keys`, in request order; the keys that miss are loaded by **one** call
    /// of `loader` and stored in one backend batch.
    ///
    /// * `loader` gets the user keys it must load (each once, in request order) and returns
    ///   `(key, value)` pairs. A requested key it does not return is absent: `None` in the
    ///   result, nothing stored. Pairs for keys it was not asked for are ignored (not stored,
    ///   not returned); a key returned twice keeps its last value.
    /// * It is called only when some key missed, and only with the keys this call *leads*:
    ///   single-flight per key, shared with [`get_or_set`](Self::get_or_set). A key that
    ///   another caller in this process is already loading is awaited, not loaded again.
    /// * A hit is never reloaded. A duplicate key is read, loaded and returned as one.
    /// * Every key is validated before anything is read or loaded
    ///   ([`InvalidKey`](crate::ErrorKind::InvalidKey)). No keys: `Ok(vec![])`, no backend
    ///   call, no loader call.
    ///
    /// If the loader fails, the call returns an [`ErrorKind::Loader`] error whose `source()`
    /// is the loader's error, nothing it led is cached, and the callers waiting for those keys
    /// get the same error; keys other callers led are not affected. With
    /// [`FailSafe`](crate::FailSafe), a key with a fail-safe copy gets the copy instead (as in
    /// `get_or_set`); the call still fails if any key it led has none. A key awaited from
    /// another caller whose loader failed fails this call the same way.
    ///
    /// Availability over strictness, as in `get_or_set`: a failed read (or an entry that
    /// cannot be decoded) loads the key as a miss; a failed store still returns the values.
    /// Both are logged and counted.
    ///
    /// No distributed lock (even with
    /// [`distributed_lock`](crate::MemStacheBuilder::distributed_lock)): a lock per key would
    /// serialize overlapping batches; see `docs/resilience.md`.
    ///
    /// ```
    /// use memstache_core::{EntryOptions, MemStache};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
    /// let cache = MemStache::builder().build()?;
    /// cache.set("user:1", &"Ada".to_owned(), EntryOptions::default()).await?;
    /// let names: Vec<Option<String>> = cache
    ///     .get_or_set_many(&["user:1", "user:2", "user:3"], EntryOptions::default(), |missing| async move {
    ///         assert_eq!(missing, ["user:2", "user:3"]); // one call, the misses only
    ///         // user:3 does not exist in the source: not returned, so absent
    ///         Ok::<_, std::io::Error>(vec![("user:2".to_owned(), "Grace".to_owned())])
    ///     })
    ///     .await?;
    /// assert_eq!(names, [Some("Ada".into()), Some("Grace".into()), None]);
    /// assert_eq!(cache.get::<String>("user:2").await?.as_deref(), Some("Grace")); // stored
    /// # Ok(()) }
    /// ```
    pub async fn get_or_set_many<T, K, F, Fut, I, E>(
        &self,
        keys: &[K],
        options: EntryOptions,
        loader: F,
    ) -> Result<Vec<Option<T>>>
    where
        T: Serialize + DeserializeOwned + Send,
        K: AsRef<str>,
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = std::result::Result<I, E>>,
        I: IntoIterator<Item = (String, T)>,
        E: Into<BoxError>,
    {
        let mut loader = Some(loader);
        self.get_or_set_many_in(&self.root(), keys, options, &mut loader)
            .await?
            .into_done()
    }

    /// [`get_or_set_many`](Self::get_or_set_many) in `scope` (the guard is read with each
    /// batch, and the loaded values are written through it). The loader is taken out of
    /// `loader` only when it runs, so a caller that gets [`Outcome::Stale`] back before it ran
    /// can retry with the same loader; after it ran, a stale scope returns the loaded values
    /// uncached.
    ///
    /// ```
    /// use memstache_core::{EntryOptions, MemStache, scope::Scope};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> memstache_core::Result<()> {
    /// let cache = MemStache::builder().namespace("app").build()?;
    /// let scope = Scope::new("app#t1:", "default");
    /// let mut loader = Some(|missing: Vec<String>| async move {
    ///     Ok::<_, std::io::Error>(missing.into_iter().map(|k| (k, 1u8)))
    /// });
    /// let got = cache
    ///     .get_or_set_many_in(&scope, &["a", "b"], EntryOptions::default(), &mut loader)
    ///     .await?
    ///     .into_done()?;
    /// assert_eq!(got, [Some(1), Some(1)]);
    /// assert!(loader.is_none()); // it ran
    /// # Ok(()) }
    /// ```
    pub async fn get_or_set_many_in<T, K, F, Fut, I, E>(
        &self,
        scope: &Scope<'_>,
        keys: &[K],
        options: EntryOptions,
        loader: &mut Option<F>,
    ) -> Result<Outcome<Vec<Option<T>>>>
    where
        T: Serialize + DeserializeOwned + Send,
        K: AsRef<str>,
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = std::result::Result<I, E>>,
        I: IntoIterator<Item = (String, T)>,
        E: Into<BoxError>,
    {
        let span = tracing::debug_span!(
            "memstache.get_or_set_many",
            namespace = %self.inner.namespace,
            backend = self.inner.backend_name,
            scope = scope.label.map(Label::value),
            keys = keys.len(),
            hits = field::Empty,
            loaded = field::Empty,
            fail_safe = field::Empty,
            error = field::Empty,
        );
        self.traced(
            &span,
            "get_or_set_many",
            scope,
            None,
            false,
            self.get_or_set_many_inner(scope, keys, options, loader, &span),
        )
        .await
    }

    async fn get_or_set_many_inner<T, K, F, Fut, I, E>(
        &self,
        scope: &Scope<'_>,
        keys: &[K],
        options: EntryOptions,
        loader: &mut Option<F>,
        span: &tracing::Span,
    ) -> Result<Outcome<Vec<Option<T>>>>
    where
        T: Serialize + DeserializeOwned + Send,
        K: AsRef<str>,
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = std::result::Result<I, E>>,
        I: IntoIterator<Item = (String, T)>,
        E: Into<BoxError>,
    {
        if keys.is_empty() {
            return Ok(Outcome::Done(Vec::new()));
        }
        // every key validated before anything is read or loaded
        let batch = self.keys_in(scope, keys)?;
        let all_sks: Vec<&str> = batch.iter().collect();
        let k = Keys::new(&all_sks, keys);
        let skip = options.or(&self.inner.defaults).skips();
        let mut got: Answers<T> = (0..k.sks.len()).map(|_| None).collect();
        let mut pending: Vec<usize> = (0..k.sks.len()).collect();
        let (mut hits, mut loaded) = (0usize, 0usize);
        while !pending.is_empty() {
            // 1. one batch read of what is not answered yet
            let missing = match self
                .read_many_for_load(scope, &k, &pending, skip, span)
                .await
            {
                Outcome::Stale(g) => return Ok(Outcome::Stale(g)),
                Outcome::Done(found) => Self::take_found(&mut got, &pending, found),
            };
            hits += pending.len() - missing.len();
            // 2. the flights of the misses: lead, or wait for the caller already loading
            let mut leads = Vec::new();
            let mut waits = Vec::new();
            for u in missing {
                match self.inner.flights.join(FlightKey::of::<T>(k.sks[u])) {
                    Role::Leader(guard) => leads.push((u, guard)),
                    Role::Waiter(wait) => waits.push(async move { (u, wait.await) }),
                }
            }
            // 3. another leader may have finished between the read and the join: look again
            //    at the led keys (dropping the guard of one found lets its waiters read it)
            if !leads.is_empty() {
                let led: Vec<usize> = leads.iter().map(|(u, _)| *u).collect();
                match self.read_many_for_load(scope, &k, &led, skip, span).await {
                    // the guards drop: their waiters look again and find the scope stale too
                    Outcome::Stale(g) => return Ok(Outcome::Stale(g)),
                    Outcome::Done(found) => {
                        let still = Self::take_found(&mut got, &led, found);
                        hits += led.len() - still.len();
                        // `still` is a subsequence of `leads`, in order
                        let mut still = still.into_iter().peekable();
                        leads.retain(|(u, _)| still.next_if_eq(u).is_some());
                    }
                }
            }
            // 4. this caller's loader for the keys it leads, while waiting for the others
            loaded += leads.len();
            let (led, waited) = futures::join!(
                self.load_led::<T, F, Fut, I, E>(scope, &k, leads, loader, &options, span),
                futures::future::join_all(waits),
            );
            for (u, r) in led {
                got[u] = Some(r);
            }
            pending.clear();
            for (u, r) in waited {
                got[u] = match r {
                    Some(Ok(Some(plain))) => {
                        Some(self.inner.pipeline.deserialize(&plain).map(Some))
                    }
                    Some(Ok(None)) => Some(Ok(None)),
                    Some(Err(e)) => Some(Err(e.to_error())),
                    // the leader was cancelled (or found the value after all): look again
                    None => {
                        pending.push(u);
                        None
                    }
                };
            }
        }
        span.record("hits", hits);
        span.record("loaded", loaded);
        self.answer(scope, &k, got).map(Outcome::Done)
    }

    /// Puts the values `found` for the distinct keys `asked` into `got`; returns the keys that
    /// missed.
    fn take_found<T>(got: &mut Answers<T>, asked: &[usize], found: Vec<Option<T>>) -> Vec<usize> {
        let mut missing = Vec::new();
        for (&u, v) in asked.iter().zip(found) {
            match v {
                Some(v) => got[u] = Some(Ok(Some(v))),
                None => missing.push(u),
            }
        }
        missing
    }

    /// The batch read of the distinct keys `asked`, as `get_or_set` reads: an entry that
    /// cannot be read or decoded is a miss (logged and counted), unless fail-safe answers for
    /// a failed backend.
    async fn read_many_for_load<T: DeserializeOwned>(
        &self,
        scope: &Scope<'_>,
        k: &Keys<'_>,
        asked: &[usize],
        skip: Skip,
        span: &tracing::Span,
    ) -> Outcome<Vec<Option<T>>> {
        let sks: Vec<&str> = asked.iter().map(|&u| k.sks[u]).collect();
        let users: Vec<&str> = asked.iter().map(|&u| k.users[u]).collect();
        let read = self
            .read_many_typed::<T, &str>(scope, &sks, &users, skip, "get_or_set_many", span)
            .await;
        match read {
            Ok(Outcome::Stale(g)) => Outcome::Stale(g),
            Ok(Outcome::Done(each)) => Outcome::Done(
                each.into_iter()
                    .map(|r| {
                        r.unwrap_or_else(|e| {
                            // counted by the read; the error carries the key hash, never the key
                            tracing::warn!(error = %e, "memstache: cache read failed; loading instead");
                            None
                        })
                    })
                    .collect(),
            ),
            Err(e) => {
                self.inner.stats.error();
                let e = e.with_operation("get_or_set_many");
                tracing::warn!(error = %e, keys = asked.len(), "memstache: cache batch read failed; loading instead");
                Outcome::Done(asked.iter().map(|_| None).collect())
            }
        }
    }

    /// Runs the loader for the keys this call leads, stores what it returned in one batch
    /// and completes their flights; the answer for each led key.
    async fn load_led<T, F, Fut, I, E>(
        &self,
        scope: &Scope<'_>,
        k: &Keys<'_>,
        leads: Vec<(usize, LeaderGuard<'_>)>,
        loader: &mut Option<F>,
        options: &EntryOptions,
        span: &tracing::Span,
    ) -> Vec<(usize, Result<Option<T>>)>
    where
        T: Serialize + DeserializeOwned + Send,
        F: FnOnce(Vec<String>) -> Fut,
        Fut: Future<Output = std::result::Result<I, E>>,
        I: IntoIterator<Item = (String, T)>,
        E: Into<BoxError>,
    {
        if leads.is_empty() {
            return Vec::new();
        }
        let Some(load) = loader.take() else {
            // keys whose leader gave up (cancelled) after this call's loader ran: it cannot be
            // called again; their waiters (dropping the guards) look again
            return leads
                .into_iter()
                .map(|(u, guard)| {
                    drop(guard);
                    (u, Err(Error::new(
                        ErrorKind::Loader,
                        "the caller loading this key was cancelled after this call's loader ran; nothing was cached, try again",
                    )))
                })
                .collect();
        };
        let asked: Vec<String> = leads.iter().map(|(u, _)| k.users[*u].to_owned()).collect();
        self.inner.stats.loader_call();
        let items = match load(asked).await {
            Ok(items) => items,
            Err(e) => return self.loader_failed::<T>(k, leads, e.into(), span),
        };
        // what the loader returned, by user key (a key returned twice keeps its last value)
        let mut by_key: HashMap<String, T> = items.into_iter().collect();
        let mut out = Vec::with_capacity(leads.len());
        let mut to_store = Vec::new();
        let mut to_complete = Vec::new();
        for (u, guard) in leads {
            let Some(v) = by_key.remove(k.users[u]) else {
                // not in the source: absent, nothing stored
                guard.complete(Ok(None));
                out.push((u, Ok(None)));
                continue;
            };
            match self.inner.pipeline.serialize(&v) {
                Ok(plain) => {
                    to_complete.push((guard, Arc::new(plain.clone())));
                    to_store.push((k.sks[u].to_owned(), plain));
                    out.push((u, Ok(Some(v))));
                }
                // as in get_or_set: the guard drops, its waiters look again
                Err(e) => out.push((u, Err(e))),
            }
        }
        if !by_key.is_empty() {
            tracing::debug!(
                extra = by_key.len(),
                "memstache: the loader returned keys it was not asked for; ignored"
            );
        }
        if !to_store.is_empty() {
            match self.store_many::<T>(scope, to_store, options).await {
                Ok(Outcome::Done(())) => {}
                Ok(Outcome::Stale(_)) => tracing::debug!(
                    "memstache: scope changed during the load; returning the values uncached"
                ),
                Err(e) => {
                    self.inner.stats.error();
                    let e = self.ctx(e, "get_or_set_many", scope, None);
                    tracing::warn!(error = %e, "memstache: storing the loaded values failed; returning them uncached");
                }
            }
        }
        for (guard, plain) in to_complete {
            guard.complete(Ok(Some(plain)));
        }
        out
    }

    /// After the loader failed with `e`: each led key's fail-safe copy when there is one (as
    /// `get_or_set` serves it), the loader's error for the others; their flights completed
    /// alike.
    fn loader_failed<T: DeserializeOwned>(
        &self,
        k: &Keys<'_>,
        leads: Vec<(usize, LeaderGuard<'_>)>,
        e: BoxError,
        span: &tracing::Span,
    ) -> Vec<(usize, Result<Option<T>>)> {
        self.inner.stats.loader_error();
        let shared = SharedLoaderError::new(e);
        let answers: Vec<(usize, Result<Option<T>>)> = leads
            .into_iter()
            .map(|(u, guard)| {
                let copy = self
                    .inner
                    .loader_throttle
                    .and_then(|throttle| self.loader_fail_safe::<T>(k.sks[u], throttle));
                match copy {
                    Some((v, plain)) => {
                        match plain {
                            Some(plain) => guard.complete(Ok(Some(Arc::new(plain)))),
                            // not in the cache's own format: the waiters look again and read
                            // the throttled copy
                            None => drop(guard),
                        }
                        (u, Ok(Some(v)))
                    }
                    None => {
                        guard.complete(Err(shared.clone()));
                        (u, Err(shared.to_error()))
                    }
                }
            })
            .collect();
        let served = answers.iter().filter(|(_, r)| r.is_ok()).count();
        if served > 0 {
            span.record("fail_safe", true);
            tracing::warn!(error = %shared.to_error(), served, "memstache: the loader failed; served fail-safe copies");
        }
        answers
    }

    /// The answer in request order: each position gets its distinct key's value (a copy for
    /// a duplicate), or the first error (with that key's hash).
    fn answer<T: Serialize + DeserializeOwned>(
        &self,
        scope: &Scope<'_>,
        k: &Keys<'_>,
        mut got: Answers<T>,
    ) -> Result<Vec<Option<T>>> {
        let mut first_at = vec![usize::MAX; k.sks.len()];
        let mut out: Vec<Option<T>> = Vec::with_capacity(k.slot.len());
        for (i, &u) in k.slot.iter().enumerate() {
            let v = if first_at[u] == usize::MAX {
                first_at[u] = i;
                got[u]
                    .take()
                    .unwrap_or_else(|| Err(Error::internal("a key of the batch was not answered")))
                    .map_err(|e| self.ctx(e, "get_or_set_many", scope, Some(k.users[u])))?
            } else {
                // a duplicate: a copy of the first occurrence's value, through the serializer
                match &out[first_at[u]] {
                    None => None,
                    Some(v) => {
                        let plain = self.inner.pipeline.serialize(v)?;
                        Some(self.inner.pipeline.deserialize(&plain)?)
                    }
                }
            };
            out.push(v);
        }
        Ok(out)
    }
}
