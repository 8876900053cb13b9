//! The tenancy suite on the memory backend (manual clock).

use memstache_testkit::behaviour::{MemoryHarness, tenancy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_suite_on_memory() {
    tenancy::run_tenancy(&MemoryHarness::new()).await;
}

/// With per-tenant limits, a noisy tenant evicts only its own entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_noisy_tenant_cannot_evict_other_tenants() {
    use memstache_core::EntryOptions;
    use memstache_tenancy::TenantManager;
    use memstache_testkit::behaviour::Harness;

    let h = MemoryHarness::with(|b| {
        b.max_entries(1_000)
            .partition_by(memstache_tenancy::partition_of, 100, 1 << 20)
    });
    let cache = h.cache();
    let tenants = TenantManager::new(cache.clone());
    let quiet = tenants.tenant("quiet").unwrap();
    let noisy = tenants.tenant("noisy").unwrap();
    for i in 0..50 {
        quiet
            .set(&format!("q{i}"), &i, EntryOptions::default())
            .await
            .unwrap();
        cache
            .set(&format!("root{i}"), &i, EntryOptions::default())
            .await
            .unwrap();
    }
    for i in 0..5_000 {
        noisy
            .set(&format!("n{i}"), &i, EntryOptions::default())
            .await
            .unwrap();
    }
    for i in 0..50 {
        assert_eq!(
            quiet.get::<i32>(&format!("q{i}")).await.unwrap(),
            Some(i),
            "quiet tenant lost q{i}"
        );
        assert_eq!(
            cache.get::<i32>(&format!("root{i}")).await.unwrap(),
            Some(i)
        );
    }
    let mem = h.memory();
    let noisy_len = mem
        .partition_len(&memstache_tenancy::partition_name(
            cache.namespace(),
            "noisy",
        ))
        .unwrap();
    assert!(
        noisy_len <= 100,
        "noisy tenant holds {noisy_len} entries over its limit of 100"
    );
    assert!(
        noisy_len >= 50,
        "noisy tenant kept {noisy_len}: the partition is far below its bound"
    );
    // the newest writes of the noisy tenant are there (LRU evicted its oldest)
    assert_eq!(noisy.get::<i32>("n4999").await.unwrap(), Some(4999));
}
