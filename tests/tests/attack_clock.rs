//! An attack on 1aa4f33 ("a store host's clock that is off is judged by the earlier clock"), by
//! a reviewer who wrote none of it, through the real binary and the stateful fakes: store clocks
//! behind, ahead, jumping and corrected between runs; `ari prune` and the preview, which make no
//! backup and so have no store clock; several new snapshots in one listing; hostile listings.
//! Four findings (history wiped once a clock was corrected, an RTC-reset backup lost the next
//! day, `ari prune` judging by the server's clock alone, the newest new snapshot taken for the
//! run's) are mended: ari's own snapshots are judged by the time in their names when the store
//! dated them far from it, and the earliest new snapshot is the run's. Every attack is kept.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::collections::BTreeSet;
use std::process::Output;
use std::time::Duration;

use tests::clock::{ari_in, real_now, snap, ten_days, text, DAY};
use tests::worlds::{snapshot_names, snapshot_world, write_zfs_job, zfs_calls};
use tests::{assert_exit, World};

const DATASET: &str = "pool/backups/web";
const YEAR: i64 = 365 * DAY;
/// Names by the second, so that no run reuses a name the one before freed.
const SECONDS: &str = "zfs_snapshot_timestamp_format: \"%Y-%m-%d--%H%M%S\"\n";

fn ari(world: &World, args: &[&str]) -> Output {
    ari_in(world, "UTC", args)
}

fn names(world: &World) -> BTreeSet<String> {
    snapshot_names(world)
}

fn destroyed(world: &World) -> Vec<String> {
    zfs_calls(world, "destroy").into_iter().map(|args| args[1].clone()).collect()
}

/// The snapshots ari's own snapshot step made (a hook's are named `...-zz-...`).
fn made(world: &World) -> Vec<String> {
    zfs_calls(world, "snapshot")
        .into_iter()
        .map(|args| args[1].clone())
        .filter(|n| !n.contains("-zz-"))
        .collect()
}

/// `runs` runs of the job with the store host's clock at `offset` from the real one, a day
/// further each run (its clock runs; the server's, in this test, hardly does). What they said.
fn runs_with_store_clock(world: &World, job: &str, offset: i64, runs: i64) -> String {
    let mut said = String::new();
    for day in 0..runs {
        world.fakes.set_now(real_now() + offset + day * DAY);
        let out = ari(world, &["run", job]);
        assert_exit(&out, 0);
        said.push_str(&text(&out));
        std::thread::sleep(Duration::from_millis(1100));
    }
    said
}

fn warnings(world: &World) -> String {
    tests::reports::last_report(&world.fx.path("state"))["warnings"].to_string()
}

// ---------------------------------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------------------------------

/// Found (high), mended by judging ari's own snapshots by the time in their names when the
/// store dated them far from it: the backups kept while the store host's clock was behind are destroyed, all
/// at once, by the first run after the clock is put right (NTP comes back, an admin sets it) or
/// merely made less wrong. They are dated by the wrong clock; the run's own backup now agrees
/// with the server's, so no clock is "off", and the server's clock judges them by their wrong
/// dates: a year old. Three runs' backups (really a few days old, kept by
/// `snapshot_expiration_days: 30`) are destroyed without a word about the clock. With `zfs_keep`
/// the calendar places them a year ago, behind every correctly dated backup, so `daily: 7` drops
/// exactly the newest days. Before 1aa4f33 each run lost one backup with a warning; now the
/// history piles up behind the warning and is wiped silently when the clock is mended. The same
/// with a partial correction (a year behind, then half a year behind).
#[test]
fn a_corrected_store_clock_wipes_the_backups_made_while_it_was_behind() {
    let mut losses = Vec::new();
    for keep in ["snapshot_expiration_days: 30\n", "zfs_keep: {daily: 7}\n"] {
        for corrected in [0, -180 * DAY] {
            let (world, job) = snapshot_world(&ten_days(), real_now() - YEAR, keep, SECONDS);
            let mut said = runs_with_store_clock(&world, &job, -YEAR, 3);
            // What the runs kept while the clock was behind (the calendar may thin three
            // backups of one server day to one: they are named, and judged, by its clock).
            let behind: Vec<String> =
                made(&world).into_iter().filter(|m| names(&world).contains(m)).collect();
            assert!(!behind.is_empty(), "kept while behind\n{said}");
            if keep.starts_with("snapshot_expiration_days") {
                assert_eq!(behind.len(), 3, "kept while behind\n{said}");
            }
            // The clock is put right (or less wrong), and the next run comes.
            said.push_str(&runs_with_store_clock(&world, &job, corrected, 1));
            let mut lost: Vec<&String> = behind.iter().filter(|m| !names(&world).contains(*m)).collect();
            if keep.starts_with("zfs_keep") {
                // `daily` keeps the newest of each day ari named: a backup is lost only if its
                // day (by its name) keeps none.
                let day =
                    |name: &str| name.rsplit_once("@ari-backup-").map(|(_, rest)| rest[..10].to_string());
                let days: BTreeSet<Option<String>> =
                    made(&world).iter().filter(|m| names(&world).contains(*m)).map(|m| day(m)).collect();
                lost.retain(|m| !days.contains(&day(m)));
            }
            if !lost.is_empty() {
                losses.push(format!(
                    "{keep:?}, clock corrected to {corrected}s: the run after the correction destroyed {lost:?}, \
                     backups a few days old, judged by the wrong dates they were given; report warnings: {}",
                    warnings(&world)
                ));
            }
            let _ = said;
        }
    }
    assert!(losses.is_empty(), "{}", losses.join("\n"));
}

/// Found (medium, same cause), mended; the case docs/jobs.md names): "an RTC reset before NTP" dates
/// one run's backup in 1970. That run keeps it ("this run"); the next run, with the clock right,
/// destroys it, a day old, under `snapshot_expiration_days: 30`.
#[test]
fn the_rtc_reset_backup_of_the_docs_is_destroyed_by_the_next_run() {
    let (world, job) = snapshot_world(&ten_days(), 1_000, "snapshot_expiration_days: 30\n", SECONDS);
    let out = ari(&world, &["run", &job]);
    assert_exit(&out, 0);
    let reset = made(&world)[0].clone();
    assert!(names(&world).contains(&reset), "{}", text(&out));
    std::thread::sleep(Duration::from_millis(1100));
    world.fakes.set_now(real_now());
    let out = ari(&world, &["run", &job]);
    assert_exit(&out, 0);
    assert!(
        names(&world).contains(&reset),
        "the backup made under the RTC reset ({reset}) was destroyed by the next run: {:?}\n{}",
        destroyed(&world),
        text(&out)
    );
}

/// Found, mended (high): `ari prune` (and `ari plan --preview`, `ari history`, `prune --dry-run`)
/// judge by the server's clock alone: with the store host's clock behind, what every run keeps
/// (judged by the store's clock) the preview shows as `destroy` and a prune destroys. An admin
/// who runs `ari prune` after tightening a policy (or to free space) loses every backup made
/// while the clock is behind. The same with the server's clock ahead.
#[test]
fn prune_destroys_what_runs_keep_while_the_store_clock_is_behind() {
    let (world, job) =
        snapshot_world(&ten_days(), real_now() - YEAR, "snapshot_expiration_days: 30\n", SECONDS);
    let said = runs_with_store_clock(&world, &job, -YEAR, 3);
    let behind = made(&world);
    assert!(behind.iter().all(|m| names(&world).contains(m)), "{said}");
    let preview = ari(&world, &["plan", "--preview", &job]);
    let preview_text = text(&preview);
    let out = ari(&world, &["prune", &job]);
    let lost: Vec<&String> = behind.iter().filter(|m| !names(&world).contains(*m)).collect();
    assert!(
        lost.is_empty(),
        "ari prune destroyed {lost:?}, which every run kept (the store host's clock is behind)\n\
         preview:\n{preview_text}\nprune:\n{}",
        text(&out)
    );
}

/// Found, mended (medium): "the run's backup" is the newest (by date) of what is new since the
/// listing before the backup. A second new snapshot with the prefix dated by a right clock (a
/// `zfs receive` of a replicated snapshot, a hook's, another tool's; or a hostile store host's
/// line) is taken for the run's: the clocks "agree", the server's clock judges, and the backups
/// kept while the store host's clock was behind are destroyed (the very loss 1aa4f33 mends).
/// Taking the EARLIEST new one (or the name the snapshot step made) would judge by the earlier
/// clock, as the docs promise.
#[test]
fn a_second_new_snapshot_dated_right_makes_the_run_judge_by_the_servers_clock() {
    let keep = "snapshot_expiration_days: 30\n";
    let (world, job) = snapshot_world(&ten_days(), real_now() - YEAR, keep, SECONDS);
    let mut said = runs_with_store_clock(&world, &job, -YEAR, 2);
    let behind = made(&world);
    assert!(behind.iter().all(|m| names(&world).contains(m)), "{said}");
    // A pre hook (after the listing before the backup) that brings a snapshot dated by a right
    // clock, as `zfs receive` keeps the sender's creation.
    let state = world.fakes.dir().join("state.json");
    let right = real_now();
    // Simpler and exact: the hook sets the clock right, snapshots, and sets it back.
    let behind_clock = real_now() - YEAR + 2 * DAY;
    let hook = format!(
        "pre:\n  - command: [sh, -c, 'sed -i \"s/\\\"now\\\": .*,/\\\"now\\\": {right},/\" {s} && zfs snapshot {DATASET}@ari-backup-zz-received && sed -i \"s/\\\"now\\\": .*,/\\\"now\\\": {behind_clock},/\" {s}']\n",
        s = state.display()
    );
    let job = write_zfs_job(&world, keep, &format!("{SECONDS}{hook}")).to_string_lossy().into_owned();
    world.fakes.set_now(behind_clock);
    let out = ari(&world, &["run", &job]);
    said.push_str(&text(&out));
    assert_exit(&out, 0);
    let received = names(&world).into_iter().find(|n| n.contains("-zz-received"));
    assert!(received.is_some(), "the hook made no snapshot\n{said}");
    let lost: Vec<&String> = behind.iter().filter(|m| !names(&world).contains(*m)).collect();
    assert!(
        lost.is_empty(),
        "a second new snapshot dated by a right clock made the run destroy {lost:?}\n{said}\n{:?}",
        world.fakes.zfs_snapshots()
    );
}

// ---------------------------------------------------------------------------------------------
// What held
// ---------------------------------------------------------------------------------------------

/// Held: a store host's clock a year ahead, run after run: each run's backup is kept (`this
/// run`, then `future`), what the server's clock finds old among the correctly dated ones is
/// destroyed as before, and every run's report says the store's backups are dated after the
/// server's clock (they pile up, but not without a word). A prune then keeps them too.
#[test]
fn a_store_clock_ahead_keeps_every_backup_and_says_so() {
    let mut seeded = ten_days();
    seeded.push((snap("ari-backup-old40"), real_now() - 40 * DAY));
    seeded.push((snap("ari-backup-old50"), real_now() - 50 * DAY));
    let (world, job) = snapshot_world(&seeded, real_now() + YEAR, "snapshot_expiration_days: 30\n", SECONDS);
    let said = runs_with_store_clock(&world, &job, YEAR, 3);
    let ahead = made(&world);
    assert_eq!(ahead.len(), 3);
    assert!(ahead.iter().all(|m| names(&world).contains(m)), "{said}");
    assert!(!names(&world).contains(&snap("ari-backup-old40")), "{said}");
    assert!(!names(&world).contains(&snap("ari-backup-old50")), "{said}");
    assert!(ten_days().iter().all(|(n, _)| names(&world).contains(n)), "{said}");
    let w = warnings(&world);
    assert!(w.contains("dated after this server's clock") && w.contains("dated in the future"), "{w}");
    let out = ari(&world, &["prune", &job]);
    assert!(ahead.iter().all(|m| names(&world).contains(m)), "{}", text(&out));
}

/// Held: a store host's clock that jumps further behind between runs (an RTC reset to an
/// earlier time) only makes more backups look newer: nothing is destroyed.
#[test]
fn a_store_clock_jumping_further_behind_destroys_nothing() {
    let (world, job) =
        snapshot_world(&ten_days(), real_now() - YEAR, "snapshot_expiration_days: 30\n", SECONDS);
    let mut said = runs_with_store_clock(&world, &job, -YEAR, 2);
    said.push_str(&runs_with_store_clock(&world, &job, -3 * YEAR, 2));
    assert!(destroyed(&world).is_empty(), "{:?}\n{said}", destroyed(&world));
    assert_eq!(names(&world).len(), 14, "{said}");
    assert!(warnings(&world).contains("far from the time ari named them"), "{}", warnings(&world));
}

/// Held: a hostile retention listing (the store host prints what it likes) cannot make the
/// judgement use a clock later than the server's: a forged "new" snapshot dated far in the
/// future leaves the server's clock judging (the same destroys as an honest listing), one dated
/// far in the past moves the clock back and nothing is destroyed. (A store host that lies can
/// destroy its own snapshots anyway; what it cannot do is make ari destroy more.)
#[test]
fn a_hostile_listing_cannot_move_the_judging_clock_past_the_servers() {
    let keep = "snapshot_expiration_days: 5\n";
    let honest: BTreeSet<String> =
        ten_days().iter().filter(|(_, c)| real_now() - c >= 5 * DAY).map(|(n, _)| n.clone()).collect();
    for forged in [real_now() + 10 * YEAR, real_now() - 5 * YEAR, 0, i64::MAX] {
        let (world, job) = snapshot_world(&ten_days(), real_now(), keep, "");
        // zfs calls of a run: capacity (1), the listing before the backup (2), the snapshot
        // step's listing (3), the snapshot (4), the retention's listing (5).
        let mut listing: String = ten_days().iter().map(|(n, c)| format!("{n}\t{c}\n")).collect();
        listing.push_str(&format!("{}\t{forged}\n", snap("ari-backup-forged")));
        world.fakes.output("zfs", &[5], &listing);
        let out = ari(&world, &["run", &job]);
        let gone: BTreeSet<String> = destroyed(&world).into_iter().collect();
        assert!(
            gone.is_subset(&honest),
            "forged {forged}: destroyed {gone:?}, honest {honest:?}\n{}",
            text(&out)
        );
        assert!(!gone.contains(&snap("ari-backup-forged")), "{}", text(&out));
    }
}

/// Held: with `keep_when_stale` set and a recent success recorded, the stale guard (the server's
/// clock and ari's history, no store clock) lets the runs' retention run, and a store clock a
/// year behind still costs no run's backup.
#[test]
fn the_stale_guard_and_a_store_clock_behind_keep_every_run_backup() {
    let (world, job) = snapshot_world(
        &ten_days(),
        real_now() - YEAR,
        "snapshot_expiration_days: 30\n",
        &format!("{SECONDS}keep_when_stale: 7d\n"),
    );
    tests::reports::record_success(&world.fx.path("state"), "web");
    let said = runs_with_store_clock(&world, &job, -YEAR, 3);
    assert!(made(&world).iter().all(|m| names(&world).contains(m)), "{said}");
    assert_eq!(names(&world).len(), 13, "{said}");
}
