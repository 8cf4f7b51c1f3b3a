//! The `ari` command itself: help, backends, job lookup by name and label, and job files that
//! run directly through their `#!/usr/bin/env -S ari run` line.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::process::{Command, Stdio};

use tests::rdiff::rdiff_backup;
use tests::{ari_bin, run, stderr, stdout, Fixture};

#[test]
fn help_lists_every_setting_with_its_default_and_owner() {
    let fx = Fixture::new();
    for args in [vec!["--help"], vec!["run", "--help"]] {
        let out = run(fx.ari().args(&args));
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        // Help wraps to the terminal: compare with runs of whitespace collapsed.
        let help = stdout(&out).split_whitespace().collect::<Vec<_>>().join(" ");
        for expected in [
            "--ssh_port <INTEGER>",
            "unset: ssh's own configuration decides (Port in ~/.ssh/config, else 22) (core)",
            "--max_retries <INTEGER>",
            "[default: 3] (core)",
            "--backup_store_path <PATH>",
            "(required) (rdiff)",
            "--rdiff_backup_options <RDIFF_BACKUP_OPTIONS>",
            "--ping_timeout <DURATION>",
            "[default: --exclude-device-files --exclude-fifos --exclude-sockets --terminal-verbosity 1]",
            "--rdiff_backup_cli <auto|new|legacy>",
            "--dry_run[=<BOOL>]",
            "--config <PATH>",
            "[env: ARI_CONFIG=]",
        ] {
            assert!(help.contains(expected), "{args:?}: `{expected}` missing from help:\n{help}");
        }
    }
    let help = stdout(&run(fx.ari().arg("--help")));
    assert!(help.contains("Exit codes: 0 success, 1 a job failed, 2 usage/config/missing tool"), "{help}");
}

#[test]
fn backends_lists_rdiff_and_its_settings() {
    let out = run(Fixture::new().ari().arg("backends"));
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("rdiff    rdiff-backup from the source host"), "{text}");
    assert!(text.contains("settings: backup_store_path, rdiff_backup_cli, rdiff_backup_options"), "{text}");
}

#[test]
fn jobs_are_found_by_path_file_name_and_label() {
    let fx = Fixture::new();
    fx.write_job(
        "web.yaml",
        "label: www\ninclude: [/srv]\nbackup_store_path: /srv/store\nrdiff_backup_cli: new\n",
    );
    for name in ["web", "web.yaml", "www"] {
        let out = run(fx.ari().args(["plan", "--json", name]));
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        assert!(stdout(&out).contains("\"job\": \"www\""), "{name}");
    }
    let absolute = fx.path("jobs.d/web.yaml");
    assert!(run(fx.ari().arg("plan").arg(&absolute)).status.success());
}

#[test]
fn a_job_file_runs_directly_through_its_shebang_line() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a", "1")]);
    let job = fx.write_script(
        "jobs.d/direct",
        &format!(
            "#!/usr/bin/env -S ari run\ninclude: [{}]\npre:\n  - command: [touch, {}]\n",
            src.display(),
            fx.p("pre-ran")
        ),
    );
    let bin_dir = ari_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let direct = |args: &[&str]| {
        run(Command::new(&job)
            .args(args)
            .env("PATH", &path)
            .env("ARI_CONFIG", fx.config_path())
            .stdin(Stdio::null()))
    };
    let out = direct(&["--dry_run", "--debug", "--remote_user", "backup_user"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("ari (direct) [INFO]") && err.contains("dry run, not running"), "{err}");
    assert!(!fx.path("pre-ran").exists() && !fx.path("store/direct").exists());

    let out = direct(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(fx.path("pre-ran").exists() && fx.path("store/direct/rdiff-backup-data").exists());
}

#[test]
fn check_validates_every_job_of_jobs_dir() {
    rdiff_backup();
    let fx = Fixture::new();
    fx.write_job("good.yaml", "include: [/etc]\n");
    fx.write_job(".disabled.yaml", "this is not even yaml: [\n");
    fx.write_job("notes.txt~", "editor leftovers are no jobs\n");
    let out = run(fx.ari().arg("check"));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("ok: job good"), "{}", stdout(&out));
    assert!(stdout(&out).contains("all good: 1 job"), "{}", stdout(&out));

    fx.write_job("bad.yaml", "include: [/etc]\nssh_port: x\n");
    let out = run(fx.ari().arg("check"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("bad.yaml:2:11: ssh_port"), "{}", stdout(&out));
    assert!(stdout(&out).contains("1 problem found"), "{}", stdout(&out));
}

#[test]
fn usage_errors_exit_2() {
    let fx = Fixture::new();
    for args in [vec!["run"], vec!["frobnicate"], vec!["plan"]] {
        let out = run(fx.ari().args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = run(Command::new(ari_bin()).stdin(Stdio::null()));
    assert_eq!(out.status.code(), Some(2), "no arguments at all");
}

#[test]
fn check_connect_logs_in_to_every_remote_host() {
    rdiff_backup();
    let sshd = tests::Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    fx.write_job("remote.yaml", &format!("source_hostname: {}\ninclude: [/etc]\n", sshd.host_alias()));
    let out = run(fx.ari().args(["check", "--connect"]));
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains(&format!("ok: ssh {}@{}", sshd.user(), sshd.host_alias())),
        "{}",
        stdout(&out)
    );

    // A host nobody answers for: refused on a loopback port, reported, exit 2.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    fx.write_config(&format!(
        "ssh_port: {port}\nssh_options: [-o, UserKnownHostsFile=/dev/null, -o, StrictHostKeyChecking=no]\n"
    ));
    fx.write_job("remote.yaml", "source_hostname: 127.0.0.1\ninclude: [/etc]\n");
    let out = run(fx.ari().args(["check", "--connect"]));
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("ssh to 127.0.0.1 failed (exit status 255)"), "{}", stdout(&out));
}

#[test]
fn two_job_files_with_one_label_are_an_error_for_check_and_run() {
    let fx = Fixture::new();
    let one = fx.write_job("one.yaml", "label: same\nbackend: command\ncommand: [\"true\"]\n");
    let two = fx.write_job("two.yaml", "label: same\nbackend: command\ncommand: [\"true\"]\n");
    let expected = format!("{}: label `same` is also the label of {}", one.display(), two.display());
    let out = run(fx.ari().arg("check"));
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains(&expected), "{}", stdout(&out));
    let out = run(fx.ari().arg("run").arg(&one).arg(&two));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
    // One file named twice is one job run twice, not two jobs.
    let out = run(fx.ari().arg("run").arg(&one).arg(&one));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
