//! `cargo xtask package`: every publishable crate packages (no upload).
//!
//! Runs `cargo package -p <crate>…` for every publishable member (cargo ≥ 1.90 packages several
//! workspace crates against each other, as a registry would see them; the `publish = false`
//! members are left out), after checking that each publishable crate carries both licence
//! texts. See docs/development.md, "Publishing", for the metadata decisions.

use std::path::{Path, PathBuf};

use crate::json::{self, Json};
use crate::util::{Res, cargo, fail, output, run, workspace_root};

/// The licence files every packaged crate must carry (the workspace is `MIT OR Apache-2.0`).
pub(crate) const LICENSE_FILES: [&str; 2] = ["LICENSE-MIT", "LICENSE-APACHE"];

/// A workspace member that `cargo publish` would upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Publishable {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
}

/// The publishable workspace members of `cargo metadata --no-deps` output: `publish` is
/// `null` (any registry) or a non-empty list; `publish = false` shows as `[]`.
pub(crate) fn publishable(metadata: &Json) -> Res<Vec<Publishable>> {
    let packages = metadata
        .get("packages")
        .and_then(Json::as_array)
        .ok_or_else(|| fail!("cargo metadata has no packages"))?;
    let mut out = Vec::new();
    for p in packages {
        let unpublished = p
            .get("publish")
            .and_then(Json::as_array)
            .is_some_and(<[Json]>::is_empty);
        if unpublished {
            continue;
        }
        let name = p.get("name").and_then(Json::as_str).unwrap_or_default();
        let manifest = p
            .get("manifest_path")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let dir = Path::new(manifest)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        out.push(Publishable {
            name: name.to_owned(),
            dir,
        });
    }
    Ok(out)
}

/// The licence problems of one crate: a missing file, or one whose text differs from the
/// root's. `read(path)` reads a file (`None` when it is missing).
pub(crate) fn license_problems(
    krate: &Publishable,
    root: &Path,
    read: impl Fn(&Path) -> Option<Vec<u8>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for file in LICENSE_FILES {
        let want = read(&root.join(file));
        match read(&krate.dir.join(file)) {
            None => problems.push(format!(
                "{}: no {file} (add a symlink: ln -s ../../{file} {}/{file})",
                krate.name,
                krate.dir.display()
            )),
            Some(text) if Some(&text) != want.as_ref() => {
                problems.push(format!("{}: {file} differs from the root's", krate.name));
            }
            Some(_) => {}
        }
    }
    problems
}

/// Checks the licence files, then runs `cargo package --workspace`.
pub(crate) fn package(extra: &[String]) -> Res {
    let root = workspace_root();
    let text = output(cargo().args(["metadata", "--format-version", "1", "--no-deps"]))?;
    let metadata = json::parse(&text).map_err(|e| fail!("cargo metadata: {e}"))?;
    let crates = publishable(&metadata)?;
    if crates.is_empty() {
        return Err(fail!("no publishable crate in the workspace"));
    }
    let problems: Vec<String> = crates
        .iter()
        .flat_map(|c| license_problems(c, &root, |p| std::fs::read(p).ok()))
        .collect();
    if !problems.is_empty() {
        return Err(fail!("licence files: {}", problems.join("; ")));
    }
    let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    println!(
        "package: {} publishable crates: {}",
        names.len(),
        names.join(", ")
    );
    // `--workspace` would package the `publish = false` members too (only `cargo publish
    // --workspace` skips them), so name the publishable ones; cargo still packages them
    // against each other. --allow-dirty: this checks that the crates package, not that the
    // tree is committed (a local `cargo xtask ci` runs on uncommitted work; CI's clone is
    // clean anyway).
    forget_unpacked_own_crates(&names)?;
    let mut cmd = cargo();
    cmd.args(["package", "--allow-dirty", "--locked"]);
    for name in &names {
        cmd.args(["-p", name]);
    }
    run(cmd.args(extra))?;
    println!("package: {} crates packaged (not uploaded)", names.len());
    Ok(())
}

/// Removes the sources cargo unpacked from earlier `cargo package` runs of our own crates.
///
/// To verify crates that depend on each other, `cargo package` serves them from a temporary
/// local registry and unpacks them under `$CARGO_HOME/registry/src/-<hash>/` (the hash is of
/// the workspace's path). It skips unpacking a crate whose directory is already there, so a
/// later run from the same path (a fresh clone at the same place, say) verifies each crate
/// against the *earlier* sources of the crates it depends on: a dependent using an item added
/// since fails to compile. Only our crates' directories under those `-<hash>` registries are
/// removed; crates.io sources are left alone.
fn forget_unpacked_own_crates(names: &[&str]) -> Res {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        let Ok(unpacked) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for dir in unpacked.flatten() {
            let file = dir.file_name();
            let file = file.to_string_lossy();
            if names.iter().any(|n| is_unpacked_crate(&file, n)) {
                std::fs::remove_dir_all(dir.path())
                    .map_err(|e| fail!("removing {}: {e}", dir.path().display()))?;
            }
        }
    }
    Ok(())
}

/// Whether `dir` is `<name>-<version>` (a version starts with a digit).
fn is_unpacked_crate(dir: &str, name: &str) -> bool {
    dir.strip_prefix(name)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn unpacked_crate_dirs_are_recognised_exactly() {
        assert!(super::is_unpacked_crate(
            "memstache-core-0.1.0",
            "memstache-core"
        ));
        assert!(super::is_unpacked_crate("memstache-0.1.0", "memstache"));
        // `memstache` must not claim `memstache-core`'s directory, nor a look-alike
        assert!(!super::is_unpacked_crate(
            "memstache-core-0.1.0",
            "memstache"
        ));
        assert!(!super::is_unpacked_crate(
            "memstache-corex-0.1.0",
            "memstache-core"
        ));
    }

    use super::*;

    #[test]
    fn publishable_skips_publish_false() {
        let meta = json::parse(
            r#"{"packages": [
                {"name": "a", "publish": null, "manifest_path": "/w/crates/a/Cargo.toml"},
                {"name": "xtask", "publish": [], "manifest_path": "/w/xtask/Cargo.toml"},
                {"name": "b", "publish": ["crates-io"], "manifest_path": "/w/b/Cargo.toml"}
            ]}"#,
        )
        .unwrap();
        let names: Vec<String> = publishable(&meta)
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn licence_files_must_exist_and_match_the_root() {
        let krate = Publishable {
            name: "a".to_owned(),
            dir: PathBuf::from("/w/crates/a"),
        };
        let root = Path::new("/w");
        let all_good = |p: &Path| Some(p.file_name()?.to_string_lossy().as_bytes().to_vec());
        assert!(license_problems(&krate, root, all_good).is_empty());
        let none_in_crate = |p: &Path| {
            (!p.starts_with("/w/crates"))
                .then(|| p.file_name().unwrap().as_encoded_bytes().to_vec())
        };
        let problems = license_problems(&krate, root, none_in_crate);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("no LICENSE-MIT"), "{problems:?}");
        let differs = |p: &Path| Some(p.to_string_lossy().as_bytes().to_vec());
        assert!(license_problems(&krate, root, differs)[1].contains("differs"));
    }

    #[test]
    fn the_workspace_crates_carry_both_licences() {
        let root = workspace_root();
        for file in LICENSE_FILES {
            let text = std::fs::read_to_string(root.join(file)).unwrap();
            assert!(text.len() > 1_000, "{file} is not the full text");
        }
        let mit = std::fs::read_to_string(root.join("LICENSE-MIT")).unwrap();
        assert!(mit.contains("Copyright (c) The memstache developers"));
        assert!(
            std::fs::read_to_string(root.join("LICENSE-APACHE"))
                .unwrap()
                .contains("Version 2.0, January 2004")
        );
    }
}
