//! `cargo xtask deny`: cargo-deny, offline against the RustSec snapshot in `../shared` when
//! it is there (CI), else with cargo-deny's own fetched database. It says which it used.
//!
//! cargo-deny keeps each advisory database as a git checkout in
//! `<db-path>/<last url segment>-<xxhash64(lowercased url) as 16 hex digits>` and, when it may not
//! fetch (`--offline`), refuses a checkout whose HEAD commit is older than
//! `maximum-db-staleness`. So we copy the snapshot into a fresh temp dir under exactly that
//! name, commit it (the commit time is "now"), and point `db-path` at the temp dir through the
//! `MEMSTACHE_ADVISORY_DBS` variable that `deny.toml` reads.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{Res, TempDir, cargo, copy_dir, fail, run, status, workspace_root};

/// The advisory database URL; must match `db-urls` in `deny.toml` (a test checks it).
pub(crate) const ADVISORY_DB_URL: &str = "https://github.com/rustsec/advisory-db";

/// The environment variable `deny.toml`'s `db-path` is read from.
pub(crate) const DB_PATH_VAR: &str = "MEMSTACHE_ADVISORY_DBS";

/// The directory name cargo-deny uses for a database URL (see `url_to_db_path` in cargo-deny).
pub(crate) fn db_dir_name(url: &str) -> String {
    let url = url.to_lowercase();
    let name = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("empty_");
    format!("{name}-{:016x}", xxhash64(url.as_bytes(), 0xca80_de71))
}

/// Where the RustSec snapshot lives: `<workspace root>/../shared/advisory-db`.
fn snapshot_dir() -> PathBuf {
    workspace_root()
        .join("..")
        .join("shared")
        .join("advisory-db")
}

/// Which advisory database a run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Database {
    /// The snapshot in this directory, offline.
    Snapshot(PathBuf),
    /// cargo-deny's default: fetched from [`ADVISORY_DB_URL`] into `deny.toml`'s default
    /// `db-path` (`target/advisory-dbs`).
    Fetched,
}

impl Database {
    /// The snapshot when `snapshot` holds one (a `crates` directory), else the fetched one.
    pub(crate) fn choose(snapshot: &Path, is_dir: impl Fn(&Path) -> bool) -> Database {
        if is_dir(&snapshot.join("crates")) {
            Database::Snapshot(snapshot.to_path_buf())
        } else {
            Database::Fetched
        }
    }

    /// One line saying which database is used.
    pub(crate) fn describe(&self, snapshot: &Path) -> String {
        match self {
            Database::Snapshot(dir) => format!(
                "the RustSec snapshot in {} (offline, committed into a temp copy)",
                dir.display()
            ),
            Database::Fetched => format!(
                "cargo-deny's default database, fetched from {ADVISORY_DB_URL} into \
                 target/advisory-dbs (no snapshot at {})",
                snapshot.display()
            ),
        }
    }
}

/// Runs cargo-deny's checks with the snapshot (offline) or the fetched database; installs
/// cargo-deny first if missing.
pub(crate) fn deny(extra: &[String]) -> Res {
    let snapshot = snapshot_dir();
    let database = Database::choose(&snapshot, Path::is_dir);
    let used = database.describe(&snapshot);
    println!("deny: advisory database: {used}");
    ensure_cargo_deny()?;

    let mut cmd = cargo();
    // Held until cargo-deny is done: the temp copy of the snapshot.
    let _tmp = match &database {
        Database::Snapshot(dir) => {
            let tmp = TempDir::new("memstache-advisory-dbs")?;
            prepare_db(dir, &tmp.path().join(db_dir_name(ADVISORY_DB_URL)))?;
            cmd.env(DB_PATH_VAR, tmp.path()).args(["deny", "--offline"]);
            Some(tmp)
        }
        Database::Fetched => {
            cmd.env_remove(DB_PATH_VAR).arg("deny");
            None
        }
    };
    cmd.args(["--workspace", "--all-features", "check"])
        .args(extra);
    if let Err(e) = run(&mut cmd) {
        if database == Database::Fetched {
            return Err(fail!(
                "{e}; with no snapshot at {}, cargo-deny needs to fetch {ADVISORY_DB_URL} \
                 (offline? put a checkout of it at that path)",
                snapshot.display()
            ));
        }
        return Err(e);
    }
    println!("deny: advisories, bans, licenses and sources ok (advisory database: {used})");
    Ok(())
}

/// Copies the snapshot to `db` and commits it, so that cargo-deny sees a fresh git checkout.
fn prepare_db(snapshot: &Path, db: &Path) -> Res {
    copy_dir(snapshot, db)?;
    let git = |args: &[&str]| {
        let mut cmd = Command::new("git");
        cmd.current_dir(db)
            .args([
                "-c",
                "user.name=memstache xtask",
                "-c",
                "user.email=xtask@localhost",
                "-c",
                "commit.gpgsign=false",
                "-c",
                "core.hooksPath=/dev/null",
            ])
            .args(args);
        cmd
    };
    crate::util::output(&mut git(&["init", "-q"]))?;
    crate::util::output(&mut git(&["add", "-A"]))?;
    crate::util::output(&mut git(&[
        "commit",
        "-q",
        "--no-verify",
        "-m",
        "RustSec advisory-db snapshot from ../shared",
    ]))?;
    Ok(())
}

/// Installs cargo-deny with `cargo install --locked cargo-deny` when `cargo deny` is missing.
fn ensure_cargo_deny() -> Res {
    let present = cargo()
        .args(["deny", "--version"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    eprintln!("cargo-deny is missing; installing it");
    let st = status(cargo().args(["install", "--locked", "cargo-deny"]))?;
    if st.success() {
        Ok(())
    } else {
        Err(fail!("`cargo install --locked cargo-deny` failed ({st})"))
    }
}

/// XXH64 (the one-shot form), as cargo-deny uses it to name database directories.
pub(crate) fn xxhash64(input: &[u8], seed: u64) -> u64 {
    const P1: u64 = 0x9E37_79B1_85EB_CA87;
    const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const P3: u64 = 0x1656_67B1_9E37_79F9;
    const P4: u64 = 0x85EB_CA77_C2B2_AE63;
    const P5: u64 = 0x27D4_EB2F_1656_67C5;
    let read64 = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]));
    let read32 = |b: &[u8]| u32::from_le_bytes(b[..4].try_into().unwrap_or([0; 4]));
    let round = |acc: u64, lane: u64| {
        acc.wrapping_add(lane.wrapping_mul(P2))
            .rotate_left(31)
            .wrapping_mul(P1)
    };
    let merge = |acc: u64, v: u64| (acc ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4);

    let mut rest = input;
    let mut h = if input.len() >= 32 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while rest.len() >= 32 {
            for (i, lane) in v.iter_mut().enumerate() {
                *lane = round(*lane, read64(&rest[i * 8..]));
            }
            rest = &rest[32..];
        }
        let mut h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        for lane in v {
            h = merge(h, lane);
        }
        h
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(input.len() as u64);
    while rest.len() >= 8 {
        h ^= round(0, read64(rest));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        h ^= u64::from(read32(rest)).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        rest = &rest[4..];
    }
    for &b in rest {
        h ^= u64::from(b).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxhash64_matches_reference_vectors() {
        // Reference values from the xxHash specification's test suite.
        assert_eq!(xxhash64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxhash64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(xxhash64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
        assert_eq!(
            xxhash64(b"Nobody inspects the spammish repetition", 0),
            0xFBCE_A83C_8A37_8BF1
        );
    }

    #[test]
    fn db_dir_name_matches_what_cargo_deny_expects_for_rustsec() {
        // The name the snapshot's SNAPSHOT.md gives for the default RustSec URL.
        assert_eq!(db_dir_name(ADVISORY_DB_URL), "advisory-db-3157b0e258782691");
        // cargo-deny lowercases the URL before hashing.
        assert_eq!(
            db_dir_name("https://github.com/RustSec/advisory-db"),
            db_dir_name(ADVISORY_DB_URL)
        );
    }

    #[test]
    fn the_snapshot_is_used_when_there_and_the_fetched_database_otherwise() {
        let snapshot = Path::new("/w/../shared/advisory-db");
        let there = Database::choose(snapshot, |p| p.ends_with("advisory-db/crates"));
        assert_eq!(there, Database::Snapshot(snapshot.to_path_buf()));
        assert!(
            there
                .describe(snapshot)
                .contains("RustSec snapshot in /w/../shared")
        );
        let absent = Database::choose(snapshot, |_| false);
        assert_eq!(absent, Database::Fetched);
        let said = absent.describe(snapshot);
        assert!(
            said.contains("fetched from https://github.com/rustsec/advisory-db"),
            "{said}"
        );
        assert!(
            said.contains("no snapshot at /w/../shared/advisory-db"),
            "{said}"
        );
    }

    #[test]
    fn deny_toml_uses_the_same_url_and_db_path_variable() {
        let toml = std::fs::read_to_string(workspace_root().join("deny.toml")).unwrap();
        assert!(toml.contains(&format!("\"{ADVISORY_DB_URL}\"")));
        assert!(toml.contains(&format!("${{{DB_PATH_VAR}")));
    }
}
