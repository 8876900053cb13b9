//! The behaviour suite on the embedded default: `MemoryBackend` (LRU) on a manual clock.

use memstache_testkit::behaviour::MemoryHarness;

memstache_testkit::behaviour_tests!(async { MemoryHarness::new() });
