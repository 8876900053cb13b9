//! The codec SPI: serializers, compressors and encryptors.

use std::fmt::Debug;

use crate::Result;

/// A data format for typed values (postcard, MessagePack, JSON, your own).
///
/// Object-safe through [`erased_serde`]: the pipeline hands a `&dyn erased_serde::Serialize`
/// and receives values through a callback that gets an erased deserializer.
///
/// # Contract
///
/// * [`id`](Self::id) is written into every envelope and MUST be stable forever; ids 0–127 are
///   reserved for memstache, use 128–255 for your own formats.
/// * `deserialize` MUST reject trailing bytes and MUST NOT panic on any input (errors are
///   [`ErrorKind::Serialization`](crate::ErrorKind::Serialization)).
/// * Implementations MUST NOT put values into error messages.
pub trait Serializer: Debug + Send + Sync + 'static {
    /// Stable id written into the envelope.
    fn id(&self) -> u8;

    /// A short name for docs and spans (`"postcard"`).
    fn name(&self) -> &'static str;

    /// Appends the encoding of `value` to `out`.
    fn serialize(&self, value: &dyn erased_serde::Serialize, out: &mut Vec<u8>) -> Result<()>;

    /// Builds a deserializer over `bytes` and passes it to `visit`, which decodes the typed value.
    /// Implementations MUST then check that every byte was consumed.
    fn deserialize(
        &self,
        bytes: &[u8],
        visit: &mut dyn FnMut(&mut dyn erased_serde::Deserializer<'_>) -> Result<()>,
    ) -> Result<()>;
}

/// A compression codec (gzip, zstd, your own).
///
/// # Contract
///
/// * [`id`](Self::id) is written into every envelope and MUST be stable; 0 means "none", 1–127
///   are reserved for memstache, 128–255 are yours.
/// * `decompress` MUST stop with [`ErrorKind::ValueTooLarge`](crate::ErrorKind::ValueTooLarge)
///   as soon as the output would exceed `max_len` (a decompression bomb costs at most `max_len`
///   bytes of memory), and MUST NOT panic on any input (corrupt input is
///   [`ErrorKind::Compression`](crate::ErrorKind::Compression)).
/// * Compressors SHOULD keep reusable contexts per thread or in a pool: one-shot contexts cost
///   several times more for small values.
pub trait Compressor: Debug + Send + Sync + 'static {
    /// Stable id written into the envelope (never 0).
    fn id(&self) -> u8;

    /// A short name (`"zstd"`).
    fn name(&self) -> &'static str;

    /// Appends the compressed form of `input` to `out`.
    fn compress(&self, input: &[u8], out: &mut Vec<u8>) -> Result<()>;

    /// Appends the decompressed form of `input` to `out`, failing once it would exceed `max_len`.
    fn decompress(&self, input: &[u8], max_len: usize, out: &mut Vec<u8>) -> Result<()>;
}

/// An authenticated cipher (AEAD), such as AES-256-GCM.
///
/// The pipeline encrypts the envelope body in place inside the envelope buffer, so both
/// operations work on slices: `seal_in_place` encrypts `data` and writes the tag into `tag`;
/// `open_in_place` verifies `data_and_tag` (ciphertext followed by the tag), decrypts the
/// ciphertext part in place and returns the plaintext length.
///
/// # Contract
///
/// * [`id`](Self::id) is written into every envelope and MUST be stable; 0 means "none".
/// * Any change to the ciphertext, tag, nonce, AAD or key MUST make `open_in_place` fail with
///   [`ErrorKind::Integrity`](crate::ErrorKind::Integrity); on failure the buffer MUST NOT be
///   left holding plaintext (zero it).
/// * Wrong key or nonce *lengths* are [`ErrorKind::Crypto`](crate::ErrorKind::Crypto) errors,
///   never panics.
/// * `fill_nonce` MUST produce a fresh nonce from a cryptographically secure source for every
///   call (nonce reuse under one key breaks GCM).
/// * Implementations MUST NOT log or format key material.
pub trait Encryptor: Debug + Send + Sync + 'static {
    /// Stable id written into the envelope (never 0).
    fn id(&self) -> u8;
    /// A short name (`"aes-256-gcm"`).
    fn name(&self) -> &'static str;
    /// Key length in bytes.
    fn key_len(&self) -> usize;
    /// Nonce length in bytes (at most 32).
    fn nonce_len(&self) -> usize;
    /// Tag length in bytes.
    fn tag_len(&self) -> usize;
    /// Fills `nonce` (of [`nonce_len`](Self::nonce_len) bytes) with a fresh random nonce.
    fn fill_nonce(&self, nonce: &mut [u8]) -> Result<()>;
    /// Encrypts `data` in place under `key`, binding `aad`, and writes the tag into `tag`
    /// (of [`tag_len`](Self::tag_len) bytes).
    fn seal_in_place(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8],
    ) -> Result<()>;
    /// Verifies `data_and_tag` (ciphertext then tag), decrypts the ciphertext in place and
    /// returns the plaintext length (the plaintext is `data_and_tag[..len]`).
    fn open_in_place(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        data_and_tag: &mut [u8],
    ) -> Result<usize>;
}
