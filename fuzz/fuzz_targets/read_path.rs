//! Structure-aware: a value written by a real cache (plain, gzip, zstd, encrypted with or
//! without compression), then its entry changed (header fields, payload, raw bytes), the CRC
//! recomputed or the entry re-sealed or not, and read back through the public API on the memory
//! backend. Property: no panic; an unchanged entry reads as the value; a changed entry that is
//! not validly sealed is a typed entry error or a miss (see `memstache_fuzz::run_case`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use memstache_fuzz::{Case, run_case};

fuzz_target!(|case: Case| run_case(&case));
