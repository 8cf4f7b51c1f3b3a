//! How a job's commands reach remote hosts, and live there no longer than ari's interest in them.
//!
//! Three pieces, all decided here and enforced for every remote command, whoever built it:
//!
//! - **The remote wrapper.** Every command that ari runs on a remote host, and every command that
//!   rdiff-backup or rsync start there through the job's ssh wrapper, is preceded by a few words
//!   of POSIX sh ([`prefix`](crate::contract::ssh::prefix), which the contract's `ssh` module holds since a plugin's
//!   [`watched`](crate::contract::ssh::watched) uses it too). They print the command's process group (`ari-remote-pgid NONCE
//!   PGID`, NONCE a secret of the run and destination) so that ari can stop exactly that group on
//!   the host when it stops the command; and they start a watcher that stops the group when the
//!   ssh connection is gone (sshd's session process, the shell's parent, has exited), which is
//!   how a command outlives neither ari being killed nor a dropped connection. sshd makes each
//!   session's shell a session and group leader (`setsid`), and a non-interactive shell starts no
//!   groups of its own, so the group is the command and everything it started.
//! - **Connection sharing.** One ssh master connection per destination per job, its control
//!   socket in the job's private directory (`state_dir/run/LABEL`, 0700), used by every command
//!   to that destination, including rdiff-backup's and rsync's ssh; started when a command first
//!   needs it, closed when the job ends. A master that does not come up leaves its commands to
//!   their own connections, which ssh falls back to by itself when the socket is missing.
//! - **The ssh wrapper** (`state_dir/run/LABEL/ssh`): a generated sh script that tools running on
//!   the backup server use as their ssh (`--remote-schema`, `rsync -e`). It holds the job's ssh
//!   options as exact words (braces and quotes included), picks the destination's socket, and
//!   puts the remote wrapper before the tool's remote command.
//!
//! Nothing here starts a process: `process` does, from the argv built here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::engine::process;

use crate::contract::quote::{shell_join, shell_quote};
use crate::contract::ssh::{prefix, Ssh};
use crate::contract::step::{Command, Host, Program};

/// The nonce a plan shows, where no run has drawn one yet.
pub(crate) const PLAN_NONCE: &str = "NONCE";

/// The name of the job's ssh wrapper in its run directory.
const WRAPPER: &str = "ssh";

/// The longest control socket path ssh can bind: `sun_path` holds 108 bytes with its NUL, and
/// ssh binds a temporary name 17 bytes longer (`PATH.XXXXXXXXXXXXXXXX`) before renaming it.
const SOCKET_PATH_MAX: usize = 90;

/// The sh command that stops process group `pgid` on a host: SIGTERM, then SIGKILL once five
/// seconds passed with the group still there; it returns once the group is gone.
pub(crate) fn kill_script(pgid: u32) -> String {
    KILL_TEMPLATE.replace("{}", &pgid.to_string())
}

/// The stop script `script` as the host's shell gets it: through sudo under `remote_sudo` (the
/// group may be root's).
pub(crate) fn kill_text(ssh: &Ssh, script: &str) -> String {
    ssh.remote_text(&Program::Shell(script.to_string()))
}

/// [`kill_script`] with `{}` for the group: what a host's filter lets through (`ari authorize`).
/// The group stands once, so that a sudoers rule (whose `{}` are matched each on its own) allows
/// the same script as the filter. Both allow any digits there, so the script itself refuses a
/// group that is none of a command's: `kill -TERM -1` (or `-01`) signals every process, and a
/// number past the largest pid could wrap to it in a shell that does not refuse it.
pub(crate) const KILL_TEMPLATE: &str = "g={}; [ \"$g\" -gt 1 ] && [ \"$g\" -le 4194304 ] || exit 0; \
                                 kill -TERM -$g 2>/dev/null || exit 0; i=0; while kill -0 -$g 2>/dev/null; do \
                                 i=$((i+1)); if [ $i -gt 50 ]; then kill -KILL -$g 2>/dev/null; exit 0; fi; \
                                 sleep 0.1 2>/dev/null || sleep 1; done";

/// The job's private directory under `state_dir/run`: named after the label, or after a hash of
/// it when the label would make its control sockets' paths too long.
pub(crate) fn run_dir(state_dir: &str, label: &str) -> PathBuf {
    let run = Path::new(state_dir).join("run");
    let named = run.join(label);
    if socket_fits(&named) {
        named
    } else {
        run.join(format!("h{:016x}", fnv1a(label.as_bytes())))
    }
}

fn socket_fits(dir: &Path) -> bool {
    // The longest socket name: `c` and up to four digits.
    dir.as_os_str().len() + "/c0000".len() <= SOCKET_PATH_MAX
}

/// FNV-1a: a stable hash of a label for a directory name (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3))
}

/// The path of the job's ssh wrapper.
pub(crate) fn wrapper_path(state_dir: &str, label: &str) -> PathBuf {
    run_dir(state_dir, label).join(WRAPPER)
}

/// ssh expands `%` tokens in a control path; a literal `%` is `%%`.
fn control_path(path: &Path) -> String {
    path.to_string_lossy().replace('%', "%%")
}

/// A job's connections as `ari plan --json` shows them.
#[derive(Debug, serde::Serialize)]
pub(crate) struct ConnectionsJson {
    shared: bool,
    unshared_because: Option<String>,
    ssh_wrapper: String,
    hosts: Vec<DestinationJson>,
}

/// One destination: how ari reaches it, and its control socket when shared.
#[derive(Debug, serde::Serialize)]
struct DestinationJson {
    destination: String,
    ssh: Vec<String>,
    socket: Option<String>,
}

/// How one job reaches its remote hosts: its ssh settings, its private directory, and the
/// destinations whose connections its commands share.
#[derive(Debug, Clone)]
pub struct Connections {
    ssh: Ssh,
    run_dir: PathBuf,
    label: String,
    /// Why connections are not shared, when they are not.
    unshared: Option<String>,
    /// Every destination (`[user@]host`) of the job's own remote commands and its source host,
    /// sorted: the index is the socket's name.
    destinations: Vec<String>,
}

impl Connections {
    /// The connections of job `label` to `hosts` (`localhost` is skipped), sharing them when
    /// `sharing` is on and the socket paths fit.
    pub fn new<'a>(
        ssh: Ssh,
        state_dir: &str,
        label: &str,
        sharing: bool,
        hosts: impl IntoIterator<Item = &'a str>,
    ) -> Connections {
        let run_dir = run_dir(state_dir, label);
        let mut destinations: Vec<String> = hosts
            .into_iter()
            .filter(|host| !Host::named(host).is_local())
            .map(|host| ssh.destination(host))
            .collect();
        destinations.sort();
        destinations.dedup();
        let unshared = if !sharing {
            Some("ssh_connection_sharing is off".to_string())
        } else if !socket_fits(&run_dir) {
            Some(format!(
                "state_dir {state_dir} is too long for ssh's control socket paths ({SOCKET_PATH_MAX} bytes at most)"
            ))
        } else {
            None
        };
        Connections { ssh, run_dir, label: label.to_string(), unshared, destinations }
    }

    /// The ssh settings.
    pub fn ssh(&self) -> &Ssh {
        &self.ssh
    }

    /// The job's private directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The job's ssh wrapper.
    pub fn wrapper(&self) -> PathBuf {
        self.run_dir.join(WRAPPER)
    }

    /// Why connections are not shared, if they are not.
    pub fn unshared(&self) -> Option<&str> {
        self.unshared.as_deref()
    }

    /// The destinations whose connections are shared (none when sharing is off).
    pub fn shared(&self) -> &[String] {
        if self.unshared.is_some() {
            &[]
        } else {
            &self.destinations
        }
    }

    /// The control socket of `destination`, when its connection is shared.
    pub fn socket(&self, destination: &str) -> Option<PathBuf> {
        let index = self.shared().iter().position(|d| d == destination)?;
        Some(self.run_dir.join(format!("c{index}")))
    }

    /// ssh and its options for a command to `destination`, without the destination: through
    /// the shared connection when there is one, else never through anyone's (the admin's
    /// `ControlMaster auto` would start a master that outlives the job).
    pub fn ssh_argv(&self, destination: &str) -> Vec<String> {
        let mut argv = vec![self.ssh.path.clone()];
        // ssh keeps the first value of an option: ari's come first, so that an ssh_config or
        // ssh_options cannot turn a command into a master, or the master into a daemon.
        match self.socket(destination) {
            Some(socket) => argv.extend(
                ["-o", "ControlMaster=no", "-S"].map(String::from).into_iter().chain([control_path(&socket)]),
            ),
            None => argv.extend(["-o", "ControlPath=none"].map(String::from)),
        }
        argv.extend(self.ssh.base_argv().into_iter().skip(1));
        argv
    }

    /// The master connection to `destination`: ssh in the foreground (`-N`, no command, no
    /// daemon), listening on its control socket.
    pub fn master_argv(&self, destination: &str) -> Option<Vec<String>> {
        let socket = self.socket(destination)?;
        let mut argv = vec![self.ssh.path.clone()];
        argv.extend(["-M", "-N", "-o", "ControlPersist=no", "-S"].map(String::from));
        argv.push(control_path(&socket));
        argv.extend(self.ssh.base_argv().into_iter().skip(1));
        argv.push(destination.to_string());
        Some(argv)
    }

    /// The request to the master of `destination` to exit.
    pub fn exit_argv(&self, destination: &str) -> Option<Vec<String>> {
        let socket = self.socket(destination)?;
        Some(exit_argv(&self.ssh.path, &socket))
    }

    /// The argv that ari executes on the backup server for `command`: itself for a local command,
    /// ssh with the remote wrapper (marked with `nonce`) for a remote one.
    pub fn argv(&self, command: &Command, nonce: &str) -> Vec<String> {
        let Host::Remote(host) = &command.host else { return command.local_argv(&self.ssh) };
        let destination = self.ssh.destination(host);
        let mut argv = self.ssh_argv(&destination);
        argv.push(destination);
        let text = self.ssh.remote_text(&command.program);
        argv.push(format!("{}{text}", prefix(Some(nonce))));
        argv
    }

    /// The command that stops process group `pgid` on `destination`.
    pub fn kill_argv(&self, destination: &str, pgid: u32) -> Vec<String> {
        let mut argv = self.ssh_argv(destination);
        argv.push(destination.to_string());
        argv.push(kill_text(&self.ssh, &kill_script(pgid)));
        argv
    }

    /// What `ari plan` shows of the connections: for each destination, the ssh that reaches it
    /// (without the destination) and its control socket when shared; and the ssh wrapper.
    pub(crate) fn to_json(&self) -> ConnectionsJson {
        ConnectionsJson {
            shared: self.unshared.is_none(),
            unshared_because: self.unshared.clone(),
            ssh_wrapper: self.wrapper().display().to_string(),
            hosts: self
                .destinations
                .iter()
                .map(|destination| DestinationJson {
                    destination: destination.clone(),
                    ssh: self.ssh_argv(destination),
                    socket: self.socket(destination).map(|s| s.display().to_string()),
                })
                .collect(),
        }
    }

    /// The same as text, a line per destination (nothing for a job that stays local).
    pub fn render(&self) -> String {
        if self.destinations.is_empty() {
            return String::new();
        }
        let mut out = match &self.unshared {
            None => "  connections (one per host, shared by every command of the job):
"
            .to_string(),
            Some(why) => format!(
                "  connections (one per command: {why}):
"
            ),
        };
        for destination in &self.destinations {
            let mut argv = self.ssh_argv(destination);
            argv.push(destination.clone());
            out.push_str(&format!(
                "       {}
",
                crate::contract::kinds::escaped(&shell_join(&argv))
            ));
        }
        out.push_str(&format!(
            "       rdiff-backup and rsync use {}, which runs the same ssh
",
            crate::contract::kinds::escaped(&self.wrapper().display().to_string())
        ));
        out
    }

    /// The job's ssh wrapper, with the nonce of each destination: an sh script that a tool runs as
    /// `ssh [-C] [-l USER] [USER@]HOST COMMAND...`.
    pub fn wrapper_script(&self, nonce: &dyn Fn(&str) -> String) -> String {
        let default_user = self.ssh.user.clone().unwrap_or_default();
        let mut arms = String::new();
        for destination in &self.destinations {
            let socket = self.socket(destination).map(|s| control_path(&s)).unwrap_or_default();
            arms.push_str(&format!(
                "{}) socket={}; prefix={} ;;\n",
                shell_quote(destination),
                shell_quote(&socket),
                shell_quote(&prefix(Some(&nonce(destination))))
            ));
        }
        let base = shell_join(self.ssh.base_argv().into_iter().skip(1));
        let ssh = shell_quote(&self.ssh.path);
        format!(
            "#!/bin/sh\n\
             # ari's ssh for job {label}: written when the job started, removed when it ends.\n\
             # rdiff-backup and rsync run it as `ssh [-C] [-l USER] [USER@]HOST COMMAND...`. It\n\
             # reaches HOST with the job's ssh settings, through the job's shared connection to\n\
             # it, and puts ari's remote wrapper before COMMAND (see ari's docs/remote.md).\n\
             compress=\n\
             if [ \"$1\" = -C ]; then compress=-C; shift; fi\n\
             user=\n\
             if [ \"$1\" = -l ]; then user=$2; shift 2; fi\n\
             case $1 in\n\
             *@*) user=${{1%@*}}; host=${{1##*@}} ;;\n\
             *) host=$1 ;;\n\
             esac\n\
             shift\n\
             [ -n \"$user\" ] || user={default_user}\n\
             destination=${{user:+$user@}}$host\n\
             socket=\n\
             prefix={watch}\n\
             case $destination in\n\
             {arms}esac\n\
             if [ -n \"$socket\" ] && [ -z \"$compress\" ]; then\n\
             \texec {ssh} -o ControlMaster=no -S \"$socket\" {base} \"$destination\" \"${{prefix}}{sudo}$*\"\n\
             fi\n\
             exec {ssh} $compress -o ControlPath=none {base} \"$destination\" \"${{prefix}}{sudo}$*\"\n",
            label = self.label,
            default_user = shell_quote(&default_user),
            watch = shell_quote(&prefix(None)),
            sudo = if self.ssh.sudo { crate::contract::ssh::SUDO } else { "" },
        )
    }
}

/// The request to the master listening on `socket` to exit.
pub(crate) fn exit_argv(ssh_path: &str, socket: &Path) -> Vec<String> {
    let mut argv = vec![ssh_path.to_string()];
    argv.extend(["-S".to_string(), control_path(socket), "-O".to_string(), "exit".to_string()]);
    // ssh wants a destination even for a control command; the socket decides.
    argv.push("ari-control".to_string());
    argv
}

/// A fresh secret for one destination of one run: 16 hex digits from the kernel's random source.
pub(crate) fn nonce() -> String {
    use std::io::Read as _;
    let mut bytes = [0u8; 8];
    // /dev/urandom never blocks once the system is up; should it be missing, a nonce from the
    // clock and pid is still unknown to the hosts of other destinations before the run.
    let read = std::fs::File::open("/dev/urandom").and_then(|mut file| file.read_exact(&mut bytes));
    if read.is_err() {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes = (fnv1a(&clock.to_le_bytes()) ^ u64::from(std::process::id())).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How long a plain session's request to stop a remote group may take to connect.
const PLAIN_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One run's connections: its nonces, its masters, and its private directory on disk.
#[derive(Debug)]
pub struct Session {
    connections: Connections,
    /// The state directory holding the run directory, when this session made one.
    state: Option<crate::engine::files::StateDir>,
    connect_timeout: std::time::Duration,
    nonces: Mutex<BTreeMap<String, String>>,
    masters: Mutex<BTreeMap<String, Option<process::Master>>>,
    warnings: Mutex<Vec<String>>,
}

impl Session {
    /// A session that shares nothing and writes nothing: every command has its own connection,
    /// under the remote wrapper (recovery, `check --connect`, dry runs).
    pub fn plain(ssh: Ssh) -> Session {
        let connections = Connections::new(ssh, "/nonexistent", "plain", false, []);
        Session::with(connections, None, PLAIN_CONNECT_TIMEOUT)
    }

    /// How this session reaches remote hosts.
    pub(crate) fn ssh(&self) -> &Ssh {
        self.connections.ssh()
    }

    fn with(
        connections: Connections,
        state: Option<crate::engine::files::StateDir>,
        connect_timeout: std::time::Duration,
    ) -> Session {
        Session {
            connections,
            state,
            connect_timeout,
            nonces: Mutex::new(BTreeMap::new()),
            masters: Mutex::new(BTreeMap::new()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// Opens a run's session: makes the job's private directory (removing what a crashed run
    /// left there, after asking any master still listening on a stale socket to exit) and writes
    /// the job's ssh wrapper. `connect_timeout` bounds how long a master may take to come up.
    pub fn open(
        connections: Connections,
        state_dir: &Path,
        connect_timeout: std::time::Duration,
    ) -> Result<Session, crate::engine::files::StateError> {
        use crate::engine::files::{Area, StateDir};
        let state = StateDir::new(state_dir);
        let name = dir_name(&connections.run_dir);
        let (_, stale) = state.private_dir(Area::Run, &name)?;
        for entry in stale {
            if std::fs::symlink_metadata(&entry)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
            {
                log::debug!("a crashed run left the control socket {}: closing it", entry.display());
                process::close_stale_master(&exit_argv(&connections.ssh.path, &entry));
            }
            state.remove_private_entry(Area::Run, &name, &entry)?;
        }
        let session = Session::with(connections, Some(state), connect_timeout);
        for destination in session.connections.destinations.clone() {
            session.nonce(&destination);
        }
        let script = session.connections.wrapper_script(&|destination| session.nonce(destination));
        if let Some(state) = &session.state {
            state.write_executable(Area::Run, &name, WRAPPER, script.as_bytes())?;
        }
        Ok(session)
    }

    /// The connections.
    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// The run's secret for `destination`, drawn when first asked for.
    pub fn nonce(&self, destination: &str) -> String {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        nonces.entry(destination.to_string()).or_insert_with(nonce).clone()
    }

    /// Every destination whose nonce has been drawn, by nonce.
    pub fn by_nonce(&self) -> Vec<(String, String)> {
        let nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        nonces.iter().map(|(destination, nonce)| (nonce.clone(), destination.clone())).collect()
    }

    /// The argv that ari executes for `command` in this run.
    pub fn argv(&self, command: &Command) -> Vec<String> {
        match &command.host {
            Host::Remote(host) => {
                let nonce = self.nonce(&self.connections.ssh.destination(host));
                self.connections.argv(command, &nonce)
            }
            Host::Local => command.local_argv(&self.connections.ssh),
        }
    }

    /// The destinations that `argv` (for `command`) reaches: its host's, or, for a local command
    /// that runs the job's ssh wrapper, every destination the wrapper shares a connection to.
    pub fn destinations_of(&self, command: &Command, argv: &[String]) -> Vec<String> {
        match &command.host {
            Host::Remote(host) => vec![self.connections.ssh.destination(host)],
            Host::Local => {
                let wrapper = self.connections.wrapper().to_string_lossy().into_owned();
                if self.state.is_some() && argv.iter().any(|word| word.contains(&wrapper)) {
                    self.connections.destinations.clone()
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Starts the shared connection to each of `destinations` that has none yet; one that does
    /// not come up is left to per-command connections, with a warning.
    pub fn connect(&self, destinations: &[String], cancel: &std::sync::atomic::AtomicBool) {
        if self.state.is_none() {
            return;
        }
        for destination in destinations {
            let Some(argv) = self.connections.master_argv(destination) else { continue };
            let Some(socket) = self.connections.socket(destination) else { continue };
            let mut masters = self.masters.lock().unwrap_or_else(|e| e.into_inner());
            if masters.contains_key(destination) {
                continue;
            }
            log::debug!("opening the job's shared connection to {destination}");
            match process::start_master(&argv, &socket, self.connect_timeout, cancel) {
                Ok(master) => {
                    masters.insert(destination.clone(), Some(master));
                }
                Err(why) => {
                    let warning = format!(
                        "the shared ssh connection to {destination} did not come up ({why}); its commands use a connection each"
                    );
                    log::debug!("{warning}");
                    self.warnings.lock().unwrap_or_else(|e| e.into_inner()).push(warning);
                    masters.insert(destination.clone(), None);
                }
            }
        }
    }

    /// Stops the remote process groups that a stopped command reported, each on its host.
    pub fn stop_groups(&self, groups: &[(String, u32)]) {
        for (destination, pgid) in groups {
            log::debug!("stopping process group {pgid} on {destination}");
            let argv = self.connections.kill_argv(destination, *pgid);
            if let Err(err) = process::stop_remote_group(&argv, self.connect_timeout) {
                log::warn!(
                    "could not stop process group {pgid} on {destination} ({err}); it stops by itself once the connection is gone"
                );
            }
        }
    }

    /// Closes the shared connections and removes the run directory; returns what went wrong
    /// with the connections during the run (masters that did not come up).
    pub fn close(&self) -> Vec<String> {
        let mut masters = self.masters.lock().unwrap_or_else(|e| e.into_inner());
        for (destination, master) in std::mem::take(&mut *masters) {
            let (Some(master), Some(argv)) = (master, self.connections.exit_argv(&destination)) else {
                continue;
            };
            log::debug!("closing the job's shared connection to {destination}");
            master.close(&argv);
        }
        if let Some(state) = &self.state {
            let name = dir_name(&self.connections.run_dir);
            if let Err(err) = state.remove_private_dir(crate::engine::files::Area::Run, &name) {
                log::warn!("{}", crate::contract::error::chain(&err));
            }
        }
        std::mem::take(&mut *self.warnings.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// The last component of a run directory: its name in `state_dir/run`.
fn dir_name(run_dir: &Path) -> String {
    run_dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connections(sharing: bool) -> Connections {
        let ssh = Ssh {
            port: Some(2222),
            user: Some("backup".into()),
            options: vec!["-F".into(), "/etc/a b/config".into()],
            ..Ssh::new("/usr/bin/ssh")
        };
        Connections::new(ssh, "/var/lib/ari-backup", "db", sharing, ["db-1", "localhost", "zfs", "db-1"])
    }

    #[test]
    fn every_remote_destination_gets_a_socket_in_the_jobs_directory() {
        let c = connections(true);
        assert_eq!(c.shared(), ["backup@db-1", "backup@zfs"]);
        assert_eq!(c.socket("backup@zfs"), Some(PathBuf::from("/var/lib/ari-backup/run/db/c1")));
        assert_eq!(c.socket("other@zfs"), None);
        let argv = c.argv(&Command::argv(Host::Remote("zfs".into()), ["zfs", "list"]), "n1");
        assert_eq!(
            &argv[..6],
            ["/usr/bin/ssh", "-o", "ControlMaster=no", "-S", "/var/lib/ari-backup/run/db/c1", "-p"]
        );
        assert_eq!(argv[argv.len() - 2], "backup@zfs");
        assert_eq!(argv[argv.len() - 1], format!("{}zfs list", prefix(Some("n1"))));
        assert_eq!(
            c.master_argv("backup@db-1").unwrap()[..7],
            ["/usr/bin/ssh", "-M", "-N", "-o", "ControlPersist=no", "-S", "/var/lib/ari-backup/run/db/c0"]
        );
    }

    #[test]
    fn without_sharing_no_control_socket_is_used_at_all() {
        let c = connections(false);
        assert!(c.shared().is_empty());
        assert_eq!(c.master_argv("backup@db-1"), None);
        assert_eq!(c.ssh_argv("backup@db-1")[..3], ["/usr/bin/ssh", "-o", "ControlPath=none"]);
    }

    #[test]
    fn a_long_label_gets_a_hashed_directory_and_a_long_state_dir_no_sharing() {
        let label = "l".repeat(100);
        let dir = run_dir("/var/lib/ari-backup", &label);
        assert!(dir.to_string_lossy().starts_with("/var/lib/ari-backup/run/h"), "{}", dir.display());
        assert_eq!(dir, run_dir("/var/lib/ari-backup", &label), "stable");
        let long = format!("/{}", "s".repeat(90));
        let c = Connections::new(Ssh::new("ssh"), &long, "db", true, ["h"]);
        assert!(c.unshared().unwrap().contains("too long"), "{:?}", c.unshared());
        assert_eq!(control_path(Path::new("/a%b")), "/a%%b");
    }

    #[test]
    fn the_kill_script_names_only_the_group() {
        let script = kill_script(4242);
        assert!(
            script
                .starts_with("g=4242; [ \"$g\" -gt 1 ] && [ \"$g\" -le 4194304 ] || exit 0; kill -TERM -$g "),
            "{script}"
        );
        assert_eq!(script.matches("4242").count(), 1, "the group stands once: {script}");
        assert!(script.contains("kill -KILL -$g"), "{script}");
        assert_eq!(nonce().len(), 16);
        assert_ne!(nonce(), nonce());
    }

    /// What the filter lets through in the group's place is any digits: the script must stop
    /// before `kill` for what is no command's group. (Run with each `kill` replaced by `echo` or
    /// `false`, so that a broken guard shows instead of signalling every process of the user
    /// running the tests.)
    #[test]
    #[allow(clippy::disallowed_methods)] // a unit test of a shell script runs sh
    fn the_kill_script_signals_no_group_that_is_none_of_a_commands() {
        for shell in ["/bin/sh", "/bin/bash"] {
            for (group, signalled) in [
                ("1", false),
                ("01", false),
                ("0", false),
                ("4294967297", false),
                ("4194305", false),
                ("2", true),
                ("4242", true),
            ] {
                let script = KILL_TEMPLATE
                    .replace("{}", group)
                    .replace("kill -TERM", "echo kill -TERM")
                    .replace("kill -KILL", "echo kill -KILL")
                    .replace("while kill -0", "while false");
                let out = std::process::Command::new(shell).arg("-c").arg(&script).output().unwrap();
                let text = String::from_utf8_lossy(&out.stdout);
                assert_eq!(
                    text.contains(&format!("kill -TERM -{group}\n")),
                    signalled,
                    "{shell} {group}: {text}"
                );
                assert!(out.status.success(), "{shell} {group}: {out:?}");
            }
        }
    }
}
