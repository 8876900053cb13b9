//! `cargo xtask msrv`: the toolchain and every resolved dependency must fit our `rust-version`.

use std::cmp::Ordering;
use std::fmt;

use crate::json::{self, Json};
use crate::util::{Res, cargo, fail, output, workspace_root};

/// A Rust version `major.minor.patch` (a missing patch counts as 0; pre-release tags ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RustVersion(u32, u32, u32);

impl RustVersion {
    /// Parses `1.88`, `1.88.0` or `1.96.0-nightly`.
    pub(crate) fn parse(s: &str) -> Option<RustVersion> {
        let core = s.trim().split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(p) => p.parse().ok()?,
            None => 0,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(RustVersion(major, minor, patch))
    }
}

impl fmt::Display for RustVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// Reads `rust-version` from the `[workspace.package]` table of a Cargo.toml.
pub(crate) fn workspace_rust_version(manifest: &str) -> Option<RustVersion> {
    let mut in_table = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_table = line == "[workspace.package]";
            continue;
        }
        if !in_table {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "rust-version" {
            let value = value.split('#').next()?.trim().trim_matches('"');
            return RustVersion::parse(value);
        }
    }
    None
}

/// The version in `rustc --version` output (`rustc 1.95.0 (59807616e 2026-04-14)`).
pub(crate) fn rustc_version(text: &str) -> Option<RustVersion> {
    RustVersion::parse(text.split_whitespace().nth(1)?)
}

/// A package whose declared `rust-version` is newer than ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Offender {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) rust_version: String,
}

/// The packages in `cargo metadata` output that declare a `rust_version` above `msrv`, sorted.
/// A `rust_version` that does not parse is reported as an offender too.
pub(crate) fn offenders(metadata: &Json, msrv: RustVersion) -> Res<Vec<Offender>> {
    let packages = metadata
        .get("packages")
        .and_then(Json::as_array)
        .ok_or_else(|| fail!("cargo metadata output has no `packages` array"))?;
    let mut out = Vec::new();
    for p in packages {
        let Some(rv) = p.get("rust_version").and_then(Json::as_str) else {
            continue;
        };
        let too_new = RustVersion::parse(rv).is_none_or(|v| v.cmp(&msrv) == Ordering::Greater);
        if too_new {
            let field = |k: &str| p.get(k).and_then(Json::as_str).unwrap_or("?").to_owned();
            out.push(Offender {
                name: field("name"),
                version: field("version"),
                rust_version: rv.to_owned(),
            });
        }
    }
    out.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    out.dedup();
    Ok(out)
}

/// Runs the MSRV check on this workspace.
pub(crate) fn check() -> Res {
    let root = workspace_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let msrv = workspace_rust_version(&manifest)
        .ok_or_else(|| fail!("no rust-version in [workspace.package] of Cargo.toml"))?;

    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let rustc_text = output(std::process::Command::new(rustc).arg("--version"))?;
    let toolchain = rustc_version(&rustc_text).ok_or_else(|| {
        fail!(
            "cannot parse `rustc --version` output: {}",
            rustc_text.trim()
        )
    })?;
    if toolchain < msrv {
        return Err(fail!(
            "toolchain rustc {toolchain} is older than the workspace rust-version {msrv}"
        ));
    }

    let text = output(cargo().args(["metadata", "--format-version", "1"]))?;
    let metadata = json::parse(&text).map_err(|e| fail!("cannot parse cargo metadata: {e}"))?;
    let bad = offenders(&metadata, msrv)?;
    let n = metadata
        .get("packages")
        .and_then(Json::as_array)
        .map_or(0, <[Json]>::len);
    if bad.is_empty() {
        println!(
            "msrv: rust-version {msrv}; rustc {toolchain} ok; {n} resolved packages all declare \
             rust-version <= {msrv} or none"
        );
        Ok(())
    } else {
        for o in &bad {
            eprintln!(
                "msrv: {} {} requires rust {} (> {msrv})",
                o.name, o.version, o.rust_version
            );
        }
        Err(fail!(
            "{} package(s) in the dependency graph need a newer Rust than rust-version {msrv}",
            bad.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order() {
        let v = |s| RustVersion::parse(s).unwrap();
        assert_eq!(v("1.88"), RustVersion(1, 88, 0));
        assert_eq!(v("1.88.0"), v("1.88"));
        assert_eq!(v("1.96.0-nightly"), RustVersion(1, 96, 0));
        assert!(v("1.88.1") > v("1.88"));
        assert!(v("1.100") > v("1.99.9"));
        assert!(v("1.9") < v("1.10"));
        for bad in ["", "1", "x.y", "1.2.3.4", "1..2"] {
            assert_eq!(RustVersion::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn reads_rust_version_from_workspace_package_only() {
        let toml = r#"
[package]
rust-version = "1.60"

[workspace.package]
edition = "2024"
rust-version = "1.88" # checked by xtask
license = "MIT"
"#;
        assert_eq!(workspace_rust_version(toml), Some(RustVersion(1, 88, 0)));
        assert_eq!(workspace_rust_version("[workspace.package]\n"), None);
    }

    #[test]
    fn our_manifest_declares_an_msrv() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(workspace_rust_version(&manifest).is_some());
    }

    #[test]
    fn parses_rustc_version_output() {
        assert_eq!(
            rustc_version("rustc 1.95.0 (59807616e 2026-04-14)\n"),
            Some(RustVersion(1, 95, 0))
        );
        assert_eq!(rustc_version("garbage"), None);
    }

    #[test]
    fn lists_packages_newer_than_msrv() {
        let meta = json::parse(
            r#"{"packages": [
                {"name": "old", "version": "1.0.0", "rust_version": "1.60"},
                {"name": "none", "version": "0.1.0", "rust_version": null},
                {"name": "equal", "version": "2.0.0", "rust_version": "1.88.0"},
                {"name": "zeta", "version": "0.3.0", "rust_version": "1.89"},
                {"name": "alpha", "version": "0.9.0", "rust_version": "1.91.1"},
                {"name": "weird", "version": "0.0.1", "rust_version": "soon"}
            ]}"#,
        )
        .unwrap();
        let bad = offenders(&meta, RustVersion(1, 88, 0)).unwrap();
        let names: Vec<_> = bad.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["alpha", "weird", "zeta"]);
        assert_eq!(bad[0].rust_version, "1.91.1");
        assert!(offenders(&Json::Null, RustVersion(1, 88, 0)).is_err());
    }
}
