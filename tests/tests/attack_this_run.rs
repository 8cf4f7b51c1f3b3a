//! An attack on e4f96b9 ("retention keeps what the run made"), by a reviewer who wrote none of
//! it, through the real binary and the stateful fakes: the listing before the backup (names
//! reused, a hostile listing, a failing, hanging or interrupted listing, the dry run, the plan),
//! a store host's clock that stays behind, the UNKNOWN pool, the SIGPIPE blame rule and the 30 s
//! query bound. What it found (a store host's clock that stays behind made each run destroy the
//! previous run's backup; "this run" was told by name alone; an interrupted capacity check
//! paged the pool as UNKNOWN; a deadline spent in the listing before the backup was blamed on a
//! step that never ran) is mended, and every attack is kept as a regression test.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::collections::BTreeSet;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tests::clock::{ari_in, made, real_now, snap, ten_days, text, DAY};
use tests::running::Running;
use tests::wait::eventually;
use tests::worlds::{snapshot_names, snapshot_world, zfs_calls, zfs_world};
use tests::{assert_exit, run, stderr, Fixture, World};

fn ari(world: &World, args: &[&str]) -> Output {
    ari_in(world, "UTC", args)
}

fn names(world: &World) -> BTreeSet<String> {
    snapshot_names(world)
}

/// `zfs destroy` calls ari made (not a hook's: those are filtered by the caller when needed).
fn destroys(world: &World) -> Vec<Vec<String>> {
    zfs_calls(world, "destroy")
}

fn lists(world: &World) -> usize {
    zfs_calls(world, "list").len()
}

/// The name (after `@`) that a run started now gives its snapshot (default prefix and format,
/// TZ=UTC), after waiting out the end of a minute so that the run names it in the same minute.
fn this_minutes_name() -> String {
    let second = real_now().rem_euclid(60);
    if second > 40 {
        std::thread::sleep(Duration::from_secs((61 - second) as u64));
    }
    let stamp =
        jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m-%d--%H%M").to_string();
    format!("ari-backup-{stamp}")
}

// ---------------------------------------------------------------------------------------------
// The listing before the backup: names
// ---------------------------------------------------------------------------------------------

/// Found, mended (low): "this run" is told by name alone. A snapshot that the listing before the
/// backup held, and that is gone by the time the snapshot step lists the dataset (an admin, a
/// hook, another tool destroyed it), frees its name, and the run's own snapshot takes it:
/// `free_name` picks the bare name again, the engine takes the run's backup for the old one and
/// judges it by its date. With the ZFS host's clock behind (the case e4f96b9 mends), the run
/// destroys the backup it has just made. Keying "before" by name AND creation (or createtxg /
/// guid) would tell them apart.
#[test]
fn a_reused_name_never_makes_the_run_destroy_its_own_backup() {
    let name = this_minutes_name();
    let mut seeded = ten_days();
    // A snapshot of this minute, made a little earlier (an earlier run in the same minute).
    seeded.push((snap(&name), real_now() - 20));
    // A pre hook that destroys it: between the listing before the backup and the snapshot step.
    let hook = format!("pre:\n  - command: [zfs, destroy, {}]\n", snap(&name));
    let (world, job) =
        snapshot_world(&seeded, real_now() - 365 * DAY, "snapshot_expiration_days: 30\n", &hook);
    let out = ari(&world, &["run", &job]);
    let made = made(&world);
    assert_eq!(made, [snap(&name)], "the run reused the freed name\n{}", text(&out));
    assert!(
        names(&world).contains(&made[0]),
        "the run destroyed the backup it had just made ({}), exit {:?}\n{}",
        made[0],
        out.status.code(),
        text(&out)
    );
}

/// Found (low, same cause), mended: a listing before the backup that names the snapshot the run is
/// about to make (a hostile or buggy store host; a stale listing) is enough: the snapshot step's
/// own listing does not hold it, the run takes the name, and its backup is judged by date.
#[test]
fn a_listing_that_names_the_runs_snapshot_in_advance_never_gets_it_destroyed() {
    let name = this_minutes_name();
    let zfs_now = real_now() - 365 * DAY;
    let (world, job) = snapshot_world(&ten_days(), zfs_now, "snapshot_expiration_days: 30\n", "");
    // zfs calls of a run: capacity (1), the listing before the backup (2), the snapshot step's
    // listing (3), the snapshot (4), the retention's listing (5).
    let mut listing: String = ten_days().iter().map(|(n, c)| format!("{n}\t{c}\n")).collect();
    listing.push_str(&format!("{}\t{}\n", snap(&name), zfs_now - 10));
    world.fakes.output("zfs", &[2], &listing);
    let out = ari(&world, &["run", &job]);
    let made = made(&world);
    assert_eq!(made, [snap(&name)], "{}", text(&out));
    assert!(
        names(&world).contains(&made[0]),
        "the run destroyed the backup it had just made ({}), exit {:?}\n{}",
        made[0],
        out.status.code(),
        text(&out)
    );
}

/// Held: a second run in the same minute gets `-2`, which the listing before it did not hold:
/// kept as the run's, whatever the host's clock says; and a third run, after the second's
/// retention destroyed the first (clock behind), takes the bare name again (free by then, and
/// not in its own listing before the backup): kept too.
#[test]
fn runs_in_one_minute_each_keep_their_own_backup() {
    let name = this_minutes_name();
    let (world, job) =
        snapshot_world(&ten_days(), real_now() - 365 * DAY, "snapshot_expiration_days: 30\n", "");
    for _ in 0..3 {
        let out = ari(&world, &["run", &job]);
        let last = made(&world).last().cloned().expect("a snapshot");
        assert!(names(&world).contains(&last), "{last} destroyed by its own run\n{}", text(&out));
        std::thread::sleep(Duration::from_millis(1100));
    }
    let made = made(&world);
    if made.len() == 3 && made[0].ends_with(&name) {
        assert!(made[1].ends_with(&format!("{name}-2")), "{made:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The store host's clock behind, run after run
// ---------------------------------------------------------------------------------------------

/// Found (medium), mended by judging by the store host's clock: the run's backup was kept, but
/// the next run judged it by its (wrong) date and destroyed it: with a ZFS host clock that stays
/// behind (a dead RTC battery, no NTP), every run destroyed the previous run's backup, so ari's
/// history of the dataset never held more than the last one, behind a warning each run. Now a
/// run whose backup is dated far from the server's clock judges by the store host's clock (that
/// backup's date), by which the earlier backups were dated too. Here the store host's clock is a
/// year behind and runs a day per run.
#[test]
fn a_clock_that_stays_behind_never_wipes_the_previous_runs_backup() {
    for keep in ["zfs_keep: {daily: 7, weekly: 4}\n", "snapshot_expiration_days: 30\n"] {
        // Names by the second, so that no run reuses a name that the one before freed, and
        // without a year: `creation` alone is each snapshot's time (a name that gives a date
        // and a time would be taken for it, tests/tests/attack_clock.rs), so that the engine's
        // own rule, the earlier of the two clocks, judges.
        let seconds = "zfs_snapshot_timestamp_format: \"%j-%H%M%S\"\n";
        let (world, job) = snapshot_world(&ten_days(), real_now() - 365 * DAY, keep, seconds);
        let mut said = String::new();
        for day in 0..3 {
            world.fakes.set_now(real_now() - 365 * DAY + day * DAY);
            let out = ari(&world, &["run", &job]);
            said.push_str(&text(&out));
            std::thread::sleep(Duration::from_millis(1100));
        }
        let made = made(&world);
        assert_eq!(made.len(), 3);
        let kept: Vec<&String> = made.iter().filter(|m| names(&world).contains(*m)).collect();
        assert_eq!(
            kept.len(),
            3,
            "{keep:?}: of the three backups made, only {kept:?} are left: each run destroyed the one before\n{said}"
        );
        // The ten real ones, dated by a right clock, lie in the store host's future: kept.
        assert!(ten_days().iter().all(|(name, _)| names(&world).contains(name)), "{said}");
        let report = tests::reports::last_report(&world.fx.path("state"));
        assert!(report["warnings"].to_string().contains("by the store host's clock"), "{report}");
    }
}

// ---------------------------------------------------------------------------------------------
// The listing before the backup: failing, hanging, interrupted
// ---------------------------------------------------------------------------------------------

/// Held: a listing before the backup that fails: the backup still runs, retention destroys
/// nothing and the run report says why; the next run, whose listing works, expires as usual.
#[test]
fn a_failing_listing_before_the_backup_destroys_nothing_and_says_so() {
    let (world, job) = snapshot_world(&ten_days(), real_now(), "zfs_keep: {daily: 2}\n", "");
    world.fakes.fail("zfs", &[2], 1, "cannot open 'pool/backups/web': I/O error");
    let out = ari(&world, &["run", &job]);
    assert_exit(&out, 0);
    assert_eq!(made(&world).len(), 1);
    assert!(destroys(&world).is_empty(), "{:?}\n{}", destroys(&world), text(&out));
    let report = tests::reports::last_report(&world.fx.path("state"));
    assert!(report["warnings"].to_string().contains("could not be listed before the backup"), "{report}");
    std::thread::sleep(Duration::from_millis(1100));
    let out = ari(&world, &["run", &job]);
    assert_exit(&out, 0);
    assert!(!destroys(&world).is_empty(), "{}", text(&out));
    assert!(names(&world).contains(made(&world).last().unwrap()), "{}", text(&out));
}

/// Held: a listing before the backup whose output the judgement refuses (a line that is no
/// `NAME<TAB>CREATION`) is an unknown "before": nothing destroyed, no hang, no crash.
#[test]
fn an_unreadable_listing_before_the_backup_destroys_nothing() {
    let (world, job) = snapshot_world(&ten_days(), real_now(), "zfs_keep: {daily: 2}\n", "");
    world.fakes.output("zfs", &[2], "garbage without a tab\n");
    let out = ari(&world, &["run", &job]);
    assert_exit(&out, 0);
    assert!(destroys(&world).is_empty(), "{:?}\n{}", destroys(&world), text(&out));
}

/// Held: a signal while the listing before the backup hangs (no timeout set) stops the job at
/// once: no pre hook, no snapshot, no destroy, exit 1.
#[test]
fn a_signal_during_the_listing_before_the_backup_stops_everything() {
    let (world, _) = snapshot_world(&ten_days(), real_now(), "zfs_keep: {daily: 2}\n", "");
    let marker = world.fx.path("pre-ran");
    let job =
        tests::worlds::write_zfs_job(&world, "zfs_keep: {daily: 2}\n", &tests::worlds::pre_hook(&marker));
    let job = job.to_string_lossy().into_owned();
    world.fakes.hang("zfs", &[2]);
    let mut running = Running::start(world.ari().env("TZ", "UTC").args(["run", &job]));
    assert!(eventually(|| world.fakes.calls().iter().any(|c| c.hung)), "{}", world.fakes.report());
    let clock = Instant::now();
    running.signal(libc::SIGTERM);
    let out = running.wait();
    assert!(clock.elapsed() < Duration::from_secs(15), "{:?}", clock.elapsed());
    assert_exit(&out, 1);
    assert!(made(&world).is_empty(), "{}", text(&out));
    assert!(destroys(&world).is_empty(), "{}", text(&out));
    assert!(!marker.exists(), "the pre hook ran after the signal:\n{}", text(&out));
}

/// Found, mended (low): the listing before the backup leaves no step record, and its failure is only
/// a log line below the default level: a job deadline reached while it hangs is reported as
/// "main step rsync failed: not started: the job reached job_timeout" and nothing, on stderr or
/// in the run report, names the listing that took the time.
#[test]
fn a_deadline_in_the_listing_before_the_backup_names_the_listing() {
    let (world, job) = snapshot_world(&ten_days(), real_now(), "zfs_keep: {daily: 2}\n", "job_timeout: 3s\n");
    world.fakes.hang("zfs", &[2]);
    let clock = Instant::now();
    let out = ari(&world, &["run", &job]);
    assert!(clock.elapsed() < Duration::from_secs(30), "{:?}", clock.elapsed());
    assert_exit(&out, 1);
    assert!(made(&world).is_empty() && destroys(&world).is_empty(), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("zfs list") && !err.contains("step rsync"),
        "the deadline is blamed on a step that never ran:\n{}",
        text(&out)
    );
}

/// Held: a dry run runs no listing before the backup, makes nothing and destroys nothing.
#[test]
fn a_dry_run_lists_nothing_before_the_backup() {
    let (world, job) = snapshot_world(&ten_days(), real_now(), "zfs_keep: {daily: 2}\n", "");
    let out = ari(&world, &["run", "--dry-run", &job]);
    assert_exit(&out, 0);
    assert!(made(&world).is_empty() && destroys(&world).is_empty(), "{}", text(&out));
    assert!(lists(&world) <= 2, "{} zfs list in a dry run\n{}", lists(&world), text(&out));
    assert_eq!(names(&world).len(), 10);
}

/// Held: `ari plan` says that the retention's listing runs before the backup too.
#[test]
fn the_plan_says_the_listing_runs_before_the_backup() {
    let (world, job) = snapshot_world(&ten_days(), real_now(), "zfs_keep: {daily: 2}\n", "");
    let out = ari(&world, &["plan", &job]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("the listing runs before the backup too"), "{}", text(&out));
    assert!(world.fakes.calls().is_empty(), "ari plan ran {:?}", world.fakes.calls());
}

/// Held: the stale guard still holds a run's retention (no listing before the backup either),
/// and a prune with no run recorded still destroys nothing.
#[test]
fn the_stale_guard_and_the_prune_guard_still_hold() {
    let (world, job) =
        snapshot_world(&ten_days(), real_now(), "zfs_keep: {daily: 2}\n", "keep_when_stale: 7d\n");
    let out = ari(&world, &["run", &job]);
    assert_exit(&out, 0);
    assert!(destroys(&world).is_empty(), "{}", text(&out));
    assert!(lists(&world) == 1, "only the snapshot step's listing: {}", lists(&world));
    let (world, job) = snapshot_world(&ten_days(), real_now(), "zfs_keep: {daily: 2}\n", "");
    let out = ari(&world, &["prune", &job]);
    assert!(destroys(&world).is_empty(), "{}", text(&out));
}

// ---------------------------------------------------------------------------------------------
// UNKNOWN pool
// ---------------------------------------------------------------------------------------------

fn metrics(world: &World) -> String {
    std::fs::read_to_string(world.fx.path("metrics/ari.prom")).expect("the metrics file")
}

/// Found, mended (low): a run interrupted (SIGTERM: a systemd stop, a shutdown) while `zpool status`
/// runs records the pool as UNKNOWN: the metrics turn `ari_job_pool_healthy` to 0, and the
/// critical AriPoolNotOnline ("A FAULTED, UNAVAIL or SUSPENDED pool...") fires for a healthy
/// pool until the next run. Only a status that failed or could not be read says anything of
/// the pool; an interrupted (or a connection that failed, arguably) one does not.
#[test]
fn an_interrupted_pool_check_does_not_mark_the_pool_unknown() {
    let (world, job, _marker) = zfs_world("", "");
    assert_exit(&world.run(&job), 0);
    assert!(metrics(&world).contains("state=\"ONLINE\"} 1"), "{}", metrics(&world));
    world.fakes.hang("zpool", &[2]);
    let mut running = Running::start(world.ari().arg("run").arg(&job));
    assert!(eventually(|| world.fakes.calls().iter().any(|c| c.hung)), "{}", world.fakes.report());
    running.signal(libc::SIGTERM);
    let out = running.wait();
    assert_exit(&out, 1);
    assert!(
        !metrics(&world).contains("state=\"UNKNOWN\""),
        "a SIGTERM during zpool status pages the pool as not ONLINE:\n{}",
        metrics(&world)
    );
}

/// Held: the pool's name in the metrics is the job's own (the dataset's first part), never what
/// a hostile `zpool status` prints: a `pool:` line with quotes and a newline is refused, and
/// the label stays `pool`.
#[test]
fn a_hostile_pool_status_cannot_inject_a_label() {
    let (world, job, _marker) = zfs_world("", "");
    world.fakes.output("zpool", &[1], "  pool: pool\"} 1\nevil{x=\"\n state: ONLINE\"} 1\n");
    let out = world.run(&job);
    assert_exit(&out, 1);
    let m = metrics(&world);
    assert!(m.contains("ari_job_pool_healthy{job=\"web\",pool=\"pool\",state=\"UNKNOWN\"} 0"), "{m}");
    assert!(!m.contains("evil"), "{m}");
}

// ---------------------------------------------------------------------------------------------
// SIGPIPE blame
// ---------------------------------------------------------------------------------------------

/// A local rdiff job with one command dump `db` (YAML `command`, `extra` inside its map).
fn dump_job(fx: &Fixture, command: &str, extra: &str) -> std::path::PathBuf {
    let src = fx.make_tree("src", &[("a", "1")]);
    fx.write_job(
        "web.yaml",
        &format!("include: [{}]\ndumps:\n  - {{name: db, command: {command}{extra}}}\n", src.display()),
    )
}

/// Held: a stream whose only failure is a 141 (a dump script whose own pipe broke, a shell's
/// SIGPIPE status) still fails the job, and the previous dump stays.
#[test]
fn a_stream_whose_only_failure_is_a_broken_pipe_still_fails() {
    tests::rdiff::rdiff_backup();
    require_zstd();
    let fx = Fixture::new();
    fx.write_config("");
    let good = dump_job(&fx, "[sh, -c, 'seq 1 1000']", ", compress: zstd");
    assert_exit(&run(fx.ari().arg("run").arg(&good)), 0);
    let kept = fx.path("store/.ari-dumps/.incoming/web/db.dump.zst");
    let before = std::fs::read(&kept).expect("the first dump");
    // The source: its output whole, then 141 (`yes | head` under pipefail, say).
    let job = dump_job(&fx, "[sh, -c, 'seq 1 2000; exit 141']", ", compress: zstd");
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    assert_eq!(std::fs::read(&kept).unwrap(), before, "the previous dump stays\n{}", text(&out));
    // The source killed by a real SIGPIPE, with nothing downstream at fault.
    let job = dump_job(&fx, "[sh, -c, 'seq 1 2000; kill -PIPE $$']", ", compress: zstd");
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    assert_eq!(std::fs::read(&kept).unwrap(), before, "the previous dump stays\n{}", text(&out));
}

/// Held: a compressor that reads all, writes a cut stream and exits 141 of its own (no one
/// closed its output) fails the job though no other stage failed.
#[test]
fn a_compressor_ending_141_alone_fails_the_dump() {
    tests::rdiff::rdiff_backup();
    let zstd = require_zstd();
    let fx = Fixture::new();
    fx.write_config("");
    let job = dump_job(&fx, "[sh, -c, 'seq 1 200000']", ", compress: zstd");
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let kept = fx.path("store/.ari-dumps/.incoming/web/db.dump.zst");
    let before = std::fs::read(&kept).expect("the first dump");
    fx.write_script(
        "bin/zstd",
        &format!(
            "#!/bin/sh\ncase \" $* \" in *' -t '*) exec {zstd} \"$@\" ;; esac\n{zstd} -q -c | head -c 100\ncat >/dev/null\nexit 141\n"
        ),
    );
    let path = format!("{}:{}", fx.p("bin"), std::env::var("PATH").unwrap());
    let out = run(fx.ari().arg("run").arg(&job).env("PATH", path));
    assert_exit(&out, 1);
    assert_eq!(std::fs::read(&kept).unwrap(), before, "the previous dump stays\n{}", text(&out));
}

fn require_zstd() -> String {
    tests::require_tool("zstd", "zstd");
    let found = String::from_utf8(run(Command::new("sh").args(["-c", "command -v zstd"])).stdout).unwrap();
    found.trim().to_string()
}
