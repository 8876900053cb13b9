//! A backend written against `memstache-core` alone passes the whole behaviour suite.

use std::sync::Arc;

use memstache_core::raw::ManualClock;
use memstache_integration_tests::BTreeBackend;
use memstache_testkit::behaviour::ManualClockHarness;

async fn harness() -> ManualClockHarness {
    let clock = ManualClock::starting_now();
    ManualClockHarness::new(Arc::new(BTreeBackend::new(Arc::new(clock.clone()))), clock)
}

memstache_testkit::behaviour_tests!(harness());
