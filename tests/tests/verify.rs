//! The spot check (`verify_sample`) and `ari verify`, with the real rdiff-backup, find, awk and
//! sha256sum: a backup that holds what the host held passes, locally, through the harness sshd
//! and inside an LVM snapshot of the fakes; honest faults fail it (a byte flipped in the
//! mirror with its size and time kept, which rdiff-backup's own quick check then never
//! repairs; a file gone from the mirror, whose metadata rdiff-backup still holds), the job fails, no increment is removed in that run,
//! and the history and the metrics say so. Live checks count what changed since the backup.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::{Path, PathBuf};

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, run, stderr, stdout, Fixture, Sshd, World};

/// A tree with a file, a file in a directory with a space, a symlink, a FIFO (not backed up),
/// and a file the job excludes.
fn tree(fx: &Fixture) -> PathBuf {
    let src = fx.make_tree(
        "src",
        &[("etc/app.conf", "x=1\n"), ("srv/a dir/data", "rows\n"), ("srv/cache/junk", "tmp\n")],
    );
    std::os::unix::fs::symlink("../etc/app.conf", src.join("srv/conf")).unwrap();
    assert_exit(&run(std::process::Command::new("mkfifo").arg(src.join("srv/fifo"))), 0);
    src
}

fn job(fx: &Fixture, src: &Path, extra: &str) -> PathBuf {
    fx.write_job(
        "web.yaml",
        &format!(
            "include: [{src}]\nexclude: [{src}/srv/cache]\nverify_sample: 100%\n{extra}",
            src = src.display()
        ),
    )
}

/// A fixture whose local job over [`tree`] (with `extra` lines) has made one backup whose check
/// passed: the fixture, the tree, the job.
fn backed_up(extra: &str) -> (Fixture, PathBuf, PathBuf) {
    rdiff_backup();
    let fx = Fixture::new();
    let src = tree(&fx);
    let job = job(&fx, &src, extra);
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    (fx, src, job)
}

/// The mirror's copy of `path` (absolute, on the host).
fn mirrored(fx: &Fixture, label: &str, path: &Path) -> PathBuf {
    fx.path(&format!("store/{label}")).join(path.strip_prefix("/").unwrap())
}

/// Changes the first byte of `file`, keeping its size and modification time: what a disk that
/// rots does, and what rdiff-backup's quick check (size and time) never sees.
fn flip_first_byte(file: &Path) {
    let mtime = std::fs::metadata(file).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(file).unwrap();
    bytes[0] ^= 0x20;
    std::fs::write(file, &bytes).unwrap();
    std::fs::File::options().write(true).open(file).unwrap().set_modified(mtime).unwrap();
}

fn history(fx: &Fixture, label: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fx.path(&format!("state/history/{label}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn last_verify(fx: &Fixture, label: &str) -> serde_json::Value {
    history(fx, label)["runs"].as_array().unwrap().last().unwrap()["verify"].clone()
}

#[test]
fn a_backup_that_holds_what_the_host_held_passes_and_the_history_says_so() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = tree(&fx);
    let job = job(&fx, &src, "");
    let out = run(fx.ari().arg("run").arg(&job).arg("--debug"));
    assert_exit(&out, 0);
    let said = stderr(&out);
    assert!(said.contains("verify: 3 files compared (2 by content"), "{said}");
    // A share that picks none of the three still compares one file.
    let out = run(fx.ari().args(["verify", "web", "--sample", "0.0001%"]));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("verify: 1 file compared"), "{}", stdout(&out));
    let verify = last_verify(&fx, "web");
    assert_eq!(verify["passed"], true, "{verify}");
    assert_eq!((verify["files"].as_u64(), verify["failed"].as_u64()), (Some(3), Some(0)), "{verify}");
}

#[test]
fn a_flipped_byte_in_the_mirror_fails_the_job_names_the_file_and_removes_no_increment() {
    rdiff_backup();
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.path("metrics")).unwrap();
    fx.write_config(&format!("metrics_file: {}\n", fx.p("metrics/ari.prom")));
    let src = tree(&fx);
    let job = job(&fx, &src, "remove_older_than_timespec: 1B\n");
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    flip_first_byte(&mirrored(&fx, "web", &src.join("srv/a dir/data")));

    let out = run(fx.ari().arg("run").arg(&job).arg("--debug"));
    assert_exit(&out, 1);
    let said = stderr(&out);
    assert!(
        said.contains("1 of 3 files failed (1 differing)")
            && said.contains("/srv/a dir/data (content differs)"),
        "{said}"
    );
    assert!(said.contains("skipping remove increments"), "no retention after a failed check: {said}");
    let verify = last_verify(&fx, "web");
    assert_eq!((verify["passed"].as_bool(), verify["failed"].as_u64()), (Some(false), Some(1)), "{verify}");
    assert_eq!(history(&fx, "web")["runs"][1]["exit"], 1);
    let metrics = std::fs::read_to_string(fx.path("metrics/ari.prom")).unwrap();
    for line in [
        "ari_job_last_verify_success{job=\"web\"} 0",
        "ari_job_last_verify_mismatches{job=\"web\"} 1",
        "ari_job_last_verify_files{job=\"web\"} 3",
    ] {
        assert!(metrics.contains(line), "`{line}` not in:\n{metrics}");
    }

    // The run report, ari status and a restore from that backup say so too.
    let reports = fx.path("state/reports");
    let mut names: Vec<_> = std::fs::read_dir(&reports).unwrap().flatten().map(|e| e.path()).collect();
    names.sort();
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(names.last().unwrap()).unwrap()).unwrap();
    let verified = &report["jobs"][0]["verify"];
    assert_eq!(
        (verified["files"].as_u64(), verified["failed"][0]["problem"].as_str()),
        (Some(3), Some("differs")),
        "{report}"
    );
    let status = stdout(&run(fx.ari().arg("status")));
    assert!(status.contains("verify failed (1)") && status.contains("FAILED"), "{status}");
    let out =
        run(fx.ari().args(["restore", "web"]).arg(src.join("srv")).arg("--to").arg(fx.path("restored")));
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("was made by a run whose spot check found 1 file"), "{}", stderr(&out));

    // ari verify finds it too, live, and says so as JSON.
    let out = run(fx.ari().args(["verify", "web", "--json"]));
    assert_exit(&out, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["passed"], false, "{json}");
    let failed = &json["verdict"]["failed"][0];
    assert!(failed["path"].as_str().unwrap().ends_with("/srv/a dir/data"), "{json}");
    assert_eq!(
        (failed["problem"].as_str(), &failed["fields"][0]),
        (Some("differs"), &serde_json::json!("content"))
    );
}

#[test]
fn a_file_gone_from_the_mirror_is_missing_from_the_store() {
    let (fx, src, job) = backed_up("");
    std::fs::remove_file(mirrored(&fx, "web", &src.join("etc/app.conf"))).unwrap();
    // A stray file in the mirror is not one: rdiff-backup removes what the host no longer holds.
    std::fs::write(mirrored(&fx, "web", &src.join("srv/stray")), "not on the host").unwrap();
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    let said = stderr(&out);
    assert!(said.contains("1 of 3 files failed (1 missing from the store)"), "{said}");
    assert!(said.contains("/etc/app.conf (missing from the store)"), "{said}");
}

#[test]
fn verify_every_runs_the_check_only_when_the_last_passing_one_is_older() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = tree(&fx);
    let job = job(&fx, &src, "verify_every: 7d\n");
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    assert_eq!(last_verify(&fx, "web")["passed"], true);
    let out = run(fx.ari().arg("run").arg(&job).arg("--debug"));
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("verify: not due in this run"), "{}", stderr(&out));
    assert!(last_verify(&fx, "web").is_null(), "the second run checked nothing");
    assert_eq!(
        history(&fx, "web")["runs"][0]["verify"]["every_seconds"],
        7 * 86400,
        "the interval reaches the metrics"
    );
}

#[test]
fn ari_verify_counts_what_changed_since_the_backup_and_fails_only_on_what_did_not() {
    let (fx, src, _) = backed_up("");
    std::fs::write(src.join("etc/app.conf"), "x=22\n").unwrap();
    std::fs::write(src.join("etc/new.conf"), "new\n").unwrap();
    std::fs::remove_file(src.join("srv/conf")).unwrap();
    let out = run(fx.ari().args(["verify", "web"]));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("3 changed since the backup, 0 failed"), "{}", stdout(&out));
    // A count and a share on the command line; a bad one is a usage error.
    assert_exit(&run(fx.ari().args(["verify", "web", "--sample", "1"])), 0);
    let out = run(fx.ari().args(["verify", "web", "--sample", "150%"]));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--sample: `150%` is more than 100%"), "{}", stderr(&out));
}

#[test]
fn a_remote_backup_passes_its_check_through_the_harness_sshd() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    let src = tree(&fx);
    let job = fx.write_job(
        "web.yaml",
        &format!(
            "source_hostname: {}\ninclude: [{src}]\nexclude: [{src}/srv/cache]\nverify_sample: 100%\n",
            sshd.host_alias(),
            src = src.display()
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    let verify = last_verify(&fx, "web");
    assert_eq!((verify["passed"].as_bool(), verify["files"].as_u64()), (Some(true), Some(3)), "{verify}");
    flip_first_byte(&mirrored(&fx, "web", &src.join("etc/app.conf")));
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("/etc/app.conf (content differs)"), "{}", stderr(&out));
}

#[test]
fn an_lvm_job_compares_inside_the_snapshot() {
    rdiff_backup();
    let lvm = World::lvm();
    let job = lvm.fx.write_job(
        "root.yaml",
        "label: root\nsnapshot: lvm\nvolumes: [{name: vg0/root, mount_point: /}]\ninclude: [/etc]\nverify_sample: 100%\n",
    );
    assert_exit(&lvm.run(&job), 0);
    let verify = last_verify(&lvm.fx, "root");
    assert_eq!((verify["passed"].as_bool(), verify["files"].as_u64()), (Some(true), Some(2)), "{verify}");
    lvm.assert_clean();
    flip_first_byte(&lvm.fx.path("store/root/etc/hosts"));
    let out = lvm.run(&job);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("/etc/hosts (content differs)"), "{}", stderr(&out));
    lvm.assert_clean();
}

#[test]
fn a_bad_sample_or_a_backend_without_one_is_refused_before_anything_runs() {
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a", "1")]);
    for (yaml, expected) in [
        (
            format!("include: [{}]\nverify_sample: 0%\n", src.display()),
            "web.yaml:2:16: verify_sample: `0%` picks no file",
        ),
        (
            format!("include: [{}]\nverify_sample: 1%\nverify_max_bytes: 1X\n", src.display()),
            "web.yaml:3:19: verify_max_bytes",
        ),
        (
            "backend: command\ncommand: [\"true\"]\nverify_sample: 1%\n".to_string(),
            "the command backend cannot compare its store with the host",
        ),
    ] {
        let job = fx.write_job("web.yaml", &yaml);
        let out = run(fx.ari().arg("run").arg(&job));
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(expected), "{yaml}: `{expected}` not in:\n{}", stderr(&out));
    }
}

#[test]
fn under_remote_sudo_a_spot_check_no_sudoers_rule_can_allow_is_refused_for_its_job_alone() {
    let fx = Fixture::new();
    fx.write_config("remote_sudo: true\nremote_user: backup\n");
    let job = fx.write_job("web.yaml", "source_hostname: web.example\ninclude: [/etc]\nverify_sample: 1%\n");
    let out = run(fx.ari().arg("plan").arg(&job));
    assert_exit(&out, 2);
    let said = stderr(&out);
    assert!(
        said.contains("web.yaml:3:16: verify_sample: under remote_sudo, the spot check's command on web.example cannot be allowed by sudo")
            && said.contains("sudo matches none longer than 1023"),
        "{said}"
    );
    // ari verify of a job that sets no verify_sample is refused the same way, before it connects.
    fx.write_job("web.yaml", "source_hostname: web.example\ninclude: [/etc]\n");
    let out = run(fx.ari().args(["verify", "web"]));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("cannot be allowed by sudo"), "{}", stderr(&out));
}

/// A zfs job over an LVM snapshot of the fakes into a mounted fake dataset, with rsync exclude
/// patterns of each kind: what rsync sends and what the spot check lists must agree.
fn zfs_world() -> (World, PathBuf) {
    tests::require_tool("rsync", "rsync");
    rdiff_backup();
    let lvm = World::lvm();
    let dataset_dir = lvm.fx.path("zfs/web");
    std::fs::create_dir_all(&dataset_dir).unwrap();
    lvm.fakes.add_mounted_dataset("pool/backups/web", &dataset_dir);
    for (name, text) in [("etc/x.tmp", "temp\n"), ("etc/cache/c", "cached\n"), ("etc/skip", "skip\n")] {
        let file = lvm.fx.path("origin-root").join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    // A file named like the directory pattern is sent: only directories match `cache/`.
    std::fs::write(lvm.fx.path("origin-root/etc/cache.d"), "kept\n").unwrap();
    let job = lvm.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\nsnapshot: lvm\nvolumes: [{{name: vg0/root, mount_point: /}}]\ninclude: [/etc]\nexclude: [\"*.tmp\", cache/, /etc/skip]\nrsync_dst: {}\nzfs_hostname: localhost\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\nverify_sample: 100%\n",
            dataset_dir.display()
        ),
    );
    (lvm, job)
}

#[test]
fn a_zfs_job_compares_the_new_zfs_snapshot_with_the_lvm_snapshot_rsync_read() {
    let (lvm, job) = zfs_world();
    let out = lvm.run(&job);
    assert_exit(&out, 0);
    let verify = last_verify(&lvm.fx, "web");
    // hosts, app.conf and cache.d: the excludes hold on both sides.
    assert_eq!((verify["passed"].as_bool(), verify["files"].as_u64()), (Some(true), Some(3)), "{verify}");
    lvm.assert_clean();
    // The snapshot the check compared carries its verdict.
    let (newest, _) = lvm.fakes.zfs_snapshots().pop().unwrap();
    assert_eq!(lvm.fakes.zfs_property(&newest, "ari:verify").as_deref(), Some("passed"));
    // The plan lists the ZFS snapshot before cleanup, and the check between them.
    let plan = stdout(&run(lvm.ari().arg("plan").arg(&job)));
    let (snapshot, verify_at, umount) = (
        plan.find("zfs snapshot on").unwrap(),
        plan.find("verify on").unwrap(),
        plan.find("cleanup").unwrap(),
    );
    assert!(snapshot < verify_at && verify_at < umount, "{plan}");
}

#[test]
fn a_file_rsync_did_not_send_again_fails_and_options_that_leave_files_out_are_refused() {
    let (lvm, job) = zfs_world();
    // An honest fault: a source file rewritten with its size and time kept, which rsync's quick
    // check does not send again. The LVM snapshot holds the new content, the new ZFS snapshot
    // the old: the check fails, and no expiry runs.
    assert_exit(&lvm.run(&job), 0);
    flip_first_byte(&lvm.fx.path("origin-root/etc/hosts"));
    let out = lvm.run(&job);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("/etc/hosts (content differs)"), "{}", stderr(&out));
    lvm.assert_clean();
    assert!(
        lvm.tools_called().iter().all(|call| !call.starts_with("zfs destroy")),
        "no expiry after a failed check"
    );
    let (newest, _) = lvm.fakes.zfs_snapshots().pop().unwrap();
    assert_eq!(lvm.fakes.zfs_property(&newest, "ari:verify").as_deref(), Some("failed"));
    // An rsync option that leaves out files the job includes cannot go with the check.
    let original = std::fs::read_to_string(&job).unwrap();
    for options in [
        "[--archive, --numeric-ids, --delete, --max-size=10]",
        "[--archive, --numeric-ids]",
        "[-axv, --delete]",
        "[--archive, --delete, --safe-links]",
    ] {
        std::fs::write(&job, format!("{original}rsync_options: {options}\n")).unwrap();
        let out = lvm.run(&job);
        assert_exit(&out, 2);
        assert!(
            stderr(&out).contains("rsync_options: `") && stderr(&out).contains("spot check (verify_sample)"),
            "{options}: {}",
            stderr(&out)
        );
    }
    lvm.fakes.assert_no_unexpected_calls();
}

#[test]
fn a_change_in_the_live_dataset_after_the_snapshot_does_not_count_but_a_damaged_snapshot_does() {
    // A zfs job without a snapshot source, so that `ari verify` reads the same tree live.
    tests::require_tool("rsync", "rsync");
    let zfs = World::new();
    let dataset_dir = zfs.fx.path("zfs/web");
    std::fs::create_dir_all(&dataset_dir).unwrap();
    zfs.fakes.add_mounted_dataset("pool/backups/web", &dataset_dir);
    // No FIFO: rsync sends one, and the fake's snapshot cannot copy it.
    let src = zfs.fx.make_tree(
        "src",
        &[("etc/app.conf", "x=1\n"), ("srv/a dir/data", "rows\n"), ("srv/cache/junk", "tmp\n")],
    );
    std::os::unix::fs::symlink("../etc/app.conf", src.join("srv/conf")).unwrap();
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [{src}]\nexclude: [{src}/srv/cache]\nrsync_dst: {}\nzfs_hostname: localhost\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\nverify_sample: 100%\n",
            dataset_dir.display(),
            src = src.display()
        ),
    );
    assert_exit(&zfs.run(&job), 0);
    assert_eq!(last_verify(&zfs.fx, "web")["files"], 3);
    // The store's side reads the newest ZFS snapshot, never the dataset rsync writes into: a
    // byte flipped there, its size and time kept, would fail the check if it did.
    let hosts = src.join("etc/app.conf");
    flip_first_byte(&dataset_dir.join(hosts.strip_prefix("/").unwrap()));
    let out = run(zfs.ari().args(["verify", "web"]));
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("3 files compared") && stdout(&out).contains("0 failed"),
        "{}",
        stdout(&out)
    );
    // A damaged snapshot (the fake's copy can be written; a real one cannot) fails it.
    let snapshots = zfs.fakes.zfs_snapshots();
    let newest = snapshots.last().unwrap().0.split_once('@').unwrap().1.to_string();
    flip_first_byte(&dataset_dir.join(".zfs/snapshot").join(newest).join(hosts.strip_prefix("/").unwrap()));
    let out = run(zfs.ari().args(["verify", "web"]));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("/etc/app.conf (content differs)"), "{}", stderr(&out));
}

#[test]
fn ari_verify_full_runs_rdiff_backups_own_verify_of_the_mirror_and_the_oldest_backup() {
    let (fx, src, job) = backed_up("");
    // Another size: a rewrite of the same size within the backup's second is one rdiff-backup's
    // quick check misses, and the spot check rightly fails on.
    std::fs::write(src.join("etc/app.conf"), "x=22\n").unwrap();
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let out = run(fx.ari().args(["verify", "web", "--full"]));
    assert_exit(&out, 0);
    let said = stdout(&out);
    assert!(
        said.contains("rdiff-backup verify of the mirror: ok")
            && said.contains("rdiff-backup verify of the oldest backup ("),
        "{said}"
    );
    // A byte flipped in a file both backups share: the mirror holds it, and the oldest backup is
    // rebuilt from it. rdiff-backup's own check names it (and so does the spot check).
    flip_first_byte(&mirrored(&fx, "web", &src.join("srv/a dir/data")));
    let out = run(fx.ari().args(["verify", "web", "--full", "--json"]));
    assert_exit(&out, 1);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let checks = json["store_checks"].as_array().unwrap();
    assert_eq!(checks.len(), 2, "{json}");
    for check in checks {
        assert_eq!(check["passed"], false, "{json}");
        assert!(check["detail"].as_str().unwrap().contains("doesn't match recorded digest"), "{json}");
    }
}

#[test]
fn ari_verify_full_judges_the_zfs_pool_by_its_state_errors_and_last_scrub() {
    tests::require_tool("rsync", "rsync");
    let zfs = World::new();
    let dataset_dir = zfs.fx.path("zfs/web");
    std::fs::create_dir_all(&dataset_dir).unwrap();
    zfs.fakes.add_mounted_dataset("pool/backups/web", &dataset_dir);
    let src = zfs.fx.make_tree("src", &[("etc/app.conf", "x=1\n")]);
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [{}]\nrsync_dst: {}\nzfs_hostname: localhost\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\nverify_max_scrub_age: 7d\n",
            src.display(),
            dataset_dir.display()
        ),
    );
    assert_exit(&zfs.run(&job), 0);
    // zpool, as `zpool status pool` prints a pool: the status in a file the test writes.
    let status = zfs.fx.path("zpool-status");
    zfs.fx.write_script(
        "zpool-bin/zpool",
        &format!(
            "#!/bin/sh\n[ \"$*\" = 'status pool' ] && [ \"$TZ\" = UTC ] || exit 99\ncat {}\n",
            status.display()
        ),
    );
    let verify_with = |status_text: &str, extra: &str| {
        std::fs::write(&status, status_text).unwrap();
        let mut ari = zfs.ari();
        let path = format!("{}:{}", zfs.fx.p("zpool-bin"), zfs.fakes.path_env().to_string_lossy());
        ari.env("PATH", path).args(["verify", "web", "--full"]);
        if !extra.is_empty() {
            ari.arg(extra);
        }
        run(&mut ari)
    };
    let verify = |status_text: &str| verify_with(status_text, "");
    let scrubbed = jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(48)).unwrap();
    let when = scrubbed.to_zoned(jiff::tz::TimeZone::UTC).strftime("%a %b %e %H:%M:%S %Y").to_string();
    let healthy = format!(
        "  pool: pool\n state: ONLINE\n  scan: scrub repaired 0B in 00:00:01 with 0 errors on {when}\nconfig:\n\nerrors: No known data errors\n"
    );
    let out = verify(&healthy);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("the health of pool pool: ONLINE, last scrubbed 2.0 days ago without errors"),
        "{}",
        stdout(&out)
    );
    let out = verify(&healthy.replace("state: ONLINE", "state: DEGRADED"));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("the pool is DEGRADED, not ONLINE"), "{}", stderr(&out));
    let old = jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(24 * 40)).unwrap();
    let old = old.to_zoned(jiff::tz::TimeZone::UTC).strftime("%a %b %e %H:%M:%S %Y").to_string();
    let out = verify(&healthy.replace(&when, &old));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("longer than verify_max_scrub_age (7.0 days)"), "{}", stderr(&out));
    // A zpool that hangs (a suspended pool) is stopped at verify_timeout: the lock is not kept.
    zfs.fx.write_script("zpool-bin/zpool", "#!/bin/sh\nexec sleep 60\n");
    let started = std::time::Instant::now();
    let out = verify_with(&healthy, "--verify_timeout=2s");
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("verify_timeout 2s"), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(40), "the hung zpool was not stopped");
}

#[test]
fn rdiff_options_that_leave_files_out_are_refused_with_the_check() {
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a", "1")]);
    for option in ["--exclude-if-present .nobackup", "--max-file-size 1000", "--exclude-regexp x"] {
        let job = job(&fx, &src, &format!("rdiff_backup_options: {option}\n"));
        let out = run(fx.ari().arg("check").arg(&job));
        assert_exit(&out, 2);
        assert!(
            stdout(&out).contains("rdiff_backup_options: `")
                || stderr(&out).contains("rdiff_backup_options: `"),
            "{option}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
}

#[test]
fn a_symlink_above_an_include_is_followed_on_neither_side() {
    rdiff_backup();
    let fx = Fixture::new();
    // The host's src/proj is a symlink to a directory elsewhere: rdiff-backup stores the link,
    // and the mirror's copy of it points where it points on the backup server.
    let outside = fx.make_tree("outside", &[("docs/secret-name", "not the job's\n")]);
    let src = fx.make_tree("src", &[("keep", "1\n")]);
    std::os::unix::fs::symlink(&outside, src.join("proj")).unwrap();
    let job = fx.write_job(
        "web.yaml",
        &format!("include: [{src}/proj/docs, {src}/keep]\nverify_sample: 100%\n", src = src.display()),
    );
    let out = run(fx.ari().arg("run").arg(&job).arg("--debug"));
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains("secret-name"), "a listing followed the symlink: {}", stderr(&out));
    assert_eq!(last_verify(&fx, "web")["files"], 1, "only keep");
    let out = run(fx.ari().args(["verify", "web", "--json"]));
    assert_exit(&out, 0);
    assert!(!stdout(&out).contains("secret-name"), "{}", stdout(&out));
}

#[test]
fn a_host_that_lists_nothing_of_what_the_store_holds_fails_the_check() {
    let (fx, src, _) = backed_up("");
    std::fs::rename(&src, fx.path("moved-away")).unwrap();
    let out = run(fx.ari().args(["verify", "web"]));
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("it listed none of the files the job backs up, of which the store holds 3"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_side_that_runs_past_verify_timeout_is_stopped_and_fails_the_check() {
    rdiff_backup();
    // The host's sha256sum hangs (a FIFO swapped in for a listed file would): verify_timeout
    // stops it even without command_timeout.
    let fx = Fixture::new();
    let slow = fx.write_script("slow-bin/sha256sum", "#!/bin/sh\nexec sleep 60\n");
    let sshd = Sshd::builder().path_prefix(slow.parent().unwrap()).start();
    fx.write_config(&sshd.config_yaml());
    let src = fx.make_tree("src", &[("a", "1\n")]);
    let job = fx.write_job(
        "web.yaml",
        &format!(
            "source_hostname: {}\ninclude: [{}]\nverify_sample: 100%\nverify_timeout: 2s\n",
            sshd.host_alias(),
            src.display()
        ),
    );
    let started = std::time::Instant::now();
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("verify_timeout 2s"), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(50), "the hung side was not stopped");
}
