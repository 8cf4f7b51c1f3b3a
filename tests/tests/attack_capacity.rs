//! Attacks on the capacity check (issue 21, item 4), by a reviewer who did not write it: hostile
//! `zpool status`, `zfs get` and `stat` output, `min_free_space` values, the command line, the
//! dry run, `ari check`, the ssh filter, the metrics file, and the rdiff store's path.
//!
//! Each attack is kept as a regression test. Those marked "Found by the attack" found a defect
//! at 207a89b, since mended: a FAULTED or SUSPENDED pool hidden behind the space query that
//! failed or hung after it (and metrics that kept saying ONLINE), a store of size 0 that passed
//! a percentage, raw terminal escapes from a hostile `scan:` line, `ari check` unbounded by
//! `job_timeout`, and a refused store that ari gave no way out of (the refusal now names `ari
//! prune`, and `ari prune --force` frees it whatever the stale guard says).

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tests::rdiff::rdiff_backup;
use tests::worlds::{pre_hook, zfs_world as zfs_world_with};
use tests::{ari_bin, assert_exit, require_tool, run, stderr, stdout, Fixture, World};

const DATASET: &str = "pool/backups/web";
const GIB: u64 = 1 << 30;

fn zfs_world(extra: &str) -> (World, PathBuf, PathBuf) {
    zfs_world_with("", extra)
}

fn snapshot_taken(zfs: &World) -> bool {
    zfs.fakes.calls_of("zfs").iter().any(|call| call.args[0] == "snapshot")
}

fn metrics(zfs: &World) -> String {
    std::fs::read_to_string(zfs.fx.path("metrics/ari.prom")).expect("the metrics file")
}

/// The job did not start: exit 1, no hook, no snapshot.
#[track_caller]
fn assert_refused_before_anything(zfs: &World, out: &Output, marker: &Path, what: &str) {
    assert_eq!(out.status.code(), Some(1), "{what}: not refused\n{}", stderr(out));
    assert!(!marker.exists(), "{what}: the pre hook ran\n{}", stderr(out));
    assert!(!snapshot_taken(zfs), "{what}: a snapshot was taken");
}

/// `ari ARGS` with `dir` (tools of the test's own) before the fakes on PATH, killed after
/// `limit` whatever happens (so that a hang fails the test rather than holding it).
fn ari_with_tools(
    zfs: &World,
    dir: Option<&Path>,
    limit: u64,
    args: &[&std::ffi::OsStr],
) -> (Output, Duration) {
    let mut path = std::ffi::OsString::new();
    if let Some(dir) = dir {
        path.push(dir);
        path.push(":");
    }
    path.push(zfs.fakes.path_env());
    let mut command = Command::new("/usr/bin/timeout");
    command
        .args(["-s", "KILL", &limit.to_string()])
        .arg(ari_bin())
        .arg("--config")
        .arg(zfs.fx.config_path())
        .args(args)
        .env("PATH", path)
        .env_remove("ARI_CONFIG")
        .stdin(Stdio::null());
    let clock = Instant::now();
    let out = run(&mut command);
    (out, clock.elapsed())
}

/// A `zpool` of the test's own in `hostile/` that runs `body` (sh), before the fakes on PATH.
fn hostile_tool(zfs: &World, tool: &str, body: &str) -> PathBuf {
    zfs.fx.write_script(&format!("hostile/{tool}"), &format!("#!/bin/sh\n{body}\n"));
    zfs.fx.path("hostile")
}

const HEALTHY: &str = "  pool: pool
 state: ONLINE
  scan: scrub repaired 0B in 00:00:01 with 0 errors on Sun Dec  6 00:24:01 2026
config:

\tNAME        STATE     READ WRITE CKSUM
\tpool        ONLINE       0     0     0
\t  vdc       ONLINE       0     0     0

errors: No known data errors
";

// ---------------------------------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------------------------------

/// Found by the attack (F1). The pool's status is read first "because a broken pool is what a failing space query
/// would hide" (contract/capacity.rs), but `engine::capacity::check` runs every step before it
/// reads any: when the pool is FAULTED or SUSPENDED and `zfs get` then fails (what a real
/// faulted pool does: its datasets cannot be opened), the refusal names the `zfs get` error,
/// not the pool, and no reading is recorded, so the metrics keep the previous run's
/// `ari_job_pool_healthy{state="ONLINE"} 1` and AriPoolNotOnline never fires.
#[test]
fn a_faulted_pool_is_named_and_shown_though_the_space_query_fails_after_it() {
    let (zfs, job, marker) = zfs_world("");
    assert_exit(&zfs.run(&job), 0);
    assert!(metrics(&zfs).contains("ari_job_pool_healthy{job=\"web\",pool=\"pool\",state=\"ONLINE\"} 1"));
    std::fs::remove_file(&marker).unwrap();
    let snapshots_before = zfs.fakes.calls_of("zfs").iter().filter(|c| c.args[0] == "snapshot").count();

    zfs.fakes.set_pool("pool", "FAULTED", None);
    zfs.fakes.fail_matching(
        "zfs",
        "available,used",
        1,
        "cannot open 'pool/backups/web': pool I/O is currently suspended",
    );
    let out = zfs.run(&job);
    assert_exit(&out, 1);
    assert!(!marker.exists(), "the pre hook ran");
    assert_eq!(
        zfs.fakes.calls_of("zfs").iter().filter(|c| c.args[0] == "snapshot").count(),
        snapshots_before,
        "a snapshot was taken"
    );
    let text = metrics(&zfs);
    let err = stderr(&out);
    // What should hold: the refusal names the pool's state, and the metrics show it.
    assert!(
        text.contains("ari_job_pool_healthy{job=\"web\",pool=\"pool\",state=\"FAULTED\"} 0"),
        "the metrics still say:\n{}",
        text.lines().filter(|l| l.contains("pool_healthy")).collect::<Vec<_>>().join("\n")
    );
    assert!(
        err.contains("the pool pool under the store pool/backups/web is FAULTED"),
        "the refusal hides the pool:\n{err}"
    );
}

/// Found by the attack (F1b). The same with a space query that hangs (a SUSPENDED pool's datasets block): ari already
/// knows the pool is SUSPENDED but waits for `zfs get` until command_timeout (forever when it
/// is unset, the default), then names the timeout, not the pool.
#[test]
fn a_suspended_pool_refuses_without_waiting_for_a_hanging_space_query() {
    let (zfs, job, marker) = zfs_world_with("command_timeout: 5s\n", "");
    zfs.fakes.set_pool("pool", "SUSPENDED", None);
    zfs.fakes.hang("zfs", &[1]);
    let (out, took) = ari_with_tools(&zfs, None, 60, &["run".as_ref(), job.as_os_str()]);
    assert_refused_before_anything(&zfs, &out, &marker, "suspended");
    let err = stderr(&out);
    assert!(err.contains("is SUSPENDED, not ONLINE or DEGRADED"), "the refusal hides the pool:\n{err}");
    assert!(took < Duration::from_secs(5), "waited {took:?} on a query of a pool already known SUSPENDED");
}

/// Found by the attack (F2). A percentage threshold on a store that reports a size of 0 asks for 0 bytes, so a store
/// with nothing free passes `min_free_space: 10%` (while `min_free_space: 1` refuses it). A
/// FUSE filesystem without statfs reports 0 blocks; a dataset cannot, but a reading of `0 0`
/// is no store to back up into either way.
#[test]
fn a_store_of_zero_bytes_is_refused_by_a_share() {
    let (zfs, job, marker) = zfs_world("min_free_space: 10%\n");
    zfs.fakes.set_space(DATASET, 0, 0);
    let out = zfs.run(&job);
    assert_refused_before_anything(&zfs, &out, &marker, "0 bytes free of 0");
}

/// Found by the attack (F3). A `scan:` line that reads `scrub repaired` but lacks ` with N ` or ` on ` is quoted raw
/// in the error (pool.rs `a scrub line without its errors/time`, not through `shown`): a hostile
/// ZFS host's terminal escapes reach ari's stderr, the syslog and `ari status` as they are.
#[test]
fn a_hostile_scan_line_s_escapes_never_reach_the_terminal() {
    for scan in [
        "scrub repaired \u{1b}]2;owned\u{7}\u{1b}[2J everything",
        "scrub repaired 0B with 0 errors \u{1b}[31mred\u{1b}[0m",
    ] {
        let (zfs, job, marker) = zfs_world("");
        zfs.fakes.output_matching(
            "zpool",
            "status",
            &HEALTHY.replace("scrub repaired 0B in 00:00:01 with 0 errors on Sun Dec  6 00:24:01 2026", scan),
        );
        let out = zfs.run(&job);
        assert_refused_before_anything(&zfs, &out, &marker, scan);
        let err = stderr(&out);
        assert!(
            !err.contains('\u{1b}') && !err.contains('\u{7}'),
            "raw control characters on stderr: {err:?}"
        );
        let reports = std::fs::read_dir(zfs.fx.path("state/reports")).unwrap();
        for report in reports {
            let text = std::fs::read_to_string(report.unwrap().path()).unwrap();
            // JSON escapes them, which is fine; `ari status` prints them back, so check it.
            let _ = text;
        }
        let status = run(zfs.ari().arg("status"));
        assert!(
            !stdout(&status).contains('\u{1b}'),
            "raw control characters in ari status: {:?}",
            stdout(&status)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Attacks that held
// ---------------------------------------------------------------------------------------------

/// Hostile `zpool status` output: each is refused before anything runs, and none crashes ari
/// (exit 1, never 101).
#[test]
fn hostile_pool_status_is_refused_before_anything() {
    let long_state = "A".repeat(40);
    let cases: Vec<(&str, String)> = vec![
        ("nothing", String::new()),
        ("another pool's status", HEALTHY.replace("pool: pool", "pool: other")),
        (
            "another pool first, then ours FAULTED",
            format!(
                "{}{}",
                HEALTHY.replace("pool: pool", "pool: other"),
                HEALTHY.replace("state: ONLINE", "state: FAULTED")
            ),
        ),
        ("no state line", HEALTHY.replace(" state: ONLINE\n", "")),
        ("no pool line", HEALTHY.replace("  pool: pool\n", "")),
        ("an error line with state: in it", "cannot open 'pool': state: ONLINE\n".to_string()),
        ("a lowercase state", HEALTHY.replace("state: ONLINE", "state: online")),
        ("a state of two words", HEALTHY.replace("state: ONLINE", "state: ONLINE NOW")),
        ("a state with a digit", HEALTHY.replace("state: ONLINE", "state: ONLINE2")),
        ("a state of 40 capitals", HEALTHY.replace("state: ONLINE", &format!("state: {long_state}"))),
        ("an empty state", HEALTHY.replace("state: ONLINE", "state:")),
        ("a state that is no state", HEALTHY.replace("state: ONLINE", "state: HEALTHY")),
        ("a pool name with a suffix", HEALTHY.replace("pool: pool", "pool: pool2")),
        ("February 30th", HEALTHY.replace("Sun Dec  6 00:24:01 2026", "Mon Feb 30 00:24:01 2026")),
        ("the 25th hour", HEALTHY.replace("Sun Dec  6 00:24:01 2026", "Sun Dec  6 25:24:01 2026")),
        ("a five-digit year", HEALTHY.replace("Sun Dec  6 00:24:01 2026", "Sun Dec  6 00:24:01 99999")),
        ("a negative year", HEALTHY.replace("Sun Dec  6 00:24:01 2026", "Sun Dec  6 00:24:01 -2026")),
        ("a scrub time that is a number", HEALTHY.replace("Sun Dec  6 00:24:01 2026", "1796516641")),
        ("a scrub with a negative error count", HEALTHY.replace("with 0 errors", "with -1 errors")),
    ];
    for (what, printed) in cases {
        let (zfs, job, marker) = zfs_world("");
        zfs.fakes.output_matching("zpool", "status", &printed);
        let out = zfs.run(&job);
        assert_refused_before_anything(&zfs, &out, &marker, what);
        assert!(stderr(&out).contains("capacity step pool health failed"), "{what}: {}", stderr(&out));
        assert!(!stderr(&out).contains("panicked"), "{what}: {}", stderr(&out));
    }
}

/// What a real `zpool status` prints in odd but real cases is read as what it is: a state
/// line's carriage return or trailing blanks, a weekday that does not match its date (ari does
/// not judge it), a scrub still running, a resilver.
#[test]
fn odd_but_readable_pool_status_runs_or_refuses_by_its_state() {
    let cases: Vec<(&str, String, i32)> = vec![
        ("CRLF line ends", HEALTHY.replace('\n', "\r\n"), 0),
        ("a resilver", HEALTHY.replace("scrub repaired", "resilvered"), 0),
        ("a canceled scrub", HEALTHY.replace("scrub repaired 0B in 00:00:01 with 0 errors on", "scrub canceled on"), 0),
        // Trimmed, it is no `scrub in progress since TIME` line: another scan, not judged.
        ("a running scrub with no time", HEALTHY.replace("scrub repaired 0B in 00:00:01 with 0 errors on Sun Dec  6 00:24:01 2026", "scrub in progress since "), 0),
        ("a running scrub", HEALTHY.replace("scrub repaired 0B in 00:00:01 with 0 errors on", "scrub in progress since"), 0),
        ("FAULTED with a second, ONLINE state line later", HEALTHY.replace("state: ONLINE", "state: FAULTED") + " state: ONLINE\n", 1),
        ("a status paragraph that mentions a state", HEALTHY.replace(
            "  scan:",
            "status: One or more devices is currently being resilvered.\n\tstate: the pool will continue to function\naction: Wait.\n  scan:",
        ), 0),
    ];
    for (what, printed, code) in cases {
        let (zfs, job, marker) = zfs_world("");
        zfs.fakes.output_matching("zpool", "status", &printed);
        let out = zfs.run(&job);
        assert_exit(&out, code);
        assert_eq!(marker.exists(), code == 0, "{what}: {}", stderr(&out));
    }
}

/// Hostile `zfs get` output: refused, and never a figure ari made up.
#[test]
fn hostile_space_figures_are_refused_before_anything() {
    let cases = [
        ("negative", "-1\n5\n"),
        ("a float", "1.5\n2\n"),
        ("exponent", "1e3\n0\n"),
        ("a unit", "12G\n3G\n"),
        ("zfs's dash", "-\n-\n"),
        ("hex", "0x10\n0\n"),
        ("a plus sign", "+5\n0\n"),
        ("full-width digits", "\u{ff11}\u{ff12}\n0\n"),
        ("CRLF", "5\r\n0\r\n"),
        ("a third line", "5\n0\n7\n"),
        ("one line", "5\n"),
        ("no newline", "5\n0"),
        ("a blank line first", "\n5\n0\n"),
        ("the sum overflows", "18446744073709551615\n1\n"),
        ("one past u64", "18446744073709551616\n0\n"),
        ("21 digits", "000000000000000000001\n0\n"),
        ("a tab-separated line", "5\t0\n"),
        ("headers", "VALUE\n5\n0\n"),
    ];
    for (what, printed) in cases {
        let (zfs, job, marker) = zfs_world("");
        zfs.fakes.output_matching("zfs", "available,used", printed);
        let out = zfs.run(&job);
        assert_refused_before_anything(&zfs, &out, &marker, what);
        assert!(stderr(&out).contains("capacity step store space failed"), "{what}: {}", stderr(&out));
    }
}

/// u64's extremes are figures like any other: all of u64 free passes 100%, one byte short
/// does not, and the metrics show the figures exactly.
#[test]
fn space_at_u64_extremes_is_judged_exactly() {
    let (zfs, job, marker) = zfs_world("min_free_space: 100%\n");
    zfs.fakes.output_matching("zfs", "available,used", "18446744073709551615\n0\n");
    assert_exit(&zfs.run(&job), 0);
    assert!(marker.exists());
    assert!(metrics(&zfs).contains(&format!(
        "ari_job_store_size_bytes{{job=\"web\",store=\"{DATASET}\"}} 18446744073709551615"
    )));
    let (zfs, job, marker) = zfs_world("min_free_space: 100%\n");
    zfs.fakes.output_matching("zfs", "available,used", "18446744073709551614\n1\n");
    assert_refused_before_anything(&zfs, &zfs.run(&job), &marker, "one byte used of u64");
    // The largest byte threshold against the largest store.
    let (zfs, job, marker) = zfs_world("min_free_space: 16777215T\n");
    zfs.fakes.output_matching("zfs", "available,used", "18446744073709551615\n0\n");
    assert_exit(&zfs.run(&job), 0);
    assert!(marker.exists());
}

/// Output ari cannot or must not read whole: non-UTF-8, more than ari keeps, slow output under
/// command_timeout; each refuses the job and none hangs it.
#[test]
fn unreadable_huge_and_slow_pool_output_refuses_the_job() {
    let cases = [
        ("non-UTF-8 state", "printf '  pool: pool\\n state: ONLINE\\377\\n'", 30),
        ("non-UTF-8 pool name", "printf '  pool: pool\\377\\n state: ONLINE\\n'", 30),
        (
            "20 MiB of states",
            "printf '  pool: pool\\n state: ONLINE\\n'; head -c 20971520 /dev/zero | tr '\\0' 'A'",
            60,
        ),
        ("slow output", "printf '  pool: pool\\n'; sleep 600; printf ' state: ONLINE\\n'", 60),
        (
            "a child that keeps the pipe",
            "printf '  pool: pool\\n state: ONLINE\\n'; (sleep 600 &) ; exit 0",
            60,
        ),
    ];
    for (what, body, limit) in cases {
        let (zfs, job, marker) = zfs_world_with("command_timeout: 3s\n", "");
        let dir = hostile_tool(&zfs, "zpool", body);
        let (out, took) = ari_with_tools(&zfs, Some(&dir), limit, &["run".as_ref(), job.as_os_str()]);
        if what == "a child that keeps the pipe" {
            // The pool status is whole and ONLINE: the job runs, after OUTPUT_GRACE at most.
            assert_exit(&out, 0);
            assert!(took < Duration::from_secs(30), "{what}: took {took:?}");
            continue;
        }
        assert_refused_before_anything(&zfs, &out, &marker, what);
        assert!(took < Duration::from_secs(limit - 5), "{what}: took {took:?}");
        assert!(stderr(&out).contains("capacity step pool health failed"), "{what}: {}", stderr(&out));
    }
}

/// job_timeout stops a capacity check that hangs when command_timeout is unset.
#[test]
fn job_timeout_stops_a_hanging_capacity_check() {
    let (zfs, job, marker) = zfs_world("job_timeout: 3s\n");
    zfs.fakes.hang("zpool", &[1]);
    let (out, took) = ari_with_tools(&zfs, None, 60, &["run".as_ref(), job.as_os_str()]);
    assert_refused_before_anything(&zfs, &out, &marker, "hanging zpool");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// `min_free_space` values: what is refused at load, and what the accepted ones mean.
#[test]
fn min_free_space_values_are_read_strictly() {
    let fx = Fixture::new();
    let job = |value: &str| {
        fx.write_job(
            "web.yaml",
            &format!(
                "label: web\nbackend: zfs\ninclude: [/etc]\nrsync_dst: zfs1:/tank/web\nzfs_hostname: zfs1\ndataset_name: {DATASET}\nsnapshot_expiration_days: 60\nmin_free_space: {value}\n"
            ),
        )
    };
    for bad in [
        "0",
        "\"0\"",
        "0%",
        "101%",
        "\"1e3\"",
        "-5G",
        "\"5 G\"",
        "\" 10%\"",
        "10.5.5%",
        "NaN%",
        ".nan",
        ".inf",
        "-.inf",
        "-5",
        "0.5",
        "99999999999T",
        "\"+5G\"",
        "\"10%%\"",
        "\"0.00001%\"",
        "12345678901234567890",
        "\"\u{661}\u{662}\"",
        "[1G]",
        "{a: 1}",
        "true",
        "~",
        "\"\"",
        "1_000",
        "\"1G \"",
        "\"5%\\n\"",
    ] {
        let out = run(fx.ari().arg("plan").arg(job(bad)));
        assert_exit(&out, 2);
        assert!(stderr(&out).contains("min_free_space"), "{bad}: {}", stderr(&out));
    }
    for good in ["100%", "0.0001%", "50G", "4096", "\"5GB\"", "1e3", "0x10", "1.0"] {
        let out = run(fx.ari().arg("plan").arg(job(good)));
        assert_exit(&out, 0);
    }
}

/// YAML's numbers (`1e3`, `0x10`) are bytes as YAML reads them; judged as such.
#[test]
fn yaml_numbers_for_min_free_space_are_the_bytes_yaml_reads() {
    for (value, available, code) in [("1e3", 999, 1), ("1e3", 1000, 0), ("0x10", 15, 1), ("0x10", 16, 0)] {
        let (zfs, job, marker) = zfs_world(&format!("min_free_space: {value}\n"));
        zfs.fakes.set_space(DATASET, available, GIB);
        let out = zfs.run(&job);
        assert_exit(&out, code);
        assert_eq!(marker.exists(), code == 0, "{value} {available}: {}", stderr(&out));
    }
}

/// The command line: refuse_degraded_pool and min_free_space set there win over the job's.
#[test]
fn the_command_line_sets_the_check_both_ways() {
    let (zfs, job, marker) = zfs_world("");
    zfs.fakes.set_pool("pool", "DEGRADED", None);
    for args in [
        &["--refuse-degraded-pool"][..],
        &["--set", "refuse_degraded_pool=true"],
        &["--min-free-space", "200G"],
    ] {
        let out = run(zfs.ari().arg("run").arg(&job).args(args));
        assert_refused_before_anything(&zfs, &out, &marker, &format!("{args:?}"));
    }
    let (zfs, job, marker) = zfs_world("refuse_degraded_pool: true\nmin_free_space: 200G\n");
    zfs.fakes.set_pool("pool", "DEGRADED", None);
    let out =
        run(zfs.ari().arg("run").arg(&job).args(["--refuse-degraded-pool=false", "--min-free-space", "1G"]));
    assert_exit(&out, 0);
    assert!(marker.exists());
}

/// A dry run calls nothing on the ZFS host, however hostile it is, and writes no reading.
#[test]
fn a_dry_run_reads_nothing_and_records_nothing() {
    let (zfs, job, marker) = zfs_world("min_free_space: 1G\n");
    let dir = hostile_tool(&zfs, "zpool", "touch \"$0.ran\"; printf '  pool: pool\\n state: FAULTED\\n'");
    let (out, _) =
        ari_with_tools(&zfs, Some(&dir), 60, &["run".as_ref(), job.as_os_str(), "--dry-run".as_ref()]);
    assert_exit(&out, 0);
    assert!(!dir.join("zpool.ran").exists(), "a dry run ran zpool");
    assert!(zfs.fakes.calls().is_empty(), "{:?}", zfs.tools_called());
    assert!(!marker.exists());
    let text = std::fs::read_to_string(zfs.fx.path("metrics/ari.prom")).unwrap_or_default();
    assert!(!text.contains("ari_job_store_"), "a dry run wrote a reading:\n{text}");
}

/// `ari check` without `--connect` runs nothing on a remote ZFS host (no ssh at all: an ssh
/// of the test's own on PATH would leave a mark).
#[test]
fn ari_check_without_connect_does_not_touch_a_remote_host() {
    let zfs = World::new();
    let dir = hostile_tool(&zfs, "ssh", "touch \"$0.ran\"; exit 255");
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [/etc]\nrsync_dst: zfs1:/tank/web\nzfs_hostname: zfs1\ndataset_name: {DATASET}\nsnapshot_expiration_days: 60\nssh_path: {}\nmin_free_space: 100%\n",
            dir.join("ssh").display()
        ),
    );
    let (out, _) = ari_with_tools(&zfs, Some(&dir), 60, &["check".as_ref(), job.as_os_str()]);
    assert!(!dir.join("ssh.ran").exists(), "ari check ran ssh: {}", stderr(&out));
    assert!(zfs.fakes.calls().is_empty(), "{:?}", zfs.tools_called());
    assert!(!stdout(&out).contains("job web: the store"), "{}", stdout(&out));
}

/// The ssh filter lets the two capacity commands through exactly: nothing appended, changed or
/// cut is let through.
#[test]
fn the_filter_lets_only_the_exact_capacity_commands_through() {
    let zfs = World::new();
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [/etc]\nrsync_dst: zfs1:/tank/web\nzfs_hostname: zfs1\ndataset_name: {DATASET}\nsnapshot_expiration_days: 60\n"
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
        .unwrap()
        .to_string();
    let path = zfs.fx.write_script("filter", &filter);
    // The filter execs what it allows with /bin/sh -c: `true`-like stand-ins on PATH show it.
    let bin = zfs.fx.path("allowed-bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["zpool", "zfs"] {
        zfs.fx.write_script(&format!("allowed-bin/{tool}"), "#!/bin/sh\necho ran \"$@\"\n");
    }
    let through = |command: &str| {
        run(Command::new(&path)
            .env("SSH_ORIGINAL_COMMAND", command)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display())))
    };
    for allowed in
        ["env TZ=UTC zpool status pool", &format!("zfs get -H -p -o value available,used {DATASET}")]
    {
        let out = through(allowed);
        assert_exit(&out, 0);
        assert!(stdout(&out).starts_with("ran "), "{allowed}: {}", stdout(&out));
    }
    for refused in [
        "env TZ=UTC zpool status pool; id".to_string(),
        "env TZ=UTC zpool status pool -v".to_string(),
        "env TZ=UTC zpool status".to_string(),
        "env TZ=UTC zpool status pool other".to_string(),
        "env TZ=UTC zpool status other".to_string(),
        "env TZ=UTC LD_PRELOAD=/tmp/x.so zpool status pool".to_string(),
        "env TZ=UTC zpool status pool\nid".to_string(),
        "env TZ=UTC zpool status $(id)".to_string(),
        "env TZ=UTC zpool  status pool".to_string(),
        "zpool status pool".to_string(),
        format!("zfs get -H -p -o value all {DATASET}"),
        format!("zfs get -H -p -o value available,used {DATASET} pool/other"),
        format!("zfs get -H -p -o value available,used -r {DATASET}"),
        format!("zfs get -H -p -o value available,used {DATASET}/../other"),
        "zfs get -H -p -o value available,used pool".to_string(),
    ] {
        let out = through(&refused);
        assert_exit(&out, 126);
        assert!(stdout(&out).is_empty(), "{refused:?} ran: {}", stdout(&out));
    }
}

/// The pool is the dataset's first part, whatever the dataset: a dataset that is its pool, and
/// names that would make `zpool status` read more than the pool are refused at load.
#[test]
fn the_pool_is_the_dataset_s_first_part_and_odd_datasets_are_refused_at_load() {
    let fx = Fixture::new();
    let plan = |dataset: &str| {
        let job = fx.write_job(
            "web.yaml",
            &format!(
                "label: web\nbackend: zfs\ninclude: [/etc]\nrsync_dst: zfs1:/tank/web\nzfs_hostname: zfs1\ndataset_name: \"{dataset}\"\nsnapshot_expiration_days: 60\n"
            ),
        );
        run(fx.ari().arg("plan").arg(job).arg("--json"))
    };
    let out = plan("tank");
    assert_exit(&out, 0);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["steps"][0]["argv"], serde_json::json!(["env", "TZ=UTC", "zpool", "status", "tank"]));
    for bad in [
        "",
        "/tank/x",
        "-v/x",
        "tank//x",
        "tank/",
        "1tank/x",
        "tank@s",
        "tank#b",
        "tank x/y",
        "tank/x;id",
        "-",
        ".",
        "tank/\u{1b}x",
        "tank\n/x",
    ] {
        let out = plan(bad);
        assert_exit(&out, 2);
    }
}

/// Labels the metrics file takes from the job (a store path with `"` and `\`) are escaped as
/// Prometheus's text format wants them; nothing a host prints becomes a label but the state,
/// which is a word of capitals.
#[test]
fn metrics_labels_are_escaped() {
    rdiff_backup();
    require_tool("unshare", "util-linux");
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.path("metrics")).unwrap();
    fx.write_config(&format!("metrics_file: {}\n", fx.p("metrics/ari.prom")));
    let store = fx.path("st\"o\\re");
    std::fs::create_dir_all(&store).unwrap();
    let src = fx.make_tree("src", &[("etc/hosts", "127.0.0.1\n")]);
    let yaml_store = store.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\"");
    let job = fx.write_job(
        "web.yaml",
        &format!("include: [{}]\nbackup_store_path: \"{yaml_store}\"\nmin_free_space: 100%\n", src.display()),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 1);
    let text = std::fs::read_to_string(fx.path("metrics/ari.prom")).unwrap();
    let escaped = store.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\"");
    assert!(
        text.contains(&format!("ari_job_store_available_bytes{{job=\"web\",store=\"{escaped}\"}} ")),
        "{text}"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        // Every sample line is NAME{LABELS} VALUE with its quotes balanced once escapes are dropped.
        let unescaped = line.replace("\\\\", "").replace("\\\"", "");
        assert_eq!(unescaped.matches('"').count() % 2, 0, "{line}");
    }
}

/// The rdiff store: a symlinked `backup_store_path` is measured where it leads; a missing one
/// is refused at load, saying so.
#[test]
fn an_rdiff_store_through_a_symlink_is_measured_where_it_leads_and_a_missing_one_refuses() {
    rdiff_backup();
    require_tool("unshare", "util-linux");
    let fx = Fixture::new();
    let marker = fx.path("pre-ran");
    let src = fx.make_tree("src", &[("etc/hosts", "127.0.0.1\n")]);
    std::fs::create_dir_all(fx.path("real")).unwrap();
    let _ = std::fs::remove_dir(fx.path("store"));
    std::os::unix::fs::symlink(fx.path("real"), fx.path("store")).unwrap();
    let job = fx.write_job(
        "web.yaml",
        &format!("include: [{}]\n{}min_free_space: 3M\n", src.display(), pre_hook(&marker)),
    );
    let quote = |text: &str| format!("'{}'", text.replace('\'', "'\\''"));
    let script = format!(
        "mount -t tmpfs -o size=4m tmpfs {real} && head -c 2097152 /dev/zero > {real}/fill && exec {ari} --config {config} run {job}",
        real = quote(&fx.p("real")),
        ari = quote(&ari_bin().to_string_lossy()),
        config = quote(&fx.config_path().to_string_lossy()),
        job = quote(&job.to_string_lossy()),
    );
    let out = run(Command::new("unshare").args(["-m", "sh", "-c", &script]).env_remove("ARI_CONFIG"));
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("has 2.0 MiB free"), "{}", stderr(&out));
    assert!(!marker.exists());

    // A missing store is refused when the job is loaded, before any check: nothing ran.
    std::fs::remove_file(fx.path("store")).unwrap();
    let out = run(fx.ari().arg("run").arg(&job));
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("does not exist: create it"), "{}", stderr(&out));
    assert!(!marker.exists());
}

/// A hostile host cannot make a label or a sample line of its own: the only thing it prints
/// that reaches the metrics file is the state (capitals) and figures (u64).
#[test]
fn a_hostile_state_word_reaches_the_metrics_only_as_capitals() {
    let (zfs, job, marker) = zfs_world("");
    zfs.fakes.output_matching(
        "zpool",
        "status",
        &HEALTHY.replace("state: ONLINE", "state: ONLINE\"} 1\nari_job_last_run_success{job=\"web\"} 1\n#"),
    );
    let out = zfs.run(&job);
    assert_refused_before_anything(&zfs, &out, &marker, "injection");
    // What could not be read is recorded as UNKNOWN, never as what the host printed.
    let text = metrics(&zfs);
    assert!(text.contains("ari_job_pool_healthy{job=\"web\",pool=\"pool\",state=\"UNKNOWN\"} 0"), "{text}");
    assert!(
        !text.contains("state=\"ONLINE") && !text.contains("ari_job_last_run_success{job=\"web\"} 1"),
        "{text}"
    );
    let (zfs, job, marker) = zfs_world("");
    zfs.fakes.set_pool("pool", "PWNEDSTATEWORDOFCAPITALS", None);
    let out = zfs.run(&job);
    assert_refused_before_anything(&zfs, &out, &marker, "an unknown state");
    assert!(metrics(&zfs).contains("state=\"PWNEDSTATEWORDOFCAPITALS\"} 0"));
}

/// `ari prune --force` is not refused by a full store (it frees space) but a real run is.
#[test]
fn a_full_store_refuses_a_run_but_not_a_prune() {
    let (zfs, job, marker) = zfs_world("min_free_space: 50%\n");
    let old = format!("{DATASET}@ari-backup-old");
    zfs.fakes.add_zfs_snapshot(&old, jiff::Timestamp::now().as_second() - 400 * 86_400);
    // zfs_keep_min keeps the newest: a recent one besides.
    zfs.fakes
        .add_zfs_snapshot(&format!("{DATASET}@ari-backup-new"), jiff::Timestamp::now().as_second() - 86_400);
    zfs.fakes.set_space(DATASET, 1, GIB);
    assert_refused_before_anything(&zfs, &zfs.run(&job), &marker, "full");
    assert!(zfs.fakes.zfs_snapshots().iter().any(|(name, _)| *name == old));
    // The refused run counts as a failed one: a plain prune holds, as the refusal says --force.
    let out = run(zfs.ari().arg("prune").arg(&job));
    assert_exit(&out, 0);
    assert!(zfs.fakes.zfs_snapshots().iter().any(|(name, _)| *name == old), "{}", stderr(&out));
    let out = run(zfs.ari().arg("prune").arg(&job).arg("--force"));
    assert_exit(&out, 0);
    assert!(
        !zfs.fakes.zfs_snapshots().iter().any(|(name, _)| *name == old),
        "prune kept the expired snapshot: {}\n{:?}",
        stderr(&out),
        zfs.tools_called()
    );
}

/// Found by the attack (F5). `ari check` reads a local store's capacity (a zfs job on localhost, every rdiff job)
/// even without `--connect`, through a runner with command_timeout but without job_timeout: a
/// hanging `zpool status` (a SUSPENDED pool) or `stat` (a hung NFS store) holds `ari check`
/// forever when command_timeout is unset, though the job's job_timeout would stop a run.
#[test]
fn ari_check_is_bounded_by_job_timeout_on_a_hanging_local_capacity_query() {
    let (zfs, job, _marker) = zfs_world("job_timeout: 3s\n");
    zfs.fakes.hang("zpool", &[1]);
    let (out, took) = ari_with_tools(&zfs, None, 30, &["check".as_ref(), job.as_os_str()]);
    assert!(took < Duration::from_secs(25), "ari check hung for {took:?} (killed): {}", stderr(&out));
    assert_exit(&out, 2);
}

/// Found by the attack (F6). A store below `min_free_space` is never freed by ari: the run is refused before the
/// ZFS expiry (and rdiff retention) that would have destroyed expired backups and brought the
/// store back above the threshold, so the job stays refused until someone runs `ari prune`
/// (which the refusal does not mention, and which the stale guard holds once
/// `keep_when_stale` has passed). Before the check, the same store (10% free, not full)
/// backed up and expired as usual.
#[test]
fn a_space_refusal_says_how_to_free_the_store() {
    let (zfs, job, marker) = zfs_world("min_free_space: 10%\n");
    let now = jiff::Timestamp::now().as_second();
    let old = format!("{DATASET}@ari-backup-old");
    zfs.fakes.add_zfs_snapshot(&old, now - 400 * 86_400);
    zfs.fakes.add_zfs_snapshot(&format!("{DATASET}@ari-backup-new"), now - 86_400);
    // 9% free: below the threshold, far from full.
    zfs.fakes.set_space(DATASET, 9 * GIB, 91 * GIB);
    let out = zfs.run(&job);
    assert_refused_before_anything(&zfs, &out, &marker, "9% free");
    let err = stderr(&out);
    let expired = !zfs.fakes.zfs_snapshots().iter().any(|(name, _)| *name == old);
    assert!(
        expired || err.contains("ari prune"),
        "the expired snapshot is kept and the refusal does not say how to free the store:\n{err}"
    );
}

/// Found by the attack (F6b). With `keep_when_stale`, `ari prune` itself does not free a store whose runs the check
/// refuses: the refused runs are no success, so the stale guard holds every expiry, and the
/// job stays refused for good.
#[test]
fn prune_force_frees_a_refused_store_whatever_the_stale_guard_says() {
    let (zfs, job, marker) = zfs_world("min_free_space: 10%\nkeep_when_stale: 7d\n");
    let now = jiff::Timestamp::now().as_second();
    let old = format!("{DATASET}@ari-backup-old");
    zfs.fakes.add_zfs_snapshot(&old, now - 400 * 86_400);
    zfs.fakes.add_zfs_snapshot(&format!("{DATASET}@ari-backup-new"), now - 86_400);
    zfs.fakes.set_space(DATASET, 9 * GIB, 91 * GIB);
    assert_refused_before_anything(&zfs, &zfs.run(&job), &marker, "9% free");
    // A plain prune keeps them: the stale guard holds (the refused runs are no success).
    let out = run(zfs.ari().arg("prune").arg(&job));
    assert!(zfs.fakes.zfs_snapshots().iter().any(|(name, _)| *name == old), "{}", stderr(&out));
    let out = run(zfs.ari().arg("prune").arg(&job).arg("--force"));
    assert_exit(&out, 0);
    assert!(
        !zfs.fakes.zfs_snapshots().iter().any(|(name, _)| *name == old),
        "prune kept the expired snapshot (exit {:?}): {}",
        out.status.code(),
        stderr(&out)
    );
}

/// Found by the attack (F2b). The same on a real filesystem: a tmpfs mounted with `size=0` (no limit) reports
/// `4096 0 0` to `stat --file-system`; `min_free_space: 10%` passes it, while `min_free_space:
/// 1` refuses it though it has room: a size of 0 means the filesystem does not say, and ari
/// judges it as a store that is both empty and full.
#[test]
fn a_filesystem_that_reports_no_size_is_judged_alike_by_a_share_and_a_byte_count() {
    rdiff_backup();
    require_tool("unshare", "util-linux");
    let fx = Fixture::new();
    let marker = fx.path("pre-ran");
    let src = fx.make_tree("src", &[("etc/hosts", "127.0.0.1\n")]);
    let quote = |text: &str| format!("'{}'", text.replace('\'', "'\\''"));
    let mut codes = Vec::new();
    for threshold in ["10%", "1"] {
        let job = fx.write_job(
            "web.yaml",
            &format!("include: [{}]\n{}min_free_space: {threshold}\n", src.display(), pre_hook(&marker)),
        );
        let script = format!(
            "mount -t tmpfs -o size=0 tmpfs {store} && exec {ari} --config {config} run {job}",
            store = quote(&fx.p("store")),
            ari = quote(&ari_bin().to_string_lossy()),
            config = quote(&fx.config_path().to_string_lossy()),
            job = quote(&job.to_string_lossy()),
        );
        let out = run(Command::new("unshare").args(["-m", "sh", "-c", &script]).env_remove("ARI_CONFIG"));
        codes.push((threshold, out.status.code(), marker.exists()));
        let _ = std::fs::remove_file(&marker);
    }
    // Whatever ari decides for a store of unknown size, it must decide the same for both.
    // (threshold, exit, whether the job started)
    assert_eq!(codes[0].2, codes[1].2, "{codes:?}");
}
