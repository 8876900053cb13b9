use memstache_core::ErrorKind;

use super::*;

const K1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
const K2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=";

#[tokio::test]
async fn loaded_ring_serves_listed_versions_and_does_not_invent_keys() {
    let keys = LocalKeyManager::from_keyring_str(&format!(
        "# shared ring\ndefault 1 {K1}\ndefault 2 {K2}\ndestroyed gone\n"
    ))
    .unwrap();
    assert!(!keys.auto_create());
    let current = keys.current_key("default").await.unwrap();
    assert_eq!(current.version, 2);
    assert_eq!(current.material.expose(), &[2u8; 32]);
    assert_eq!(
        keys.key("default", 1).await.unwrap().material.expose(),
        &[1u8; 32]
    );

    let err = keys.current_key("other").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyNotFound);
    assert_eq!(err.context_value("key_id"), Some("other"));
    let err = keys.current_key("gone").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyDestroyed);
    let err = keys.rotate_key("gone").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::KeyDestroyed);

    // rotation works in process, and auto-create can be turned on explicitly
    assert_eq!(keys.rotate_key("default").await.unwrap().version, 3);
    let keys = keys.with_auto_create(true);
    assert_eq!(keys.current_key("other").await.unwrap().version, 1);
    assert_eq!(
        keys.current_key("gone").await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
}

#[tokio::test]
async fn generated_keys_are_random_and_distinct_per_id_and_version() {
    let keys = LocalKeyManager::generate();
    let a1 = keys.current_key("a").await.unwrap();
    let b1 = keys.current_key("b").await.unwrap();
    let a2 = keys.rotate_key("a").await.unwrap();
    let other = LocalKeyManager::generate().current_key("a").await.unwrap();
    let all = [&a1, &b1, &a2, &other];
    for (i, x) in all.iter().enumerate() {
        assert_eq!(x.material.len(), 32);
        for y in &all[i + 1..] {
            assert_ne!(x.material.expose(), y.material.expose());
        }
    }
}

#[tokio::test]
async fn export_then_load_gives_the_same_ring_including_destroyed_ids() {
    let keys = LocalKeyManager::generate();
    let a1 = keys.current_key("a").await.unwrap();
    let a2 = keys.rotate_key("a").await.unwrap();
    keys.current_key("b").await.unwrap();
    keys.destroy_key("b").await.unwrap();
    let exported = keys.export_keyring();
    let copy = LocalKeyManager::from_keyring_str(&exported).unwrap();
    assert_eq!(
        copy.key("a", 1).await.unwrap().material.expose(),
        a1.material.expose()
    );
    assert_eq!(
        copy.current_key("a").await.unwrap().material.expose(),
        a2.material.expose()
    );
    assert_eq!(
        copy.current_key("b").await.unwrap_err().kind(),
        ErrorKind::KeyDestroyed
    );
}

#[tokio::test]
async fn concurrent_first_use_creates_exactly_one_version_1() {
    let keys = LocalKeyManager::generate();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let k = keys.clone();
        tasks.push(tokio::spawn(
            async move { k.current_key("race").await.unwrap() },
        ));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.unwrap());
    }
    for k in &got {
        assert_eq!(k.version, 1);
        assert_eq!(k.material.expose(), got[0].material.expose());
    }
}

#[tokio::test]
async fn from_file_reads_a_ring_and_reports_a_missing_file() {
    let dir = std::env::temp_dir().join(format!("memstache-keys-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keyring");
    std::fs::write(&path, format!("default 7 {K1}\n")).unwrap();
    let keys = LocalKeyManager::from_file(&path).unwrap();
    assert_eq!(keys.current_key("default").await.unwrap().version, 7);
    std::fs::remove_dir_all(&dir).unwrap();

    let err = LocalKeyManager::from_file(&path).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(
        std::error::Error::source(&err).is_some(),
        "the io error is kept as source"
    );
}

/// `std::env::set_var` is `unsafe` in edition 2024 (and unsafe code is forbidden here), so the
/// test re-runs itself as a child process with the variable set.
#[test]
fn from_env_reads_a_ring_with_semicolon_separators() {
    const VAR: &str = "MEMSTACHE_KEYS_TEST_KEYRING";
    if let Ok(text) = std::env::var(VAR) {
        assert!(text.contains(';'));
        let keys = LocalKeyManager::from_env(VAR).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let current = rt.block_on(keys.current_key("default")).unwrap();
        assert_eq!(current.version, 2);
        assert_eq!(current.material.expose(), &[2u8; 32]);
        return;
    }
    let err = LocalKeyManager::from_env("MEMSTACHE_KEYS_TEST_NOT_SET").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);

    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "local::tests::from_env_reads_a_ring_with_semicolon_separators",
            "--test-threads=1",
        ])
        .env(VAR, format!("default 1 {K1};default 2 {K2}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "the child run failed: {stdout}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran no test: {stdout}"
    );
}

#[tokio::test]
async fn debug_shows_ids_and_versions_only() {
    let keys =
        LocalKeyManager::from_keyring_str(&format!("default 1 {K1}\ndestroyed old")).unwrap();
    let shown = format!("{keys:?}");
    assert!(shown.contains("default") && shown.contains("old") && shown.contains("destroyed"));
    assert!(
        !shown.contains(K1) && !shown.contains("0101010101"),
        "{shown}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rotations_give_distinct_consecutive_versions() {
    let keys = LocalKeyManager::generate();
    keys.current_key("r").await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let k = keys.clone();
        tasks.push(tokio::spawn(async move {
            k.rotate_key("r").await.unwrap().version
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(versions, (2..=33).collect::<Vec<u32>>());
    assert_eq!(keys.current_key("r").await.unwrap().version, 33);
    for v in 1..=33 {
        assert_eq!(keys.key("r", v).await.unwrap().version, v);
    }
}

#[tokio::test]
async fn rotation_stops_at_the_last_version_with_a_typed_error() {
    let keys = LocalKeyManager::from_keyring_str(&format!("top {} {K1}", u32::MAX)).unwrap();
    let err = keys.rotate_key("top").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Crypto);
    assert_eq!(keys.current_key("top").await.unwrap().version, u32::MAX);
}
