//! Conformance suites: one per plugin kind, written once against the `memstache_core::raw`
//! traits and run from every implementation's own tests.
//!
//! Each suite is a set of plain functions that panic (like `assert!`) on a violation, plus a
//! `run_*_suite` function that runs them all:
//!
//! * [`compressor`] — round trips, the `max_len` bound, bombs, truncated and corrupt input,
//!   property tests;
//! * [`encryptor`] — round trips, every single-bit flip rejected, wrong AAD and key rejected,
//!   fresh nonces, no plaintext left behind;
//! * [`eviction`] — eviction policies: capacity bound, live and unique victims, unknown ids,
//!   and the memory backend's bounds and expiry with each policy;
//! * [`key_manager`] — rotation, exact versions, destroy, clones sharing state, `Debug` without
//!   key bytes.

pub mod compressor;
pub mod encryptor;
pub mod eviction;
pub mod key_manager;

/// A small, seeded pseudo-random generator (SplitMix64) for reproducible test data.
#[derive(Debug, Clone)]
pub struct TestRng(u64);

impl TestRng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        TestRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `len` random (incompressible) bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// `len` bytes of realistic, moderately compressible data: JSON-like records with
    /// repeated field names, random ids and numbers, and words from a small vocabulary
    /// (compresses roughly 2–4× with zstd or gzip at level 1).
    pub fn records(&mut self, len: usize) -> Vec<u8> {
        const WORDS: [&str; 16] = [
            "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
            "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
        ];
        let mut out = Vec::with_capacity(len + 128);
        while out.len() < len {
            let id = self.next_u64();
            let n = self.next_u64();
            let w1 = WORDS[(n % 16) as usize];
            let w2 = WORDS[((n >> 8) % 16) as usize];
            let line = format!(
                "{{\"id\":\"{id:016x}\",\"name\":\"{w1} {w2}\",\"qty\":{},\"price\":{}.{:02},\"tags\":[\"{w2}\",\"{w1}\"]}}\n",
                (n >> 16) % 1000,
                (n >> 32) % 10_000,
                (n >> 48) % 100
            );
            out.extend_from_slice(line.as_bytes());
        }
        out.truncate(len);
        out
    }
}

/// Whether `needle` (non-empty) occurs in `haystack`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
