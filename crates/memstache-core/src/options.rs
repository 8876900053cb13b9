//! Per-entry options: expiration and per-entry pipeline overrides.

use std::time::{Duration, SystemTime};

/// When an entry expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Absolute {
    /// Expires this long after it is written.
    After(Duration),
    /// Expires at this wall-clock instant.
    At(SystemTime),
}

/// Options for one write: expiration and per-entry overrides of the cache's pipeline.
///
/// Every field is optional; an unset field takes the cache's default
/// (`MemStacheBuilder::default_entry_options`), so `EntryOptions::default()` means "the cache
/// defaults". Set fields win over the defaults, field by field.
///
/// * **Absolute expiration** — the entry is gone this long after the write (or at an instant).
/// * **Sliding expiration** — the entry is gone after this long *without a read*; every hit
///   re-arms the window, but never past the absolute deadline.
/// * **`compress(false)` / `encrypt(false)`** — skip that stage for this entry even when the
///   cache has a compressor / encryptor. `encrypt(true)` on a cache without an encryptor is an
///   [`InvalidConfig`](crate::ErrorKind::InvalidConfig) error, never a silent plaintext write.
///
/// ```
/// use memstache_core::EntryOptions;
/// use std::time::Duration;
///
/// let session = EntryOptions::new()
///     .sliding_expiration(Duration::from_secs(900))
///     .absolute_expiration(Duration::from_secs(8 * 3600))
///     .compress(false);
/// assert_eq!(session.get_sliding_expiration(), Some(Duration::from_secs(900)));
/// assert_eq!(session.get_compress(), Some(false));
/// assert_eq!(session.get_encrypt(), None); // the cache decides
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryOptions {
    absolute: Option<Absolute>,
    sliding: Option<Duration>,
    compress: Option<bool>,
    encrypt: Option<bool>,
    no_expiration: bool,
    jitter: Option<Duration>,
    skip: Skip,
    /// The entry is a "not found" marker of read-through (negative caching): set by
    /// `get_or_load` only, never by users.
    pub(crate) absent: bool,
}

/// Tiers one call skips (bit set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Skip(u8);

impl Skip {
    pub(crate) const LOCAL_READ: u8 = 1;
    pub(crate) const LOCAL_WRITE: u8 = 2;
    pub(crate) const DISTRIBUTED_READ: u8 = 4;
    pub(crate) const DISTRIBUTED_WRITE: u8 = 8;

    fn with(self, bits: u8, on: bool) -> Skip {
        Skip(if on { self.0 | bits } else { self.0 & !bits })
    }

    pub(crate) fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// Per-call options of a read ([`MemStache::get_with`](crate::MemStache::get_with)): which
/// tiers it skips. Without a local tier the local flags do nothing.
///
/// ```
/// use memstache_core::ReadOptions;
/// let fresh_from_redis = ReadOptions::new().skip_local_read(true); // still refreshes L1
/// let local_only = ReadOptions::new().skip_distributed(true);      // a miss when L1 has none
/// # let _ = (fresh_from_redis, local_only);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[must_use]
pub struct ReadOptions {
    pub(crate) skip: Skip,
}

impl ReadOptions {
    /// Reads every tier (the default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Neither reads the local tier nor keeps what the backend returned in it.
    pub fn skip_local(self, on: bool) -> Self {
        self.skip_local_read(on).skip_local_write(on)
    }

    /// Does not serve from the local tier (what the backend returns is still kept there).
    pub fn skip_local_read(mut self, on: bool) -> Self {
        self.skip = self.skip.with(Skip::LOCAL_READ, on);
        self
    }

    /// Does not keep what the backend returned in the local tier.
    pub fn skip_local_write(mut self, on: bool) -> Self {
        self.skip = self.skip.with(Skip::LOCAL_WRITE, on);
        self
    }

    /// Does not read the backend: a local miss is a miss.
    pub fn skip_distributed(mut self, on: bool) -> Self {
        self.skip = self.skip.with(Skip::DISTRIBUTED_READ, on);
        self
    }
}

impl EntryOptions {
    /// Options with nothing set: everything comes from the cache defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Expire the entry `ttl` after it is written.
    #[must_use]
    pub fn absolute_expiration(mut self, ttl: Duration) -> Self {
        self.absolute = Some(Absolute::After(ttl));
        self.no_expiration = false;
        self
    }

    /// Expire the entry at a wall-clock instant.
    #[must_use]
    pub fn absolute_expiration_at(mut self, at: SystemTime) -> Self {
        self.absolute = Some(Absolute::At(at));
        self.no_expiration = false;
        self
    }

    /// Expire the entry after `window` without a read; each hit re-arms the window, capped by the
    /// absolute deadline.
    #[must_use]
    pub fn sliding_expiration(mut self, window: Duration) -> Self {
        self.sliding = Some(window);
        self.no_expiration = false;
        self
    }

    /// The entry never expires by time, even when the cache defaults say otherwise (it can still
    /// be evicted by the backend's bounds).
    #[must_use]
    pub fn no_expiration(mut self) -> Self {
        self.absolute = None;
        self.sliding = None;
        self.no_expiration = true;
        self
    }

    /// Adds a random spread of up to `max` to a relative absolute expiration
    /// ([`absolute_expiration`](Self::absolute_expiration)), drawn per write, so that entries
    /// written together (a warm-up, a deploy, a burst of misses) do not all expire in the same
    /// instant and send their reloads to the source at once. An instant
    /// ([`absolute_expiration_at`](Self::absolute_expiration_at)) and a sliding window are
    /// never moved. `Duration::ZERO` turns a default jitter off.
    ///
    /// ```
    /// use memstache_core::EntryOptions;
    /// use std::time::Duration;
    /// // expires between 10 and 12 minutes after the write
    /// let o = EntryOptions::new()
    ///     .absolute_expiration(Duration::from_secs(600))
    ///     .jitter(Duration::from_secs(120));
    /// assert_eq!(o.get_jitter(), Some(Duration::from_secs(120)));
    /// ```
    #[must_use]
    pub fn jitter(mut self, max: Duration) -> Self {
        self.jitter = Some(max);
        self
    }

    /// Whether this entry may be compressed (`false` skips compression for it).
    #[must_use]
    pub fn compress(mut self, compress: bool) -> Self {
        self.compress = Some(compress);
        self
    }

    /// Whether this entry is encrypted (`false` stores it in plaintext even on an encrypting
    /// cache; `true` on a cache without an encryptor is an error).
    #[must_use]
    pub fn encrypt(mut self, encrypt: bool) -> Self {
        self.encrypt = Some(encrypt);
        self
    }

    /// Skips the local tier for this call: a write keeps no local copy, and `get_or_set`
    /// neither reads one nor keeps one.
    #[must_use]
    pub fn skip_local(self, on: bool) -> Self {
        self.skip_local_read(on).skip_local_write(on)
    }

    /// `get_or_set` does not serve from the local tier.
    #[must_use]
    pub fn skip_local_read(mut self, on: bool) -> Self {
        self.skip = self.skip.with(Skip::LOCAL_READ, on);
        self
    }

    /// The write keeps no local copy (other nodes' copies are still dropped).
    #[must_use]
    pub fn skip_local_write(mut self, on: bool) -> Self {
        self.skip = self.skip.with(Skip::LOCAL_WRITE, on);
        self
    }

    /// `get_or_set` does not read the backend (a local miss runs the loader).
    #[must_use]
    pub fn skip_distributed_read(mut self, on: bool) -> Self {
        self.skip = self.skip.with(Skip::DISTRIBUTED_READ, on);
        self
    }

    /// The write goes to the local tier only (with a backplane, other nodes still drop their
    /// copies). Needs a local tier.
    #[must_use]
    pub fn skip_distributed_write(mut self, on: bool) -> Self {
        self.skip = self.skip.with(Skip::DISTRIBUTED_WRITE, on);
        self
    }

    /// Skips reading and writing the backend (`get_or_set` then lives in the local tier).
    #[must_use]
    pub fn skip_distributed(self, on: bool) -> Self {
        self.skip_distributed_read(on).skip_distributed_write(on)
    }

    pub(crate) fn skips(&self) -> Skip {
        self.skip
    }

    /// The absolute expiration, if set.
    pub fn get_absolute_expiration(&self) -> Option<Absolute> {
        self.absolute
    }

    /// The sliding window, if set.
    pub fn get_sliding_expiration(&self) -> Option<Duration> {
        self.sliding
    }

    /// The compression override, if set.
    pub fn get_compress(&self) -> Option<bool> {
        self.compress
    }

    /// The encryption override, if set.
    pub fn get_encrypt(&self) -> Option<bool> {
        self.encrypt
    }

    /// The expiration jitter, if set.
    pub fn get_jitter(&self) -> Option<Duration> {
        self.jitter
    }

    /// Whether [`no_expiration`](Self::no_expiration) was requested.
    pub fn is_no_expiration(&self) -> bool {
        self.no_expiration
    }

    /// These options with every unset field taken from `defaults`.
    ///
    /// ```
    /// use memstache_core::EntryOptions;
    /// use std::time::Duration;
    /// let defaults = EntryOptions::new().absolute_expiration(Duration::from_secs(60)).compress(true);
    /// let merged = EntryOptions::new().compress(false).or(&defaults);
    /// assert_eq!(merged.get_compress(), Some(false));
    /// assert!(merged.get_absolute_expiration().is_some());
    /// ```
    #[must_use]
    pub fn or(&self, defaults: &EntryOptions) -> EntryOptions {
        let (absolute, sliding) = if self.no_expiration {
            (None, None)
        } else if self.absolute.is_some() || self.sliding.is_some() {
            // Expiration is decided as a whole: a per-entry sliding window with the
            // default absolute cap, or a per-entry absolute deadline alone.
            (self.absolute.or(defaults.absolute), self.sliding)
        } else {
            (defaults.absolute, defaults.sliding)
        };
        EntryOptions {
            absolute,
            sliding,
            compress: self.compress.or(defaults.compress),
            encrypt: self.encrypt.or(defaults.encrypt),
            no_expiration: self.no_expiration
                || (absolute.is_none() && sliding.is_none() && defaults.no_expiration),
            jitter: self.jitter.or(defaults.jitter),
            skip: Skip(self.skip.0 | defaults.skip.0),
            absent: self.absent || defaults.absent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_entry_fields_win_over_defaults() {
        let d = EntryOptions::new()
            .absolute_expiration(Duration::from_secs(3600))
            .encrypt(true);
        let e = EntryOptions::new()
            .sliding_expiration(Duration::from_secs(10))
            .or(&d);
        assert_eq!(e.get_sliding_expiration(), Some(Duration::from_secs(10)));
        assert_eq!(
            e.get_absolute_expiration(),
            Some(Absolute::After(Duration::from_secs(3600)))
        );
        assert_eq!(e.get_encrypt(), Some(true));
    }

    #[test]
    fn no_expiration_overrides_default_ttl() {
        let d = EntryOptions::new().absolute_expiration(Duration::from_secs(5));
        let e = EntryOptions::new().no_expiration().or(&d);
        assert_eq!(e.get_absolute_expiration(), None);
        assert_eq!(e.get_sliding_expiration(), None);
    }

    #[test]
    fn default_sliding_is_not_mixed_with_per_entry_absolute() {
        let d = EntryOptions::new().sliding_expiration(Duration::from_secs(5));
        let e = EntryOptions::new()
            .absolute_expiration(Duration::from_secs(60))
            .or(&d);
        assert_eq!(e.get_sliding_expiration(), None);
    }
}
