//! The key-management SPI.

use std::fmt;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::Result;

/// Secret key bytes. Zeroed on drop; `Debug` never shows them.
///
/// ```
/// use memstache_core::raw::SecretKey;
/// let k = SecretKey::new(vec![7u8; 32]);
/// assert_eq!(k.expose().len(), 32);
/// assert!(!format!("{k:?}").contains('7'));
/// ```
pub struct SecretKey(zeroize::Zeroizing<Box<[u8]>>);

impl SecretKey {
    /// Wraps key bytes, taking ownership of the vector: no copy of them is left behind in
    /// freed memory (a vector with spare capacity is copied into an exact allocation and then
    /// zeroed, capacity included). Zero any other copy you made yourself.
    pub fn new(mut bytes: Vec<u8>) -> Self {
        use zeroize::Zeroize;
        let exact: Box<[u8]> = if bytes.len() == bytes.capacity() {
            // No reallocation: the box takes the vector's own buffer.
            bytes.into_boxed_slice()
        } else {
            // `into_boxed_slice` would shrink by reallocating and free the old buffer as is.
            let copy = Box::from(bytes.as_slice());
            bytes.zeroize();
            copy
        };
        SecretKey(zeroize::Zeroizing::new(exact))
    }
    /// The key bytes. Only an [`Encryptor`](super::Encryptor) should look at them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    /// The key length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether the key is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey([REDACTED; {} bytes])", self.0.len())
    }
}

/// One version of a key: its id, version number and material.
#[derive(Debug)]
pub struct KeyVersion {
    /// The key id (`"default"`, `"tenant:acme"`).
    pub key_id: String,
    /// The version, starting at 1 and increasing with every rotation.
    pub version: u32,
    /// The secret bytes.
    pub material: SecretKey,
}

/// Source of encryption keys, with rotation and destruction.
///
/// # Contract
///
/// * Key ids are ASCII, 1–64 bytes of `[A-Za-z0-9._:-]` (they are written into envelopes).
/// * `current_key(id)` returns the newest version, creating version 1 of an unknown id when the
///   manager can (local key ring); otherwise [`KeyNotFound`](crate::ErrorKind::KeyNotFound).
/// * `key(id, v)` returns exactly version `v`: [`KeyNotFound`](crate::ErrorKind::KeyNotFound)
///   when unknown, [`KeyDestroyed`](crate::ErrorKind::KeyDestroyed) after `destroy_key(id)`.
/// * `rotate_key(id)` makes a new version current and returns it; older versions stay
///   readable through `key(id, v)`.
/// * `destroy_key(id)` makes every version of `id` unavailable forever, including on other
///   clones of the manager and, for remote managers, on other processes once their caches
///   expire. A later `current_key(id)` is `KeyDestroyed` too.
/// * Key material MUST NOT appear in errors, logs or `Debug`.
#[async_trait]
pub trait KeyManager: Debug + Send + Sync + 'static {
    /// The newest version of `key_id`.
    async fn current_key(&self, key_id: &str) -> Result<Arc<KeyVersion>>;
    /// Exactly `version` of `key_id`.
    async fn key(&self, key_id: &str, version: u32) -> Result<Arc<KeyVersion>>;
    /// Creates and returns a new current version of `key_id`.
    async fn rotate_key(&self, key_id: &str) -> Result<Arc<KeyVersion>>;
    /// Destroys every version of `key_id` (crypto-shredding).
    async fn destroy_key(&self, key_id: &str) -> Result<()>;
}

/// Checks a key id against the documented charset and length.
///
/// ```
/// use memstache_core::raw::validate_key_id;
/// assert!(validate_key_id("tenant:acme-1").is_ok());
/// assert!(validate_key_id("").is_err());
/// assert!(validate_key_id("has space").is_err());
/// ```
pub fn validate_key_id(key_id: &str) -> Result<()> {
    let ok = !key_id.is_empty()
        && key_id.len() <= 64
        && key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(crate::Error::new(
            crate::ErrorKind::InvalidConfig,
            "key id must be 1-64 bytes of [A-Za-z0-9._:-]",
        ))
    }
}
