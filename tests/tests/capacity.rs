//! The capacity check (issue 21, item 4): before a job's `pre` commands, its store's free space
//! and its pool's health. A store below `min_free_space` or a pool FAULTED, UNAVAIL or SUSPENDED
//! refuses the job (exit 1, the figure and the threshold named) before any hook runs or anything
//! is made; a DEGRADED pool is a warning and a metric, a refusal with `refuse_degraded_pool`;
//! output the check cannot read fails the job. rdiff: a real tmpfs, mounted in a private mount
//! namespace (`unshare -m`) so that a crashed test leaves no mount. zfs: the fakes.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tests::rdiff::rdiff_backup;
use tests::reports::last_run;
use tests::worlds::pre_hook;
use tests::{ari_bin, assert_exit, require_tool, run, stderr, stdout, Fixture, World};

const DATASET: &str = "pool/backups/web";
const GIB: u64 = 1 << 30;

/// `ari ARGS...` in a private mount namespace whose `store/` is a 4 MiB tmpfs with `fill` bytes
/// already taken: the mount ends with the namespace, whatever happens to the test.
fn in_small_store(fx: &Fixture, fill: u64, args: &[&str]) -> Output {
    require_tool("unshare", "util-linux");
    let quote = |text: &str| format!("'{}'", text.replace('\'', "'\\''"));
    let store = fx.p("store");
    let mut script = format!(
        "mount -t tmpfs -o size=4m tmpfs {store} && head -c {fill} /dev/zero > {store}/fill && exec {ari} --config {config}",
        store = quote(&store),
        ari = quote(&ari_bin().to_string_lossy()),
        config = quote(&fx.config_path().to_string_lossy()),
    );
    for arg in args {
        script.push(' ');
        script.push_str(&quote(arg));
    }
    run(Command::new("unshare").args(["-m", "sh", "-c", &script]).env_remove("ARI_CONFIG"))
}

fn rdiff_job(fx: &Fixture, marker: &Path, extra: &str) -> PathBuf {
    let src = fx.make_tree("src", &[("etc/hosts", "127.0.0.1\n")]);
    fx.write_job("web.yaml", &format!("include: [{}]\n{}{extra}", src.display(), pre_hook(marker)))
}

#[test]
fn an_rdiff_store_with_less_free_than_min_free_space_refuses_the_job_before_its_hooks() {
    rdiff_backup();
    let fx = Fixture::new();
    let marker = fx.path("pre-ran");
    let store = fx.p("store");
    // 4 MiB, 2 MiB of it taken: about 2 MiB free.
    let job = rdiff_job(&fx, &marker, "min_free_space: 3M\n");
    let out = in_small_store(&fx, 2 << 20, &["run", job.to_str().unwrap()]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("capacity step store space failed: the store {store} has 2.0 MiB free (2097152 bytes), below min_free_space 3.0 MiB: the job did not start")),
        "{err}"
    );
    assert!(!marker.exists(), "the pre hook ran");
    let (steps, _) = last_run(&fx.path("state"));
    assert_eq!(steps, ["store space"], "nothing but the check ran");

    // A share of the store's size: 60% of 4 MiB is more than is free, 10% is not.
    let job = rdiff_job(&fx, &marker, "min_free_space: 60%\n");
    let out = in_small_store(&fx, 2 << 20, &["run", job.to_str().unwrap()]);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains(&format!(
            "the store {store} has 2.0 MiB free (2097152 bytes), below min_free_space 60% (2.4 MiB of 4.0 MiB)"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists(), "the pre hook ran");

    for threshold in ["1M", "10%"] {
        let job = rdiff_job(&fx, &marker, &format!("min_free_space: {threshold}\n"));
        let out = in_small_store(&fx, 2 << 20, &["run", job.to_str().unwrap()]);
        assert_exit(&out, 0);
        assert!(marker.exists(), "with min_free_space {threshold} the job ran");
        std::fs::remove_file(&marker).unwrap();
    }
}

#[test]
fn ari_check_shows_a_local_store_s_figures_and_a_store_a_run_would_refuse() {
    rdiff_backup();
    let fx = Fixture::new();
    let marker = fx.path("pre-ran");
    let store = fx.p("store");
    let job = rdiff_job(&fx, &marker, "");
    let out = in_small_store(&fx, 1 << 20, &["check", job.to_str().unwrap()]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains(&format!("ok: job web: the store {store} has 3.0 MiB free of 4.0 MiB")),
        "{}",
        stdout(&out)
    );
    let job = rdiff_job(&fx, &marker, "min_free_space: 90%\n");
    let out = in_small_store(&fx, 1 << 20, &["check", job.to_str().unwrap()]);
    assert_exit(&out, 2);
    assert!(
        stdout(&out).contains(&format!(
            "error: job web: the store {store} has 3.0 MiB free (3145728 bytes), below min_free_space 90% (3.6 MiB of 4.0 MiB): a run would not start"
        )),
        "{}",
        stdout(&out)
    );
    assert!(!marker.exists(), "check ran a hook");
}

/// A zfs world: the dataset, its directory, and a job with a pre hook.
fn zfs_world(extra: &str) -> (World, PathBuf, PathBuf) {
    tests::worlds::zfs_world("", extra)
}

/// Whether the fakes took a ZFS snapshot.
fn snapshot_taken(zfs: &World) -> bool {
    zfs.fakes.calls_of("zfs").iter().any(|call| call.args[0] == "snapshot")
}

fn metrics(zfs: &World) -> String {
    std::fs::read_to_string(zfs.fx.path("metrics/ari.prom")).expect("the metrics file")
}

#[test]
fn a_zfs_pool_that_is_faulted_unavailable_or_suspended_refuses_the_job_before_anything() {
    for state in ["FAULTED", "UNAVAIL", "SUSPENDED"] {
        let (zfs, job, marker) = zfs_world("");
        zfs.fakes.set_pool("pool", state, None);
        let out = zfs.run(&job);
        assert_exit(&out, 1);
        assert!(
            stderr(&out).contains(&format!(
                "capacity step pool health failed: the pool pool under the store {DATASET} is {state}, not ONLINE or DEGRADED: the job did not start"
            )),
            "{state}: {}",
            stderr(&out)
        );
        assert!(!marker.exists(), "{state}: the pre hook ran");
        assert!(!snapshot_taken(&zfs), "{state}: a snapshot was taken");
        assert!(
            metrics(&zfs)
                .contains(&format!("ari_job_pool_healthy{{job=\"web\",pool=\"pool\",state=\"{state}\"}} 0")),
            "{}",
            metrics(&zfs)
        );
        zfs.fakes.assert_no_unexpected_calls();
    }
}

#[test]
fn a_degraded_zfs_pool_is_warned_of_and_backed_up_to_unless_refuse_degraded_pool() {
    let (zfs, job, marker) = zfs_world("");
    let scrubbed = jiff::Timestamp::now().as_second() - 3 * 86_400;
    zfs.fakes.set_pool("pool", "DEGRADED", Some(scrubbed));
    let out = zfs.run(&job);
    assert_exit(&out, 0);
    assert!(marker.exists() && snapshot_taken(&zfs), "the job ran");
    let (steps, warnings) = last_run(&zfs.fx.path("state"));
    assert_eq!(steps[..2], ["pool health", "store space"], "{steps:?}");
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with(&format!("the pool pool under the store {DATASET} is DEGRADED"))),
        "{warnings:?}"
    );
    let text = metrics(&zfs);
    for line in [
        "ari_job_pool_healthy{job=\"web\",pool=\"pool\",state=\"DEGRADED\"} 0".to_string(),
        format!("ari_job_pool_last_scrub_timestamp_seconds{{job=\"web\",pool=\"pool\"}} {scrubbed}"),
        format!("ari_job_store_available_bytes{{job=\"web\",store=\"{DATASET}\"}} {}", 100 * GIB),
        format!("ari_job_store_size_bytes{{job=\"web\",store=\"{DATASET}\"}} {}", 101 * GIB),
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }

    let (zfs, job, marker) = zfs_world("refuse_degraded_pool: true\n");
    zfs.fakes.set_pool("pool", "DEGRADED", None);
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains(&format!(
            "the pool pool under the store {DATASET} is DEGRADED, and refuse_degraded_pool is set: the job did not start"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists() && !snapshot_taken(&zfs), "the job ran");
}

#[test]
fn a_nearly_full_quota_refuses_the_zfs_job() {
    let (zfs, job, marker) = zfs_world("min_free_space: 1G\n");
    // A quota of 10 GiB, 9.5 GiB of it used.
    zfs.fakes.set_space(DATASET, GIB / 2, 19 * GIB / 2);
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains(&format!(
            "capacity step store space failed: the store {DATASET} has 512.0 MiB free (536870912 bytes), below min_free_space 1.0 GiB: the job did not start"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists() && !snapshot_taken(&zfs), "the job ran");
    let text = metrics(&zfs);
    assert!(
        text.contains(&format!("ari_job_store_available_bytes{{job=\"web\",store=\"{DATASET}\"}} 536870912")),
        "{text}"
    );
    // A share of the dataset's size (used + available: 10 GiB): 5% is 512 MiB, which is free.
    let (zfs, job, marker) = zfs_world("min_free_space: 5%\n");
    zfs.fakes.set_space(DATASET, GIB / 2, 19 * GIB / 2);
    assert_exit(&zfs.run(&job), 0);
    assert!(marker.exists() && snapshot_taken(&zfs), "the job did not run");
}

#[test]
fn capacity_output_the_check_cannot_read_fails_the_job_saying_so() {
    let (zfs, job, marker) = zfs_world("");
    zfs.fakes.output_matching("zfs", "available,used", "12G\n3G\n");
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains(&format!(
            "capacity step store space failed: cannot use the output of `zfs get -H -p -o value available,used {DATASET}` on localhost: `12G\\n3G` is not the dataset's available and used bytes"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists() && !snapshot_taken(&zfs), "the job ran");

    let (zfs, job, marker) = zfs_world("");
    zfs.fakes.output_matching("zpool", "status", "  pool: pool\n state: on fire\n");
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("capacity step pool health failed: cannot use the output of `env TZ=UTC zpool status pool` on localhost: a pool state that is no word of zpool's: `on fire`"),
        "{}",
        stderr(&out)
    );
    assert!(!marker.exists() && !snapshot_taken(&zfs), "the job ran");

    // A query that fails (no such pool) fails the job too.
    let (zfs, job, marker) = zfs_world("");
    zfs.fakes.fail_always("zpool", 1, "cannot open 'pool': no such pool");
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("capacity step pool health failed"), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot open 'pool': no such pool"), "{}", stderr(&out));
    assert!(!marker.exists() && !snapshot_taken(&zfs), "the job ran");
}

#[test]
fn a_dry_run_and_ari_plan_show_the_check_and_run_nothing() {
    let (zfs, job, marker) = zfs_world("min_free_space: 1G\n");
    zfs.fakes.set_pool("pool", "FAULTED", None);
    let out = run(zfs.ari().arg("run").arg(&job).args(["--dry-run", "--debug"]));
    assert_exit(&out, 0);
    assert!(
        stderr(&out).contains("dry run, not running on localhost: env TZ=UTC zpool status pool"),
        "{}",
        stderr(&out)
    );
    assert!(zfs.fakes.calls().is_empty(), "a dry run called {:?}", zfs.tools_called());
    assert!(!marker.exists());
    let plan = zfs.fx.plan_json(&job);
    let capacity: Vec<&serde_json::Value> =
        plan["steps"].as_array().unwrap().iter().filter(|s| s["phase"] == "capacity").collect();
    assert_eq!(capacity.len(), 2, "{plan}");
    assert_eq!(capacity[0]["argv"], serde_json::json!(["env", "TZ=UTC", "zpool", "status", "pool"]));
    assert_eq!(
        capacity[1]["argv"],
        serde_json::json!(["zfs", "get", "-H", "-p", "-o", "value", "available,used", DATASET])
    );
    assert_eq!(plan["steps"][0]["phase"], "capacity", "the check comes first");
}

#[test]
fn ari_check_shows_a_zfs_store_and_its_pool() {
    let (zfs, job, marker) = zfs_world("");
    zfs.fakes.set_pool("pool", "DEGRADED", None);
    let out = run(zfs.ari().arg("check").arg(&job));
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "ok: job web: the store {DATASET} has 100.0 GiB free of 101.0 GiB; pool pool is DEGRADED, no finished scrub"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("warning: job web: the pool pool under the store {DATASET} is DEGRADED")),
        "{text}"
    );
    assert!(!marker.exists() && !snapshot_taken(&zfs));
}

#[test]
fn ari_authorize_lets_the_capacity_commands_through_a_zfs_host_s_filter() {
    let zfs = World::new();
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\nsource_hostname: db\ninclude: [/etc]\nrsync_dst: zfs1:/tank/web\nzfs_hostname: zfs1\ndataset_name: {DATASET}\nsnapshot_expiration_days: 60\n"
        ),
    );
    let out = run(zfs.ari().args(["authorize", "--json"]).arg(&job));
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let filter = json["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|host| host["host"] == "zfs1")
        .and_then(|host| host["filter"].as_str())
        .unwrap_or_else(|| panic!("no filter for zfs1: {json}"))
        .to_string();
    for line in ["env TZ=UTC zpool status pool", &format!("zfs get -H -p -o value available,used {DATASET}")]
    {
        assert!(filter.contains(line), "the filter lacks `{line}`:\n{filter}");
    }
}

#[test]
fn ari_check_reads_a_remote_store_only_with_connect() {
    let (zfs, _, marker) = zfs_world("");
    let sshd = tests::Sshd::builder().path_prefix(zfs.fakes.bin_dir()).start();
    zfs.write_config(&format!(
        "ssh_port: {}\nremote_user: {}\nssh_options: [-F, {}]\n",
        sshd.port(),
        sshd.user(),
        sshd.ssh_config_path().display(),
    ));
    let host = sshd.host_alias();
    let src = zfs.fx.path("src");
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [{}]\nrsync_dst: {host}:{}\nzfs_hostname: {host}\ndataset_name: {DATASET}\nsnapshot_expiration_days: 60\n",
            src.display(),
            zfs.fx.p("zfs/web"),
        ),
    );
    let figures =
        format!("ok: job web: the store {DATASET} has 100.0 GiB free of 101.0 GiB; pool pool is ONLINE");
    let out = run(zfs.ari().arg("check").arg(&job));
    assert_exit(&out, 0);
    assert!(!stdout(&out).contains("job web: the store"), "read without --connect: {}", stdout(&out));
    assert!(zfs.fakes.calls().is_empty(), "check called {:?}", zfs.tools_called());
    let out = run(zfs.ari().arg("check").arg("--connect").arg(&job));
    assert_exit(&out, 0);
    assert!(stdout(&out).contains(&figures), "{}\nsshd log:\n{}", stdout(&out), sshd.log_tail());
    assert!(!marker.exists());
}
