//! Redis configuration URLs (the only decoding of outside input in memstache-redis reachable
//! through its public API; replies are decoded by redis-rs / fred): no panic, errors are
//! `InvalidConfig`, and neither an error nor a parsed configuration's `Debug` shows the
//! password.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| memstache_fuzz::run_redis_url(data));
