//! The state directory trusts nothing (docs/failures.md, "The state directory"): it is private
//! whatever the umask, a symlink planted in it is never followed, a ledger another user could
//! have written never runs, a corrupt ledger stops only its own job until `ari recover --forget`
//! clears it, a corrupt history is moved aside, a history that cannot be written costs no backup,
//! `ari check` fails on a state_dir it cannot write, and a state_dir that is a symlink another
//! user could change is refused.
//!
//! Whether something ran is proved with markers: `backend: command` jobs and ledger entries run
//! `touch MARKER`. Tests that need another user run ari as uid 65534 through `setpriv`, which
//! needs root (as CI runs the tests); without root they fail saying so.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tests::fakes::Fakes;
use tests::rdiff::rdiff_backup;
use tests::{ari_bin, assert_exit, fingerprint, require_tool, run, run_with_stdin, stderr, stdout, Fixture};

/// The unprivileged user the tests run ari as.
const NOBODY: u32 = 65534;

#[track_caller]
fn assert_has(text: &str, expected: &str) {
    assert!(text.contains(expected), "`{expected}` not in:\n{text}");
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).mode() & 0o7777
}

/// A job that touches `marker` (a path in the fixture) when it runs.
fn marker_job(fx: &Fixture, label: &str) -> PathBuf {
    fx.write_job(&format!("{label}.yaml"), &format!("backend: command\ncommand: [touch, {}]\n", fx.p(label)));
    fx.path(label)
}

/// Writes a ledger for job `label` whose one entry's undo is `command` (JSON), 0600.
fn write_ledger_with(fx: &Fixture, label: &str, command: &str) -> PathBuf {
    let path = fx.path(&format!("state/ledger/{label}.json"));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = format!(
        r#"{{
  "job": "{label}", "format": 2,
  "ssh": {{"path": "ssh", "port": 22, "user": "", "options": [], "defaults": []}},
  "entries": [
    {{"id": 1, "name": "undo-{label}", "removes": "the marker of a crashed run of {label}",
      "command": {command}, "max_retries": 0, "retry_interval_seconds": 0}}
  ]
}}
"#
    );
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Writes a ledger for job `label` whose undo touches `undo-ran-LABEL`; returns (ledger, marker).
fn write_ledger(fx: &Fixture, label: &str) -> (PathBuf, PathBuf) {
    let marker = fx.path(&format!("undo-ran-{label}"));
    let command = format!(r#"{{"host": "localhost", "argv": ["touch", "{}"]}}"#, marker.display());
    (write_ledger_with(fx, label, &command), marker)
}

/// The newest run report of `ari run`.
fn last_run_report(fx: &Fixture) -> serde_json::Value {
    let mut reports: Vec<PathBuf> = fs::read_dir(fx.path("state/reports"))
        .expect("a reports directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    reports.sort();
    let path = reports.last().expect("a run report");
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// The entries of a directory whose names start with `prefix`.
fn named(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    found.sort();
    found
}

/// Fails unless the tests run as root, which running ari as another user (and chowning files to
/// it) needs.
fn require_root() {
    let uid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "this test needs root: it runs ari as uid {NOBODY} with setpriv and chowns files to that user; \
         run the tests as root (as CI does), e.g. `sudo -E cargo nextest run -p tests --test state_dir`"
    );
}

/// Lets uid 65534 reach the fixture (its root is 0700) and read its config and jobs; `state`
/// becomes that user's, as state_dir is ari's user's.
fn open_to_nobody(fx: &Fixture) {
    require_root();
    require_tool("setpriv", "util-linux");
    fs::set_permissions(fx.root(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(fx.path("jobs.d"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(fx.config_path(), fs::Permissions::from_mode(0o644)).unwrap();
    for entry in fs::read_dir(fx.path("jobs.d")).unwrap().flatten() {
        fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o644)).unwrap();
    }
    chown(&fx.path("state"), NOBODY);
}

fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}

/// `setpriv ... PROGRAM ARGS...`: a command run as uid and gid 65534, without groups.
fn as_nobody(program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .args([format!("--reuid={NOBODY}"), format!("--regid={NOBODY}"), "--clear-groups".into()])
        .arg(program)
        .env_remove("ARI_CONFIG")
        .stdin(Stdio::null());
    command
}

/// `ari --config CONFIG` as uid 65534.
fn ari_as_nobody(fx: &Fixture) -> Command {
    let mut command = as_nobody(&ari_bin());
    command.arg("--config").arg(fx.config_path());
    command
}

#[test]
fn under_umask_000_every_state_dir_is_0700_and_every_state_file_0600() {
    rdiff_backup();
    let fx = Fixture::new();
    // ari makes state_dir itself.
    fs::remove_dir(fx.path("state")).unwrap();
    let fakes = Fakes::new();
    let origin = fx.make_tree("origin", &[("etc/hosts", "127.0.0.1 localhost\n")]);
    fakes.add_volume("vg0/root", &origin);
    fs::create_dir_all(fx.path("mnt")).unwrap();
    fx.write_config(&format!("snapshot_mount_root: {}\n", fx.p("mnt")));
    // An LVM snapshot writes the ledger; rdiff-backup's version fills the cache.
    fx.write_job(
        "snap.yaml",
        "backend: command\nsnapshot: lvm\nvolumes: [{name: vg0/root, mount_point: /}]\ncommand: [ls, '{snapshot_root}/etc']\n",
    );
    fx.write_job("files.yaml", &format!("backend: rdiff\ninclude: [{}]\n", origin.display()));
    let umask_000 = |args: &[&str]| {
        let mut command = Command::new("sh");
        command
            .args(["-c", "umask 000; exec \"$0\" \"$@\""])
            .arg(ari_bin())
            .arg("--config")
            .arg(fx.config_path())
            .args(args)
            .env("PATH", fakes.path_env())
            .env_remove("ARI_CONFIG")
            .stdin(Stdio::null());
        run(&mut command)
    };
    // rdiff-backup takes one backup of a repository per second: `files` runs once, in run-all.
    assert_exit(&umask_000(&["run", "snap"]), 0);
    assert_exit(&umask_000(&["run-all"]), 0);

    let state = fx.path("state");
    let mut seen = Vec::new();
    let mut stack = vec![state.clone()];
    while let Some(dir) = stack.pop() {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        seen.push(dir.strip_prefix(&state).unwrap().display().to_string());
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else {
                assert!(meta.is_file(), "{} is no regular file", path.display());
                assert_eq!(mode(&path), 0o600, "{}", path.display());
                seen.push(path.strip_prefix(&state).unwrap().display().to_string());
            }
        }
    }
    seen.sort();
    for expected in [
        "",
        "cache",
        "cache/tool-versions.json",
        "history",
        "history/snap.json",
        "ledger",
        "locks",
        "locks/run-all.lock",
        "locks/snap.lock",
        "reports",
    ] {
        assert!(seen.iter().any(|s| s == expected), "`{expected}` not made: {seen:?}");
    }
    assert_eq!(named(&fx.path("state/reports"), "run-").len(), 2, "{seen:?}");
    fakes.assert_clean();
}

#[test]
fn a_symlink_planted_in_state_dir_is_never_followed_and_the_run_is_refused() {
    let fx = Fixture::new();
    let marker = marker_job(&fx, "db");
    let precious = fx.path("precious");
    fs::write(&precious, "precious\n").unwrap();
    fs::create_dir_all(fx.path("state/locks")).unwrap();
    std::os::unix::fs::symlink(&precious, fx.path("state/locks/db.lock")).unwrap();
    let out = run(fx.ari().args(["run", "db"]));
    assert_exit(&out, 1);
    assert_has(
        &stderr(&out),
        &format!(
            "ari (db) [ERROR] cannot take the lock of job db: {} is a symlink (to {}); ari never follows a symlink inside state_dir: remove it",
            fx.p("state/locks/db.lock"),
            precious.display()
        ),
    );
    assert_eq!(fs::read_to_string(&precious).unwrap(), "precious\n", "the symlink's target is unchanged");
    assert!(!marker.exists(), "the job ran without its lock");

    // A symlink where a directory of ari's belongs: nothing is made where it points.
    let elsewhere = fx.path("elsewhere");
    fs::create_dir_all(&elsewhere).unwrap();
    fs::remove_file(fx.path("state/locks/db.lock")).unwrap();
    fs::remove_dir(fx.path("state/locks")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, fx.path("state/locks")).unwrap();
    let out = run(fx.ari().args(["run", "db"]));
    assert_exit(&out, 1);
    assert_has(&stderr(&out), &format!("{} is a symlink (to {})", fx.p("state/locks"), elsewhere.display()));
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing was made through the symlink");
    assert!(!marker.exists(), "the job ran without its lock");
}

#[test]
fn a_ledger_of_aris_own_is_undone_which_the_refusals_below_are_measured_against() {
    let fx = Fixture::new();
    let (ledger, undo_marker) = write_ledger(&fx, "db");
    let out = run(fx.ari().args(["recover", "db"]));
    assert_exit(&out, 0);
    assert!(undo_marker.exists(), "the ledger's undo ran");
    assert!(!ledger.exists(), "an undone ledger is no file");
}

/// A ledger that others could have written, refused by `recover`, by `run` (which still runs the
/// other job named with it) and by `check`; its undo never runs.
fn assert_ledger_refused(fx: &Fixture, expected: &str) {
    let undo_marker = fx.path("undo-ran-db");
    let db = fx.path("db");
    let web = marker_job(fx, "web");
    let hint =
        "ari runs nothing from it, and job db does not run until it is cleared: see what it holds with \
                `ari recover db --show`, check by hand that what it lists is gone, then clear it with \
                `ari recover db --forget`";
    for args in [&["recover", "db"][..], &["recover"][..]] {
        let out = run(fx.ari().args(args));
        assert_exit(&out, 3);
        assert_has(&stderr(&out), &format!("ari (db) [ERROR] refusing the ledger of job db: {expected}"));
        assert_has(&stderr(&out), hint);
    }
    let out = run(fx.ari().args(["run", "db", "web"]));
    assert_exit(&out, 3);
    assert_has(&stderr(&out), expected);
    assert!(web.exists(), "the other job ran");
    assert!(!db.exists(), "the job with the refused ledger ran");
    let out = run(fx.ari().args(["check"]));
    assert_exit(&out, 2);
    assert_has(&stdout(&out), &format!("error: refusing the ledger of job db: {expected}"));
    assert!(!undo_marker.exists(), "an undo from a refused ledger ran");
}

#[test]
fn a_ledger_that_others_can_write_is_refused_and_never_run() {
    let fx = Fixture::new();
    let db = marker_job(&fx, "db");
    let (ledger, _) = write_ledger(&fx, "db");
    fs::set_permissions(&ledger, fs::Permissions::from_mode(0o666)).unwrap();
    assert_ledger_refused(
        &fx,
        &format!(
            "{} has mode 0666: its group and other users can write it, and ari runs no command from a file another user could have written",
            ledger.display()
        ),
    );
    assert!(!db.exists());
}

#[test]
fn a_ledger_owned_by_another_user_is_refused_and_never_run() {
    require_root();
    let fx = Fixture::new();
    marker_job(&fx, "db");
    let (ledger, _) = write_ledger(&fx, "db");
    chown(&ledger, NOBODY);
    assert_ledger_refused(
        &fx,
        &format!(
            "{} is owned by uid {NOBODY} (nobody) with mode 0600, not by uid 0 (root), the user ari runs as",
            ledger.display()
        ),
    );
}

/// A corrupt ledger stops only its job, with the commands that show and clear it; `--forget`
/// needs a confirmation, then the job runs again.
fn assert_corrupt_ledger_is_repaired(contents: &[u8], reason: &str, escaped: &str) {
    let fx = Fixture::new();
    let db = marker_job(&fx, "db");
    let web = marker_job(&fx, "web");
    let ledger = fx.path("state/ledger/db.json");
    fs::create_dir_all(ledger.parent().unwrap()).unwrap();
    fs::write(&ledger, contents).unwrap();
    fs::set_permissions(&ledger, fs::Permissions::from_mode(0o600)).unwrap();

    let out = run(fx.ari().args(["run", "db", "web"]));
    assert_exit(&out, 3);
    let err = stderr(&out);
    assert_has(&err, &format!("ari (db) [ERROR] the ledger {} is corrupt: {reason}", ledger.display()));
    assert_has(&err, "see what it holds with `ari recover db --show`");
    assert_has(&err, "then clear it with `ari recover db --forget`");
    assert!(web.exists(), "the other job ran");
    assert!(!db.exists(), "the job ran despite its corrupt ledger");
    let report = last_run_report(&fx);
    assert_eq!(report["jobs"][0]["outcome"], "failure", "{report:#}");
    assert_has(report["jobs"][0]["error"].as_str().unwrap(), "is corrupt");
    assert_eq!(report["jobs"][1]["outcome"], "success", "{report:#}");

    // run-all too runs the others.
    fs::remove_file(&web).unwrap();
    let out = run(fx.ari().args(["run-all"]));
    assert_exit(&out, 3);
    assert!(web.exists() && !db.exists(), "run-all ran only the job with a usable ledger");

    let before = fingerprint(&fx.path("state"));
    let out = run(fx.ari().args(["recover", "db", "--show"]));
    assert_exit(&out, 0);
    let shown = stdout(&out);
    assert_has(&shown, &format!("job db: ledger {}: corrupt: {reason}", ledger.display()));
    assert_has(&shown, &format!("its raw contents ({} bytes), escaped:\n{escaped}", contents.len()));
    assert_has(&shown, "clear it with `ari recover db --forget`");
    assert_eq!(fingerprint(&fx.path("state")), before, "--show changed state_dir");

    let out = run(fx.ari().args(["recover", "db", "--forget"]));
    assert_exit(&out, 2);
    assert_has(&stderr(&out), "not forgetting the ledger of job db without a confirmation, and stdin is no terminal to ask on: add --yes");
    assert!(ledger.exists(), "forgotten without a confirmation");

    let out = run(fx.ari().args(["recover", "db", "--forget", "--yes"]));
    assert_exit(&out, 0);
    let aside = named(&fx.path("state/ledger"), "db.json.forgotten-");
    assert_eq!(aside.len(), 1, "{}", stdout(&out));
    assert_eq!(fs::read(&aside[0]).unwrap(), contents, "the forgotten ledger is kept as it was");
    assert_eq!(mode(&aside[0]), 0o600);
    assert_has(&stdout(&out), &format!("job db: ledger forgotten: moved aside to {}", aside[0].display()));
    assert_has(&stdout(&out), "Its entries could not be read: check by hand");
    assert!(!ledger.exists());

    let out = run(fx.ari().args(["run", "db"]));
    assert_exit(&out, 0);
    assert!(db.exists(), "the job runs again");
}

#[test]
fn an_older_aris_ledger_runs_nothing_and_stops_only_its_job_until_it_is_forgotten() {
    // An older ari's ledger has no `format`, and its lvremove entries no proof of their target:
    // none of its entries runs, whichever they are.
    let fx = Fixture::new();
    let db = marker_job(&fx, "db");
    let web = marker_job(&fx, "web");
    let (ledger, undo_marker) = write_ledger(&fx, "db");
    fs::write(&ledger, fs::read_to_string(&ledger).unwrap().replace(", \"format\": 2", "")).unwrap();
    let reason = format!(
        "the ledger {} cannot be run: an older ari wrote it (it has no `format`), whose `lvremove` entries carry no proof that their target is a snapshot ari made, so this ari runs none of its entries",
        ledger.display()
    );
    let out = run(fx.ari().args(["run", "db", "web"]));
    assert_exit(&out, 3);
    assert_has(&stderr(&out), &reason);
    assert_has(&stderr(&out), "then clear it with `ari recover db --forget`");
    assert!(web.exists() && !db.exists(), "only the job with a usable ledger ran");
    let out = run(fx.ari().args(["recover", "db"]));
    assert_exit(&out, 3);
    assert!(!undo_marker.exists(), "an undo of an older ari's ledger ran");
    let out = run(fx.ari().args(["recover", "db", "--show"]));
    assert_exit(&out, 0);
    assert_has(&stdout(&out), &reason);
    assert_has(&stdout(&out), "It lists, as the file says (which ari does not trust):\n  1. undo-db\n");
    assert_exit(&run(fx.ari().args(["recover", "db", "--forget", "--yes"])), 0);
    assert!(!undo_marker.exists());
    assert_exit(&run(fx.ari().args(["run", "db"])), 0);
    assert!(db.exists(), "the job runs again");
}

#[test]
fn an_empty_ledger_stops_only_its_job_until_it_is_forgotten() {
    assert_corrupt_ledger_is_repaired(b"", "it is empty", "  (none)\n");
}

#[test]
fn forget_on_a_terminal_asks_and_only_yes_forgets() {
    let script = require_tool("script", "util-linux");
    let fx = Fixture::new();
    let ledger = fx.path("state/ledger/db.json");
    fs::create_dir_all(ledger.parent().unwrap()).unwrap();
    fs::write(&ledger, "").unwrap();
    // `script` gives ari a terminal, and types the answer into it.
    let on_a_terminal = |answer: &str| {
        let line = format!(
            "'{}' --config '{}' recover db --forget",
            ari_bin().display(),
            fx.config_path().display()
        );
        let mut command = Command::new(&script);
        command.args(["-q", "-e", "-c", &line, "/dev/null"]).env_remove("ARI_CONFIG");
        run_with_stdin(&mut command, answer.as_bytes())
    };
    for answer in ["\n", "n\n", "no\n"] {
        let out = on_a_terminal(answer);
        assert_exit(&out, 1);
        assert_has(&stdout(&out), "Forget the ledger of job db? ari will undo nothing it lists. [y/N] ");
        assert_has(&stdout(&out), "job db: nothing forgotten");
        assert!(ledger.exists(), "{answer:?} forgot the ledger");
    }
    let out = on_a_terminal("y\n");
    assert_exit(&out, 0);
    assert_has(&stdout(&out), "job db: ledger forgotten: moved aside to ");
    assert!(!ledger.exists());
    assert_eq!(named(&fx.path("state/ledger"), "db.json.forgotten-").len(), 1);
}

#[test]
fn a_truncated_ledger_stops_only_its_job_until_it_is_forgotten() {
    assert_corrupt_ledger_is_repaired(
        b"{\n  \"job\": \"db\",\n  \"ssh\": {\"pa",
        "it ends in the middle, as if cut short: EOF while parsing a string at line 3 column 13",
        "  | {\\n\n  |   \"job\": \"db\",\\n\n  |   \"ssh\": {\"pa\n",
    );
}

#[test]
fn a_ledger_entry_without_a_command_or_with_a_bad_host_is_corrupt_and_runs_nothing() {
    let check = |command: &str, reason: &str| {
        let fx = Fixture::new();
        let ledger = write_ledger_with(&fx, "db", command);
        let out = run(fx.ari().args(["recover", "db"]));
        assert_exit(&out, 3);
        assert_has(&stderr(&out), &format!("the ledger {} is corrupt: {reason}", ledger.display()));
        assert_has(&stderr(&out), "`ari recover db --forget`");
    };
    check(r#"{"host": "localhost"}"#, "a command has neither `argv` nor `shell` at line 6 column 38");
    let marker = std::env::temp_dir().join(format!("ari-state-dir-test-{}", std::process::id()));
    check(
        &format!(r#"{{"host": "localhost;touch {}", "shell": "true"}}"#, marker.display()),
        "a command's host `localhost;touch ",
    );
    assert!(!marker.exists(), "the host was read as shell syntax");
    // A refused ledger is shown as the file says, not trusted, and can be forgotten too.
    let fx = Fixture::new();
    let (ledger, undo_marker) = write_ledger(&fx, "db");
    fs::set_permissions(&ledger, fs::Permissions::from_mode(0o666)).unwrap();
    let out = run(fx.ari().args(["recover", "db", "--show"]));
    assert_exit(&out, 0);
    assert_has(&stdout(&out), "It lists, as the file says (which ari does not trust):\n  1. undo-db\n     left behind: the marker of a crashed run of db\n");
    let out = run(fx.ari().args(["recover", "db", "--forget", "--yes"]));
    assert_exit(&out, 0);
    assert_has(
        &stdout(&out),
        "Check by hand that each of these is gone, and remove what is left:\n  - the marker of a crashed run of db\n",
    );
    assert!(!undo_marker.exists());
}

#[test]
fn the_holder_named_is_the_process_that_holds_the_lock_not_the_pid_in_the_file() {
    let fx = Fixture::new();
    let db = marker_job(&fx, "db");
    // A first run makes the lock file; this test then holds the lock itself, and the file says
    // something else, as a file left by an old run would.
    assert_exit(&run(fx.ari().args(["run", "db"])), 0);
    fs::remove_file(&db).unwrap();
    let path = fx.path("state/locks/db.lock");
    let lock = fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    lock.try_lock().expect("the lock is free");
    fs::write(&path, "pid 4242 on elsewhere since 1999-01-01 00:00:00 UTC").unwrap();
    let out = run(fx.ari().args(["run", "db"]));
    assert_exit(&out, 1);
    assert_has(
        &stderr(&out),
        &format!("job db is already running (pid {}); wait for it, or use --wait", std::process::id()),
    );
    assert!(!stderr(&out).contains("elsewhere"), "{}", stderr(&out));
    assert!(!db.exists(), "the job ran while its lock was held");
    // `ari recover` has no --wait, and says so.
    let out = run(fx.ari().args(["recover", "db"]));
    assert_exit(&out, 1);
    assert_has(
        &stderr(&out),
        &format!("job db is already running (pid {}); try again once it has ended", std::process::id()),
    );
    drop(lock);
    assert_exit(&run(fx.ari().args(["run", "db"])), 0);
}

#[test]
fn another_user_cannot_open_a_jobs_lock_file() {
    let fx = Fixture::new();
    marker_job(&fx, "db");
    assert_exit(&run(fx.ari().args(["run", "db"])), 0);
    open_to_nobody(&fx);
    // Even with state_dir itself opened up by an admin, the lock's directory keeps others out.
    fs::set_permissions(fx.path("state"), fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!((mode(&fx.path("state/locks")), mode(&fx.path("state/locks/db.lock"))), (0o700, 0o600));
    let out = run(as_nobody(&require_tool("ls", "coreutils")).arg(fx.path("state")));
    assert_exit(&out, 0);
    assert_has(&stdout(&out), "locks");
    let out = run(as_nobody(&require_tool("cat", "coreutils")).arg(fx.path("state/locks/db.lock")));
    assert_exit(&out, 1);
    assert_has(&stderr(&out), "Permission denied");
}

/// A corrupt history is never read as empty nor replaced: `ari status` says so (and, with
/// max_age, flags the job), run-all's ordering and the metrics file warn (the metrics with
/// `ari_job_history_readable 0`), and only the job's next run moves it aside, saying so where
/// cron mails it, and starts a new one.
#[test]
fn a_corrupt_history_is_kept_aside_with_a_warning_by_every_reader() {
    let fx = Fixture::new();
    let db = marker_job(&fx, "db");
    let web = marker_job(&fx, "web");
    fs::create_dir_all(fx.path("metrics")).unwrap();
    fx.write_config(&format!("metrics_file: {}\n", fx.p("metrics/ari.prom")));
    let corrupt = "{\"runs\": [{\"started\": 17";
    let history = |label: &str| fx.path(&format!("state/history/{label}.json"));
    fs::create_dir_all(fx.path("state/history")).unwrap();
    for label in ["db", "web"] {
        fs::write(history(label), corrupt).unwrap();
    }
    let kept = |label: &str| {
        format!(
            "the history {} is corrupt (EOF while parsing an object at line 1 column 24): it is kept as it is until the job's next run moves it aside",
            history(label).display()
        )
    };

    // Status: an error and a row that says so; with max_age, the job counts as stale.
    let out = run(fx.ari().arg("status"));
    assert_exit(&out, 0);
    assert_has(&stderr(&out), &format!("ari [ERROR] {}", kept("db")));
    let row = stdout(&out).lines().find(|l| l.starts_with("db ")).map(str::to_string).expect("a row of db");
    assert!(row.contains("history corrupt") && row.ends_with("UNKNOWN"), "{row}");
    let out = run(fx.ari().args(["status", "--max_age", "24h"]));
    assert_exit(&out, 1);
    assert_has(&stdout(&out), "2 jobs without a success in the last 24h");
    assert_eq!(fs::read_to_string(history("db")).unwrap(), corrupt, "status changed the history");

    // The job's run moves its own history aside and says so; the metrics it writes show the
    // other job's history as unreadable.
    let out = run(fx.ari().args(["run", "db"]));
    assert_exit(&out, 0);
    assert!(db.exists());
    let aside = named(&fx.path("state/history"), "db.json.corrupt-");
    assert_eq!(aside.len(), 1);
    assert_eq!(fs::read_to_string(&aside[0]).unwrap(), corrupt, "kept as it was");
    assert_has(
        &stderr(&out),
        &format!(
            "ari (db) [ERROR] the backup succeeded, but the job's history was corrupt: it was moved aside to {} and a new one started",
            aside[0].display()
        ),
    );
    let new: serde_json::Value = serde_json::from_slice(&fs::read(history("db")).unwrap()).unwrap();
    assert_eq!(new["runs"].as_array().map(Vec::len), Some(1), "{new}");
    let report = last_run_report(&fx);
    assert_eq!(report["jobs"][0]["outcome"], "warning", "{report:#}");
    assert_has(report["jobs"][0]["warnings"][0].as_str().unwrap(), "the job's history was corrupt");
    assert_eq!(report["exit"], 0);
    let metrics = fs::read_to_string(fx.path("metrics/ari.prom")).unwrap();
    assert_has(&metrics, "ari_job_history_readable{job=\"db\"} 1\n");
    assert_has(&metrics, "ari_job_history_readable{job=\"web\"} 0\n");
    assert!(!metrics.contains("ari_job_last_run_success{job=\"web\"}"), "{metrics}");
    assert_eq!(fs::read_to_string(history("web")).unwrap(), corrupt, "another job's run left it alone");

    // run-all orders the other job as a new one, with a warning, and its run moves it aside.
    let out = run(fx.ari().args(["run-all", "--debug"]));
    assert_exit(&out, 0);
    assert!(web.exists());
    let warning = stderr(&out)
        .lines()
        .find(|l| l.contains("[WARN]") && l.contains("ordering job web as a new one"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no warning of the order in:\n{}", stderr(&out)));
    assert_has(&warning, &kept("web"));
    assert_eq!(named(&fx.path("state/history"), "web.json.corrupt-").len(), 1);
    assert!(
        stderr(&out).lines().any(|l| l.starts_with("ari (web) [ERROR]")
            && l.contains("the backup succeeded, but the job's history was corrupt: it was moved aside to ")),
        "{}",
        stderr(&out)
    );
    let out = run(fx.ari().arg("status"));
    assert_exit(&out, 0);
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
}

#[test]
fn a_history_or_report_that_cannot_be_written_costs_no_backup() {
    let fx = Fixture::new();
    // The marker is made by uid 65534, in a directory of its own.
    let out_dir = fx.path("out");
    fs::create_dir_all(&out_dir).unwrap();
    fx.write_job("db.yaml", &format!("backend: command\ncommand: [touch, {}/db]\n", out_dir.display()));
    open_to_nobody(&fx);
    chown(&out_dir, NOBODY);
    // A history directory ari's user cannot write in: as a full or read-only disk would fail.
    let history = fx.path("state/history");
    fs::create_dir_all(&history).unwrap();
    chown(&history, NOBODY);
    fs::set_permissions(&history, fs::Permissions::from_mode(0o500)).unwrap();

    let out = run(ari_as_nobody(&fx).args(["run", "db"]));
    assert_exit(&out, 0);
    assert!(out_dir.join("db").exists(), "the backup ran");
    assert_has(
        &stderr(&out),
        &format!(
            "ari (db) [ERROR] the backup succeeded, but the job's history could not be written: cannot create a temp file in {}: Permission denied (os error 13); `ari status` will not show this run",
            history.display()
        ),
    );
    let report = last_run_report(&fx);
    assert_eq!(report["exit"], 0);
    assert_eq!(report["jobs"][0]["outcome"], "warning", "{report:#}");
    assert_eq!(report["jobs"][0]["exit"], 0);
    assert_has(report["jobs"][0]["warnings"][0].as_str().unwrap(), "the job's history could not be written");

    // Nor does a report that cannot be written.
    let reports = fx.path("state/reports");
    fs::set_permissions(&reports, fs::Permissions::from_mode(0o500)).unwrap();
    fs::remove_file(out_dir.join("db")).unwrap();
    let out = run(ari_as_nobody(&fx).args(["run", "db"]));
    assert_exit(&out, 0);
    assert!(out_dir.join("db").exists(), "the backup ran");
    assert_has(
        &stderr(&out),
        &format!(
            "ari [ERROR] the backup succeeded, but the run report could not be written: cannot create a temp file in {}: Permission denied (os error 13)",
            reports.display()
        ),
    );
}

#[test]
fn check_fails_on_a_state_dir_it_cannot_write_and_writes_nothing() {
    let fx = Fixture::new();
    marker_job(&fx, "db");
    open_to_nobody(&fx);
    let state = fx.path("state");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o500)).unwrap();
    let before = fingerprint(fx.root());
    let out = run(ari_as_nobody(&fx).arg("check"));
    assert_exit(&out, 2);
    assert_has(
        &stdout(&out),
        &format!(
            "error: state_dir {} cannot be written by uid {NOBODY} (nobody): Permission denied (os error 13)\n1 problem found\n",
            state.display()
        ),
    );
    assert_eq!(fingerprint(fx.root()), before, "check wrote something");

    // A state_dir that does not exist yet: its nearest existing parent must be writable.
    let not_yet = format!("--state_dir={}/not/yet", state.display());
    let out = run(ari_as_nobody(&fx).args(["check", &not_yet]));
    assert_exit(&out, 2);
    assert_has(
        &stdout(&out),
        &format!(
            "error: state_dir {}/not/yet does not exist, and {}, where ari would make it, cannot be written by uid {NOBODY} (nobody): Permission denied (os error 13)",
            state.display(),
            state.display()
        ),
    );
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
    let out = run(ari_as_nobody(&fx).args(["check", &not_yet]));
    assert_exit(&out, 0);
    assert!(!state.join("not").exists(), "check made state_dir");
}

#[test]
fn check_and_plan_make_no_state_dir() {
    let fx = Fixture::new();
    marker_job(&fx, "db");
    fs::remove_dir(fx.path("state")).unwrap();
    let out = run(fx.ari().arg("check"));
    assert_exit(&out, 0);
    assert_has(&stdout(&out), &format!("ok: state_dir {}\n", fx.p("state")));
    assert_exit(&run(fx.ari().args(["plan", "db"])), 0);
    assert_exit(&run(fx.ari().args(["recover", "--show"])), 0);
    assert!(!fx.path("state").exists(), "a command that promises to write nothing made state_dir");
}

/// `state_dir` may be a symlink the admin made, but not one another user could change: owned by
/// another user, in a directory another user owns or may write (unless sticky), or leading
/// through such a link. Such a state_dir runs nothing and writes nothing, and `ari check` says
/// why; a link of root's in root's directory, or in a sticky one, works.
#[test]
fn a_state_dir_symlink_that_another_user_could_change_is_refused() {
    require_root();
    let fx = Fixture::new();
    let ran = marker_job(&fx, "db");
    let state = fx.path("state");
    let refused = |link: &Path, what: &str, expected: &str| {
        let state_dir = format!("--state_dir={}", link.display());
        let before = fingerprint(&state);
        let out = run(fx.ari().args(["run", "db", &state_dir]));
        assert_exit(&out, 1);
        assert!(!ran.exists(), "{what}: the job ran");
        assert_has(&stderr(&out), expected);
        assert_has(
            &stderr(&out),
            "ari keeps its ledger, the commands it runs as root, only where no other user can redirect it",
        );
        assert_eq!(fingerprint(&state), before, "{what}: something was written through the link");
        let out = run(fx.ari().args(["check", &state_dir]));
        assert_exit(&out, 2);
        let error = stdout(&out).lines().find(|l| l.starts_with("error: state_dir ")).map(str::to_string);
        assert_has(&error.unwrap_or_else(|| panic!("{what}: no error in {}", stdout(&out))), expected);
        assert_has(&stdout(&out), "\n1 problem found\n");
    };
    let works = |link: &Path, what: &str| {
        let out = run(fx.ari().args(["run", "db", &format!("--state_dir={}", link.display())]));
        assert_exit(&out, 0);
        assert!(ran.exists(), "{what}: the job did not run: {}", stderr(&out));
        fs::remove_file(&ran).unwrap();
    };

    // The admin's link, root's, in root's directory (the fixture's, 0700).
    let link = fx.path("link");
    std::os::unix::fs::symlink(&state, &link).unwrap();
    works(&link, "root's link");
    // The same link, another user's.
    chown(&link, NOBODY);
    refused(
        &link,
        "another user's link",
        &format!(
            "state_dir {} is a symlink (to {}) that uid {NOBODY} (nobody) could point anywhere (it is theirs)",
            link.display(),
            state.display()
        ),
    );
    // Root's link in a directory that others may write.
    let open = fx.path("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let in_open = open.join("state");
    std::os::unix::fs::symlink(&state, &in_open).unwrap();
    refused(
        &in_open,
        "a link in a directory others may write",
        &format!(
            "that its group and other users could point anywhere ({} has mode 0777 and is not sticky)",
            open.display()
        ),
    );
    // ... which the sticky bit makes safe, as in /tmp.
    fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
    works(&in_open, "a link of root's in a sticky directory");
    // Root's link in another user's directory.
    chown(&open, NOBODY);
    refused(&in_open, "a link in another user's directory", &format!("(they own {})", open.display()));
    // Root's link to another user's link: the second one is named.
    let hop = fx.path("hop");
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&state, &link).unwrap();
    chown(&link, NOBODY);
    std::os::unix::fs::symlink(&link, &hop).unwrap();
    refused(
        &hop,
        "a link through another user's link",
        &format!("state_dir {} is a symlink (to {}) that uid {NOBODY}", link.display(), state.display()),
    );
}
