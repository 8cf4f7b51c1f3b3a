//! Real backups from a "remote" host: the harness's private sshd on 127.0.0.1, reached with its
//! own port, user and `ssh_options` (an ssh_config), which must reach rdiff-backup's ssh too.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use tests::rdiff::{backup_times, now, options_at, rdiff_backup, restore};
use tests::{read_tree, run, stderr, Fixture, Sshd};

/// A fixture whose config reaches the sshd the way an admin's would: port, user and options.
fn remote_fixture(sshd: &Sshd) -> Fixture {
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    fx
}

#[test]
fn a_remote_backup_then_an_incremental_one_restore_both_versions() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = remote_fixture(&sshd);
    let src =
        fx.make_tree("remote-src", &[("srv/www/index.html", "<h1>v1</h1>\n"), ("srv/www/tmp/x", "skip\n")]);
    let job = fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nsource_hostname: {host}\ninclude: [{src}]\nexclude: [{src}/srv/www/tmp]\n",
            host = sshd.host_alias(),
            src = src.display()
        ),
    );
    let t0 = now() - 86_400;
    let out = run(fx.ari().arg("run").arg(&job).args(["--set", &options_at(t0)]));
    assert!(out.status.success(), "remote backup failed: {}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    let first = read_tree(&src, &["tmp"]);

    // A new length: rdiff-backup sees a change by size and mtime, and mtimes have seconds.
    std::fs::write(src.join("srv/www/index.html"), "<h1>version 2</h1>\n").unwrap();
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "incremental remote backup failed: {}", stderr(&out));

    let repo = fx.path("store/web");
    let times = backup_times(&repo);
    assert_eq!(times.len(), 2, "{times:?}");
    let inner = src.to_string_lossy();
    restore(&repo, &inner, t0, &fx.path("old"));
    restore(&repo, &inner, times[1], &fx.path("new"));
    assert_eq!(read_tree(&fx.path("old"), &[]), first);
    assert_eq!(read_tree(&fx.path("new"), &[]), read_tree(&src, &["tmp"]));
    assert!(sshd.log_tail().contains("Accepted publickey"), "the backup went through the private sshd");
}

#[test]
fn an_unreachable_host_fails_the_job_with_sshs_error() {
    rdiff_backup();
    let fx = Fixture::new();
    // A loopback port nobody listens on: ssh is refused at once, without leaving this machine.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    fx.write_config(&format!(
        "ssh_port: {port}\nssh_options: [-o, BatchMode=yes, -o, UserKnownHostsFile=/dev/null, -o, StrictHostKeyChecking=no]\n"
    ));
    let src = fx.make_tree("src", &[("a", "1")]);
    let job =
        fx.write_job("web.yaml", &format!("source_hostname: 127.0.0.1\ninclude: [{}]\n", src.display()));
    let out = run(fx.ari().arg("run").arg(&job));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("main step rdiff-backup failed"), "{err}");
    assert!(err.contains("Connection refused"), "ssh's own message reaches the admin: {err}");
    assert!(!fx.path("store/web/rdiff-backup-data").exists(), "nothing was backed up");
}
