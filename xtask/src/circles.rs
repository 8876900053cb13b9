//! `cargo xtask circles` (part of `lint`): no two source files of a crate import each other.
//!
//! A file's imports are the `crate::…` and `super::…` paths in its code (comments, doc
//! comments and inline `#[cfg(test)] mod tests { … }` blocks left out), each resolved to the
//! deepest module file of the crate it names. A parent module declaring or re-exporting its
//! children by relative path (`mod ops; pub use ops::X;`) is the module tree, not an import,
//! and is not counted. A pair of files that name each other is a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::util::{Res, fail, workspace_root};

/// Module path (`["cache", "ops"]`) → file.
type Modules = BTreeMap<Vec<String>, PathBuf>;

/// Fails when any crate under `crates/` has an import circle, naming each pair.
pub(crate) fn check() -> Res {
    let crates_dir = workspace_root().join("crates");
    let mut circles = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(&crates_dir)
        .map_err(|e| fail!("reading {}: {e}", crates_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for krate in entries {
        let src = krate.join("src");
        if !src.is_dir() {
            continue;
        }
        let name = krate
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (a, b) in crate_circles(&src)? {
            circles.push(format!("{name}: {a} <-> {b}"));
        }
    }
    if circles.is_empty() {
        println!("circles: no two files of a crate import each other");
        Ok(())
    } else {
        Err(fail!("import circles:\n  {}", circles.join("\n  ")))
    }
}

fn crate_circles(src: &Path) -> Res<Vec<(String, String)>> {
    let mut modules = Modules::new();
    collect(src, src, &mut modules)?;
    let mut edges = BTreeSet::new();
    for (module, file) in &modules {
        let text = fs::read_to_string(file).map_err(|e| fail!("{}: {e}", file.display()))?;
        for target in imports(module, &code_of(&text), &modules) {
            if &target != module {
                edges.insert((module.clone(), target));
            }
        }
    }
    let show = |m: &Vec<String>| {
        if m.is_empty() {
            "lib".to_owned()
        } else {
            m.join("/")
        }
    };
    Ok(edges
        .iter()
        .filter(|(a, b)| a < b && edges.contains(&(b.clone(), a.clone())))
        .map(|(a, b)| (show(a), show(b)))
        .collect())
}

/// Every `.rs` file below `dir` as its module path.
fn collect(root: &Path, dir: &Path, out: &mut Modules) -> Res {
    for entry in fs::read_dir(dir).map_err(|e| fail!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| fail!("{e}"))?.path();
        if path.is_dir() {
            collect(root, &path, out)?;
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap_or(&path).with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|p| p == "mod") {
            parts.pop();
        }
        if parts.len() == 1 && (parts[0] == "lib" || parts[0] == "main") {
            parts.clear();
        }
        if parts.first().is_some_and(|p| p == "bin") {
            continue; // binaries are crates of their own
        }
        out.insert(parts, path);
    }
    Ok(())
}

/// The text without comments and without an inline `#[cfg(test)] mod tests { … }` block.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module files that the paths in `code` (of `module`) name.
fn imports(module: &[String], code: &str, modules: &Modules) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for head in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(head).map(|i| i + from) {
            from = i + head.len();
            // a whole word: not `some_crate::`
            if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
                continue;
            }
            let mut base: Vec<String> = if head == "crate::" {
                Vec::new()
            } else {
                module[..module.len().saturating_sub(1)].to_vec()
            };
            let rest = &code[from..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use super::{a, b::c}`: each member
                let group = group.split('}').next().unwrap_or("");
                for item in group.split(',') {
                    let path = segments(item.trim());
                    out.extend(resolve(&base, &path, modules));
                }
                continue;
            }
            let mut path = segments(rest);
            while path.first().is_some_and(|p| p == "super") {
                base.pop();
                path.remove(0);
            }
            out.extend(resolve(&base, &path, modules));
        }
    }
    out
}

/// `a::b::C` at the start of `s` as its segments.
fn segments(s: &str) -> Vec<String> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    s[..end]
        .split("::")
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The deepest module file that `base ++ path` names.
fn resolve(base: &[String], path: &[String], modules: &Modules) -> Option<Vec<String>> {
    let mut full = base.to_vec();
    full.extend_from_slice(path);
    (0..=full.len())
        .rev()
        .map(|n| full[..n].to_vec())
        .find(|m| modules.contains_key(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules(names: &[&str]) -> Modules {
        names
            .iter()
            .map(|n| {
                let parts: Vec<String> = n
                    .split('/')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                (parts, PathBuf::from(n))
            })
            .collect()
    }

    #[test]
    fn paths_resolve_to_the_deepest_module_file() {
        let m = modules(&["", "cache", "cache/ops", "scope"]);
        let ops = vec!["cache".to_owned(), "ops".to_owned()];
        let code = "use super::{MemStache, record};\nuse crate::scope::Scope;\nlet x = crate::cache::ops::f();";
        let got: BTreeSet<_> = imports(&ops, code, &m).into_iter().collect();
        let want: BTreeSet<Vec<String>> = [
            vec!["cache".to_owned()],
            vec!["scope".to_owned()],
            ops.clone(),
        ]
        .into_iter()
        .collect();
        assert_eq!(got, want);
        // not a path of this crate
        assert!(imports(&ops, "use memstache_crate::x;", &m).is_empty());
    }

    #[test]
    fn comments_and_inline_tests_do_not_count() {
        let code = code_of(
            "use a; // see crate::x\n/// [`y`](crate::y)\nfn f() {}\n#[cfg(test)]\nmod tests {\n use crate::z;\n}\n",
        );
        assert!(!code.contains("crate::"), "{code}");
    }
}
