//! `cargo xtask lint`: rustfmt, clippy, rustdoc, the MSRV check and the import-circle check.

use crate::util::{Res, cargo, fail, run};

/// One named lint step.
type Step = (&'static str, fn() -> Res);

/// Runs every lint step (all of them, even after a failure) and fails if any failed.
pub(crate) fn lint() -> Res {
    let steps: [Step; 5] = [
        ("fmt", || {
            run(cargo().args(["fmt", "--all", "--", "--check"]))
        }),
        ("clippy", || {
            run(cargo().args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]))
        }),
        ("doc", || {
            run(cargo().env("RUSTDOCFLAGS", "-D warnings").args([
                "doc",
                "--workspace",
                "--all-features",
                "--no-deps",
            ]))
        }),
        ("msrv", crate::msrv::check),
        ("circles", crate::circles::check),
    ];
    let mut failed = Vec::new();
    for (name, step) in steps {
        eprintln!("== lint: {name}");
        if let Err(e) = step() {
            eprintln!("lint {name} failed: {e}");
            failed.push(name);
        }
    }
    if failed.is_empty() {
        println!("lint: fmt, clippy, doc, msrv and circles ok");
        Ok(())
    } else {
        Err(fail!("lint failed: {}", failed.join(", ")))
    }
}
