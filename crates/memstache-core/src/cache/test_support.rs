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

/// A toy AEAD for tests of the encrypted read path without a crypto dependency: XOR with the
/// key, and a 16-byte tag of a hash over key, nonce, AAD and ciphertext. **Not secure**; it
/// only has to reject edits the way a real AEAD does.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ToyCipher;

fn toy_tag(key: &[u8], nonce: &[u8], aad: &[u8], data: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = crc32fast::Hasher::new_with_initial(i as u32);
        for part in [key, nonce, aad, data] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        let a = h.finalize();
        chunk.copy_from_slice(&(u64::from(a) | (u64::from(a.rotate_left(7)) << 32)).to_le_bytes());
    }
    out
}

impl crate::raw::Encryptor for ToyCipher {
    fn id(&self) -> u8 {
        200
    }
    fn name(&self) -> &'static str {
        "toy"
    }
    fn key_len(&self) -> usize {
        32
    }
    fn nonce_len(&self) -> usize {
        12
    }
    fn tag_len(&self) -> usize {
        16
    }
    fn fill_nonce(&self, nonce: &mut [u8]) -> Result<()> {
        static N: AtomicU64 = AtomicU64::new(1);
        let n = N.fetch_add(1, Ordering::Relaxed).to_le_bytes();
        for (i, b) in nonce.iter_mut().enumerate() {
            *b = n[i % 8];
        }
        Ok(())
    }
    fn seal_in_place(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8],
    ) -> Result<()> {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[i % key.len()];
        }
        tag.copy_from_slice(&toy_tag(key, nonce, aad, data));
        Ok(())
    }
    fn open_in_place(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        data_and_tag: &mut [u8],
    ) -> Result<usize> {
        let n = data_and_tag
            .len()
            .checked_sub(16)
            .ok_or_else(|| Error::integrity("too short"))?;
        let (data, tag) = data_and_tag.split_at_mut(n);
        if toy_tag(key, nonce, aad, data) != *tag {
            data.fill(0);
            return Err(Error::integrity("authentication failed"));
        }
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[i % key.len()];
        }
        Ok(n)
    }
}

/// How a [`TestKeys`] manager answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeysMode {
    /// At once.
    Ready,
    /// Never (a hung KMS).
    Hang,
    /// After this long (on the tokio clock).
    After(Duration),
}

/// A key manager with one fixed key per (id, version), that counts its calls and can hang or
/// answer late.
#[derive(Debug, Clone)]
pub(crate) struct TestKeys {
    pub(crate) calls: Arc<AtomicU64>,
    mode: Arc<Mutex<KeysMode>>,
}

impl TestKeys {
    pub(crate) fn new(mode: KeysMode) -> Self {
        TestKeys {
            calls: Arc::default(),
            mode: Arc::new(Mutex::new(mode)),
        }
    }
    pub(crate) fn set_mode(&self, mode: KeysMode) {
        *self.mode.lock().unwrap() = mode;
    }
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
    async fn answer(&self, key_id: &str, version: u32) -> Result<Arc<crate::raw::KeyVersion>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mode = *self.mode.lock().unwrap();
        match mode {
            KeysMode::Ready => {}
            KeysMode::Hang => std::future::pending::<()>().await,
            KeysMode::After(d) => tokio::time::sleep(d).await,
        }
        Ok(Arc::new(crate::raw::KeyVersion {
            key_id: key_id.to_owned(),
            version,
            material: crate::raw::SecretKey::new(vec![version as u8 ^ 0x5a; 32]),
        }))
    }
}

#[async_trait]
impl crate::raw::KeyManager for TestKeys {
    async fn current_key(&self, key_id: &str) -> Result<Arc<crate::raw::KeyVersion>> {
        self.answer(key_id, 1).await
    }
    async fn key(&self, key_id: &str, version: u32) -> Result<Arc<crate::raw::KeyVersion>> {
        if version != 1 {
            self.calls.fetch_add(1, Ordering::SeqCst);
            return Err(Error::new(ErrorKind::KeyNotFound, "no such key version"));
        }
        self.answer(key_id, version).await
    }
    async fn rotate_key(&self, _: &str) -> Result<Arc<crate::raw::KeyVersion>> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "test keys do not rotate",
        ))
    }
    async fn destroy_key(&self, _: &str) -> Result<()> {
        Err(Error::new(
            ErrorKind::Unsupported,
            "test keys are not destroyed",
        ))
    }
}

/// An encrypting cache (toy cipher) over `backend` with `keys`.
pub(crate) fn encrypting_cache(backend: MemoryBackend, keys: TestKeys) -> MemStache {
    MemStache::builder()
        .backend(backend)
        .encryptor(ToyCipher)
        .key_manager(keys)
        .build()
        .unwrap()
}
