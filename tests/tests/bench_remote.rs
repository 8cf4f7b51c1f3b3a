//! The cost of reaching a host, measured (not asserted): a remote two-volume LVM rdiff job
//! through the harness's sshd (fake LVM tools on its PATH), with and without connection sharing:
//! the job's time outside its backup step, and the number of ssh authentications in sshd's log,
//! against one `ssh host true`. `cargo xtask bench` runs it (`--only remote`) and keeps what it
//! prints; it is ignored in the test suite, which asserts behaviour, not time.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::time::Instant;

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, Sshd, World};

/// The newest `run` report's step durations: (the backup step's, all steps').
fn step_seconds(world: &World) -> (f64, f64) {
    let mut reports: Vec<_> = std::fs::read_dir(world.fx.path("state/reports"))
        .expect("a reports directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap_or_default().to_string_lossy().starts_with("run-"))
        .collect();
    reports.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.last().expect("a run report")).unwrap()).unwrap();
    let steps = report["jobs"][0]["steps"].as_array().cloned().unwrap_or_default();
    let seconds = |s: &serde_json::Value| s["duration_seconds"].as_f64().unwrap_or(0.0);
    let backup = steps.iter().filter(|s| s["step"] == "rdiff-backup").map(seconds).sum();
    (backup, steps.iter().map(seconds).sum())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[test]
#[ignore = "a benchmark: run by `cargo xtask bench`"]
fn remote_lvm_rdiff_job_with_and_without_connection_sharing() {
    rdiff_backup();
    let runs: usize = std::env::var("ARI_BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    let lvm = World::lvm();
    let sshd = Sshd::builder().path_prefix(lvm.fakes.bin_dir()).start();
    let job = lvm.fx.write_job(
        "db.yaml",
        &format!(
            "label: db\nsource_hostname: {}\nsnapshot: lvm\nvolumes:\n  - {{name: vg0/root, mount_point: /}}\n  - {{name: vg1/data, mount_point: /srv/data}}\ninclude: [/etc, /srv/data]\n",
            sshd.host_alias()
        ),
    );
    let mut ssh_true = Vec::new();
    for _ in 0..runs {
        let clock = Instant::now();
        let out = sshd.ssh_command().arg("true").output().expect("ssh host true");
        assert!(out.status.success(), "ssh host true failed");
        ssh_true.push(clock.elapsed().as_secs_f64());
    }
    let mut results = serde_json::Map::new();
    for sharing in [false, true] {
        lvm.write_config(&format!("{}ssh_connection_sharing: {sharing}\n", sshd.config_yaml()));
        let (mut outside, mut auths, mut totals) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            // rdiff-backup names increments by the second, so ari starts a run no sooner than
            // the second after the last one ended; a nightly job never waits for that.
            std::thread::sleep(std::time::Duration::from_millis(1100));
            let before = sshd.authentications();
            let clock = Instant::now();
            let out = tests::run(lvm.ari().arg("run").arg(&job).arg("--debug"));
            let total = clock.elapsed().as_secs_f64();
            assert_exit(&out, 0);
            if std::env::var_os("ARI_BENCH_SHOW").is_some() {
                eprintln!("{}", tests::stderr(&out));
            }
            let (backup, _) = step_seconds(&lvm);
            outside.push(total - backup);
            totals.push(total);
            auths.push((sshd.authentications() - before) as f64);
        }
        results.insert(
            format!("sharing_{sharing}"),
            serde_json::json!({
                "runs": runs,
                "median_total_seconds": median(totals),
                "median_outside_backup_seconds": median(outside),
                "median_authentications": median(auths),
            }),
        );
    }
    results.insert("median_ssh_true_seconds".into(), median(ssh_true).into());
    // One command through a shared connection, bare and under ari's remote wrapper: what each of
    // the job's commands costs once the master is up.
    let socket = lvm.fx.path("bench-socket");
    let mut master = sshd
        .ssh_command()
        .args(["-M", "-N", "-o", "ControlPersist=no", "-S"])
        .arg(&socket)
        .spawn()
        .expect("start a master");
    assert!(tests::eventually(|| socket.exists()), "the master never listened");
    let through_master = |command: &str| {
        let mut seconds = Vec::new();
        for _ in 0..runs.max(5) {
            let clock = Instant::now();
            let out = sshd
                .ssh_command()
                .args(["-o", "ControlMaster=no", "-S"])
                .arg(&socket)
                .arg(command)
                .output()
                .expect("ssh through the master");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            seconds.push(clock.elapsed().as_secs_f64());
        }
        median(seconds)
    };
    results.insert("median_shared_true_seconds".into(), through_master("true").into());
    let wrapped = format!("{}true", ari_core::testkit::remote_wrapper(Some("0123456789abcdef")));
    results.insert("median_shared_wrapped_true_seconds".into(), through_master(&wrapped).into());
    let _ = sshd.ssh_command().args(["-S"]).arg(&socket).args(["-O", "exit"]).output();
    let _ = master.wait();
    println!("ARI-BENCH-REMOTE {}", serde_json::Value::Object(results));
}
