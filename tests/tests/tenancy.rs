//! Tenancy beyond the shared suite: the storage-key layout is injective (property test),
//! per-tenant encryption keys and crypto-shredding, the tenant id bound into the AAD, the
//! tenant on spans; and the tenancy suite on Redis standalone and Cluster.

use std::collections::HashMap;
use std::sync::Arc;

use memstache::compression::Zstd;
use memstache::crypto::{Aes256Gcm, LocalKeyManager};
use memstache::memory::MemoryBackend;
use memstache::raw::{Backend, Expiry};
use memstache::redis::RedisBackend;
use memstache::tenancy::TenantManager;
use memstache::{EntryOptions, ErrorKind, MemStache};
use memstache_harness::redis::{RedisCluster, RedisServer};
use memstache_testkit::behaviour::{Configured, RealTimeHarness, tenancy};
use proptest::prelude::*;

fn tenant_id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._-]{1,12}",
        // the longest ids, and ids made of separators-looking characters only
        "[A-Za-z0-9._-]{48}",
        "[._-]{1,4}",
    ]
}

fn namespace() -> impl Strategy<Value = String> {
    // namespaces that are prefixes of each other and look like tenant ids
    prop_oneof![
        Just("ns".to_owned()),
        Just("ns.a".to_owned()),
        "[A-Za-z0-9._-]{1,6}"
    ]
}

fn user_key() -> impl Strategy<Value = String> {
    // separators, braces, '#', the token's alphabet, unicode, empty-looking segments, and
    // whole fragments of the layout itself
    proptest::collection::vec(
        prop_oneof![
            Just(":".to_owned()),
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just("#".to_owned()),
            Just("gen".to_owned()),
            Just("ns#{a}:".to_owned()),
            Just(":0123456789abcdef:".to_owned()),
            "[0-9a-f]{1,16}",
            "\\PC{1,3}",
        ],
        1..6,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// No two distinct (namespace, tenant, key) triples — nor a tenant triple and a plain
    /// cache key of any namespace — share a storage key; and the generation keys of distinct
    /// (namespace, tenant) pairs differ from each other and from every entry's key.
    #[test]
    fn storage_keys_are_injective(
        triples in proptest::collection::vec((namespace(), tenant_id(), user_key()), 1..24),
        plain in proptest::collection::vec((namespace(), user_key()), 0..8),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let backend = MemoryBackend::new();
            let cache_of = |ns: &str| {
                MemStache::builder().backend(backend.clone()).namespace(ns).build().unwrap()
            };
            type Owner = (String, Option<String>, String);
            let mut seen: HashMap<String, Owner> = HashMap::new();
            for (ns, t, k) in &triples {
                let sk = TenantManager::new(cache_of(ns))
                    .tenant(t)
                    .unwrap()
                    .storage_key(k)
                    .await
                    .unwrap();
                let owner = (ns.clone(), Some(t.clone()), k.clone());
                if let Some(prev) = seen.insert(sk.clone(), owner.clone()) {
                    prop_assert_eq!(prev, owner, "collision on {}", sk);
                }
                let gen_key = format!("{ns}#{{{t}}}:gen");
                let owner = (ns.clone(), Some(t.clone()), String::from("<generation>"));
                if let Some(prev) = seen.insert(gen_key.clone(), owner.clone()) {
                    prop_assert_eq!(prev, owner, "collision on {}", gen_key);
                }
            }
            for (ns, k) in &plain {
                let sk = cache_of(ns).storage_key(k).unwrap();
                let owner = (ns.clone(), None, k.clone());
                if let Some(prev) = seen.insert(sk.clone(), owner.clone()) {
                    prop_assert_eq!(prev, owner, "collision on {}", sk);
                }
            }
            Ok(())
        })?;
    }
}

fn encrypted_cache(backend: MemoryBackend, keys: &LocalKeyManager) -> MemStache {
    MemStache::builder()
        .backend(backend)
        .namespace("saas")
        .compressor(Zstd::default())
        .encryptor(Aes256Gcm::default())
        .key_manager(keys.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn each_tenant_is_sealed_under_its_own_key_and_can_be_shredded() {
    let backend = MemoryBackend::new();
    let keys = LocalKeyManager::generate();
    let tenants = TenantManager::new(encrypted_cache(backend.clone(), &keys));
    let acme = tenants.tenant("acme").unwrap();
    let globex = tenants.tenant("globex").unwrap();
    acme.set("invoice", &"acme's invoice", EntryOptions::default())
        .await
        .unwrap();
    globex
        .set("invoice", &"globex's invoice", EntryOptions::default())
        .await
        .unwrap();

    let raw = backend
        .get(&acme.storage_key("invoice").await.unwrap())
        .await
        .unwrap()
        .unwrap();
    let env = memstache::envelope::decode(&raw, 1 << 20).unwrap();
    assert_eq!(env.header.key_id, "tenant:acme");

    // a second node with the same key ring reads it
    let node_b = TenantManager::new(encrypted_cache(backend.clone(), &keys));
    assert_eq!(
        node_b
            .tenant("acme")
            .unwrap()
            .get::<String>("invoice")
            .await
            .unwrap()
            .as_deref(),
        Some("acme's invoice")
    );

    acme.destroy_key().await.unwrap();
    for t in [&acme, &node_b.tenant("acme").unwrap()] {
        assert_eq!(
            t.get::<String>("invoice").await.unwrap_err().kind(),
            ErrorKind::KeyDestroyed
        );
        assert_eq!(t.try_get::<String>("invoice").await, None);
    }
    assert_eq!(
        globex.get::<String>("invoice").await.unwrap().as_deref(),
        Some("globex's invoice"),
        "another tenant was shredded"
    );
}

#[tokio::test]
async fn an_entry_replayed_under_another_tenant_fails_authentication() {
    let backend = MemoryBackend::new();
    let keys = LocalKeyManager::generate();
    let tenants = TenantManager::new(encrypted_cache(backend.clone(), &keys));
    let acme = tenants.tenant("acme").unwrap();
    let globex = tenants.tenant("globex").unwrap();
    acme.set("k", &"acme secret", EntryOptions::default())
        .await
        .unwrap();
    globex
        .set("k", &"globex data", EntryOptions::default())
        .await
        .unwrap();
    let stolen = backend
        .get(&acme.storage_key("k").await.unwrap())
        .await
        .unwrap()
        .unwrap();
    let target = globex.storage_key("k").await.unwrap();
    backend.set(&target, stolen, Expiry::NEVER).await.unwrap();
    let e = globex.get::<String>("k").await.unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::Integrity | ErrorKind::KeyNotFound),
        "{:?}",
        e.kind()
    );
    // even a key ring that shares one key id for both tenants would not help: the storage key
    // (tenant and generation) is in the AAD
    let cache = encrypted_cache(backend.clone(), &keys);
    cache
        .set("plain", &"x", EntryOptions::default())
        .await
        .unwrap();
    let root = backend.get("saas:plain").await.unwrap().unwrap();
    backend
        .set("saas:other", root, Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(
        cache.get::<String>("other").await.unwrap_err().kind(),
        ErrorKind::Integrity
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_suite_on_redis_standalone_with_encryption() {
    let server = RedisServer::start();
    let backend = RedisBackend::connect(&server.url()).await.expect("connect");
    tenancy::run_tenancy(&RealTimeHarness::new(Arc::new(backend.clone()))).await;
    let keys = LocalKeyManager::generate();
    let h = Configured::new(RealTimeHarness::new(Arc::new(backend)), move |b| {
        b.encryptor(Aes256Gcm::default()).key_manager(keys.clone())
    });
    tenancy::run_tenancy(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenancy_suite_on_redis_cluster() {
    let cluster = RedisCluster::start();
    let backend = RedisBackend::connect(&cluster.url())
        .await
        .expect("connect");
    tenancy::run_tenancy(&RealTimeHarness::new(Arc::new(backend))).await;
}
