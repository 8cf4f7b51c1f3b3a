//! How ari reaches remote hosts: the ssh binary, port, user and options, the same for ari's own
//! commands and for the ssh that rdiff-backup and rsync start. Plugins get it from
//! `JobContext::ssh` when a tool of theirs starts its own ssh (`--remote-schema`, rsync's `-e`).

use crate::contract::core_settings::{
    REMOTE_SUDO, REMOTE_USER, SSH_BATCH_MODE, SSH_CONNECT_TIMEOUT, SSH_OPTIONS, SSH_PATH, SSH_PORT,
    SSH_SERVER_ALIVE_COUNT_MAX, SSH_SERVER_ALIVE_INTERVAL,
};
use crate::contract::settings::Settings;
use crate::contract::step::{Command, Host, Program};

/// How ari reaches remote hosts: the same for its own commands and for the ssh that
/// rdiff-backup and rsync start.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ssh {
    /// The ssh binary (`ssh_path`).
    pub(crate) path: String,
    /// `ssh_port`; `None` leaves the port to ssh's own configuration.
    pub(crate) port: Option<u16>,
    /// `remote_user`; `None` leaves the user to ssh's own configuration.
    pub(crate) user: Option<String>,
    /// `ssh_options`, passed before the destination.
    pub(crate) options: Vec<String>,
    /// ari's own `-o` options from `ssh_batch_mode`, `ssh_connect_timeout` and the keepalive
    /// settings. They come after `options`: ssh keeps the first value of an option, so an admin's
    /// `-o ConnectTimeout=...` in `ssh_options` wins.
    pub(crate) defaults: Vec<String>,
    /// `remote_sudo`: every remote command runs through `sudo -n --` (after ari's remote
    /// wrapper, which stays the login shell's).
    #[serde(default)]
    pub(crate) sudo: bool,
}

/// What goes before a remote command under `remote_sudo`.
pub(crate) const SUDO: &str = "sudo -n -- ";

/// The argv sudo runs for `program` under `remote_sudo`: `/bin/sh -c` and the command as one
/// text in a subshell. sudo matches a rule's arguments joined by spaces, so a rule admits every
/// other split of the same text into arguments; with the whole command in `( ... )`, closed by
/// its last character, every other split hands `sh -c` a text cut before that `)`, which no
/// shell runs (a syntax error), or an option it refuses (`-c (`). An argv's words are quoted
/// ([`crate::contract::quote::shell_join`]), so no `(` or `)` of theirs counts; `ari authorize` asks the
/// shells about a shell text's pieces.
pub(crate) fn sudo_argv(program: &Program) -> [String; 3] {
    match program {
        Program::Argv(words) => sudo_words(&crate::contract::quote::shell_join(words), true),
        Program::Shell(script) => sudo_words(script, false),
    }
}

/// `/bin/sh -c` and `text` as a subshell: `( exec TEXT )` for an argv's quoted text (the command
/// replaces the subshell), `( TEXT )` for a shell text.
pub(crate) fn sudo_words(text: &str, exec: bool) -> [String; 3] {
    let script = if exec { format!("( exec {text} )") } else { format!("( {text} )") };
    ["/bin/sh".to_string(), "-c".to_string(), script]
}

impl Ssh {
    /// ssh at `path`, with port, user and options left to ssh's own configuration.
    pub(crate) fn new(path: impl Into<String>) -> Ssh {
        Ssh {
            path: path.into(),
            port: None,
            user: None,
            options: Vec::new(),
            defaults: Vec::new(),
            sudo: false,
        }
    }

    /// The same, running every remote command through `sudo -n --`, or not.
    #[doc(hidden)]
    pub fn sudo(mut self, sudo: bool) -> Ssh {
        self.sudo = sudo;
        self
    }

    /// The ssh binary (`ssh_path`).
    #[doc(hidden)]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `ssh_port`, when set.
    #[doc(hidden)]
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `ssh_options`.
    #[doc(hidden)]
    pub fn options(&self) -> &[String] {
        &self.options
    }

    /// Whether remote commands run through `sudo -n --` (`remote_sudo`).
    #[doc(hidden)]
    pub fn uses_sudo(&self) -> bool {
        self.sudo
    }

    /// The ssh settings of a job.
    #[doc(hidden)]
    pub fn from_settings(settings: &Settings) -> Ssh {
        let mut defaults = Vec::new();
        let mut option = |text: String| defaults.extend(["-o".to_string(), text]);
        if settings.get(&SSH_BATCH_MODE) {
            option("BatchMode=yes".to_string());
        }
        let connect = settings.get(&SSH_CONNECT_TIMEOUT);
        if connect > 0 {
            option(format!("ConnectTimeout={connect}"));
        }
        let interval = settings.get(&SSH_SERVER_ALIVE_INTERVAL);
        if interval > 0 {
            option(format!("ServerAliveInterval={interval}"));
            option(format!("ServerAliveCountMax={}", settings.get(&SSH_SERVER_ALIVE_COUNT_MAX)));
        }
        Ssh {
            path: settings.get(&SSH_PATH),
            port: settings.get(&SSH_PORT),
            user: settings.get(&REMOTE_USER),
            options: settings.get(&SSH_OPTIONS),
            defaults,
            sudo: settings.get(&REMOTE_SUDO),
        }
    }

    /// The command line a remote host's shell gets for `program` (before ari's remote wrapper):
    /// the argv quoted word by word, or the shell text; under `remote_sudo`, through `sudo -n --`
    /// as one shell text in a subshell, `sudo_argv` (`sudo -n -- /bin/sh -c '( exec ARGV )'`,
    /// `sudo -n -- /bin/sh -c '( TEXT )'`).
    pub(crate) fn remote_text(&self, program: &Program) -> String {
        match (program, self.sudo) {
            (Program::Argv(words), false) => crate::contract::quote::shell_join(words),
            (Program::Shell(script), false) => script.clone(),
            (program, true) => format!("{SUDO}{}", crate::contract::quote::shell_join(sudo_argv(program))),
        }
    }

    /// [`Ssh::remote_text`] of an argv whose quoted text is `template` (a pattern's, `{}` for its
    /// variable part): what ari sends for each command the pattern matches.
    pub(crate) fn remote_argv_template(&self, template: &str) -> String {
        if self.sudo {
            format!("{SUDO}{}", crate::contract::quote::shell_join(sudo_words(template, true)))
        } else {
            template.to_string()
        }
    }

    /// The remote command line that starts `program` (a word or sh text, as a tool's
    /// `--rsync-path`): under `remote_sudo`, through `sudo -n --`.
    pub fn remote_program(&self, program: &str) -> String {
        if self.sudo {
            format!("{SUDO}{program}")
        } else {
            program.to_string()
        }
    }

    /// The ssh command without its destination: binary, port when set, and options.
    pub fn base_argv(&self) -> Vec<String> {
        let mut argv = vec![self.path.clone()];
        if let Some(port) = self.port {
            argv.extend(["-p".to_string(), port.to_string()]);
        }
        argv.extend(self.options.iter().cloned());
        argv.extend(self.defaults.iter().cloned());
        argv
    }

    /// The user ari logs in as (`remote_user`); `None` leaves it to ssh's configuration.
    pub fn remote_user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// `remote_user@host`, or `host` when the user is left to ssh's configuration.
    pub fn destination(&self, host: &str) -> String {
        match &self.user {
            Some(user) => format!("{user}@{host}"),
            None => host.to_string(),
        }
    }
}

/// The command an admin runs with their own access to install the ssh filter that the jobs need
/// on `host` (`ari authorize`): as root under `remote_sudo` (`sudo`), whose sudoers drop-in needs
/// it, else as the admin; an installed filter refuses `--install` over ari's own key.
#[doc(hidden)]
pub fn filter_installer(host: &str, sudo: bool) -> String {
    let sudo = if sudo { "sudo " } else { "" };
    format!("ari authorize --host {host} --installer | ssh ADMIN@{host} {sudo}sh")
}

/// `command` (sh text) under ari's remote wrapper without a marker: for a command that a tool on
/// one remote host starts on another (rsync's `--rsync-path` on the source host reaching the ZFS
/// host), which then stops once its ssh connection is gone.
pub fn watched(command: &str) -> String {
    format!("{}{command}", prefix(None))
}

impl Command {
    /// The argv that ari executes on the backup server to run this command where it belongs:
    /// itself, `sh -c` for a local shell string, or ssh with each word of a remote argv quoted
    /// for the remote user's shell (what a plugin's tests can check).
    pub fn local_argv(&self, ssh: &Ssh) -> Vec<String> {
        match (&self.host, &self.program) {
            (Host::Local, Program::Argv(argv)) => argv.clone(),
            (Host::Local, Program::Shell(script)) => {
                vec!["/bin/sh".to_string(), "-c".to_string(), script.clone()]
            }
            (Host::Remote(host), program) => {
                let mut argv = ssh.base_argv();
                argv.push(ssh.destination(host));
                // ssh hands its command to the remote user's shell as one string: an argv is
                // quoted word by word so that every argument arrives as it was written.
                argv.push(ssh.remote_text(program));
                argv
            }
        }
    }
}

// The remote wrapper: the words before every remote command (the engine's `remote` module says
// what they are for and puts them there).

/// The first word of the line that the remote wrapper prints to stderr.
pub(crate) const MARKER: &str = "ari-remote-pgid";

/// The watcher: while the shell's parent (sshd's session process) lives, nothing; once it is
/// gone, SIGTERM to the whole group, and SIGKILL five seconds later. It holds none of the
/// session's descriptors, so it never keeps the session open, and the shell stops it when it
/// exits (the EXIT trap). No braces and no `!` outside `$!`, so that every POSIX shell, and an
/// interactive one, reads it the same.
const WATCH: &str = "(while kill -0 $PPID 2>/dev/null; do sleep 1; done; trap '' TERM; kill -TERM 0; \
                     sleep 5; kill -KILL 0) </dev/null >/dev/null 2>&1 & ari_watch=$!; \
                     trap 'kill $ari_watch 2>/dev/null' EXIT; ";

/// The sh text that goes before a remote command: the marker line (with `nonce`, when ari
/// reaches the host itself and can stop the group there), then the watcher.
pub(crate) fn prefix(nonce: Option<&str>) -> String {
    match nonce {
        Some(nonce) => format!("echo {MARKER} {nonce} $$ >&2; {WATCH}"),
        None => WATCH.to_string(),
    }
}

/// The start of the remote wrapper with a marker, up to its nonce.
pub(crate) const MARKER_START: &str = "echo ari-remote-pgid ";

/// The remote wrapper's watcher, which follows the marker (and goes alone before a command that
/// a tool on one host starts on another).
pub(crate) const WATCHER: &str = WATCH;

#[cfg(test)]
mod tests {
    use super::*;

    /// The proof `sudo_argv` rests on, with the host's own `/bin/sh`: the whole text runs, and
    /// every other split of sudo's joined arguments hands sh a text it will not run (each cut at
    /// a space, and `-c` joined with the text).
    #[test]
    fn every_other_split_of_a_command_under_sudo_is_one_no_shell_runs() {
        #[allow(clippy::disallowed_methods)] // the proof is what the real sh does
        let sh = |args: &[&str]| std::process::Command::new("/bin/sh").args(args).output().unwrap();
        let programs = [
            Program::Argv(
                ["lvcreate", "-s", "-L", "1G", "vg0/root", "-n", "root-ari_backup"]
                    .map(String::from)
                    .to_vec(),
            ),
            Program::Argv(["printf", "%s", "a )", "b; c", "it's", "#x", "$(id)"].map(String::from).to_vec()),
            Program::Shell("echo hooked > /tmp/x && echo \"a ) b\" | tr a b".to_string()),
            Program::Shell(crate::engine::remote::KILL_TEMPLATE.replace("{}", "4242")),
        ];
        for program in &programs {
            let [_, c, script] = sudo_argv(program);
            assert!(sh(&["-n", &c, &script]).status.success(), "the whole text: {script}");
            for (cut, _) in script.match_indices(' ') {
                let piece = &script[..cut];
                assert!(!sh(&["-n", "-c", piece]).status.success(), "a split that runs `{piece}`");
            }
            assert!(!sh(&[&format!("-c {script}")]).status.success(), "`-c` joined with its text");
        }
    }
}
