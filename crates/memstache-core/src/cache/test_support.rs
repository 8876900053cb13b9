//! What the cache's unit tests share: log capture, and a memory backend that can fail on
//! demand or hold a read at a gate.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::{Notify, oneshot};

use crate::memory::MemoryBackend;
use std::time::Duration;

use crate::raw::{Backend, Capabilities, Expiry, ManualClock};
use crate::{Error, ErrorKind, FailSafe, MemStache, Result};

/// Everything a `tracing` fmt subscriber writes, kept in memory.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// The log text so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Captures every event and span close at `level` and above on this thread until the guard
/// drops (use a current-thread runtime).
pub(crate) fn capture_logs(level: tracing::Level) -> (Captured, tracing::subscriber::DefaultGuard) {
    let out = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(out.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    // Tests on other threads may have cached a callsite's interest as "never" while no
    // subscriber wanted it (a span first seen there); ask every callsite again now that this
    // thread has one, or a span of this test can go unrecorded.
    tracing::callsite::rebuild_interest_cache();
    (out, guard)
}

/// A memory backend that fails every call with `fail_kind` while `down` is set.
///
/// A gate ([`Flaky::hold_next_get`]) holds the next `get` after it has read the store and
/// before it answers, so a test can run other operations in that window.
#[derive(Debug, Clone)]
pub(crate) struct Flaky {
    inner: MemoryBackend,
    down: Arc<AtomicBool>,
    kind: ErrorKind,
    pub(crate) calls: Arc<AtomicU64>,
    gate: Arc<Mutex<Option<Gate>>>,
}

#[derive(Debug)]
struct Gate {
    reached: Arc<Notify>,
    open: oneshot::Receiver<()>,
}

/// A `get` held by [`Flaky::hold_next_get`].
#[derive(Debug)]
pub(crate) struct Held {
    reached: Arc<Notify>,
    open: oneshot::Sender<()>,
}

impl Held {
    /// Waits until the held `get` has read the store.
    pub(crate) async fn reached(&self) {
        self.reached.notified().await;
    }
    /// Lets it answer.
    pub(crate) fn release(self) {
        let _ = self.open.send(());
    }
}

impl Flaky {
    pub(crate) fn new(inner: MemoryBackend, kind: ErrorKind) -> Self {
        Flaky {
            inner,
            down: Arc::default(),
            kind,
            calls: Arc::default(),
            gate: Arc::default(),
        }
    }
    /// Holds the next `get` between reading the store and answering.
    pub(crate) fn hold_next_get(&self) -> Held {
        let (tx, rx) = oneshot::channel();
        let reached = Arc::new(Notify::new());
        *self.gate.lock().unwrap() = Some(Gate {
            reached: Arc::clone(&reached),
            open: rx,
        });
        Held { reached, open: tx }
    }
    pub(crate) fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
    fn check(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(Error::new(self.kind, "injected failure"))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Backend for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        self.check()?;
        let v = self.inner.get(key).await;
        let gate = self.gate.lock().unwrap().take();
        if let Some(g) = gate {
            g.reached.notify_one();
            let _ = g.open.await;
        }
        v
    }
    async fn set(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<()> {
        self.check()?;
        self.inner.set(key, value, expiry).await
    }
    async fn remove(&self, key: &str) -> Result<bool> {
        self.check()?;
        self.inner.remove(key).await
    }
    async fn exists(&self, key: &str) -> Result<bool> {
        self.check()?;
        self.inner.exists(key).await
    }
    async fn touch(&self, key: &str) -> Result<bool> {
        self.check()?;
        self.inner.touch(key).await
    }
    async fn set_if_absent(&self, key: &str, value: Bytes, expiry: Expiry) -> Result<bool> {
        self.check()?;
        self.inner.set_if_absent(key, value, expiry).await
    }
    async fn remove_if_equals(&self, key: &str, expected: &[u8]) -> Result<bool> {
        self.check()?;
        self.inner.remove_if_equals(key, expected).await
    }
}

/// A fail-safe cache (60 s) over a [`Flaky`] memory backend failing with `kind`, on a manual
/// clock.
pub(crate) fn fail_safe_cache(kind: ErrorKind) -> (MemStache, Flaky, ManualClock) {
    let clock = ManualClock::starting_now();
    let shared = MemoryBackend::builder()
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let flaky = Flaky::new(shared, kind);
    let local = MemoryBackend::builder()
        .max_entries(100)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let cache = MemStache::builder()
        .backend(flaky.clone())
        .clock(Arc::new(clock.clone()))
        .fail_safe(FailSafe::new(Duration::from_secs(60)).local_tier(local))
        .build()
        .unwrap();
    (cache, flaky, clock)
}
