//! The zfs backend with real rsync and the stateful fake `zfs` (this kernel has no ZFS): over
//! LVM snapshots (the original's only case) and without them, locally and through ssh, and
//! expiry against snapshots with known creation times.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::PathBuf;

use tests::rdiff::now;
use tests::{assert_exit, read_tree, require_tool, run, stderr, stdout, Fixture, Sshd, World};

const DATASET: &str = "pool/backups/web";
const DAY: i64 = 86_400;

/// A [`World`] with the dataset (and a child of it) in the fake ZFS, and the directory rsync
/// sends into.
fn world() -> World {
    require_tool("rsync", "rsync");
    let zfs = World::new();
    zfs.fakes.add_dataset(DATASET);
    zfs.fakes.add_dataset(&format!("{DATASET}/child"));
    std::fs::create_dir_all(zfs.fx.path("zfs/web")).unwrap();
    zfs
}

/// A job without a snapshot source, sending two local trees into the dataset's directory.
fn plain_job(zfs: &World, extra: &str) -> PathBuf {
    let src = zfs.fx.make_tree(
        "src",
        &[("etc/hosts", "127.0.0.1\n"), ("srv/www/index.html", "<h1>hi</h1>\n"), ("srv/www/tmp/x", "skip\n")],
    );
    zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [{src}/etc, {src}/srv/www]\nexclude: [{src}/srv/www/tmp]\nrsync_dst: {dst}\nzfs_hostname: localhost\ndataset_name: {DATASET}\nsnapshot_expiration_days: 60\n{extra}",
            src = src.display(),
            dst = zfs.fx.p("zfs/web"),
        ),
    )
}

fn snapshot_names(zfs: &World) -> Vec<String> {
    zfs.fakes.zfs_snapshots().into_iter().map(|(name, _)| name).collect()
}

#[test]
fn without_lvm_include_lists_what_is_sent_and_a_snapshot_is_taken() {
    let zfs = world();
    let out = zfs.run(&plain_job(&zfs, "zfs_snapshot_timestamp_format: nightly\n"));
    assert_exit(&out, 0);
    let src = zfs.fx.path("src");
    let sent = zfs.fx.path("zfs/web").join(src.strip_prefix("/").unwrap());
    assert_eq!(read_tree(&sent.join("etc"), &[]), read_tree(&src.join("etc"), &[]));
    assert_eq!(
        read_tree(&sent.join("srv/www"), &[]),
        read_tree(&src.join("srv/www"), &["tmp"]),
        "the exclude holds"
    );
    assert_eq!(snapshot_names(&zfs), [format!("{DATASET}@ari-backup-nightly")]);
    zfs.fakes.assert_no_unexpected_calls();
}

#[test]
fn over_lvm_on_a_remote_source_rsync_reaches_the_zfs_host_through_ssh() {
    let zfs = world();
    let sshd = Sshd::builder().path_prefix(zfs.fakes.bin_dir()).start();
    zfs.write_config(&sshd.config_yaml());
    let root =
        zfs.fx.make_tree("origin-root", &[("etc/hosts", "127.0.0.1\n"), ("var/lib/db/data", "rows\n")]);
    zfs.fakes.add_volume("vg0/root", &root);
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\nsource_hostname: {host}\nsnapshot: lvm\nvolumes: [{{name: vg0/root, mount_point: /}}]\nrsync_dst: {host}:{dst}\nzfs_hostname: {host}\ndataset_name: {DATASET}\nsnapshot_expiration_days: 60\n",
            host = sshd.host_alias(),
            dst = zfs.fx.p("zfs/web"),
        ),
    );
    let out = zfs.run(&job);
    assert_exit(&out, 0);
    assert_eq!(
        read_tree(&zfs.fx.path("zfs/web"), &[]),
        read_tree(&root, &[]),
        "the snapshot's whole tree was sent"
    );
    assert_eq!(zfs.fakes.zfs_snapshots().len(), 1);
    zfs.assert_clean();
}

#[test]
fn a_failed_rsync_takes_no_snapshot_and_expires_nothing() {
    let zfs = world();
    zfs.fakes.add_zfs_snapshot(&format!("{DATASET}@ari-backup-old"), now() as i64 - 400 * DAY);
    let job = plain_job(
        &zfs,
        &format!(
            "rsync_path: {}\n",
            zfs.fx
                .write_script(
                    "bin/failing-rsync",
                    "#!/bin/sh\necho 'rsync: connection unexpectedly closed' >&2\nexit 12\n"
                )
                .display()
        ),
    );
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("main step rsync failed") && stderr(&out).contains("exited with status 12"),
        "{}",
        stderr(&out)
    );
    // Only the capacity check's `zfs get` and expiry's listing came before the backup.
    let calls: Vec<String> = zfs.fakes.calls_of("zfs").iter().map(|c| c.args.join(" ")).collect();
    assert_eq!(
        calls,
        [
            format!("get -H -p -o value available,used {DATASET}"),
            format!("list -H -p -t snapshot -o name,creation,userrefs -d 1 {DATASET}")
        ],
        "no zfs command after a failed backup"
    );
    assert_eq!(snapshot_names(&zfs), [format!("{DATASET}@ari-backup-old")]);
}

#[test]
fn expiry_destroys_only_old_prefixed_snapshots_of_the_dataset_itself() {
    let zfs = world();
    let t = now() as i64;
    let seed = [
        (format!("{DATASET}@ari-backup-expired"), t - 90 * DAY),
        (format!("{DATASET}@ari-backup-just-expired"), t - 60 * DAY - 60),
        (format!("{DATASET}@ari-backup-not-yet"), t - 60 * DAY + 3600),
        (format!("{DATASET}@ari-backup-fresh"), t - DAY),
        (format!("{DATASET}@manual-keep"), t - 400 * DAY),
        (format!("{DATASET}/child@ari-backup-child"), t - 400 * DAY),
    ];
    for (name, creation) in &seed {
        zfs.fakes.add_zfs_snapshot(name, *creation);
    }
    let out = zfs.run(&plain_job(&zfs, "zfs_snapshot_timestamp_format: nightly\n"));
    assert_exit(&out, 0);
    let mut left = snapshot_names(&zfs);
    left.sort();
    let mut expected = vec![
        format!("{DATASET}/child@ari-backup-child"),
        format!("{DATASET}@ari-backup-fresh"),
        format!("{DATASET}@ari-backup-nightly"),
        format!("{DATASET}@ari-backup-not-yet"),
        format!("{DATASET}@manual-keep"),
    ];
    expected.sort();
    assert_eq!(left, expected);
    let destroyed: Vec<String> = zfs
        .fakes
        .calls_of("zfs")
        .into_iter()
        .filter(|c| c.args[0] == "destroy")
        .map(|c| c.args[1].clone())
        .collect();
    assert_eq!(
        destroyed,
        [format!("{DATASET}@ari-backup-expired"), format!("{DATASET}@ari-backup-just-expired")],
        "oldest first"
    );
    let lists = zfs.fakes.calls_of("zfs").into_iter().filter(|c| c.args[0] == "list").count();
    assert_eq!(lists, 3, "one listing before the backup, one to name the new snapshot, one for expiry");
}

#[test]
fn a_failed_zfs_snapshot_is_followed_by_no_expiry() {
    let zfs = world();
    let t = now() as i64;
    for (name, age) in [("a", 300), ("b", 200), ("c", 100)] {
        zfs.fakes.add_zfs_snapshot(&format!("{DATASET}@ari-backup-{name}"), t - age * DAY);
    }
    zfs.fakes.fail_matching(
        "zfs",
        &format!("snapshot {DATASET}@"),
        1,
        "cannot create snapshot: out of space",
    );
    let out = zfs.run(&plain_job(
        &zfs,
        "zfs_keep_min: 1
",
    ));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("main step zfs snapshot failed"), "{}", stderr(&out));
    let calls: Vec<String> = zfs.fakes.calls_of("zfs").iter().map(|c| c.args.join(" ")).collect();
    let snapshot = calls.iter().position(|c| c.starts_with("snapshot ")).expect("a zfs snapshot call");
    assert!(
        snapshot + 1 == calls.len(),
        "after the failed snapshot, expiry neither listed nor destroyed anything: {calls:?}"
    );
    assert_eq!(
        snapshot_names(&zfs),
        ["a", "b", "c"].map(|n| format!("{DATASET}@ari-backup-{n}")),
        "every old snapshot is kept while no new one could be taken"
    );
}

#[test]
fn a_malformed_listing_destroys_nothing_and_names_the_line() {
    let zfs = world();
    let t = now() as i64;
    zfs.fakes.add_zfs_snapshot(&format!("{DATASET}@ari-backup-old"), t - 400 * DAY);
    zfs.fakes.output(
        "zfs",
        // The capacity check's `zfs get` is the first call, expiry's listing before the backup
        // the second, the snapshot listing the third, the snapshot the fourth.
        &[5],
        &format!("{DATASET}@ari-backup-old\t{}\ngarbage line without a tab\n", t - 400 * DAY),
    );
    let out = zfs.run(&plain_job(&zfs, "zfs_snapshot_timestamp_format: nightly\n"));
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("post step zfs expiry failed: cannot use the output of `zfs list -H -p -t snapshot -o name,creation,userrefs -d 1 pool/backups/web` on localhost: line 2: expected NAME<tab>CREATION[<tab>USERREFS], found `garbage line without a tab`"),
        "{}",
        stderr(&out)
    );
    assert!(zfs.fakes.calls_of("zfs").iter().all(|c| c.args[0] != "destroy"));
    assert!(snapshot_names(&zfs).contains(&format!("{DATASET}@ari-backup-old")));
}

#[test]
fn a_listing_longer_than_ari_reads_destroys_nothing() {
    // A host that prints without end gets no more of ari's memory than its limit, and a
    // listing cut short is never read: its first lines alone would look like a whole listing.
    let zfs = world();
    let t = now() as i64;
    zfs.fakes.add_zfs_snapshot(&format!("{DATASET}@ari-backup-old"), t - 400 * DAY);
    let line = format!("{DATASET}@ari-backup-old\t{}\n", t - 400 * DAY);
    let listing = line.repeat((20 << 20) / line.len());
    zfs.fakes.output("zfs", &[5], &listing);
    let out = zfs.run(&plain_job(&zfs, "zfs_snapshot_timestamp_format: nightly\n"));
    assert_exit(&out, 1);
    let omitted = listing.len() - (16 << 20) - (64 << 10);
    assert!(
        stderr(&out).contains(&format!("post step zfs expiry failed: cannot use the output of `zfs list -H -p -t snapshot -o name,creation,userrefs -d 1 {DATASET}` on localhost: it printed more than the 16 MiB of output ari reads ({omitted} bytes more were left out)")),
        "{}",
        stderr(&out)
    );
    assert!(zfs.fakes.calls_of("zfs").iter().all(|c| c.args[0] != "destroy"));
    assert!(snapshot_names(&zfs).contains(&format!("{DATASET}@ari-backup-old")));
}

#[test]
fn plan_shows_every_lvm_and_zfs_command_with_cleanup_and_the_dynamic_expiry() {
    let fx = Fixture::new();
    let job = fx.write_job(
        "mybackup.yaml",
        "label: mybackup\nbackend: zfs\nsource_hostname: db-server\nsnapshot: lvm\nvolumes:\n  - {name: vg0/root, mount_point: /}\n  - {name: vg1/mysql, mount_point: /var/lib/mysql, mount_options: ro}\n  - {name: vg2/srv, mount_point: /srv/data}\nrsync_dst: zfs-backup-server:/zpool-0/backups/ari-backup/mybackup\nzfs_hostname: zfs-backup-server\ndataset_name: zpool-0/backups/ari-backup/mybackup\nsnapshot_expiration_days: 60\nzfs_snapshot_timestamp_format: nightly\n",
    );
    let out = run(fx.ari().arg("plan").arg(&job));
    assert_exit(&out, 0);
    insta::assert_snapshot!(fx.redacted(&stdout(&out)));
    let plan = fx.plan_json(&job);
    let expiry = plan["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(expiry["dynamic"], true);
    assert_eq!(expiry["host"], "zfs-backup-server");
}

#[test]
fn two_runs_in_one_minute_take_two_snapshots() {
    // The snapshot is named when its step runs, and never as one the dataset already has: a
    // second run within the timestamp's minute gets a `-2` (a run-all job started hours after
    // it was planned gets the time it runs at, too).
    let zfs = world();
    let job = plain_job(&zfs, "zfs_snapshot_timestamp_format: nightly\n");
    for attempt in ["first", "second"] {
        let out = zfs.run(&job);
        assert_exit(&out, 0);
        assert!(stderr(&out).is_empty(), "the {attempt} run: {}", stderr(&out));
    }
    assert_eq!(
        snapshot_names(&zfs),
        [format!("{DATASET}@ari-backup-nightly"), format!("{DATASET}@ari-backup-nightly-2")]
    );
}

#[test]
fn from_a_local_source_rsync_reaches_the_zfs_host_through_the_jobs_ssh_wrapper_with_exact_options() {
    let zfs = world();
    let sshd = Sshd::builder().path_prefix(zfs.fakes.bin_dir()).start();
    // ssh runs LocalCommand once connected: each ssh of the job (ari's zfs commands, and rsync's
    // through the wrapper) appends the line its words make, braces and quotes included.
    let seen = zfs.fx.p("local-commands");
    let local_command = format!("LocalCommand=echo '{{a,b}}' \"it's\" >> {seen}");
    zfs.write_config(&format!(
        "ssh_port: {}\nremote_user: {}\nssh_connection_sharing: false\nssh_options: [-F, {}, -o, PermitLocalCommand=yes, -o, {}]\n",
        sshd.port(),
        sshd.user(),
        sshd.ssh_config_path().display(),
        serde_json::to_string(&local_command).unwrap(),
    ));
    let job = plain_job(&zfs, "zfs_snapshot_timestamp_format: nightly\n");
    let text = std::fs::read_to_string(&job).unwrap().replace(
        &format!("rsync_dst: {}\nzfs_hostname: localhost", zfs.fx.p("zfs/web")),
        &format!("rsync_dst: {host}:{}\nzfs_hostname: {host}", zfs.fx.p("zfs/web"), host = sshd.host_alias()),
    );
    std::fs::write(&job, text).unwrap();
    let out = zfs.run(&job);
    assert!(out.status.success(), "{}\nsshd log:\n{}", stderr(&out), sshd.log_tail());
    let src = zfs.fx.path("src");
    let sent = zfs.fx.path("zfs/web").join(src.strip_prefix("/").unwrap());
    assert_eq!(read_tree(&sent.join("etc"), &[]), read_tree(&src.join("etc"), &[]), "rsync sent the files");
    let lines = std::fs::read_to_string(&seen).expect("LocalCommand ran");
    let lines: Vec<&str> = lines.lines().collect();
    // ari's capacity check (zpool status, zfs get), the expiry listing before the backup,
    // rsync's ssh, and ari's: the snapshot listing, the snapshot, the expiry listing.
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert!(lines.iter().all(|line| *line == "{a,b} it's"), "{lines:?}");
    let plan = zfs.fx.plan_json(&job);
    let main = plan["steps"].as_array().unwrap().iter().position(|s| s["phase"] == "main").unwrap();
    let rsync = plan["steps"][main]["argv"].as_array().unwrap();
    let e = rsync.iter().position(|w| w == "-e").expect("-e");
    assert_eq!(rsync[e + 1], zfs.fx.p("state/run/web/ssh"), "rsync's ssh is the job's wrapper");
    assert_eq!(snapshot_names(&zfs), [format!("{DATASET}@ari-backup-nightly")]);
}
