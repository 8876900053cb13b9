//! Running the real `memstache` binary, for the CLI's test files.

use std::process::{Command, Output};

/// Runs `memstache` with `args` and waits for it.
pub(crate) fn memstache(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memstache"))
        .args(args)
        .output()
        .expect("run the memstache binary")
}

/// Output bytes as text.
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}
