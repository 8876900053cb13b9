//! Arbitrary bytes through the envelope decoder: must never panic, and a decoded envelope's
//! claimed length must respect the bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memstache_core::envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = envelope::decode(data, 1 << 20) {
        assert!(e.header.plain_len as usize <= 1 << 20);
        assert!(e.header_bytes.len() + e.body.len() <= data.len());
    }
    let _ = envelope::peek_expiry(data);
});
