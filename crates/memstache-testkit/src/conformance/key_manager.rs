//! Conformance suite for [`KeyManager`] implementations.
//!
//! The checks rotate and destroy keys, so each takes the key id(s) to use: give every run
//! fresh ids (for example with a random suffix) that `current_key` can serve — created on first
//! use, or provisioned beforehand for managers that cannot create keys.
//!
//! ```no_run
//! use memstache_core::raw::KeyManager;
//! use memstache_testkit::conformance::key_manager::run_key_manager_suite;
//!
//! async fn check<M: KeyManager + Clone>(manager: M) {
//!     // `manager.clone()` must share state with `manager`
//!     run_key_manager_suite(&manager, &manager.clone(), "conf-a", "conf-b").await;
//! }
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use memstache_core::ErrorKind;
use memstache_core::raw::{KeyManager, KeyVersion};

use super::encryptor::hex;

/// Runs every check. `manager` and `clone` must share state (a clone of the same handle);
/// `id_a` and `id_b` are two fresh key ids (`id_b` gets destroyed).
pub async fn run_key_manager_suite(
    manager: &dyn KeyManager,
    clone: &dyn KeyManager,
    id_a: &str,
    id_b: &str,
) {
    current_is_stable(manager, id_a).await;
    rotation_keeps_old_versions(manager, id_a).await;
    unknown_version_is_not_found(manager, id_a).await;
    invalid_key_ids_are_rejected(manager).await;
    clones_share_state(manager, clone, id_a).await;
    debug_shows_no_key_bytes(manager, id_a).await;
    destroy_is_final(manager, clone, id_b).await;
}

/// Two `current_key` calls without rotation give the same version and bytes.
pub async fn current_is_stable(m: &dyn KeyManager, id: &str) {
    let a = m.current_key(id).await.expect("current_key");
    let b = m.current_key(id).await.expect("current_key");
    assert_eq!(a.key_id, id);
    assert!(a.version >= 1, "versions start at 1");
    assert_eq!(a.version, b.version);
    assert_eq!(a.material.expose(), b.material.expose());
    assert!(!a.material.is_empty());
}

/// `rotate_key` makes a new, higher, different version current; every older version stays
/// readable with its original bytes.
pub async fn rotation_keeps_old_versions(m: &dyn KeyManager, id: &str) {
    let mut seen: Vec<std::sync::Arc<KeyVersion>> =
        vec![m.current_key(id).await.expect("current_key")];
    for _ in 0..3 {
        let new = m.rotate_key(id).await.expect("rotate_key");
        let last = seen.last().expect("non-empty");
        assert_eq!(new.key_id, id);
        assert!(
            new.version > last.version,
            "rotation must increase the version"
        );
        assert_ne!(
            new.material.expose(),
            last.material.expose(),
            "rotation must change the key"
        );
        let current = m.current_key(id).await.expect("current_key");
        assert_eq!(
            current.version, new.version,
            "the rotated version is current"
        );
        assert_eq!(current.material.expose(), new.material.expose());
        seen.push(new);
    }
    for old in &seen {
        let again = m
            .key(id, old.version)
            .await
            .expect("old versions stay readable");
        assert_eq!(again.version, old.version);
        assert_eq!(
            again.material.expose(),
            old.material.expose(),
            "v{} changed",
            old.version
        );
    }
}

/// A version that was never created, version 0, and an unknown id are `KeyNotFound`.
pub async fn unknown_version_is_not_found(m: &dyn KeyManager, id: &str) {
    let current = m.current_key(id).await.expect("current_key").version;
    for v in [0, current + 1, u32::MAX] {
        let err = m.key(id, v).await.expect_err("unknown version");
        assert_eq!(err.kind(), ErrorKind::KeyNotFound, "version {v}: {err}");
    }
    let err = m
        .key("conformance-never-created", 1)
        .await
        .expect_err("unknown id");
    assert_eq!(err.kind(), ErrorKind::KeyNotFound, "{err}");
}

/// Key ids outside `[A-Za-z0-9._:-]{1,64}` are errors, never keys.
pub async fn invalid_key_ids_are_rejected(m: &dyn KeyManager) {
    let long = "x".repeat(65);
    for bad in ["", "has space", "new\nline", "ünïcode", long.as_str()] {
        assert!(m.current_key(bad).await.is_err(), "current_key({bad:?})");
        assert!(m.key(bad, 1).await.is_err(), "key({bad:?}, 1)");
        assert!(m.rotate_key(bad).await.is_err(), "rotate_key({bad:?})");
    }
}

/// A rotation through one handle is seen by the other.
pub async fn clones_share_state(a: &dyn KeyManager, b: &dyn KeyManager, id: &str) {
    let rotated = a.rotate_key(id).await.expect("rotate_key");
    let seen = b.current_key(id).await.expect("current_key on the clone");
    assert_eq!(
        seen.version, rotated.version,
        "the clone does not see the rotation"
    );
    assert_eq!(seen.material.expose(), rotated.material.expose());
}

/// `Debug` of the manager and of its keys shows neither the key bytes nor their hex or base64.
pub async fn debug_shows_no_key_bytes(m: &dyn KeyManager, id: &str) {
    let k = m.current_key(id).await.expect("current_key");
    let old = m.key(id, 1).await.ok();
    let shown = format!("{m:?} {m:#?} {k:?} {k:#?} {:?}", old);
    for key in std::iter::once(&k).chain(old.as_ref()) {
        let bytes = key.material.expose();
        let forms = [
            hex(bytes),
            hex(bytes).to_uppercase(),
            STANDARD.encode(bytes),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            format!("{bytes:?}"),
        ];
        for form in forms {
            // Compare a long prefix: the full form, or a distinctive 16-character piece of it.
            let probe: String = form.chars().take(16).collect();
            assert!(
                !shown.contains(&probe),
                "Debug output contains key material: {probe}"
            );
        }
    }
    assert!(shown.contains(id), "Debug should name the key ids it holds");
}

/// After `destroy_key(id)` every version, the current key and a rotation are `KeyDestroyed`,
/// through both handles; `current_key` does not re-create the id.
pub async fn destroy_is_final(m: &dyn KeyManager, clone: &dyn KeyManager, id: &str) {
    let v1 = m.current_key(id).await.expect("current_key");
    let v2 = m.rotate_key(id).await.expect("rotate_key");
    m.destroy_key(id).await.expect("destroy_key");
    for handle in [m, clone] {
        for v in [v1.version, v2.version] {
            let err = handle.key(id, v).await.expect_err("destroyed version");
            assert_eq!(err.kind(), ErrorKind::KeyDestroyed, "key({id}, {v}): {err}");
        }
        let err = handle.current_key(id).await.expect_err("destroyed id");
        assert_eq!(
            err.kind(),
            ErrorKind::KeyDestroyed,
            "current_key after destroy: {err}"
        );
        let err = handle
            .rotate_key(id)
            .await
            .expect_err("rotate a destroyed id");
        assert_eq!(
            err.kind(),
            ErrorKind::KeyDestroyed,
            "rotate_key after destroy: {err}"
        );
    }
    // and it stays destroyed
    let err = m.current_key(id).await.expect_err("still destroyed");
    assert_eq!(err.kind(), ErrorKind::KeyDestroyed);
}
