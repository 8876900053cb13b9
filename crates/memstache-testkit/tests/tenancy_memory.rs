//! The tenancy suite on the memory backend (manual clock).

use memstache_testkit::behaviour::{MemoryHarness, tenancy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_suite_on_memory() {
    tenancy::run_tenancy(&MemoryHarness::new()).await;
}
