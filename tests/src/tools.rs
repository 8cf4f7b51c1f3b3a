//! Finding the external programs that the integration tests drive: the
//! real tools (rdiff-backup, rsync, ssh, sshd) and the `ari` binary built
//! from this workspace.
//!
//! A test that needs a tool which is not installed fails with a message
//! that says how to install it, instead of being skipped: a skipped test
//! would quietly hide a machine that cannot run the suite.

use std::env;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Directories searched after `PATH`. The sbin directories are there
/// because `sshd` lives in `/usr/sbin`, which is not on the `PATH` of an
/// ordinary user (nor of some CI environments).
const EXTRA_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// Returns the absolute path of the program `name`, searched on `PATH` and
/// then in the sbin directories.
///
/// Panics when it is missing, naming the Debian package that provides it,
/// so that whoever runs the test knows the one command that fixes it.
pub fn require_tool(name: &str, debian_package: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| {
        panic!(
            "this test needs `{name}`, which is not installed: run \
             `apt-get install -y {debian_package}` (or `cargo xtask test`, which installs it)"
        )
    })
}

/// Looks `name` up like a shell would, without panicking.
fn find_tool(name: &str) -> Option<PathBuf> {
    // A name with a slash is a path already; the shell would not search for it.
    if name.contains('/') {
        let path = PathBuf::from(name);
        return is_executable_file(&path).then_some(path);
    }
    let path_dirs = env::var_os("PATH").map(|p| env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        // An empty or relative PATH entry means "relative to the current
        // directory", which a test cannot rely on; only absolute ones count.
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable_file(candidate))
}

fn is_executable_file(path: &Path) -> bool {
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Returns the path of the `ari` binary built from this workspace.
///
/// This crate does not (and cannot) depend on the binary, so cargo does not
/// build it for us when only this crate's tests are built; it has to be
/// built beforehand, which the panic message says.
pub fn ari_bin() -> PathBuf {
    built_bin("ari")
}

/// Returns the path of the workspace binary `name`, which must be built.
///
/// `cargo_bin` panics with a message about a missing environment variable
/// when the binary is absent, which does not tell the reader what to do; so
/// look first where it will look, and explain.
pub fn built_bin(name: &str) -> PathBuf {
    if env::var_os(format!("CARGO_BIN_EXE_{name}")).is_none()
        && !legacy_bin_path(name).is_some_and(|p| p.exists())
    {
        panic!(
            "the `{name}` binary is not built (looked in {}): build it first: \
             cargo build --workspace --all-targets",
            legacy_bin_path(name)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "the target directory".to_owned())
        );
    }
    assert_cmd::cargo::cargo_bin(name)
}

/// Where cargo puts the binary `name` relative to the running test binary:
/// tests run from `target/<profile>/deps/`, binaries land in
/// `target/<profile>/`. This is the same rule `assert_cmd` uses.
fn legacy_bin_path(name: &str) -> Option<PathBuf> {
    let mut dir = env::current_exe().ok()?;
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    Some(dir.join(format!("{name}{}", env::consts::EXE_SUFFIX)))
}

/// A sudoers drop-in of `ari authorize` as its installer writes it on a host whose programs are
/// in /usr/bin: each `@PROGRAM@` becomes the program's path, for `visudo -cf`.
pub fn installed_sudoers(sudoers: &str) -> String {
    sudoers
        .lines()
        .map(|line| match line.split_once("NOPASSWD: @").or_else(|| line.split_once("Defaults!@")) {
            Some((head, rest)) => {
                let (program, args) = rest.split_once("@ ").expect("@PROGRAM@ ARGS");
                let head =
                    if head.is_empty() { "Defaults!".to_string() } else { format!("{head}NOPASSWD: ") };
                format!("{head}/usr/bin/{program} {args}\n")
            }
            None => format!("{line}\n"),
        })
        .collect()
}
