//! A backend written against `memstache-core` alone passes the whole behaviour suite.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use memstache_core::raw::{Backend, Clock, ManualClock};
use memstache_integration_tests::BTreeBackend;
use memstache_testkit::behaviour::Harness;

#[derive(Debug)]
struct BTreeHarness {
    backend: Arc<dyn Backend>,
    clock: ManualClock,
}

#[async_trait]
impl Harness for BTreeHarness {
    fn backend(&self) -> Arc<dyn Backend> {
        Arc::clone(&self.backend)
    }
    fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.clock.clone())
    }
    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

async fn harness() -> BTreeHarness {
    let clock = ManualClock::starting_now();
    BTreeHarness {
        backend: Arc::new(BTreeBackend::new(Arc::new(clock.clone()))),
        clock,
    }
}

memstache_testkit::behaviour_tests!(harness());
