//! Attacks on calendar retention (`zfs_keep`), `ari prune`, `ari plan --preview` and `ari
//! history`'s next-run column, through the real binary and the stateful fake zfs, by a reviewer
//! who did not write them; each is kept as a regression test. Four of them found defects, since
//! mended (their tests are marked "Found by the attack"):
//! 1. a snapshot dated in the future (a ZFS host's wrong clock) took calendar slots and
//!    keep_min, and the run destroyed the backup it just made (and real history), exit 0;
//! 2. retention's destroys went on after a signal, even the third ("aborting cleanup");
//! 3. `ari prune` of a job without retention said "pruned";
//! 4. `ari prune` destroyed right after a failed backup, as no run would.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use tests::running::Running;
use tests::wait::eventually;
use tests::worlds::{snapshot_names, snapshot_world, write_zfs_job, zfs_calls};
use tests::{assert_exit, run, World};

const DATASET: &str = "pool/backups/web";
const DAY: i64 = 86_400;
/// 2026-06-01T12:00:00Z: "now" of the fake ZFS host in these tests.
const NOW: i64 = 1_780_315_200;

fn write_job(world: &World, keep: &str, extra: &str) -> PathBuf {
    write_zfs_job(world, keep, extra)
}

/// A world with the dataset and `snapshots` (full name, creation), its job keeping `keep`.
fn make_world(snapshots: &[(&str, i64)], keep: &str, extra: &str) -> (World, String) {
    snapshot_world(snapshots, NOW, keep, extra)
}

/// A successful run in the job's history: a plain `ari prune` holds for a job without one.
fn recorded(world: &World) {
    tests::reports::record_success(&world.fx.path("state"), "web");
}

fn ari(world: &World, args: &[&str]) -> Output {
    run(world.ari().env("TZ", "UTC").args(args))
}

fn snap(name: &str) -> String {
    format!("{DATASET}@{name}")
}

fn all_names(world: &World) -> BTreeSet<String> {
    snapshot_names(world)
}

/// Every `zfs destroy` the fakes saw, as its argument list.
fn destroys(world: &World) -> Vec<Vec<String>> {
    zfs_calls(world, "destroy")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir`, with its contents, for "nothing was written" checks.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.push((path.clone(), Vec::new()));
            out.extend(tree(&path));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap_or_default()));
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Hostile `zfs list` output, through `ari prune` (its preview lists once, its run lists again).
// ---------------------------------------------------------------------------------------------

/// `ari prune` with every listing printing `listing`; a few real snapshots exist so that a
/// destroy of them would show.
fn prune_with_listing(listing: &str, keep: &str) -> (World, Output) {
    let (world, job) = make_world(
        &[
            (&snap("ari-backup-a"), NOW - 30 * DAY),
            (&snap("ari-backup-b"), NOW - 20 * DAY),
            (&snap("manual"), NOW - 400 * DAY),
            (&format!("{DATASET}/child@ari-backup-c"), NOW - 400 * DAY),
            ("pool/backups/webby@ari-backup-d", NOW - 400 * DAY),
        ],
        keep,
        "",
    );
    world.fakes.output("zfs", &[1, 2, 3, 4], listing);
    recorded(&world);
    let out = ari(&world, &["prune", &job]);
    (world, out)
}

#[track_caller]
fn nothing_destroyed_and_failed(listing: &str, why: &str) {
    let (world, out) = prune_with_listing(listing, "zfs_keep: {daily: 1}\n");
    assert_ne!(
        out.status.code(),
        Some(0),
        "a listing that cannot be judged must not be a success: {}",
        text(&out)
    );
    assert!(destroys(&world).is_empty(), "{listing:?}: destroyed {:?}", destroys(&world));
    assert!(text(&out).contains(why), "{listing:?}: expected `{why}` in {}", text(&out));
}

#[test]
fn malformed_or_hostile_listings_destroy_nothing_and_fail() {
    let old = NOW - 100 * DAY;
    let new = NOW - DAY;
    let ok_new = format!("{}\t{new}\n", snap("ari-backup-new"));
    // Names zfs destroy would read as several snapshots, a range, options or other datasets.
    for name in [
        "ari-backup-a%ari-backup-z",
        "ari-backup-a,ari-backup-b",
        "ari-backup-a b",
        "ari-backup-a@b",
        "ari-backup-a/../x",
        "ari-backup-\u{e9}",
        "ari-backup-",
        "ari-backup-a\r",
        "ari-backup-a\u{0}",
    ] {
        let listing = format!("{}\t{old}\n{ok_new}", snap(name));
        nothing_destroyed_and_failed(&listing, "the store's backups cannot be judged");
    }
    // The dataset itself, an extra column, a missing column, a creation that is no number.
    nothing_destroyed_and_failed(&format!("{DATASET}\t{old}\n{ok_new}"), "is not a snapshot name");
    nothing_destroyed_and_failed(
        &format!("{}\t{old}\tx\n{ok_new}", snap("ari-backup-a")),
        "userrefs `x` is not a whole number",
    );
    nothing_destroyed_and_failed(
        &format!("{}\t{old}\t0\t0\n{ok_new}", snap("ari-backup-a")),
        "expected NAME<tab>CREATION[<tab>USERREFS]",
    );
    nothing_destroyed_and_failed(
        &format!("{}\n{ok_new}", snap("ari-backup-a")),
        "expected NAME<tab>CREATION",
    );
    nothing_destroyed_and_failed(
        &format!("{}\t1.5\n{ok_new}", snap("ari-backup-a")),
        "is not seconds since the epoch",
    );
    nothing_destroyed_and_failed(
        &format!("{}\t99999999999999999999\n{ok_new}", snap("ari-backup-a")),
        "is not seconds",
    );
    // The same snapshot twice (at two times, or at one).
    nothing_destroyed_and_failed(
        &format!("{}\t{old}\n{}\t{new}\n", snap("ari-backup-a"), snap("ari-backup-a")),
        "twice",
    );
    nothing_destroyed_and_failed(
        &format!("{}\t{old}\n{}\t{old}\n{ok_new}", snap("ari-backup-a"), snap("ari-backup-a")),
        "twice",
    );
    // A line whose dataset part starts with an option is another dataset's: not judged.
    let (world, out) = prune_with_listing(
        &format!("-r {}\t{old}\n{ok_new}", snap("ari-backup-a")),
        "zfs_keep: {daily: 1}\n",
    );
    assert!(destroys(&world).is_empty(), "{}", text(&out));
}

#[test]
fn a_hostile_listing_of_other_datasets_destroys_only_the_datasets_own_prefixed_snapshots() {
    let old = NOW - 100 * DAY;
    let listing = [
        format!("{DATASET}/child@ari-backup-c\t{old}"),
        format!("pool/backups/webby@ari-backup-d\t{old}"),
        format!("pool/backups@ari-backup-e\t{old}"),
        format!("pool/backups/web @ari-backup-f\t{old}"),
        format!(" {DATASET}@ari-backup-g\t{old}"),
        format!("{}\t{old}", snap("manual")),
        format!("{}\t{old}", snap("ARI-BACKUP-h")),
        format!("{}\t{}", snap("ari-backup-a"), NOW - 30 * DAY),
        format!("{}\t {} ", snap("ari-backup-b"), NOW - 20 * DAY),
        format!("{}\t{}", snap("ari-backup-new"), NOW - DAY),
        String::new(),
        "   ".to_string(),
    ]
    .join("\n");
    let (world, out) = prune_with_listing(&listing, "zfs_keep: {daily: 1}\n");
    let destroyed = destroys(&world);
    for args in &destroyed {
        assert_eq!(args.len(), 2, "{args:?}");
        assert!(args[1].starts_with(&format!("{DATASET}@ari-backup-")), "{args:?}");
    }
    let names: BTreeSet<_> = destroyed.iter().map(|a| a[1].clone()).collect();
    assert_eq!(
        names,
        [snap("ari-backup-a"), snap("ari-backup-b")].into_iter().collect(),
        "only the dataset's own, unkept: {}",
        text(&out)
    );
    assert!(!names.contains(&snap("ari-backup-new")), "the newest survives");
}

#[test]
fn creation_times_at_the_extremes_neither_panic_nor_destroy_the_newest() {
    for (a, b) in [(i64::MIN, i64::MAX), (i64::MAX, 0), (-1, i64::MAX), (253_402_300_800, 0)] {
        let listing = format!(
            "{}\t{a}\n{}\t{b}\n{}\t{}\n",
            snap("ari-backup-x"),
            snap("ari-backup-y"),
            snap("ari-backup-new"),
            NOW - DAY
        );
        // The preview (the text shows each time) must not panic.
        let (world, job) = make_world(&[], "zfs_keep: {daily: 1}\n", "");
        world.fakes.output("zfs", &[1, 2], &listing);
        let out = ari(&world, &["plan", &job, "--preview"]);
        assert!(!text(&out).contains("panicked"), "{}", text(&out));
        assert!(out.status.code().is_some_and(|c| c < 100), "{}", text(&out));
        let out = ari(&world, &["history", &job]);
        assert!(!text(&out).contains("panicked"), "{}", text(&out));
        // Through prune: whatever is judged newest by time is kept; nothing but ours destroyed.
        let (world, out) = prune_with_listing(&listing, "zfs_keep: {daily: 1}\n");
        assert!(!text(&out).contains("panicked"), "{}", text(&out));
        let newest = if a.max(b) > NOW - DAY {
            if a > b {
                "ari-backup-x"
            } else {
                "ari-backup-y"
            }
        } else {
            "ari-backup-new"
        };
        for args in destroys(&world) {
            assert_ne!(args[1], snap(newest), "the newest by creation: {}", text(&out));
            assert!(args[1].starts_with(&format!("{DATASET}@ari-backup-")));
        }
    }
}

#[test]
fn a_huge_listing_is_judged_without_destroying_what_keep_min_keeps() {
    // 200 000 of the dataset's own snapshots, one a minute, all kept by keep_min.
    let mut listing = String::new();
    for i in 0..200_000i64 {
        listing.push_str(&format!("{}\t{}\n", snap(&format!("ari-backup-{i}")), NOW - 200_000 * 60 + i * 60));
    }
    let (world, out) = prune_with_listing(&listing, "zfs_keep: {yearly: 1}\nzfs_keep_min: 1000000\n");
    assert_exit(&out, 0);
    assert!(destroys(&world).is_empty(), "{}", text(&out).len());
}

/// Found by the attack (2). Retention's destroys ignored signals, even the third one that
/// "aborts cleanup": an operator who saw `ari prune` (or a run's expiry) destroying what they
/// did not mean to could not stop it. Now no destroy starts after a signal (what stays is safe).
#[test]
fn a_signal_stops_retention_from_destroying_more() {
    let seeded: Vec<(String, i64)> =
        (1..=6).map(|d| (snap(&format!("ari-backup-{d}")), NOW - (10 - d) * DAY)).collect();
    let (world, job) = make_world(&refs(&seeded), "zfs_keep: {daily: 1}\n", "");
    // prune: the preview's listing (1), the prune's listing (2), then destroys from 3: the first
    // destroy hangs.
    world.fakes.hang("zfs", &[3]);
    recorded(&world);
    let mut running = Running::start(world.ari().env("TZ", "UTC").args(["prune", &job]));
    assert!(
        eventually(|| world.fakes.calls().iter().any(|c| c.hung)),
        "no destroy hung\n{}",
        world.fakes.report()
    );
    for _ in 0..3 {
        running.signal(libc::SIGINT);
        std::thread::sleep(std::time::Duration::from_millis(700));
        if running.child.try_wait().unwrap().is_some() {
            break;
        }
    }
    let out = running.wait();
    let after_abort: Vec<_> = destroys(&world).into_iter().skip(1).collect();
    assert!(
        after_abort.is_empty(),
        "after three signals (cleanup aborted), retention went on destroying: {after_abort:?}\n{}",
        text(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// The newest snapshot, and the backup the run just made.
// ---------------------------------------------------------------------------------------------

/// Found by the attack (1). The ZFS host's clock was a year ahead for two months (an RTC fault,
/// fixed by NTP): its snapshots of those months carry creation times a year in the future. With
/// a common policy (`{daily: 14, weekly: 8}`), the future-dated snapshots filled every daily and
/// weekly slot and keep_min, so each run destroyed the snapshot it had just made, and reported
/// success. Now a snapshot from the future is kept as `future` and takes no rule's place.
#[test]
fn a_future_dated_snapshot_does_not_make_a_run_destroy_the_backup_it_just_made() {
    let mut seeded: Vec<(String, i64)> = Vec::new();
    for day in 1..=30 {
        seeded.push((snap(&format!("ari-backup-past-{day}")), NOW - day * DAY));
    }
    // Two months of snapshots made while the host's clock was 365 days ahead.
    for day in 0..60 {
        seeded.push((snap(&format!("ari-backup-glitch-{day}")), NOW - 90 * DAY + 365 * DAY + day * DAY));
    }
    let refs: Vec<(&str, i64)> = seeded.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    let (world, job) = make_world(&refs, "zfs_keep: {daily: 14, weekly: 8}\n", "");
    let before = all_names(&world);
    let out = ari(&world, &["run", &job]);
    assert_exit(&out, 0);
    let made: Vec<String> = world
        .fakes
        .calls_of("zfs")
        .into_iter()
        .filter(|c| c.args.first().map(String::as_str) == Some("snapshot"))
        .map(|c| c.args[1].clone())
        .collect();
    assert_eq!(made.len(), 1);
    let after = all_names(&world);
    assert!(
        after.contains(&made[0]),
        "the run destroyed the backup it had just made ({}), and exited 0; destroyed: {:?}\n{}",
        made[0],
        before.difference(&after).collect::<Vec<_>>(),
        text(&out)
    );
}

/// The plain case (no clock trouble): the run's own snapshot survives a policy of one.
#[test]
fn the_backup_a_run_makes_survives_the_tightest_policy() {
    let (world, job) = make_world(
        &[(&snap("ari-backup-a"), NOW - 3 * DAY), (&snap("ari-backup-b"), NOW - 2 * DAY)],
        "zfs_keep: {hourly: 1}\n",
        "zfs_keep_min: 1\n",
    );
    world.fakes.set_now(NOW);
    assert_exit(&ari(&world, &["run", &job]), 0);
    let ours: Vec<_> =
        all_names(&world).into_iter().filter(|n| n.starts_with(&snap("ari-backup-"))).collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(!ours.contains(&snap("ari-backup-a")) && !ours.contains(&snap("ari-backup-b")));
}

// ---------------------------------------------------------------------------------------------
// zfs_keep values: YAML, the global config, the command line.
// ---------------------------------------------------------------------------------------------

#[test]
fn zfs_keep_values_that_are_no_counts_are_refused_before_anything_runs() {
    let (world, _) = make_world(&[], "", "");
    for keep in [
        "zfs_keep: {daily: 1.0}\n",
        "zfs_keep: {daily: 1e3}\n",
        "zfs_keep: {daily: -1}\n",
        "zfs_keep: {daily: 4294967297}\n",
        "zfs_keep: {daily: '-0'}\n",
        "zfs_keep: {daily: ' '}\n",
        "zfs_keep: {daily: true}\n",
        "zfs_keep: {daily: {x: 1}}\n",
        "zfs_keep: {Daily: 3}\n",
        "zfs_keep: {'daily ': 3}\n",
        "zfs_keep: {1: 3}\n",
        "zfs_keep: {<<: {daily: 3}}\n",
        "zfs_keep: \"\"\n",
        "zfs_keep: ~\n",
        "zfs_keep: []\n",
        "zfs_keep: 'daily=1,daily=2'\n",
        "zfs_keep: 'daily=1;rm -rf /'\n",
        "zfs_keep: {daily: 3, daily: 3}\n",
        "zfs_keep: !!binary aGVsbG8=\n",
    ] {
        let job = write_job(&world, keep, "");
        let out = ari(&world, &["run", job.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{keep:?} must be refused: {}", text(&out));
    }
    // Through the command line too.
    let job = write_job(&world, "snapshot_expiration_days: 30\n", "");
    let job = job.to_str().unwrap();
    for value in [
        "daily=0",
        "daily=-1",
        "daily=1.5",
        "daily",
        "daily=",
        "=3",
        "dialy=3",
        "daily=3,daily=4",
        "{daily: 0}",
        "{daily: [1]}",
        "",
    ] {
        let arg = format!("--zfs_keep={value}");
        let out = ari(&world, &[&arg, "plan", job]);
        assert_eq!(out.status.code(), Some(2), "{arg:?} must be refused: {}", text(&out));
        let arg = format!("zfs_keep={value}");
        let out = ari(&world, &["--set", &arg, "plan", job]);
        assert_eq!(out.status.code(), Some(2), "--set {arg:?} must be refused: {}", text(&out));
    }
    assert!(world.tools_called().is_empty(), "nothing ran: {:?}", world.tools_called());
}

#[test]
fn zfs_keep_from_an_alias_a_string_or_the_global_config_is_what_is_judged() {
    // A YAML anchor and alias, and counts given as strings.
    let (world, job) = make_world(
        &[
            (&snap("ari-backup-a"), NOW - 3 * DAY),
            (&snap("ari-backup-b"), NOW - 2 * DAY),
            (&snap("ari-backup-c"), NOW - DAY),
        ],
        "x-keep: &k {daily: '2'}\nzfs_keep: *k\n",
        "",
    );
    let out = ari(&world, &["plan", &job, "--preview"]);
    // x-keep may be refused as an unknown key: then the alias attack is moot, and it must say so.
    if out.status.code() == Some(0) {
        let t = text(&out);
        assert!(t.contains("2 kept, 1 destroyed"), "{t}");
    } else {
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    }
    // The global config's zfs_keep, with the job's snapshot_expiration_days: either keeps.
    let (world, job) = make_world(
        &[
            (&snap("ari-backup-a"), NOW - 40 * DAY),
            (&snap("ari-backup-b"), NOW - 35 * DAY),
            (&snap("ari-backup-c"), NOW - DAY),
        ],
        "snapshot_expiration_days: 2\n",
        "",
    );
    world.write_config("zfs_keep: {monthly: 3}\n");
    let out = ari(&world, &["plan", &job, "--preview"]);
    assert_exit(&out, 0);
    let t = text(&out);
    // Monthly 3 over 2026-04-22, 04-27 and 05-31 (UTC): April's newest (b) and May's (c).
    assert!(t.contains("2 kept, 1 destroyed"), "{t}");
    // The command line overrides: a numeric string map, and the NAME=COUNT form with a space.
    let out = ari(&world, &["--zfs_keep", "daily=1 monthly=1", "plan", &job, "--preview"]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("1 kept, 2 destroyed"), "{}", text(&out));
    assert!(destroys(&world).is_empty(), "a preview destroys nothing");
}

#[test]
fn an_odd_tz_neither_panics_nor_destroys_the_newest() {
    for tz in ["Not/AZone", "", ":", "UTC+99", "<+14>-14", "/etc/passwd", "../../../../etc/passwd"] {
        let (world, job) = make_world(
            &[(&snap("ari-backup-a"), NOW - 3 * DAY), (&snap("ari-backup-b"), NOW - 2 * DAY)],
            "zfs_keep: {daily: 1}\n",
            "",
        );
        let out = run(world.ari().env("TZ", tz).args(["run", &job]));
        assert!(!text(&out).contains("panicked"), "TZ={tz:?}: {}", text(&out));
        assert_exit(&out, 0);
        let made: Vec<String> = world
            .fakes
            .calls_of("zfs")
            .into_iter()
            .filter(|c| c.args.first().map(String::as_str) == Some("snapshot"))
            .map(|c| c.args[1].clone())
            .collect();
        assert!(all_names(&world).contains(&made[0]), "TZ={tz:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// ari prune: the lock, the stale guard, hooks, history, dry run, failures.
// ---------------------------------------------------------------------------------------------

fn three_old() -> Vec<(String, i64)> {
    (1..=3).map(|d| (snap(&format!("ari-backup-{d}")), NOW - (10 - d) * DAY)).collect()
}

fn refs(v: &[(String, i64)]) -> Vec<(&str, i64)> {
    v.iter().map(|(n, c)| (n.as_str(), *c)).collect()
}

#[test]
fn prune_waits_for_or_refuses_a_running_job_and_destroys_nothing_meanwhile() {
    let seeded = three_old();
    let (world, job) = make_world(&refs(&seeded), "zfs_keep: {daily: 1}\n", "");
    // The run hangs in its first zfs call (the capacity check's), holding the job's lock.
    world.fakes.hang("zfs", &[1]);
    let mut running = Running::start(world.ari().env("TZ", "UTC").args(["run", &job]));
    assert!(
        eventually(|| world.fakes.calls().iter().any(|c| c.hung)),
        "the run never hung\n{}",
        world.fakes.report()
    );
    let out = ari(&world, &["prune", &job]);
    assert_ne!(out.status.code(), Some(0), "prune while a run holds the lock: {}", text(&out));
    assert!(destroys(&world).is_empty(), "{:?}", destroys(&world));
    assert!(!text(&out).contains("pruned:"), "{}", text(&out));
    running.signal(libc::SIGTERM);
    let _ = running.wait();
}

#[test]
fn prune_runs_no_hook_takes_no_snapshot_records_no_run_and_writes_no_metric_of_a_run() {
    let seeded = three_old();
    let (world, _) = make_world(&refs(&seeded), "", "");
    let pre = world.fx.path("pre-ran");
    let post = world.fx.path("post-ran");
    let always = world.fx.path("always-ran");
    let job = write_job(
        &world,
        "zfs_keep: {daily: 1}\n",
        &format!(
            "pre:\n  - command: [touch, {}]\npost:\n  - command: [touch, {}]\n  - command: [touch, {}]\n    when: always\n",
            pre.display(),
            post.display(),
            always.display()
        ),
    );
    let metrics = world.fx.path("metrics.prom");
    world.write_config(&format!("metrics_file: {}\n", metrics.display()));
    let job = job.to_str().unwrap();
    recorded(&world);
    let history = std::fs::read_to_string(world.fx.path("state/history/web.json")).unwrap();
    let out = ari(&world, &["prune", job]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("pruned: 1 kept, 2 destroyed"), "{}", text(&out));
    assert!(!pre.exists() && !post.exists() && !always.exists(), "a prune runs no hook");
    let after = std::fs::read_to_string(world.fx.path("state/history/web.json")).unwrap();
    assert_eq!(after, history, "a prune records no run");
    let calls = world.tools_called();
    assert!(calls.iter().all(|c| c.starts_with("zfs list") || c.starts_with("zfs destroy")), "{calls:?}");
    let m = std::fs::read_to_string(&metrics).unwrap_or_default();
    assert!(!m.contains("ari_job_last_success"), "a prune is no success of the job: {m}");
    // And the stale guard, with keep_when_stale, still holds after the prune (no run recorded).
    let (world, _) = make_world(&refs(&three_old()), "", "");
    let job = write_job(&world, "zfs_keep: {daily: 1}\n", "keep_when_stale: 7d\n");
    let job = job.to_str().unwrap();
    assert_exit(&ari(&world, &["prune", job]), 0);
    assert_exit(&ari(&world, &["prune", job]), 0);
    assert!(destroys(&world).is_empty(), "{:?}", destroys(&world));
}

#[test]
fn prune_under_a_stale_history_destroys_nothing() {
    let seeded = three_old();
    let (world, job) = make_world(&refs(&seeded), "zfs_keep: {daily: 1}\n", "keep_when_stale: 7d\n");
    // A successful run, then its history aged 10 days.
    world.fakes.set_now(NOW);
    assert_exit(&ari(&world, &["run", &job]), 0);
    // The guard held in that run (no history before it): nothing destroyed yet.
    assert!(destroys(&world).is_empty());
    let path = world.fx.path("state/history/web.json");
    let mut history: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for run in history["runs"].as_array_mut().unwrap() {
        run["started"] = (run["started"].as_i64().unwrap() - 10 * DAY).into();
        if let Some(ended) = run["ended"].as_f64() {
            run["ended"] = (ended - (10 * DAY) as f64).into();
        }
    }
    std::fs::write(&path, serde_json::to_string(&history).unwrap()).unwrap();
    let out = ari(&world, &["prune", &job]);
    assert_exit(&out, 0);
    assert!(destroys(&world).is_empty(), "{}", text(&out));
    assert!(text(&out).contains("keep_when_stale"), "{}", text(&out));
    // A corrupt history holds the guard too.
    std::fs::write(&path, "{not json").unwrap();
    let out = ari(&world, &["prune", &job]);
    assert!(destroys(&world).is_empty(), "{}", text(&out));
}

#[test]
fn prune_dry_run_destroys_nothing_and_dry_run_from_the_config_too() {
    let seeded = three_old();
    let (world, job) = make_world(&refs(&seeded), "zfs_keep: {daily: 1}\n", "");
    recorded(&world);
    let state_before = tree(&world.fx.path("state"));
    let out = ari(&world, &["prune", &job, "--dry-run"]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("1 kept, 2 destroyed"), "{}", text(&out));
    let out = ari(&world, &["--dry_run=true", "prune", &job]);
    assert_exit(&out, 0);
    let out = ari(&world, &["--set", "dry_run=true", "run", &job]);
    assert_exit(&out, 0);
    world.write_config("dry_run: true\n");
    let out = ari(&world, &["prune", &job]);
    assert_exit(&out, 0);
    let out = ari(&world, &["run", &job]);
    assert_exit(&out, 0);
    assert!(destroys(&world).is_empty(), "{:?}", destroys(&world));
    assert_eq!(all_names(&world).len(), 3);
    let _ = state_before;
}

#[test]
fn a_failed_destroy_is_no_success_of_prune_or_run() {
    let seeded = three_old();
    let (world, job) = make_world(&refs(&seeded), "zfs_keep: {daily: 1}\n", "");
    world.fakes.fail_matching("zfs", "destroy", 1, "cannot destroy snapshot: dataset is busy");
    recorded(&world);
    let out = ari(&world, &["prune", &job]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("pruning failed"), "{}", text(&out));
    assert!(!text(&out).contains("pruned:"), "{}", text(&out));
    let out = ari(&world, &["run", &job]);
    assert_ne!(out.status.code(), Some(0), "a run whose expiry failed: {}", text(&out));
}

#[test]
fn a_listing_that_fails_or_hangs_makes_prune_fail_and_destroy_nothing() {
    let seeded = three_old();
    let (world, job) = make_world(&refs(&seeded), "zfs_keep: {daily: 1}\n", "command_timeout: 2s\n");
    recorded(&world);
    world.fakes.fail("zfs", &[1], 1, "cannot open 'pool/backups/web': dataset does not exist");
    let out = ari(&world, &["prune", &job]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    // The preview lists fine, the prune's own listing fails.
    world.fakes.fail("zfs", &[3], 1, "cannot open: I/O error");
    let out = ari(&world, &["prune", &job]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(destroys(&world).is_empty(), "{:?}", destroys(&world));
    // The preview lists one thing, the prune's listing (under the lock) another: what the prune
    // destroys is judged from its own listing, and only ours.
    world.fakes.output("zfs", &[4], &format!("{}\t{}\n", snap("ari-backup-3"), NOW - 7 * DAY));
    world.fakes.output(
        "zfs",
        &[5],
        &format!(
            "{}\t{}\npool/other@ari-backup-x\t1\n{}\t{}\n",
            snap("ari-backup-1"),
            NOW - 9 * DAY,
            snap("ari-backup-3"),
            NOW - 7 * DAY
        ),
    );
    let out = ari(&world, &["prune", &job]);
    let destroyed = destroys(&world);
    assert_eq!(destroyed, vec![vec!["destroy".to_string(), snap("ari-backup-1")]], "{}", text(&out));
}

// ---------------------------------------------------------------------------------------------
// ari plan --preview, ari history: read-only.
// ---------------------------------------------------------------------------------------------

#[test]
fn preview_and_history_destroy_nothing_and_write_nothing_to_state_dir() {
    let seeded = three_old();
    let (world, job) = make_world(&refs(&seeded), "zfs_keep: {daily: 1}\n", "keep_when_stale: 7d\n");
    let metrics = world.fx.path("metrics.prom");
    world.write_config(&format!("metrics_file: {}\n", metrics.display()));
    // A run first, so that state_dir holds a history, a report, the tool-version cache.
    assert_exit(&ari(&world, &["run", &job]), 0);
    let state = world.fx.path("state");
    let before = tree(&state);
    let calls_before = world.fakes.calls().len();
    for args in [
        vec!["plan", job.as_str(), "--preview"],
        vec!["plan", job.as_str(), "--preview", "--json"],
        vec!["history", job.as_str()],
        vec!["history", job.as_str(), "--json"],
        vec!["prune", job.as_str(), "--dry-run"],
    ] {
        let out = ari(&world, &args);
        assert_exit(&out, 0);
    }
    assert_eq!(tree(&state), before, "state_dir changed");
    let calls: Vec<_> = world.fakes.calls().into_iter().skip(calls_before).collect();
    assert!(calls.iter().all(|c| c.args.first().map(String::as_str) == Some("list")), "{calls:?}");
    assert!(!metrics.exists() || std::fs::read_to_string(&metrics).is_ok());
}

#[test]
fn preview_with_a_malformed_listing_fails_plan_and_warns_in_history() {
    let (world, job) = make_world(&refs(&three_old()), "zfs_keep: {daily: 1}\n", "");
    world.fakes.output("zfs", &[1, 2, 3], &format!("{}\tyesterday\n", snap("ari-backup-1")));
    let out = ari(&world, &["plan", &job, "--preview"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let out = ari(&world, &["plan", &job, "--preview", "--json"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(destroys(&world).is_empty());
}

// ---------------------------------------------------------------------------------------------
// ari authorize: the destroy pattern is still all that is allowed.
// ---------------------------------------------------------------------------------------------

#[test]
fn authorize_allows_only_the_datasets_own_prefixed_destroys() {
    let world = World::new();
    let src = world.fx.make_tree("src", &[("etc/hosts", "x\n")]);
    let job = world.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [{}/etc]\nrsync_dst: backup@store.example:/tank/web\nzfs_hostname: store.example\ndataset_name: {DATASET}\nzfs_keep: {{daily: 3}}\n",
            src.display()
        ),
    );
    let out = ari(&world, &["authorize", job.to_str().unwrap()]);
    let t = text(&out);
    for line in t.lines().filter(|l| l.contains("destroy")) {
        assert!(
            !line.contains("zfs destroy") || line.contains(&format!("{DATASET}@ari-backup-")),
            "a destroy that is not the dataset's own prefixed snapshot: {line}\n{t}"
        );
        assert!(!line.contains("-r") && !line.contains("-R"), "{line}");
    }
}

/// Found by the attack (3). `ari prune` of a job that has no retention at all (an rdiff job
/// without `remove_older_than_timespec`) said "job web: pruned", exit 0, though nothing was
/// configured and nothing ran; `ari plan --preview` said the retention was "shown above" when
/// the plan showed none. Both now say that there is none.
#[test]
fn prune_of_a_job_without_retention_says_there_is_nothing_to_prune() {
    let fx = tests::Fixture::new();
    fx.write_config("");
    let src = fx.make_tree("src", &[("a", "1")]);
    let job = fx.write_job("web.yaml", &format!("include: [{}]\n", src.display()));
    let out = run(fx.ari().args(["prune", job.to_str().unwrap()]));
    let t = text(&out);
    assert!(
        !t.contains("job web: pruned") && t.contains("job web: nothing to prune: the job sets no retention"),
        "no retention is configured, yet prune reports it pruned:\n{t}"
    );
    let out = run(fx.ari().args(["plan", job.to_str().unwrap(), "--preview"]));
    assert!(text(&out).contains("job web: no retention: the job never destroys a backup"), "{}", text(&out));
}

/// A run killed (SIGKILL) with an LVM snapshot made leaves its undo in the ledger. `ari prune`
/// then recovers first; when the recovery fails, it destroys nothing and fails; when it
/// succeeds, it prunes.
#[test]
fn prune_after_a_crashed_run_recovers_first_and_destroys_nothing_if_recovery_fails() {
    let world = World::lvm();
    world.fakes.add_dataset(DATASET);
    for d in 1..=3 {
        world.fakes.add_zfs_snapshot(&snap(&format!("ari-backup-{d}")), NOW - (10 - d) * DAY);
    }
    world.fakes.set_now(NOW);
    std::fs::create_dir_all(world.fx.path("zfs/web")).unwrap();
    let job = world.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\nsnapshot: lvm\nvolumes: [{{name: vg0/root, mount_point: /}}]\ninclude: [/etc]\nrsync_dst: {}\nzfs_hostname: localhost\ndataset_name: {DATASET}\nzfs_keep: {{daily: 1}}\n",
            world.fx.p("zfs/web")
        ),
    );
    let job = job.to_str().unwrap().to_string();
    // The run hangs in its first mount, after lvcreate: then it is killed outright.
    world.fakes.hang("mount", &[1]);
    let mut running = Running::start(world.ari().env("TZ", "UTC").args(["run", &job]));
    assert!(
        eventually(|| world.fakes.calls().iter().any(|c| c.hung)),
        "the run never hung\n{}",
        world.fakes.report()
    );
    running.signal(libc::SIGKILL);
    let _ = running.wait();
    assert!(!world.fakes.snapshots().is_empty(), "the crashed run left its LVM snapshot");
    // Recovery cannot remove it: prune destroys nothing.
    world.fakes.fail_always("lvremove", 5, "  Logical volume vg0/root-ari_backup in use.");
    let out = ari(&world, &["prune", &job]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(destroys(&world).is_empty(), "destroyed with a ledger not recovered: {}", text(&out));
}

/// Found by the attack (1), its smallest form: one snapshot dated a year ahead (a host booted
/// with a wrong clock, once) and `zfs_keep: {daily: 1}`: every later run destroyed the backup it
/// had just made.
#[test]
fn one_future_dated_snapshot_and_daily_1_keep_each_new_backup() {
    let (world, job) = make_world(
        &[(&snap("ari-backup-old"), NOW - 2 * DAY), (&snap("ari-backup-wrong-clock"), NOW + 365 * DAY)],
        "zfs_keep: {daily: 1}\n",
        "",
    );
    let out = ari(&world, &["run", &job]);
    assert_exit(&out, 0);
    let made: Vec<String> = world
        .fakes
        .calls_of("zfs")
        .into_iter()
        .filter(|c| c.args.first().map(String::as_str) == Some("snapshot"))
        .map(|c| c.args[1].clone())
        .collect();
    assert!(
        all_names(&world).contains(&made[0]),
        "the run destroyed its own backup {}:\n{}",
        made[0],
        text(&out)
    );
}

/// In a run, a retention listing that cannot be judged destroys nothing and fails the run (the
/// backup itself is kept); a listing of only other datasets' snapshots destroys nothing.
#[test]
fn a_run_whose_retention_listing_is_hostile_destroys_nothing_and_says_so() {
    let (world, job) = make_world(&refs(&three_old()), "zfs_keep: {daily: 1}\n", "");
    // The run's zfs calls: the capacity check's (1), retention's listing before the backup
    // (2), the snapshot step's listing (3), zfs snapshot (4), retention's listing (5).
    world.fakes.output("zfs", &[5], &format!("{}\t1\n{}\t2\n", snap("ari-backup-x"), snap("ari-backup-x")));
    let out = ari(&world, &["run", &job]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(destroys(&world).is_empty(), "{:?}", destroys(&world));
    let calls = world.tools_called();
    assert!(calls.iter().any(|c| c.starts_with("zfs snapshot")), "{calls:?}");
    assert_eq!(world.fakes.calls_of("zfs").iter().filter(|c| c.args[0] == "list").count(), 3, "{calls:?}");
}

/// Found by the attack (4). SECURITY.md: "nothing is destroyed after a failed backup". `ari
/// prune` (without `keep_when_stale`) destroys right after a failed run, while no fresh backup
/// exists: here the job's last run failed (`zfs snapshot` failed), and prune destroys every
/// snapshot but the newest, which is 20 days old. A run in the same state would have destroyed
/// nothing (expiry only after a successful backup).
#[test]
fn prune_destroys_nothing_after_a_failed_last_run_without_force() {
    let seeded: Vec<(String, i64)> =
        (1..=3).map(|d| (snap(&format!("ari-backup-{d}")), NOW - (23 - d) * DAY)).collect();
    let (world, job) = make_world(&refs(&seeded), "snapshot_expiration_days: 7\n", "");
    world.fakes.fail_matching("zfs", "snapshot pool/", 1, "cannot create snapshot: out of space");
    let out = ari(&world, &["run", &job]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(destroys(&world).is_empty(), "the failed run destroyed nothing");
    let out = ari(&world, &["prune", &job]);
    assert_exit(&out, 0);
    assert!(
        destroys(&world).is_empty(),
        "prune destroyed {:?} right after a failed backup, leaving a 20-day-old snapshot only:\n{}",
        destroys(&world),
        text(&out)
    );
    assert!(
        text(&out).contains("nothing is destroyed: the job's last run failed (exit 1)"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("keep: prune guard"), "{}", text(&out));
    // --force destroys all the same: all but the newest, which keep_min keeps.
    let out = ari(&world, &["prune", &job, "--force"]);
    assert_exit(&out, 0);
    assert_eq!(destroys(&world).len(), 2, "{}", text(&out));
}
