//! One shard of the memory backend: a map, a slab of entries, an expiry index and the eviction
//! state, all used under the shard's lock.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;

use super::{ENTRY_OVERHEAD, EvictionCause};
use crate::raw::{Clock, EntryId, EntryMeta, EvictionPolicy, EvictionState, Expiry};
use crate::{Error, ErrorKind, Result};

/// How many due entries one operation reclaims from the expiry index, besides the one it
/// touches. Amortised reclamation: no operation scans the whole shard.
pub(crate) const EXPIRE_BUDGET: usize = 4;

/// An entry that left the shard, reported to the eviction listener after the lock is released.
#[derive(Debug, Clone)]
pub(crate) struct Departure {
    pub(crate) key: Arc<str>,
    pub(crate) weight: u64,
    pub(crate) cause: EvictionCause,
}

#[derive(Debug)]
struct Slot {
    key: Arc<str>,
    value: Bytes,
    expiry: Expiry,
    expires_at: Option<u64>,
    weight: u64,
}

pub(crate) struct Shard {
    map: HashMap<Arc<str>, u32>,
    slots: Vec<Option<Slot>>,
    free: Vec<u32>,
    /// `(expires_at, slot)` of every entry that expires.
    expiries: BTreeSet<(u64, u32)>,
    state: Box<dyn EvictionState>,
    max_entries: usize,
    max_bytes: u64,
    bytes: u64,
    /// Whether departures are collected (only when a listener is installed).
    report: bool,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys or values.
        f.debug_struct("Shard")
            .field("len", &self.map.len())
            .field("bytes", &self.bytes)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// The weight charged for an entry: key length + value length + [`ENTRY_OVERHEAD`].
pub(crate) fn weight_of(key: &str, value: &Bytes) -> u64 {
    (key.len() as u64)
        .saturating_add(value.len() as u64)
        .saturating_add(ENTRY_OVERHEAD)
}

impl Shard {
    pub(crate) fn new(
        policy: &dyn EvictionPolicy,
        max_entries: usize,
        max_bytes: u64,
        report: bool,
    ) -> Self {
        Shard {
            map: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            expiries: BTreeSet::new(),
            state: policy.new_state(max_entries),
            max_entries,
            max_bytes,
            bytes: 0,
            report,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    pub(crate) fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Takes slot `i` out of every structure except the eviction state.
    fn take(&mut self, i: u32, cause: EvictionCause, out: &mut Vec<Departure>) -> Option<Slot> {
        let slot = self.slots.get_mut(i as usize)?.take()?;
        self.map.remove(&slot.key);
        if let Some(at) = slot.expires_at {
            self.expiries.remove(&(at, i));
        }
        self.bytes = self.bytes.saturating_sub(slot.weight);
        self.free.push(i);
        if self.report {
            out.push(Departure {
                key: Arc::clone(&slot.key),
                weight: slot.weight,
                cause,
            });
        }
        Some(slot)
    }

    /// Removes slot `i` and tells the eviction state.
    fn remove_slot(&mut self, i: u32, cause: EvictionCause, out: &mut Vec<Departure>) {
        if self.take(i, cause, out).is_some() {
            self.state.record_remove(EntryId::from(i));
        }
    }

    /// The time, read only when some entry of the shard expires: with an empty expiry index no
    /// entry can be due and none has a sliding window, so reads skip the clock.
    fn now(&self, clock: &dyn Clock) -> u64 {
        if self.expiries.is_empty() {
            0
        } else {
            clock.now_ms()
        }
    }

    /// Reclaims up to `budget` entries that are due at `now`.
    pub(crate) fn purge_expired(&mut self, now: u64, budget: usize, out: &mut Vec<Departure>) {
        for _ in 0..budget {
            match self.expiries.first() {
                Some(&(at, i)) if at <= now => self.remove_slot(i, EvictionCause::Expired, out),
                _ => break,
            }
        }
    }

    /// The live slot at `key`, reclaiming it when it is due.
    fn live(&mut self, key: &str, now: u64, out: &mut Vec<Departure>) -> Option<u32> {
        let i = *self.map.get(key)?;
        let due = self.slots[i as usize]
            .as_ref()
            .is_some_and(|s| s.expires_at.is_some_and(|at| at <= now));
        if due {
            self.remove_slot(i, EvictionCause::Expired, out);
            return None;
        }
        Some(i)
    }

    /// Re-arms the sliding window of slot `i` (capped by its deadline).
    fn rearm(&mut self, i: u32, now: u64) {
        let Some(slot) = self.slots[i as usize].as_mut() else {
            return;
        };
        if slot.expiry.sliding.is_none() {
            return;
        }
        let next = slot.expiry.expires_at(now);
        if next != slot.expires_at {
            if let Some(at) = slot.expires_at {
                self.expiries.remove(&(at, i));
            }
            if let Some(at) = next {
                self.expiries.insert((at, i));
            }
            slot.expires_at = next;
        }
    }

    /// A read: `get` (with the value) or `touch` (without). Re-arms the sliding window and
    /// counts as an access for the eviction policy.
    pub(crate) fn read(
        &mut self,
        key: &str,
        clock: &dyn Clock,
        want_value: bool,
        out: &mut Vec<Departure>,
    ) -> Option<Option<Bytes>> {
        let now = self.now(clock);
        self.purge_expired(now, EXPIRE_BUDGET, out);
        let i = self.live(key, now, out)?;
        self.rearm(i, now);
        self.state.record_access(EntryId::from(i));
        let slot = self.slots[i as usize].as_ref()?;
        Some(want_value.then(|| slot.value.clone()))
    }

    /// Whether a live entry is at `key`; does not re-arm nor count as an access.
    pub(crate) fn exists(
        &mut self,
        key: &str,
        clock: &dyn Clock,
        out: &mut Vec<Departure>,
    ) -> bool {
        let now = self.now(clock);
        self.purge_expired(now, EXPIRE_BUDGET, out);
        self.live(key, now, out).is_some()
    }

    /// Removes `key`; `true` when a live entry was there.
    pub(crate) fn remove(
        &mut self,
        key: &str,
        clock: &dyn Clock,
        out: &mut Vec<Departure>,
    ) -> bool {
        let now = self.now(clock);
        self.purge_expired(now, EXPIRE_BUDGET, out);
        match self.live(key, now, out) {
            Some(i) => {
                self.remove_slot(i, EvictionCause::Removed, out);
                true
            }
            None => false,
        }
    }

    /// Stores `value` at `key`, then evicts until the shard is within its bounds.
    pub(crate) fn set(
        &mut self,
        key: &str,
        hash: u64,
        value: Bytes,
        expiry: Expiry,
        now: u64,
        out: &mut Vec<Departure>,
    ) -> Result<()> {
        let weight = weight_of(key, &value);
        if weight > self.max_bytes {
            return Err(Error::new(
                ErrorKind::ValueTooLarge,
                format!(
                    "entry of {weight} bytes (key + value + {ENTRY_OVERHEAD} overhead) exceeds \
                     the {} bytes of a memory backend shard",
                    self.max_bytes
                ),
            ));
        }
        self.purge_expired(now, EXPIRE_BUDGET, out);
        let expires_at = expiry.expires_at(now);
        let existing = self.map.get(key).copied();
        if expires_at.is_some_and(|at| at <= now) {
            // Already due: the new value is gone at once, and it replaced the old one.
            if let Some(i) = existing {
                self.remove_slot(i, EvictionCause::Replaced, out);
            }
            return Ok(());
        }
        let meta = EntryMeta::new(hash, weight, expires_at, now);
        if let Some(i) = existing {
            let Some(slot) = self.slots[i as usize].as_mut() else {
                return Err(Error::internal(
                    "memory backend index points at an empty slot",
                ));
            };
            let old_weight = slot.weight;
            let old_at = slot.expires_at;
            slot.value = value;
            slot.expiry = expiry;
            slot.expires_at = expires_at;
            slot.weight = weight;
            if old_at != expires_at {
                if let Some(at) = old_at {
                    self.expiries.remove(&(at, i));
                }
                if let Some(at) = expires_at {
                    self.expiries.insert((at, i));
                }
            }
            self.bytes = self.bytes.saturating_sub(old_weight).saturating_add(weight);
            if self.report {
                out.push(Departure {
                    key: Arc::clone(&slot.key),
                    weight: old_weight,
                    cause: EvictionCause::Replaced,
                });
            }
            self.state.record_update(EntryId::from(i), &meta);
        } else {
            let Some(i) = self.alloc() else {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "memory backend shard cannot index more than 2^32 entries",
                ));
            };
            let key: Arc<str> = Arc::from(key);
            self.slots[i as usize] = Some(Slot {
                key: Arc::clone(&key),
                value,
                expiry,
                expires_at,
                weight,
            });
            self.map.insert(key, i);
            if let Some(at) = expires_at {
                self.expiries.insert((at, i));
            }
            self.bytes = self.bytes.saturating_add(weight);
            self.state.record_insert(EntryId::from(i), &meta);
        }
        self.enforce_bounds(now, out);
        Ok(())
    }

    fn alloc(&mut self) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            return Some(i);
        }
        let i = u32::try_from(self.slots.len()).ok()?;
        self.slots.push(None);
        Some(i)
    }

    fn over(&self) -> bool {
        self.map.len() > self.max_entries || self.bytes > self.max_bytes
    }

    /// Evicts until the shard is within its bounds: due entries first, then the policy's
    /// victims. A policy that answers `None` or unknown ids while entries remain is worked
    /// around (an arbitrary entry goes), so the bounds hold whatever the policy does.
    fn enforce_bounds(&mut self, now: u64, out: &mut Vec<Departure>) {
        let mut misses = 0usize;
        while self.over() {
            if let Some(&(at, i)) = self.expiries.first()
                && at <= now
            {
                self.remove_slot(i, EvictionCause::Expired, out);
                continue;
            }
            let victim = self
                .state
                .select_victim()
                .and_then(|id| u32::try_from(id).ok());
            match victim {
                Some(i) if self.take(i, EvictionCause::Size, out).is_some() => misses = 0,
                _ => {
                    misses += 1;
                    if misses > 2 {
                        self.evict_any(out);
                        misses = 0;
                    }
                }
            }
        }
    }

    /// The fallback of [`enforce_bounds`](Self::enforce_bounds) for a misbehaving policy.
    fn evict_any(&mut self, out: &mut Vec<Departure>) {
        let any = self.map.values().next().copied();
        if let Some(i) = any {
            self.remove_slot(i, EvictionCause::Size, out);
        }
    }

    /// Drops every entry and starts a fresh eviction state.
    pub(crate) fn clear(
        &mut self,
        policy: &dyn EvictionPolicy,
        cause: EvictionCause,
        out: &mut Vec<Departure>,
    ) {
        if self.report {
            for slot in self.slots.iter().flatten() {
                out.push(Departure {
                    key: Arc::clone(&slot.key),
                    weight: slot.weight,
                    cause,
                });
            }
        }
        self.map.clear();
        self.slots.clear();
        self.free.clear();
        self.expiries.clear();
        self.bytes = 0;
        self.state = policy.new_state(self.max_entries);
    }

    /// Checks the internal invariants (tests only).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        let live = self.slots.iter().flatten().count();
        assert_eq!(live, self.map.len());
        let bytes: u64 = self.slots.iter().flatten().map(|s| s.weight).sum();
        assert_eq!(bytes, self.bytes);
        let expiring = self
            .slots
            .iter()
            .flatten()
            .filter(|s| s.expires_at.is_some())
            .count();
        assert_eq!(expiring, self.expiries.len());
        assert!(self.map.len() <= self.max_entries);
        assert!(self.bytes <= self.max_bytes);
    }
}
