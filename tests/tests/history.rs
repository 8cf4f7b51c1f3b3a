//! `ari history JOB`: the backups the store holds, newest first, from a real rdiff-backup store
//! (local and remote jobs) and from the fake ZFS; a backend without a history says so.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, require_tool, run, stderr, stdout, Fixture, Sshd, World};

fn history_json(ari: &mut std::process::Command) -> serde_json::Value {
    let out = run(ari);
    assert_exit(&out, 0);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("no JSON ({e}): {}", stdout(&out)))
}

#[test]
fn an_rdiff_jobs_increments_newest_first_with_their_sizes_locally_and_remotely() {
    rdiff_backup();
    let sshd = Sshd::start();
    let fx = Fixture::new();
    fx.write_config(&sshd.config_yaml());
    let src = fx.make_tree("src", &[("a", "one")]);
    for (name, host) in [("local", "localhost"), ("remote", sshd.host_alias())] {
        let job = fx.write_job(
            &format!("{name}.yaml"),
            &format!("source_hostname: {host}\ninclude: [{}]\n", src.display()),
        );
        assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
        std::fs::write(src.join("a"), format!("changed for {name}")).unwrap();
        assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);

        let json = history_json(fx.ari().args(["history", name, "--json"]));
        assert_eq!(json["job"], name);
        let backups = json["backups"].as_array().unwrap();
        assert_eq!(backups.len(), 2, "{json}");
        let times: Vec<i64> = backups.iter().map(|b| b["time"].as_i64().unwrap()).collect();
        assert!(times[0] > times[1], "newest first: {times:?}");
        assert!(backups.iter().all(|b| b["size"].as_u64().is_some()), "rdiff-backup gives sizes: {json}");
        assert_eq!(backups[0]["name"], times[0].to_string(), "the name is the time `--at` takes");

        let out = run(fx.ari().args(["history", name]));
        assert_exit(&out, 0);
        let text = stdout(&out);
        assert!(text.starts_with(&format!("job {name} (rdiff): 2 backups, newest first\n")), "{text}");
        assert_eq!(text.lines().count(), 3, "{text}");
    }
}

#[test]
fn a_zfs_jobs_snapshots_come_from_the_zfs_host_and_a_command_job_has_none() {
    require_tool("rsync", "rsync");
    let zfs = World::new();
    zfs.fakes.add_dataset("pool/backups/web");
    zfs.fakes.add_zfs_snapshot("pool/backups/web@ari-backup-old", 1_800_000_000);
    zfs.fakes.add_zfs_snapshot("pool/backups/web@manual", 1_800_086_400);
    std::fs::create_dir_all(zfs.fx.path("zfs/web")).unwrap();
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "backend: zfs\ninclude: [/etc]\nrsync_dst: {}\nzfs_hostname: localhost\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\n",
            zfs.fx.p("zfs/web")
        ),
    );
    let out = run(zfs.ari().arg("history").arg(&job).arg("--json"));
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> =
        json["backups"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["manual", "ari-backup-old"], "every snapshot of the dataset, newest first");
    assert_eq!(json["backups"][0]["size"], 0);
    assert_eq!(json["backups"][0]["time_rfc3339"], "2027-01-16T08:00:00Z");

    let command =
        zfs.fx.write_job("cmd.yaml", "backend: command\ncommand_host: local\ncommand: [\"true\"]\n");
    let out = run(zfs.fx.ari().arg("history").arg(&command));
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("the command backend keeps no history that ari can list"),
        "{}",
        stderr(&out)
    );
}

/// Before its first backup a job's store holds none, and `ari history` says so (exit 0), where
/// rdiff-backup's own listing calls the missing repository an error; `ari restore` has nothing to
/// restore from (exit 1). A store that is there but broken is still the tool's to report.
#[test]
fn a_job_without_a_backup_yet_has_an_empty_history() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a", "one")]);
    fx.write_job("fresh.yaml", &format!("include: [{}]\n", src.display()));

    let out = run(fx.ari().args(["history", "fresh"]));
    assert_exit(&out, 0);
    assert_eq!(stdout(&out), "job fresh (rdiff): no backups yet\n");
    let json = history_json(fx.ari().args(["history", "fresh", "--json"]));
    assert_eq!(json["backups"], serde_json::json!([]), "{json}");
    let out =
        run(fx.ari().args(["restore", "fresh", &src.join("a").display().to_string(), "--to", &fx.p("to")]));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("job fresh has no backup yet"), "{}", stderr(&out));

    // A repository directory that rdiff-backup cannot read: its error, not an empty history.
    let store = fx.path("store/fresh/rdiff-backup-data");
    std::fs::create_dir_all(&store).unwrap();
    let out = run(fx.ari().args(["history", "fresh"]));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("listing the backups failed"), "{}", stderr(&out));
}
