//! Tenancy under chaos on a real 6-process Redis Cluster: `clear()` racing writes and reads
//! from several nodes, the generation key evicted or overwritten with junk mid-traffic.
//!
//! The property checked throughout: once `clear()` has returned, no read returns a value
//! whose write had completed before that `clear()` started (a cleared entry never comes
//! back), and every write reported `Ok` after the clear returned is readable until the next
//! clear (nothing written is lost except by a clear).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use memstache::redis::RedisBackend;
use memstache::tenancy::TenantManager;
use memstache::{EntryOptions, MemStache};
use memstache_harness::redis::RedisCluster;
use parking_lot::Mutex;

const KEYS: usize = 8;
const WRITERS: usize = 3;
const CLEARS: usize = 40;

/// When each (key, sequence) write returned `Ok`.
type Completed = Arc<Mutex<HashMap<(usize, u64), Instant>>>;

fn node(backend: &RedisBackend) -> TenantManager {
    let cache = MemStache::builder()
        .backend(backend.clone())
        .namespace("chaos")
        .build()
        .expect("cache");
    TenantManager::new(cache)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_racing_writes_never_resurrects_and_loses_nothing_written_after_it() {
    let cluster = RedisCluster::start();
    let backend = RedisBackend::connect(&cluster.url())
        .await
        .expect("connect");
    // Three nodes: two write, one clears and reads (each with its own cached generation).
    let nodes: Vec<TenantManager> = (0..3).map(|_| node(&backend)).collect();
    let completed: Completed = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let seq = Arc::new(AtomicU64::new(1));

    // Clears started and finished so far: a write that starts with no clear in progress,
    // followed by a read with no clear started in between, must be read back.
    let clears = Arc::new(AtomicU64::new(0));
    let cleared = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let tenant = nodes[w % 2].tenant("racer").unwrap();
        let other = nodes[2].tenant("racer").unwrap();
        let (completed, stop, seq) = (Arc::clone(&completed), Arc::clone(&stop), Arc::clone(&seq));
        let (clears, cleared, lost) =
            (Arc::clone(&clears), Arc::clone(&cleared), Arc::clone(&lost));
        writers.push(tokio::spawn(async move {
            let mut ok = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let s = seq.fetch_add(1, Ordering::SeqCst);
                // Each writer has its own keys: no other write races this one on its key.
                let k = w * KEYS + (s as usize) % KEYS;
                let before = clears.load(Ordering::SeqCst);
                let quiet = cleared.load(Ordering::SeqCst) == before;
                if tenant
                    .set(&format!("k{k}"), &s, EntryOptions::default())
                    .await
                    .is_ok()
                {
                    completed.lock().insert((k, s), Instant::now());
                    ok += 1;
                    // Read through the third node: only this writer writes this key, so
                    // anything but this value (or a later one of its own) is a loss.
                    let read = other.get::<u64>(&format!("k{k}")).await;
                    if quiet
                        && clears.load(Ordering::SeqCst) == before
                        && matches!(read, Ok(v) if v.is_none_or(|v| v < s))
                    {
                        lost.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
            ok
        }));
    }

    let clearer = nodes[2].tenant("racer").unwrap();
    let mut resurrected = 0;
    let mut checked = 0;
    for _ in 0..CLEARS {
        tokio::time::sleep(Duration::from_millis(15)).await;
        clears.fetch_add(1, Ordering::SeqCst);
        let started = Instant::now();
        clearer.clear().await.expect("clear");
        cleared.fetch_add(1, Ordering::SeqCst);
        for k in 0..WRITERS * KEYS {
            if let Some(s) = clearer.get::<u64>(&format!("k{k}")).await.expect("get") {
                checked += 1;
                // A write not yet recorded as completed is still in flight: it completes
                // after `started`, which is allowed.
                if completed
                    .lock()
                    .get(&(k, s))
                    .is_some_and(|done| *done < started)
                {
                    resurrected += 1;
                }
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    let mut ok_writes = 0;
    for w in writers {
        ok_writes += w.await.unwrap();
    }
    let lost = lost.load(Ordering::SeqCst);
    println!(
        "{CLEARS} clears racing {ok_writes} Ok writes: {checked} values read after a clear, \
         {resurrected} from before it; {lost} Ok writes not read back with no clear between"
    );
    assert!(ok_writes > 0 && checked > 0, "the race must have happened");
    assert_eq!(resurrected, 0, "a cleared entry came back");
    assert_eq!(lost, 0, "an Ok write was lost without a clear");

    // Quiet now: the last Ok write of every key is what every node reads.
    let mut last = HashMap::new();
    for w in 0..WRITERS {
        let t = nodes[w % 2].tenant("racer").unwrap();
        for k in w * KEYS..(w + 1) * KEYS {
            let s = seq.fetch_add(1, Ordering::SeqCst);
            t.set(&format!("k{k}"), &s, EntryOptions::default())
                .await
                .unwrap();
            last.insert(k, s);
        }
    }
    for n in &nodes {
        let t = n.tenant("racer").unwrap();
        for (k, s) in &last {
            assert_eq!(t.get::<u64>(&format!("k{k}")).await.unwrap(), Some(*s));
        }
    }
}

/// The generation key deleted (evicted) or overwritten with junk while two nodes read and
/// write: operations keep succeeding (at most a temporary error while the generation is
/// re-established), and no value from an earlier generation is ever read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generation_evicted_or_malformed_mid_traffic_only_clears() {
    let cluster = RedisCluster::start();
    let backend = RedisBackend::connect(&cluster.url())
        .await
        .expect("connect");
    let a = node(&backend).tenant("victim").unwrap();
    let b = node(&backend).tenant("victim").unwrap();
    let gen_key = "chaos#{victim}:gen";
    for round in 0u64..20 {
        a.set("k", &round, EntryOptions::default()).await.unwrap();
        assert_eq!(b.get::<u64>("k").await.unwrap(), Some(round));
        if round % 2 == 0 {
            cluster.cmd_for_key(gen_key, &["DEL", gen_key]);
        } else {
            cluster.cmd_for_key(gen_key, &["SET", gen_key, "junk"]);
        }
        // Both nodes see a cleared tenant, never the value of this round.
        assert_eq!(b.get::<u64>("k").await.unwrap(), None, "round {round}");
        assert_eq!(a.get::<u64>("k").await.unwrap(), None, "round {round}");
        // And writing works again at once, seen by the other node.
        b.set("k", &(round + 100), EntryOptions::default())
            .await
            .unwrap();
        assert_eq!(a.get::<u64>("k").await.unwrap(), Some(round + 100));
    }
}

/// A clear made durable with `Durability::Replicas` (a primary and one replica): while the
/// replica cannot acknowledge, `clear()` is a temporary error, never `Ok`; once it returns
/// `Ok`, killing the primary right away and promoting the replica does not bring the cleared
/// entries back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_clear_is_never_ok_unacknowledged_and_survives_a_failover() {
    use memstache::redis::{Durability, RedisConfig};
    use memstache_harness::redis::{RedisServer, wait_until};

    let mut primary = RedisServer::start();
    let port = primary.port().to_string();
    let replica = RedisServer::start_with_args(&["--replicaof", "127.0.0.1", &port]);
    let synced = |r: &RedisServer| {
        r.cmd(&["INFO", "replication"])
            .as_text()
            .is_some_and(|t| t.contains("master_link_status:up"))
    };
    wait_until("the replica to sync", Duration::from_secs(20), || {
        synced(&replica)
    });
    let signal = |sig: &str| {
        let pid = replica.pid().expect("replica running").to_string();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    };

    let mut config = RedisConfig::from_url(&primary.url()).unwrap();
    config.durability = Durability::Replicas {
        replicas: 1,
        timeout: Duration::from_millis(300),
    };
    let backend = RedisBackend::from_config(config).await.unwrap();
    let tenant = node(&backend).tenant("durable").unwrap();
    tenant
        .set("k", &1u8, EntryOptions::default())
        .await
        .unwrap();

    // The replica stopped: the clear cannot be acknowledged, so it is not reported done.
    signal("-STOP");
    let e = tenant.clear().await.expect_err("a clear no replica holds");
    signal("-CONT");
    assert!(e.is_temporary(), "{e:?}");
    wait_until("the replica to catch up", Duration::from_secs(20), || {
        synced(&replica)
    });

    tenant
        .set("k", &2u8, EntryOptions::default())
        .await
        .unwrap();
    tenant
        .clear()
        .await
        .expect("a clear the replica acknowledged");
    // Right after the clear: the primary dies, the replica takes over.
    primary.kill();
    replica.cmd(&["REPLICAOF", "NO", "ONE"]);
    let promoted = RedisBackend::connect(&replica.url()).await.unwrap();
    let after = node(&promoted).tenant("durable").unwrap();
    assert_eq!(
        after.get::<u8>("k").await.unwrap(),
        None,
        "the cleared entry came back after the failover"
    );
}

/// On the Cluster: `clear()`, then the primary of the tenant's slot dies as soon as the clear
/// has reached its replica, and the replica takes over. Every node — one that knew the new
/// token, one that still knew the old, and a new one — reads the tenant as cleared, and writes
/// land in the new generation. (Without `Durability::Replicas`, which a cluster refuses for
/// now, a failover *before* the replica received the clear can undo it: docs/tenancy.md.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_right_after_a_replicated_clear_keeps_the_tenant_cleared() {
    let mut cluster = RedisCluster::start();
    let backend = RedisBackend::connect(&cluster.url())
        .await
        .expect("connect");
    let clearer = node(&backend).tenant("failover").unwrap();
    let stale = node(&backend).tenant("failover").unwrap();
    clearer
        .set("k", &1u8, EntryOptions::default())
        .await
        .unwrap();
    assert_eq!(stale.get::<u8>("k").await.unwrap(), Some(1));

    clearer.clear().await.unwrap();
    let gen_key = "chaos#{failover}:gen";
    let slot = cluster.keyslot(gen_key);
    let old = cluster.master_for_slot(slot).unwrap();
    // As `WAIT` would, but for a write made on another connection: replication offsets.
    cluster.nodes()[old].wait_replicated(Duration::from_secs(10));
    cluster.node_mut(old).kill();
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.master_for_slot(slot).is_none_or(|m| m == old) {
        assert!(
            Instant::now() < deadline,
            "no replica took over slot {slot}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.wait_ok(Duration::from_secs(60));

    // Reads may fail (temporarily) while the clients learn the new topology.
    let fresh = node(&backend).tenant("failover").unwrap();
    for t in [&clearer, &stale, &fresh] {
        let deadline = Instant::now() + Duration::from_secs(60);
        let v = loop {
            match t.get::<u8>("k").await {
                Ok(v) => break v,
                Err(e) => {
                    assert!(e.is_temporary(), "{e:?}");
                    assert!(Instant::now() < deadline, "still failing: {e:?}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        assert_eq!(v, None, "the cleared entry came back after the failover");
    }
    stale.set("k", &2u8, EntryOptions::default()).await.unwrap();
    assert_eq!(fresh.get::<u8>("k").await.unwrap(), Some(2));
    assert_eq!(clearer.get::<u8>("k").await.unwrap(), Some(2));
}
