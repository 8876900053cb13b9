//! The tenancy suite: isolation (also under concurrency, with adversarial ids and keys),
//! O(1) clear, clears seen by a second instance, lost and malformed generations, bad tenant
//! ids.

use std::collections::HashMap;

use memstache_core::{EntryOptions, ErrorKind, MemStache};
use memstache_tenancy::TenantManager;

use super::Harness;

/// Tenant ids that look like separators, prefixes and each other.
pub const ADVERSARIAL_TENANTS: &[&str] = &[
    "a", "a.b", "a-b", "a_b", "ab", "b", "gen", "A", "0", "a.", ".a", "-",
];

/// User keys that contain separators, braces, the generation key's shape, unicode.
pub const ADVERSARIAL_KEYS: &[&str] = &[
    "k",
    "b:c",
    ":",
    "::",
    "a:b",
    "gen",
    ":gen",
    "}:gen",
    "{a}",
    "{a}:0000000000000000:k",
    "#",
    "ns#{a}:gen",
    "ключ",
    "🦀",
    " ",
    "a%3Ab",
];

fn managers(h: &dyn Harness) -> (MemStache, TenantManager) {
    let cache = h.cache();
    (cache.clone(), TenantManager::new(cache))
}

/// Every (tenant, key) pair is its own entry: writing all pairs and reading them back gives
/// each pair its own value, and the cache's own (non-tenant) keys are separate too.
pub async fn tenants_are_isolated(h: &dyn Harness) {
    let (cache, tenants) = managers(h);
    let mut expected = HashMap::new();
    for (ti, t) in ADVERSARIAL_TENANTS.iter().enumerate() {
        let tc = tenants.tenant(t).unwrap();
        for (ki, k) in ADVERSARIAL_KEYS.iter().enumerate() {
            let v = (ti * 1000 + ki) as u64;
            tc.set(k, &v, EntryOptions::default()).await.unwrap();
            expected.insert((*t, *k), v);
        }
    }
    for k in ADVERSARIAL_KEYS {
        cache
            .set(k, &u64::MAX, EntryOptions::default())
            .await
            .unwrap();
    }
    for ((t, k), v) in &expected {
        let got: Option<u64> = tenants.tenant(t).unwrap().get(k).await.unwrap();
        assert_eq!(got, Some(*v), "tenant {t:?} key {k:?}");
    }
    for k in ADVERSARIAL_KEYS {
        assert_eq!(
            cache.get::<u64>(k).await.unwrap(),
            Some(u64::MAX),
            "root key {k:?}"
        );
    }
    // removing in one tenant leaves the others
    let a = tenants.tenant("a").unwrap();
    assert!(a.remove("k").await.unwrap());
    assert_eq!(a.get::<u64>("k").await.unwrap(), None);
    assert!(tenants.tenant("ab").unwrap().exists("k").await.unwrap());
}

/// Many tasks on many tenants at once each read back only their own values.
pub async fn isolation_under_concurrency(h: &dyn Harness) {
    let (_, tenants) = managers(h);
    let mut tasks = Vec::new();
    for (ti, t) in ADVERSARIAL_TENANTS.iter().enumerate() {
        let tc = tenants.tenant(t).unwrap();
        tasks.push(tokio::spawn(async move {
            for round in 0..10u64 {
                for (ki, k) in ADVERSARIAL_KEYS.iter().enumerate() {
                    let v = (ti as u64) << 32 | (ki as u64) << 8 | round;
                    tc.set(k, &v, EntryOptions::default()).await.unwrap();
                    let got: Option<u64> = tc.get(k).await.unwrap();
                    assert_eq!(got, Some(v));
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("tenant task panicked");
    }
}

/// `clear()` makes every earlier entry of the tenant unreadable, leaves other tenants alone,
/// and later writes are readable.
pub async fn clear_is_o1_and_scoped(h: &dyn Harness) {
    let (_, tenants) = managers(h);
    let acme = tenants.tenant("acme").unwrap();
    let globex = tenants.tenant("globex").unwrap();
    let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
    for k in &keys {
        acme.set(k, &1u8, EntryOptions::default()).await.unwrap();
        globex.set(k, &2u8, EntryOptions::default()).await.unwrap();
    }
    acme.clear().await.unwrap();
    let got: Vec<Option<u8>> = acme.get_many(&keys).await.unwrap();
    assert!(
        got.iter().all(Option::is_none),
        "cleared entries still readable"
    );
    let got: Vec<Option<u8>> = globex.get_many(&keys).await.unwrap();
    assert!(
        got.iter().all(|v| *v == Some(2)),
        "other tenant was cleared"
    );
    acme.set("after", &3u8, EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(acme.get::<u8>("after").await.unwrap(), Some(3));
    let v: u8 = acme
        .get_or_set("k1", EntryOptions::default(), || async {
            Ok::<_, std::io::Error>(9u8)
        })
        .await
        .unwrap();
    assert_eq!(v, 9, "get_or_set after clear loads afresh");
}

/// A clear on one instance is seen at once by a second instance sharing the backend, even
/// though the second had the old generation cached; and the second instance's next write
/// lands in the new generation.
pub async fn clear_is_seen_by_another_instance(h: &dyn Harness) {
    let node_a = h.cache();
    let node_b = h.builder().namespace(node_a.namespace()).build().unwrap();
    let a = TenantManager::new(node_a).tenant("acme").unwrap();
    let b = TenantManager::new(node_b).tenant("acme").unwrap();
    a.set("k", &1u8, EntryOptions::default()).await.unwrap();
    assert_eq!(b.get::<u8>("k").await.unwrap(), Some(1)); // b caches the generation
    a.clear().await.unwrap();
    assert_eq!(
        b.get::<u8>("k").await.unwrap(),
        None,
        "b served a cleared entry"
    );
    let got: Vec<Option<u8>> = b.get_many(&["k"]).await.unwrap();
    assert_eq!(got, vec![None]);
    // b writes after the clear (its cached generation was refreshed by the reads above, but a
    // write refreshes it anyway); a sees it
    b.set("k2", &2u8, EntryOptions::default()).await.unwrap();
    assert_eq!(a.get::<u8>("k2").await.unwrap(), Some(2));
    // a clears again; b's write with a now-stale cache still lands in the new generation
    a.clear().await.unwrap();
    b.set("k3", &3u8, EntryOptions::default()).await.unwrap();
    assert_eq!(a.get::<u8>("k3").await.unwrap(), Some(3));
    // and b's get_or_set_many with a stale cache: the old generation's k3 is not served, the
    // new generation is adopted, the loader runs once and its values land there
    a.clear().await.unwrap();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let got: Vec<Option<u8>> = b
        .get_or_set_many(&["k3", "k4"], EntryOptions::default(), |keys| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok::<_, std::io::Error>(keys.into_iter().zip([30u8, 40])) }
        })
        .await
        .unwrap();
    assert_eq!(got, vec![Some(30), Some(40)], "a cleared entry was served");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(a.get::<u8>("k4").await.unwrap(), Some(40));
}

/// If the generation is lost (evicted, flushed), old entries stay unreadable: a new random
/// generation is created, never an old one.
pub async fn lost_generation_never_resurrects(h: &dyn Harness) {
    let (cache, tenants) = managers(h);
    let acme = tenants.tenant("acme").unwrap();
    acme.set("k", &1u8, EntryOptions::default()).await.unwrap();
    let gen_key = format!("{}#{{acme}}:gen", cache.namespace());
    assert!(
        h.backend().remove(&gen_key).await.unwrap(),
        "generation key is where documented"
    );
    let fresh = TenantManager::new(cache.clone()).tenant("acme").unwrap();
    assert_eq!(fresh.get::<u8>("k").await.unwrap(), None);
    assert_eq!(acme.get::<u8>("k").await.unwrap(), None);
}

/// A generation key holding something that is not a token (written by another program, a
/// truncated value, an attacker) does not block the tenant: the next operation starts a new
/// generation — which clears the tenant, never resurrects anything — on this node and on one
/// that still knew the old token.
pub async fn malformed_generation_starts_a_new_one(h: &dyn Harness) {
    let (cache, tenants) = managers(h);
    let acme = tenants.tenant("malformed").unwrap();
    acme.set("k", &1u8, EntryOptions::default()).await.unwrap();
    let gen_key = format!("{}#{{malformed}}:gen", cache.namespace());
    for junk in [&b"not-a-token"[..], b"", b"0123456789abcdeg", &[0xff; 16]] {
        h.backend()
            .set(
                &gen_key,
                bytes::Bytes::copy_from_slice(junk),
                memstache_core::raw::Expiry::NEVER,
            )
            .await
            .unwrap();
        let fresh = TenantManager::new(cache.clone())
            .tenant("malformed")
            .unwrap();
        assert_eq!(fresh.get::<u8>("k").await.unwrap(), None, "{junk:?}");
        fresh.set("k", &2u8, EntryOptions::default()).await.unwrap();
        assert_eq!(fresh.get::<u8>("k").await.unwrap(), Some(2), "{junk:?}");
        // The node that knew the old token follows the new generation.
        assert_eq!(acme.get::<u8>("k").await.unwrap(), Some(2), "{junk:?}");
        acme.set("k", &1u8, EntryOptions::default()).await.unwrap();
    }
}

/// Bad tenant ids are `InvalidTenant`.
pub async fn invalid_tenant_ids_are_rejected(h: &dyn Harness) {
    let (_, tenants) = managers(h);
    let long = "t".repeat(49);
    for bad in [
        "",
        "a:b",
        "a}b",
        "{a",
        "a b",
        "a\n",
        "ü",
        "a#b",
        long.as_str(),
    ] {
        let e = tenants.tenant(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidTenant, "{bad:?}");
    }
    assert!(tenants.tenant(&"t".repeat(48)).is_ok());
}

/// Tenant entries expire like any other, with the tenant's own options.
pub async fn tenant_entries_expire(h: &dyn Harness) {
    let (_, tenants) = managers(h);
    let t = tenants.tenant("ttl").unwrap();
    t.set(
        "k",
        &1u8,
        EntryOptions::new().absolute_expiration(std::time::Duration::from_millis(400)),
    )
    .await
    .unwrap();
    assert_eq!(t.get::<u8>("k").await.unwrap(), Some(1));
    h.advance(std::time::Duration::from_millis(600)).await;
    assert_eq!(t.get::<u8>("k").await.unwrap(), None);
}

/// Every tenancy case, one after the other, on one harness.
pub async fn run_tenancy(h: &dyn Harness) {
    macro_rules! run {
        ($($name:ident),*) => {$(
            eprintln!("tenancy case: {}", stringify!($name));
            $name(h).await;
        )*};
    }
    run!(
        tenants_are_isolated,
        isolation_under_concurrency,
        clear_is_o1_and_scoped,
        clear_is_seen_by_another_instance,
        lost_generation_never_resurrects,
        malformed_generation_starts_a_new_one,
        invalid_tenant_ids_are_rejected,
        tenant_entries_expire
    );
}
