//! A second attack on retention and capacity, by a reviewer who wrote neither, through the real
//! binary and the stateful fakes: what it found (a store host's clock behind or a little ahead
//! made a run destroy its own backup; future-dated snapshots piled up unannounced; `--force`
//! overrode the stale guard silently; a prune with no run recorded destroyed; a vanished pool
//! left the metrics ONLINE; `ari check` could hang with the default timeouts; the space hint
//! named no job; a space refusal dropped the DEGRADED warning), mended, and what held, kept
//! as regression tests.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tests::clock::{ari_in, made, real_now, snap, ten_days, text, DAY};
use tests::running::Running;
use tests::wait::eventually;
use tests::worlds::{snapshot_names, snapshot_world, zfs_calls, zfs_world};
use tests::{ari_bin, assert_exit, run, stderr, World};

const DATASET: &str = "pool/backups/web";
const GIB: u64 = 1 << 30;

/// A world with the dataset and `snapshots`, the fake ZFS clock at `zfs_now`.
fn make_world(snapshots: &[(String, i64)], zfs_now: i64, keep: &str, extra: &str) -> (World, String) {
    snapshot_world(snapshots, zfs_now, keep, extra)
}

fn ari(world: &World, args: &[&str]) -> Output {
    ari_in(world, "UTC", args)
}

fn all_names(world: &World) -> BTreeSet<String> {
    snapshot_names(world)
}

fn destroys(world: &World) -> Vec<Vec<String>> {
    zfs_calls(world, "destroy")
}

// ---------------------------------------------------------------------------------------------
// `future` snapshots and clock skew
// ---------------------------------------------------------------------------------------------

/// The ZFS host's clock is BEHIND (an RTC reset to an older date at boot, before NTP): the run's
/// own snapshot is dated a year back, the oldest, which no rule keeps. The engine keeps what the
/// run made (it was not in the listing before the backup), and the report says the clock is off.
#[test]
fn a_zfs_host_clock_behind_never_makes_the_run_destroy_the_backup_it_just_made() {
    for keep in ["zfs_keep: {daily: 7, weekly: 4}\n", "snapshot_expiration_days: 30\n"] {
        let (world, job) = make_world(&ten_days(), real_now() - 365 * DAY, keep, "");
        let out = ari(&world, &["run", &job]);
        let made = made(&world);
        assert_eq!(made.len(), 1, "{}", text(&out));
        assert!(
            all_names(&world).contains(&made[0]),
            "{keep:?}: the run destroyed the backup it had just made ({}), exit {:?}\n{}",
            made[0],
            out.status.code(),
            text(&out)
        );
        let report = tests::reports::last_report(&world.fx.path("state"));
        // ari named it by the server's clock: judged by its name, and said.
        assert!(report["warnings"].to_string().contains("far from the time ari named them"), "{report}");
    }
}

/// Just inside FUTURE_SLACK: a snapshot dated 30 minutes after ari's now (the ZFS host's clock
/// was ahead at the previous run, then NTP stepped it back) is judged as a normal snapshot and
/// is "the newest", taking `{daily: 1}`'s slot; the run's own backup is kept all the same.
#[test]
fn a_snapshot_just_inside_the_slack_never_makes_the_run_destroy_its_own_backup() {
    let now = real_now();
    let to_midnight = DAY - now.rem_euclid(DAY);
    // Same UTC day as the new snapshot, inside the slack.
    let ahead = now + (1800).min(to_midnight - 120).max(60);
    let mut seeded = ten_days();
    seeded.push((snap("ari-backup-ahead"), ahead));
    let (world, job) = make_world(&seeded, now, "zfs_keep: {daily: 1}\n", "");
    let out = ari(&world, &["run", &job]);
    let made = made(&world);
    assert_eq!(made.len(), 1, "{}", text(&out));
    assert!(
        all_names(&world).contains(&made[0]),
        "the run destroyed the backup it had just made ({}), exit {:?}\n{}",
        made[0],
        out.status.code(),
        text(&out)
    );
}

/// A ZFS host whose clock stays far ahead: every new snapshot is dated a year ahead (the later
/// of its two dates, which is its time) and kept as `future`, run after run; the run report
/// says so, rather than letting the store fill unannounced.
#[test]
fn future_snapshots_are_kept_with_a_warning() {
    let ahead = real_now() + 365 * DAY;
    let (world, job) = make_world(&ten_days(), ahead, "snapshot_expiration_days: 1\n", "");
    let mut err = String::new();
    for _ in 0..3 {
        let out = ari(&world, &["run", &job]);
        assert_exit(&out, 0);
        err.push_str(&stderr(&out));
        std::thread::sleep(Duration::from_millis(1100));
    }
    // The age rule destroyed the real ones but the newest real (keep_min); the three future
    // ones stay, as they should.
    assert_eq!(made(&world).len(), 3);
    assert!(made(&world).iter().all(|m| all_names(&world).contains(m)));
    let report = tests::reports::last_report(&world.fx.path("state"));
    let warned = report["warnings"].to_string().contains("dated in the future");
    assert!(warned, "three runs kept future-dated snapshots without a warning:\n{err}\n{report}");
}

/// Held: future snapshots and keep_min 3: the future ones count for no keep_min; the run's own
/// backup and the two newest real ones are kept by keep_min, and nothing future is destroyed.
#[test]
fn future_snapshots_and_keep_min_keep_the_real_newest() {
    let now = real_now();
    let mut seeded = ten_days();
    for i in 0..20 {
        seeded.push((snap(&format!("ari-backup-f{i}")), now + 2 * 3600 + i * DAY));
    }
    let (world, job) = make_world(&seeded, now, "snapshot_expiration_days: 1\n", "zfs_keep_min: 3\n");
    let out = ari(&world, &["run", &job]);
    assert_exit(&out, 0);
    let after = all_names(&world);
    let made = made(&world);
    assert!(after.contains(&made[0]), "{}", text(&out));
    assert!(after.contains(&snap("ari-backup-day1")) && after.contains(&snap("ari-backup-day2")));
    assert!(!after.contains(&snap("ari-backup-day3")), "{after:?}");
    assert_eq!(after.iter().filter(|n| n.contains("ari-backup-f")).count(), 20);
    // The preview says `future` for them.
    let out = ari(&world, &["plan", "--preview", &job]);
    assert_exit(&out, 0);
    assert_eq!(text(&out).matches("keep: future").count(), 20, "{}", text(&out));
}

// ---------------------------------------------------------------------------------------------
// The prune guard, --force, and the preview
// ---------------------------------------------------------------------------------------------

/// A store that filled up while its runs were refused for 10 days (`keep_when_stale: 7d`,
/// `snapshot_expiration_days: 7`): the refusal's hint says that `--force` overrides the stale
/// guard and offers the dry run first, and the forced prune says what it overrides.
#[test]
fn a_forced_prune_says_that_it_overrides_the_stale_guard() {
    let (zfs, job, _marker) = zfs_world("min_free_space: 10%\nkeep_when_stale: 7d\n", "zfs_keep_min: 1\n");
    let now = real_now();
    for d in 8..=20 {
        zfs.fakes.add_zfs_snapshot(&snap(&format!("ari-backup-d{d}")), now - d * DAY);
    }
    zfs.fakes.set_space(DATASET, 9 * GIB, 91 * GIB);
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    let refusal = stderr(&out);
    assert!(refusal.contains("ari prune --force"), "{refusal}");
    let out = run(zfs.ari().arg("prune").arg(&job).arg("--force"));
    let said = text(&out);
    let destroyed = destroys(&zfs).len();
    assert!(
        refusal.contains("ari prune --dry-run --force") && refusal.contains("keep_when_stale"),
        "{refusal}"
    );
    assert!(said.contains("--force: destroying although") && said.contains("keep_when_stale"), "{said}");
    assert!(
        destroyed == 0 || said.contains("keep_when_stale") || refusal.contains("keep_when_stale"),
        "following the refusal's hint destroyed {destroyed} of 13 snapshots past the stale guard, unannounced:\n--- refusal ---\n{refusal}\n--- prune --force ---\n{said}"
    );
}

/// The prune guard holds when no run is recorded at all, as after a failed run: a history file
/// that is missing (state_dir lost or moved, a label changed) is no backup known to succeed.
#[test]
fn prune_without_any_recorded_run_destroys_nothing() {
    let seeded: Vec<(String, i64)> =
        (1..=3).map(|d| (snap(&format!("ari-backup-{d}")), real_now() - (23 - d) * DAY)).collect();
    let (world, job) = make_world(&seeded, real_now(), "snapshot_expiration_days: 7\n", "");
    // A failed run, then its history lost.
    world.fakes.fail_matching("zfs", "snapshot pool/", 1, "cannot create snapshot: out of space");
    assert_ne!(ari(&world, &["run", &job]).status.code(), Some(0));
    std::fs::remove_file(world.fx.path("state/history/web.json")).unwrap();
    let out = ari(&world, &["prune", &job]);
    assert!(
        destroys(&world).is_empty(),
        "prune destroyed {:?} with no run recorded:\n{}",
        destroys(&world),
        text(&out)
    );
    assert!(text(&out).contains("no run of the job is recorded"), "{}", text(&out));
}

/// Held: the preview that `ari prune` prints agrees with what it does, with and without
/// --force, after a failed run; and `--dry-run --force` previews the forced prune.
#[test]
fn prune_preview_agrees_with_prune_with_and_without_force() {
    let seeded: Vec<(String, i64)> =
        (1..=4).map(|d| (snap(&format!("ari-backup-{d}")), real_now() - (23 - d) * DAY)).collect();
    let (world, job) =
        make_world(&seeded, real_now(), "snapshot_expiration_days: 7\n", "keep_when_stale: 30d\n");
    world.fakes.fail_matching("zfs", "snapshot pool/", 1, "cannot create snapshot: out of space");
    assert_ne!(ari(&world, &["run", &job]).status.code(), Some(0));
    let out = ari(&world, &["prune", &job, "--dry-run", "--force"]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("1 kept, 3 destroyed"), "{}", text(&out));
    let out = ari(&world, &["prune", &job]);
    assert!(text(&out).contains("4 kept, 0 destroyed"), "{}", text(&out));
    assert!(destroys(&world).is_empty());
    let out = ari(&world, &["prune", &job, "--force"]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("1 kept, 3 destroyed"), "{}", text(&out));
    assert_eq!(destroys(&world).len(), 3);
}

/// Held: one SIGINT (not three) during a hanging destroy stops retention: no destroy after it,
/// prune fails, the counts add up to what is left, and the message names a prune.
#[test]
fn one_signal_stops_prune_before_its_next_destroy_and_counts_what_stays() {
    let seeded: Vec<(String, i64)> =
        (1..=6).map(|d| (snap(&format!("ari-backup-{d}")), real_now() - (10 - d) * DAY)).collect();
    let (world, job) = make_world(&seeded, real_now(), "zfs_keep: {daily: 1}\n", "");
    world.fakes.hang("zfs", &[3]);
    // No run is recorded, which holds a plain prune: --force.
    let mut running = Running::start(world.ari().env("TZ", "UTC").args(["prune", "--force", &job]));
    assert!(eventually(|| world.fakes.calls().iter().any(|c| c.hung)), "{}", world.fakes.report());
    running.signal(libc::SIGINT);
    let out = running.wait();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(destroys(&world).len() <= 1, "{:?}\n{}", destroys(&world), text(&out));
    let left = all_names(&world).len();
    assert_eq!(left, 6, "{}", text(&out));
    assert!(text(&out).contains("6 kept, 0 destroyed"), "{}", text(&out));
    assert!(text(&out).contains("during ari prune"), "{}", text(&out));
    assert!(!text(&out).contains("after the backup succeeded"), "{}", text(&out));
}

/// Held: a signal during a run's backup stops before retention; a signal during the retention
/// listing (it hangs) destroys nothing.
#[test]
fn a_signal_during_the_retention_listing_destroys_nothing() {
    let (world, job) = make_world(&ten_days(), real_now(), "zfs_keep: {daily: 1}\n", "");
    // zfs calls of a run: capacity (1), snapshot listing (2), snapshot (3), retention listing (4).
    world.fakes.hang("zfs", &[4]);
    let mut running = Running::start(world.ari().env("TZ", "UTC").args(["run", &job]));
    assert!(eventually(|| world.fakes.calls().iter().any(|c| c.hung)), "{}", world.fakes.report());
    running.signal(libc::SIGTERM);
    let out = running.wait();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(destroys(&world).is_empty(), "{:?}\n{}", destroys(&world), text(&out));
}

// ---------------------------------------------------------------------------------------------
// Capacity
// ---------------------------------------------------------------------------------------------

fn metrics(zfs: &World) -> String {
    std::fs::read_to_string(zfs.fx.path("metrics/ari.prom")).expect("the metrics file")
}

/// An exported or vanished pool: `zpool status POOL` fails (`no such pool`). The job is refused,
/// and the pool is recorded as UNKNOWN, so that the metrics stop saying ONLINE from the last good
/// run and AriPoolNotOnline fires.
#[test]
fn a_vanished_pool_is_unknown_in_the_metrics() {
    let (zfs, job, _marker) = zfs_world("", "");
    assert_exit(&zfs.run(&job), 0);
    let online = "ari_job_pool_healthy{job=\"web\",pool=\"pool\",state=\"ONLINE\"} 1";
    assert!(metrics(&zfs).contains(online));
    zfs.fakes.fail_matching("zpool", "status", 1, "cannot open 'pool': no such pool");
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(
        !metrics(&zfs).contains(online),
        "after a refused run whose pool is gone, the metrics still say:\n{}",
        metrics(&zfs)
    );
    assert!(metrics(&zfs).contains("state=\"UNKNOWN\"} 0"), "{}", metrics(&zfs));
}

/// Held: a FAULTED pool is recorded alone (no space read); the metrics show it FAULTED, and no
/// store size or available series of a reading that has none (no stale figures, no empty family).
#[test]
fn a_pool_only_reading_shows_the_pool_and_no_store_figures() {
    let (zfs, job, _marker) = zfs_world("", "");
    assert_exit(&zfs.run(&job), 0);
    assert!(metrics(&zfs).contains("ari_job_store_available_bytes{job=\"web\""));
    zfs.fakes.set_pool("pool", "FAULTED", None);
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("is FAULTED"), "{}", stderr(&out));
    let m = metrics(&zfs);
    assert!(m.contains("state=\"FAULTED\"} 0"), "{m}");
    assert!(!m.contains("ari_job_store_available_bytes"), "{m}");
    assert!(!m.contains("ari_job_store_size_bytes"), "{m}");
    // The history holds the record without the figures; ari history and metrics read it.
    let history = std::fs::read_to_string(zfs.fx.path("state/history/web.json")).unwrap();
    assert!(history.contains("FAULTED"), "{history}");
    let out = run(zfs.ari().arg("history").arg(&job));
    assert_exit(&out, 0);
}

/// Held: a history in the record shape before 697bf1b (`total_bytes` and `available_bytes`
/// plain numbers, always present) is still read: metrics show its figures.
#[test]
fn an_old_history_record_shape_is_still_read() {
    let (zfs, job, _marker) = zfs_world("", "");
    assert_exit(&zfs.run(&job), 0);
    let path = zfs.fx.path("state/history/web.json");
    let mut history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let text_before = history.to_string();
    assert!(text_before.contains("total_bytes"), "{text_before}");
    // Rewrite the figures as the old shape wrote them: numbers, 12345 and 678.
    fn rewrite(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                if map.contains_key("total_bytes") {
                    map.insert("total_bytes".into(), 12345.into());
                    map.insert("available_bytes".into(), 678.into());
                }
                map.values_mut().for_each(rewrite);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(rewrite),
            _ => {}
        }
    }
    rewrite(&mut history);
    // Another job's history in the old shape: the metrics file, rewritten after each run from
    // every history in the state directory, reads it.
    let other = zfs.fx.path("state/history/other.json");
    std::fs::write(&other, serde_json::to_string(&history).unwrap()).unwrap();
    assert_exit(&zfs.run(&job), 0);
    let m = metrics(&zfs);
    assert!(
        m.contains("ari_job_store_size_bytes{job=\"other\",store=\"pool/backups/web\"} 12345")
            && m.contains("ari_job_store_available_bytes{job=\"other\",store=\"pool/backups/web\"} 678"),
        "{m}"
    );
}

/// With neither job_timeout nor command_timeout set, a query outside a run is still bounded, 30 s
/// each: `ari check` with a hanging `zpool status` (a SUSPENDED pool) and `ari plan --preview`
/// with a hanging listing, side by side (one wait for both).
#[test]
fn queries_outside_a_run_are_bounded_with_the_default_timeouts() {
    let bounded = |world: &World, args: &[&str]| {
        let mut command = Command::new("/usr/bin/timeout");
        command
            .args(["-s", "KILL", "70"])
            .arg(ari_bin())
            .arg("--config")
            .arg(world.fx.config_path())
            .args(args)
            .env("PATH", world.fakes.path_env())
            .env_remove("ARI_CONFIG")
            .stdin(Stdio::null());
        let clock = Instant::now();
        let out = run(&mut command);
        (out, clock.elapsed())
    };
    let preview = std::thread::spawn(move || {
        let (world, job) = make_world(&ten_days(), real_now(), "zfs_keep: {daily: 2}\n", "");
        world.fakes.hang("zfs", &[1]);
        bounded(&world, &["plan", "--preview", &job])
    });
    let (zfs, job, _marker) = zfs_world("", "");
    zfs.fakes.hang("zpool", &[1]);
    let check = bounded(&zfs, &["check", &job.to_string_lossy()]);
    for (what, (out, took)) in [("ari check", check), ("ari plan --preview", preview.join().unwrap())] {
        assert!(took < Duration::from_secs(50), "{what} hung for {took:?} (killed): {}", text(&out));
        assert!(took >= Duration::from_secs(25), "{what} stopped before the bound: {took:?}");
        assert_ne!(out.status.code(), Some(0), "{what}: {}", text(&out));
        assert!(text(&out).contains("timed out") || text(&out).contains("timeout"), "{what}: {}", text(&out));
    }
}

/// The refusal's hint names the job, and is given only to a job with retention (not to an rdiff
/// job without remove_older_than_timespec, for which a prune has nothing to do).
#[test]
fn the_space_hint_names_the_job_and_is_offered_only_with_retention() {
    let fx = tests::Fixture::new();
    let src = fx.make_tree("src", &[("etc/hosts", "127.0.0.1\n")]);
    let job = fx.write_job("web.yaml", &format!("include: [{}]\nmin_free_space: 99999T\n", src.display()));
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("below min_free_space"), "{err}");
    let prune = run(fx.ari().arg("prune").arg(&job).arg("--force"));
    let said = text(&prune);
    assert!(
        !(err.contains("ari prune --force JOB")
            || (err.contains("ari prune") && said.contains("nothing to prune"))),
        "refusal:\n{err}\nprune --force:\n{said}"
    );
    // With retention, the hint names this job's file.
    let kept = fx.write_job(
        "db.yaml",
        &format!("include: [{}]\nmin_free_space: 99999T\nremove_older_than_timespec: 30D\n", src.display()),
    );
    let out = run(fx.ari().arg("run").arg(&kept));
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains(&format!("`ari prune --force {}`", kept.display())), "{err}");
}

/// A DEGRADED pool's warning stays in the run report when the space check then refuses the job.
#[test]
fn a_space_refusal_keeps_the_degraded_warning() {
    let (zfs, job, _marker) = zfs_world("min_free_space: 10%\n", "");
    zfs.fakes.set_pool("pool", "DEGRADED", None);
    zfs.fakes.set_space(DATASET, 9 * GIB, 91 * GIB);
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(metrics(&zfs).contains("state=\"DEGRADED\"} 0"), "{}", metrics(&zfs));
    let report = tests::reports::last_report(&zfs.fx.path("state"));
    let warnings = report["warnings"].to_string();
    assert!(
        warnings.contains("DEGRADED")
            || stderr(&out).contains("warning") && stderr(&out).contains("DEGRADED"),
        "no DEGRADED warning in the report ({warnings}) or on stderr:\n{}",
        stderr(&out)
    );
}

/// Held: a store of size 0 is refused by a percentage with a message that says so, and `ari
/// check` reports it as a problem.
#[test]
fn a_store_of_size_zero_is_refused_by_a_share_and_check_says_so() {
    let (zfs, job, marker) = zfs_world("min_free_space: 10%\n", "");
    zfs.fakes.set_space(DATASET, 0, 0);
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(!marker.exists());
    assert!(stderr(&out).contains("reports a size of 0 bytes"), "{}", stderr(&out));
    let out = run(zfs.ari().arg("check").arg(&job));
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("size of 0"), "{}", text(&out));
}
