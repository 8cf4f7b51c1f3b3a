//! The one place in ari that starts processes (clippy forbids it everywhere else).
//!
//! A [`Command`] becomes the argv ari executes on the backup server: itself for a local argv,
//! `sh -c` for a local shell string, or an ssh command for a remote host, with each argument of a
//! remote argv quoted for the remote shell so that it arrives intact. Every child gets stdin from
//! `/dev/null` (cron never hangs on a prompt) and runs in its own process group, so that
//! stopping it stops everything it started. Errors tell apart: not found (with the PATH
//! searched), failed to start, exited non-zero (with the last lines of stderr), killed by a
//! signal, interrupted.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

pub(crate) use crate::contract::ssh::Ssh;
use crate::contract::step::{Command, Host, Program, Tolerated};

mod capture;
mod group;
mod relay;
pub(crate) mod stream;

use capture::Capture;
pub(crate) use capture::OUTPUT_HEAD;
pub(crate) use group::OnStart;
use group::{own_group, start_gated, stop_group, KILL_GRACE, POLL};

/// How many lines of a failed command's stderr an error shows.
const STDERR_TAIL_LINES: usize = 10;
/// How long, once a command has exited, ari waits for the end of its output: a process it left
/// behind holding the pipes (a daemon a hook started) must not hold the job.
pub(crate) const OUTPUT_GRACE: Duration = Duration::from_secs(2);
/// How long a stopped remote command may take to report its process group, when it has not yet.
pub(crate) const MARKER_GRACE: Duration = Duration::from_secs(1);
/// How often ari looks for a starting master connection's control socket.
const MASTER_POLL: Duration = Duration::from_millis(20);

/// What a finished command printed, decoded lossily as UTF-8; of a stream longer than
/// [`OUTPUT_HEAD`], its start and its end around a line that says how much was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    stdout: String,
    stdout_omitted: u64,
    /// Standard output's bytes, when they are whole and not UTF-8 (`stdout` then shows them
    /// with replacement characters).
    stdout_raw: Option<Vec<u8>>,
    stderr: String,
}

/// A command's standard output was longer than ari keeps, so it cannot be read as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("it printed more than the {} MiB of output ari reads ({omitted} bytes more were left out)", OUTPUT_HEAD >> 20)]
pub struct OutputTooLong {
    /// How many bytes were left out.
    pub omitted: u64,
}

impl Output {
    /// Standard output, whole, for a reader that makes sense of it (a listing, a proof); an error
    /// when it was longer than ari keeps, so that no reader ever sees a listing with a hole in it.
    pub fn stdout(&self) -> Result<&str, OutputTooLong> {
        match self.stdout_omitted {
            0 => Ok(&self.stdout),
            omitted => Err(OutputTooLong { omitted }),
        }
    }

    /// Standard output's bytes, whole, for a reader whose fields are bytes (file names, which
    /// need not be UTF-8); an error when it was longer than ari keeps.
    pub(crate) fn stdout_bytes(&self) -> Result<&[u8], OutputTooLong> {
        match self.stdout_omitted {
            0 => Ok(self.stdout_raw.as_deref().unwrap_or(self.stdout.as_bytes())),
            omitted => Err(OutputTooLong { omitted }),
        }
    }

    /// Standard output as ari kept it: for people, and for a reader of a few lines the tool
    /// prints at its end (statistics), which the end that ari keeps still holds.
    pub fn shown_stdout(&self) -> &str {
        &self.stdout
    }

    /// Standard error as ari kept it.
    pub fn stderr(&self) -> &str {
        &self.stderr
    }
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The program is not on PATH (or not executable at the path given).
    #[error("`{}` not found (searched PATH={path})", crate::contract::kinds::shown(.program))]
    NotFound {
        /// The program as named.
        program: String,
        /// The PATH that was searched.
        path: String,
    },
    /// The program exists but could not be started.
    #[error("cannot start `{program}`")]
    Spawn {
        /// The program as named.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The command ran and exited non-zero.
    #[error("{command} exited with status {code}{}", tail(stderr))]
    Exited {
        /// The command and its host.
        command: String,
        /// The exit status.
        code: i32,
        /// Its standard error (or output, when stderr was empty).
        stderr: String,
    },
    /// A shell (local `sh -c`, or the remote shell) could not find the program (exit 127).
    #[error("{command}: command not found on {host} (exit status 127){}", tail(stderr))]
    CommandNotFound {
        /// The command and its host.
        command: String,
        /// Where the shell looked.
        host: String,
        /// Its standard error.
        stderr: String,
    },
    /// ari's ssh filter on the host refused the command (exit 126, `ari-filter: refused`), or
    /// what a local tool started there through its own ssh (the tool's exit status, the filter's
    /// line in its output): the filter installed there is not the one this ari makes for the
    /// job, most likely older.
    #[error(
        "{command} was refused by the ssh filter on {host} (exit status {code}): that filter may be older than this ari or than the job; run `ari check --connect`, and install the filter the jobs need: {}{}",
        crate::contract::ssh::filter_installer(host, *sudo),
        tail(stderr)
    )]
    Filtered {
        /// The command and its host.
        command: String,
        /// The host whose filter refused it.
        host: String,
        /// The exit status.
        code: i32,
        /// Whether the host is reached with `remote_sudo`, whose filter an admin installs as root
        /// ([`crate::contract::ssh::filter_installer`]).
        sudo: bool,
        /// The filter's standard error.
        stderr: String,
    },
    /// ssh itself failed (exit 255): the host is unreachable, refused the key, ...
    #[error("{command}: ssh to {host} failed (exit status 255){}", tail(stderr))]
    Ssh {
        /// The command and its host.
        command: String,
        /// The host ssh could not reach.
        host: String,
        /// ssh's standard error.
        stderr: String,
    },
    /// The command was killed by a signal ari did not send.
    #[error("{command} was killed by signal {signal}{}", tail(stderr))]
    Signaled {
        /// The command and its host.
        command: String,
        /// The signal number.
        signal: i32,
        /// Its standard error.
        stderr: String,
    },
    /// ari stopped the command because ari was asked to stop.
    #[error("{command} was stopped: ari was interrupted")]
    Interrupted {
        /// The command and its host.
        command: String,
    },
    /// ari killed the command at a deadline.
    #[error("{command} was killed when it reached {limit}")]
    TimedOut {
        /// The command and its host.
        command: String,
        /// Which limit: `command_timeout 2h` or `job_timeout 6h`.
        limit: String,
    },
    /// Waiting for the command failed.
    #[error("waiting for {command} failed")]
    Wait {
        /// The command and its host.
        command: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn tail(text: &str) -> String {
    let lines = error_lines(text);
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
    let mut out = String::from("; last lines of its output:");
    for line in &lines[start..] {
        out.push_str("\n    ");
        out.push_str(line);
    }
    out
}

/// The non-empty lines of `text` that an error shows, as every linked backend cuts them
/// (`BackupBackend::error_lines`: rdiff-backup's tracebacks down to their exception line).
fn error_lines(text: &str) -> Vec<&str> {
    let lines = text.lines().filter(|l| !l.trim().is_empty()).collect();
    crate::contract::plugin::backends().fold(lines, |lines, backend| backend.error_lines(lines))
}

/// Finds a program as a command line would: a name on PATH, or a path that must be executable.
pub(crate) fn resolve_program(program: &str) -> Result<PathBuf, ProcessError> {
    which::which(program).map_err(|_| ProcessError::NotFound {
        program: program.to_string(),
        path: std::env::var("PATH").unwrap_or_default(),
    })
}

/// The longest single argument Linux passes to a program (MAX_ARG_STRLEN, 32 pages): a remote
/// command reaches ssh as one argument, and the remote shell as one too.
const MAX_ARG_BYTES: usize = 32 * 4096;

/// Whether `argv` fits the system's limits on a command line; the error says by how much not.
pub(crate) fn fits_command_line(argv: &[String]) -> Result<(), String> {
    if let Some(longest) = argv.iter().map(String::len).max().filter(|len| *len >= MAX_ARG_BYTES) {
        return Err(format!(
            "an argument of {longest} bytes, more than the {MAX_ARG_BYTES} one argument may have"
        ));
    }
    // Each argument costs its bytes, its NUL and a pointer; the environment shares the room.
    let needed: usize = argv.iter().map(|a| a.len() + 1 + std::mem::size_of::<usize>()).sum();
    let room = command_line_room();
    if needed > room {
        return Err(format!(
            "{needed} bytes long, more than the {room} this system's command lines may have"
        ));
    }
    Ok(())
}

/// The room for a command line: the system's limit less this process's environment, which every
/// child inherits. Measured once: a fleet's plans check thousands of command lines.
fn command_line_room() -> usize {
    static ROOM: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *ROOM.get_or_init(|| {
        let environment: usize =
            std::env::vars_os().map(|(k, v)| k.len() + v.len() + 2 + std::mem::size_of::<usize>()).sum();
        arg_max().saturating_sub(environment + 4096)
    })
}

/// The system's limit on a command line and its environment (ARG_MAX).
#[allow(unsafe_code)]
fn arg_max() -> usize {
    // SAFETY: sysconf takes an integer and reads a system limit; it touches no memory of ours.
    let limit = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
    usize::try_from(limit).ok().filter(|l| *l > 0).unwrap_or(128 * 1024)
}

/// A point in time by which a command must end, and the limit it comes from.
#[derive(Debug, Clone)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) limit: String,
}

impl Deadline {
    pub(crate) fn after(limit: Duration, setting: &str) -> Deadline {
        Deadline { at: Instant::now() + limit, limit: format!("{setting} {}", humane(limit)) }
    }
}

/// A duration as a person writes it: `2s`, `1h 30m`.
pub fn humane(duration: Duration) -> String {
    jiff::SignedDuration::try_from(duration)
        .map(|d| format!("{d:#}"))
        .unwrap_or_else(|_| format!("{duration:?}"))
}

/// A span as a person counts it: in days from two days up (`10 days`), else as [`humane`].
pub(crate) fn humane_days(seconds: u64) -> String {
    match seconds {
        s if s >= 2 * 86_400 => format!("{} days", s / 86_400),
        s => humane(Duration::from_secs(s)),
    }
}

/// An argv as a log line shows it: quoted as for a shell, control characters escaped.
pub(crate) fn shown_argv(argv: &[String]) -> String {
    crate::contract::kinds::escaped(&crate::contract::quote::shell_join(argv))
}

/// Runs a read-only local query, even in a dry run (a tool's `--version`, say).
pub(crate) fn query(argv: &[String]) -> Result<Output, ProcessError> {
    let command = Command::argv(Host::Local, argv.iter().cloned());
    log::debug!("query: {}", shown_argv(argv));
    execute(
        &command,
        argv,
        &AtomicBool::new(false),
        Some(Deadline::after(QUERY_TIMEOUT, "the query limit")),
        None,
        None,
    )
}

/// How long a read-only query may take when no setting bounds it: a tool's `--version`, and the
/// queries a command runs outside a job's run without `command_timeout` (`ari check`'s capacity,
/// a retention preview).
pub(crate) const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

/// Stops remote process groups, each `(destination, pgid)`.
pub(crate) type StopGroups<'a> = dyn Fn(&[(String, u32)]) + Sync + 'a;

/// What a command that reaches remote hosts brings to its run (the runner's session gives it):
/// a stopped command is stopped on its hosts too, and a refusal by a host's filter is told
/// apart.
pub(crate) struct Reach<'a> {
    /// The hosts it reaches (`[USER@]HOST`), whose shared connections are up.
    pub(crate) destinations: Vec<String>,
    /// `(nonce, destination)`: the markers of the remote wrapper that name its process groups.
    pub(crate) nonces: Vec<(String, String)>,
    /// Whether ari's commands run through sudo on its hosts.
    pub(crate) sudo: bool,
    /// Stops the remote process groups the command reported, when ari stops it.
    pub(crate) stop_groups: &'a StopGroups<'a>,
}

/// Runs `argv` (what `command` became) to its end, its deadline or `cancel`; `reach` is how it
/// reaches remote hosts, if it does.
pub(crate) fn execute(
    command: &Command,
    argv: &[String],
    cancel: &AtomicBool,
    deadline: Option<Deadline>,
    reach: Option<Reach<'_>>,
    on_start: Option<OnStart<'_>>,
) -> Result<Output, ProcessError> {
    let describe = || command.to_string();
    let sudo = reach.as_ref().is_some_and(|reach| reach.sudo);
    let reach = reach.filter(|reach| !reach.destinations.is_empty());
    let destinations: &[String] = reach.as_ref().map_or(&[], |reach| &reach.destinations);
    let nonces = reach.as_ref().map(|reach| reach.nonces.clone()).unwrap_or_default();
    let (stdout_read, stdout_write) = io::pipe().map_err(|source| spawn_error(argv, source))?;
    let (stderr_read, stderr_write) = io::pipe().map_err(|source| spawn_error(argv, source))?;
    #[allow(clippy::disallowed_methods)] // this module is the one process spawner
    let expression = own_group(duct::cmd(&argv[0], &argv[1..]))
        .stdin_null()
        .stdout_file(stdout_write)
        .stderr_file(stderr_write)
        .unchecked();
    let handle = match on_start {
        None => expression.start(),
        Some(on_start) => start_gated(&expression, on_start),
    }
    .map_err(|source| spawn_error(argv, source))?;
    // The expression holds the pipes' write ends: once it is gone, the pipes end when the
    // command and everything it started have closed them.
    drop(expression);
    let stdout = Capture::start(stdout_read, Vec::new());
    let stderr = Capture::start(stderr_read, nonces);
    // A waiter thread blocks in wait(), so the exit is seen the moment it happens; this thread
    // only wakes every POLL to look at the cancel flag.
    let handle = Arc::new(handle);
    let (done, finished) = mpsc::channel();
    let waiter = {
        let handle = Arc::clone(&handle);
        std::thread::spawn(move || {
            let _ = handle.wait();
            let _ = done.send(());
        })
    };
    let stop = |why: &str| {
        log::debug!("{} {why}: stopping it", describe());
        if let Some(reach) = &reach {
            let groups = stderr.groups(MARKER_GRACE);
            (reach.stop_groups)(&groups);
        }
        stop_group(&handle);
    };
    loop {
        match finished.recv_timeout(POLL) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) if cancel.load(Ordering::SeqCst) => {
                stop("was interrupted");
                let _ = waiter.join();
                return Err(ProcessError::Interrupted { command: describe() });
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(deadline) = deadline.as_ref().filter(|d| Instant::now() >= d.at) {
                    stop(&format!("reached {}", deadline.limit));
                    let _ = waiter.join();
                    return Err(ProcessError::TimedOut {
                        command: describe(),
                        limit: deadline.limit.clone(),
                    });
                }
            }
        }
    }
    let _ = waiter.join();
    let output = handle.wait().map_err(|source| ProcessError::Wait { command: describe(), source })?;
    let status = output.status;
    let (stdout, stdout_omitted, stdout_raw) = stdout.finish_raw(OUTPUT_GRACE);
    let (stderr, _) = stderr.finish(OUTPUT_GRACE);
    log_output(&stdout, &stderr);
    if status.success() {
        return Ok(Output { stdout, stdout_omitted, stdout_raw, stderr });
    }
    Err(failure(command, status, stdout, stderr, destinations, sudo))
}

/// Why `command`, which reached `destinations` (through sudo there when `sudo`), did not succeed
/// with `status`, from what it printed.
pub(crate) fn failure(
    command: &Command,
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
    destinations: &[String],
    sudo: bool,
) -> ProcessError {
    let describe = || command.to_string();
    let shown = if stderr.trim().is_empty() { stdout } else { stderr };
    match (status.code(), &command.host) {
        (Some(255), Host::Remote(host)) => {
            ProcessError::Ssh { command: describe(), host: host.clone(), stderr: shown }
        }
        (Some(127), host) if !matches!(command.program, Program::Argv(_)) || !host.is_local() => {
            ProcessError::CommandNotFound { command: describe(), host: host.to_string(), stderr: shown }
        }
        (Some(code @ FILTER_REFUSED_STATUS), Host::Remote(host)) if shown.contains(FILTER_REFUSED) => {
            ProcessError::Filtered { command: describe(), host: host.clone(), code, sudo, stderr: shown }
        }
        // A local tool (rdiff-backup, rsync) whose own ssh the filter refused, on the one host
        // it reaches: the tool exits with a status of its own, the filter's line in its output.
        (Some(code), Host::Local) if shown.contains(FILTER_REFUSED) && destinations.len() == 1 => {
            let host = destinations[0].rsplit_once('@').map_or(destinations[0].as_str(), |(_, host)| host);
            ProcessError::Filtered { command: describe(), host: host.to_string(), code, sudo, stderr: shown }
        }
        (Some(code), _) => ProcessError::Exited { command: describe(), code, stderr: shown },
        (None, _) => ProcessError::Signaled {
            command: describe(),
            signal: status.signal().unwrap_or_default(),
            stderr: shown,
        },
    }
}

/// What ari's ssh filter prints on standard error when it refuses a command, and its exit status
/// then (`ari authorize`'s script).
const FILTER_REFUSED: &str = "ari-filter: refused";
const FILTER_REFUSED_STATUS: i32 = 126;

pub(crate) fn spawn_error(argv: &[String], source: io::Error) -> ProcessError {
    match source.kind() {
        io::ErrorKind::NotFound => ProcessError::NotFound {
            program: argv[0].clone(),
            path: std::env::var("PATH").unwrap_or_default(),
        },
        _ => ProcessError::Spawn { program: argv[0].clone(), source },
    }
}

/// A shared ssh connection's master: ssh in the foreground, in its own process group.
#[derive(Debug)]
pub(crate) struct Master {
    handle: duct::Handle,
}

/// Starts the master connection `argv` and waits until it listens on `socket`; the error says
/// why it did not (its stderr, the timeout, or ari being stopped).
pub(crate) fn start_master(
    argv: &[String],
    socket: &Path,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<Master, String> {
    log::debug!("starting the master connection: {}", shown_argv(argv));
    #[allow(clippy::disallowed_methods)] // this module is the one process spawner
    let handle = own_group(duct::cmd(&argv[0], &argv[1..]))
        .stdin_null()
        .stdout_null()
        .stderr_capture()
        .unchecked()
        .start()
        .map_err(|err| spawn_error(argv, err).to_string())?;
    let until = Instant::now() + timeout;
    loop {
        if std::fs::symlink_metadata(socket)
            .is_ok_and(|meta| std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()))
        {
            return Ok(Master { handle });
        }
        match handle.try_wait() {
            Ok(Some(output)) => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let last = error_lines(&stderr).last().map(|l| l.to_string());
                return Err(last.unwrap_or_else(|| format!("ssh exited with {}", output.status)));
            }
            Err(err) => return Err(err.to_string()),
            Ok(None) => {}
        }
        if cancel.load(Ordering::SeqCst) || Instant::now() >= until {
            stop_group(&handle);
            return Err(if cancel.load(Ordering::SeqCst) {
                "ari was interrupted".to_string()
            } else {
                format!("not up after {}", humane(timeout))
            });
        }
        std::thread::sleep(MASTER_POLL);
    }
}

impl Master {
    /// Asks the master to exit (`exit_argv`: `ssh -O exit`), and stops it if it does not.
    pub(crate) fn close(self, exit_argv: &[String]) {
        if let Err(err) = control(exit_argv) {
            log::debug!("{err}");
        }
        if !matches!(self.handle.wait_timeout(KILL_GRACE), Ok(Some(_))) {
            stop_group(&self.handle);
        }
    }
}

/// Asks a master that a crashed run left listening on its socket to exit (`ssh -O exit`); a
/// socket nobody listens on any more is fine.
pub(crate) fn close_stale_master(exit_argv: &[String]) {
    if control(exit_argv).is_ok() {
        log::debug!("closed a master connection left by an earlier run");
    }
}

/// How long a control request (`ssh -O exit`) may take.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

fn control(argv: &[String]) -> Result<Output, ProcessError> {
    let command = Command::argv(Host::Local, argv.iter().cloned());
    let deadline = Deadline::after(CONTROL_TIMEOUT, "the control request limit");
    execute(&command, argv, &AtomicBool::new(false), Some(deadline), None, None)
}

/// Runs `argv`, the command that stops a process group on a remote host, for at most `timeout`
/// more than the five seconds the group gets to end.
pub(crate) fn stop_remote_group(argv: &[String], timeout: Duration) -> Result<(), ProcessError> {
    let command = Command::argv(Host::Local, argv.iter().cloned());
    let deadline = Deadline::after(timeout + KILL_GRACE + Duration::from_secs(2), "the limit to stop it");
    execute(&command, argv, &AtomicBool::new(false), Some(deadline), None, None).map(|_| ())
}

fn log_output(stdout: &str, stderr: &str) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    for line in stdout.lines() {
        log::debug!("stdout: {line}");
    }
    for line in stderr.lines() {
        log::debug!("stderr: {line}");
    }
}

/// Whether `error` is an exit that one of `tolerated` accepts; if so, it logs a warning that
/// `what` (`the copy`, a step's name) exited with it, with its last line of output.
pub(crate) fn counts_as_success(tolerated: &[Tolerated], error: &ProcessError, what: &str) -> bool {
    let ProcessError::Exited { code, stderr, .. } = error else { return false };
    if !tolerated.iter().any(|t| t.accepts(*code, stderr)) {
        return false;
    }
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
    log::warn!("{what} exited with status {code}, which counts as success: {last}");
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::process::capture::OUTPUT_TAIL;
    use crate::engine::process_record::{Liveness, ProcessRecord};
    use crate::engine::runner::Runner;

    fn ssh() -> Ssh {
        Ssh {
            path: "/usr/bin/ssh".into(),
            port: Some(2222),
            user: Some("backup".into()),
            options: vec!["-F".into(), "/etc/ari/ssh config".into()],
            defaults: vec!["-o".into(), "BatchMode=yes".into()],
            sudo: false,
        }
    }

    #[test]
    fn local_argv_of_each_kind_of_command() {
        let check = |command: Command, expected: &[&str]| {
            assert_eq!(command.local_argv(&ssh()), expected, "{command}");
        };
        check(Command::argv(Host::Local, ["ls", "-l", "a b"]), &["ls", "-l", "a b"]);
        check(Command::shell(Host::Local, "echo hi > /tmp/x"), &["/bin/sh", "-c", "echo hi > /tmp/x"]);
        check(
            Command::argv(Host::named("db"), ["touch", "a b", "it's", "$HOME;*"]),
            &[
                "/usr/bin/ssh",
                "-p",
                "2222",
                "-F",
                "/etc/ari/ssh config",
                "-o",
                "BatchMode=yes",
                "backup@db",
                "touch 'a b' 'it'\\''s' '$HOME;*'",
            ],
        );
        check(
            Command::shell(Host::named("db"), "mysqldump > /var/backups/x.sql"),
            &[
                "/usr/bin/ssh",
                "-p",
                "2222",
                "-F",
                "/etc/ari/ssh config",
                "-o",
                "BatchMode=yes",
                "backup@db",
                "mysqldump > /var/backups/x.sql",
            ],
        );
    }

    fn run(command: Command) -> Result<Output, ProcessError> {
        Runner::new(ssh(), false).run(&command)
    }

    #[test]
    fn errors_tell_apart_not_found_failed_and_signaled() {
        let err = run(Command::argv(Host::Local, ["ari-no-such-program-xyz"])).unwrap_err();
        assert!(matches!(err, ProcessError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("searched PATH="), "{err}");

        let err = run(Command::shell(Host::Local, "echo one >&2; echo two >&2; exit 3")).unwrap_err();
        assert!(matches!(err, ProcessError::Exited { code: 3, .. }), "{err}");
        assert!(err.to_string().ends_with("output:\n    one\n    two"), "{err}");

        let err = run(Command::shell(Host::Local, "ari-no-such-program-xyz")).unwrap_err();
        assert!(matches!(err, ProcessError::CommandNotFound { .. }), "{err}");

        let err = run(Command::shell(Host::Local, "kill -9 $$")).unwrap_err();
        assert!(matches!(err, ProcessError::Signaled { signal: 9, .. }), "{err}");

        let out = run(Command::argv(Host::Local, ["printf", "%s", "a b"])).unwrap();
        assert_eq!(out.stdout(), Ok("a b"));
    }

    #[test]
    fn a_command_printing_more_than_ari_keeps_has_no_whole_output() {
        let size = OUTPUT_HEAD + 3 * OUTPUT_TAIL + 5;
        let out =
            run(Command::shell(Host::Local, format!("head -c {size} /dev/zero | tr '\\0' x; echo end")))
                .unwrap();
        let omitted = (size + 4 - OUTPUT_HEAD - OUTPUT_TAIL) as u64;
        assert_eq!(out.stdout(), Err(OutputTooLong { omitted }));
        let shown = out.shown_stdout();
        assert!(shown.len() < OUTPUT_HEAD + OUTPUT_TAIL + 100, "{} bytes kept", shown.len());
        assert!(shown.ends_with("xxxend\n"), "the end is kept");
        assert!(shown.contains(&format!("\n[ari: {omitted} bytes of output left out here]\n")));
        let err = OutputTooLong { omitted }.to_string();
        assert_eq!(
            err,
            format!(
                "it printed more than the 16 MiB of output ari reads ({omitted} bytes more were left out)"
            )
        );
    }

    #[test]
    fn an_error_shows_the_last_lines_of_the_output() {
        let text = format!("first\n\n{}", (1..=12).map(|i| format!("line {i}\n")).collect::<String>());
        assert_eq!(
            tail(&text),
            format!(
                "; last lines of its output:{}",
                (3..=12).map(|i| format!("\n    line {i}")).collect::<String>()
            )
        );
        assert_eq!(tail(" \n\n"), "");
    }

    #[test]
    fn a_watched_command_runs_only_once_its_start_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let ran = dir.path().join("ran");
        let command = Command::argv(Host::Local, ["touch", ran.to_str().unwrap()]);
        let mut recorded = None;
        let mut on_start = |pid: u32| -> io::Result<()> {
            // The process exists, held at its gate: it has not run the program yet.
            assert!(!ran.exists(), "the command ran before its start was recorded");
            recorded = Some(ProcessRecord::of(pid)?);
            Ok(())
        };
        Runner::new(ssh(), false).run_watched(&command, &mut on_start).unwrap();
        assert!(ran.exists());
        let record = recorded.expect("on_start was called");
        // Reaped by the runner: the record proves it gone.
        assert!(matches!(record.liveness().unwrap(), Liveness::Gone(_)), "{:?}", record.liveness());

        // A failed record stops the process at its gate: it never runs.
        std::fs::remove_file(&ran).unwrap();
        let mut refuse = |_pid: u32| -> io::Result<()> { Err(io::Error::other("the ledger is full")) };
        let err = Runner::new(ssh(), false).run_watched(&command, &mut refuse).unwrap_err();
        assert!(
            matches!(&err, ProcessError::Spawn { source, .. } if source.to_string() == "the ledger is full"),
            "{err:?}"
        );
        assert!(!ran.exists(), "the command ran though its start could not be recorded");

        // A dry run records nothing and runs nothing.
        let mut never = |_pid: u32| -> io::Result<()> { panic!("a dry run started a process") };
        Runner::new(ssh(), true).run_watched(&command, &mut never).unwrap();
        assert!(!ran.exists());
    }

    #[test]
    fn a_process_is_gone_only_once_nothing_of_its_group_runs() {
        let dir = tempfile::tempdir().unwrap();
        let child = dir.path().join("child");
        // The leader exits at once; the sleep it started stays in its group.
        let script = format!("sleep 600 >/dev/null 2>&1 & echo $! > {}", child.display());
        let mut recorded = None;
        let mut on_start = |pid: u32| -> io::Result<()> {
            recorded = Some(ProcessRecord::of(pid)?);
            Ok(())
        };
        Runner::new(ssh(), false).run_watched(&Command::shell(Host::Local, script), &mut on_start).unwrap();
        let record = recorded.unwrap();
        let sleeper: i32 = std::fs::read_to_string(&child).unwrap().trim().parse().unwrap();
        let liveness = record.liveness().unwrap();
        assert!(
            matches!(&liveness, Liveness::Running(who) if who.starts_with(&format!("pid {sleeper} (sleep)"))),
            "{liveness:?}"
        );
        // SAFETY: kill(2) on the pid of the sleep this test started, which its group report
        // just showed running (it cannot have been reaped and reused: its parent shell is gone
        // and init reaps it only after this signal).
        #[allow(unsafe_code)]
        let killed = unsafe { libc::kill(sleeper, libc::SIGKILL) };
        assert_eq!(killed, 0);
        let gone = record.wait_until_gone(Duration::from_secs(30), || false).unwrap();
        assert!(
            matches!(&gone, Liveness::Gone(why) if why.contains("nothing of its process group runs")),
            "{gone:?}"
        );
    }

    #[test]
    fn stdin_is_closed() {
        // `cat` would wait forever on an open terminal or pipe; with /dev/null it ends at once.
        let out = run(Command::argv(Host::Local, ["cat"])).unwrap();
        assert_eq!(out.stdout(), Ok(""));
    }

    #[test]
    fn dry_run_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        let command = Command::argv(Host::Local, ["touch", marker.to_str().unwrap()]);
        Runner::new(ssh(), true).run(&command).unwrap();
        assert!(!marker.exists());
        Runner::new(ssh(), false).run(&command).unwrap();
        assert!(marker.exists());
    }

    #[test]
    fn a_command_past_its_timeout_is_killed() {
        let runner = Runner::new(ssh(), false).with_command_timeout(Some(Duration::from_millis(300)));
        let started = Instant::now();
        let err = runner.run(&Command::shell(Host::Local, "sleep 600")).unwrap_err();
        assert!(matches!(err, ProcessError::TimedOut { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "`sleep 600` on localhost was killed when it reached command_timeout 300ms"
        );
        assert!(started.elapsed() < Duration::from_secs(60), "the sleep was not stopped");
        let job = Runner::new(ssh(), false).with_job_timeout(Some(Duration::from_millis(200)));
        let err = job.run(&Command::shell(Host::Local, "sleep 600")).unwrap_err();
        assert!(err.to_string().ends_with("job_timeout 200ms"), "{err}");
        assert!(job.job_expired().is_some());
        assert!(job.for_cleanup().job_expired().is_none(), "cleanup has no job deadline");
    }

    #[test]
    fn a_cancelled_command_is_stopped_with_its_children() {
        let flag = Arc::new(AtomicBool::new(false));
        let runner = Runner::new(ssh(), false).with_cancel(flag.clone());
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // The shell starts a grandchild; stopping the group must stop it too.
        let script = format!("sleep 600 & echo $! > {}; wait", pid_file.display());
        let setter = std::thread::spawn(move || {
            while !pid_file.exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
            let pid = std::fs::read_to_string(&pid_file).unwrap();
            flag.store(true, Ordering::SeqCst);
            pid
        });
        let err = runner.run(&Command::shell(Host::Local, script)).unwrap_err();
        assert!(matches!(err, ProcessError::Interrupted { .. }), "{err}");
        let grandchild = setter.join().unwrap().trim().to_string();
        let gone = (0..50).any(|_| {
            let alive = std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .map(|stat| !stat.contains(") Z "))
                .unwrap_or(false);
            if alive {
                std::thread::sleep(Duration::from_millis(20));
            }
            !alive
        });
        assert!(gone, "grandchild {grandchild} survived");
    }
}
