//! Looking into an rdiff-backup repository with rdiff-backup itself: which backups it holds and
//! what a restore at a given time gives.

use std::path::Path;
use std::process::Command;

use crate::run_ok;
use crate::tools::require_tool;

/// rdiff-backup's path, or a panic saying how to install it.
pub fn rdiff_backup() -> std::path::PathBuf {
    require_tool("rdiff-backup", "rdiff-backup")
}

/// The times (seconds since the epoch) of every backup in the repository, oldest first; the
/// last is the current mirror.
pub fn backup_times(repo: &Path) -> Vec<u64> {
    let output =
        run_ok(Command::new(rdiff_backup()).args(["--parsable-output", "list", "increments"]).arg(repo));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect()
}

/// Restores `repo/inner` as it was at `time` into `target`.
pub fn restore(repo: &Path, inner: &str, time: u64, target: &Path) {
    let source = repo.join(inner.trim_start_matches('/'));
    run_ok(Command::new(rdiff_backup()).args(["restore", "--at", &time.to_string()]).arg(source).arg(target));
}

/// `rdiff_backup_options` with the defaults plus `--current-time T`, so a test can give each
/// backup its own time: rdiff-backup refuses two backups of one repository within a second.
pub fn options_at(time: u64) -> String {
    format!(
        "rdiff_backup_options=--exclude-device-files --exclude-fifos --exclude-sockets --terminal-verbosity 1 --current-time {time}"
    )
}

/// Now, in seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs()
}
