//! `cargo xtask lint`: rustfmt, clippy, rustdoc and the MSRV check.

use crate::util::{Res, cargo, fail, run};

/// One named lint step.
type Step = (&'static str, fn() -> Res);

/// Runs every lint step (all of them, even after a failure) and fails if any failed.
pub(crate) fn lint() -> Res {
    let steps: [Step; 4] = [
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
        println!("lint: fmt, clippy, doc and msrv ok");
        Ok(())
    } else {
        Err(fail!("lint failed: {}", failed.join(", ")))
    }
}
