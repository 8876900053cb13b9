//! The behaviour suite on the embedded default: `MemoryBackend` (LRU) on a manual clock.

use memstache_testkit::behaviour::MemoryHarness;

memstache_testkit::behaviour_tests!(async { MemoryHarness::new() });

/// The whole suite again with a local tier (L1) in front of the memory backend, on an
/// in-process backplane: every behaviour holds with two tiers.
mod with_local_tier {
    use memstache_core::raw::MemoryBackplane;
    use memstache_core::tiers::LocalTier;
    use memstache_testkit::behaviour::{Configured, MemoryHarness};

    memstache_testkit::behaviour_tests!(async {
        let h = MemoryHarness::new();
        let clock = memstache_testkit::behaviour::Harness::clock(&h);
        Configured::new(h, move |b| {
            b.local_tier(
                LocalTier::new().store(
                    memstache_core::memory::MemoryBackend::builder()
                        .clock(clock.clone())
                        .build()
                        .expect("local store"),
                ),
            )
            .backplane(MemoryBackplane::new())
        })
    });
}
