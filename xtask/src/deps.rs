//! `cargo xtask deps`: makes sure the system tools that the tests, the demo
//! and the benchmarks run are installed. ari drives rdiff-backup over ssh, so
//! the integration tests need rdiff-backup, rsync, an ssh client and an sshd
//! they can start themselves, zsh to stand in for a login shell, restic
//! for the example backend in examples/ari-restic, and the database servers and
//! clients that the dump tests stream from, and pv, which the zfs-send backend
//! limits its stream with (`bwlimit`). On Debian-like systems, as
//! root, missing tools are installed with apt-get; otherwise we print the
//! command to run, since guessing at sudo or another package manager would
//! surprise people.

use crate::shell;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A binary we need and the Debian package that provides it.
struct Tool {
    /// A name looked up on PATH, or an absolute path for binaries (sshd)
    /// that live outside a normal user's PATH.
    binary: &'static str,
    package: &'static str,
}

const TOOLS: &[Tool] = &[
    Tool { binary: "rdiff-backup", package: "rdiff-backup" },
    Tool { binary: "rsync", package: "rsync" },
    Tool { binary: "/usr/sbin/sshd", package: "openssh-server" },
    Tool { binary: "ssh", package: "openssh-client" },
    Tool { binary: "ssh-keygen", package: "openssh-client" },
    // The quoting tests run remote commands under zsh as well as bash and
    // dash (which every Debian system has), as a login shell could.
    Tool { binary: "zsh", package: "zsh" },
    // The example third-party backend (examples/ari-restic) makes real restic backups.
    Tool { binary: "restic", package: "restic" },
    // The man pages are checked with groff's warnings on.
    Tool { binary: "groff", package: "groff-base" },
    // The JSON Schemas are checked with Debian's python3 jsonschema.
    Tool { binary: "/usr/bin/jsonschema", package: "python3-jsonschema" },
    // The metrics file is checked with promtool (the package's service is not started where
    // policy-rc.d forbids it, and is not needed).
    Tool { binary: "promtool", package: "prometheus" },
    // The sudoers drop-in of `ari authorize` is checked with `visudo -cf` on a file of its own
    // (the machine's sudoers is never touched).
    Tool { binary: "/usr/sbin/visudo", package: "sudo" },
    // Database dumps (`dumps:`) are tested against real servers the tests start themselves:
    // PostgreSQL (the server package's binaries, without its cluster: initdb runs in a temp
    // directory), MariaDB (the server core without the package that starts a system daemon),
    // SQLite; zstd compresses dumps.
    Tool { binary: "/usr/lib/postgresql/15/bin/initdb", package: "postgresql-15" },
    Tool { binary: "/usr/sbin/mariadbd", package: "mariadb-server-core" },
    Tool { binary: "mysqldump", package: "mariadb-client" },
    Tool { binary: "sqlite3", package: "sqlite3" },
    Tool { binary: "zstd", package: "zstd" },
    // The zfs-send backend's `bwlimit` streams through `pv -L` on the backup server: the host
    // tests' and the VM scenarios' ari runs it here.
    Tool { binary: "pv", package: "pv" },
];

/// Checks every tool, installs the missing ones if we can, and fails with
/// the exact command to run if we cannot.
/// Callers print the section header, so this fits in their step lists.
pub fn ensure() -> Result<()> {
    install_missing(TOOLS)
}

/// The same for the tools of one task (`(binary, package)`), beyond those of the tests.
pub fn ensure_packages(tools: &[(&'static str, &'static str)]) -> Result<()> {
    let tools: Vec<Tool> = tools.iter().map(|&(binary, package)| Tool { binary, package }).collect();
    install_missing(&tools)
}

fn install_missing(tools: &[Tool]) -> Result<()> {
    let missing = missing_packages(tools);
    if missing.is_empty() {
        println!("all system tools present");
        return Ok(());
    }

    let install = format!("apt-get install -y --no-install-recommends {}", missing.join(" "));
    if !is_root() {
        bail!(
            "missing packages: {}; install them with:\n    sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive {install}",
            missing.join(" ")
        );
    }

    println!("installing: {}", missing.join(" "));
    shell::run(Command::new("apt-get").arg("update").env("DEBIAN_FRONTEND", "noninteractive"))?;
    shell::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;

    // A package can install fine and still not give us the binary (renamed
    // paths, a diverted sshd); say so now rather than in a confusing test.
    let still_missing = missing_packages(tools);
    if !still_missing.is_empty() {
        bail!("still missing after apt-get install: {}", still_missing.join(" "));
    }
    println!("all system tools present");
    Ok(())
}

/// Prints each tool's status and returns the packages to install, each once
/// and in a stable order.
fn missing_packages(tools: &[Tool]) -> Vec<&'static str> {
    let mut missing = Vec::new();
    for tool in tools {
        match find_binary(tool.binary) {
            Some(path) => println!("  found   {:<16} {}", tool.binary, path.display()),
            None => {
                println!("  MISSING {:<16} (package {})", tool.binary, tool.package);
                if !missing.contains(&tool.package) {
                    missing.push(tool.package);
                }
            }
        }
    }
    missing
}

/// Resolves `binary` like a shell would: a path containing `/` is checked
/// as is, a bare name is searched on PATH.
pub fn find_binary(binary: &str) -> Option<PathBuf> {
    if binary.contains('/') {
        let path = Path::new(binary);
        return is_executable(path).then(|| path.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(binary)).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_binary_checks_absolute_paths_and_path() {
        assert!(find_binary("/bin/sh").is_some());
        assert!(find_binary("sh").is_some());
        assert!(find_binary("/nonexistent/xtask-no-such-binary").is_none());
        assert!(find_binary("xtask-no-such-binary").is_none());
    }
}
