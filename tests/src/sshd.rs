//! A private OpenSSH server for one test: its own host key, client key,
//! configuration and log in a temporary directory, listening only on
//! 127.0.0.1 on a free port, and stopped (by its own PID) when dropped.
//!
//! Tests that exercise ari's remote backups connect to it with
//! `ssh -F <ssh_config> ari-test-host`; nothing here reads or writes the
//! machine's own sshd, `/etc/ssh` or `~/.ssh`, so several of these servers
//! can run at once, beside whatever the machine itself runs.
//!
//! A server can run every command under a chosen shell instead of the
//! login shell ([`SshdBuilder::shell`]): bash, dash or zsh, reading the
//! command as `-c` or as typed input, so that the quoting tests can put
//! each shell a login could have behind the same loopback port.

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::tools::require_tool;
use crate::{describe, describe_output, run_ok};

/// The host alias that the client configuration defines.
pub const HOST_ALIAS: &str = "ari-test-host";

/// The `PATH` that remote commands get after any prefix: the usual Debian
/// one, so that a test does not depend on what the server's environment
/// would have picked.
const BASE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long sshd may take to accept a first command before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long sshd may take to exit after SIGTERM before it gets SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a stopping server's connections may take to end by themselves
/// before the server is stopped under them.
const CONNECTIONS_TIMEOUT: Duration = Duration::from_secs(3);

/// How many ports to try when another process grabs the chosen one between
/// the moment it is picked and the moment sshd binds it.
const PORT_ATTEMPTS: usize = 5;

/// How often readiness and exit are polled.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How long to wait after a failed `ssh ... true` before the next try.
const FAILED_ATTEMPT_PAUSE: Duration = Duration::from_millis(200);

/// How many lines of the sshd log a failure message shows.
const LOG_TAIL_LINES: usize = 40;

/// A shell that can stand in for the login shell of the remote user; see
/// [`SshdBuilder::shell`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// GNU bash, root's login shell on Debian.
    Bash,
    /// dash, Debian's `/bin/sh`, the plainest POSIX shell.
    Dash,
    /// zsh, whose syntax goes furthest from POSIX: `=cmd` at the start of a
    /// word, and `^`, `#` and `~` as glob operators under `extendedglob`.
    Zsh,
}

impl Shell {
    /// The program's name, which is also its Debian package's.
    pub fn name(self) -> &'static str {
        match self {
            Shell::Bash => "bash",
            Shell::Dash => "dash",
            Shell::Zsh => "zsh",
        }
    }

    /// The shell's absolute path, or a panic saying how to install it.
    pub fn path(self) -> PathBuf {
        require_tool(self.name(), self.name())
    }
}

/// How the stand-in shell reads each command; see [`SshdBuilder::shell`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellMode {
    /// `SHELL -c COMMAND`: exactly how sshd runs a command under a login
    /// shell.
    Command,
    /// `SHELL -i` reading the command as typed input, with the options that
    /// interactive users have on: history expansion (`!`), bash's `extglob`,
    /// zsh's `extendedglob`, and in zsh no `interactive_comments` (so `#`
    /// starts no comment, but is a glob operator).
    Interactive,
}

/// Options for a [`Sshd`] before it starts.
#[derive(Debug, Default, Clone)]
pub struct SshdBuilder {
    path_prefix: Vec<PathBuf>,
    shell: Option<(Shell, ShellMode)>,
    scratch_home: Option<PathBuf>,
    sudoers: Option<String>,
}

impl SshdBuilder {
    /// A builder with no options: remote commands get the plain Debian `PATH`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `dir` in front of the `PATH` of every command run through this
    /// server, after the directories added before it. This is how a test
    /// plants fake tools that ari will find on the remote side.
    ///
    /// Panics when `dir` is relative or holds a character that cannot be
    /// written in a `PATH` in sshd_config's `SetEnv`.
    pub fn path_prefix(mut self, dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let text = dir.to_string_lossy();
        assert!(dir.is_absolute(), "a PATH prefix must be absolute, got {}", dir.display());
        // `:` would split the entry in two; white space would end the
        // `SetEnv` word, `"` and `\` quote or escape in it.
        assert!(
            !text.contains([':', '"', '\\']) && !text.contains(char::is_whitespace),
            "a PATH prefix cannot contain `:`, `\"`, `\\` or white space, got {text:?}"
        );
        self.path_prefix.push(dir);
        self
    }

    /// Runs every command through this server under `shell`, read as `mode`
    /// says, instead of under the login shell of the user running the tests
    /// (root's is bash on Debian CI). Without it, the login shell runs them.
    ///
    /// sshd runs a command as `LOGIN_SHELL -c STRING`, STRING being the
    /// bytes the client sent. The harness cannot change the login shell:
    /// the tests run as a real user (root on CI) and must not edit
    /// `/etc/passwd`. It puts a forced command in its own `authorized_keys`
    /// line instead: sshd then runs the forced command (through the login
    /// shell) with STRING, byte for byte, in `SSH_ORIGINAL_COMMAND`. The
    /// forced command is a `/bin/sh` script in the server's directory that
    /// runs `SHELL -c "$SSH_ORIGINAL_COMMAND"`; a double-quoted expansion is
    /// one word that no shell reads again, so the chosen shell interprets
    /// exactly the string a login shell would, with the same environment
    /// (sshd_config's `SetEnv`, PATH and SHLVL among them) and the same
    /// stdin, stdout and stderr. For quoting that is the whole of it: what
    /// differs (`argv[0]`, the intermediate `/bin/sh`) never touches the
    /// string. zsh runs with `-f`, so that the machine's `~/.zshenv` cannot
    /// change the test; bash and dash read no startup files for `-c` here
    /// (bash reads `~/.bashrc` under sshd only in a top-level shell, which
    /// the SHLVL option rules out).
    ///
    /// [`ShellMode::Interactive`] goes further than any login shell does.
    /// `bash -i -c` and `zsh -i -c` never expand `!`: both expand history
    /// only in the lines they read, not in a `-c` string. So this mode feeds
    /// STRING to `SHELL -i` on its stdin, as if typed at a prompt, inside
    /// `{` ... `} 0<&3`, which hands the command back ssh's stdin (duplicated
    /// to fd 3 before), since rdiff-backup and rsync speak their protocols
    /// over it. A word that arrives intact here survives history expansion
    /// and the extended globs that users' rc files commonly turn on (Debian's
    /// bash-completion turns on `extglob` in every interactive bash). No rc
    /// file is read (`--norc`, `-f`), and `HISTFILE` is empty, so that the
    /// history starts empty and the user's `~/.bash_history` is neither
    /// read (`!!` would depend on it) nor written. Prompts are empty and
    /// bash's line editing (which echoes the input) is off; the shells still
    /// write their job-control notices to stderr, never to stdout.
    ///
    /// [`SshdBuilder::start`] panics when the shell is not installed, saying
    /// how to install it.
    pub fn shell(mut self, shell: Shell, mode: ShellMode) -> Self {
        self.shell = Some((shell, mode));
        self
    }

    /// Runs the server in a mount namespace of its own, with `home` (a directory the test made)
    /// over the login user's home directory, and without the `SHLVL` that hides a login bash's
    /// `~/.bashrc`: every command then runs as an attacker's would, after the login shell read
    /// its startup files from `home`, and nothing touches the machine's own home. For the tests
    /// of what ari's key can do (see [`SshdBuilder::shell`] for why the others set `SHLVL`).
    ///
    /// Panics at start when the namespace cannot be made (`unshare -m` needs root), saying so.
    pub fn scratch_home(mut self, home: impl Into<PathBuf>) -> Self {
        self.scratch_home = Some(home.into());
        self
    }

    /// With [`SshdBuilder::scratch_home`]: `/etc/sudoers` in the server's namespace is `text`
    /// alone (the machine's rules and drop-ins are not read), so that the real `sudo` allows
    /// the login user exactly what the test says.
    pub fn sudoers(mut self, text: impl Into<String>) -> Self {
        self.sudoers = Some(text.into());
        self
    }

    /// Starts the server and returns once a command runs through it.
    pub fn start(self) -> Sshd {
        Sshd::start_with(self)
    }
}

/// A running private sshd; see the module documentation.
#[derive(Debug)]
pub struct Sshd {
    child: Child,
    port: u16,
    user: String,
    remote_path: String,
    ssh: PathBuf,
    // Dropped after `Drop::drop` stopped the server, so sshd never runs
    // with its files deleted under it.
    dir: TempDir,
}

impl Sshd {
    /// Starts a server with default options; see [`SshdBuilder`] for others.
    pub fn start() -> Sshd {
        SshdBuilder::new().start()
    }

    /// Options for a server, to be started with [`SshdBuilder::start`].
    pub fn builder() -> SshdBuilder {
        SshdBuilder::new()
    }

    /// The port sshd listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host alias defined in [`Sshd::ssh_config_path`]: `ari-test-host`.
    pub fn host_alias(&self) -> &'static str {
        HOST_ALIAS
    }

    /// The client configuration to pass to ssh with `-F`.
    pub fn ssh_config_path(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    /// The lines of an ari config that reach this server: its port, user and client config.
    pub fn config_yaml(&self) -> String {
        format!(
            "ssh_port: {}\nremote_user: {}\nssh_options: [-F, {}]\n",
            self.port(),
            self.user(),
            self.ssh_config_path().display()
        )
    }

    /// The ssh options that make a plain `ssh` use this server's client
    /// configuration: `["-F", <ssh_config>]`.
    pub fn ssh_options(&self) -> Vec<String> {
        vec!["-F".to_owned(), self.ssh_config_path().to_string_lossy().into_owned()]
    }

    /// The user name that the client logs in as: the one running the tests.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The temporary directory holding the keys, configurations and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The PID of the sshd process that this value started and will stop.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `PATH` that commands run through this server get.
    pub fn remote_path(&self) -> &str {
        &self.remote_path
    }

    /// The known_hosts file that holds this server's host key.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// The private key that the server accepts.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// The file that sshd's own log (its stderr) goes to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("sshd.log")
    }

    /// How many times sshd let a client in so far (its log's `Accepted publickey` lines): one
    /// per ssh connection.
    pub fn authentications(&self) -> usize {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("Accepted publickey"))
            .count()
    }

    /// What the stand-in `systemd-run` and `systemctl` on this server's PATH were asked, a line
    /// each (`run ARGS...`, `ctl stop UNIT`); see `src/bin/ari-standin-systemd.rs`.
    pub fn systemd_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join(SYSTEMD_DIR).join("calls"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// The units the stand-in `systemd-run` is running now (`ari-rdiff-PID.service`).
    pub fn systemd_units(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path().join(SYSTEMD_DIR).join("units"))
            .map(|entries| {
                entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
            })
            .unwrap_or_default()
    }

    /// The last lines of sshd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path())
    }

    /// Rewrites the client key's `authorized_keys` line with `options`, as `ari authorize` tells
    /// an admin to: for example `restrict,command="FILTER"`. Later connections see it; the running master, if any, does
    /// not matter, since sshd reads the file at each authentication.
    pub fn set_key_options(&self, options: &str) {
        assert!(!options.contains('\n'), "one authorized_keys line, got {options:?}");
        let client_public = read_public_key(&self.client_key_path());
        write_file(&self.dir.path().join("authorized_keys"), &format!("{options} {client_public}\n"));
    }

    /// A `ssh -F <ssh_config> ari-test-host` command with stdin closed, to
    /// which the caller adds the remote command as arguments.
    pub fn ssh_command(&self) -> Command {
        ssh_command(&self.ssh, &self.ssh_config_path())
    }

    fn start_with(options: SshdBuilder) -> Sshd {
        let sshd = require_tool("sshd", "openssh-server");
        let ssh = require_tool("ssh", "openssh-client");
        let ssh_keygen = require_tool("ssh-keygen", "openssh-client");
        ensure_privsep_dir();

        let dir = tempfile::Builder::new()
            .prefix("ari-sshd-")
            .tempdir()
            .expect("create a temporary directory for sshd");
        let dir_text = dir.path().to_string_lossy().into_owned();
        // The paths go unquoted into sshd_config, ssh_config and command
        // lines; tempfile's names never need quoting, but TMPDIR might.
        assert!(
            !dir_text.contains(|c: char| c.is_whitespace() || "\"'\\#".contains(c)),
            "the temporary directory {dir_text:?} needs quoting; set TMPDIR to a plainer path"
        );
        let user = current_user();

        let host_key = dir.path().join("host_key");
        let client_key = dir.path().join("client_key");
        for (key, comment) in [(&host_key, "ari-test-host-key"), (&client_key, "ari-test-client-key")] {
            run_ok(
                Command::new(&ssh_keygen)
                    .args(["-q", "-N", "", "-t", "ed25519", "-C", comment, "-f"])
                    .arg(key)
                    .stdin(Stdio::null()),
            );
        }

        // systemd-run and systemctl for rdiff-backup's server, which this machine runs without
        // systemd: after the test's own prefixes, before the system's.
        let systemd = install_systemd_standin(dir.path());
        let remote_path = options
            .path_prefix
            .iter()
            .chain([&systemd])
            .map(|dir| dir.to_string_lossy().into_owned())
            .chain([BASE_PATH.to_owned()])
            .collect::<Vec<_>>()
            .join(":");
        // sshd_config's SetEnv sets these variables for every command run
        // through this server. PATH is how fake tools are planted.
        // SHLVL=1 keeps that PATH intact: Debian's bash reads ~/.bashrc for
        // commands run by sshd, but only in a top-level shell, which it
        // judges by SHLVL; a ~/.bashrc that prepends its own directories
        // (rustup's, pyenv's) would otherwise shadow the fake tools and
        // make the remote side depend on the machine's dotfiles.
        //
        // A forced command, when a stand-in shell is chosen, is the path of
        // a script: inside the quoted `command="..."` option only `\"` is
        // special, and the directory holds neither quotes nor backslashes.
        let forced = options.shell.map(|(shell, mode)| {
            let script = dir.path().join("remote-shell");
            write_file(&script, &remote_shell_script(&shell.path(), shell, mode));
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755))
                .expect("make the remote-shell script executable");
            format!("command=\"{}\",", script.display())
        });
        let client_public = read_public_key(&client_key);
        write_file(
            &dir.path().join("authorized_keys"),
            &format!("{}{client_public}\n", forced.map(|option| format!("{option} ")).unwrap_or_default()),
        );

        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            write_configs(dir.path(), port, &user, &host_key, &client_key, &remote_path);
            if options.scratch_home.is_some() {
                // bash judges by SHLVL whether sshd started it (and reads ~/.bashrc then).
                let config = dir.path().join("sshd_config");
                let text = fs::read_to_string(&config).expect("read sshd_config");
                write_file(&config, &text.replace(" SHLVL=1\n", "\n"));
            }
            let log_path = dir.path().join("sshd.log");
            let log = fs::File::create(&log_path).expect("create the sshd log file");
            // sshd re-executes itself for every connection and insists on
            // an absolute path for that, which require_tool gives.
            let mut command = match &options.scratch_home {
                None => Command::new(&sshd),
                Some(home) => namespaced(&sshd, home, options.sudoers.as_deref(), dir.path()),
            };
            let mut child = command
                .args(["-D", "-e", "-f"])
                .arg(dir.path().join("sshd_config"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("duplicate the sshd log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|err| panic!("could not start {}: {err}", sshd.display()));
            match wait_ready(&mut child, port, &ssh, dir.path()) {
                Ready::Yes => return Sshd { child, port, user, remote_path, ssh, dir },
                // The server has exited; the directory and keys stay for
                // the next attempt, with configurations for a new port.
                Ready::PortTaken => last_log = log_tail(&log_path),
                Ready::Exited(status) => panic!(
                    "sshd exited before accepting a connection ({status}); its log:\n{}",
                    log_tail(&log_path)
                ),
            }
        }
        panic!(
            "sshd could not bind a free port on 127.0.0.1 in {PORT_ATTEMPTS} attempts; \
             the last log:\n{last_log}"
        )
    }
}

/// `sshd` started in a new mount namespace (`unshare -m`, private propagation) over whose
/// login home `home` is bind-mounted, and over whose `/etc/sudoers` a file with `sudoers` is,
/// when given. unshare and the shell exec sshd, so the child is sshd itself.
fn namespaced(sshd: &Path, home: &Path, sudoers: Option<&str>, dir: &Path) -> Command {
    let unshare = require_tool("unshare", "util-linux");
    // The home sshd gives the login: the passwd entry's, not this process's $HOME.
    let user = current_user();
    let entry = Command::new("getent").args(["passwd", &user]).output().expect("run getent passwd");
    let entry = String::from_utf8_lossy(&entry.stdout);
    let login_home = entry
        .trim_end()
        .split(':')
        .nth(5)
        .filter(|h| h.starts_with('/'))
        .unwrap_or_else(|| panic!("no home directory for {user} in `getent passwd {user}`: {entry:?}"));
    let mut script = String::from("set -e; mount --bind \"$1\" \"$2\"; ");
    if let Some(text) = sudoers {
        let file = dir.join("sudoers");
        write_file(&file, text);
        fs::set_permissions(&file, fs::Permissions::from_mode(0o440)).expect("chmod the test's sudoers");
        script.push_str(&format!("mount --bind {} /etc/sudoers; ", file.display()));
    }
    script.push_str("shift 2; exec \"$@\"");
    let mut command = Command::new(unshare);
    command
        .args(["-m", "--propagation", "private", "/bin/sh", "-c", &script, "sh"])
        .arg(home)
        .arg(login_home)
        .arg(sshd);
    command
}

impl Drop for Sshd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// What waiting for a freshly started sshd found.
enum Ready {
    Yes,
    PortTaken,
    Exited(ExitStatus),
}

/// Polls, for at most [`READY_TIMEOUT`], until `ssh ... true` succeeds
/// through the freshly started `child`, so that tests never race the
/// server's start. On timeout it stops the server and panics.
fn wait_ready(child: &mut Child, port: u16, ssh: &Path, dir: &Path) -> Ready {
    let deadline = Instant::now() + READY_TIMEOUT;
    let log_path = dir.join("sshd.log");
    let listening = format!("Server listening on 127.0.0.1 port {port}");
    let mut last_ssh_failure = String::from("none (ssh was not tried, or did not finish in time)");
    loop {
        if let Some(status) = child.try_wait().expect("poll sshd") {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            return if log.contains("Address already in use") {
                Ready::PortTaken
            } else {
                Ready::Exited(status)
            };
        }
        // Reading the log is cheaper than starting ssh, and keeps refused
        // connections out of the picture while sshd starts.
        let log = fs::read_to_string(&log_path).unwrap_or_default();
        let mut pause = POLL_INTERVAL;
        if log.contains(&listening) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match try_true(ssh, &dir.join("ssh_config"), remaining) {
                Attempt::Succeeded => return Ready::Yes,
                Attempt::Failed(failure) => last_ssh_failure = failure,
                // The previous failure says more than a cut-off attempt.
                Attempt::TimedOut => {}
            }
            // A listening server that refuses us will most likely go on
            // refusing: try less often, to keep its log readable.
            pause = FAILED_ATTEMPT_PAUSE;
        }
        if Instant::now() >= deadline {
            stop(child);
            panic!(
                "sshd on 127.0.0.1 port {port} did not accept `ssh {HOST_ALIAS} true` \
                 within {READY_TIMEOUT:?}.\nlast failed ssh attempt: {last_ssh_failure}\n\
                 sshd log:\n{}",
                log_tail(&log_path)
            );
        }
        thread::sleep(pause);
    }
}

/// How one readiness attempt went.
enum Attempt {
    Succeeded,
    Failed(String),
    TimedOut,
}

/// `ssh -F <config> ari-test-host` with stdin closed.
fn ssh_command(ssh: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(ssh);
    cmd.arg("-F").arg(config).arg(HOST_ALIAS).stdin(Stdio::null());
    cmd
}

/// Runs `ssh ... true` once, killing it if it outlives `timeout`.
fn try_true(ssh: &Path, config: &Path, timeout: Duration) -> Attempt {
    let mut cmd = ssh_command(ssh, config);
    cmd.arg("true").stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|err| panic!("could not start {}: {err}", describe(&cmd)));
    if wait_bounded(&mut child, timeout).is_none() {
        // Only this ssh client, which we started, by its own PID.
        let _ = child.kill();
        let _ = child.wait();
        return Attempt::TimedOut;
    }
    let output = child.wait_with_output().expect("collect ssh output");
    if output.status.success() {
        Attempt::Succeeded
    } else {
        Attempt::Failed(describe_output(&cmd, &output))
    }
}

/// Stops a server: SIGTERM, then SIGKILL if it lingers past
/// [`STOP_TIMEOUT`]. Only the PID that this harness spawned is signalled;
/// the per-connection sshd processes end by themselves when their clients
/// disconnect.
fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    // A connection's sshd processes may still be winding down just after
    // the client saw its command finish. Were the listener to exit first,
    // they would be orphaned to PID 1, which in some containers reaps late
    // or never, and linger as zombies; so give them a moment to end while
    // their parent can still reap them.
    let deadline = Instant::now() + CONNECTIONS_TIMEOUT;
    while has_children(child.id()) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    terminate(child.id());
    if wait_bounded(child, STOP_TIMEOUT).is_none() {
        // Child::kill sends SIGKILL to this child's PID only.
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Sends SIGTERM to one process that this harness started.
#[allow(unsafe_code)]
fn terminate(pid: u32) {
    let pid = libc::pid_t::try_from(pid).expect("a PID fits in pid_t");
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    // The PID is that of a child we have not yet reaped, so it cannot have
    // been reused by another process.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// Whether any live process has `pid` as its parent, found by scanning
/// /proc (`/proc/PID/task/PID/children` needs a kernel option that not
/// every kernel has). Zombies do not count: the parent reaps them.
fn has_children(pid: u32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|e| fs::read_to_string(e.path().join("stat")).ok())
        .any(|stat| {
            // The fields after the command name, which is in parentheses
            // and may itself hold spaces and parentheses: state, then ppid.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let ppid = fields.next().and_then(|p| p.parse::<u32>().ok());
            ppid == Some(pid) && state != Some("Z")
        })
}

/// Waits for `child` for at most `timeout`, polling; `None` if it still runs.
fn wait_bounded(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("poll a child process") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Picks a port that is free right now by letting the kernel choose one.
/// It may be taken again before sshd binds it; the caller retries then.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to pick a port");
    listener.local_addr().expect("read the picked port").port()
}

/// Where a server's stand-in systemd keeps its wrappers (`bin/`), units and calls.
const SYSTEMD_DIR: &str = "systemd";

/// Writes `systemd-run` and `systemctl` into `DIR/systemd/bin`, each running the stand-in
/// (`ari-standin-systemd`, built from this crate) with its state in `DIR/systemd`, and returns
/// the `bin` directory for the remote PATH. The stand-in confines for real what systemd-run
/// would (namespaces, read-only mounts, capabilities, seccomp), and refuses an option or a
/// property it does not know.
fn install_systemd_standin(dir: &Path) -> PathBuf {
    let standin = crate::tools::built_bin("ari-standin-systemd");
    let standin = std::path::absolute(&standin).unwrap_or(standin);
    let state = dir.join(SYSTEMD_DIR);
    let bin = state.join("bin");
    fs::create_dir_all(&bin).unwrap_or_else(|err| panic!("create {}: {err}", bin.display()));
    for (name, mode) in [("systemd-run", "run"), ("systemctl", "ctl")] {
        let path = bin.join(name);
        write_file(
            &path,
            &format!(
                "#!/bin/sh
# The stand-in {name} of ari's test harness; see tests/src/bin/ari-standin-systemd.rs.
exec '{}' --state '{}' {mode} \"$@\"\n",
                standin.display(),
                state.display()
            ),
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|err| panic!("chmod {}: {err}", path.display()));
    }
    bin
}

/// sshd refuses to start without its privilege separation directory. The
/// Debian package creates it at boot (systemd's RuntimeDirectory); in a
/// container that never started the system sshd it is missing. Creating
/// it, root-owned and not writable by others as sshd demands, is harmless.
fn ensure_privsep_dir() {
    let dir = Path::new("/run/sshd");
    if dir.is_dir() {
        return;
    }
    if let Err(err) = fs::create_dir_all(dir) {
        panic!(
            "sshd needs its privilege separation directory /run/sshd, which is missing \
             and could not be created ({err}); create it as root: mkdir -p -m 0755 /run/sshd"
        );
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).expect("make /run/sshd mode 0755");
}

/// The name of the user running the tests, who is also the remote user.
fn current_user() -> String {
    // `id` asks the system's user database (NSS), which $USER may not
    // match and which is not always set (it is not in this CI's root shell).
    let output = run_ok(Command::new("id").arg("-un").stdin(Stdio::null()));
    let name = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(!name.is_empty(), "`id -un` printed no user name");
    name
}

/// Writes sshd_config, known_hosts and ssh_config for a server on `port`.
fn write_configs(dir: &Path, port: u16, user: &str, host_key: &Path, client_key: &Path, remote_path: &str) {
    let d = dir.display();
    let mut sshd_config = String::new();
    // Every setting that matters is spelled out, so that the Debian
    // defaults compiled into sshd (and not /etc/ssh, which -f replaces)
    // are the only other input.
    let _ = write!(
        sshd_config,
        "\
# Written by ari's test harness for one test; see tests/src/sshd.rs.
ListenAddress 127.0.0.1
Port {port}
AddressFamily inet
HostKey {host_key}
PidFile {d}/sshd.pid
LogLevel VERBOSE
# Root runs the tests on CI; a key is the only way in.
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthenticationMethods publickey
# Without PAM, sshd does not need a PAM stack for this service name, and
# does not open sessions (utmp, motd, limits) on the machine.
UsePAM no
# The temporary directory is not laid out like a home directory.
StrictModes no
AuthorizedKeysFile {d}/authorized_keys
# PATH for fake tools, SHLVL for bash (see Sshd::start_with); no key line
# sets variables, as none does on a host that ari authorize hardened.
SetEnv PATH={remote_path} SHLVL=1
PermitUserEnvironment no
# The remote user's own ~/.ssh/rc must not run in tests.
PermitUserRC no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AllowAgentForwarding no
Subsystem sftp internal-sftp
",
        host_key = host_key.display(),
    );
    write_file(&dir.join("sshd_config"), &sshd_config);

    let host_public = read_public_key(host_key);
    // Only the key type and key: the comment is not part of a known_hosts
    // entry's meaning. ssh looks a non-22 port up as `[host]:port`.
    let host_public = host_public.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    write_file(&dir.join("known_hosts"), &format!("[127.0.0.1]:{port} {host_public}\n"));

    // One block for both names: `ssh -F CONFIG ari-test-host` and
    // `ssh -F CONFIG -p PORT 127.0.0.1` must behave the same. Options that
    // would reach outside the temporary directory (the agent, the global
    // known hosts, connection sharing) are switched off.
    let ssh_config = format!(
        "\
# Written by ari's test harness for one test; see tests/src/sshd.rs.
Host {HOST_ALIAS} 127.0.0.1
    HostName 127.0.0.1
    Port {port}
    User {user}
    IdentityFile {client_key}
    IdentitiesOnly yes
    IdentityAgent none
    UserKnownHostsFile {d}/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    UpdateHostKeys no
    CheckHostIP no
    BatchMode yes
    ConnectTimeout 5
    LogLevel ERROR
    ControlMaster no
    ControlPath none
    ForwardAgent no
    ForwardX11 no
",
        client_key = client_key.display(),
    );
    write_file(&dir.join("ssh_config"), &ssh_config);
}

/// The forced command that runs what ssh received under `shell`; see
/// [`SshdBuilder::shell`] for why each part is there.
fn remote_shell_script(program: &Path, shell: Shell, mode: ShellMode) -> String {
    let program = program.display();
    let header = "#!/bin/sh\n# Written by ari's test harness; see SshdBuilder::shell in tests/src/sshd.rs.\n";
    match mode {
        ShellMode::Command => {
            let flags = match shell {
                Shell::Zsh => " -f",
                Shell::Bash | Shell::Dash => "",
            };
            format!("{header}exec {program}{flags} -c \"$SSH_ORIGINAL_COMMAND\"\n")
        }
        ShellMode::Interactive => {
            let flags = match shell {
                Shell::Bash => "--norc --noediting -i -O extglob",
                Shell::Dash => "-i",
                Shell::Zsh => "-f -i +m -o extendedglob +o promptcr +o promptsp",
            };
            // The here-document's body is read when the script is parsed;
            // the expansion of $SSH_ORIGINAL_COMMAND is not read again, so a
            // line of it that says EOF does not end the document.
            format!(
                "{header}exec 3<&0\nHISTFILE= PS1= PS2= exec {program} {flags} <<EOF\n{{\n$SSH_ORIGINAL_COMMAND\n}} 0<&3 3<&-\nEOF\n"
            )
        }
    }
}

fn read_public_key(private_key: &Path) -> String {
    let mut path = private_key.as_os_str().to_owned();
    path.push(".pub");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {}: {err}", Path::new(&path).display()));
    text.trim().to_owned()
}

fn write_file(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
}

/// The last [`LOG_TAIL_LINES`] lines of a log file, or a note that it
/// could not be read.
fn log_tail(path: &Path) -> String {
    let file = match fs::File::open(path) {
        Ok(file) => file,
        Err(err) => return format!("(could not read {}: {err})", path.display()),
    };
    let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    let start = lines.len().saturating_sub(LOG_TAIL_LINES);
    if lines.is_empty() {
        return "(the log is empty)".to_owned();
    }
    lines[start..].join("\n")
}
