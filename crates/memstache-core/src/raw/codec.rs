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
/// # Contract
///
/// * [`id`](Self::id) is written into every envelope and MUST be stable; 0 means "none".
/// * `seal` encrypts `in_out` in place and appends the tag; `open` verifies and decrypts in place
///   and removes the tag. Any change to the ciphertext, tag, nonce, AAD or key MUST make `open`
///   fail with [`ErrorKind::Integrity`](crate::ErrorKind::Integrity), leaving no plaintext
///   behind in `in_out`.
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
    /// Nonce length in bytes.
    fn nonce_len(&self) -> usize;
    /// Tag length in bytes.
    fn tag_len(&self) -> usize;
    /// Fills `nonce` (of [`nonce_len`](Self::nonce_len) bytes) with a fresh random nonce.
    fn fill_nonce(&self, nonce: &mut [u8]) -> Result<()>;
    /// Encrypts `in_out` in place under `key`, binding `aad`, and appends the tag.
    fn seal(&self, key: &[u8], nonce: &[u8], aad: &[u8], in_out: &mut Vec<u8>) -> Result<()>;
    /// Verifies and decrypts `in_out` in place and truncates the tag.
    fn open(&self, key: &[u8], nonce: &[u8], aad: &[u8], in_out: &mut Vec<u8>) -> Result<()>;
}
