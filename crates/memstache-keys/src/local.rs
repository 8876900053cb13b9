//! The in-process key manager.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use memstache_core::raw::{KeyManager, KeyVersion, SecretKey, validate_key_id};
use memstache_core::{Error, Result};
use parking_lot::RwLock;
use zeroize::Zeroizing;

use crate::error::{crypto, destroyed, keyring, not_found};
use crate::keyring::{self as ring_format, Entry, KEY_LEN};

/// An in-process key ring: 32-byte keys by key id and version, with rotation and
/// crypto-shredding.
///
/// Create it with [`generate`](Self::generate) (random keys, created on first use; fine for a
/// single process or tests) or load a shared ring with [`from_keyring_str`](Self::from_keyring_str),
/// [`from_env`](Self::from_env) or [`from_file`](Self::from_file) so that every node holds the same
/// keys.
///
/// # Key-ring format
///
/// One entry per line (or separated by `;`), blank lines and `#` comments ignored:
///
/// ```text
/// # <key_id> <version> <standard base64 of 32 random bytes: 44 characters>
/// default 1 <base64 key, version 1>
/// default 2 <base64 key, version 2>
/// # a crypto-shredded key id: it can never be used or re-created
/// destroyed tenant:gone
/// ```
///
/// Key ids are 1–64 bytes of `[A-Za-z0-9._:-]`, versions are 1 to 2<sup>32</sup>−1, and the
/// current version of an id is the highest one listed. Generate a key with
/// `openssl rand -base64 32` (or [`export_keyring`](Self::export_keyring)).
///
/// # Behaviour
///
/// * `current_key(id)` of an unknown id creates version 1 when *auto-create* is on (the default
///   for [`generate`](Self::generate), off for loaded rings: a node must not silently invent a
///   key that the other nodes do not have); otherwise it is `KeyNotFound`.
/// * `rotate_key(id)` adds a random version n+1 (version 1 for an unknown id) and makes it
///   current; old versions stay readable. Rotation happens in this process only: for a shared
///   ring, add the new version to the ring file of every node instead.
/// * `destroy_key(id)` drops every version (their bytes are zeroed once the last in-flight user
///   lets go) and remembers the id as destroyed: every later `key`/`current_key`/`rotate_key`
///   for it is `KeyDestroyed`.
/// * Clones share one ring (an `Arc` inside). `Debug` shows key ids and versions, never bytes.
///
/// ```
/// use memstache_core::ErrorKind;
/// use memstache_core::raw::KeyManager;
/// use memstache_keys::LocalKeyManager;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> memstache_core::Result<()> {
/// let keys = LocalKeyManager::generate();
/// let admin = keys.clone(); // same ring
/// let v1 = keys.current_key("orders").await?;
/// let v2 = admin.rotate_key("orders").await?;
/// assert_eq!((v1.version, v2.version), (1, 2));
/// assert_eq!(keys.current_key("orders").await?.version, 2);
/// assert_eq!(keys.key("orders", 1).await?.material.expose(), v1.material.expose());
///
/// admin.destroy_key("orders").await?;
/// let err = keys.key("orders", 2).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::KeyDestroyed);
/// assert!(format!("{keys:?}").contains("orders"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct LocalKeyManager {
    inner: Arc<Inner>,
}

struct Inner {
    ring: RwLock<BTreeMap<String, Entry>>,
    auto_create: AtomicBool,
}

impl LocalKeyManager {
    fn with_ring(ring: BTreeMap<String, Entry>, auto_create: bool) -> Self {
        LocalKeyManager {
            inner: Arc::new(Inner {
                ring: RwLock::new(ring),
                auto_create: AtomicBool::new(auto_create),
            }),
        }
    }

    /// An empty ring whose keys are generated in this process on first use (auto-create on).
    ///
    /// Entries sealed by one process cannot be read by another that generated its own keys: use
    /// a loaded ring for a distributed cache.
    ///
    /// ```
    /// let keys = memstache_keys::LocalKeyManager::generate();
    /// ```
    pub fn generate() -> Self {
        Self::with_ring(BTreeMap::new(), true)
    }

    /// A ring parsed from the key-ring format (see the [type docs](Self)). Auto-create is off.
    ///
    /// Errors are [`InvalidConfig`](memstache_core::ErrorKind::InvalidConfig) and name the bad
    /// entry by number, never by content.
    ///
    /// ```
    /// use memstache_keys::LocalKeyManager;
    /// let keys = LocalKeyManager::from_keyring_str(
    ///     "default 1 AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\ndestroyed old",
    /// )?;
    /// assert!(LocalKeyManager::from_keyring_str("default 1 dG9vIHNob3J0").is_err());
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    pub fn from_keyring_str(text: &str) -> Result<Self> {
        Ok(Self::with_ring(ring_format::parse(text)?, false))
    }

    /// A ring read from the environment variable `var` (entries may be separated by `;`).
    ///
    /// ```no_run
    /// // MEMSTACHE_KEYS="default 1 <base64>;default 2 <base64>"
    /// let keys = memstache_keys::LocalKeyManager::from_env("MEMSTACHE_KEYS")?;
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    pub fn from_env(var: &str) -> Result<Self> {
        let text = Zeroizing::new(std::env::var(var).map_err(|e| {
            keyring(format!(
                "cannot read the key ring from environment variable {var}"
            ))
            .with_source(e)
        })?);
        Self::from_keyring_str(&text)
    }

    /// A ring read from a file. Keep the file readable by the service's user only.
    ///
    /// ```no_run
    /// let keys = memstache_keys::LocalKeyManager::from_file("/etc/memstache/keyring")?;
    /// # Ok::<(), memstache_core::Error>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            keyring(format!("cannot read the key ring file {}", path.display())).with_source(e)
        })?);
        Self::from_keyring_str(&text)
    }

    /// Turns auto-create on or off for this ring and all its clones (see the [type docs](Self)).
    ///
    /// ```
    /// let keys = memstache_keys::LocalKeyManager::generate().with_auto_create(false);
    /// assert!(!keys.auto_create());
    /// ```
    #[must_use]
    pub fn with_auto_create(self, on: bool) -> Self {
        self.inner.auto_create.store(on, Ordering::SeqCst);
        self
    }

    /// Whether `current_key` creates version 1 of unknown key ids.
    ///
    /// ```
    /// assert!(memstache_keys::LocalKeyManager::generate().auto_create());
    /// ```
    pub fn auto_create(&self) -> bool {
        self.inner.auto_create.load(Ordering::SeqCst)
    }

    /// The whole ring in the key-ring format, **including key material**: for persisting a
    /// generated ring to a secret store. The text is zeroed when dropped.
    ///
    /// ```
    /// # use memstache_core::raw::KeyManager;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> memstache_core::Result<()> {
    /// use memstache_keys::LocalKeyManager;
    /// let keys = LocalKeyManager::generate();
    /// let v1 = keys.current_key("default").await?;
    /// let copy = LocalKeyManager::from_keyring_str(&keys.export_keyring())?;
    /// assert_eq!(copy.key("default", 1).await?.material.expose(), v1.material.expose());
    /// # Ok(())
    /// # }
    /// ```
    pub fn export_keyring(&self) -> Zeroizing<String> {
        ring_format::format(&self.inner.ring.read())
    }
}

/// A fresh key from the operating system's CSPRNG (`getrandom(2)` on Linux, the source ring's
/// `SystemRandom` reads too).
fn random_key() -> Result<SecretKey> {
    let mut bytes = vec![0u8; KEY_LEN];
    if let Err(e) = getrandom::fill(&mut bytes) {
        return Err(crypto("the system random source failed").with_source(e));
    }
    Ok(SecretKey::new(bytes))
}

/// Version `version` of `key_id`, with fresh random material.
fn new_version(key_id: &str, version: u32) -> Result<Arc<KeyVersion>> {
    Ok(Arc::new(KeyVersion {
        key_id: key_id.to_owned(),
        version,
        material: random_key()?,
    }))
}

fn with_id(e: Error, key_id: &str) -> Error {
    e.with_context("key_id", key_id)
}

#[async_trait]
impl KeyManager for LocalKeyManager {
    async fn current_key(&self, key_id: &str) -> Result<Arc<KeyVersion>> {
        validate_key_id(key_id)?;
        match self.inner.ring.read().get(key_id) {
            Some(Entry::Live(versions)) => {
                if let Some((_, k)) = versions.last_key_value() {
                    return Ok(Arc::clone(k));
                }
            }
            Some(Entry::Destroyed) => return Err(with_id(destroyed(), key_id)),
            None => {}
        }
        if !self.auto_create() {
            return Err(with_id(not_found(), key_id));
        }
        // Create version 1 unless another caller won the race (or destroyed it meanwhile).
        let fresh = new_version(key_id, 1)?;
        let mut ring = self.inner.ring.write();
        let entry = ring
            .entry(key_id.to_owned())
            .or_insert_with(|| Entry::Live(BTreeMap::new()));
        match entry {
            Entry::Destroyed => Err(with_id(destroyed(), key_id)),
            Entry::Live(versions) => {
                if let Some((_, k)) = versions.last_key_value() {
                    return Ok(Arc::clone(k));
                }
                versions.insert(1, Arc::clone(&fresh));
                Ok(fresh)
            }
        }
    }

    async fn key(&self, key_id: &str, version: u32) -> Result<Arc<KeyVersion>> {
        validate_key_id(key_id)?;
        match self.inner.ring.read().get(key_id) {
            Some(Entry::Live(versions)) => versions
                .get(&version)
                .cloned()
                .ok_or_else(|| with_id(not_found(), key_id)),
            Some(Entry::Destroyed) => Err(with_id(destroyed(), key_id)),
            None => Err(with_id(not_found(), key_id)),
        }
    }

    async fn rotate_key(&self, key_id: &str) -> Result<Arc<KeyVersion>> {
        validate_key_id(key_id)?;
        let material = random_key()?;
        let mut ring = self.inner.ring.write();
        let entry = ring
            .entry(key_id.to_owned())
            .or_insert_with(|| Entry::Live(BTreeMap::new()));
        let Entry::Live(versions) = entry else {
            return Err(with_id(destroyed(), key_id));
        };
        let next = match versions.last_key_value() {
            None => 1,
            Some((v, _)) => v
                .checked_add(1)
                .ok_or_else(|| with_id(crypto("no key version left to rotate to"), key_id))?,
        };
        let k = Arc::new(KeyVersion {
            key_id: key_id.to_owned(),
            version: next,
            material,
        });
        versions.insert(next, Arc::clone(&k));
        Ok(k)
    }

    async fn destroy_key(&self, key_id: &str) -> Result<()> {
        validate_key_id(key_id)?;
        let old = self
            .inner
            .ring
            .write()
            .insert(key_id.to_owned(), Entry::Destroyed);
        // Dropped outside the lock; each SecretKey zeroes itself when its last Arc goes.
        drop(old);
        Ok(())
    }
}

impl fmt::Debug for LocalKeyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Ids<'a>(&'a BTreeMap<String, Entry>);
        impl fmt::Debug for Ids<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut m = f.debug_map();
                for (id, entry) in self.0 {
                    match entry {
                        Entry::Destroyed => m.entry(id, &"destroyed"),
                        Entry::Live(v) => m.entry(id, &v.keys().collect::<Vec<_>>()),
                    };
                }
                m.finish()
            }
        }
        let ring = self.inner.ring.read();
        f.debug_struct("LocalKeyManager")
            .field("auto_create", &self.auto_create())
            .field("versions", &Ids(&ring))
            .finish()
    }
}

#[cfg(test)]
mod tests;
