//! AES-256-GCM on ring.

use memstache_core::Result;
use memstache_core::raw::Encryptor;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroize;

use crate::error::{crypto, integrity};

/// Key length of AES-256.
const KEY_LEN: usize = 32;
/// GCM tag length.
const TAG_LEN: usize = 16;

/// AES-256-GCM (ring). Envelope cipher id **1**; 32-byte keys, 96-bit nonces, 128-bit tags.
///
/// Nonces are random, drawn from the operating system's CSPRNG for every value
/// ([`fill_nonce`](Encryptor::fill_nonce)). With random 96-bit nonces keep each key version under
/// 2<sup>32</sup> encryptions (the NIST SP 800-38D bound): rotate the key well before — see
/// `docs/security.md` for the arithmetic.
///
/// ```
/// use memstache_core::ErrorKind;
/// use memstache_core::raw::Encryptor;
/// use memstache_aes::Aes256Gcm;
///
/// let aes = Aes256Gcm::default();
/// let key = [7u8; 32];
/// let mut nonce = [0u8; 12];
/// aes.fill_nonce(&mut nonce)?;
///
/// let mut buf = b"value".to_vec();
/// let mut tag = [0u8; 16];
/// aes.seal_in_place(&key, &nonce, b"aad", &mut buf, &mut tag)?;
/// buf.extend_from_slice(&tag); // ciphertext, then tag
///
/// // Another AAD (say, another storage key) does not authenticate, and leaves no plaintext.
/// let mut moved = buf.clone();
/// let err = aes.open_in_place(&key, &nonce, b"other aad", &mut moved).unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Integrity);
/// assert!(moved.iter().all(|&b| b == 0));
///
/// let len = aes.open_in_place(&key, &nonce, b"aad", &mut buf)?;
/// assert_eq!(&buf[..len], b"value");
/// # Ok::<(), memstache_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Aes256Gcm {
    rng: SystemRandom,
}

impl Default for Aes256Gcm {
    fn default() -> Self {
        Aes256Gcm {
            rng: SystemRandom::new(),
        }
    }
}

impl Aes256Gcm {
    /// AES-256-GCM with the system random source (the same as [`Default`]).
    ///
    /// ```
    /// let aes = memstache_aes::Aes256Gcm::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

/// The ring key for `key`, or a `Crypto` error for a wrong length.
fn ring_key(key: &[u8]) -> Result<LessSafeKey> {
    if key.len() != KEY_LEN {
        return Err(crypto("AES-256-GCM needs a 32-byte key"));
    }
    let unbound = UnboundKey::new(&AES_256_GCM, key)
        .map_err(|e| crypto("cannot use this AES-256-GCM key").with_source(e))?;
    Ok(LessSafeKey::new(unbound))
}

impl Encryptor for Aes256Gcm {
    fn id(&self) -> u8 {
        1
    }

    fn name(&self) -> &'static str {
        "aes-256-gcm"
    }

    fn key_len(&self) -> usize {
        KEY_LEN
    }

    fn nonce_len(&self) -> usize {
        NONCE_LEN
    }

    fn tag_len(&self) -> usize {
        TAG_LEN
    }

    fn fill_nonce(&self, nonce: &mut [u8]) -> Result<()> {
        if nonce.len() != NONCE_LEN {
            return Err(crypto("AES-256-GCM nonces are 12 bytes"));
        }
        self.rng
            .fill(nonce)
            .map_err(|e| crypto("the system random source failed").with_source(e))
    }

    fn seal_in_place(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        data: &mut [u8],
        tag: &mut [u8],
    ) -> Result<()> {
        let key = ring_key(key)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| crypto("AES-256-GCM nonces are 12 bytes"))?;
        if tag.len() != TAG_LEN {
            return Err(crypto("AES-256-GCM tags are 16 bytes"));
        }
        let computed = key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), data)
            .map_err(|e| crypto("AES-256-GCM cannot seal this much data").with_source(e))?;
        tag.copy_from_slice(computed.as_ref());
        Ok(())
    }

    fn open_in_place(
        &self,
        key: &[u8],
        nonce: &[u8],
        aad: &[u8],
        data_and_tag: &mut [u8],
    ) -> Result<usize> {
        let result = open(key, nonce, aad, data_and_tag);
        if result.is_err() {
            // ring leaves the buffer in an unspecified state on failure: never leave plaintext.
            data_and_tag.zeroize();
        }
        result
    }
}

fn open(key: &[u8], nonce: &[u8], aad: &[u8], data_and_tag: &mut [u8]) -> Result<usize> {
    let key = ring_key(key)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| crypto("AES-256-GCM nonces are 12 bytes"))?;
    if data_and_tag.len() < TAG_LEN {
        return Err(integrity(None));
    }
    key.open_in_place(nonce, Aad::from(aad), data_and_tag)
        .map(|plain| plain.len())
        .map_err(|e| integrity(Some(e)))
}
