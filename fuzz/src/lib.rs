//! Shared parts of memstache's fuzz targets: the caches that write and read entries (plain,
//! gzip, zstd, encrypted, all over one memory backend), the structured cases of the `read_path`
//! target, and the forging of entries (header fields and payloads changed, the CRC-32 or the
//! AEAD seal recomputed, raw bytes mutated).
//!
//! Built only by `cargo fuzz` (and by the `write_seeds` example); see `fuzz/README.md`.

use std::sync::{Arc, OnceLock};

use arbitrary::Arbitrary;
use bytes::Bytes;
use memstache_aes::Aes256Gcm;
use memstache_core::envelope::{self, Header};
use memstache_core::memory::MemoryBackend;
use memstache_core::raw::{Backend, Encryptor, Expiry, KeyManager};
use memstache_core::{Error, ErrorKind, MemStache};
use memstache_gzip::Gzip;
use memstache_keys::LocalKeyManager;
use memstache_zstd::Zstd;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The max value size of every cache here: small, so that a bomb hits it quickly.
pub const MAX_VALUE_SIZE: usize = 64 << 10;

/// The user key every case is stored under.
pub const KEY: &str = "fuzz";

/// A fixed key ring (key `default`, version 1), so that encrypted seeds written by one process
/// open in another. Test material, not a secret.
const KEYRING: &str = "default 1 AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

/// Which cache writes (and reads) an entry.
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// No compression, no encryption: CRC-32 only.
    Plain,
    /// Gzip above a 16-byte threshold.
    Gzip,
    /// Zstd above a 16-byte threshold.
    Zstd,
    /// AES-256-GCM with the fixed key ring, no compression.
    Encrypted,
    /// Zstd, then AES-256-GCM.
    EncryptedZstd,
    /// Gzip, then AES-256-GCM.
    EncryptedGzip,
}

impl Writer {
    /// Every writer, in the order of [`Caches::all`].
    pub const ALL: [Writer; 6] = [
        Writer::Plain,
        Writer::Gzip,
        Writer::Zstd,
        Writer::Encrypted,
        Writer::EncryptedZstd,
        Writer::EncryptedGzip,
    ];

    /// Whether entries of this writer are sealed.
    pub fn encrypted(self) -> bool {
        matches!(
            self,
            Writer::Encrypted | Writer::EncryptedZstd | Writer::EncryptedGzip
        )
    }
}

/// The caches, their shared backend and the key manager, built once per process.
pub struct Caches {
    /// The backend all caches share (one namespace, so one storage key).
    pub backend: MemoryBackend,
    /// The key manager of the encrypted caches.
    pub keys: Arc<LocalKeyManager>,
    caches: Vec<MemStache>,
    runtime: tokio::runtime::Runtime,
}

impl Caches {
    /// The process-wide instance.
    pub fn get() -> &'static Caches {
        static CACHES: OnceLock<Caches> = OnceLock::new();
        CACHES.get_or_init(Caches::build)
    }

    fn build() -> Caches {
        let backend = MemoryBackend::new();
        let keys = Arc::new(LocalKeyManager::from_keyring_str(KEYRING).expect("fixed key ring"));
        let caches = Writer::ALL
            .iter()
            .map(|w| {
                let mut b = MemStache::builder()
                    .backend(backend.clone())
                    .max_value_size(MAX_VALUE_SIZE)
                    .compress_threshold(16);
                b = match w {
                    Writer::Gzip | Writer::EncryptedGzip => b.compressor(Gzip::default()),
                    Writer::Zstd | Writer::EncryptedZstd => b.compressor(Zstd::default()),
                    _ => b,
                };
                if w.encrypted() {
                    b = b
                        .encryptor(Aes256Gcm::new())
                        .key_manager_arc(keys.clone() as Arc<dyn KeyManager>);
                }
                b.build().expect("fuzz cache")
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime");
        Caches {
            backend,
            keys,
            caches,
            runtime,
        }
    }

    /// The cache of `writer`.
    pub fn cache(&self, writer: Writer) -> &MemStache {
        let i = Writer::ALL.iter().position(|w| *w == writer).unwrap_or(0);
        &self.caches[i]
    }

    /// Every cache, in the order of [`Writer::ALL`].
    pub fn all(&self) -> impl Iterator<Item = (Writer, &MemStache)> {
        Writer::ALL.iter().copied().zip(self.caches.iter())
    }

    /// Runs a future to completion on the process's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// The storage key of [`KEY`] (the same for every cache).
    pub fn storage_key(&self) -> String {
        self.caches[0].storage_key(KEY).expect("valid key")
    }

    /// Writes `value` through `writer`'s cache and returns the stored bytes.
    pub fn write<T: Serialize + ?Sized>(&self, writer: Writer, value: &T) -> Bytes {
        let sk = self.storage_key();
        self.block_on(async {
            self.cache(writer)
                .set(KEY, value, memstache_core::EntryOptions::new())
                .await
                .expect("writing a fuzz value");
            self.backend
                .get(&sk)
                .await
                .expect("memory backend get")
                .expect("just written")
        })
    }

    /// Stores `bytes` under the storage key as they are.
    pub fn forge(&self, bytes: &[u8]) {
        let sk = self.storage_key();
        self.block_on(
            self.backend
                .set(&sk, Bytes::copy_from_slice(bytes), Expiry::NEVER),
        )
        .expect("memory backend set");
    }

    /// Reads [`KEY`] through `writer`'s cache as a `T`.
    pub fn read<T: DeserializeOwned>(&self, writer: Writer) -> Result<Option<T>, Error> {
        self.block_on(self.cache(writer).get::<T>(KEY))
    }

    /// Re-seals an encrypted entry whose header bytes are `header` with `payload` as the
    /// plaintext, under the fixed key: what an attacker holding the key could write.
    fn seal(&self, header: &[u8], nonce: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
        let key = self
            .block_on(self.keys.key("default", 1))
            .expect("fixed key");
        let aes = Aes256Gcm::new();
        let mut aad = Vec::new();
        envelope::aad(header, &self.storage_key(), &mut aad);
        let mut data = payload.to_vec();
        let mut tag = vec![0u8; aes.tag_len()];
        aes.seal_in_place(key.material.expose(), nonce, &aad, &mut data, &mut tag)
            .ok()?;
        let mut out = header.to_vec();
        out.extend_from_slice(&data);
        out.extend_from_slice(&tag);
        Some(out)
    }

    /// Opens an encrypted entry under the fixed key: its payload (compressed or not).
    fn open(&self, header: &[u8], nonce: &[u8], body: &[u8]) -> Option<Vec<u8>> {
        let key = self
            .block_on(self.keys.key("default", 1))
            .expect("fixed key");
        let aes = Aes256Gcm::new();
        let mut aad = Vec::new();
        envelope::aad(header, &self.storage_key(), &mut aad);
        let mut data = body.to_vec();
        let n = aes
            .open_in_place(key.material.expose(), nonce, &aad, &mut data)
            .ok()?;
        data.truncate(n);
        Some(data)
    }
}

/// A value of one of a few shapes; each is read back as its own type.
#[derive(Arbitrary, Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Text(String),
    /// A string repeated (compressible: crosses the compression threshold).
    Repeated {
        /// The repeated piece.
        unit: String,
        /// How often (capped so that the value stays under the max value size).
        times: u16,
    },
    /// Numbers.
    Numbers(Vec<u64>),
    /// A small tuple with an option.
    Pair(u8, Option<String>),
}

/// A header field to overwrite.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum Field {
    /// The flag bits.
    Flags,
    /// The serializer id.
    Serializer,
    /// The compressor id.
    Compressor,
    /// The cipher id.
    Cipher,
    /// The absolute deadline.
    Deadline,
    /// The sliding window.
    Sliding,
    /// The type fingerprint.
    Fingerprint,
    /// The serialized length.
    PlainLen,
    /// The key version.
    KeyVersion,
}

/// One change to a stored entry.
#[derive(Arbitrary, Debug, Clone)]
pub enum Mutation {
    /// Overwrite a header field (the header is re-encoded).
    Header(Field, u64),
    /// Overwrite a byte of the payload (compressed bytes, or plaintext of a sealed entry).
    Payload {
        /// Offset, modulo the payload length.
        at: u16,
        /// The new byte.
        byte: u8,
    },
    /// Cut the payload.
    TruncatePayload(u16),
    /// Append bytes to the payload.
    ExtendPayload(Vec<u8>),
    /// Flip one bit of the stored bytes (after any re-sealing).
    Flip {
        /// Offset, modulo the entry length.
        at: u16,
        /// Bit number, modulo 8.
        bit: u8,
    },
    /// Cut the stored bytes.
    Truncate(u16),
    /// Insert bytes into the stored bytes.
    Insert {
        /// Offset, modulo the entry length.
        at: u16,
        /// The bytes.
        bytes: Vec<u8>,
    },
}

impl Mutation {
    /// Whether this mutation works on the decoded structure (re-sealable) rather than on the
    /// stored bytes.
    fn structural(&self) -> bool {
        matches!(
            self,
            Mutation::Header(..)
                | Mutation::Payload { .. }
                | Mutation::TruncatePayload(_)
                | Mutation::ExtendPayload(_)
        )
    }
}

/// One case of the `read_path` target.
#[derive(Arbitrary, Debug, Clone)]
pub struct Case {
    /// The cache that writes the value and reads it back.
    pub writer: Writer,
    /// The value.
    pub value: Value,
    /// Changes to the stored entry, in order (structural ones first, then byte-level ones).
    pub mutations: Vec<Mutation>,
    /// Recompute the CRC-32 (plain entries) or re-seal with the key (encrypted ones) after the
    /// structural changes, as someone who can write to the backend (and, for sealed entries,
    /// holds the key) would.
    pub reseal: bool,
}

/// A forged entry and what may be read from it.
#[derive(Debug)]
pub struct Forged {
    /// The stored bytes.
    pub bytes: Vec<u8>,
    /// Whether they differ from what the cache wrote.
    pub mutated: bool,
    /// Whether the entry is validly checksummed or sealed again after the changes, so that a
    /// reader may legitimately decode it (to whatever the forger put in).
    pub valid_seal: bool,
}

/// Applies `case`'s mutations to `original` (written by `case.writer`).
pub fn forge(caches: &Caches, case: &Case, original: &[u8]) -> Forged {
    let structural: Vec<&Mutation> = case.mutations.iter().filter(|m| m.structural()).collect();
    let mut bytes = original.to_vec();
    let mut valid_seal = true;
    if !structural.is_empty() {
        bytes = forge_structure(caches, case, original, &structural).unwrap_or(bytes);
        valid_seal = case.reseal;
    }
    let resealed = bytes.clone();
    for m in case.mutations.iter().filter(|m| !m.structural()) {
        match m {
            Mutation::Flip { at, bit } if !bytes.is_empty() => {
                let i = usize::from(*at) % bytes.len();
                bytes[i] ^= 1 << (bit % 8);
            }
            Mutation::Truncate(len) => bytes.truncate(usize::from(*len)),
            Mutation::Insert { at, bytes: extra } => {
                let i = usize::from(*at) % (bytes.len() + 1);
                bytes.splice(i..i, extra.iter().copied());
            }
            _ => {}
        }
    }
    // A raw change that changed something breaks the CRC or the seal (no-op ones, like a
    // truncation past the end, do not).
    if bytes != resealed {
        valid_seal = false;
    }
    let mutated = bytes != original;
    Forged {
        bytes,
        mutated,
        valid_seal: valid_seal || !mutated,
    }
}

/// Decodes `original`, changes header fields and payload, and encodes it again, with the CRC
/// or seal recomputed when `case.reseal` (else the old checksum or tag is kept).
fn forge_structure(
    caches: &Caches,
    case: &Case,
    original: &[u8],
    mutations: &[&Mutation],
) -> Option<Vec<u8>> {
    let env = envelope::decode(original, usize::MAX).ok()?;
    let sealed = env.header.is_encrypted();
    let (mut payload, trailer) = if sealed {
        let tag_len = Aes256Gcm::new().tag_len();
        let tag = env
            .body
            .get(env.body.len().checked_sub(tag_len)?..)?
            .to_vec();
        let payload = caches.open(env.header_bytes, env.header.nonce, env.body)?;
        (payload, tag)
    } else {
        let split = env.body.len().checked_sub(envelope::CHECKSUM_LEN)?;
        (env.body[..split].to_vec(), env.body[split..].to_vec())
    };
    let key_id = env.header.key_id.to_owned();
    let nonce = env.header.nonce.to_vec();
    let mut h: Header<'_> = Header {
        key_id: &key_id,
        nonce: &nonce,
        ..env.header
    };
    for m in mutations {
        match m {
            Mutation::Header(field, v) => {
                let v = *v;
                match field {
                    Field::Flags => h.flags = v as u8,
                    Field::Serializer => h.serializer = v as u8,
                    Field::Compressor => h.compressor = v as u8,
                    Field::Cipher => h.cipher = v as u8,
                    Field::Deadline => h.deadline_ms = v,
                    Field::Sliding => h.sliding_ms = v,
                    Field::Fingerprint => h.fingerprint = v,
                    Field::PlainLen => h.plain_len = v as u32,
                    Field::KeyVersion => h.key_version = v as u32,
                }
            }
            Mutation::Payload { at, byte } if !payload.is_empty() => {
                let i = usize::from(*at) % payload.len();
                payload[i] = *byte;
            }
            Mutation::TruncatePayload(len) => payload.truncate(usize::from(*len)),
            Mutation::ExtendPayload(extra) => payload.extend_from_slice(extra),
            _ => {}
        }
    }
    let mut header = Vec::new();
    h.encode(&mut header);
    let sk = caches.storage_key();
    match (sealed, case.reseal) {
        (true, true) => caches.seal(&header, &nonce, &payload),
        (true, false) => {
            // keep the old ciphertext and tag: only the header changed
            let mut out = header;
            out.extend_from_slice(env.body);
            let _ = trailer;
            Some(out)
        }
        (false, reseal) => {
            let sum = if reseal {
                envelope::checksum(&header, &sk, &payload)
                    .to_le_bytes()
                    .to_vec()
            } else {
                trailer
            };
            let mut out = header;
            out.extend_from_slice(&payload);
            out.extend_from_slice(&sum);
            Some(out)
        }
    }
}

/// The error kinds a read of a forged or corrupt entry may give (docs/wire-format.md, "What
/// each failure reads as"); anything else (a backend or internal error) is a bug.
pub fn is_entry_error(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Integrity
            | ErrorKind::UnsupportedFormat
            | ErrorKind::ValueTooLarge
            | ErrorKind::SchemaMismatch
            | ErrorKind::Serialization
            | ErrorKind::Compression
            | ErrorKind::KeyNotFound
            | ErrorKind::KeyDestroyed
            | ErrorKind::Crypto
    )
}

/// Builds the value of `v`, capped to stay writable.
pub fn repeated(unit: &str, times: u16) -> String {
    let times = usize::from(times).min((MAX_VALUE_SIZE / 2) / unit.len().max(1));
    unit.repeat(times)
}

/// Writes `case`'s value, forges the entry, reads it back, and checks the property: no panic;
/// an unchanged entry reads as the value; a changed one that is not validly sealed again is a
/// typed entry error or a miss; a validly re-sealed one may read as anything of the type (the
/// CRC is no authentication, and the re-sealer holds the key) but never as a backend error.
pub fn run_case(case: &Case) {
    let caches = Caches::get();
    match &case.value {
        Value::Text(s) => check(caches, case, s.as_str(), |c| c.read::<String>(case.writer)),
        Value::Repeated { unit, times } => {
            let s = repeated(unit, *times);
            check(caches, case, s.as_str(), |c| c.read::<String>(case.writer))
        }
        Value::Numbers(v) => check(caches, case, v, |c| c.read::<Vec<u64>>(case.writer)),
        Value::Pair(a, b) => check(caches, case, &(*a, b.clone()), |c| {
            c.read::<(u8, Option<String>)>(case.writer)
        }),
    }
}

fn check<T, W>(
    caches: &Caches,
    case: &Case,
    value: &W,
    read: impl Fn(&Caches) -> Result<Option<T>, Error>,
) where
    W: Serialize + ?Sized + std::fmt::Debug,
    T: PartialEq<W::Owned> + std::fmt::Debug,
    W: ToOwned,
    W::Owned: std::fmt::Debug,
{
    let original = caches.write(case.writer, value);
    let forged = forge(caches, case, &original);
    caches.forge(&forged.bytes);
    let got = read(caches);
    if !forged.mutated {
        match &got {
            Ok(Some(v)) => assert!(*v == value.to_owned(), "unchanged entry read as {v:?}"),
            other => panic!("unchanged entry read as {other:?}"),
        }
    } else if !forged.valid_seal {
        match &got {
            Ok(None) => {}
            Err(e) => assert!(is_entry_error(e), "unexpected error kind: {e:?}"),
            Ok(Some(v)) => panic!("a changed entry without a valid seal read as {v:?}"),
        }
    } else if let Err(e) = &got {
        assert!(is_entry_error(e), "unexpected error kind: {e:?}");
    }
    // Every other cache reads the same bytes without panicking (other compressor or cipher
    // configurations: UnsupportedFormat, Integrity, or a decode).
    for (_, cache) in caches.all() {
        let r = caches.block_on(cache.get::<String>(KEY));
        if let Err(e) = &r {
            assert!(is_entry_error(e), "unexpected error kind: {e:?}");
        }
    }
}

/// Reads arbitrary stored bytes through every cache as several types: no panic, only typed
/// entry errors; an encrypted cache never returns a value (nothing here holds a valid seal
/// unless the bytes were written by it, which random bytes are not).
pub fn run_raw(data: &[u8]) {
    let caches = Caches::get();
    caches.forge(data);
    for (writer, cache) in caches.all() {
        let results = caches.block_on(async {
            [
                cache.get::<String>(KEY).await.map(|v| v.is_some()),
                cache.get::<Vec<u64>>(KEY).await.map(|v| v.is_some()),
                cache
                    .get::<(u8, Option<String>)>(KEY)
                    .await
                    .map(|v| v.is_some()),
            ]
        });
        for r in results {
            match r {
                Err(e) => assert!(is_entry_error(&e), "{writer:?}: unexpected error: {e:?}"),
                Ok(true) if writer.encrypted() => {
                    // Possible only for bytes that are a valid sealed entry under the fixed
                    // key: a seed written by `write_seeds` (unchanged). Check it is one.
                    assert!(
                        is_sealed_seed(data),
                        "{writer:?}: a value from bytes that were not sealed by us"
                    );
                }
                Ok(_) => {}
            }
        }
    }
}

/// Whether `data` opens under the fixed key (a genuine encrypted entry).
fn is_sealed_seed(data: &[u8]) -> bool {
    let caches = Caches::get();
    let Ok(env) = envelope::decode(data, usize::MAX) else {
        return false;
    };
    env.header.is_encrypted()
        && caches
            .open(env.header_bytes, env.header.nonce, env.body)
            .is_some()
}

/// The seeds of each target: one file per writer (plain, gzip, zstd, encrypted, encrypted
/// zstd, encrypted gzip), so that every branch kind is in the corpus from the start.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let caches = Caches::get();
    let mut out = Vec::new();
    let text = "memstache fuzz seed: orders tenant cache value ".repeat(8);
    for w in Writer::ALL {
        let name = format!("{w:?}").to_lowercase();
        // read_raw: the stored envelope itself
        out.push((
            "read_raw",
            name.clone(),
            caches.write(w, text.as_str()).to_vec(),
        ));
        // envelope_decode: the same bytes
        out.push((
            "envelope_decode",
            name.clone(),
            caches.write(w, text.as_str()).to_vec(),
        ));
    }
    out
}

/// A password that must never show in an error or a `Debug` (letters only, so that URL
/// parsing keeps it as one piece).
const URL_PASSWORD: &str = "QuietlySecretPassword";

/// The `redis_config` target: the input as a URL, and the input's tail inside a URL with a
/// password. No panic; errors are `InvalidConfig`; the password shows in neither an error
/// (`Display`, `Debug`, its sources) nor the `Debug` of a parsed configuration.
pub fn run_redis_url(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let rest = String::from_utf8_lossy(rest);
    const SCHEMES: [&str; 6] = [
        "redis",
        "rediss",
        "redis-cluster",
        "rediss-cluster",
        "redis-sentinel",
        "rediss-sentinel",
    ];
    let scheme = SCHEMES[usize::from(selector) % SCHEMES.len()];
    let with_password = format!("{scheme}://user:{URL_PASSWORD}@{rest}");
    for url in [rest.to_string(), with_password] {
        match memstache_redis::RedisConfig::from_url(&url) {
            Ok(config) => {
                let shown = format!("{config:?}");
                assert!(!shown.contains(URL_PASSWORD), "Debug shows the password");
                let _ = config.validate();
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::InvalidConfig, "{e}");
                let mut shown = format!("{e} {e:?}");
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    shown.push_str(&format!(" {s} {s:?}"));
                    source = s.source();
                }
                assert!(!shown.contains(URL_PASSWORD), "an error shows the password");
            }
        }
    }
}
