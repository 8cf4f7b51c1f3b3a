//! An attack on 772b6f9 ("ari's own snapshots are judged by the time in their names when the
//! store misdated them"), by a reviewer who wrote none of it, through the real binary and the
//! stateful fake ZFS: crafted names with the prefix (anyone who may `zfs snapshot` the dataset
//! can make them: a delegated `zfs allow snapshot`, a hook, another tool), daylight saving folds,
//! edge years and suffixes. Two findings (snapshots named in the past took the real backups'
//! calendar slots, and a DST fold's second hour was taken for a wrong clock) are mended: a name
//! may make a snapshot look newer than its `creation`, never older (the later of its two dates
//! is its time). Every attack is kept.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::collections::BTreeSet;
use std::process::Output;

use tests::clock::{ari_in, real_now, snap, text, DAY};
use tests::worlds::{snapshot_names, snapshot_world, zfs_calls};
use tests::{assert_exit, World};

fn ari(world: &World, tz: &str, args: &[&str]) -> Output {
    ari_in(world, tz, args)
}

/// `time` in UTC by ari's default timestamp format.
fn stamp(time: i64, format: &str) -> String {
    jiff::Timestamp::from_second(time).unwrap().strftime(format).to_string()
}

/// Ten real daily backups, each named by ari's default format at noon UTC of the day 1..=10 days
/// ago, dated right by the store (name and creation agree).
fn ten_named_days() -> Vec<(String, i64)> {
    let noon = real_now() - real_now().rem_euclid(DAY) + DAY / 2;
    (1..=10)
        .map(|d| {
            let t = noon - d * DAY;
            (snap(&format!("ari-backup-{}", stamp(t, "%Y-%m-%d--%H%M"))), t)
        })
        .collect()
}

fn destroyed(world: &World) -> Vec<String> {
    zfs_calls(world, "destroy").into_iter().map(|args| args[1].clone()).collect()
}

// ---------------------------------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------------------------------

/// Found (high; new in 772b6f9): a snapshot with the prefix whose name is dated in the past
/// (more than an hour before its `creation`) is now judged by its name, so whoever may make a
/// snapshot of the dataset can place one in any past calendar period. Named 23:59 of each of
/// the last six days, made a minute ago, they are the newest of their days: `zfs_keep {daily:
/// 7}` keeps them and ari destroys the six real daily backups, days of history replaced by
/// copies of today's data; by `ari run` and by `ari prune` alike. Before 772b6f9 the same
/// snapshots (judged by `creation`, today) took only today's slot and cost no real backup. A name may make a snapshot look newer than its `creation`, never older:
/// judging by max(name, creation) mends the clock-behind case the commit is for and leaves a
/// store clock that was ahead where 1aa4f33 left it (kept as `future` until it is past).
#[test]
fn backdated_names_never_steal_past_calendar_slots() {
    let real = ten_named_days();
    let kept_by_daily: BTreeSet<String> = real[..6].iter().map(|(n, _)| n.clone()).collect();
    for command in ["run", "prune"] {
        let (world, job) = snapshot_world(&real, real_now(), "zfs_keep: {daily: 7}\n", "");
        if command == "prune" {
            // A run (today's backup, a recorded success) before the snapshots appear.
            assert_exit(&ari(&world, "UTC", &["run", &job]), 0);
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        // Six snapshots made a minute ago, named 23:59 of each of the six days before today.
        for (name, _) in &real[..6] {
            let day = name.rsplit_once("ari-backup-").unwrap().1.split("--").next().unwrap().to_string();
            world.fakes.add_zfs_snapshot(&snap(&format!("ari-backup-{day}--2359")), real_now() - 60);
        }
        let preview = text(&ari(&world, "UTC", &["plan", "--preview", &job]));
        let out = ari(&world, "UTC", &[command, &job]);
        let names = snapshot_names(&world);
        let lost: Vec<&String> = kept_by_daily.iter().filter(|n| !names.contains(*n)).collect();
        assert!(
            lost.is_empty(),
            "ari {command} destroyed real daily backups {lost:?} in favour of snapshots named in the past\n\
             destroyed: {:?}\npreview:\n{preview}\n{}",
            destroyed(&world),
            text(&out)
        );
    }
}

/// Found (low; new in 772b6f9): ari names a snapshot to the minute in local time, and reads the
/// name back with `compatible()` (the first of a repeated hour). A snapshot made in the second
/// pass of a daylight saving fold, past its first second of the minute, reads more than an hour
/// before its `creation`: it is judged an hour older than it is, and every run report for as long
/// as it is kept warns that the store host's clock was off when it was made (the store host's
/// clock was right). The same in America/* (New_York 01:xx, Santiago 23:xx, Havana 00:xx), twice
/// as far in Antarctica/Troll. Reading a name in a fold as the occurrence nearest `creation` (or
/// a slack of an hour plus a minute plus the zone's largest DST step) mends it.
#[test]
fn a_dst_fold_is_not_taken_for_a_wrong_store_clock() {
    // 2026-10-25 02:08:30 CET (+01:00), the second 02:08 in Paris: 01:08:30Z.
    let fold = "2026-10-25T01:08:30Z".parse::<jiff::Timestamp>().unwrap().as_second();
    let mut snapshots = ten_named_days();
    snapshots.push((snap("ari-backup-2026-10-25--0208"), fold));
    let (world, job) = snapshot_world(&snapshots, real_now(), "snapshot_expiration_days: 400\n", "");
    let out = ari(&world, "Europe/Paris", &["run", &job]);
    assert_exit(&out, 0);
    let warnings = tests::reports::last_report(&world.fx.path("state"))["warnings"].to_string();
    assert!(
        !warnings.contains("dated by the store host far from the time ari named them"),
        "a snapshot of the DST fold, dated right, is called misdated: {warnings}\n{}",
        text(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Held
// ---------------------------------------------------------------------------------------------

/// Held: crafted names (year 0, 9999, -9999, a leap second, minute 60, 24:00, February 29 of a
/// common year, non-canonical widths, long and double suffixes, far-future names) neither crash
/// nor hang a run, nor cost a real backup kept by age; future-named ones are kept.
#[test]
fn crafted_names_neither_crash_nor_cost_real_backups() {
    let real = ten_named_days();
    let crafted = [
        "0000-01-01--0000",
        "9999-12-31--2359",
        "9998-12-31--2359",
        "2026-12-31--2360",
        "2026-12-31--2400",
        "2026-02-29--1200",
        "2026-1-1--100",
        "2026-01-01--0000-000000",
        "2026-01-01--0000-0000000",
        "2026-01-01--0000--2",
        "2026-01-01--0000-2-2",
        "1970-01-01--0000",
        "1969-12-31--2359",
    ];
    let mut snapshots = real.clone();
    for c in crafted {
        snapshots.push((snap(&format!("ari-backup-{c}")), real_now() - 60));
    }
    let (world, job) =
        snapshot_world(&snapshots, real_now(), "snapshot_expiration_days: 30\nzfs_keep_min: 1\n", "");
    let out = ari(&world, "America/New_York", &["run", &job]);
    assert_exit(&out, 0);
    let names = snapshot_names(&world);
    assert!(real.iter().all(|(n, _)| names.contains(n)), "{:?}\n{}", destroyed(&world), text(&out));
    assert!(names.contains(&snap("ari-backup-9998-12-31--2359")), "{}", text(&out));
    for cmd in [&["plan", "--preview", &job][..], &["history", &job][..], &["prune", &job][..]] {
        let out = ari(&world, "America/New_York", cmd);
        assert!(out.status.code().is_some(), "{cmd:?}: {}", text(&out));
    }
    let names = snapshot_names(&world);
    assert!(real.iter().all(|(n, _)| names.contains(n)), "{:?}", destroyed(&world));
}
