//! Small helpers the commands share: where the workspace and its target
//! directory are, how to print a step header, and how to run a command so
//! that the user sees exactly what was executed and a failure stops the task.

use anyhow::{bail, Context, Result};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workspace root, found from this crate's manifest directory at compile
/// time so that `cargo xtask` works from any subdirectory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Cargo's target directory, honouring CARGO_TARGET_DIR like cargo does, so
/// that the binaries we run are the ones cargo just built.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// A `cargo` command using the same cargo that runs us (cargo sets CARGO for
/// `cargo run`), so a rustup toolchain override applies to the nested calls.
pub fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.current_dir(workspace_root());
    cmd
}

/// Prints a section header so long outputs are easy to scan.
pub fn header(title: &str) {
    println!("\n==> {title}");
}

/// Quotes one word for display the way a POSIX shell would need it, so the
/// printed commands can be copied and pasted.
pub fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let safe =
        !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The command line of `cmd` as a copy-pasteable string (without env vars or
/// working directory).
pub fn display(cmd: &Command) -> String {
    // Our cargo() runs cargo by the full toolchain path from $CARGO; show it
    // as plain `cargo`, which is what a reader would type.
    let program = if std::env::var_os("CARGO").as_deref() == Some(cmd.get_program()) {
        "cargo".to_string()
    } else {
        quote(cmd.get_program())
    };
    std::iter::once(program).chain(cmd.get_args().map(quote)).collect::<Vec<_>>().join(" ")
}

/// Prints `cmd`, runs it with inherited stdio, and fails unless it exits 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let shown = display(cmd);
    println!("$ {shown}");
    let status = cmd.status().with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Prints `cmd`, runs it, and returns its stdout (stderr passes through so
/// diagnostics stay visible); fails unless it exits 0.
pub fn output(cmd: &mut Command) -> Result<String> {
    let shown = display(cmd);
    println!("$ {shown}");
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !out.status.success() {
        // Show what it printed: the caller only gets an error.
        print!("{}", String::from_utf8_lossy(&out.stdout));
        bail!("`{shown}` failed ({})", out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{shown}` printed non-UTF-8 output"))
}

/// Runs `cmd` quietly and reports only whether it succeeded; used for probes
/// such as `cargo nextest --version`.
pub fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Sleeps until the wall clock has reached a later whole second than `since`.
///
/// rdiff-backup names each backup session after its start time in whole
/// seconds and refuses to start a session whose second is not after the
/// previous one ("The last backup is not in the past. Aborting."). That is a
/// property of rdiff-backup, so everything that runs backups back to back
/// waits here first.
pub fn wait_for_next_second(since: std::time::SystemTime) {
    use std::time::{Duration, UNIX_EPOCH};
    let since_secs = since.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    loop {
        let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        if now.as_secs() > since_secs {
            return;
        }
        // Sleep to just past the next second boundary, then check again.
        let to_next = Duration::from_secs(1) - Duration::from_nanos(now.subsec_nanos().into());
        std::thread::sleep(to_next + Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(quote(OsStr::new("/usr/bin/ari")), "/usr/bin/ari");
        assert_eq!(quote(OsStr::new("--config=a.yaml")), "--config=a.yaml");
        assert_eq!(quote(OsStr::new("a b")), "'a b'");
        assert_eq!(quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(quote(OsStr::new("")), "''");
    }
}
