//! Remote commands live no longer than ari's interest in them, and a job reaches each host over
//! one ssh connection. The "remote host" is this machine, through the harness's sshd, so the
//! processes a remote command started can be looked for directly, by a marker in their argv.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::time::{SystemTime, UNIX_EPOCH};

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, eventually, run, stderr, Fixture, Running, Sshd};

/// A number no other process on the machine has in its argv: the marker of one test's sleeps.
fn unique() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").subsec_nanos();
    format!("{}{:09}", std::process::id(), nanos)
}

/// The PIDs of the processes whose argv contains `marker`, this test's own excluded.
fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        // A zombie has an empty cmdline: it is gone but for its exit status.
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            found.push(pid);
        }
    }
    found
}

/// Whether a `sleep` with `marker` in its argv runs: the remote hook has started.
fn hook_sleeps(marker: &str) -> bool {
    processes_with(marker).iter().any(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "sleep")
    })
}

/// A remote `pre` hook that starts two sleeps carrying `marker` (one in the background, as a
/// dump's helper would be) and waits for both.
fn sleeping_hook(host: &str, marker: &str) -> String {
    format!("pre:\n  - command: sleep 3600.{marker} & sleep 3601.{marker}; wait\n    host: {host}\n")
}

fn job_with_hook(fx: &Fixture, sshd: &Sshd, marker: &str, extra: &str) -> std::path::PathBuf {
    let src = fx.make_tree("src", &[("a", "1")]);
    fx.write_job(
        "hook.yaml",
        &format!(
            "label: hook\ninclude: [{}]\n{}{extra}",
            src.display(),
            sleeping_hook(sshd.host_alias(), marker)
        ),
    )
}

fn assert_all_gone(marker: &str, what: &str, sshd: &Sshd) {
    assert!(
        eventually(|| processes_with(marker).is_empty()),
        "{what}: processes of the remote hook remain: {:?}\nsshd log:\n{}",
        processes_with(marker),
        sshd.log_tail()
    );
}

#[test]
fn a_remote_hook_past_its_deadline_stops_on_the_host_with_what_it_started() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    let marker = unique();
    let job = job_with_hook(&fx, &sshd, &marker, "command_timeout: 2s\n");
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("was killed when it reached command_timeout 2s"), "{}", stderr(&out));
    assert_all_gone(&marker, "after command_timeout", &sshd);
}

fn stopped_during_the_hook(signal: libc::c_int, sharing: bool) {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&format!("{}ssh_connection_sharing: {sharing}\n", sshd.config_yaml()));
    let marker = unique();
    let job = job_with_hook(&fx, &sshd, &marker, "");
    let mut ari = Running::start(fx.ari().arg("run").arg(&job));
    assert!(
        eventually(|| hook_sleeps(&marker)),
        "the remote hook never started: {}\nsshd log:\n{}",
        ari.stderr_so_far(),
        sshd.log_tail()
    );
    ari.signal(signal);
    let out = ari.wait();
    if signal == libc::SIGKILL {
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&out.status), Some(libc::SIGKILL));
    } else {
        assert!(!out.status.success(), "an interrupted run must not succeed: {}", stderr(&out));
        assert!(stderr(&out).contains("was stopped: ari was interrupted"), "{}", stderr(&out));
    }
    assert_all_gone(&marker, &format!("after signal {signal} (sharing {sharing})"), &sshd);
}

#[test]
fn a_remote_hook_stops_when_ari_gets_sigterm() {
    stopped_during_the_hook(libc::SIGTERM, true);
}

#[test]
fn a_remote_hook_stops_when_ari_is_killed_with_shared_connections() {
    stopped_during_the_hook(libc::SIGKILL, true);
}

#[test]
fn a_remote_hook_stops_when_ari_is_killed_without_shared_connections() {
    stopped_during_the_hook(libc::SIGKILL, false);
}

/// A remote rdiff job with hooks before and after: four commands on the host, and rdiff-backup.
fn remote_job(fx: &Fixture, sshd: &Sshd) -> std::path::PathBuf {
    let src = fx.make_tree("src", &[("etc/app.conf", "x=1\n")]);
    fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nsource_hostname: {host}\ninclude: [{src}]\n\
             pre:\n  - command: [true]\n    host: {host}\n  - command: [true]\n    host: {host}\n\
             post:\n  - command: [true]\n    host: {host}\n  - command: [true]\n    host: {host}\n",
            host = sshd.host_alias(),
            src = src.join("etc").display(),
        ),
    )
}

#[test]
fn a_job_reaches_each_host_over_one_connection_and_leaves_no_socket() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    let job = remote_job(&fx, &sshd);
    let before = sshd.authentications();
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    assert_eq!(sshd.authentications() - before, 1, "one connection for the hooks and rdiff-backup");
    assert!(!fx.path("state/run/web").exists(), "the job's run directory is removed when it ends");

    fx.write_config(&format!("{}ssh_connection_sharing: false\n", sshd.config_yaml()));
    let before = sshd.authentications();
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sshd.authentications() - before, 5, "without sharing, a connection per command");
}

#[test]
fn a_master_that_does_not_come_up_leaves_commands_to_their_own_connections_with_a_warning() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    // An ssh that refuses to be a master (as one whose control socket cannot be made does).
    let ssh = fx.write_script(
        "bin/ssh-no-master",
        "#!/bin/sh\nif [ \"$1\" = -M ]; then echo 'mux_listen: refused for the test' >&2; exit 255; fi\nexec ssh \"$@\"\n",
    );
    fx.write_config(&format!("{}ssh_path: {}\n", sshd.config_yaml(), ssh.display()));
    let job = remote_job(&fx, &sshd);
    let before = sshd.authentications();
    // Warnings go to syslog, and to stderr with --debug.
    let out = run(fx.ari().arg("run").arg(&job).arg("--debug"));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    assert!(
        stderr(&out).lines().any(|l| l.contains("[WARN]") && l.contains("the shared ssh connection to"))
            && stderr(&out).contains("mux_listen: refused for the test")
            && stderr(&out).contains("use a connection each"),
        "{}",
        stderr(&out)
    );
    assert_eq!(sshd.authentications() - before, 5, "every command still ran, on its own connection");
}

#[test]
fn a_crashed_runs_run_directory_is_cleaned_up_by_the_next_run() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    let marker = unique();
    let job = job_with_hook(&fx, &sshd, &marker, "");
    let mut ari = Running::start(fx.ari().arg("run").arg(&job));
    assert!(eventually(|| hook_sleeps(&marker)), "the remote hook never started: {}", ari.stderr_so_far());
    ari.signal(libc::SIGKILL);
    let _ = ari.wait();
    assert!(fx.path("state/run/hook/ssh").exists(), "a killed run leaves its run directory");
    assert_all_gone(&marker, "after SIGKILL", &sshd);
    // The next run (without the sleeping hook) finds the leftovers, removes them, and succeeds.
    let src = fx.path("src");
    let job = fx.write_job(
        "hook.yaml",
        &format!(
            "label: hook\ninclude: [{}]\npre:\n  - command: [true]\n    host: {}\n",
            src.display(),
            sshd.host_alias()
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    assert!(!fx.path("state/run/hook").exists(), "the run directory is gone after the run");
}

#[test]
fn port_and_user_come_from_ssh_config_when_unset() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    // No ssh_port, no remote_user: the harness's ssh_config gives Port and User for its alias.
    fx.write_config(&format!("ssh_options: [-F, {}]\n", sshd.ssh_config_path().display()));
    let job = remote_job(&fx, &sshd);
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    assert!(fx.path("store/web").join("rdiff-backup-data").is_dir(), "the backup ran");
}

#[test]
fn ssh_options_with_braces_and_quotes_reach_rdiff_backups_ssh_exactly() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    // ssh runs LocalCommand (through the user's shell) once it is connected: each ssh that ari,
    // and rdiff-backup through the job's wrapper, starts appends the line its words make.
    let seen = fx.p("local-commands");
    let local_command = format!("LocalCommand=echo '{{a,b}}' \"it's\" >> {seen}");
    fx.write_config(&format!(
        "{}ssh_connection_sharing: false\nssh_options: [-F, {}, -o, PermitLocalCommand=yes, -o, {}]\n",
        sshd.config_yaml().lines().filter(|l| !l.starts_with("ssh_options")).collect::<Vec<_>>().join("\n")
            + "\n",
        sshd.ssh_config_path().display(),
        serde_json::to_string(&local_command).expect("a YAML string"),
    ));
    let job = remote_job(&fx, &sshd);
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    let lines = std::fs::read_to_string(&seen).expect("LocalCommand ran");
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 5, "four hooks and rdiff-backup's ssh: {lines:?}");
    assert!(lines.iter().all(|line| *line == "{a,b} it's"), "{lines:?}");
}
