//! The cache's side of the backplane: the message format, the listener that applies other
//! nodes' messages to the local tier, and publishing.
//!
//! # Messages (version 1)
//!
//! ```text
//! "MSBP" | version u8 = 1 | kind u8 | sender [u8; 16] | count u16 LE | count × (len u16 LE, key)
//! kind 1: the storage keys were set or removed; kind 2: the guard keys changed (tenant clear);
//! kind 3: everything changed (count is 0).
//! ```
//!
//! The channel is `memstache:bp:1:{namespace}`: two caches of different namespaces on one
//! Redis never hear each other. A message is checked before anything is applied: magic,
//! version, kind, lengths, size (at most [`MAX_BACKPLANE_MESSAGE`]), and every key must belong
//! to this cache's namespace. Anything else is dropped whole and counted as rejected.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::{BufMut, Bytes, BytesMut};

use super::local::{LocalCopies, guard_tag};
use crate::raw::{BackplaneListener, MAX_BACKPLANE_MESSAGE};

const MAGIC: &[u8; 4] = b"MSBP";
/// The message format version, also in the channel name.
pub(crate) const VERSION: u8 = 1;
const HEAD: usize = 4 + 1 + 1 + 16 + 2;

/// What a message says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Keys = 1,
    Guards = 2,
    All = 3,
}

/// The channel of a namespace's messages.
pub(crate) fn channel(namespace: &str) -> String {
    format!("memstache:bp:{VERSION}:{namespace}")
}

/// A random id for one cache instance (a node): unique, not secret.
pub(crate) fn sender_id() -> [u8; 16] {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = COUNT.fetch_add(1, Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let s = std::hash::RandomState::new();
    let a = s.hash_one((n, t, std::process::id(), 1u8));
    let b = s.hash_one((n, t, std::process::id(), 2u8));
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&a.to_le_bytes());
    id[8..].copy_from_slice(&b.to_le_bytes());
    id
}

/// Encodes messages of `kind` for `keys`, split so that none is larger than
/// [`MAX_BACKPLANE_MESSAGE`]. Keys longer than a `u16` cannot be named: the caller clears
/// everything instead (`None`).
pub(crate) fn encode(kind: Kind, sender: &[u8; 16], keys: &[&str]) -> Option<Vec<Bytes>> {
    let mut out = Vec::with_capacity(1);
    let need: usize = HEAD + keys.iter().map(|k| 2 + k.len()).sum::<usize>();
    let mut buf = BytesMut::with_capacity(need.min(MAX_BACKPLANE_MESSAGE));
    let mut count: u16 = 0;
    let start = |buf: &mut BytesMut| {
        buf.put_slice(MAGIC);
        buf.put_u8(VERSION);
        buf.put_u8(kind as u8);
        buf.put_slice(sender);
        buf.put_u16_le(0);
    };
    start(&mut buf);
    for k in keys {
        let len = u16::try_from(k.len()).ok()?;
        if count == u16::MAX || buf.len() + 2 + k.len() > MAX_BACKPLANE_MESSAGE {
            finish(&mut buf, count);
            out.push(buf.split().freeze());
            start(&mut buf);
            count = 0;
        }
        buf.put_u16_le(len);
        buf.put_slice(k.as_bytes());
        count += 1;
    }
    finish(&mut buf, count);
    out.push(buf.freeze());
    Some(out)
}

fn finish(buf: &mut BytesMut, count: u16) {
    buf[HEAD - 2..HEAD].copy_from_slice(&count.to_le_bytes());
}

/// A checked message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Message<'a> {
    pub(crate) kind: Kind,
    pub(crate) sender: [u8; 16],
    pub(crate) keys: Vec<&'a str>,
}

/// Why a message was dropped (for the debug log; never the message's content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    TooLarge,
    Malformed,
    Version(u8),
    Kind(u8),
    ForeignKey,
}

/// Whether `key` belongs to the cache of `namespace`: the namespace, then a character that
/// cannot continue a namespace (`:` for the cache's own keys, another for scope prefixes).
fn in_namespace(key: &str, namespace: &str) -> bool {
    key.strip_prefix(namespace)
        .and_then(|rest| rest.bytes().next())
        .is_some_and(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')))
}

/// Decodes and checks a message for the cache of `namespace`.
pub(crate) fn decode<'a>(payload: &'a [u8], namespace: &str) -> Result<Message<'a>, Rejected> {
    if payload.len() > MAX_BACKPLANE_MESSAGE {
        return Err(Rejected::TooLarge);
    }
    if payload.len() < HEAD || &payload[..4] != MAGIC {
        return Err(Rejected::Malformed);
    }
    if payload[4] != VERSION {
        return Err(Rejected::Version(payload[4]));
    }
    let kind = match payload[5] {
        1 => Kind::Keys,
        2 => Kind::Guards,
        3 => Kind::All,
        k => return Err(Rejected::Kind(k)),
    };
    let mut sender = [0u8; 16];
    sender.copy_from_slice(&payload[6..22]);
    let count = usize::from(u16::from_le_bytes([payload[22], payload[23]]));
    let mut rest = &payload[HEAD..];
    let mut keys = Vec::with_capacity(count.min(rest.len() / 3));
    for _ in 0..count {
        let (len, tail) = rest.split_first_chunk::<2>().ok_or(Rejected::Malformed)?;
        let len = usize::from(u16::from_le_bytes(*len));
        if tail.len() < len {
            return Err(Rejected::Malformed);
        }
        let (key, tail) = tail.split_at(len);
        let key = std::str::from_utf8(key).map_err(|_| Rejected::Malformed)?;
        if !in_namespace(key, namespace) {
            return Err(Rejected::ForeignKey);
        }
        keys.push(key);
        rest = tail;
    }
    if !rest.is_empty() || (kind == Kind::All && count != 0) {
        return Err(Rejected::Malformed);
    }
    Ok(Message { kind, sender, keys })
}

/// Applies other nodes' messages to the local tier.
pub(crate) struct Listener {
    pub(crate) local: Arc<LocalCopies>,
    pub(crate) namespace: String,
    pub(crate) sender: [u8; 16],
}

impl BackplaneListener for Listener {
    fn connected(&self) {
        self.local.set_trusted(true);
        tracing::debug!(namespace = %self.namespace, "memstache: backplane subscribed; local tier trusted (and cleared)");
    }

    fn disconnected(&self) {
        self.local.set_trusted(false);
        tracing::debug!(namespace = %self.namespace, "memstache: backplane lost; local tier serves fail-safe only");
    }

    fn message(&self, payload: &[u8]) {
        let stats = &self.local.stats;
        let m = match decode(payload, &self.namespace) {
            Ok(m) => m,
            Err(why) => {
                stats.rejected.fetch_add(1, Relaxed);
                tracing::debug!(reason = ?why, len = payload.len(), "memstache: dropped a backplane message");
                return;
            }
        };
        if m.sender == self.sender {
            return;
        }
        stats.received.fetch_add(1, Relaxed);
        match m.kind {
            Kind::Keys => m.keys.iter().for_each(|k| self.local.invalidate(k)),
            Kind::Guards => m
                .keys
                .iter()
                .for_each(|g| self.local.guard_changed(guard_tag(g))),
            Kind::All => self.local.clear(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: [u8; 16] = [7; 16];

    #[test]
    fn messages_round_trip() {
        let keys = ["ns:a", "ns:b", "ns#t1:x"];
        let msgs = encode(Kind::Keys, &ME, &keys).unwrap();
        assert_eq!(msgs.len(), 1);
        let m = decode(&msgs[0], "ns").unwrap();
        assert_eq!(m.kind, Kind::Keys);
        assert_eq!(m.sender, ME);
        assert_eq!(m.keys, keys);
        let all = encode(Kind::All, &ME, &[]).unwrap();
        assert_eq!(decode(&all[0], "ns").unwrap().kind, Kind::All);
    }

    #[test]
    fn big_batches_split_below_the_bound() {
        let key = format!("ns:{}", "k".repeat(60_000));
        let keys: Vec<&str> = (0..40).map(|_| key.as_str()).collect();
        let msgs = encode(Kind::Keys, &ME, &keys).unwrap();
        assert!(msgs.len() > 1);
        assert!(msgs.iter().all(|m| m.len() <= MAX_BACKPLANE_MESSAGE));
        let n: usize = msgs
            .iter()
            .map(|m| decode(m, "ns").unwrap().keys.len())
            .sum();
        assert_eq!(n, 40);
    }

    #[test]
    fn forged_and_foreign_messages_are_rejected() {
        let good = encode(Kind::Keys, &ME, &["ns:a"]).unwrap().remove(0);
        // another namespace, or one that only starts with ours
        assert_eq!(decode(&good, "other"), Err(Rejected::ForeignKey));
        let long = encode(Kind::Keys, &ME, &["nsx:a"]).unwrap().remove(0);
        assert_eq!(decode(&long, "ns"), Err(Rejected::ForeignKey));
        // wrong version, kind, magic, truncation, trailing bytes, oversize
        let mut v = good.to_vec();
        v[4] = 2;
        assert_eq!(decode(&v, "ns"), Err(Rejected::Version(2)));
        let mut k = good.to_vec();
        k[5] = 9;
        assert_eq!(decode(&k, "ns"), Err(Rejected::Kind(9)));
        assert_eq!(decode(b"garbage", "ns"), Err(Rejected::Malformed));
        for cut in 0..good.len() {
            assert!(decode(&good[..cut], "ns").is_err(), "cut at {cut}");
        }
        let mut t = good.to_vec();
        t.push(0);
        assert_eq!(decode(&t, "ns"), Err(Rejected::Malformed));
        let huge = vec![0u8; MAX_BACKPLANE_MESSAGE + 1];
        assert_eq!(decode(&huge, "ns"), Err(Rejected::TooLarge));
        // a count larger than the keys present
        let mut c = good.to_vec();
        c[22] = 200;
        assert_eq!(decode(&c, "ns"), Err(Rejected::Malformed));
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = decode(&bytes, "ns");
        }
    }
}
