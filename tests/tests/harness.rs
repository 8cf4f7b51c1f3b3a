//! Tests of the test harness itself: the private sshd starts, accepts
//! commands under both of its names, gives remote commands the PATH prefix
//! that fake tools rely on, leaves nothing behind when dropped, and can run
//! beside another instance. Every other remote test builds on these.

// Tests spawn the real tools (ssh, sshd) directly on purpose: the
// workspace's one-spawner rule is for production code.
#![allow(clippy::disallowed_methods)]

use std::fs;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use tests::{describe, describe_output, require_tool, run, Sshd};

/// Runs `remote` through `sshd` by its host alias and returns stdout,
/// failing with everything ssh and sshd said if it does not succeed.
fn ssh_alias(sshd: &Sshd, remote: &str) -> String {
    let mut cmd = sshd.ssh_command();
    cmd.arg(remote);
    checked_stdout(sshd, &mut cmd)
}

fn checked_stdout(sshd: &Sshd, cmd: &mut Command) -> String {
    let output = run(cmd);
    assert!(
        output.status.success(),
        "{}\n--- sshd log ---\n{}",
        describe_output(cmd, &output),
        sshd.log_tail()
    );
    String::from_utf8(output.stdout).expect("ssh output is UTF-8")
}

#[test]
fn ssh_by_host_alias_runs_a_command() {
    let sshd = Sshd::start();
    assert_eq!(sshd.host_alias(), "ari-test-host");

    // Spelled out rather than through ssh_command(), to prove that the
    // documented `ssh -F CONFIG ari-test-host` form works on its own.
    let mut cmd = Command::new(require_tool("ssh", "openssh-client"));
    cmd.args(sshd.ssh_options()).args([sshd.host_alias(), "echo", "hello"]);
    assert_eq!(checked_stdout(&sshd, &mut cmd), "hello\n");
}

#[test]
fn ssh_by_address_and_port_runs_a_command() {
    let sshd = Sshd::start();
    let mut cmd = Command::new(require_tool("ssh", "openssh-client"));
    cmd.args(sshd.ssh_options()).args(["-p", &sshd.port().to_string(), "127.0.0.1", "echo", "hello"]);
    assert_eq!(checked_stdout(&sshd, &mut cmd), "hello\n");
}

#[test]
fn ssh_logs_in_as_the_current_user() {
    let sshd = Sshd::start();
    assert_eq!(ssh_alias(&sshd, "id -un").trim(), sshd.user());
}

/// Writes an executable shell script `name` into `dir` that prints `line`.
fn fake_tool(dir: &Path, name: &str, line: &str) {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\necho {line}\n")).expect("write the fake tool");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("make it executable");
}

#[test]
fn path_prefix_reaches_remote_commands() {
    let first = tempfile::tempdir().expect("create a directory for fake tools");
    let second = tempfile::tempdir().expect("create a directory for fake tools");
    fake_tool(first.path(), "ari-fake-probe", "probe");
    // The same name later on the PATH: the earlier prefix must win.
    fake_tool(second.path(), "ari-fake-probe", "shadowed");

    let sshd = Sshd::builder().path_prefix(first.path()).path_prefix(second.path()).start();
    assert_eq!(
        sshd.remote_path(),
        format!(
            "{}:{}:{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            first.path().display(),
            second.path().display(),
            sshd.dir().join("systemd/bin").display()
        )
    );
    // By bare name: only the PATH set through authorized_keys can find it.
    assert_eq!(ssh_alias(&sshd, "ari-fake-probe"), "probe\n");

    // Exactly the PATH the harness set: the login shell's dotfiles (a
    // ~/.bashrc that prepends rustup's or pyenv's directories) must not put
    // anything in front of the fake tools.
    assert_eq!(ssh_alias(&sshd, "echo \"$PATH\"").trim(), sshd.remote_path());
}

#[test]
fn default_remote_path_is_the_systemd_stand_in_then_the_plain_system_one() {
    let sshd = Sshd::start();
    assert_eq!(
        sshd.remote_path(),
        format!(
            "{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            sshd.dir().join("systemd/bin").display()
        )
    );
    assert_eq!(ssh_alias(&sshd, "echo \"$PATH\"").trim(), sshd.remote_path());
}

/// The stand-in `systemd-run` on the server's PATH (this machine runs no systemd) refuses what
/// it does not know, so that ari's line cannot grow an option the stand-in ignores, and a
/// property takes effect only when the line names it, so that a property dropped from ari's
/// line is a guarantee gone in the tests too.
#[test]
fn the_systemd_stand_in_refuses_what_it_does_not_know_and_contains_by_each_property() {
    let sshd = Sshd::start();
    let scratch = tempfile::tempdir().expect("create a scratch directory");
    let target = scratch.path().join("written");
    let touch = |properties: &str| {
        let mut cmd = sshd.ssh_command();
        cmd.arg(format!("systemd-run --quiet --pipe --wait {properties} -- touch {}", target.display()));
        run(&mut cmd)
    };
    for unknown in ["-p ReadWritePaths=/tmp", "-p ProtectSystem=full", "--scope", "--uid=0", "-E X=1"] {
        let out = touch(unknown);
        assert_eq!(out.status.code(), Some(99), "{unknown}: {}", describe_output(&sshd.ssh_command(), &out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("does not know"), "{unknown}");
    }
    assert!(!target.exists(), "a refused line ran nothing");
    let out = touch("-p ProtectSystem=strict");
    assert_ne!(out.status.code(), Some(0), "ProtectSystem=strict makes the file systems read-only");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Read-only file system"), "{out:?}");
    assert!(!target.exists());
    let out = touch("-p PrivateNetwork=yes");
    assert_eq!(out.status.code(), Some(0), "without ProtectSystem= the file system stays writable: {out:?}");
    assert!(target.exists());
    assert_eq!(sshd.systemd_calls().len(), 7, "{:?}", sshd.systemd_calls());
    assert!(sshd.systemd_units().is_empty(), "every unit ended: {:?}", sshd.systemd_units());
}

#[test]
fn dropping_stops_the_server() {
    let sshd = Sshd::start();
    ssh_alias(&sshd, "true");
    let pid = sshd.pid();
    let port = sshd.port();
    let config = sshd.dir().join("sshd_config");
    let dir = sshd.dir().to_path_buf();
    drop(sshd);

    // Drop reaps the process, so its /proc entry is gone; should the PID
    // already belong to a newcomer, that newcomer is not our sshd.
    let proc_dir = format!("/proc/{pid}");
    if let Ok(cmdline) = fs::read(format!("{proc_dir}/cmdline")) {
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        assert!(
            !cmdline.contains(&config.to_string_lossy().into_owned()),
            "sshd {pid} still runs after drop: {cmdline}"
        );
    }

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "port {port} still accepts connections after the sshd was dropped"
    );
    assert!(!dir.exists(), "the temporary directory {} is removed", dir.display());
}

#[test]
fn two_servers_run_at_once() {
    let first = Sshd::start();
    let second = Sshd::start();
    assert_ne!(first.port(), second.port());
    assert_ne!(first.pid(), second.pid());

    assert_eq!(ssh_alias(&first, "echo first"), "first\n");
    assert_eq!(ssh_alias(&second, "echo second"), "second\n");

    // Separate servers: their own directories and host keys. (Connecting
    // one's client to the other's port would show this too, but a refused
    // host key leaves sshd's killed preauth child for PID 1 to reap.)
    assert_ne!(first.dir(), second.dir());
    let known_hosts = |sshd: &Sshd| {
        let text = fs::read_to_string(sshd.known_hosts_path()).expect("read known_hosts");
        text.split_whitespace().nth(2).expect("a key in known_hosts").to_owned()
    };
    assert_ne!(known_hosts(&first), known_hosts(&second));
}

#[test]
#[should_panic(expected = "this test needs `ari-no-such-tool`, which is not installed: run \
                `apt-get install -y ari-no-such-package` (or `cargo xtask test`, which installs it)")]
fn a_missing_tool_says_how_to_install_it() {
    require_tool("ari-no-such-tool", "ari-no-such-package");
}

#[test]
fn sshd_is_found_outside_path() {
    // sshd lives in /usr/sbin, which an ordinary user's PATH lacks.
    assert!(require_tool("sshd", "openssh-server").is_absolute());
}

#[test]
fn describe_shows_a_command_as_a_shell_would_take_it() {
    let mut cmd = Command::new("echo");
    cmd.env("LANG", "C").arg("two words").arg("it's").arg("-n").current_dir("/tmp");
    assert_eq!(describe(&cmd), r"(cd /tmp && LANG=C echo 'two words' 'it'\''s' -n)");
}
