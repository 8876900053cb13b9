//! Arbitrary bytes stored under a key, read through every cache (plain, gzip, zstd,
//! encrypted) as several types: no panic, only typed entry errors, and no value from an
//! encrypted cache unless the bytes are a genuine sealed entry.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| memstache_fuzz::run_raw(data));
