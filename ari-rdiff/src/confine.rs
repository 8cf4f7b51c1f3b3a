//! What rdiff-backup's server runs as on a source host: the one remote command line of an rdiff
//! job that ari does not spell itself (rdiff-backup starts it through `--remote-schema`), so
//! the one that ari's key may start there beyond the plan's steps (`ari authorize`).
//!
//! Two layers, because rdiff-backup's own restriction stops an honest client only. The server
//! unpickles every frame before it vets the request in it, so a client that sends a crafted frame
//! runs code in the server, whatever `--restrict-path` and `--restrict-mode` say:
//!
//! 1. The server runs in a transient systemd unit (`systemd-run`) where that code can read but
//!    not write, keep anything, reach the network or another process: every file system
//!    read-only, no sockets at all, no new namespaces, no signals to other processes, no
//!    capability but reading any file (so that the server still reads what root reads).
//! 2. The server is told to serve only the job's source root, read-only
//!    (`server --restrict-path ROOT --restrict-mode read-only`; the original's command line:
//!    `--server --restrict-read-only ROOT`), which keeps an honest but misused client (a
//!    "restore" onto the host) out.
//!
//! `rdiff_backup_server_confinement: none` keeps the second layer only, for a host without
//! systemd; `ari authorize` then says that the key runs code on the host.

use ari_core::quote::shell_join;

use crate::argv::Cli;

/// How rdiff-backup's server is contained on the source host
/// (`rdiff_backup_server_confinement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confinement {
    /// In a transient systemd unit, read-only and cut off ([`SYSTEMD_RUN`]).
    Systemd,
    /// As the remote user's shell starts it, restricted by rdiff-backup's own options only.
    None,
}

impl Confinement {
    /// The setting's value.
    pub fn from_setting(value: &str) -> Confinement {
        match value {
            "none" => Confinement::None,
            _ => Confinement::Systemd,
        }
    }
}

/// The unit's name: unique while the shell that starts it lives (`$$` is its process id), so
/// that the shell's trap can stop exactly this unit.
const UNIT: &str = "ari-rdiff-$$";

/// `systemd-run`'s own options: the unit's standard input and output are the ssh session's
/// (`--pipe`), systemd-run exits with the server's status (`--wait`), the unit goes away even when
/// it failed (`--collect`), its start fails when the program cannot start
/// (`--service-type=exec`), and systemd-run prints nothing of its own (`--quiet`).
const SYSTEMD_RUN: &[&str] = &["systemd-run", "--quiet", "--pipe", "--wait", "--collect"];

/// The unit's properties (systemd 252, Debian 12), each closing a way out for code that runs
/// as root inside it. Every property is a `-p` of its own, and the line stays short: a sudoers
/// rule holds at most about 1000 characters (sudo 1.9.13), and under `remote_sudo` the whole
/// line is one. So properties whose effect the others already have are left out:
/// `ProtectKernelModules=`, `ProtectClock=` and `ProtectHostname=` (no capability for it, and the
/// calls are outside `@system-service` or in `@privileged`), `ProtectKernelLogs=` (no
/// `CAP_SYSLOG`, no /dev/kmsg in the private /dev), `RestrictRealtime=` (in `@resources`),
/// `RestrictSUIDSGID=` (nothing can be written) and `LockPersonality=` (no way out).
pub const PROPERTIES: &[&str] = &[
    // Every file system read-only (/dev, /proc and /sys are dealt with below), home directories
    // too: nothing can be written, so nothing can be kept or planted (a ~/.bashrc, a cron job).
    "ProtectSystem=strict",
    "ProtectHome=read-only",
    // /proc too, where root's user id may write other processes' settings without a capability
    // (/proc/PID/oom_score_adj, coredump_filter), and /proc/sys (a kernel.core_pattern runs a
    // program as real root); /sys and the cgroup tree (moving processes, changing limits) too.
    "ReadOnlyPaths=/proc",
    "ProtectKernelTunables=yes",
    "ProtectControlGroups=yes",
    // A /dev of its own with the pseudo devices only: no disks, no /dev/mem, no /dev/kmsg.
    "PrivateDevices=yes",
    // A network namespace of its own with only a loopback device, and System V IPC and POSIX
    // message queues of its own.
    "PrivateNetwork=yes",
    "PrivateIPC=yes",
    // Root's user id, with no capability but reading any file: the server reads what root reads
    // and rdiff-backup behaves as it does for root; nothing it runs gains privileges (setuid
    // programs, file capabilities).
    "CapabilityBoundingSet=CAP_DAC_READ_SEARCH",
    "NoNewPrivileges=yes",
    // No new namespaces: a user namespace would give the code capabilities of its own.
    "RestrictNamespaces=yes",
    // System calls: only the native ones (a 32-bit call would go around the filter), only those
    // a service needs, and of those none that reaches outside. `@privileged`: among them
    // open_by_handle_at, which with CAP_DAC_READ_SEARCH opens files beside the unit's read-only
    // mounts. `@resources` and prlimit64: another process's priority, CPU, memory and limits.
    // `@keyring`: root's user keyring is shared by every process of root's. `@debug`: ptrace,
    // process_vm_writev, pidfd_getfd, into other processes. `@aio`: io_uring, which would open
    // sockets around the filter. `socket`: none at all, since root's user id reaches D-Bus and
    // systemd's private socket by its id alone and could start an unconfined unit through either
    // (systemd 252 refuses `RestrictAddressFamilies=none` for a transient unit; this says the
    // same). The kill family: every other process of root's has the same user id.
    "SystemCallArchitectures=native",
    "SystemCallFilter=@system-service",
    "SystemCallFilter=~@privileged @resources @keyring @debug @aio socket kill tkill tgkill rt_sigqueueinfo rt_tgsigqueueinfo pidfd_send_signal prlimit64",
    // A refused call fails with EPERM instead of killing the server, so that a library probing
    // for a call goes on without it.
    "SystemCallErrorNumber=EPERM",
];

/// rdiff-backup's server, as the source host's shell gets it (before ari's remote wrapper and,
/// under `remote_sudo`, `sudo -n --`): restricted to `root`, read-only, and contained as
/// `confinement` says. A fixed line for a given job, which the host's filter allows exactly.
///
/// Confined, it is `/bin/sh -c SCRIPT`, so that it is one command for sudo, and SCRIPT sets a
/// trap before it starts the unit: ari stops a remote command by signalling its process group
/// (`kill -TERM -PGID`, or the watcher when the connection is gone), which reaches systemd-run
/// but not the unit (systemd starts it outside the group); the trap then stops the unit and
/// waits for it, so that the server has let go of a snapshot before ari unmounts it.
pub fn server_line(cli: Cli, confinement: Confinement, root: &str) -> String {
    let server: Vec<&str> = match cli {
        Cli::New => vec!["rdiff-backup", "server", "--restrict-path", root, "--restrict-mode", "read-only"],
        Cli::Legacy => vec!["rdiff-backup", "--server", "--restrict-read-only", root],
    };
    match confinement {
        Confinement::None => shell_join(&server),
        Confinement::Systemd => {
            let options: Vec<String> =
                PROPERTIES.iter().map(|property| format!("-p {}", double_quoted(property))).collect();
            let script = format!(
                "trap \"systemctl stop {UNIT}.service 2>/dev/null\" HUP INT TERM; {} --unit={UNIT} --service-type=exec {} -- {}",
                shell_join(SYSTEMD_RUN),
                options.join(" "),
                shell_join(&server)
            );
            shell_join(["/bin/sh", "-c", &script])
        }
    }
}

/// A property as a word of the script, which `/bin/sh` reads: as it is, or in double quotes where
/// a shell could read a character of it (the `~` of a refused system call), so that the script
/// holds no single quote and the line stays readable once it is quoted as a whole.
fn double_quoted(property: &str) -> String {
    debug_assert!(!property.contains(['"', '$', '`', '\\', '!']), "{property}");
    if shell_join([property]) == property {
        property.to_string()
    } else {
        format!("\"{property}\"")
    }
}

/// What the server lets ari's key do on the host beyond the job's backup, for `ari authorize`.
pub fn note(confinement: Confinement) -> &'static str {
    match confinement {
        Confinement::Systemd => {
            "through rdiff-backup's server (which runs whatever code its client sends) ari's key can read any file root can read on this host and send it back; systemd-run keeps that code from writing, keeping anything, reaching the network or signalling another process (rdiff_backup_server_confinement: systemd; see SECURITY.md)"
        }
        Confinement::None => {
            "through rdiff-backup's server (which runs whatever code its client sends) ari's key can run any code on this host as the user the server runs as: rdiff_backup_server_confinement is none (see SECURITY.md)"
        }
    }
}

/// Why `root` cannot be the source root of a remote job's server line, if it cannot: the line
/// goes into rdiff-backup's `--remote-schema`, which Python's `format` fills in (no braces), and
/// under systemd into a unit's command line, where systemd expands `$` (no dollar).
pub fn unfit_root(confinement: Confinement, root: &str) -> Option<&'static str> {
    if root.contains(['{', '}', '%']) {
        return Some("rdiff-backup's --remote-schema, which names it, cannot hold `{`, `}` or `%`");
    }
    if confinement == Confinement::Systemd && root.contains('$') {
        return Some("systemd expands `$` in the command line of the unit rdiff-backup's server runs in (rdiff_backup_server_confinement: systemd)");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconfined_the_server_is_restricted_to_the_root_read_only() {
        assert_eq!(
            server_line(Cli::New, Confinement::None, "/srv/my data"),
            "rdiff-backup server --restrict-path '/srv/my data' --restrict-mode read-only"
        );
        assert_eq!(
            server_line(Cli::Legacy, Confinement::None, "/"),
            "rdiff-backup --server --restrict-read-only /"
        );
    }

    #[test]
    fn confined_the_server_runs_in_a_unit_that_its_shell_stops() {
        insta::assert_snapshot!(server_line(Cli::New, Confinement::Systemd, "/run/ari-backup/db"));
        let legacy = server_line(Cli::Legacy, Confinement::Systemd, "/");
        assert!(legacy.ends_with(" -- rdiff-backup --server --restrict-read-only /'"), "{legacy}");
    }

    /// The line as sh reads it: `/bin/sh`, `-c`, and a script whose words are the trap, then
    /// systemd-run with every property, then the server, last, so that no prefix of the script's
    /// words (another split of the same text, as sudoers matches it) starts the server with
    /// fewer properties.
    #[test]
    fn the_script_reads_back_as_the_trap_systemd_run_and_the_server_last() {
        let line = server_line(Cli::New, Confinement::Systemd, "/srv/a b");
        let words = shell_words::split(&line).unwrap();
        assert_eq!(words[..2], ["/bin/sh", "-c"]);
        assert_eq!(words.len(), 3, "{words:?}");
        let script = shell_words::split(&words[2]).unwrap();
        assert_eq!(
            script[..6],
            ["trap", "systemctl stop ari-rdiff-$$.service 2>/dev/null", "HUP", "INT", "TERM;", "systemd-run"]
        );
        let dash = script.iter().position(|w| w == "--").unwrap();
        assert_eq!(
            script[dash + 1..],
            ["rdiff-backup", "server", "--restrict-path", "/srv/a b", "--restrict-mode", "read-only"]
        );
        let properties: Vec<&str> =
            script.windows(2).filter(|pair| pair[0] == "-p").map(|pair| pair[1].as_str()).collect();
        assert_eq!(properties, PROPERTIES);
        assert!(script.contains(&"--unit=ari-rdiff-$$".to_string()), "{script:?}");
    }

    #[test]
    fn every_property_is_a_word_that_double_quotes_keep_as_it_is() {
        for property in PROPERTIES {
            assert!(!property.contains(['"', '$', '`', '\\', '!']), "{property}");
        }
    }

    #[test]
    fn roots_the_schema_or_systemd_would_read_differently_are_unfit() {
        assert_eq!(unfit_root(Confinement::Systemd, "/srv/data"), None);
        assert_eq!(unfit_root(Confinement::None, "/srv/$x"), None);
        assert!(unfit_root(Confinement::Systemd, "/srv/$x").is_some());
        for root in ["/srv/{h}", "/srv/a}", "/srv/%s"] {
            assert!(unfit_root(Confinement::None, root).is_some(), "{root}");
        }
    }
}
