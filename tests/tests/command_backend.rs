//! The command backend (`backend: command`): the job's own command as the main step, locally and
//! through ssh with every argument intact, reading an LVM snapshot through `{snapshot_root}`,
//! shown by `ari plan --json`, and bad input exiting 2 with the key named before anything runs.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::PathBuf;

use tests::argv::{nasty, read_argv, yaml_list, ARGV_DUMP};
use tests::worlds::root_volume_calls;
use tests::{assert_exit, assert_refused, read_tree, run, stderr, stdout, Fixture, Sshd, World};

#[test]
fn a_local_command_copies_a_tree() {
    let fx = Fixture::new();
    let src = fx.make_tree("my files", &[("etc/hosts", "127.0.0.1 localhost\n"), ("notes.txt", "x\n")]);
    // A string is split like a shell would split it, quotes included, and runs without a shell.
    let job = fx.write_job(
        "copy.yaml",
        &format!(
            "label: files\nbackend: command\ncommand: \"cp -a '{}' '{}/{{label}}'\"\n",
            src.display(),
            fx.p("store")
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 0);
    assert_eq!(read_tree(&fx.path("store/files"), &[]), read_tree(&src, &[]), "the tree was copied");
    assert!(stdout(&out).is_empty(), "a successful run prints nothing: {}", stdout(&out));
}

#[test]
fn a_failing_command_exits_1_with_the_tail_of_its_stderr_and_failure_hooks_run() {
    let fx = Fixture::new();
    let tool = fx.write_script(
        "bin/fake-restic",
        "#!/bin/sh\necho 'scanning /etc'\necho 'repository 1f2e opened' >&2\n\
         echo 'Fatal: unable to create lock in backend: repository is already locked' >&2\nexit 3\n",
    );
    let marker = fx.path("failure-hook-ran");
    let job = fx.write_job(
        "restic.yaml",
        &format!(
            "backend: command\ncommand: [{}, backup, /etc]\npost:\n  - command: [touch, {}]\n    when: failure\n",
            tool.display(),
            marker.display()
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    let err = stderr(&out);
    let step = format!(
        "main step fake-restic failed: `{} backup /etc` on localhost exited with status 3",
        tool.display()
    );
    for expected in [
        step.as_str(),
        "Fatal: unable to create lock in backend: repository is already locked",
        "job failed (exit 1)",
    ] {
        assert!(err.contains(expected), "`{expected}` not in:\n{err}");
    }
    assert!(marker.exists(), "the post command with `when: failure` ran");
}

#[test]
fn a_command_on_a_remote_source_gets_its_arguments_intact() {
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    let dump = fx.write_script("bin/argv-dump", ARGV_DUMP);
    let job = |name: &str, command_host: &str| {
        let mut words = vec![dump.to_string_lossy().into_owned(), fx.p(name), "tag {label}".to_string()];
        words.extend(nasty());
        fx.write_job(
            &format!("{name}.yaml"),
            &format!(
                "backend: command\nsource_hostname: {}\ncommand_host: {command_host}\ncommand: {}\n",
                sshd.host_alias(),
                yaml_list(&words)
            ),
        )
    };
    let remote = job("remote", "source");
    let local = job("local", "local");
    let out = run(fx.ari().arg("run").arg(&remote).arg(&local));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());

    let expected = |label: &str| {
        let mut words = vec![format!("tag {label}")];
        words.extend(nasty());
        words
    };
    assert_eq!(read_argv(&fx.path("remote")), expected("remote"), "through ssh and the remote shell");
    assert_eq!(std::fs::read_to_string(fx.path("remote.where")).unwrap(), "ssh\n");
    assert_eq!(read_argv(&fx.path("local")), expected("local"), "command_host: local");
    assert_eq!(std::fs::read_to_string(fx.path("local.where")).unwrap(), "local\n", "no ssh");
}

/// A job that copies the snapshot's /etc to `out/LABEL-etc` with cp, on `host`.
fn copy_job(lvm: &World, host: &str) -> PathBuf {
    lvm.fx.write_job(
        "db.yaml",
        &format!(
            "label: db\nbackend: command\nsource_hostname: {host}\nsnapshot: lvm\n\
             volumes: [{{name: vg0/root, mount_point: /}}]\n\
             command: [cp, -a, '{{snapshot_root}}/etc', '{}/{{label}}-etc']\n",
            lvm.fx.p("out")
        ),
    )
}

/// The command saw the mounted snapshot's files, and nothing is left: no snapshot, no mount, no
/// mount directory.
fn assert_copied_and_clean(lvm: &World) {
    assert_eq!(
        read_tree(&lvm.fx.path("out/db-etc"), &[]),
        read_tree(&lvm.fx.path("origin-root/etc"), &[]),
        "the command read the snapshot through {{snapshot_root}}"
    );
    assert_eq!(lvm.tools_called(), root_volume_calls(&lvm.fx.p("mnt/db")));
    lvm.assert_clean();
}

#[test]
fn snapshot_root_is_the_mounted_lvm_snapshot_locally() {
    let lvm = World::lvm();
    std::fs::create_dir_all(lvm.fx.path("out")).unwrap();
    let out = lvm.run(&copy_job(&lvm, "localhost"));
    assert_exit(&out, 0);
    assert_copied_and_clean(&lvm);
}

#[test]
fn snapshot_root_is_the_mounted_lvm_snapshot_on_a_remote_source() {
    let lvm = World::lvm();
    let sshd = Sshd::builder().path_prefix(lvm.fakes.bin_dir()).start();
    lvm.write_config(&sshd.config_yaml());
    std::fs::create_dir_all(lvm.fx.path("out")).unwrap();
    let out = lvm.run(&copy_job(&lvm, sshd.host_alias()));
    assert!(out.status.success(), "{}\nsshd log:\n{}\n{}", stderr(&out), sshd.log_tail(), lvm.fakes.report());
    assert_copied_and_clean(&lvm);
}

#[test]
fn plan_json_shows_the_command_step() {
    let fx = Fixture::new();
    let job = fx.write_job(
        "db.yaml",
        "label: db\nbackend: command\nsource_hostname: db-server\nremote_user: backup\n\
         command: restic -r /srv/restic backup --tag '{label}' /etc\n\
         pre:\n  - command: [systemctl, stop, app]\n    host: db-server\n",
    );
    let plan = fx.plan_json(&job);
    assert_eq!(plan["job"], "db");
    assert_eq!(plan["backend"], "command");
    let steps = plan["steps"].as_array().unwrap();
    let names: Vec<(&str, &str, &str)> = steps
        .iter()
        .map(|s| (s["phase"].as_str().unwrap(), s["name"].as_str().unwrap(), s["host"].as_str().unwrap()))
        .collect();
    assert_eq!(names, [("pre", "pre[0]", "db-server"), ("main", "restic", "db-server")], "no post steps");
    let main = &steps[1];
    assert_eq!(main["when"], "always");
    assert_eq!(
        main["argv"],
        serde_json::json!(["restic", "-r", "/srv/restic", "backup", "--tag", "db", "/etc"])
    );
    let local_argv: Vec<&str> =
        main["local_argv"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(local_argv.first(), Some(&"/usr/bin/ssh"), "{local_argv:?}");
    assert_eq!(
        local_argv[local_argv.len() - 2..],
        [
            "backup@db-server",
            &format!(
                "{}restic -r /srv/restic backup --tag db /etc",
                ari_core::testkit::remote_wrapper(Some("NONCE"))
            )
        ]
    );

    // With a snapshot source, the step sits between the mounts and their cleanup, and reads the
    // snapshot's mount base.
    let job = fx.write_job(
        "snap.yaml",
        "label: snap\nbackend: command\nsnapshot: lvm\nvolumes: [{name: vg0/root, mount_point: /}]\n\
         command_host: local\ncommand: [tar, -C, '{snapshot_root}', -czf, '/srv/{label}.tar.gz', etc]\n",
    );
    let plan = fx.plan_json(&job);
    let phases: Vec<&str> =
        plan["steps"].as_array().unwrap().iter().map(|s| s["phase"].as_str().unwrap()).collect();
    let main = phases.iter().position(|p| *p == "main").expect("a main step");
    assert!(
        phases[..main].iter().all(|p| *p == "snapshot") && phases[main + 1..].iter().all(|p| *p == "cleanup"),
        "{phases:?}"
    );
    assert_eq!(
        plan["steps"][main]["argv"],
        serde_json::json!(["tar", "-C", "/run/ari-backup/snap", "-czf", "/srv/snap.tar.gz", "etc"])
    );
    assert_eq!(plan["steps"][main]["host"], "localhost");
}

/// Runs a bad job together with a good one whose command would leave a marker: nothing may run,
/// and the error must hold every fragment of `expected` (FILE stands for the bad job's path).
#[test]
fn bad_input_exits_2_naming_the_key() {
    assert_refused(
        "missing.yaml",
        "backend: command\n",
        &["FILE: command: required by the command backend; set it in the job file or the global config"],
    );
    assert_refused("empty.yaml", "backend: command\ncommand: []\n", &["FILE:2:10: command: is empty"]);
    assert_refused(
        "placeholder.yaml",
        "backend: command\ncommand: [restic, backup, '{snapshot_root}/etc']\n",
        &["FILE:2:10: command: `{snapshot_root}/etc`: {snapshot_root} needs a snapshot source (snapshot: lvm), and this job has none"],
    );
    assert_refused(
        "typo.yaml",
        "backend: command\ncomand: [restic, backup, /etc]\n",
        &["FILE:2:9: comand: unknown key `comand` (did you mean `command`?)"],
    );
    assert_refused(
        "host.yaml",
        "backend: command\ncommand: [restic, backup, /etc]\ncommand_host: remote\n",
        &["FILE:3:15: command_host: expected one of source, local, found `remote`"],
    );
    assert_refused(
        "redirect.yaml",
        "backend: command\ncommand: pg_dump app > /var/backups/app.sql\n",
        &["FILE:2:10: command: `>` is a shell operator, but the command runs without a shell"],
    );
    assert_refused(
        "include.yaml",
        "backend: command\ncommand: [restic, backup, /etc]\ninclude: [/etc]\n",
        &["FILE:3:10: include: the command backend does not use include or exclude"],
    );
    assert_refused(
        "rdiff.yaml",
        "include: [/etc]\ncommand: [restic, backup, /etc]\n",
        &["FILE:2:10: command: `command` is a setting of `command`, which this job does not use (backend: rdiff)"],
    );
    assert_refused(
        "tool.yaml",
        "label: tool\nbackend: command\ncommand: [ari-no-such-backup-tool, backup]\n",
        &["job tool: command: `ari-no-such-backup-tool` not found"],
    );
}

/// The wait for the next second after a job's last run belongs to backends whose tool names a
/// backup by its second (rdiff-backup): a command job run again at once does not wait.
#[test]
fn a_command_job_run_again_at_once_does_not_wait_for_the_next_second() {
    let fx = Fixture::new();
    let job = fx.write_job("quick.yaml", "label: quick\nbackend: command\ncommand: [\"true\"]\n");
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let out = run(fx.ari().arg("run").arg(&job).arg("--debug"));
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("run_command"), "the debug log is on: {}", stderr(&out));
    assert!(!stderr(&out).contains("waiting"), "it waited: {}", stderr(&out));
}
