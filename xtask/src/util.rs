//! Small helpers shared by the subcommands: the workspace root, running commands, temp dirs.

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// The error of an xtask step: a one-line, human-readable reason.
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure(format!("I/O error: {e}"))
    }
}

/// Result of an xtask step.
pub(crate) type Res<T = ()> = Result<T, Failure>;

/// Builds a [`Failure`] from a format string.
macro_rules! fail {
    ($($arg:tt)*) => { $crate::util::Failure(format!($($arg)*)) };
}
pub(crate) use fail;

/// The workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// The `cargo` that runs us (cargo sets `CARGO` for `cargo run`), or `cargo` from PATH.
pub(crate) fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

/// Renders a command line for the log (program and arguments, space-separated).
pub(crate) fn display(cmd: &Command) -> String {
    let mut s = String::new();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            s.push_str(&format!("{}={} ", k.to_string_lossy(), v.to_string_lossy()));
        }
    }
    s.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` with inherited stdout/stderr and no stdin; fails unless it exits 0.
pub(crate) fn run(cmd: &mut Command) -> Res {
    let status = status(cmd)?;
    if status.success() {
        Ok(())
    } else {
        Err(fail!("`{}` failed ({status})", display(cmd)))
    }
}

/// Runs `cmd` with inherited stdout/stderr and no stdin and returns its exit status.
pub(crate) fn status(cmd: &mut Command) -> Res<ExitStatus> {
    eprintln!("$ {}", display(cmd));
    cmd.stdin(Stdio::null())
        .status()
        .map_err(|e| fail!("cannot run `{}`: {e}", display(cmd)))
}

/// Runs `cmd` quietly and returns its stdout; fails unless it exits 0.
pub(crate) fn output(cmd: &mut Command) -> Res<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| fail!("cannot run `{}`: {e}", display(cmd)))?;
    if !out.status.success() {
        return Err(fail!(
            "`{}` failed ({}): {}",
            display(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| fail!("`{}` printed non-UTF-8", display(cmd)))
}

/// Whether an executable named `name` is on PATH.
pub(crate) fn on_path(name: impl AsRef<OsStr>) -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(name.as_ref())))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A directory under the system temp dir, removed (with its contents) on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh, empty directory named after `prefix`, the process id and the time.
    pub(crate) fn new(prefix: &str) -> Res<TempDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| fail!("cannot create temp dir {}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Recursively copies the directory `from` to `to` (created), following no symlinks: a
/// symlink is recreated as a symlink.
pub(crate) fn copy_dir(from: &Path, to: &Path) -> Res {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)
        .map_err(|e| fail!("cannot read directory {}: {e}", from.display()))?
    {
        let entry = entry?;
        let ty = entry.file_type()?;
        let dst = to.join(entry.file_name());
        if ty.is_dir() {
            copy_dir(&entry.path(), &dst)?;
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &dst)?;
        } else {
            std::fs::copy(entry.path(), &dst)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_root_holds_the_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"));
    }

    #[test]
    fn copy_dir_copies_nested_files_and_temp_dir_cleans_up() {
        let src = TempDir::new("xtask-test-src").unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("a/b/c.txt"), "hello").unwrap();
        std::fs::write(src.path().join("top.txt"), "top").unwrap();
        let dst = TempDir::new("xtask-test-dst").unwrap();
        let dst_path = dst.path().to_path_buf();
        copy_dir(src.path(), &dst_path.join("copy")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dst_path.join("copy/a/b/c.txt")).unwrap(),
            "hello"
        );
        assert_eq!(
            std::fs::read_to_string(dst_path.join("copy/top.txt")).unwrap(),
            "top"
        );
        drop(dst);
        assert!(!dst_path.exists());
    }

    #[test]
    fn on_path_finds_sh_but_not_nonsense() {
        assert!(on_path("sh"));
        assert!(!on_path("definitely-not-a-program-xtask-4711"));
    }

    #[test]
    fn display_shows_env_program_and_args() {
        let mut cmd = Command::new("cargo");
        cmd.env("RUSTDOCFLAGS", "-D warnings")
            .args(["doc", "--no-deps"]);
        assert_eq!(
            display(&cmd),
            "RUSTDOCFLAGS=-D warnings cargo doc --no-deps"
        );
    }
}
