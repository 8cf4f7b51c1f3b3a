//! `--dry-run` runs nothing, and `ari plan` prints exactly what `ari run` would execute.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use tests::rdiff::rdiff_backup;
use tests::{fingerprint, run, stderr, stdout, Fixture};

const FULL_JOB: &str = "#!/usr/bin/env -S ari run
label: db-server
backend: rdiff
source_hostname: db-server
backup_store_path: /srv/backup-store
rdiff_backup_cli: new
remote_user: root
ssh_port: 2222
ssh_options: [-F, /etc/ari-backup/ssh_config]
include: [/etc, /var/lib/mysql]
exclude: [/var/lib/mysql/tmp, '**/*.tmp']
remove_older_than_timespec: 1M
pre:
  - command: mysqldump --all-databases > /var/backups/mysql.sql
    host: db-server
  - command: [systemctl, stop, mysql]
    host: db-server
post:
  - command: [systemctl, start, mysql]
    host: db-server
    when: always
  - command: [rm, -f, /var/backups/mysql.sql]
    host: db-server
    when: success
  - command: echo backup of db-server failed | mail -s ari root
    when: failure
";

#[test]
fn dry_run_runs_nothing_and_logs_every_command() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a.txt", "1\n"), ("d/b.txt", "2\n")]);
    let marker = fx.p("pre-ran");
    let job = fx.write_job(
        "dry.yaml",
        &format!(
            "include: [{src}]\nremove_older_than_timespec: 1D\npre:\n  - command: touch {marker}\npost:\n  - command: [touch, {marker}]\n",
            src = src.display()
        ),
    );
    // Warm the version cache (`ari plan` writes nothing, not even the cache; a run fills it), so
    // that the dry runs below write nothing anywhere.
    run(fx.ari().arg("run").arg(&job).arg("--dry-run"));
    let before = fingerprint(fx.root());
    for spelling in ["--dry-run", "--dry_run", "--dry-run=true"] {
        let out = run(fx.ari().arg("run").arg(&job).arg(spelling));
        assert!(out.status.success(), "{spelling}: {}", stderr(&out));
        let err = stderr(&out);
        for expected in [
            "dry run, not running on localhost: /bin/sh -c",
            "backup --print-statistics --exclude-device-files",
            "remove increments",
        ] {
            assert!(err.contains(expected), "{spelling}: `{expected}` not logged:\n{err}");
        }
    }
    assert_eq!(fingerprint(fx.root()), before, "a dry run changed files");
    assert!(!fx.path("store/dry").exists());
}

#[test]
fn dry_run_is_a_setting_of_the_process_not_of_a_job_file() {
    // It decides what the whole process logs and writes: a job file cannot set it, the config
    // and the command line can.
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a.txt", "1\n")]);
    let job = fx.write_job("dry.yaml", &format!("include: [{}]\ndry_run: true\n", src.display()));
    let out = run(fx.ari().arg("run").arg(&job));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "{}:2:10: dry_run: `dry_run` is a setting of the whole ari process",
            job.display()
        )),
        "{}",
        stderr(&out)
    );
    fx.write_config("dry_run: true\n");
    let job = fx.write_job("dry.yaml", &format!("include: [{}]\n", src.display()));
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("dry run, not running"),
        "the config's dry_run reached logging: {}",
        stderr(&out)
    );
    assert!(!fx.path("store/dry").exists(), "dry_run: true in the config ran the backup");
}

#[test]
fn plan_json_of_a_remote_job_with_hooks_and_retention() {
    let fx = Fixture::new();
    let job = fx.write_job("db-server.yaml", FULL_JOB);
    insta::assert_json_snapshot!(fx.redacted_json(&fx.plan_json(&job)));
}

#[test]
fn plan_json_of_a_local_job_in_the_legacy_command_line() {
    let fx = Fixture::new();
    let job = fx.write_job(
        "music",
        "label: my_backup\nbackup_store_path: /srv/backup-store\nrdiff_backup_cli: legacy\ninclude: [/music]\n",
    );
    insta::assert_json_snapshot!(fx.redacted_json(&fx.plan_json(&job)));
}

#[test]
fn plan_text_shows_hosts_phases_and_conditions() {
    let fx = Fixture::new();
    let job = fx.write_job("db-server.yaml", FULL_JOB);
    let out = run(fx.ari().arg("plan").arg(&job));
    assert!(out.status.success(), "{}", stderr(&out));
    insta::assert_snapshot!(fx.redacted(&stdout(&out)));
}

#[test]
fn plan_argv_is_what_run_executes() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a.txt", "1\n")]);
    let job = fx.write_job("same.yaml", &format!("include: [{}]\n", src.display()));
    let plan = fx.plan_json(&job);
    let main = plan["steps"].as_array().unwrap().iter().find(|s| s["phase"] == "main").unwrap().clone();
    let argv: Vec<String> =
        main["local_argv"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    let out = run(fx.ari().arg("run").arg(&job).arg("--debug"));
    assert!(out.status.success(), "{}", stderr(&out));
    let logged = format!("run_command on localhost: {}", shell_words_join(&argv));
    assert!(
        stderr(&out).contains(&logged),
        "run executed something else than plan showed:\n{logged}\n{}",
        stderr(&out)
    );
}

fn shell_words_join(words: &[String]) -> String {
    words.iter().map(|w| tests::quote(w)).collect::<Vec<_>>().join(" ")
}

#[test]
fn plan_and_check_probe_but_write_nothing() {
    // Planning an rdiff job asks rdiff-backup its version (the backend's probe), whose answer a
    // real run caches in state_dir; plan and check ask too, and write nothing.
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a.txt", "1\n")]);
    let job = fx.write_job("probe.yaml", &format!("include: [{}]\nrdiff_backup_cli: auto\n", src.display()));
    let before = tests::fingerprint(&fx.path("state"));
    for command in ["plan", "check"] {
        let out = run(fx.ari().arg(command).arg(&job));
        assert!(out.status.success(), "{command}: {}", stderr(&out));
        assert_eq!(tests::fingerprint(&fx.path("state")), before, "ari {command} wrote into state_dir");
    }
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(fx.path("state/cache").exists(), "a real run caches the version it asked");
}
