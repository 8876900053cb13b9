//! The envelope: the self-describing, versioned bytes memstache stores for every entry.
//!
//! The exact layout is documented byte for byte in `docs/wire-format.md`; in short
//! (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 3 | magic `MSC` |
//! | 3 | 1 | format version (1) |
//! | 4 | 1 | flags (bit 0 compressed, 1 encrypted, 2 fingerprint, 3 checksum) |
//! | 5 | 1 | serializer id |
//! | 6 | 1 | compressor id (0 = none) |
//! | 7 | 1 | cipher id (0 = none) |
//! | 8 | 8 | created at, ms since the Unix epoch |
//! | 16 | 8 | absolute deadline, ms since the epoch (0 = none) |
//! | 24 | 8 | sliding window, ms (0 = none) |
//! | 32 | 8 | type fingerprint (0 = none) |
//! | 40 | 4 | serialized length (before compression and encryption) |
//! | 44 | 1 | key id length *k* (0 when not encrypted) |
//! | 45 | *k* | key id (ASCII) |
//! | 45+*k* | 4 | key version (0 when not encrypted) |
//! | 49+*k* | 1 | nonce length *n* (0 when not encrypted) |
//! | 50+*k* | *n* | nonce |
//! | 50+*k*+*n* | … | body: the payload, then the AEAD tag when encrypted, or a 4-byte CRC-32 trailer when not |
//!
//! Decoding never panics on any input and never allocates: [`decode`] and [`parse`] borrow
//! from the input.

use crate::{Error, ErrorKind, Result};

/// The first three bytes of every envelope.
pub const MAGIC: [u8; 3] = *b"MSC";
/// The envelope format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Offset of the absolute deadline (u64 LE, ms since the epoch, 0 = none). Backends that
/// re-arm sliding windows server-side (the Redis Lua script) read it.
pub const DEADLINE_OFFSET: usize = 16;
/// Offset of the sliding window (u64 LE, ms, 0 = none).
pub const SLIDING_OFFSET: usize = 24;
/// Length of the header of an unencrypted envelope (the smallest header).
pub const MIN_HEADER_LEN: usize = 50;
/// Length of the checksum trailer of an unencrypted envelope.
pub const CHECKSUM_LEN: usize = 4;
/// Longest nonce an envelope can carry.
pub const MAX_NONCE_LEN: usize = 32;
/// Longest key id an envelope can carry.
pub const MAX_KEY_ID_LEN: usize = 64;

/// Flag bit: the payload is compressed.
pub const FLAG_COMPRESSED: u8 = 1 << 0;
/// Flag bit: the payload is encrypted (the body ends with the AEAD tag).
pub const FLAG_ENCRYPTED: u8 = 1 << 1;
/// Flag bit: the type fingerprint field is set.
pub const FLAG_FINGERPRINT: u8 = 1 << 2;
/// Flag bit: the body ends with a CRC-32 trailer (always set when not encrypted).
pub const FLAG_CHECKSUM: u8 = 1 << 3;
/// Flag bit: the entry is read-through's "not found" marker (negative caching): the source
/// had nothing for the key. Its payload is the serialized unit value `()`; readers report it as
/// a miss that needs no load. Readers that predate the bit refuse the entry as
/// `UnsupportedFormat` (and `get_or_set` then reloads and overwrites it).
pub const FLAG_ABSENT: u8 = 1 << 4;
const KNOWN_FLAGS: u8 =
    FLAG_COMPRESSED | FLAG_ENCRYPTED | FLAG_FINGERPRINT | FLAG_CHECKSUM | FLAG_ABSENT;

/// The decoded header of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// Flag bits (`FLAG_*`).
    pub flags: u8,
    /// Serializer id.
    pub serializer: u8,
    /// Compressor id, 0 = none.
    pub compressor: u8,
    /// Cipher id, 0 = none.
    pub cipher: u8,
    /// Created at, ms since the epoch.
    pub created_at_ms: u64,
    /// Absolute deadline, ms since the epoch, 0 = none.
    pub deadline_ms: u64,
    /// Sliding window in ms, 0 = none.
    pub sliding_ms: u64,
    /// Type fingerprint, 0 = none.
    pub fingerprint: u64,
    /// Length of the serialized value before compression and encryption.
    pub plain_len: u32,
    /// Key id (empty when not encrypted).
    pub key_id: &'a str,
    /// Key version (0 when not encrypted).
    pub key_version: u32,
    /// Nonce (empty when not encrypted).
    pub nonce: &'a [u8],
}

impl Header<'_> {
    /// Whether the payload is compressed.
    pub fn is_compressed(&self) -> bool {
        self.flags & FLAG_COMPRESSED != 0
    }
    /// Whether the payload is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTED != 0
    }
    /// The encoded length of this header.
    pub fn encoded_len(&self) -> usize {
        MIN_HEADER_LEN + self.key_id.len() + self.nonce.len()
    }

    /// Appends the encoded header to `out`.
    ///
    /// # Panics
    ///
    /// Never for headers built by memstache; a key id over [`MAX_KEY_ID_LEN`] or a nonce over
    /// [`MAX_NONCE_LEN`] bytes is truncated in the length byte and a debug assertion fires.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        self.encode_to(out);
    }

    /// Writes the encoded header into `out` (a `Vec<u8>`, or a `&mut [u8]` left for it in
    /// front of a payload).
    ///
    /// # Panics
    ///
    /// When `out` has less than [`encoded_len`](Self::encoded_len) bytes of room (a slice
    /// too short); as [`encode`](Self::encode) for over-long key ids and nonces.
    pub fn encode_to(&self, out: &mut impl bytes::BufMut) {
        debug_assert!(self.key_id.len() <= MAX_KEY_ID_LEN && self.nonce.len() <= MAX_NONCE_LEN);
        out.put_slice(&MAGIC);
        out.put_u8(FORMAT_VERSION);
        out.put_u8(self.flags);
        out.put_u8(self.serializer);
        out.put_u8(self.compressor);
        out.put_u8(self.cipher);
        out.put_u64_le(self.created_at_ms);
        out.put_u64_le(self.deadline_ms);
        out.put_u64_le(self.sliding_ms);
        out.put_u64_le(self.fingerprint);
        out.put_u32_le(self.plain_len);
        out.put_u8(u8::try_from(self.key_id.len()).unwrap_or(u8::MAX));
        out.put_slice(self.key_id.as_bytes());
        out.put_u32_le(self.key_version);
        out.put_u8(u8::try_from(self.nonce.len()).unwrap_or(u8::MAX));
        out.put_slice(self.nonce);
    }
}

/// A decoded envelope, borrowing from the stored bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// The header fields.
    pub header: Header<'a>,
    /// The raw header bytes (part of the AAD and of the checksum).
    pub header_bytes: &'a [u8],
    /// The body: payload (plus tag when encrypted), without the checksum trailer.
    pub body: &'a [u8],
    /// The checksum trailer value, when present.
    pub checksum: Option<u32>,
}

/// Length of the fixed part of the header: magic, version, flags, the three codec ids, the
/// four `u64` fields, `plain_len` and the key id's length byte.
const FIXED_LEN: usize = 45;

/// The little-endian `u64` at `at`, a constant offset inside the fixed-size array `b` (so the
/// bounds are known when it is inlined).
fn le_u64<const N: usize>(b: &[u8; N], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn le_u32<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn truncated() -> Error {
    Error::integrity("stored entry is truncated or malformed")
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }
}

/// Reads the deadline and sliding window from the fixed part of an envelope without decoding
/// the rest; `None` when `bytes` is not a v1 envelope. Backends use it to enforce sliding
/// expiration for values they only see as bytes.
///
/// ```
/// use memstache_core::envelope::{peek_expiry, Header, FLAG_CHECKSUM};
/// let h = Header { flags: FLAG_CHECKSUM, serializer: 1, compressor: 0, cipher: 0,
///     created_at_ms: 1, deadline_ms: 9_000, sliding_ms: 500, fingerprint: 0, plain_len: 0,
///     key_id: "", key_version: 0, nonce: &[] };
/// let mut bytes = Vec::new();
/// h.encode(&mut bytes);
/// assert_eq!(peek_expiry(&bytes), Some((9_000, 500)));
/// assert_eq!(peek_expiry(b"junk"), None);
/// ```
pub fn peek_expiry(bytes: &[u8]) -> Option<(u64, u64)> {
    let head = bytes.first_chunk::<{ SLIDING_OFFSET + 8 }>()?;
    if head[..3] != MAGIC || head[3] != FORMAT_VERSION {
        return None;
    }
    Some((le_u64(head, DEADLINE_OFFSET), le_u64(head, SLIDING_OFFSET)))
}

/// The creation time (ms since the epoch) of an envelope, read from its header without
/// decoding it; `None` when `bytes` is not an envelope of this format version. Like
/// [`peek_expiry`], unverified: use it only for decisions a forged value cannot abuse (eager
/// refresh timing), or after the entry was opened.
pub fn peek_created(bytes: &[u8]) -> Option<u64> {
    let head = bytes.first_chunk::<{ DEADLINE_OFFSET }>()?;
    if head[..3] != MAGIC || head[3] != FORMAT_VERSION {
        return None;
    }
    Some(le_u64(head, 8))
}

/// Whether `bytes` is an envelope of this format version with [`FLAG_ABSENT`] set, read from
/// its header without decoding it. Unverified: a reader opens the entry (checksum or AEAD)
/// before it believes the flag.
pub fn peek_absent(bytes: &[u8]) -> bool {
    bytes
        .first_chunk::<5>()
        .is_some_and(|h| h[..3] == MAGIC && h[3] == FORMAT_VERSION && h[4] & FLAG_ABSENT != 0)
}

/// Decodes an envelope, checking its structure and bounds: [`parse`], then
/// [`Envelope::check_claims`].
///
/// `max_value_size` bounds the serialized length the header may claim: a larger claim is a
/// [`ValueTooLarge`](ErrorKind::ValueTooLarge) error before anything is allocated. The checksum
/// and the AEAD tag are *not* verified here (they need the storage key); the pipeline does it,
/// and it checks the claims only **after** verifying them (see [`parse`]).
///
/// Errors: [`Integrity`](ErrorKind::Integrity) for anything malformed or truncated,
/// [`UnsupportedFormat`](ErrorKind::UnsupportedFormat) for another format version or unknown
/// flag bits, [`ValueTooLarge`](ErrorKind::ValueTooLarge) for a serialized length over
/// `max_value_size`.
pub fn decode(bytes: &[u8], max_value_size: usize) -> Result<Envelope<'_>> {
    let env = parse(bytes)?;
    env.check_claims(max_value_size)?;
    Ok(env)
}

/// Parses an envelope's structure without judging what its header claims: the first step of a
/// read, before the checksum or AEAD tag is verified.
///
/// An unverified header may have been edited, so nothing it says is reported as a property of
/// the entry yet: anything malformed, truncated or inconsistent is
/// [`Integrity`](ErrorKind::Integrity). The one exception is a format version other than 1
/// ([`UnsupportedFormat`](ErrorKind::UnsupportedFormat)): this build cannot know that version's
/// layout, so it cannot verify the entry at all. Unknown flag bits and the serialized length
/// are left for [`Envelope::check_claims`], which the pipeline calls once the entry is verified.
/// Never panics, never allocates.
pub fn parse(bytes: &[u8]) -> Result<Envelope<'_>> {
    let mut r = Reader { bytes, pos: 0 };
    if r.take(3)? != MAGIC {
        return Err(Error::integrity("stored entry is not a memstache envelope"));
    }
    let version = r.u8()?;
    if version != FORMAT_VERSION {
        return Err(Error::new(
            ErrorKind::UnsupportedFormat,
            format!("envelope format version {version} is not supported (this build reads 1)"),
        ));
    }
    let flags = r.u8()?;
    // The fixed-size rest of the prefix, with one bounds check rather than one per field.
    let fixed = bytes.first_chunk::<FIXED_LEN>().ok_or_else(truncated)?;
    let serializer = fixed[5];
    let compressor = fixed[6];
    let cipher = fixed[7];
    let created_at_ms = le_u64(fixed, 8);
    let deadline_ms = le_u64(fixed, DEADLINE_OFFSET);
    let sliding_ms = le_u64(fixed, SLIDING_OFFSET);
    let fingerprint = le_u64(fixed, 32);
    let plain_len = le_u32(fixed, 40);
    let key_id_len = usize::from(fixed[44]);
    r.pos = FIXED_LEN;
    let key_id = r.take(key_id_len)?;
    let key_version = r.u32()?;
    let nonce_len = usize::from(r.u8()?);
    let nonce = r.take(nonce_len)?;
    let header_len = r.pos;

    let encrypted = flags & FLAG_ENCRYPTED != 0;
    let compressed = flags & FLAG_COMPRESSED != 0;
    let has_checksum = flags & FLAG_CHECKSUM != 0;
    let consistent = (compressed == (compressor != 0))
        && (encrypted == (cipher != 0))
        && (encrypted != has_checksum)
        && (encrypted == (key_id_len != 0))
        && (encrypted == (nonce_len != 0))
        && (encrypted || key_version == 0)
        && key_id_len <= MAX_KEY_ID_LEN
        && nonce_len <= MAX_NONCE_LEN
        && ((flags & FLAG_FINGERPRINT != 0) == (fingerprint != 0));
    if !consistent {
        return Err(Error::integrity("envelope header is inconsistent"));
    }
    let key_id = std::str::from_utf8(key_id).map_err(|_| truncated())?;
    if !key_id.is_empty() && crate::raw::validate_key_id(key_id).is_err() {
        return Err(Error::integrity("envelope key id is malformed"));
    }
    let rest = &bytes[header_len..];
    let (body, checksum) = if has_checksum {
        let split = rest.len().checked_sub(CHECKSUM_LEN).ok_or_else(truncated)?;
        let mut c = [0u8; 4];
        c.copy_from_slice(&rest[split..]);
        (&rest[..split], Some(u32::from_le_bytes(c)))
    } else {
        (rest, None)
    };
    if !compressed && !encrypted && body.len() != plain_len as usize {
        return Err(truncated());
    }
    Ok(Envelope {
        header: Header {
            flags,
            serializer,
            compressor,
            cipher,
            created_at_ms,
            deadline_ms,
            sliding_ms,
            fingerprint,
            plain_len,
            key_id,
            key_version,
            nonce,
        },
        header_bytes: &bytes[..header_len],
        body,
        checksum,
    })
}

impl Envelope<'_> {
    /// Checks what the header claims, once the entry is verified (checksum or AEAD): unknown
    /// flag bits are [`UnsupportedFormat`](ErrorKind::UnsupportedFormat) (a later writer's
    /// feature), a serialized length over `max_value_size` is
    /// [`ValueTooLarge`](ErrorKind::ValueTooLarge) (written by a cache with a larger limit).
    /// Before verification the same findings could be an attacker's edit, which reads as
    /// [`Integrity`](ErrorKind::Integrity) when the verification fails.
    pub fn check_claims(&self, max_value_size: usize) -> Result<()> {
        if self.header.flags & !KNOWN_FLAGS != 0 {
            return Err(Error::new(
                ErrorKind::UnsupportedFormat,
                "envelope has unknown flag bits",
            ));
        }
        if usize::try_from(self.header.plain_len).map_or(true, |n| n > max_value_size) {
            return Err(Error::new(
                ErrorKind::ValueTooLarge,
                "stored entry claims a value larger than the maximum value size",
            ));
        }
        Ok(())
    }
}

/// The checksum of an unencrypted envelope: CRC-32 (IEEE) over the header bytes, the storage
/// key's length (u32 LE) and bytes, and the body. Binding the storage key means an entry
/// copied to another key is detected even without encryption (against accidents, not
/// attackers: only encryption authenticates).
pub fn checksum(header_bytes: &[u8], storage_key: &str, body: &[u8]) -> u32 {
    let key_len = u32::try_from(storage_key.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    // One update for header, key length and key when they fit a small stack buffer: short
    // inputs take crc32fast's byte-wise path, so three of them cost more than the copy. The
    // buffer is zeroed on every call, so it is sized for the common key (up to 74 bytes
    // after a plain entry's 50-byte header), not for every key: at 128 bytes the zeroing is
    // four vector stores, above it a `memset` call.
    let prefix_len = header_bytes.len() + 4 + storage_key.len();
    let mut prefix = [0u8; 128];
    if prefix_len <= prefix.len() {
        let (hd, rest) = prefix.split_at_mut(header_bytes.len());
        hd.copy_from_slice(header_bytes);
        rest[..4].copy_from_slice(&key_len);
        rest[4..4 + storage_key.len()].copy_from_slice(storage_key.as_bytes());
        h.update(&prefix[..prefix_len]);
    } else {
        h.update(header_bytes);
        h.update(&key_len);
        h.update(storage_key.as_bytes());
    }
    h.update(body);
    h.finalize()
}

/// The AEAD associated data of an encrypted envelope: the header bytes, then the storage key's
/// length (u32 LE) and bytes. Editing any header field or moving the entry to another key
/// (namespace, tenant, generation, user key) makes authentication fail.
pub fn aad(header_bytes: &[u8], storage_key: &str, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(header_bytes.len() + 4 + storage_key.len());
    out.extend_from_slice(header_bytes);
    out.extend_from_slice(
        &u32::try_from(storage_key.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes(),
    );
    out.extend_from_slice(storage_key.as_bytes());
}

#[cfg(test)]
mod tests;
