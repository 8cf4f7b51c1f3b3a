//! Calendar retention (`zfs_keep`, issue 21): through `ari run` with the fake ZFS holding a year
//! of snapshots at irregular times, what remains after each of several runs is what an
//! independent reading of the rules keeps; the preview (`ari plan --preview`, `ari history`)
//! shows the same judgement without destroying anything; `ari prune` applies a changed policy
//! now, under the stale guard, and records no run. Periods are read in `TZ=UTC` here; the
//! calendar's own tests cover local time and its daylight-saving changes.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;

use tests::reports::last_report;
use tests::{assert_exit, run, World};

const DATASET: &str = "pool/backups/web";
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// 2025-10-01T00:00:00Z: the first snapshot of the seeded year, whose runs (up to 46 days past
/// it) all lie before this test was written: a time after ari's clock would be `future`.
const START: i64 = 1_759_276_800;

/// A period's name as strftime formats it: two times are in one period when they format alike.
fn period_format(rule: &str) -> &'static str {
    match rule {
        "hourly" => "%Y-%m-%d %H",
        "daily" => "%Y-%m-%d",
        "weekly" => "%G-W%V",
        "monthly" => "%Y-%m",
        "yearly" => "%Y",
        other => panic!("no rule {other}"),
    }
}

/// What the rules keep of `snapshots` (name, creation), read apart from ari's code: for each
/// rule, walking newest first, the first snapshot met of each of its N newest periods; and the
/// newest `keep_min`.
fn oracle(snapshots: &[(String, i64)], rules: &[(&str, usize)], keep_min: usize) -> BTreeSet<String> {
    let mut newest_first = snapshots.to_vec();
    newest_first.sort_by(|a, b| (b.1, &b.0).cmp(&(a.1, &a.0)));
    let mut kept: BTreeSet<String> = newest_first.iter().take(keep_min).map(|(n, _)| n.clone()).collect();
    for (rule, count) in rules {
        let mut periods: Vec<String> = Vec::new();
        for (name, creation) in &newest_first {
            let time = jiff::Timestamp::from_second(*creation).unwrap().to_zoned(jiff::tz::TimeZone::UTC);
            let period = time.strftime(period_format(rule)).to_string();
            if !periods.contains(&period) {
                if periods.len() == *count {
                    break;
                }
                periods.push(period);
                kept.insert(name.clone());
            }
        }
    }
    kept
}

/// A year of snapshots from [`START`], one to three days apart at odd hours, with a three-week
/// outage in March: deterministic, from a linear congruential generator.
fn a_year_of_snapshots() -> Vec<(String, i64)> {
    let mut state: u64 = 0x5eed;
    let mut next = || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as i64
    };
    let mut time = START;
    let mut snapshots = Vec::new();
    while time < START + 365 * DAY {
        snapshots.push((format!("{DATASET}@ari-backup-seed-{}", snapshots.len()), time));
        time += HOUR + next() % (3 * DAY);
        if (START + 100 * DAY..START + 103 * DAY).contains(&time) {
            time += 21 * DAY;
        }
    }
    snapshots
}

/// The dataset's own prefixed snapshots the fake ZFS holds.
fn ours(world: &World) -> Vec<(String, i64)> {
    world
        .fakes
        .zfs_snapshots()
        .into_iter()
        .filter(|(n, _)| n.starts_with(&format!("{DATASET}@ari-backup-")))
        .collect()
}

fn names(snapshots: &[(String, i64)]) -> BTreeSet<String> {
    snapshots.iter().map(|(n, _)| n.clone()).collect()
}

/// A world with the year of snapshots, another tool's snapshot and a child's, and a zfs job
/// keeping `keep` (YAML) with `extra` lines.
fn world_with_a_year(keep: &str, extra: &str) -> (World, PathBuf) {
    let world = World::new();
    world.fakes.add_dataset(DATASET);
    for (name, creation) in a_year_of_snapshots() {
        world.fakes.add_zfs_snapshot(&name, creation);
    }
    world.fakes.add_zfs_snapshot(&format!("{DATASET}@manual-before-upgrade"), START - 400 * DAY);
    world.fakes.add_zfs_snapshot(&format!("{DATASET}/child@ari-backup-old"), START - 400 * DAY);
    std::fs::create_dir_all(world.fx.path("zfs/web")).unwrap();
    let job = write_job(&world, keep, extra);
    (world, job)
}

/// The job `web` keeping `zfs_keep: KEEP`.
/// Its snapshots are named without a year: the fake ZFS host's clock makes `creation` span
/// months while ari names by the real clock, and a name that gives a date and a time would be
/// taken for the snapshot's time (docs/jobs.md, "A ZFS host whose clock is wrong").
fn write_job(world: &World, keep: &str, extra: &str) -> PathBuf {
    let named = "zfs_snapshot_timestamp_format: '%j-%H%M%S'\n";
    tests::worlds::write_zfs_job(world, &format!("zfs_keep: {keep}\n{named}"), extra)
}

/// `ari ARGS` in the world, periods read in UTC.
fn ari(world: &World, args: &[&str]) -> Output {
    run(world.ari().env("TZ", "UTC").args(args))
}

#[test]
fn a_year_of_snapshots_is_thinned_by_the_calendar_run_after_run() {
    let rules = [("daily", 7), ("weekly", 4), ("monthly", 6), ("yearly", 2)];
    let (world, job) = world_with_a_year("{daily: 7, weekly: 4, monthly: 6, yearly: 2}", "");
    let job = job.to_str().unwrap();
    let metrics = world.fx.path("metrics.prom");
    world.write_config(&format!("metrics_file: {}\n", metrics.display()));
    let seeded = ours(&world);
    assert!(seeded.len() > 150, "a year of snapshots: {}", seeded.len());
    let last_seed = seeded.iter().map(|(_, c)| *c).max().unwrap();
    // Runs a day, two hours and then 45 days (an outage) apart.
    for (i, at) in [last_seed + DAY, last_seed + DAY + 2 * HOUR, last_seed + 46 * DAY].into_iter().enumerate()
    {
        let before = ours(&world);
        world.fakes.set_now(at);
        let out = ari(&world, &["run", job]);
        assert_exit(&out, 0);
        let after = ours(&world);
        let made: Vec<_> = after.iter().filter(|(n, _)| !names(&before).contains(n)).cloned().collect();
        assert_eq!(made.len(), 1, "run {i} made one snapshot: {made:?}");
        assert_eq!(made[0].1, at);
        let judged: Vec<_> = before.iter().chain(&made).cloned().collect();
        let expected = oracle(&judged, &rules, 1);
        assert_eq!(names(&after), expected, "run {i}: what remains is what the rules keep");
        let report = last_report(&world.fx.path("state"));
        let retention = &report["retention"];
        assert_eq!(
            (&retention["kept"], &retention["destroyed"]),
            (&serde_json::json!(expected.len()), &serde_json::json!(judged.len() - expected.len())),
            "run {i}: {report:#}"
        );
        // The newest backup kept is the run's: dated by its creation, or by its name when the
        // ZFS host's clock is behind.
        assert!(retention["newest"].as_i64() >= Some(at), "run {i}: {report:#}");
    }
    // At most 7 + 4 + 6 + 2 snapshots are kept, and another tool's and a child's never judged.
    assert!(ours(&world).len() <= 19, "{:?}", ours(&world));
    let all = names(&world.fakes.zfs_snapshots());
    assert!(all.contains(&format!("{DATASET}@manual-before-upgrade")), "{all:?}");
    assert!(all.contains(&format!("{DATASET}/child@ari-backup-old")), "{all:?}");
    // The metrics say what the last run kept and destroyed.
    let text = std::fs::read_to_string(&metrics).unwrap_or_default();
    let kept = ours(&world).len();
    assert!(text.contains(&format!("ari_job_retention_kept{{job=\"web\"}} {kept}")), "{text}");
    assert!(text.contains("ari_job_retention_destroyed{job=\"web\"}"), "{text}");
}

#[test]
fn the_preview_shows_what_a_changed_policy_destroys_and_prune_applies_it_without_recording_a_run() {
    let (world, job) = world_with_a_year("{daily: 7, weekly: 4, monthly: 6, yearly: 2}", "");
    let job_path = job.to_str().unwrap().to_string();
    world.fakes.set_now(START + 400 * DAY);
    assert_exit(&ari(&world, &["run", &job_path]), 0);
    let history_file = world.fx.path("state/history/web.json");
    let history_before = std::fs::read_to_string(&history_file).unwrap();

    // A tighter policy: the preview names every snapshot, by rule, and destroys nothing.
    write_job(&world, "{daily: 2, monthly: 2}", "");
    let now_held = ours(&world);
    let expected = oracle(&now_held, &[("daily", 2), ("monthly", 2)], 1);
    let destroyed = now_held.len() - expected.len();
    assert!(destroyed > 0, "the tighter policy destroys some: {now_held:?}");
    let out = ari(&world, &["plan", &job_path, "--preview"]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("job web: what zfs expiry keeps and destroys, newest first"), "{text}");
    assert!(text.contains(&format!("  {} kept, {destroyed} destroyed\n", expected.len())), "{text}");
    assert!(text.contains("keep: keep_min, daily, monthly"), "the newest, by every rule: {text}");
    assert_eq!(text.matches(" destroy\n").count(), destroyed, "{text}");
    assert_eq!(ours(&world), now_held, "the preview destroys nothing");

    // ari history says, for each snapshot, what the next run does to it.
    let out = ari(&world, &["history", &job_path, "--json"]);
    assert_exit(&out, 0);
    let history: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let backups = history["backups"].as_array().unwrap();
    assert_eq!(backups.len(), now_held.len() + 1, "the history lists another tool's snapshot too");
    for backup in backups {
        let name = format!("{DATASET}@{}", backup["name"].as_str().unwrap());
        let Some(kept_by) = backup["next_run_kept_by"].as_array() else {
            assert_eq!(name, format!("{DATASET}@manual-before-upgrade"), "only ari's are judged");
            continue;
        };
        assert_eq!(!kept_by.is_empty(), expected.contains(&name), "{name}: {kept_by:?}");
    }

    // prune --dry-run shows it and destroys nothing; prune applies it, and records no run.
    let out = ari(&world, &["prune", &job_path, "--dry-run"]);
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("{destroyed} destroyed")));
    assert_eq!(ours(&world), now_held, "a dry run destroys nothing");
    let out = ari(&world, &["prune", &job_path]);
    assert_exit(&out, 0);
    assert_eq!(names(&ours(&world)), expected);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("job web: pruned: {} kept, {destroyed} destroyed", expected.len())),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&history_file).unwrap(), history_before, "a prune is no run");
    // No snapshot was taken, no rsync ran: only the listing and the destroys.
    let calls = world.tools_called();
    let after_run: Vec<_> = calls.iter().skip_while(|c| !c.starts_with("zfs snapshot")).skip(1).collect();
    assert!(
        after_run.iter().all(|c| c.starts_with("zfs list") || c.starts_with("zfs destroy")),
        "{after_run:?}"
    );
}

#[test]
fn prune_destroys_nothing_while_the_stale_guard_holds() {
    let (world, job) = world_with_a_year("{daily: 1}", "keep_when_stale: 7d\n");
    let job = job.to_str().unwrap();
    // No run recorded: the last success is unknown, so the guard holds.
    let held = ours(&world);
    let out = ari(&world, &["prune", job]);
    assert_exit(&out, 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("  nothing is destroyed: no earlier successful run is recorded (keep_when_stale)"),
        "{text}"
    );
    assert!(text.contains("keep: stale guard"), "{text}");
    assert!(
        text.contains(
            "job web: nothing was expired: no earlier successful run is recorded (keep_when_stale)"
        ),
        "{text}"
    );
    assert_eq!(ours(&world), held);
}

#[test]
fn retention_settings_are_explained_before_anything_runs() {
    let world = World::new();
    world.fakes.add_dataset(DATASET);
    let src = world.fx.make_tree("src", &[("etc/hosts", "x\n")]);
    let bad = |keep_line: &str, expected: &str| {
        let job = world.fx.write_job(
            "web.yaml",
            &format!(
                "label: web\nbackend: zfs\ninclude: [{}/etc]\nrsync_dst: /tank/web\nzfs_hostname: localhost\ndataset_name: {DATASET}\n{keep_line}",
                src.display()
            ),
        );
        let out = ari(&world, &["run", job.to_str().unwrap()]);
        assert_exit(&out, 2);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{keep_line}: {stderr}");
    };
    bad("", "snapshot_expiration_days or zfs_keep: the zfs backend needs one");
    bad(
        "zfs_keep: {dialy: 3}\n",
        "`dialy` is none of hourly, daily, weekly, monthly, yearly (did you mean `daily`?)",
    );
    bad("zfs_keep: {daily: 0}\n", "daily: `0` is not a count from 1 to 1000000");
    bad("zfs_keep: {daily: 3, daily: 4}\n", "web.yaml:7:11: zfs_keep: `daily` is given twice");
    bad("zfs_keep: 14\n", "expected counts like {daily: 14}");
    assert!(world.tools_called().is_empty(), "nothing ran: {:?}", world.tools_called());
}
