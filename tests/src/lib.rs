//! The harness shared by ari's integration tests: it finds the real tools
//! and the built `ari` binary ([`tools`]), starts a private OpenSSH server
//! on 127.0.0.1 for one test ([`sshd`]), builds the fixture and fakes of a
//! scenario ([`fixture`], [`worlds`]), and runs commands with failure
//! messages that show everything needed to understand what went wrong
//! ([`run`], [`run_ok`]), and waits for events, never for a time
//! ([`eventually`]).
//!
//! The tests themselves live in `tests/tests/`; this library holds only
//! what several of them need.

// The workspace forbids `Command::new` outside ari-core's process module,
// so that production code has one process spawner. Tests spawn the real
// tools (ssh, sshd, rdiff-backup, ari itself) directly on purpose: going
// through the code under test to set up the test would prove nothing.
#![allow(clippy::disallowed_methods)]

pub mod argv;
pub mod clock;
pub mod fakes;
pub mod fixture;
pub mod rdiff;
pub mod reports;
pub mod running;
pub mod sshd;
pub mod tools;
pub mod wait;
pub mod worlds;

pub use fixture::{assert_exit, assert_refused, fingerprint, read_tree, stderr, stdout, Fixture};
pub use running::Running;
pub use sshd::{Shell, ShellMode, Sshd, SshdBuilder};
pub use tools::{ari_bin, installed_sudoers, require_tool};
pub use wait::eventually;
pub use worlds::World;

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// Runs `cmd` to completion and returns its output, whatever its exit
/// status, so that the test can assert on it.
///
/// Panics only when the command cannot be started at all, with the full
/// command line in the message.
pub fn run(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(output) => output,
        Err(err) => panic!("could not start {}: {err}", describe(cmd)),
    }
}

/// Like [`run`], with `input` written to the command's stdin (from another thread, so that a
/// command that answers before it has read everything cannot block the test). The command may
/// stop reading early: what it did not read is dropped.
///
/// Panics only when the command cannot be started at all, with the full command line in the
/// message.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = match cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
        Ok(child) => child,
        Err(err) => panic!("could not start {}: {err}", describe(cmd)),
    };
    let mut stdin = child.stdin.take().expect("a piped stdin");
    std::thread::scope(|scope| {
        scope.spawn(move || {
            // A command that exits without reading all of it closes the pipe: that is its
            // answer, which the test judges from the output.
            let _ = stdin.write_all(input);
        });
        match child.wait_with_output() {
            Ok(output) => output,
            Err(err) => panic!("could not wait for {}: {err}", describe(cmd)),
        }
    })
}

/// Like [`run`], but also panics when the command does not exit with
/// status 0, showing the command, its exit status, stdout and stderr.
pub fn run_ok(cmd: &mut Command) -> Output {
    let output = run(cmd);
    if !output.status.success() {
        panic!("{}", describe_output(cmd, &output));
    }
    output
}

/// Renders a command the way a reader would type it into a shell, with the
/// environment changes and working directory that the test set, so that a
/// failing command can be rerun by hand.
pub fn describe(cmd: &Command) -> String {
    let mut text = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        let _ = write!(text, "(cd {} && ", quote(&dir.to_string_lossy()));
    }
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        match value {
            Some(value) => {
                let _ = write!(text, "{key}={} ", quote(&value.to_string_lossy()));
            }
            // An env var the test removed cannot be shown as an assignment;
            // `env -u` is how one would remove it by hand.
            None => {
                let _ = write!(text, "env -u {key} ");
            }
        }
    }
    text.push_str(&quote(&cmd.get_program().to_string_lossy()));
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&quote(&arg.to_string_lossy()));
    }
    if cmd.get_current_dir().is_some() {
        text.push(')');
    }
    text
}

/// Renders everything known about a finished command, for a panic message.
pub fn describe_output(cmd: &Command, output: &Output) -> String {
    format!(
        "command: {}\nexit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        describe(cmd),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    )
}

/// Quotes a word for a POSIX shell, leaving plain words readable.
pub fn quote(word: &str) -> String {
    let plain =
        !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
