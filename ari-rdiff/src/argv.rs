//! The argv of rdiff-backup for a backup and for retention, in both command lines: pure
//! functions of their inputs, checked by snapshot tests.

use ari_core::plugin::PluginError;
use ari_core::ssh::Ssh;

use crate::options::split_global_options;

/// rdiff-backup's command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cli {
    /// 2.1 and later: `rdiff-backup [global options] backup [options] SOURCE DEST`.
    New,
    /// The original's: `rdiff-backup [options] SOURCE DEST`.
    Legacy,
}

/// Where the files to back up are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// On the backup server.
    Local {
        /// The source root.
        root: String,
    },
    /// On a host reached over ssh.
    Remote {
        /// The host.
        host: String,
        /// The source root on it.
        root: String,
    },
}

/// Everything the backup argv depends on.
#[derive(Debug, Clone)]
pub struct Backup<'a> {
    /// rdiff-backup's path.
    pub program: &'a str,
    /// The command line to use.
    pub cli: Cli,
    /// `rdiff_backup_options`, split.
    pub options: &'a [String],
    /// `ssh_compression`.
    pub ssh_compression: bool,
    /// How ssh reaches the source (its user).
    pub ssh: &'a Ssh,
    /// The job's ssh wrapper, which rdiff-backup runs as its ssh.
    pub ssh_wrapper: &'a str,
    /// rdiff-backup's server as the source host's shell gets it ([`crate::confine::server_line`]),
    /// for a remote source.
    pub server: &'a str,
    /// Paths to include, already rewritten into the source root.
    pub include: &'a [String],
    /// Paths to exclude, already rewritten.
    pub exclude: &'a [String],
    /// Where the files are.
    pub source: Source,
    /// The backup repository.
    pub destination: &'a str,
}

/// The command rdiff-backup runs (through a shell) to reach the source host: the job's ssh
/// wrapper, then `{h}` (rdiff-backup puts `user@host` there) and the remote server command
/// `server`, as the host's shell must get it. The ssh settings are the wrapper's, as exact words:
/// none of them passes through rdiff-backup. `server` is one word to the local shell, and the
/// wrapper hands its words on joined by spaces, so the host's shell reads `server` itself.
pub fn remote_schema(ssh_wrapper: &str, compression: bool, server: &str) -> String {
    let mut words = vec![ssh_wrapper.to_string()];
    if compression {
        words.push("-C".to_string());
    }
    format!("{} {{h}} {}", ari_core::quote::shell_join(&words), ari_core::quote::shell_quote(server))
}

impl Backup<'_> {
    /// The backup's argv.
    pub fn argv(&self) -> Vec<String> {
        let remote = matches!(self.source, Source::Remote { .. });
        let mut argv = vec![self.program.to_string()];
        let mut selection = Vec::new();
        for path in self.exclude {
            selection.extend(["--exclude".to_string(), path.clone()]);
        }
        for path in self.include {
            selection.extend(["--include".to_string(), path.clone()]);
        }
        selection.extend(["--exclude".to_string(), "**".to_string()]);
        let location = match &self.source {
            Source::Local { root } => root.clone(),
            Source::Remote { host, root } => format!("{}::{root}", self.ssh.destination(host)),
        };
        match self.cli {
            Cli::Legacy => {
                // The original's argv exactly: no statistics (metrics then have no files or bytes).
                argv.extend(self.options.iter().cloned());
                if remote && !self.ssh_compression {
                    argv.push("--ssh-no-compression".to_string());
                }
                if remote {
                    argv.push("--remote-schema".to_string());
                    argv.push(remote_schema(self.ssh_wrapper, self.ssh_compression, self.server));
                }
            }
            Cli::New => {
                let (global, action) = split_global_options(self.options);
                argv.extend(global);
                if remote {
                    argv.push("--remote-schema".to_string());
                    argv.push(remote_schema(self.ssh_wrapper, self.ssh_compression, self.server));
                }
                argv.push("backup".to_string());
                // The session statistics on stdout, for the job's metrics.
                argv.push("--print-statistics".to_string());
                argv.extend(action);
            }
        }
        argv.extend(selection);
        argv.push(location);
        argv.push(self.destination.to_string());
        argv
    }
}

/// What a backup transferred, from the session statistics `--print-statistics` prints: new,
/// changed and deleted files, and the bytes of the new and changed ones.
pub fn statistics(stdout: &str) -> ari_core::step::Transfer {
    let value = |name: &str| {
        stdout.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(name)).then(|| words.next()?.parse::<f64>().ok()).flatten()
        })
    };
    let sum = |names: &[&str]| -> Option<u64> {
        let values: Vec<f64> = names.iter().filter_map(|n| value(n)).collect();
        (!values.is_empty()).then(|| values.iter().sum::<f64>() as u64)
    };
    ari_core::step::Transfer::new(
        sum(&["NewFiles", "ChangedFiles", "DeletedFiles"]),
        sum(&["NewFileSize", "ChangedSourceSize"]),
    )
}

/// The argv that lists the backups of `destination`: with sizes in the new command line (YAML),
/// times and types in the legacy one (`TIME TYPE` lines).
pub fn list_increments(program: &str, cli: Cli, destination: &str) -> Vec<String> {
    let words: &[&str] = match cli {
        Cli::New => &["--parsable-output", "list", "increments", "--size"],
        Cli::Legacy => &["--parsable-output", "--list-increments"],
    };
    let mut argv = vec![program.to_string()];
    argv.extend(words.iter().map(|w| w.to_string()));
    argv.push(destination.to_string());
    argv
}

/// Reads what `list_increments` printed: each backup's time (its name, as `--at` takes it)
/// and, in the new command line, its own size.
pub fn increments(stdout: &str) -> Result<Vec<ari_core::plugin::StoredBackup>, PluginError> {
    use ari_core::plugin::StoredBackup;
    let mut backups = Vec::new();
    let mut size = None;
    for line in stdout.lines().map(str::trim) {
        if line.is_empty() || line == "---" || line == "..." {
            continue;
        }
        let line = line.strip_prefix("- ").unwrap_or(line);
        if let Some(value) = line.strip_prefix("size:") {
            size =
                Some(value.trim().parse::<u64>().map_err(|_| format!("a size that is no number: `{line}`"))?);
        } else if let Some(value) = line.strip_prefix("time:") {
            let time =
                value.trim().parse::<i64>().map_err(|_| format!("a time that is no number: `{line}`"))?;
            backups.push(StoredBackup::new(time, time.to_string(), size.take()));
        } else if line.starts_with("total_size:") {
            continue;
        } else if let Some((time, _kind)) =
            line.split_once(' ').filter(|(t, _)| t.chars().all(|c| c.is_ascii_digit()))
        {
            let time = time.parse::<i64>().map_err(|_| format!("a time that is no number: `{line}`"))?;
            backups.push(StoredBackup::new(time, time.to_string(), None));
        } else {
            return Err(format!("an increment listing line ari does not understand: `{line}`").into());
        }
    }
    Ok(backups)
}

/// The argv that copies `source` (a path inside the repository) as it was at `time` (a
/// backup's time, as `list_increments` names it) to `target`, which does not exist yet.
pub fn restore(program: &str, cli: Cli, time: &str, source: &str, target: &str) -> Vec<String> {
    let mut argv = vec![program.to_string()];
    match cli {
        Cli::New => argv.extend(["restore".to_string(), "--at".to_string(), time.to_string()]),
        Cli::Legacy => argv.extend(["--restore-as-of".to_string(), time.to_string()]),
    }
    argv.extend([source.to_string(), target.to_string()]);
    argv
}

/// The argv that checks the repository's files against the SHA-1 digests rdiff-backup recorded
/// for them, as of the backup at `time` (a backup's time) or the newest.
pub fn verify(program: &str, cli: Cli, time: Option<&str>, destination: &str) -> Vec<String> {
    let mut argv = vec![program.to_string(), "--terminal-verbosity".to_string(), "3".to_string()];
    match (cli, time) {
        (Cli::New, None) => argv.push("verify".to_string()),
        (Cli::New, Some(time)) => argv.extend(["verify".to_string(), "--at".to_string(), time.to_string()]),
        (Cli::Legacy, None) => argv.push("--verify".to_string()),
        (Cli::Legacy, Some(time)) => argv.extend(["--verify-at-time".to_string(), time.to_string()]),
    }
    argv.push(destination.to_string());
    argv
}

/// The argv that removes increments older than `timespec`.
pub fn retention(program: &str, cli: Cli, timespec: &str, destination: &str) -> Vec<String> {
    let words: &[&str] = match cli {
        Cli::New => &["--force", "remove", "increments", "--older-than"],
        Cli::Legacy => &["--force", "--remove-older-than"],
    };
    let mut argv = vec![program.to_string()];
    argv.extend(words.iter().map(|w| w.to_string()));
    argv.push(timespec.to_string());
    argv.push(destination.to_string());
    argv
}

/// The command line a version string asks for: `rdiff-backup 2.2.2` → new.
pub fn cli_for_version(version: &str) -> Option<Cli> {
    let number = version.split_whitespace().find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let mut parts = number.split('.').map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some(if (major, minor) >= (2, 1) { Cli::New } else { Cli::Legacy })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn default_options() -> Vec<String> {
        strings(&[
            "--exclude-device-files",
            "--exclude-fifos",
            "--exclude-sockets",
            "--terminal-verbosity",
            "1",
        ])
    }

    /// The ssh of a job as root, on `port`, with `options`: none of it but the user reaches
    /// rdiff-backup's argv, which goes through the job's ssh wrapper.
    fn ssh(port: u16, options: &[&str]) -> Ssh {
        let job = format!("remote_user: root\nssh_port: {port}\nssh_options: {options:?}\ninclude: [/]\n");
        ari_core::testkit::TestJob::parse(&job).context().ssh()
    }

    fn backup<'a>(cli: Cli, ssh: &'a Ssh, options: &'a [String], source: Source) -> Vec<String> {
        Backup {
            program: "/usr/bin/rdiff-backup",
            cli,
            options,
            ssh_compression: false,
            ssh,
            ssh_wrapper: "/var/lib/ari backup/run/my_backup/ssh",
            server: match cli {
                Cli::New => "rdiff-backup server --restrict-path / --restrict-mode read-only",
                Cli::Legacy => "rdiff-backup --server --restrict-read-only /",
            },
            include: &["/music".to_string()],
            exclude: &["/music/tmp".to_string()],
            source,
            destination: "/srv/backup-store/my_backup",
        }
        .argv()
    }

    #[test]
    fn legacy_argv_is_the_originals() {
        let options = default_options();
        let ssh = ssh(22, &[]);
        let local = backup(Cli::Legacy, &ssh, &options, Source::Local { root: "/".into() });
        assert_eq!(
            local,
            strings(&[
                "/usr/bin/rdiff-backup",
                "--exclude-device-files",
                "--exclude-fifos",
                "--exclude-sockets",
                "--terminal-verbosity",
                "1",
                "--exclude",
                "/music/tmp",
                "--include",
                "/music",
                "--exclude",
                "**",
                "/",
                "/srv/backup-store/my_backup",
            ])
        );
        let remote =
            backup(Cli::Legacy, &ssh, &options, Source::Remote { host: "kif".into(), root: "/".into() });
        assert_eq!(
            remote,
            strings(&[
                "/usr/bin/rdiff-backup",
                "--exclude-device-files",
                "--exclude-fifos",
                "--exclude-sockets",
                "--terminal-verbosity",
                "1",
                "--ssh-no-compression",
                "--remote-schema",
                "'/var/lib/ari backup/run/my_backup/ssh' {h} 'rdiff-backup --server --restrict-read-only /'",
                "--exclude",
                "/music/tmp",
                "--include",
                "/music",
                "--exclude",
                "**",
                "root@kif::/",
                "/srv/backup-store/my_backup",
            ])
        );
    }

    #[test]
    fn rdiff_backup_reaches_the_source_through_the_jobs_ssh_wrapper() {
        let options = default_options();
        let ssh = ssh(2222, &["-F", "/etc/ari backup/ssh_config"]);
        let source = Source::Remote { host: "kif".into(), root: "/".into() };
        insta::assert_debug_snapshot!(backup(Cli::Legacy, &ssh, &options, source.clone()));
        insta::assert_debug_snapshot!(backup(Cli::New, &ssh, &options, source));
    }

    #[test]
    fn new_argv_puts_global_options_before_the_action() {
        let options = default_options();
        let ssh = ssh(22, &[]);
        insta::assert_debug_snapshot!(backup(Cli::New, &ssh, &options, Source::Local { root: "/".into() }));
    }

    #[test]
    fn statistics_are_read_from_the_session_statistics() {
        let stdout = "--------------[ Session statistics ]--------------\nStartTime 1796164366.00 (Tue Dec  1 22:32:46 2026)\nSourceFiles 2\nNewFiles 1\nNewFileSize 3 (3 bytes)\nDeletedFiles 2\nChangedFiles 4\nChangedSourceSize 1000 (1000 bytes)\nErrors 0\n";
        assert_eq!(statistics(stdout), ari_core::step::Transfer::new(Some(7), Some(1003)));
        assert_eq!(statistics("nothing of the kind\n"), ari_core::step::Transfer::new(None, None));
    }

    #[test]
    fn increments_are_read_in_both_command_lines() {
        use ari_core::plugin::StoredBackup;
        let new = "---\n- size: 60\n  time: 1796167713\n  total_size: 4164\n- size: 4104\n  time: 1796167714\n  total_size: 4104\n...\n";
        assert_eq!(
            increments(new).unwrap(),
            [
                StoredBackup::new(1796167713, "1796167713", Some(60)),
                StoredBackup::new(1796167714, "1796167714", Some(4104))
            ]
        );
        let legacy = "1796167713 directory\n1796167714 directory\n";
        assert_eq!(increments(legacy).unwrap()[1], StoredBackup::new(1796167714, "1796167714", None));
        assert!(increments("Traceback: something\n").is_err());
    }

    #[test]
    fn retention_argv() {
        assert_eq!(
            retention("rdiff-backup", Cli::New, "1M", "/b/x"),
            strings(&["rdiff-backup", "--force", "remove", "increments", "--older-than", "1M", "/b/x"])
        );
        assert_eq!(
            retention("rdiff-backup", Cli::Legacy, "1M", "/b/x"),
            strings(&["rdiff-backup", "--force", "--remove-older-than", "1M", "/b/x"])
        );
    }

    #[test]
    fn versions() {
        let check = |version: &str, expected: Option<Cli>| {
            assert_eq!(cli_for_version(version), expected, "{version}")
        };
        check("rdiff-backup 2.2.2", Some(Cli::New));
        check("rdiff-backup 2.1.0a1", Some(Cli::New));
        check("rdiff-backup 2.0.5", Some(Cli::Legacy));
        check("rdiff-backup 1.2.8", Some(Cli::Legacy));
        check("rdiff-backup version 3", Some(Cli::New));
        check("garbage", None);
    }
}

/// Properties of version detection: any `--version` output is read or refused without a panic,
/// and every version of the two command lines gets its own.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    fn config(cases: u32) -> Config {
        Config {
            cases,
            rng_seed: RngSeed::Fixed(0x00a1_b4c6_0000_0009),
            failure_persistence: None,
            ..Config::default()
        }
    }

    /// `--version` output around a version number: what comes before and after it.
    fn framing() -> impl Strategy<Value = (&'static str, &'static str, &'static str)> {
        (
            prop::sample::select(&["rdiff-backup ", "rdiff-backup version ", "  rdiff-backup\t", ""][..]),
            prop::sample::select(
                &["", ".0", ".5", ".8", ".2", "a1", "b2", "rc3", ".1.dev4+g0abc", ".post1"][..],
            ),
            prop::sample::select(&["", "\n", " (python 3.11)\n", "\nmore 4.5 text"][..]),
        )
    }

    proptest! {
        #![proptest_config(config(2000))]

        #[test]
        fn any_version_output_is_read_or_refused_without_a_panic(text in prop_oneof![
            any::<String>(),
            "[0-9. a-z+\\-\n\t]{0,30}",
            "[0-9]{1,25}(\\.[0-9]{0,25}){0,3}",
        ]) {
            let _ = cli_for_version(&text);
        }

        #[test]
        fn two_one_and_later_get_the_new_command_line(
            (before, rest, after) in framing(),
            (major, minor) in prop_oneof![
                (Just(2u32), 1u32..100),
                (3u32..1000, 0u32..100),
                (Just(u32::MAX), 0u32..2),
            ],
        ) {
            let version = format!("{before}{major}.{minor}{rest}{after}");
            prop_assert_eq!(cli_for_version(&version), Some(Cli::New), "{:?}", version);
        }

        #[test]
        fn one_and_two_zero_get_the_legacy_command_line(
            (before, rest, after) in framing(),
            (major, minor) in prop_oneof![(0u32..2, 0u32..100), (Just(2u32), Just(0u32))],
        ) {
            let version = format!("{before}{major}.{minor}{rest}{after}");
            prop_assert_eq!(cli_for_version(&version), Some(Cli::Legacy), "{:?}", version);
        }
    }

    #[test]
    fn verify_argv_for_both_command_lines() {
        assert_eq!(
            verify("rdiff-backup", Cli::New, None, "/s/web"),
            ["rdiff-backup", "--terminal-verbosity", "3", "verify", "/s/web"]
        );
        assert_eq!(
            verify("rdiff-backup", Cli::New, Some("1700000000"), "/s/web"),
            ["rdiff-backup", "--terminal-verbosity", "3", "verify", "--at", "1700000000", "/s/web"]
        );
        assert_eq!(
            verify("rdiff-backup", Cli::Legacy, Some("1700000000"), "/s/web"),
            ["rdiff-backup", "--terminal-verbosity", "3", "--verify-at-time", "1700000000", "/s/web"]
        );
        assert_eq!(verify("rdiff-backup", Cli::Legacy, None, "/s/web")[3], "--verify");
    }
}
