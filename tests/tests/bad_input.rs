//! Bad input exits 2 with a message naming the file, line and key, before any command runs.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use tests::{assert_exit, run, stderr, stdout, Fixture};

use tests::assert_refused as check;

#[test]
fn unknown_key_with_a_suggestion() {
    check(
        "bad.yaml",
        "include: [/etc]\nbakend: rdiff\n",
        &["FILE:2:9: bakend: unknown key `bakend` (did you mean `backend`?)"],
    );
    check(
        "typo.yaml",
        "include: [/etc]\nremote_usr: x\n",
        &["FILE:2:13: remote_usr: unknown key `remote_usr` (did you mean `remote_user`?)"],
    );
    check(
        "nested.yaml",
        "include: [/etc]\npost:\n  - command: [true]\n    wehn: failure\n",
        &["FILE:4:5: post[0]: unknown field `wehn`, expected one of `command`, `host`, `when` (did you mean `when`?)"],
    );
}

#[test]
fn wrong_type() {
    check(
        "bad.yaml",
        "include: [/etc]\nssh_port: twenty\n",
        &["FILE:2:11: ssh_port: invalid type: string \"twenty\", expected an integer"],
    );
    check(
        "port.yaml",
        "include: [/etc]\nssh_port: 70000\n",
        &["FILE:2:11: ssh_port: 70000 is out of range (1 to 65535)"],
    );
    check(
        "bool.yaml",
        "include: [/etc]\nssh_compression: maybe\n",
        &["FILE:2:18: ssh_compression: invalid type: string \"maybe\", expected true or false"],
    );
    check(
        "list.yaml",
        "include: /etc\n",
        &["FILE:1:10: include: invalid type: string \"/etc\", expected a list of paths or patterns"],
    );
    check(
        "choice.yaml",
        "include: [/etc]\nrdiff_backup_cli: legasy\n",
        &["FILE:2:19: rdiff_backup_cli: expected one of auto, new, legacy, found `legasy` (did you mean `legacy`?)"],
    );
}

#[test]
fn malformed_yaml_and_empty_files() {
    check("bad.yaml", "include: [/etc\n", &["FILE:2:1: did not find expected ',' or ']'"]);
    check("tabs.yaml", "include:\n\t- /etc\n", &["FILE:2:1: found character that cannot start any token"]);
    check("empty.yaml", "", &["FILE: the job file is empty"]);
    check("comment.yaml", "#!/usr/bin/env -S ari run\n# nothing\n", &["FILE: the job file is empty"]);
    check("list.yaml", "- /etc\n", &["FILE: a job file must be a mapping of keys"]);
}

#[test]
fn labels_that_would_escape_the_store() {
    check(
        "slash.yaml",
        "label: a/b\ninclude: [/etc]\n",
        &["FILE:1:8: label: `a/b` must start with a letter or digit"],
    );
    check("dots.yaml", "label: a..b\ninclude: [/etc]\n", &["FILE:1:8: label: `a..b` must not contain `..`"]);
    check(
        "up.yaml",
        "label: ..\ninclude: [/etc]\n",
        &["FILE:1:8: label: `..` must start with a letter or digit"],
    );
}

#[test]
fn a_host_that_ssh_would_read_as_an_option() {
    check(
        "host.yaml",
        "source_hostname: -oProxyCommand=touch /tmp/x\ninclude: [/etc]\n",
        &["FILE:1:18: source_hostname: `-oProxyCommand=touch /tmp/x` must not start with `-`"],
    );
    check(
        "hook-host.yaml",
        "include: [/etc]\npre:\n  - command: [true]\n    host: -x\n",
        &["FILE:4:11: pre[0].host: `-x` must not start with `-`"],
    );
}

#[test]
fn a_hook_program_that_is_a_relative_path_or_an_option() {
    let relative = "is a relative path: give an absolute path, or a bare name looked up on PATH";
    check(
        "relative.yaml",
        "include: [/etc]\npre:\n  - command: [./dump.sh, --all]\n",
        &[&format!("FILE:3:14: pre[0].command: the program `./dump.sh` {relative}")],
    );
    check(
        "option.yaml",
        "include: [/etc]\npost:\n  - command: [-rf, /]\n    host: db\n",
        &["FILE:3:14: post[0].command: the program `-rf` must not start with `-`"],
    );
    check(
        "backend.yaml",
        "backend: command\ncommand: [bin/backup, '{label}']\n",
        &[&format!("FILE:2:10: command: the program `bin/backup` {relative}")],
    );
}

#[test]
fn unknown_backend_lists_the_known_ones() {
    check(
        "b.yaml",
        "backend: rsnyc\ninclude: [/etc]\n",
        &["FILE:1:10: backend: unknown backend `rsnyc` (known: command, rdiff, zfs, zfs-send)"],
    );
    check(
        "s.yaml",
        "snapshot: lvm2\ninclude: [/etc]\n",
        &["FILE:1:11: snapshot: unknown snapshot source `lvm2`"],
    );
}

#[test]
fn backend_requirements() {
    check(
        "noinclude.yaml",
        "label: x\n",
        &["FILE: include: the rdiff backend needs at least one path to back up"],
    );
    check(
        "tool.yaml",
        "include: [/etc]\nrdiff_backup_path: /nonexistent/rdiff-backup\n",
        &["job tool: rdiff_backup_path: `/nonexistent/rdiff-backup` not found"],
    );
}

#[test]
fn missing_backup_store_path() {
    let fx = Fixture::new();
    std::fs::write(fx.config_path(), format!("state_dir: {}\n", fx.p("state"))).unwrap();
    let job =
        fx.write_job("nostore.yaml", "include: [/etc]\npre:\n  - command: [touch, /nonexistent-dir/x]\n");
    let out = run(fx.ari().arg("run").arg(&job));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out)
            .contains(&format!("{}: backup_store_path: required by the rdiff backend", job.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_bad_job_is_reported_together() {
    let fx = Fixture::new();
    let one = fx.write_job("one.yaml", "include: [/etc]\nbakend: rdiff\n");
    let two = fx.write_job("two.yaml", "include: [/etc]\nssh_port: x\n");
    let out = run(fx.ari().arg("run").arg(&one).arg(&two));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("one.yaml:2:9") && err.contains("two.yaml:2:11"), "{err}");
    assert!(err.contains("nothing ran: fix the errors above first"), "{err}");
}

#[test]
fn every_error_of_a_job_file_in_one_run() {
    let fx = Fixture::new();
    let job = fx.write_job("typos.yaml", "include: [/etc]\nincldue: [/srv]\nsource_hostnme: db\n");
    let out = run(fx.ari().arg("check").arg(&job));
    assert_exit(&out, 2);
    // Each error is a problem of its own, with its own line.
    let expected = format!(
        "error: {file}:2:10: incldue: unknown key `incldue` (did you mean `include`?)\n\
         error: {file}:3:17: source_hostnme: unknown key `source_hostnme` (did you mean `source_hostname`?)\n",
        file = job.display()
    );
    assert!(stdout(&out).contains(&expected), "`{expected}` not in:\n{}", stdout(&out));
    assert!(stdout(&out).contains("2 problems found"), "{}", stdout(&out));
    let out = run(fx.ari().arg("plan").arg(&job));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains(&expected.replace("error: ", "ari [ERROR] ")), "{}", stderr(&out));
    // `run` says the same and runs nothing; a setting of another backend and a wrong type are
    // errors of their own, in file order.
    check(
        "mixed.yaml",
        "backend: rdiff\nzfs_keep_min: 2\ninclude: [/etc]\nssh_port: x\nrsync_dst: a:/b\nexlcude: [/tmp]\n",
        &["FILE:2:15: zfs_keep_min: `zfs_keep_min` is a setting of `zfs`, which this job does not use (backend: rdiff)\n\
           ari [ERROR] FILE:4:11: ssh_port: invalid type: string \"x\", expected an integer\n\
           ari [ERROR] FILE:5:12: rsync_dst: `rsync_dst` is a setting of `zfs`, which this job does not use (backend: rdiff)\n\
           ari [ERROR] FILE:6:10: exlcude: unknown key `exlcude` (did you mean `exclude`?)\n"],
    );
}

#[test]
fn bad_command_lines_and_configs() {
    let fx = Fixture::new();
    let job = fx.write_job("ok.yaml", "include: [/etc]\n");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--set".into(), "ssh_prot=22".into()], "unknown setting `ssh_prot` (did you mean `ssh_port`?)"),
        (vec!["--set".into(), "ssh_port".into()], "--set ssh_port: expected NAME=VALUE"),
        (vec!["--ssh_port".into(), "x".into()], "ssh_port: expected an integer, found `x`"),
        (vec!["--ssh_prot".into(), "22".into()], "unexpected argument '--ssh_prot'"),
        (vec!["--config".into(), fx.p("missing.yaml")], "cannot read the config file"),
    ];
    for (args, expected) in cases {
        let out = run(fx.ari().arg("run").arg(&job).args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(expected), "{args:?}: `{expected}` not in {}", stderr(&out));
    }
    std::fs::write(fx.config_path(), "ssh_prot: 22\n").unwrap();
    let out = run(fx.ari().arg("run").arg(&job));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "{}:1:11: ssh_prot: unknown setting `ssh_prot` (did you mean `ssh_port`?)",
            fx.config_path().display()
        )),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unknown_job_name() {
    let fx = Fixture::new();
    fx.write_job("webserver.yaml", "include: [/etc]\n");
    let out = run(fx.ari().args(["run", "webserve"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no job `webserve` in"), "{}", stderr(&out));
    assert!(stderr(&out).contains("(did you mean `webserver`?)"), "{}", stderr(&out));
}

#[test]
fn lvm_jobs_that_cannot_work() {
    check(
        "novol.yaml",
        "snapshot: lvm\ninclude: [/etc]\n",
        &["FILE: volumes: a job with `snapshot: lvm` needs at least one volume"],
    );
    check(
        "name.yaml",
        "snapshot: lvm\nvolumes: [{name: root, mount_point: /}]\ninclude: [/etc]\n",
        &["FILE:2:18: volumes[0].name: `root` is not of the form vg/lv"],
    );
    check(
        "order.yaml",
        "snapshot: lvm\nvolumes:\n  - {name: vg1/db, mount_point: /var/lib/mysql}\n  - {name: vg0/root, mount_point: /}\ninclude: [/etc]\n",
        &["FILE:4:35: volumes[1].mount_point: `/` contains the mount point `/var/lib/mysql` of `vg1/db`, listed before it: list the outer volume first"],
    );
    check(
        "relative.yaml",
        "snapshot: lvm\nvolumes: [{name: vg0/root, mount_point: var}]\ninclude: [/etc]\n",
        &["FILE:2:41: volumes[0].mount_point: `var` is not an absolute path (it must start with `/`)"],
    );
    check(
        "field.yaml",
        "snapshot: lvm\nvolumes: [{name: vg0/root, mountpoint: /}]\ninclude: [/etc]\n",
        &["FILE:2:28: volumes[0]: unknown field `mountpoint`, expected one of `name`, `mount_point`, `mount_options` (did you mean `mount_point`?)"],
    );
    check(
        "size.yaml",
        "snapshot: lvm\nvolumes: [{name: vg0/root, mount_point: /}]\nsnapshot_size: lots\ninclude: [/etc]\n",
        &["FILE:3:16: snapshot_size: `lots` is not a size like 1G or 500M"],
    );
}

#[test]
fn zfs_jobs_that_cannot_work() {
    let base = "backend: zfs\ninclude: [/etc]\nrsync_dst: zfs:/p\nzfs_hostname: zfs\ndataset_name: pool/x\nsnapshot_expiration_days: 60\n";
    check(
        "missing.yaml",
        "backend: zfs\ninclude: [/etc]\n",
        &["FILE: rsync_dst: required by the zfs backend"],
    );
    check(
        "days.yaml",
        &base.replace("snapshot_expiration_days: 60\n", ""),
        &["FILE: snapshot_expiration_days or zfs_keep: the zfs backend needs one (or both) to know which snapshots to keep"],
    );
    check(
        "keep.yaml",
        &format!("{base}zfs_keep_min: 0\n"),
        &["FILE:7:15: zfs_keep_min: 0 is out of range (1 to 1000000)"],
    );
    check(
        "prefix.yaml",
        &format!("{base}zfs_snapshot_prefix: ''\n"),
        &["FILE:7:22: zfs_snapshot_prefix: `` must be non-empty"],
    );
    check(
        "dataset.yaml",
        &base.replace("pool/x", "/pool/x"),
        &["FILE:5:15: dataset_name: `/pool/x` is a path: write the dataset as POOL/PATH"],
    );
    check(
        "noinclude.yaml",
        &base.replace("include: [/etc]\n", ""),
        &["FILE: include: without a snapshot source, the zfs backend sends only what include lists"],
    );
    check(
        "format.yaml",
        &format!("{base}zfs_snapshot_timestamp_format: '%Y %m'\n"),
        &["FILE:7:32: zfs_snapshot_timestamp_format: `%Y %m` holds ` `"],
    );
}
