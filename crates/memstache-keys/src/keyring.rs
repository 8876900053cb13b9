//! The key-ring text format of [`LocalKeyManager`](crate::LocalKeyManager).
//!
//! ```text
//! # comment lines and blank lines are ignored
//! <key_id> <version> <base64 of 32 key bytes>
//! destroyed <key_id>
//! ```
//!
//! Entries are separated by newlines or `;` (so a whole ring fits in one environment variable).
//! The current version of a key id is the highest version listed. Error messages name the entry
//! number, never its text (it may hold key material).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use memstache_core::Result;
use memstache_core::raw::{KeyVersion, SecretKey, validate_key_id};
use zeroize::Zeroizing;

use crate::error::keyring;

/// Bytes in every key of the ring (AES-256).
pub(crate) const KEY_LEN: usize = 32;

/// What the ring knows about one key id.
#[derive(Debug)]
pub(crate) enum Entry {
    /// Live versions, by version number; the last one is current.
    Live(BTreeMap<u32, Arc<KeyVersion>>),
    /// Destroyed: every version is gone for good.
    Destroyed,
}

/// Parses a key ring.
pub(crate) fn parse(text: &str) -> Result<BTreeMap<String, Entry>> {
    let mut ring: BTreeMap<String, Entry> = BTreeMap::new();
    for (index, raw) in text.split(['\n', ';']).enumerate() {
        let n = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        match fields.as_slice() {
            ["destroyed", id] => {
                check_id(id, n)?;
                if matches!(ring.get(*id), Some(Entry::Live(_))) {
                    return Err(live_and_destroyed(n));
                }
                ring.insert((*id).to_owned(), Entry::Destroyed);
            }
            [id, version, key] => {
                check_id(id, n)?;
                if *id == "destroyed" {
                    return Err(keyring(format!(
                        "key ring entry {n}: `destroyed` cannot be used as a key id"
                    )));
                }
                let version: u32 = match version.parse() {
                    Ok(v) if v > 0 => v,
                    _ => {
                        return Err(keyring(format!(
                            "key ring entry {n}: the version must be a whole number from 1 to {}",
                            u32::MAX
                        )));
                    }
                };
                let material = decode_key(key).ok_or_else(|| {
                    keyring(format!(
                        "key ring entry {n}: the key must be {KEY_LEN} bytes of standard base64"
                    ))
                })?;
                let entry = ring
                    .entry((*id).to_owned())
                    .or_insert_with(|| Entry::Live(BTreeMap::new()));
                let Entry::Live(versions) = entry else {
                    return Err(live_and_destroyed(n));
                };
                if versions.contains_key(&version) {
                    return Err(keyring(format!(
                        "key ring entry {n}: this key id and version are listed twice"
                    )));
                }
                versions.insert(
                    version,
                    Arc::new(KeyVersion {
                        key_id: (*id).to_owned(),
                        version,
                        material,
                    }),
                );
            }
            _ => {
                return Err(keyring(format!(
                    "key ring entry {n}: expected `<key_id> <version> <base64 key>` or `destroyed <key_id>`"
                )));
            }
        }
    }
    Ok(ring)
}

fn check_id(id: &str, n: usize) -> Result<()> {
    validate_key_id(id).map_err(|e| {
        keyring(format!(
            "key ring entry {n}: key ids are 1-64 bytes of [A-Za-z0-9._:-]"
        ))
        .with_source(e)
    })
}

fn live_and_destroyed(n: usize) -> memstache_core::Error {
    keyring(format!(
        "key ring entry {n}: a key id is listed both with keys and as destroyed; remove its key lines to destroy it"
    ))
}

/// Decodes exactly [`KEY_LEN`] bytes of standard base64 into a zeroizing key.
fn decode_key(text: &str) -> Option<SecretKey> {
    let mut buf = Zeroizing::new([0u8; KEY_LEN + 3]);
    let n = STANDARD.decode_slice(text, &mut buf[..]).ok()?;
    if n != KEY_LEN {
        return None;
    }
    Some(SecretKey::new(buf[..KEY_LEN].to_vec()))
}

const HEADER: &str = "# memstache key ring: <key_id> <version> <base64 key> | destroyed <key_id>\n";

/// The longest text [`format`] can write for `ring`.
fn capacity_bound(ring: &BTreeMap<String, Entry>) -> usize {
    let b64_len = KEY_LEN.div_ceil(3) * 4;
    HEADER.len()
        + ring
            .iter()
            .map(|(id, entry)| match entry {
                Entry::Destroyed => "destroyed ".len() + id.len() + 1,
                Entry::Live(v) => v.len() * (id.len() + 1 + 10 + 1 + b64_len + 1),
            })
            .sum::<usize>()
}

/// Writes `ring` in the key-ring format (this text holds key material).
pub(crate) fn format(ring: &BTreeMap<String, Entry>) -> Zeroizing<String> {
    // Reserve the exact upper bound up front: a String that grows leaves copies of the key
    // material behind in freed memory, out of reach of the zeroizing wrapper.
    let capacity = capacity_bound(ring);
    let mut out = Zeroizing::new(String::with_capacity(capacity));
    out.push_str(HEADER);
    for (id, entry) in ring {
        match entry {
            Entry::Destroyed => {
                let _ = writeln!(out, "destroyed {id}");
            }
            Entry::Live(versions) => {
                for (version, key) in versions {
                    let b64 = Zeroizing::new(STANDARD.encode(key.material.expose()));
                    let _ = writeln!(out, "{id} {version} {}", b64.as_str());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use memstache_core::ErrorKind;

    const K1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    const K2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

    #[test]
    fn parses_versions_comments_separators_and_destroyed() {
        let ring = parse(&format!(
            "# ring\n\n  default 1 {K1}\ndefault 2 {K2};tenant:acme 7 {K1}\ndestroyed old\n"
        ))
        .unwrap();
        let Some(Entry::Live(v)) = ring.get("default") else {
            panic!("default is live")
        };
        assert_eq!(v.keys().copied().collect::<Vec<_>>(), [1, 2]);
        assert_eq!(v[&2].material.expose(), &[2u8; 32]);
        assert!(matches!(ring.get("tenant:acme"), Some(Entry::Live(v)) if v.contains_key(&7)));
        assert!(matches!(ring.get("old"), Some(Entry::Destroyed)));
    }

    #[test]
    fn format_round_trips() {
        let text = format!("a 1 {K1}\na 3 {K2}\ndestroyed b\n");
        let ring = parse(&text).unwrap();
        let formatted = format(&ring);
        assert!(formatted.len() <= formatted.capacity());
        let again = parse(&formatted).unwrap();
        assert_eq!(format(&ring).as_str(), format(&again).as_str());
        assert!(format(&ring).contains(K2));
    }

    #[test]
    fn format_never_grows_its_buffer() {
        let long_id = "x".repeat(64);
        let ring = parse(&format!(
            "{long_id} 4294967295 {K1}\n{long_id} 1 {K2}\na 1 {K1}\ndestroyed {}\n",
            "y".repeat(64)
        ))
        .unwrap();
        let out = format(&ring);
        assert!(out.len() <= capacity_bound(&ring));
        // still the capacity reserved up front: the buffer never reallocated
        assert_eq!(out.capacity(), capacity_bound(&ring));
    }

    #[test]
    fn bad_entries_are_typed_errors_without_key_text() {
        let secretish = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0";
        for (text, what) in [
            (format!("default 1 {secretish}"), "short key"),
            (format!("default 0 {K1}"), "version 0"),
            (format!("default x {K1}"), "bad version"),
            (format!("bad id 1 {K1}"), "four fields"),
            (format!("b@d 1 {K1}"), "bad id charset"),
            (format!("a 1 {K1}\na 1 {K2}"), "duplicate"),
            (format!("a 1 {K1}\ndestroyed a"), "live then destroyed"),
            (format!("destroyed a\na 1 {K1}"), "destroyed then live"),
            (format!("destroyed 1 {K1}"), "reserved id"),
            (format!("a 1 {K1}!"), "bad base64"),
            ("just-one-field".to_owned(), "one field"),
        ] {
            let err = parse(&text).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidConfig, "{what}");
            let shown = format!("{err} {err:?}");
            assert!(
                !shown.contains(K1) && !shown.contains(secretish),
                "{what}: {shown}"
            );
        }
    }
}
