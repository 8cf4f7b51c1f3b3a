//! Quoting that no login shell can undo. ssh hands a remote command to the remote user's login
//! shell as one string, so ari quotes every word of it; these tests put each of bash, dash and
//! zsh behind the harness's sshd in place of the login shell, reading each command as `-c` (as
//! sshd runs a login shell) and as interactive input (history expansion, extended globs; see
//! `SshdBuilder::shell`). Under each of the six, through the real `ari`:
//! - the words of a list-form `pre` hook and of a `backend: command` main step, every one of them
//!   special to some shell (`tests::argv::SHELL_SPECIAL`), arrive byte for byte;
//! - rsync on the source host (the zfs backend, over the fake `zfs`), given an include path with
//!   braces and one with a space, copies exactly those directories;
//! - rdiff-backup, whose `--remote-schema` runs under the local `/bin/sh`, reaches the host with an
//!   `ssh_options` value holding a space and a `$`, and backs it up.
//!
//! One server per shell and mode, and each case one job, so that the file runs in seconds.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::fs;
use std::path::{Path, PathBuf};

use tests::argv::{mangled, read_argv, with_markers, yaml_list, ARGV_DUMP, SHELL_SPECIAL};
use tests::fakes::Fakes;
use tests::rdiff::rdiff_backup;
use tests::{describe_output, read_tree, require_tool, run, stderr, Fixture, Shell, ShellMode, Sshd};

const DATASET: &str = "pool/backups/rsync";

/// A server whose every command runs under one shell in one mode, the fake `zfs` on its `PATH`,
/// and a fixture whose config reaches it.
struct Remote {
    shell: Shell,
    mode: ShellMode,
    sshd: Sshd,
    fakes: Fakes,
    fx: Fixture,
}

impl Remote {
    fn start(shell: Shell, mode: ShellMode) -> Remote {
        let fakes = Fakes::new();
        fakes.add_dataset(DATASET);
        let sshd = Sshd::builder().path_prefix(fakes.bin_dir()).shell(shell, mode).start();
        let fx = Fixture::new();
        fx.write_config(&sshd.config_yaml());
        Remote { shell, mode, sshd, fakes, fx }
    }

    /// The shell and mode, for failure messages.
    fn name(&self) -> String {
        match self.mode {
            ShellMode::Command => format!("{} -c", self.shell.name()),
            ShellMode::Interactive => format!("{} -i, the command typed as input", self.shell.name()),
        }
    }

    /// Runs `job` and fails, naming the shell, unless it succeeded.
    fn run_ok(&self, what: &str, job: &Path) {
        let out = run(self.fx.ari().arg("run").arg(job).env("PATH", self.fakes.path_env()));
        assert!(
            out.status.success(),
            "{}: {what}: ari exited with {}\n--- stderr ---\n{}\n--- sshd log ---\n{}\n{}",
            self.name(),
            out.status,
            stderr(&out),
            self.sshd.log_tail(),
            self.fakes.report()
        );
    }

    /// What `remote` printed, run through the server with plain ssh.
    fn ssh(&self, remote: &str) -> String {
        let mut cmd = self.sshd.ssh_command();
        cmd.arg(remote);
        let out = run(&mut cmd);
        assert!(out.status.success(), "{}: {}", self.name(), describe_output(&cmd, &out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The chosen shell is what runs the commands, interactive when asked, and with history
    /// expansion on where the shell has it: without this the matrix could pass against the
    /// login shell alone.
    fn assert_the_shell_runs(&self) {
        let out = self.ssh("readlink /proc/$$/exe; echo \"$-\"");
        let lines: Vec<&str> = out.lines().collect();
        let expected = fs::canonicalize(self.shell.path()).expect("resolve the shell's path");
        assert_eq!(
            lines.first().map(PathBuf::from),
            Some(expected),
            "{}: which shell ran: {out:?}",
            self.name()
        );
        let interactive = self.mode == ShellMode::Interactive;
        assert_eq!(
            lines.get(1).is_some_and(|flags| flags.contains('i')),
            interactive,
            "{}: $- is {out:?}",
            self.name()
        );
        // `!#` is the line typed so far, to a shell that expands history.
        let expands_history = interactive && self.shell != Shell::Dash;
        let bang = self.ssh("echo a !#");
        assert_eq!(bang != "a !#\n", expands_history, "{}: `echo a !#` printed {bang:?}", self.name());
    }

    /// Every word of a list-form hook and of the command backend's main step arrives as written,
    /// each after a marker so that a failure names the word and what it became.
    fn assert_list_words_arrive_intact(&self) {
        let fx = &self.fx;
        let dump = fx.write_script("bin/argv-dump", ARGV_DUMP).to_string_lossy().into_owned();
        let command = |out: &str| {
            let mut argv = vec![dump.clone(), fx.p(out)];
            argv.extend(with_markers(SHELL_SPECIAL));
            yaml_list(&argv)
        };
        let host = self.sshd.host_alias();
        let job = fx.write_job(
            "words.yaml",
            &format!(
                "backend: command\nsource_hostname: {host}\ncommand: {}\npre:\n  - command: {}\n    host: {host}\n",
                command("main"),
                command("hook")
            ),
        );
        self.run_ok("the job whose hook and main step carry the words", &job);
        let mut failures = Vec::new();
        for (step, out) in [("the pre hook", "hook"), ("the main step", "main")] {
            let arrived = read_argv(&fx.path(out));
            failures
                .extend(mangled(SHELL_SPECIAL, &arrived).into_iter().map(|line| format!("{step}: {line}")));
            let place = fs::read_to_string(fx.path(&format!("{out}.where"))).unwrap_or_default();
            assert_eq!(place, "ssh\n", "{}: {step} ran through ssh", self.name());
        }
        assert!(
            failures.is_empty(),
            "{}: words did not arrive intact:\n{}",
            self.name(),
            failures.join("\n")
        );
    }

    /// rsync runs on the source host, so its include paths pass through the remote shell: one
    /// with braces (`{data,}` would be `data` and nothing, that is all of `srv/`) and one with a
    /// space (two paths, `with` and `space`, were it split) send exactly those directories.
    fn assert_rsync_sends_exactly_the_included_paths(&self) {
        require_tool("rsync", "rsync");
        let fx = &self.fx;
        let src = fx.make_tree(
            "rsync-src",
            &[
                ("srv/{data,}/kept", "braces\n"),
                ("srv/with space/kept", "space\n"),
                ("srv/data/decoy", "data\n"),
                ("srv/with/decoy", "with\n"),
                ("srv/decoy", "srv\n"),
            ],
        );
        let include =
            [format!("{}/srv/{{data,}}", src.display()), format!("{}/srv/with space", src.display())];
        let dst = fx.path("zfs/rsync");
        fs::create_dir_all(&dst).expect("create the rsync destination");
        let host = self.sshd.host_alias();
        let job = fx.write_job(
            "rsync.yaml",
            &format!(
                "backend: zfs\nsource_hostname: {host}\ninclude: {}\nrsync_dst: {host}:{}\nzfs_hostname: {host}\ndataset_name: {DATASET}\nsnapshot_expiration_days: 60\n",
                yaml_list(&include),
                dst.display()
            ),
        );
        self.run_ok("the rsync job with braces and a space in its include paths", &job);
        // The decoys are named `decoy`, what was included `kept`: the names say it all.
        let sent: Vec<String> =
            read_tree(&dst.join(src.strip_prefix("/").expect("an absolute path")), &[]).into_keys().collect();
        assert_eq!(
            sent,
            ["srv/with space/kept", "srv/{data,}/kept"],
            "{}: the files rsync sent for the include paths {include:?}",
            self.name()
        );
        assert_eq!(self.fakes.zfs_snapshots().len(), 1, "{}: the zfs snapshot after rsync", self.name());
    }

    /// rdiff-backup reaches the host through `--remote-schema`, run by the local `/bin/sh`, with
    /// an `ssh_options` value holding a space and a `$`: a copy of the harness's ssh_config in a
    /// directory named `cfg dir $x`, without which ssh cannot resolve the host alias.
    fn assert_rdiff_backup_reaches_the_host(&self) {
        rdiff_backup();
        let fx = &self.fx;
        let config_dir = fx.path("cfg dir $x");
        fs::create_dir_all(&config_dir).expect("create the ssh config directory");
        let config = config_dir.join("ssh_config");
        fs::copy(self.sshd.ssh_config_path(), &config).expect("copy the harness's ssh_config");
        let src = fx.make_tree("rdiff-src", &[("etc/app.conf", "x=1\n"), ("notes.txt", "notes\n")]);
        let job = fx.write_job(
            "rdiff.yaml",
            &format!(
                "source_hostname: {}\ninclude: [{}]\nssh_options: {}\n",
                self.sshd.host_alias(),
                src.display(),
                yaml_list(&["-F".to_owned(), config.to_string_lossy().into_owned()])
            ),
        );
        self.run_ok("the rdiff-backup job whose ssh_options hold a space and a `$`", &job);
        let mirror = fx.path("store/rdiff").join(src.strip_prefix("/").expect("an absolute path"));
        assert_eq!(read_tree(&mirror, &[]), read_tree(&src, &[]), "{}: the rdiff-backup mirror", self.name());
    }
}

/// The whole matrix under one shell and mode.
fn check(shell: Shell, mode: ShellMode) {
    let remote = Remote::start(shell, mode);
    remote.assert_the_shell_runs();
    remote.assert_list_words_arrive_intact();
    remote.assert_rsync_sends_exactly_the_included_paths();
    remote.assert_rdiff_backup_reaches_the_host();
}

#[test]
fn under_bash() {
    check(Shell::Bash, ShellMode::Command);
}

#[test]
fn under_interactive_bash() {
    check(Shell::Bash, ShellMode::Interactive);
}

#[test]
fn under_dash() {
    check(Shell::Dash, ShellMode::Command);
}

#[test]
fn under_interactive_dash() {
    check(Shell::Dash, ShellMode::Interactive);
}

#[test]
fn under_zsh() {
    check(Shell::Zsh, ShellMode::Command);
}

#[test]
fn under_interactive_zsh() {
    check(Shell::Zsh, ShellMode::Interactive);
}
