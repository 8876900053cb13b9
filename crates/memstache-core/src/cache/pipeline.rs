//! serialize → compress → encrypt → envelope, and back.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::envelope::{
    self, FLAG_CHECKSUM, FLAG_COMPRESSED, FLAG_ENCRYPTED, FLAG_FINGERPRINT, Header,
};
use crate::raw::{Compressor, Encryptor, KeyManager, KeyVersion, Serializer};
use crate::serializer::Builtin;
use crate::{Error, ErrorKind, Result};

/// What one write needs beyond the value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EncodeParams<'a> {
    pub(crate) storage_key: &'a str,
    pub(crate) key_id: &'a str,
    pub(crate) compress: bool,
    pub(crate) encrypt: bool,
    pub(crate) now_ms: u64,
    pub(crate) deadline_ms: u64,
    pub(crate) sliding_ms: u64,
    pub(crate) fingerprint: u64,
    /// A "not found" marker ([`FLAG_ABSENT`](envelope::FLAG_ABSENT)).
    pub(crate) absent: bool,
}

/// The most [`Pipeline::encode_value`] reserves up front from the size of earlier values.
const MAX_HINT: usize = 64 * 1024;

/// What [`Pipeline::encode_value`] produced.
pub(crate) enum Prepared {
    /// The finished envelope.
    Done(Bytes),
    /// The serialized value, at `buf[offset..]`, still to compress and/or encrypt.
    Serialized { buf: Vec<u8>, offset: usize },
}

/// The configured stages.
#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    pub(crate) serializer: Arc<dyn Serializer>,
    pub(crate) compressor: Option<Arc<dyn Compressor>>,
    pub(crate) compress_threshold: usize,
    pub(crate) encryptor: Option<Arc<dyn Encryptor>>,
    pub(crate) key_manager: Option<Arc<dyn KeyManager>>,
    pub(crate) max_value_size: usize,
    /// Read plaintext entries even though this cache encrypts.
    pub(crate) accept_unencrypted: bool,
    /// The size of a recent serialized value: the capacity of the next write's buffer.
    pub(crate) size_hint: Arc<AtomicUsize>,
    /// `serializer` is one of memstache's own: writes and reads call it with typed functions
    /// instead of through erased-serde.
    pub(crate) builtin: Option<Builtin>,
    /// Serializers whose entries this cache also reads (besides its own), by id.
    pub(crate) accepted: Vec<Arc<dyn Serializer>>,
    /// Deepest nesting a decoded value may have.
    pub(crate) max_depth: usize,
    /// Bound on each key-manager call.
    pub(crate) key_manager_timeout: Option<Duration>,
}

/// A key-manager call bounded by `limit`: a hung key manager gives a temporary
/// [`Timeout`](ErrorKind::Timeout) instead of hanging the operation.
fn key_call<'a, T: Send + 'a>(
    limit: Option<Duration>,
    fut: Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>,
) -> Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>> {
    match limit {
        None => fut,
        Some(limit) => Box::pin(async move {
            tokio::time::timeout(limit, fut).await.unwrap_or_else(|_| {
                Err(Error::new(
                    ErrorKind::Timeout,
                    format!("key manager did not answer within {limit:?}"),
                ))
            })
        }),
    }
}

thread_local! {
    /// This thread's AAD buffer, reused by every seal and open (buffer pooling, issue 15: it
    /// was one allocation per encrypted read and write). The AAD is the header and the storage
    /// key, no key material.
    static AAD: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The largest AAD buffer kept for reuse; a longer one (a very long key) is freed after use.
const MAX_POOLED_AAD: usize = 1024;

/// Calls `f` with the AAD of an entry with header `header` at `storage_key`, built in this
/// thread's reused buffer (a fresh one if that is in use: `f` never re-enters, but a fallback
/// costs one allocation rather than a panic).
fn with_aad<R>(header: &[u8], storage_key: &str, f: impl FnOnce(&[u8]) -> R) -> R {
    AAD.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            envelope::aad(header, storage_key, &mut buf);
            let r = f(&buf);
            if buf.capacity() > MAX_POOLED_AAD {
                *buf = Vec::new();
            }
            r
        }
        Err(_) => {
            let mut buf = Vec::new();
            envelope::aad(header, storage_key, &mut buf);
            f(&buf)
        }
    })
}

fn too_large() -> Error {
    Error::new(
        ErrorKind::ValueTooLarge,
        "value is larger than the maximum value size",
    )
}

impl Pipeline {
    /// Appends the serialization of `value` to `out` with the cache's own serializer: a typed
    /// call for a built-in one, erased-serde for any other.
    fn serialize_into<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        match self.builtin {
            Some(b) => b.write(value, out),
            None => self.serializer.serialize(&value, out),
        }
    }

    /// Serializes `value` on its own (used to hand a loaded value to single-flight waiters).
    pub(crate) fn serialize<T: serde::Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.serialize_into(value, &mut out)?;
        if out.len() > self.max_value_size {
            return Err(too_large());
        }
        Ok(out)
    }

    /// Deserializes bytes produced by [`serialize`](Self::serialize).
    pub(crate) fn deserialize<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        self.own_serializer()
            .deserialize_typed(bytes, self.max_depth)
    }

    /// The id of the serializer `r` names.
    pub(crate) fn serializer_id(&self, r: &SerializerRef<'_>) -> u8 {
        match r {
            SerializerRef::Own(s) => s.id(),
            SerializerRef::Builtin(_) => self.serializer.id(),
        }
    }

    /// The cache's own serializer, as [`open`](Self::open) would return it.
    fn own_serializer(&self) -> SerializerRef<'_> {
        match self.builtin {
            Some(b) => SerializerRef::Builtin(b),
            None => SerializerRef::Own(self.serializer.as_ref()),
        }
    }

    /// The header of a checksummed (not encrypted) entry, compressed by `compressor` if any.
    fn plain_header(
        &self,
        p: &EncodeParams<'_>,
        compressor: Option<u8>,
        plain_len: u32,
    ) -> Header<'static> {
        let mut flags = FLAG_CHECKSUM;
        if p.absent {
            flags |= envelope::FLAG_ABSENT;
        }
        if compressor.is_some() {
            flags |= FLAG_COMPRESSED;
        }
        if p.fingerprint != 0 {
            flags |= FLAG_FINGERPRINT;
        }
        Header {
            flags,
            serializer: self.serializer.id(),
            compressor: compressor.unwrap_or(0),
            cipher: 0,
            created_at_ms: p.now_ms,
            deadline_ms: p.deadline_ms,
            sliding_ms: p.sliding_ms,
            fingerprint: p.fingerprint,
            plain_len,
            key_id: "",
            key_version: 0,
            nonce: &[],
        }
    }

    /// Serializes `value` and encodes it into an envelope. A plaintext entry that is not
    /// compressed (the common case without a compressor, or below its threshold) is written
    /// in place: the value is serialized straight after room left for the header, the header
    /// is written into that room and the checksum appended — one buffer, sized from the
    /// previous write, no copy of the value. Anything else is returned serialized, for
    /// [`encode_serialized`](Self::encode_serialized). Synchronous. Only the serialization
    /// itself is generic over `T`; the rest is [`finish_value`](Self::finish_value), compiled
    /// once.
    pub(crate) fn encode_value<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
        p: &EncodeParams<'_>,
    ) -> Result<Prepared> {
        let header_len = self.plain_header(p, None, 0).encoded_len();
        let hint = self.size_hint.load(Relaxed);
        // a hint, not a promise: never reserve more than MAX_HINT up front for it
        let reserve = hint.min(MAX_HINT);
        let mut out = Vec::with_capacity(header_len + reserve + envelope::CHECKSUM_LEN);
        out.resize(header_len, 0);
        self.serialize_into(value, &mut out)?;
        self.finish_value(out, header_len, hint, p)
    }

    /// The part of [`encode_value`](Self::encode_value) after the serialization: `out` holds
    /// room for the header, then the serialized value.
    fn finish_value(
        &self,
        mut out: Vec<u8>,
        header_len: usize,
        hint: usize,
        p: &EncodeParams<'_>,
    ) -> Result<Prepared> {
        let plain_len = out.len() - header_len;
        if plain_len > self.max_value_size {
            return Err(too_large());
        }
        // remember sizes that grew, or shrank a lot, so the next buffer fits without regrowing
        if plain_len > hint || plain_len < hint / 2 {
            self.size_hint.store(plain_len, Relaxed);
        }
        let compresses =
            self.compressor.is_some() && p.compress && plain_len >= self.compress_threshold;
        if p.encrypt || compresses {
            return Ok(Prepared::Serialized {
                buf: out,
                offset: header_len,
            });
        }
        let plain_len = u32::try_from(plain_len).map_err(|_| too_large())?;
        self.plain_header(p, None, plain_len)
            .encode_to(&mut &mut out[..header_len]);
        let sum = envelope::checksum(&out[..header_len], p.storage_key, &out[header_len..]);
        out.extend_from_slice(&sum.to_le_bytes());
        // The envelope keeps its allocation for as long as it is stored (the memory backend
        // and the fail-safe tier count `len`): give back a buffer sized for a larger value.
        if out.capacity() - out.len() > out.len() / 8 {
            out.shrink_to_fit();
        }
        Ok(Prepared::Done(Bytes::from(out)))
    }

    /// Encodes an already-serialized value into an envelope.
    pub(crate) async fn encode_serialized(
        &self,
        plain: &[u8],
        p: &EncodeParams<'_>,
    ) -> Result<Bytes> {
        if plain.len() > self.max_value_size {
            return Err(too_large());
        }
        let plain_len = u32::try_from(plain.len()).map_err(|_| too_large())?;

        // Compression: only above the threshold, and only when it pays.
        let mut compressed: Option<(u8, Vec<u8>)> = None;
        if let Some(c) = self
            .compressor
            .as_ref()
            .filter(|_| p.compress && plain.len() >= self.compress_threshold)
        {
            let mut out = Vec::with_capacity(plain.len() / 2);
            c.compress(plain, &mut out)?;
            if out.len() < plain.len() {
                compressed = Some((c.id(), out));
            }
        }
        let payload: &[u8] = compressed.as_ref().map_or(plain, |(_, v)| v.as_slice());

        let mut flags = if p.absent { envelope::FLAG_ABSENT } else { 0 };
        if compressed.is_some() {
            flags |= FLAG_COMPRESSED;
        }
        if p.fingerprint != 0 {
            flags |= FLAG_FINGERPRINT;
        }
        let compressor_id = compressed.as_ref().map_or(0, |(id, _)| *id);

        if p.encrypt {
            let (Some(enc), Some(km)) = (&self.encryptor, &self.key_manager) else {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    "encryption requested but the cache has no encryptor and key manager",
                ));
            };
            let key = key_call(self.key_manager_timeout, km.current_key(p.key_id)).await?;
            if key.material.len() != enc.key_len() {
                return Err(Error::new(
                    ErrorKind::Crypto,
                    "key manager returned a key of the wrong length for the cipher",
                ));
            }
            let mut nonce = [0u8; envelope::MAX_NONCE_LEN];
            let nonce_len = enc.nonce_len().min(envelope::MAX_NONCE_LEN);
            enc.fill_nonce(&mut nonce[..nonce_len])?;
            let header = Header {
                flags: flags | FLAG_ENCRYPTED,
                serializer: self.serializer.id(),
                compressor: compressor_id,
                cipher: enc.id(),
                created_at_ms: p.now_ms,
                deadline_ms: p.deadline_ms,
                sliding_ms: p.sliding_ms,
                fingerprint: p.fingerprint,
                plain_len,
                key_id: &key.key_id,
                key_version: key.version,
                nonce: &nonce[..nonce_len],
            };
            let header_len = header.encoded_len();
            let tag_len = enc.tag_len();
            let mut out = Vec::with_capacity(header_len + payload.len() + tag_len);
            header.encode(&mut out);
            out.extend_from_slice(payload);
            out.resize(header_len + payload.len() + tag_len, 0);
            let (head, body) = out.split_at_mut(header_len);
            let (data, tag) = body.split_at_mut(payload.len());
            with_aad(head, p.storage_key, |aad| {
                enc.seal_in_place(key.material.expose(), &nonce[..nonce_len], aad, data, tag)
            })?;
            return Ok(Bytes::from(out));
        }

        let header = self.plain_header(p, compressed.as_ref().map(|(id, _)| *id), plain_len);
        let header_len = header.encoded_len();
        let mut out = Vec::with_capacity(header_len + payload.len() + envelope::CHECKSUM_LEN);
        header.encode(&mut out);
        out.extend_from_slice(payload);
        let sum = envelope::checksum(&out[..header_len], p.storage_key, payload);
        out.extend_from_slice(&sum.to_le_bytes());
        Ok(Bytes::from(out))
    }

    /// Decodes and checks an envelope stored at `storage_key`. An unencrypted entry is opened
    /// here, synchronously: checksum, decompression, the serialized value and the serializer
    /// that wrote it. An encrypted one is checked as far as it can be without its key, and
    /// [`Opened::Sealed`] names the key version to fetch for [`open_sealed`](Self::open_sealed).
    ///
    /// The order is the error rule of `docs/wire-format.md`: nothing the header claims is
    /// reported as a property of the entry before the checksum or the AEAD tag has verified
    /// it. A failed verification is [`Integrity`](ErrorKind::Integrity); only then come unknown
    /// flags and ids ([`UnsupportedFormat`](ErrorKind::UnsupportedFormat)), the serialized
    /// length ([`ValueTooLarge`](ErrorKind::ValueTooLarge)) and the type fingerprint
    /// ([`SchemaMismatch`](ErrorKind::SchemaMismatch)). An encrypted entry naming another key
    /// id than `key_id` (the scope's) is [`Integrity`](ErrorKind::Integrity) without asking the
    /// key manager: a forged header must not drive key lookups.
    ///
    /// Split this way so that a plain read's future holds no envelope state across an await
    /// (an `async fn` over both paths was 328 bytes, copied with every operation's future).
    pub(crate) fn open<'a>(
        &self,
        bytes: &'a [u8],
        storage_key: &str,
        expected_fingerprint: u64,
        key_id: &str,
    ) -> Result<Opened<'a, '_>> {
        let env = envelope::parse(bytes)?;
        let h = &env.header;
        if h.is_encrypted() {
            self.sealed_checks(&env)?;
            if h.key_id != key_id {
                return Err(Error::integrity(
                    "entry names a key id this scope does not seal under",
                ));
            }
            return Ok(Opened::Sealed {
                key_id: h.key_id,
                version: h.key_version,
            });
        }
        if self.encryptor.is_some() && !self.accept_unencrypted {
            return Err(Error::integrity(
                "entry is not encrypted but this cache only accepts encrypted entries",
            ));
        }
        if env.checksum != Some(envelope::checksum(env.header_bytes, storage_key, env.body)) {
            return Err(Error::integrity("entry checksum does not match"));
        }
        let serializer = self.verified(&env, expected_fingerprint)?;
        if !h.is_compressed() {
            return Ok(Opened::Plain(Cow::Borrowed(env.body), serializer));
        }
        let plain = self.decompress(h, env.body)?;
        Ok(Opened::Plain(Cow::Owned(plain), serializer))
    }

    /// The checks of a verified entry's claims (see [`open`](Self::open)); the serializer that
    /// wrote it.
    fn verified(
        &self,
        env: &envelope::Envelope<'_>,
        expected_fingerprint: u64,
    ) -> Result<SerializerRef<'_>> {
        env.check_claims(self.max_value_size)?;
        let h = &env.header;
        let serializer = self.serializer_for(h.serializer)?;
        if expected_fingerprint != 0 && h.fingerprint != 0 && h.fingerprint != expected_fingerprint
        {
            return Err(Error::new(
                ErrorKind::SchemaMismatch,
                "entry was written for another type",
            ));
        }
        Ok(serializer)
    }

    /// The serializer that wrote an entry with serializer id `id`: the cache's own, or one it
    /// was told to [accept](crate::MemStacheBuilder::accept_serializer). Any other id is
    /// [`UnsupportedFormat`](ErrorKind::UnsupportedFormat), even for a serializer compiled in:
    /// each format has its own decoder, with its own limits, and a cache decodes stored bytes
    /// only with the formats it was configured for.
    pub(crate) fn serializer_for(&self, id: u8) -> Result<SerializerRef<'_>> {
        if id == self.serializer.id() {
            return Ok(self.own_serializer());
        }
        match self.accepted.iter().find(|s| s.id() == id) {
            Some(s) => Ok(SerializerRef::Own(s.as_ref())),
            None => Err(Error::new(
                ErrorKind::UnsupportedFormat,
                format!(
                    "entry was written with serializer id {id}, which this cache does not read (see accept_serializer)"
                ),
            )),
        }
    }

    /// Everything about an encrypted entry that can be checked without its key.
    fn sealed_checks(&self, env: &envelope::Envelope<'_>) -> Result<&dyn Encryptor> {
        let h = &env.header;
        let (Some(enc), Some(_)) = (&self.encryptor, &self.key_manager) else {
            return Err(Error::new(
                ErrorKind::UnsupportedFormat,
                "entry is encrypted but this cache has no encryptor and key manager",
            ));
        };
        if enc.id() != h.cipher {
            return Err(Error::new(
                ErrorKind::UnsupportedFormat,
                format!(
                    "entry was sealed with cipher id {}, which this cache does not have",
                    h.cipher
                ),
            ));
        }
        if h.nonce.len() != enc.nonce_len() || env.body.len() < enc.tag_len() {
            return Err(Error::integrity(
                "entry's nonce or body does not fit its cipher",
            ));
        }
        if env.body.len() > self.max_value_size.saturating_add(enc.tag_len()) {
            return Err(too_large());
        }
        Ok(enc.as_ref())
    }

    /// The key version an [`Opened::Sealed`] entry names. Returns the key manager's (boxed)
    /// future itself, so the reader's future holds 16 bytes for it.
    pub(crate) fn entry_key<'a>(
        &'a self,
        key_id: &'a str,
        version: u32,
    ) -> Pin<Box<dyn Future<Output = Result<Arc<KeyVersion>>> + Send + 'a>> {
        match &self.key_manager {
            Some(km) => key_call(self.key_manager_timeout, km.key(key_id, version)),
            None => Box::pin(std::future::ready(Err(Error::new(
                ErrorKind::UnsupportedFormat,
                "entry is encrypted but this cache has no encryptor and key manager",
            )))),
        }
    }

    /// Opens an encrypted entry with the key version [`open`](Self::open) named: decrypts
    /// (authenticating header, storage key and body), then decompresses. It decodes the
    /// header again rather than receiving it from `open`: keeping the decoded envelope across
    /// the key lookup would put it back into every read's future, and the second decode costs
    /// a few hundred instructions next to the decryption.
    pub(crate) fn open_sealed<'a>(
        &self,
        bytes: &'a [u8],
        storage_key: &str,
        key: &KeyVersion,
        expected_fingerprint: u64,
    ) -> Result<(Cow<'a, [u8]>, SerializerRef<'_>)> {
        let env = envelope::parse(bytes)?;
        let h = &env.header;
        let enc = self.sealed_checks(&env)?;
        let mut buf = env.body.to_vec();
        let n = with_aad(env.header_bytes, storage_key, |aad| {
            enc.open_in_place(key.material.expose(), h.nonce, aad, &mut buf)
        })?;
        buf.truncate(n);
        let serializer = self.verified(&env, expected_fingerprint)?;
        let plain = if h.is_compressed() {
            self.decompress(h, &buf)?
        } else {
            buf
        };
        if plain.len() != h.plain_len as usize {
            return Err(Error::integrity("entry length does not match its header"));
        }
        Ok((Cow::Owned(plain), serializer))
    }

    fn decompress(&self, h: &envelope::Header<'_>, payload: &[u8]) -> Result<Vec<u8>> {
        let c = self
            .compressor
            .as_ref()
            .filter(|c| c.id() == h.compressor)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::UnsupportedFormat,
                    format!(
                        "entry was compressed with compressor id {}, which this cache does not have",
                        h.compressor
                    ),
                )
            })?;
        let mut out = Vec::with_capacity(h.plain_len as usize);
        c.decompress(payload, h.plain_len as usize, &mut out)?;
        if out.len() != h.plain_len as usize {
            return Err(Error::integrity("entry length does not match its header"));
        }
        Ok(out)
    }
}

/// What [`Pipeline::open`] made of an entry.
pub(crate) enum Opened<'a, 's> {
    /// An unencrypted entry, checked: the serialized value and its serializer.
    Plain(Cow<'a, [u8]>, SerializerRef<'s>),
    /// An encrypted entry whose checks so far passed; open it with this key version.
    Sealed { key_id: &'a str, version: u32 },
}

/// The serializer an entry was written with: the cache's own or an accepted one (borrowed: no
/// reference-count traffic on the hot path), or one of memstache's, which is decoded with a
/// typed call.
pub(crate) enum SerializerRef<'a> {
    Own(&'a dyn Serializer),
    /// The cache's own serializer, one of memstache's built-in ones.
    Builtin(Builtin),
}

impl SerializerRef<'_> {
    /// Deserializes `bytes` into `T`. A built-in serializer is called directly: going through
    /// erased-serde costs a dynamic call per serde method and a boxed `Out` value per
    /// decoded value larger than two words (a `String`, most structs). Same errors either way.
    /// Values nested deeper than `max_depth` are a
    /// [`Serialization`](ErrorKind::Serialization) error (see [`crate::depth`]).
    pub(crate) fn deserialize_typed<T: DeserializeOwned>(
        &self,
        bytes: &[u8],
        max_depth: usize,
    ) -> Result<T> {
        match self {
            SerializerRef::Own(s) => deserialize_with(*s, bytes, max_depth),
            SerializerRef::Builtin(b) => b.read(bytes, max_depth),
        }
    }
}

/// The error of a value that did not decode; `too_deep` when the depth limit stopped it.
pub(crate) fn decode_error(too_deep: bool, max_depth: usize) -> Error {
    if too_deep {
        Error::new(
            ErrorKind::Serialization,
            format!("stored value is nested deeper than {max_depth} levels"),
        )
    } else {
        Error::new(
            ErrorKind::Serialization,
            "stored value does not decode as the requested type",
        )
    }
}

/// Deserializes `bytes` with `serializer` into `T`.
/// Every serializer's deserializer, a user's too, is wrapped in the depth limit here.
pub(crate) fn deserialize_with<T: DeserializeOwned>(
    serializer: &dyn Serializer,
    bytes: &[u8],
    max_depth: usize,
) -> Result<T> {
    use crate::depth::{DepthLimited, Limit};
    let mut out: Option<T> = None;
    let too_deep = std::cell::Cell::new(false);
    serializer.deserialize(bytes, &mut |de| {
        let limited = DepthLimited::new(de, Limit::new(max_depth, &too_deep));
        out = Some(T::deserialize(limited).map_err(|_| decode_error(too_deep.get(), max_depth))?);
        Ok(())
    })?;
    out.ok_or_else(|| Error::internal("serializer did not produce a value"))
}

/// A 64-bit fingerprint of a type's name (never 0), written into envelopes: it must be the
/// same in every process and version, so it is its own unkeyed hash (FNV-1a with the splitmix64
/// finaliser), not the per-process keyed hash of logs and sharding.
pub(crate) fn fingerprint_of<T: ?Sized>() -> u64 {
    let mut h = Fnv::new();
    h.write(std::any::type_name::<T>().as_bytes());
    h.finish()
}

/// FNV-1a over bytes with the splitmix64 finaliser, never 0: the same in every process and
/// version (fingerprints are compared across deploys), so no keyed or seeded hash. Not
/// collision resistant against an adversary, which it need not be: the fingerprint sits in
/// the authenticated header, and only an accidental collision (2^-64) could let a changed
/// type through to its `Deserialize`, which still bounds what it reads.
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    pub(crate) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        (h ^ (h >> 31)).max(1)
    }
}
