//! The key hashes are keyed: per process by default, shared only when the operator sets the
//! same secret. Each check runs two child processes (this test binary again, running only
//! `child`), because what matters is what another process — or someone with the logs and a
//! list of guessable keys — can compute.

use std::process::Command;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use memstache_core::memory::MemoryBackend;
use memstache_core::raw::{Backend, EntryId, EntryMeta, EvictionPolicy, EvictionState, Expiry};

const CHILD: &str = "MEMSTACHE_KEY_HASH_CHILD";
const SECRET: &str = "MEMSTACHE_KEY_HASH_SECRET";

/// Records the `key_hash` the memory backend hands its eviction policy (the hash that picks
/// shards and feeds frequency sketches).
#[derive(Debug, Default, Clone)]
struct Recorder(Arc<Mutex<Vec<u64>>>);

struct RecorderState(Arc<Mutex<Vec<u64>>>);

impl EvictionPolicy for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn new_state(&self, _capacity: usize) -> Box<dyn EvictionState> {
        Box::new(RecorderState(Arc::clone(&self.0)))
    }
}

impl EvictionState for RecorderState {
    fn record_insert(&mut self, _id: EntryId, meta: &EntryMeta) {
        self.0.lock().unwrap().push(meta.key_hash);
    }
    fn record_access(&mut self, _id: EntryId) {}
    fn record_remove(&mut self, _id: EntryId) {}
    fn select_victim(&mut self) -> Option<EntryId> {
        None
    }
    fn len(&self) -> usize {
        0
    }
}

/// Not a test of its own: the body of the child processes (does nothing unless `CHILD` is set).
#[tokio::test]
async fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    if let Ok(secret) = std::env::var(SECRET) {
        let secret: [u8; 16] = secret.as_bytes().try_into().expect("16 bytes");
        memstache_core::set_key_hash_secret(secret).expect("first call");
        assert!(
            memstache_core::set_key_hash_secret(secret).is_err(),
            "a second secret is refused"
        );
    }
    let recorder = Recorder::default();
    let backend = MemoryBackend::builder()
        .shards(1)
        .policy(recorder.clone())
        .build()
        .unwrap();
    backend
        .set("user:42", Bytes::from_static(b"v"), Expiry::NEVER)
        .await
        .unwrap();
    let shard_hash = recorder.0.lock().unwrap()[0];
    println!(
        "KEY_HASH={} SHARD_HASH={shard_hash:016x}",
        memstache_core::key_hash("user:42")
    );
}

fn run_child(secret: Option<&str>) -> (String, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1");
    match secret {
        Some(s) => cmd.env(SECRET, s),
        None => cmd.env_remove(SECRET),
    };
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at = stdout
        .find("KEY_HASH=")
        .unwrap_or_else(|| panic!("no hash line in: {stdout}"));
    let line = stdout[at..].lines().next().unwrap_or_default();
    let mut parts = line.split(' ');
    let key = parts
        .next()
        .unwrap()
        .trim_start_matches("KEY_HASH=")
        .to_owned();
    let shard = parts
        .next()
        .unwrap()
        .trim_start_matches("SHARD_HASH=")
        .to_owned();
    (key, shard)
}

/// The FNV-1a variant memstache used before: unkeyed, so anyone could hash `user:42` and find
/// it in the logs.
fn unkeyed_fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    format!("{:016x}", h ^ (h >> 31))
}

#[test]
fn without_a_secret_hashes_differ_between_processes() {
    let (k1, s1) = run_child(None);
    let (k2, s2) = run_child(None);
    assert_eq!(k1.len(), 16);
    assert_ne!(
        k1, k2,
        "log hashes must not be computable outside the process"
    );
    assert_ne!(
        s1, s2,
        "shard hashes must not be computable outside the process"
    );
    assert_ne!(k1, unkeyed_fnv(b"user:42"));
}

#[test]
fn the_same_secret_gives_the_same_log_hash_on_every_node() {
    let (k1, s1) = run_child(Some("0123456789abcdef"));
    let (k2, s2) = run_child(Some("0123456789abcdef"));
    let (k3, _) = run_child(Some("fedcba9876543210"));
    assert_eq!(k1, k2);
    assert_ne!(k1, k3, "another secret, another hash");
    assert_ne!(
        s1, s2,
        "the log secret does not make shard hashes predictable"
    );
}
