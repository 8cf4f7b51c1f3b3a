//! The stale guard (`keep_when_stale`, issue 21's item 2): a run expires nothing (rdiff-backup's
//! retention, ZFS expiry) when the job's previous success ended longer ago than the setting, or
//! is unknown, and says why; with a recent success, retention runs as before. Real rdiff-backup;
//! the fake ZFS for expiry.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::Path;

use tests::rdiff::rdiff_backup;
use tests::reports::last_run;
use tests::{assert_exit, require_tool, run, Fixture, World};

const DAY: i64 = 86_400;

/// Moves every run of the job's history `days` into the past.
fn age_history(state: &Path, label: &str, days: i64) {
    let path = state.join(format!("history/{label}.json"));
    let mut history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for run in history["runs"].as_array_mut().unwrap() {
        run["started"] = (run["started"].as_i64().unwrap() - days * DAY).into();
        if let Some(ended) = run["ended"].as_f64() {
            run["ended"] = (ended - (days * DAY) as f64).into();
        }
    }
    std::fs::write(&path, serde_json::to_string(&history).unwrap()).unwrap();
}

#[test]
fn an_rdiff_job_keeps_its_increments_when_its_last_success_is_stale_or_unknown() {
    rdiff_backup();
    let fx = Fixture::new();
    fx.write_config("");
    let src = fx.make_tree("src", &[("a", "1")]);
    let job = fx.write_job(
        "web.yaml",
        &format!("include: [{}]\nremove_older_than_timespec: 1D\nkeep_when_stale: 7d\n", src.display()),
    );
    let state = fx.path("state");
    // No history: the last success is unknown.
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let (steps, warnings) = last_run(&state);
    assert!(!steps.iter().any(|s| s == "remove increments"), "{steps:?}");
    assert!(warnings.iter().any(|w| w.contains("no earlier successful run is recorded")), "{warnings:?}");
    // A success a second ago: retention runs.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let (steps, warnings) = last_run(&state);
    assert!(steps.iter().any(|s| s == "remove increments"), "{steps:?}");
    assert!(warnings.is_empty(), "{warnings:?}");
    // The last success ten days ago: a host that was down keeps its history.
    age_history(&state, "web", 10);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let (steps, warnings) = last_run(&state);
    assert!(!steps.iter().any(|s| s == "remove increments"), "{steps:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("the last success ended 10 days ago, longer than keep_when_stale 7d")),
        "{warnings:?}"
    );
    // A recent success whose spot check failed: nothing is expired either.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let path = state.join("history/web.json");
    let mut history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let last = history["runs"].as_array_mut().unwrap().last_mut().unwrap();
    last["verify"] = serde_json::json!({"passed": false, "files": 3, "bytes": 10, "failed": 1, "changed": 0});
    std::fs::write(&path, serde_json::to_string(&history).unwrap()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let (steps, warnings) = last_run(&state);
    assert!(!steps.iter().any(|s| s == "remove increments"), "{steps:?}");
    assert!(warnings.iter().any(|w| w.contains("the last run's spot check failed")), "{warnings:?}");
}

#[test]
fn a_zfs_job_expires_nothing_after_a_stale_success() {
    require_tool("rsync", "rsync");
    let zfs = World::new();
    zfs.fakes.add_dataset("pool/backups/web");
    std::fs::create_dir_all(zfs.fx.path("zfs/web")).unwrap();
    let src = zfs.fx.make_tree("src", &[("etc/hosts", "x\n")]);
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [{src}/etc]\nrsync_dst: {dst}\nzfs_hostname: localhost\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 1\nkeep_when_stale: 7d\n",
            src = src.display(),
            dst = zfs.fx.p("zfs/web"),
        ),
    );
    let state = zfs.fx.path("state");
    assert_exit(&zfs.run(&job), 0);
    age_history(&state, "web", 10);
    // An old prefixed snapshot that expiry would destroy.
    zfs.fakes.add_zfs_snapshot("pool/backups/web@ari-backup-old", 1_700_000_000);
    assert_exit(&zfs.run(&job), 0);
    let (steps, warnings) = last_run(&state);
    assert!(warnings.iter().any(|w| w.contains("longer than keep_when_stale")), "{warnings:?}");
    assert!(!steps.iter().any(|s| s == "zfs expiry"), "{steps:?}");
    let names: Vec<String> = zfs.fakes.zfs_snapshots().into_iter().map(|(n, _)| n).collect();
    assert!(names.iter().any(|n| n.ends_with("@ari-backup-old")), "kept: {names:?}");
    // With a recent success, the next run expires it.
    assert_exit(&zfs.run(&job), 0);
    let (steps, _) = last_run(&state);
    assert!(steps.iter().any(|s| s == "zfs expiry"), "{steps:?}");
    let names: Vec<String> = zfs.fakes.zfs_snapshots().into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n.ends_with("@ari-backup-old")), "expired: {names:?}");
}
