//! `RedisBackend` on a real 3-master + 3-replica Redis Cluster started by the test:
//! cross-slot batches in order, sliding re-arm through the script on every node, eviction
//! mapping on every primary, and an entry surviving the failover of its master.
//!
//! One test function, one cluster (six processes, killed when the function ends or panics).

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{envelope, now_ms, prefix, strs};
use memstache_core::raw::{Backend, BackendEntry, Expiry};
use memstache_harness::redis::{RedisCluster, Reply};
use memstache_redis::RedisBackend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_backend() {
    let mut cluster = RedisCluster::start();
    for client in ["fred", "redis-rs"] {
        eprintln!("client: {client}");
        cluster_checks(&mut cluster, client).await;
    }
}

async fn cluster_checks(cluster: &mut RedisCluster, client: &str) {
    let b = RedisBackend::connect(&format!("{}&client={client}", cluster.url()))
        .await
        .unwrap();
    assert!(b.capabilities().cluster);
    let p = prefix(client);
    let k = |s: &str| format!("{p}:{s}");

    // --- cross-slot batches: every value, in order, keys spread over all three masters
    let keys: Vec<String> = (0..100).map(|i| k(&format!("x{i}"))).collect();
    let masters: HashSet<usize> = keys
        .iter()
        .map(|key| cluster.master_for_slot(cluster.keyslot(key)).unwrap())
        .collect();
    assert_eq!(masters.len(), 3, "the keys live on all three masters");
    let entries: Vec<BackendEntry> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| BackendEntry {
            key: key.clone(),
            value: Bytes::from(format!("value-{i}")),
            expiry: Expiry::new(Some(now_ms() + 60_000), None),
        })
        .collect();
    b.set_many(entries).await.unwrap();
    let mut ask = keys.clone();
    ask.insert(10, k("missing"));
    ask.push(keys[0].clone());
    let got = b.get_many(&strs(&ask)).await.unwrap();
    assert_eq!(got.len(), 102);
    assert_eq!(got[10], None);
    assert_eq!(got[101], Some(Bytes::from_static(b"value-0")));
    for (i, key) in keys.iter().enumerate() {
        let at = if i < 10 { i } else { i + 1 };
        assert_eq!(got[at], Some(Bytes::from(format!("value-{i}"))), "{key}");
    }
    let t = cluster
        .cmd_for_key(&keys[5], &["PTTL", &keys[5]])
        .as_int()
        .unwrap();
    assert!((50_000..=60_000).contains(&t), "PTTL {t}");

    // hash tags keep keys together; single-key ops route anywhere
    b.set(
        "{user1000}.following",
        Bytes::from_static(b"a"),
        Expiry::NEVER,
    )
    .await
    .unwrap();
    b.set(
        "{user1000}.followers",
        Bytes::from_static(b"b"),
        Expiry::NEVER,
    )
    .await
    .unwrap();
    let tagged = b
        .get_many(&["{user1000}.following", "{user1000}.followers"])
        .await
        .unwrap();
    assert_eq!(
        tagged,
        vec![
            Some(Bytes::from_static(b"a")),
            Some(Bytes::from_static(b"b"))
        ]
    );

    // --- sliding re-arm on the cluster (script on whichever node owns the key)
    let sv = envelope(now_ms() + 600_000, 20_000, b"s");
    for i in 0..6 {
        let key = k(&format!("s{i}"));
        b.set(
            &key,
            sv.clone(),
            Expiry::new(None, Some(Duration::from_secs(20))),
        )
        .await
        .unwrap();
        cluster.cmd_for_key(&key, &["PEXPIRE", &key, "1000"]);
    }
    let skeys: Vec<String> = (0..6).map(|i| k(&format!("s{i}"))).collect();
    let got = b.get_many(&strs(&skeys)).await.unwrap();
    assert!(got.iter().all(|v| v.as_ref() == Some(&sv)));
    for key in &skeys {
        let t = cluster.cmd_for_key(key, &["PTTL", key]).as_int().unwrap();
        assert!(t > 15_000, "sliding re-armed on its node, PTTL {t}");
    }

    assert_eq!(b.remove_many(&strs(&keys)).await.unwrap(), 100);
    assert_eq!(b.get_many(&strs(&keys)).await.unwrap(), vec![None; 100]);

    // --- eviction mapping reaches every primary
    let lfu = memstache_eviction::Lfu;
    assert_eq!(b.apply_eviction_policy(&lfu).await.unwrap(), "allkeys-lfu");
    let primaries: Vec<_> = cluster
        .cluster_nodes()
        .into_iter()
        .filter(|n| n.is_master && !n.slots.is_empty())
        .collect();
    assert_eq!(primaries.len(), 3);
    for n in &primaries {
        let i = cluster.index_of_port(n.port).unwrap();
        let r = cluster.nodes()[i].cmd(&["CONFIG", "GET", "maxmemory-policy"]);
        assert_eq!(
            r,
            Reply::Array(vec![
                Reply::Bulk(b"maxmemory-policy".to_vec()),
                Reply::Bulk(b"allkeys-lfu".to_vec())
            ])
        );
    }

    // --- a value written before its master dies is read back after the replica takes over
    let key = k("durable");
    b.set(&key, Bytes::from_static(b"survives"), Expiry::NEVER)
        .await
        .unwrap();
    let slot = cluster.keyslot(&key);
    let old = cluster.master_for_slot(slot).unwrap();
    assert!(cluster.nodes()[old].is_running());
    // (`WAIT` would only count the writes of its own connection, none here: the backend
    // wrote on another. Compare replication offsets instead.)
    cluster.nodes()[old].wait_replicated(Duration::from_secs(10));
    cluster.node_mut(old).kill();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "no replica took over slot {slot}"
        );
        if cluster.master_for_slot(slot).is_some_and(|m| m != old) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.wait_ok(Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(60);
    let value = loop {
        match b.get(&key).await {
            Ok(v) => break v,
            Err(e) => {
                assert!(e.is_temporary(), "failover errors are temporary: {e:?}");
                assert!(Instant::now() < deadline, "still failing: {e:?}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(value, Some(Bytes::from_static(b"survives")));
    // and writes work again on the new master
    b.set(&key, Bytes::from_static(b"again"), Expiry::NEVER)
        .await
        .unwrap();
    assert_eq!(
        b.get(&key).await.unwrap(),
        Some(Bytes::from_static(b"again"))
    );

    // the old master comes back as a replica of the new one: 3 + 3 again for the next run
    cluster.node_mut(old).restart();
    cluster.wait_ok(Duration::from_secs(60));
    cluster.wait_replicas(Duration::from_secs(60));
}
