//! Writes under faults, against real `redis-server` processes on both clients: the server is
//! killed (SIGKILL, by PID) while many `set`s and `set_many`s are in flight; after recovery
//! every write that was reported `Ok` must be readable. Each run prints how many `Ok` writes
//! were lost.
//!
//! * standalone, `appendonly yes` + `appendfsync always`, restarted on the same port and data
//!   directory: 0 lost;
//! * standalone without persistence (the harness's `--save '' --appendonly no`): every
//!   acknowledged write is lost — the counter sees losses;
//! * primary + replica, the replica stopped for a moment so that it falls behind, then the
//!   primary killed and the replica promoted: without `WAIT` acknowledged writes are lost;
//!   with [`Durability::Replicas`] 0 lost;
//! * [`Durability::Replicas`] with no replica: every write fails with a temporary `Timeout`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::prefix;
use memstache_core::ErrorKind;
use memstache_core::raw::{Backend, BackendEntry, Expiry};
use memstache_harness::redis::{RedisServer, Reply, wait_until};
use memstache_redis::{Durability, RedisBackend, RedisConfig};
use parking_lot::Mutex;

const CLIENTS: [&str; 2] = ["redis-rs", "fred"];

/// Writers per run (plus one `set_many` writer), and how many acknowledged writes to wait for
/// before the kill.
const WRITERS: usize = 8;
const BATCH: usize = 16;
const KILL_AFTER: usize = 2_000;

async fn connect(url: &str, client: &str, durability: Durability) -> RedisBackend {
    let mut config = RedisConfig::from_url(&format!("{url}?client={client}")).unwrap();
    // bounded commands, so writers in flight at the kill end with an error instead of waiting
    // for a reconnection that never comes
    config.command_timeout = Duration::from_secs(3);
    config.durability = durability;
    RedisBackend::from_config(config).await.unwrap()
}

/// Writers in flight: the keys of every acknowledged write, and the tasks.
struct Writers {
    acked: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    /// Starts `WRITERS` tasks of `set` and one of `set_many` against `backend`, each writing
    /// fresh keys (values of `value_len` bytes, starting with the key) until its first error.
    fn start(backend: &RedisBackend, p: &str, value_len: usize) -> Writers {
        let acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let value = move |key: &str| {
            let mut v = key.as_bytes().to_vec();
            v.resize(value_len.max(key.len()), b'.');
            Bytes::from(v)
        };
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let (b, acked, p) = (backend.clone(), acked.clone(), p.to_owned());
            tasks.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("{p}:{w}:{i}");
                    match b.set(&key, value(&key), Expiry::NEVER).await {
                        Ok(()) => acked.lock().push(key),
                        Err(_) => break,
                    }
                }
            }));
        }
        let (b, acked2, p) = (backend.clone(), acked.clone(), p.to_owned());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let keys: Vec<String> = (0..BATCH).map(|j| format!("{p}:many:{i}:{j}")).collect();
                let entries = keys
                    .iter()
                    .map(|k| BackendEntry {
                        key: k.clone(),
                        value: value(k),
                        expiry: Expiry::NEVER,
                    })
                    .collect();
                match b.set_many(entries).await {
                    Ok(()) => acked2.lock().extend(keys),
                    Err(_) => break,
                }
            }
        }));
        Writers { acked, tasks }
    }

    fn count(&self) -> usize {
        self.acked.lock().len()
    }

    /// Waits (polling) until `n` writes are acknowledged or `limit` passes.
    async fn wait_for(&self, n: usize, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while self.count() < n && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for every writer to meet its first error; the acknowledged keys.
    async fn finish(self) -> Vec<String> {
        for t in self.tasks {
            t.await.unwrap();
        }
        self.acked.lock().clone()
    }
}

/// Runs writers against `backend` until `KILL_AFTER` writes are acknowledged, then kills
/// `server` (SIGKILL) while they are in flight and waits for every writer to meet its first
/// error. The keys of every acknowledged write.
async fn write_until_killed(
    backend: &RedisBackend,
    server: &mut RedisServer,
    p: &str,
) -> Vec<String> {
    let writers = Writers::start(backend, p, 0);
    writers.wait_for(KILL_AFTER, Duration::from_secs(120)).await;
    server.kill();
    writers.finish().await
}

/// Whether the value at each key is the one the writers wrote (it starts with the key).
fn holds_own_value(key: &str, value: Option<&[u8]>) -> bool {
    value.is_some_and(|v| v.starts_with(key.as_bytes()))
}

/// How many of `keys` are missing (or hold another value) on the server at `url`.
async fn lost(url: &str, keys: &[String]) -> usize {
    let b = RedisBackend::connect(url).await.unwrap();
    let mut missing = 0;
    for chunk in keys.chunks(500) {
        let ks: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let got = b.get_many(&ks).await.unwrap();
        missing += ks
            .iter()
            .zip(got)
            .filter(|(k, v)| !holds_own_value(k, v.as_deref()))
            .count();
    }
    b.quit().await;
    missing
}

fn wait_loaded(server: &RedisServer) {
    wait_until(
        "the restarted server to load its data",
        Duration::from_secs(20),
        || {
            // a command on data answers LOADING until the append-only file is read
            !matches!(server.cmd(&["EXISTS", "x"]), Reply::Error(_))
        },
    );
}

/// Kills a standalone server mid-writes, restarts it on the same port and data directory, and
/// returns (acknowledged, lost).
async fn kill_and_recover(args: &[&str], client: &str) -> (usize, usize) {
    let mut server = RedisServer::start_with_args(args);
    let url = server.url();
    let p = prefix(&format!("kill-{client}"));
    let b = connect(&url, client, Durability::Primary).await;
    let acked = write_until_killed(&b, &mut server, &p).await;
    b.quit().await;
    server.restart();
    wait_loaded(&server);
    let lost = lost(&url, &acked).await;
    (acked.len(), lost)
}

/// `appendonly yes` + `appendfsync always`: a SIGKILL mid-writes loses no acknowledged write
/// (asserted). With the default `appendfsync everysec` the count is printed too: a process
/// kill leaves the OS page cache, which Redis wrote before replying, so it is normally 0 as
/// well; only an OS crash or power loss costs up to about a second there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_writes_with_appendfsync_always_loses_no_acknowledged_write() {
    for client in CLIENTS {
        let (acked, lost) =
            kill_and_recover(&["--appendonly", "yes", "--appendfsync", "always"], client).await;
        println!(
            "{client}, appendonly yes, appendfsync always: {acked} writes acknowledged, {lost} lost"
        );
        assert!(acked >= KILL_AFTER);
        assert_eq!(lost, 0, "{client}: acknowledged writes lost");

        let (acked, lost) = kill_and_recover(
            &["--appendonly", "yes", "--appendfsync", "everysec"],
            client,
        )
        .await;
        println!(
            "{client}, appendonly yes, appendfsync everysec: {acked} writes acknowledged, {lost} lost"
        );
    }
}

/// Without persistence, the same kill loses every acknowledged write: the check above can see
/// losses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_writes_without_persistence_loses_acknowledged_writes() {
    for client in CLIENTS {
        let (acked, lost) = kill_and_recover(&[], client).await;
        println!("{client}, no persistence: {acked} writes acknowledged, {lost} lost");
        assert!(acked >= KILL_AFTER);
        assert_eq!(
            lost, acked,
            "{client}: nothing survives a restart without persistence"
        );
    }
}

/// A primary (no persistence) and one replica.
fn primary_and_replica() -> (RedisServer, RedisServer) {
    let primary = RedisServer::start();
    let port = primary.port().to_string();
    let replica = RedisServer::start_with_args(&["--replicaof", "127.0.0.1", &port]);
    wait_until("the replica to sync", Duration::from_secs(20), || {
        replica
            .cmd(&["INFO", "replication"])
            .as_text()
            .is_some_and(|t| t.contains("master_link_status:up"))
    });
    (primary, replica)
}

/// Sends a signal to a process this test started.
fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Writes (16 KiB values) to the primary; after `KILL_AFTER / 4` acknowledgements the replica
/// is stopped (SIGSTOP) so that it falls behind — far past what the kernel's socket buffers
/// hold — then the primary is killed (SIGKILL), the replica resumed, and promoted once it has
/// seen its primary go. (acknowledged, lost on the promoted replica).
async fn failover_run(client: &str, durability: Durability) -> (usize, usize) {
    let (mut primary, replica) = primary_and_replica();
    let p = prefix(&format!("failover-{client}"));
    let b = connect(&primary.url(), client, durability).await;
    let writers = Writers::start(&b, &p, 16 * 1024);
    writers
        .wait_for(KILL_AFTER / 4, Duration::from_secs(120))
        .await;
    let replica_pid = replica.pid().expect("the replica runs");
    signal(replica_pid, "-STOP");
    // ~48 MB more while the replica is stopped (without WAIT; with WAIT none is acknowledged
    // and this waits out the limit)
    writers
        .wait_for(KILL_AFTER / 4 + 3_000, Duration::from_secs(3))
        .await;
    primary.kill();
    signal(replica_pid, "-CONT");
    let acked = writers.finish().await;
    b.quit().await;
    wait_until(
        "the replica to see its primary gone",
        Duration::from_secs(30),
        || {
            replica
                .cmd(&["INFO", "replication"])
                .as_text()
                .is_some_and(|t| t.contains("master_link_status:down"))
        },
    );
    replica.cmd(&["REPLICAOF", "NO", "ONE"]);
    let lost = lost(&replica.url(), &acked).await;
    (acked.len(), lost)
}

/// `Durability::Replicas { replicas: 1 }`: the replica falls behind, the primary is killed
/// mid-writes and the replica promoted; every write reported `Ok` is on it. Without `WAIT`
/// the same run loses the writes the replica had not received (asserted, so the check can see
/// losses).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_a_replica_keeps_every_acknowledged_write_across_a_failover() {
    let durable = Durability::Replicas {
        replicas: 1,
        timeout: Duration::from_secs(1),
    };
    for client in CLIENTS {
        let (acked, lost) = failover_run(client, Durability::Primary).await;
        println!("{client}, failover, no WAIT: {acked} writes acknowledged, {lost} lost");
        assert!(
            lost > 0,
            "{client}: a replica that fell behind lost nothing?"
        );
        let (acked, lost) = failover_run(client, durable).await;
        println!("{client}, failover, WAIT 1: {acked} writes acknowledged, {lost} lost");
        assert!(acked >= KILL_AFTER / 4);
        assert_eq!(
            lost, 0,
            "{client}: acknowledged writes lost in the failover"
        );
    }
}

/// With no replica to acknowledge, every write through the backend (data and control writes
/// alike) fails with a temporary `Timeout` and is not reported written — though it was applied
/// on the primary, as documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_without_enough_replicas_fails_every_write_temporarily() {
    let server = RedisServer::start();
    let durable = Durability::Replicas {
        replicas: 1,
        timeout: Duration::from_millis(50),
    };
    for client in CLIENTS {
        let b = connect(&server.url(), client, durable).await;
        let p = prefix(&format!("nowait-{client}"));
        let k = |s: &str| format!("{p}:{s}");
        let v = || Bytes::from_static(b"v");
        let entry = |s: &str| BackendEntry {
            key: k(s),
            value: v(),
            expiry: Expiry::NEVER,
        };
        server.cmd(&["SET", &k("guard"), "g"]);
        server.cmd(&["SET", &k("lock"), "token"]);
        server.cmd(&["SET", &k("gone"), "x"]);
        server.cmd(&["SET", &k("gone2"), "x"]);
        let results: Vec<(&str, memstache_core::Result<()>)> = vec![
            ("set", b.set(&k("a"), v(), Expiry::NEVER).await),
            ("set_many", b.set_many(vec![entry("b"), entry("c")]).await),
            (
                "set_if_absent",
                b.set_if_absent(&k("d"), v(), Expiry::NEVER)
                    .await
                    .map(|_| ()),
            ),
            (
                "set_many_guarded",
                b.set_many_guarded(&k("guard"), b"g", vec![entry("e")])
                    .await
                    .map(|_| ()),
            ),
            ("remove", b.remove(&k("gone")).await.map(|_| ())),
            (
                "remove_many",
                b.remove_many(&[k("gone2").as_str()]).await.map(|_| ()),
            ),
            (
                "remove_if_equals",
                b.remove_if_equals(&k("lock"), b"token").await.map(|_| ()),
            ),
        ];
        for (op, r) in results {
            let e = r.expect_err(op);
            assert_eq!(e.kind(), ErrorKind::Timeout, "{client} {op}: {e:?}");
            assert!(e.is_temporary(), "{client} {op}");
            assert_eq!(e.context_value("replicas_acknowledged"), Some("0"));
        }
        // applied on the primary nonetheless
        assert_eq!(
            server.cmd(&["GET", &k("a")]).as_text().as_deref(),
            Some("v")
        );
        assert_eq!(server.cmd(&["EXISTS", &k("gone")]).as_int(), Some(0));
        // reads are not affected
        assert_eq!(b.get(&k("a")).await.unwrap().as_deref(), Some(&b"v"[..]));
        b.quit().await;
    }
}
