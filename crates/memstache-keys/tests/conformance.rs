//! The shared key-manager conformance suite, run against this crate's managers.

use std::sync::Arc;
use std::time::Duration;

use memstache_keys::{CachedKeyManager, LocalKeyManager};
use memstache_testkit::conformance::key_manager;

#[tokio::test]
async fn generated_local_key_manager_passes_the_key_manager_suite() {
    let keys = LocalKeyManager::generate();
    key_manager::run_key_manager_suite(&keys, &keys.clone(), "conf-a", "conf-b").await;
}

#[tokio::test]
async fn loaded_local_key_manager_passes_the_key_manager_suite() {
    let keys = LocalKeyManager::from_keyring_str(
        "conf-a 1 AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n\
         conf-b 1 AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\n",
    )
    .unwrap();
    key_manager::run_key_manager_suite(&keys, &keys.clone(), "conf-a", "conf-b").await;
}

#[tokio::test]
async fn cached_key_manager_passes_the_key_manager_suite() {
    let keys = CachedKeyManager::new(
        Arc::new(LocalKeyManager::generate()),
        Duration::from_secs(300),
    );
    key_manager::run_key_manager_suite(&keys, &keys.clone(), "conf-a", "conf-b").await;
}

#[test]
fn public_types_are_send_sync_clone_and_debug() {
    fn check<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    check::<LocalKeyManager>();
    check::<CachedKeyManager>();
}
