//! `ari recover [JOB...]`: undo what crashed runs left behind, from each job's ledger (every
//! ledger in state_dir when no job is named), newest first, each only while it is still there.
//!
//! A ledger ari cannot use (refused: not ari's own, or writable by others; or corrupt) runs
//! nothing. `--show` prints what it holds, changing nothing; `--forget` moves it aside, after a
//! confirmation, so that its job runs again, and says what the admin must now check by hand.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use ari_core::core_settings::COMMAND_TIMEOUT;
use ari_core::engine_api::exit;
use ari_core::engine_api::job_run::{self, RecoverOutcome, StopFlags};
use ari_core::engine_api::ledger::{Entry, Ledger, Shown};
use ari_core::engine_api::lock::{Lock, LockError};
use ari_core::engine_api::log_context::set_job_label;
use ari_core::job::Job;
use ari_core::ssh::Ssh;

use ari_core::error::chain;
use clap::{Arg, ArgAction, ArgMatches, Command};

use super::context::{jobs_arg, jobs_of, usage_errors, Context, Exec};
use super::run::present_recovery;
use super::signals;
use crate::jobs;

/// How much of a ledger's raw bytes `--show` prints.
const SHOWN_BYTES: usize = 64 * 1024;

pub fn cli() -> Command {
    Command::new("recover")
        .about("undo what a crashed run left behind, from the job's ledger (every job's when none is named)")
        .arg(jobs_arg(false))
        .arg(
            Arg::new("show")
                .long("show")
                .action(ArgAction::SetTrue)
                .conflicts_with("forget")
                .help("print what each ledger holds (for a refused or corrupt one: why, and its raw bytes); changes nothing"),
        )
        .arg(
            Arg::new("forget")
                .long("forget")
                .action(ArgAction::SetTrue)
                .requires("jobs")
                .help("move the job's ledger aside (LABEL.json.forgotten-TIME), so that the job runs again; nothing it lists is undone: check that by hand"),
        )
        .arg(
            Arg::new("yes")
                .long("yes")
                .action(ArgAction::SetTrue)
                .requires("forget")
                .help("with --forget: do not ask for confirmation (required without a terminal)"),
        )
}

/// What `ari recover` does with each job's ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Undo what it records (the default).
    Undo,
    /// `--show`: print what it holds, changing nothing.
    Show,
    /// `--forget`: move it aside, so that the job runs again; `yes` skips the question.
    Forget { yes: bool },
}

fn action(matches: &ArgMatches) -> Action {
    if matches.get_flag("show") {
        Action::Show
    } else if matches.get_flag("forget") {
        Action::Forget { yes: matches.get_flag("yes") }
    } else {
        Action::Undo
    }
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let (jobs, action) = (jobs_of(matches), action(matches));
    Ok(Exec::with_config(move |context| recover(context, &jobs, action)))
}

fn recover(context: &Context, names: &[String], action: Action) -> i32 {
    if action == Action::Show {
        ari_core::engine_api::files::forbid_writes();
    }
    let state_dir = context.state_dir();
    let labels = match labels(context, names) {
        Ok(labels) => labels,
        Err(code) => return code,
    };
    if labels.is_empty() {
        println!("nothing to recover: no ledger in {}", state_dir.join("ledger").display());
        return exit::SUCCESS;
    }
    let ssh = Ssh::from_settings(&context.base);
    match action {
        Action::Show => {
            labels.iter().map(|label| show(&state_dir, label, &ssh)).fold(exit::SUCCESS, exit::worst)
        }
        Action::Forget { yes } => {
            labels.iter().map(|label| forget(&state_dir, label, &ssh, yes)).fold(exit::SUCCESS, exit::worst)
        }
        Action::Undo => undo(context, &state_dir, &labels),
    }
}

/// The labels of the named jobs (a label with a ledger needs no job file), or of every ledger.
fn labels(context: &Context, names: &[String]) -> Result<Vec<String>, i32> {
    let state_dir = context.state_dir();
    if names.is_empty() {
        return Ledger::pending(&state_dir).map_err(|err| {
            log::error!("cannot list the ledgers: {}", chain(&err));
            exit::CLEANUP_FAILED
        });
    }
    let mut labels = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        // A job whose file is gone can still be recovered by its label.
        if Ledger::exists(&state_dir, name) {
            labels.push(name.clone());
            continue;
        }
        match jobs::resolve(name, &context.jobs_dir()).and_then(|p| Job::load(&p).map_err(|e| e.to_string()))
        {
            Ok(job) => labels.push(job.label),
            Err(err) => errors.push(err),
        }
    }
    if errors.is_empty() {
        Ok(labels)
    } else {
        Err(usage_errors(&errors))
    }
}

/// Undoes each job's ledger under the job's lock.
fn undo(context: &Context, state_dir: &Path, labels: &[String]) -> i32 {
    let flags = match signals::install() {
        Ok(flags) => flags,
        Err(err) => return usage_errors(&[format!("cannot install signal handlers: {err}")]),
    };
    let mut code = exit::SUCCESS;
    for label in labels {
        set_job_label(Some(label));
        code = exit::worst(code, undo_one(context, state_dir, label, &flags));
        set_job_label(None);
    }
    code
}

fn undo_one(context: &Context, state_dir: &Path, label: &str, stop: &StopFlags) -> i32 {
    let ssh = Ssh::from_settings(&context.base);
    match job_run::recover_job(state_dir, label, &ssh, stop, context.base.get(&COMMAND_TIMEOUT)) {
        RecoverOutcome::Locked(err) => {
            match err {
                LockError::Held { .. } => {
                    log::error!("{}: not recovering a job that is running", chain(&err))
                }
                _ => log::error!("{}", chain(&err)),
            }
            exit::JOB_FAILED
        }
        RecoverOutcome::LedgerRefused(err) => {
            log::error!("{}", err.advice(label));
            exit::CLEANUP_FAILED
        }
        RecoverOutcome::Nothing => {
            println!("job {label}: nothing to recover");
            exit::SUCCESS
        }
        RecoverOutcome::Recovered(recovery) => {
            for name in &recovery.undone {
                println!("job {label}: undone: {name}");
            }
            if present_recovery(&recovery) {
                println!("job {label}: recovered");
                exit::SUCCESS
            } else {
                println!(
                    "job {label}: {} things could not be undone; see the errors above",
                    recovery.failures.len()
                );
                exit::CLEANUP_FAILED
            }
        }
        _ => exit::CLEANUP_FAILED,
    }
}

/// The job's lock, so that no run of it changes its ledger meanwhile; an error (logged) is the
/// exit code.
fn lock(state_dir: &Path, label: &str, doing: &str) -> Result<Lock, i32> {
    Lock::try_acquire(state_dir, label, &format!("job {label}")).map_err(|err| {
        match err {
            LockError::Held { .. } => log::error!("{}: not {doing} a job that is running", chain(&err)),
            _ => log::error!("{}", chain(&err)),
        }
        exit::JOB_FAILED
    })
}

/// `--show`: what the ledger holds, or why it cannot be used and its raw bytes.
fn show(state_dir: &Path, label: &str, ssh: &Ssh) -> i32 {
    match describe(state_dir, label, ssh) {
        Ok(Some((_, true))) => {
            println!("`ari recover {label}` undoes them, newest first, each only while it is still there");
            exit::SUCCESS
        }
        Ok(Some((_, false))) => {
            println!(
                "ari runs nothing from it; once you have checked by hand that what it lists is gone, clear it \
                 with `ari recover {label} --forget`"
            );
            exit::SUCCESS
        }
        Ok(None) => exit::SUCCESS,
        Err(code) => code,
    }
}

/// Prints what a job's ledger holds; returns what was shown and whether ari can use it (`None`:
/// no ledger), or the exit code of an error.
fn describe(state_dir: &Path, label: &str, ssh: &Ssh) -> Result<Option<(Shown, bool)>, i32> {
    let path = Ledger::path(state_dir, label);
    let shown = match Ledger::show(state_dir, label) {
        Ok(Some(shown)) => shown,
        Ok(None) => {
            println!("job {label}: no ledger ({}): nothing to recover", path.display());
            return Ok(None);
        }
        Err(err) if err.is_refusal() => {
            // A symlink, or no regular file: nothing to show but what it is.
            println!("job {label}: ledger {}: refused: {}", path.display(), chain(&err));
            return Ok(Some((Shown { path, bytes: Vec::new(), entries: Err(err.to_string()) }, false)));
        }
        Err(err) => {
            log::error!("job {label}: cannot show the ledger: {}", chain(&err));
            return Err(exit::JOB_FAILED);
        }
    };
    // The same checks as a run, which read and change nothing.
    let verdict = Ledger::open(state_dir, label, ssh);
    match (&verdict, &shown.entries) {
        (Ok(_), Ok(entries)) if entries.is_empty() => {
            println!("job {label}: ledger {}: it lists nothing", path.display());
        }
        (Ok(_), Ok(entries)) => {
            println!(
                "job {label}: ledger {}: {} thing{} a crashed run left behind, oldest first:",
                path.display(),
                entries.len(),
                if entries.len() == 1 { "" } else { "s" }
            );
            print_entries(entries);
        }
        (Err(err), Ok(entries)) => {
            println!("job {label}: ledger {}: {}", path.display(), chain(err));
            println!("It lists, as the file says (which ari does not trust):");
            print_entries(entries);
            print_raw(&shown.bytes);
        }
        (_, Err(reason)) => {
            println!("job {label}: ledger {}: corrupt: {reason}", path.display());
            print_raw(&shown.bytes);
        }
    }
    Ok(Some((shown, verdict.is_ok())))
}

fn print_entries(entries: &[Entry]) {
    for (n, entry) in entries.iter().enumerate() {
        println!("  {}. {}", n + 1, entry.name.escape_debug());
        if let Some(removes) = &entry.removes {
            println!("     left behind: {}", removes.escape_debug());
        }
        println!("     undo: {}", entry.command.command().to_string().escape_debug());
        if let Some(present) = &entry.present {
            println!("     only while this succeeds: {}", present.command().to_string().escape_debug());
        }
        if let Some(process) = &entry.after {
            println!(
                "     only once pid {} (started at tick {} of boot {}) and its process group have ended",
                process.pid, process.start_ticks, process.boot_id
            );
        }
    }
}

/// A file's bytes as text that shows everything: one line of output per line of the file, each
/// escaped (see [`escape`]).
fn print_raw(bytes: &[u8]) {
    println!("its raw contents ({} byte{}), escaped:", bytes.len(), if bytes.len() == 1 { "" } else { "s" });
    if bytes.is_empty() {
        println!("  (none)");
    }
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES)];
    for line in shown.split_inclusive(|&b| b == b'\n') {
        println!("  | {}", escape(line));
    }
    if bytes.len() > SHOWN_BYTES {
        println!("  ... and {} more bytes", bytes.len() - SHOWN_BYTES);
    }
}

/// Bytes as text in which nothing hides: printable ASCII as it is (but `\` as `\\`), `\n`, `\r`
/// and `\t` as such, every other byte (control, non-ASCII) as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut text = String::new();
    for &byte in bytes {
        match byte {
            b'\\' => text.push_str("\\\\"),
            b'\n' => text.push_str("\\n"),
            b'\r' => text.push_str("\\r"),
            b'\t' => text.push_str("\\t"),
            b' '..=b'~' => text.push(char::from(byte)),
            _ => text.push_str(&format!("\\x{byte:02x}")),
        }
    }
    text
}

/// `--forget`: shows the ledger, asks (or needs `--yes`), moves it aside, and says what to check.
fn forget(state_dir: &Path, label: &str, ssh: &Ssh, yes: bool) -> i32 {
    set_job_label(Some(label));
    let code = forget_one(state_dir, label, ssh, yes);
    set_job_label(None);
    code
}

fn forget_one(state_dir: &Path, label: &str, ssh: &Ssh, yes: bool) -> i32 {
    let _lock = match lock(state_dir, label, "forgetting the ledger of") {
        Ok(lock) => lock,
        Err(code) => return code,
    };
    let shown = match describe(state_dir, label, ssh) {
        Ok(Some((shown, _))) => shown,
        Ok(None) => return exit::SUCCESS,
        Err(code) => return code,
    };
    if !yes {
        if !std::io::stdin().is_terminal() {
            log::error!(
                "not forgetting the ledger of job {label} without a confirmation, and stdin is no terminal to ask \
                 on: add --yes once you have read what it lists"
            );
            return exit::USAGE;
        }
        print!("Forget the ledger of job {label}? ari will undo nothing it lists. [y/N] ");
        let _ = std::io::stdout().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            println!("job {label}: nothing forgotten");
            return exit::JOB_FAILED;
        }
    }
    let aside = match Ledger::forget(state_dir, label) {
        Ok(aside) => aside,
        Err(err) => {
            log::error!("cannot forget the ledger of job {label}: {}", chain(&err));
            return exit::JOB_FAILED;
        }
    };
    println!(
        "job {label}: ledger forgotten: moved aside to {}; ari will not undo anything it listed, and the job runs again",
        aside.display()
    );
    match &shown.entries {
        Ok(entries) if !entries.is_empty() => {
            println!("Check by hand that each of these is gone, and remove what is left:");
            for entry in entries {
                println!("  - {}", entry.removes.as_deref().unwrap_or(&entry.name).escape_debug());
            }
        }
        Ok(_) => {}
        Err(_) => println!(
            "Its entries could not be read: check by hand for what a crashed run of job {label} may have left \
             (snapshots: `lvs`, `zfs list -t snapshot`; mounts: `findmnt`; mount directories); the file is \
             kept as {}",
            aside.display()
        ),
    }
    exit::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recover_shows_or_forgets() {
        let action = |args: &[&str]| action(&crate::cli::subcommand_matches(args));
        assert_eq!(action(&["recover"]), Action::Undo);
        assert_eq!(action(&["recover", "--show"]), Action::Show);
        assert_eq!(action(&["recover", "db", "--forget"]), Action::Forget { yes: false });
        assert_eq!(action(&["recover", "db", "--forget", "--yes"]), Action::Forget { yes: true });
        // The subcommand's own command: the first word is the program's name.
        let refused = |args: &[&str]| cli().try_get_matches_from(args).is_err();
        assert!(refused(&["recover", "--forget"]), "--forget names its jobs");
        assert!(refused(&["recover", "db", "--yes"]), "--yes only with --forget");
        assert!(refused(&["recover", "db", "--show", "--forget"]));
    }

    #[test]
    fn raw_bytes_are_escaped_so_that_nothing_hides() {
        let check = |bytes: &[u8], expected: &str| assert_eq!(super::escape(bytes), expected, "{bytes:?}");
        check(b"{\"job\": \"db\"}", "{\"job\": \"db\"}");
        check(b"a\\b\n", "a\\\\b\\n");
        check(b"\x1b[2J\r\t\x00", "\\x1b[2J\\r\\t\\x00");
        check("é".as_bytes(), "\\xc3\\xa9");
    }
}
