//! The zfs-send backend (issue 22) through `ari run` with the fake ZFS, whose `zfs send` and
//! `zfs recv` stream through real pipes: the first send whole and then `-I`, later ones
//! incremental from the newest common snapshot, the hold that moves to what the receiver has,
//! a transfer cut by `job_timeout` and resumed from its token, a diverged receiver refused (and
//! rolled back only with `force_receive`), a held snapshot that the sender's own zfs expiry
//! keeps, and bad settings explained before anything runs. The real ZFS proofs are the VM's
//! (`cargo xtask vm test`, family `send`).

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::PathBuf;

use tests::reports::last_report;
use tests::worlds::{held_by, snapshot_guid as guid, snapshots_of as names};
use tests::{assert_exit, require_tool, run, stderr, stdout, World};

const SOURCE: &str = "tank/web";
const RECEIVER: &str = "vault/web";
const TAG: &str = "ari-send-web";
/// 2026-11-01T00:00:00Z, before this test was written: no snapshot is dated in the future.
const T0: i64 = 1_793_491_200;
const DAY: i64 = 86_400;

/// A world with the sender's dataset and its snapshots (`name`, creation offset from T0) and the
/// receiver's parent, and the job `web` with `extra` lines.
fn world(snapshots: &[&str], extra: &str) -> (World, PathBuf) {
    let world = World::new();
    world.fakes.add_dataset(SOURCE);
    world.fakes.add_dataset("vault");
    for (i, name) in snapshots.iter().enumerate() {
        world.fakes.add_zfs_snapshot(&format!("{SOURCE}@{name}"), T0 + i as i64 * DAY);
    }
    let job = write_job(&world, extra);
    (world, job)
}

fn write_job(world: &World, extra: &str) -> PathBuf {
    world.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs-send\nsource_hostname: localhost\nsource_dataset: {SOURCE}\ndataset_name: {RECEIVER}\nzfs_keep: {{daily: 30}}\n{extra}"
        ),
    )
}

/// The sender's snapshots that the job's tag holds.
fn held(world: &World) -> Vec<String> {
    held_by(world, SOURCE, TAG)
}

/// The `zfs send` calls of the run so far, as their arguments joined.
fn sends(world: &World) -> Vec<String> {
    world
        .fakes
        .calls_of("zfs")
        .into_iter()
        .filter(|call| call.args.first().map(String::as_str) == Some("send"))
        .map(|call| call.args.join(" "))
        .collect()
}

#[test]
fn the_first_run_sends_whole_then_every_snapshot_and_later_runs_only_what_is_new() {
    let (world, job) = world(&["ari-backup-1", "manual", "ari-backup-2"], "");
    let out = world.run(&job);
    assert_exit(&out, 0);
    // Whole from the oldest prefixed snapshot, then -I to the newest: the one between arrives.
    assert_eq!(
        sends(&world),
        ["send tank/web@ari-backup-1", "send -I tank/web@ari-backup-1 tank/web@ari-backup-2"]
    );
    assert_eq!(names(&world, RECEIVER), ["ari-backup-1", "manual", "ari-backup-2"]);
    for name in ["ari-backup-1", "manual", "ari-backup-2"] {
        assert_eq!(
            guid(&world, &format!("{SOURCE}@{name}")),
            guid(&world, &format!("{RECEIVER}@{name}")),
            "{name} is the same snapshot on both sides"
        );
    }
    let properties = &world.fakes.state().dataset_properties[RECEIVER];
    assert_eq!(properties.get("readonly").map(String::as_str), Some("on"), "{properties:?}");
    assert_eq!(properties.get("canmount").map(String::as_str), Some("noauto"), "{properties:?}");
    assert_eq!(held(&world), ["ari-backup-2"], "the newest the receiver has is held, only it");
    let report = last_report(&world.fx.path("state"));
    assert_eq!(report["outcome"], "success", "a first run warns of nothing: {report}");
    let history = std::fs::read_to_string(world.fx.path("state/history/web.json")).unwrap();
    let history: serde_json::Value = serde_json::from_str(&history).unwrap();
    assert!(history["runs"][0]["bytes"].as_u64() > Some(0), "the bytes sent are recorded: {history}");

    // A new snapshot: one incremental send from the base, and the hold moves to it.
    world.fakes.add_zfs_snapshot(&format!("{SOURCE}@ari-backup-3"), T0 + 10 * DAY);
    let before = sends(&world).len();
    assert_exit(&world.run(&job), 0);
    assert_eq!(sends(&world)[before..], ["send -I tank/web@ari-backup-2 tank/web@ari-backup-3"]);
    assert_eq!(held(&world), ["ari-backup-3"], "released from the old base only after the receive");

    // Nothing new: nothing sent, success.
    let before = sends(&world).len();
    assert_exit(&world.run(&job), 0);
    assert_eq!(sends(&world).len(), before, "an up-to-date receiver gets nothing");
    assert_eq!(held(&world), ["ari-backup-3"]);
    let out = run(world.ari().args(["history", "web"]));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("ari-backup-3"), "history lists the receiver: {}", stdout(&out));
    world.fakes.assert_no_unexpected_calls();
}

#[test]
fn snapshots_take_makes_a_snapshot_on_the_sender_and_sends_it() {
    let (world, job) = world(&[], "snapshots: take\n");
    assert_exit(&world.run(&job), 0);
    let sent = names(&world, SOURCE);
    assert_eq!(sent.len(), 1, "one snapshot taken: {sent:?}");
    assert!(sent[0].starts_with("ari-backup-"), "{sent:?}");
    assert_eq!(names(&world, RECEIVER), sent);
    assert_eq!(held(&world), sent);
}

#[test]
fn a_transfer_cut_by_the_job_timeout_resumes_on_the_next_run() {
    require_tool("pv", "pv");
    let (world, job) = world(&["ari-backup-1"], "bwlimit: 64K\njob_timeout: 2s\n");
    world.fakes.set_send_payload_bytes(4 << 20);
    let out = world.run(&job);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("job_timeout"), "{}", stderr(&out));
    let token = world.fakes.resume_token(RECEIVER).expect("the cut receive keeps its token");
    assert!(names(&world, RECEIVER).is_empty(), "nothing completed");
    assert!(held(&world).is_empty(), "no hold before a receive succeeded");

    // The next run resumes from the token, then finds the receiver up to date.
    let job = write_job(&world, "");
    assert_exit(&world.run(&job), 0);
    let sent = sends(&world);
    assert!(sent.contains(&format!("send -t {token}")), "resumed from the token: {sent:?}");
    assert_eq!(world.fakes.resume_token(RECEIVER), None);
    assert_eq!(names(&world, RECEIVER), ["ari-backup-1"]);
    assert_eq!(guid(&world, "tank/web@ari-backup-1"), guid(&world, "vault/web@ari-backup-1"));
    assert_eq!(held(&world), ["ari-backup-1"]);
}

#[test]
fn a_raw_job_gives_up_a_cut_transfer_and_sends_it_again() {
    require_tool("pv", "pv");
    let (world, job) = world(&["ari-backup-1"], "raw_send: true\nbwlimit: 64K\njob_timeout: 2s\n");
    world.fakes.set_send_payload_bytes(4 << 20);
    assert_exit(&world.run(&job), 1);
    assert!(world.fakes.resume_token(RECEIVER).is_some(), "the cut receive keeps its token");
    // No token is resumed for a raw job: one could send the dataset's plaintext. The partial
    // receive is given up (zfs recv -A) and the snapshot sent again, raw.
    world.fakes.set_send_payload_bytes(1024);
    let job = write_job(&world, "raw_send: true\n");
    assert_exit(&world.run(&job), 0);
    let sent = sends(&world);
    assert!(!sent.iter().any(|s| s.starts_with("send -t")), "{sent:?}");
    assert_eq!(sent.last().map(String::as_str), Some("send -w tank/web@ari-backup-1"), "{sent:?}");
    let aborted = world.fakes.calls_of("zfs").iter().any(|c| c.args.join(" ") == "recv -A vault/web");
    assert!(aborted, "{:?}", world.tools_called());
    assert_eq!(world.fakes.resume_token(RECEIVER), None);
    assert_eq!(names(&world, RECEIVER), ["ari-backup-1"]);
    assert_eq!(
        world.fakes.state().dataset_properties[RECEIVER].get("received_raw").map(String::as_str),
        Some("yes")
    );
}

#[test]
fn a_diverged_receiver_is_refused_and_kept_unless_force_receive() {
    let (world, job) = world(&["ari-backup-1", "ari-backup-2"], "");
    assert_exit(&world.run(&job), 0);
    // Something else wrote to the receiver; the sender moved on.
    world.fakes.add_zfs_snapshot(&format!("{RECEIVER}@local"), T0 + 5 * DAY);
    world.fakes.add_zfs_snapshot(&format!("{SOURCE}@ari-backup-3"), T0 + 6 * DAY);
    let out = world.run(&job);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("after `ari-backup-2`") && stderr(&out).contains("force_receive"),
        "{}",
        stderr(&out)
    );
    assert_eq!(names(&world, RECEIVER), ["ari-backup-1", "ari-backup-2", "local"], "nothing overwritten");
    assert_eq!(held(&world), ["ari-backup-2"], "the hold stays on the base");

    let out = world.run(&write_job(&world, "force_receive: true\n"));
    assert_exit(&out, 0);
    assert_eq!(
        names(&world, RECEIVER),
        ["ari-backup-1", "ari-backup-2", "ari-backup-3"],
        "rolled back, then sent"
    );
    assert_eq!(held(&world), ["ari-backup-3"]);

    // A receiver none of whose snapshots the sender has is never a copy of it.
    let (other, job) = world_with_stranger();
    let out = other.run(&job);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("none of which the sender has"), "{}", stderr(&out));
}

fn world_with_stranger() -> (World, PathBuf) {
    let (world, job) = world(&["ari-backup-1"], "force_receive: true\n");
    world.fakes.add_dataset(RECEIVER);
    world.fakes.add_zfs_snapshot(&format!("{RECEIVER}@ari-backup-1"), T0);
    (world, job)
}

#[test]
fn the_senders_zfs_expiry_keeps_the_held_base_and_says_so() {
    // The sender is the backup server's dataset, thinned by its own zfs job.
    let (world, job) = world(&["ari-backup-old-1", "ari-backup-old-2", "ari-backup-old-3"], "");
    assert_exit(&world.run(&job), 0);
    assert_eq!(held(&world), ["ari-backup-old-3"]);
    std::fs::create_dir_all(world.fx.path("zfs/web")).unwrap();
    world.fx.write_job(
        "backup.yaml",
        &format!(
            "label: backup\nbackend: zfs\ninclude: [/etc]\nrsync_dst: {}\nzfs_hostname: localhost\ndataset_name: {SOURCE}\nsnapshot_expiration_days: 1\nzfs_keep_min: 1\n",
            world.fx.p("zfs/web")
        ),
    );
    // Newer than the held one, so that keep_min does not keep the held one anyway.
    world.fakes.add_zfs_snapshot(&format!("{SOURCE}@ari-backup-new"), T0 + 20 * DAY);
    let out = run(world.ari().args(["plan", "backup", "--preview"]));
    assert_exit(&out, 0);
    let preview = stdout(&out);
    let line =
        preview.lines().find(|l| l.contains("ari-backup-old-3")).unwrap_or_else(|| panic!("{preview}"));
    assert!(line.contains("held"), "{preview}");
    let out = run(world.ari().args(["prune", "backup", "--force"]));
    assert_exit(&out, 0);
    assert_eq!(names(&world, SOURCE), ["ari-backup-old-3", "ari-backup-new"], "{}", stdout(&out));
    // The chain holds: the next replication is incremental from the held base.
    let before = sends(&world).len();
    assert_exit(&world.run(&job), 0);
    assert_eq!(sends(&world)[before..], ["send -I tank/web@ari-backup-old-3 tank/web@ari-backup-new"]);
}

#[test]
fn bad_settings_are_explained_before_anything_runs() {
    for (extra, expected) in [
        ("rsync_dst: /x\n", "rsync_dst: the zfs-send backend sends snapshots with zfs send, not rsync"),
        ("snapshots: all\n", "snapshots"),
        ("hold_tag: -x\n", "hold_tag"),
        ("bwlimit: fast\n", "bwlimit"),
        ("include: [/etc]\n", "include: zfs-send sends whole datasets"),
    ] {
        let (world, job) = world(&["ari-backup-1"], extra);
        let out = world.run(&job);
        assert_exit(&out, 2);
        assert!(stderr(&out).contains(expected), "{extra}: {}", stderr(&out));
        assert!(world.fakes.calls_of("zfs").is_empty(), "{extra}: nothing ran");
    }
    let world = World::new();
    let job = world.fx.write_job(
        "pool.yaml",
        &format!("backend: zfs-send\nsource_hostname: localhost\nsource_dataset: {SOURCE}\ndataset_name: vault\nzfs_keep: {{daily: 3}}\n"),
    );
    let out = world.run(&job);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("`vault` is a pool"), "{}", stderr(&out));
}
