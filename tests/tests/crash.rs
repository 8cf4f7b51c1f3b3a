//! After a crash, one run gets back to green (docs/failures.md, "When ari itself dies"): ari is
//! SIGKILLed at several moments of a real rdiff-backup backup, local and from the harness's
//! sshd, each moment chosen by an event (the store's `current_mirror` markers, its
//! `increments/` files, the rdiff-backup process in the process table), never by a time. Then
//! the job's next `ari run` exits 0, or `ari recover` alone puts the store back to its last
//! complete backup; either way `rdiff-backup verify` of the store passes.
//!
//! The killed rdiff-backup is ended by ari's death (`PR_SET_PDEATHSIG`) and, on this machine,
//! stays a zombie of pid 1, which never reaps: rdiff-backup's own check takes that pid as its
//! session still running. ari's ledger proves it gone. A recorded process that still runs (a
//! faked record of a live process) holds the repair and the job back, and says why; a record
//! whose pid another process has now is gone, though rdiff-backup would think it runs.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::thread;
use std::time::{Duration, Instant};

use tests::rdiff::{backup_times, now, options_at, rdiff_backup};
use tests::wait::WAIT_LIMIT;
use tests::{run, run_ok, stderr, stdout, Fixture, Running, Sshd};

/// How many files the source holds: enough that a backup takes a second or more, far longer
/// than the few milliseconds a test needs to see an event and kill ari.
const FILES: usize = 1000;
/// How often the tests look for an event.
const POLL: Duration = Duration::from_millis(5);
/// How long any ari here may run before the test calls it hung: a backup takes seconds, a
/// repair waits at most half a minute for a live process.
const RUN_LIMIT: Duration = Duration::from_secs(240);

/// The moment ari is killed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// During the first backup: the mirror's first files are in the store, no marker yet.
    FirstBackup,
    /// During the second: rdiff-backup is in the process table, a child of ari.
    Started,
    /// During the second: its `current_mirror` marker has joined the first one.
    Marked,
    /// During the second: reverse increments are being written.
    Incrementing,
}

/// A job backing up a source of [`FILES`] files into the fixture's store: from the backup
/// server itself, or from the harness's sshd.
struct Crash {
    fx: Fixture,
    /// Keeps the sshd running for a remote source.
    sshd: Option<Sshd>,
    job: PathBuf,
    src: PathBuf,
    scenario: String,
}

impl Crash {
    fn new(remote: bool, scenario: &str) -> Crash {
        Crash::with_config(remote, scenario, "")
    }

    /// A job whose config also has the YAML lines `extra`.
    fn with_config(remote: bool, scenario: &str, extra: &str) -> Crash {
        rdiff_backup();
        let sshd = remote.then(Sshd::start);
        let fx = Fixture::new();
        // `{fixture}` in the extra lines is the fixture's directory.
        let mut config = format!("command_timeout: 3m\n{}", extra.replace("{fixture}", &fx.p("")));
        if let Some(sshd) = &sshd {
            config.push_str(&sshd.config_yaml());
        }
        fx.write_config(&config);
        let files: Vec<(String, String)> =
            (0..FILES).map(|i| (format!("data/f{i:04}"), format!("{i:04} {}\n", "x".repeat(2000)))).collect();
        let borrowed: Vec<(&str, &str)> = files.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
        let src = fx.make_tree("src", &borrowed);
        let host = sshd.as_ref().map_or("localhost", |s| s.host_alias());
        let job = fx.write_job(
            "db.yaml",
            &format!("label: db\nsource_hostname: {host}\ninclude: [{}]\n", src.display()),
        );
        let scenario = format!("{} source: {scenario}", if remote { "remote" } else { "local" });
        Crash { fx, sshd, job, src, scenario }
    }

    fn store(&self) -> PathBuf {
        self.fx.path("store/db")
    }

    fn ledger(&self) -> PathBuf {
        self.fx.path("state/ledger/db.json")
    }

    /// A complete first backup, an hour ago (rdiff-backup names a backup by its second).
    fn first_backup(&self) -> u64 {
        let time = now() - 3600;
        let out = self.run(&["--set", &options_at(time)]);
        self.assert_exit(&out, 0);
        time
    }

    /// Changes every file, so that the next backup writes an increment of each.
    fn change_every_file(&self) {
        for entry in fs::read_dir(self.src.join("data")).expect("read the source") {
            let path = entry.expect("a source file").path();
            let mut text = fs::read_to_string(&path).expect("read a source file");
            text.push_str("changed\n");
            fs::write(&path, text).expect("change a source file");
        }
    }

    /// `ari run db ARGS...`, to its end.
    fn run(&self, args: &[&str]) -> Output {
        self.finish(Running::start(self.fx.ari().arg("run").arg(&self.job).args(args)))
    }

    /// `ari recover db`, to its end.
    fn recover(&self) -> Output {
        self.finish(Running::start(self.fx.ari().args(["recover", "db"])))
    }

    /// Waits for ari to exit, for at most [`RUN_LIMIT`] (a hang fails the test).
    fn finish(&self, mut ari: Running) -> Output {
        let deadline = Instant::now() + RUN_LIMIT;
        loop {
            if let Some(status) = ari.child.try_wait().expect("poll ari") {
                return ari.output(status);
            }
            if Instant::now() >= deadline {
                let _ = ari.child.kill();
                let status = ari.child.wait().expect("reap ari");
                let out = ari.output(status);
                panic!("ari did not exit within {RUN_LIMIT:?}\n{}", self.context(&out));
            }
            thread::sleep(POLL);
        }
    }

    /// Starts `ari run db`, waits for `moment`, and SIGKILLs ari there; returns ari's output
    /// and the pid of the rdiff-backup it had started, when the process table showed it.
    fn kill_at(&self, moment: Moment) -> (Output, Option<u32>) {
        let mut ari = Running::start(self.fx.ari().arg("run").arg(&self.job));
        let deadline = Instant::now() + WAIT_LIMIT;
        let mut tool = None;
        loop {
            tool = tool.or_else(|| child_named(ari.pid(), "rdiff-backup", &self.store()));
            let data = self.store().join("rdiff-backup-data");
            let reached = match moment {
                Moment::FirstBackup => {
                    markers(&self.store()) == 0 && self.store().join(self.mirror_of("data/f0000")).exists()
                }
                Moment::Started => tool.is_some(),
                Moment::Marked => markers(&self.store()) == 2,
                Moment::Incrementing => {
                    markers(&self.store()) == 2
                        && fs::read_dir(data.join("increments")).is_ok_and(|mut dir| dir.next().is_some())
                }
            };
            if reached {
                break;
            }
            if let Some(status) = ari.child.try_wait().expect("poll ari") {
                let out = ari.output(status);
                panic!("ari ended before {moment:?}\n{}", self.context(&out));
            }
            assert!(Instant::now() < deadline, "no {moment:?} within {WAIT_LIMIT:?}: {}", self.scenario);
            thread::sleep(POLL);
        }
        ari.child.kill().expect("SIGKILL ari");
        let status = ari.child.wait().expect("reap ari");
        let out = ari.output(status);
        assert_eq!(status.signal(), Some(libc::SIGKILL), "ari had ended by itself\n{}", self.context(&out));
        (out, tool)
    }

    /// Where the store mirrors a path of the source.
    fn mirror_of(&self, relative: &str) -> PathBuf {
        self.src.strip_prefix("/").expect("an absolute source").join(relative)
    }

    /// `rdiff-backup verify` of the store must pass.
    fn assert_verified(&self) {
        run_ok(std::process::Command::new(rdiff_backup()).arg("verify").arg(self.store()));
    }

    /// The store mirrors the source as it is now.
    fn assert_mirrors_the_source(&self) {
        let mirrored = tests::read_tree(&self.store().join(self.mirror_of("")), &[]);
        assert_eq!(mirrored, tests::read_tree(&self.src, &[]), "the store does not mirror the source");
    }

    fn assert_exit(&self, out: &Output, code: i32) {
        assert_eq!(out.status.code(), Some(code), "expected exit {code}\n{}", self.context(out));
    }

    fn assert_stderr(&self, out: &Output, text: &str) {
        assert!(stderr(out).contains(text), "ari's stderr lacks {text:?}\n{}", self.context(out));
    }

    /// What a failure message needs: the scenario, ari's output, the ledger, the store's data.
    fn context(&self, out: &Output) -> String {
        let ledger = fs::read_to_string(self.ledger()).unwrap_or_else(|_| "(no ledger file)".into());
        let data: Vec<String> = fs::read_dir(self.store().join("rdiff-backup-data"))
            .map(|dir| dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let sshd = self.sshd.as_ref().map(|s| s.log_tail()).unwrap_or_default();
        format!(
            "scenario: {}\nari's exit: {}\n--- stderr ---\n{}--- stdout ---\n{}--- ledger ---\n{ledger}\n--- rdiff-backup-data ---\n{data:?}\n{sshd}",
            self.scenario,
            out.status,
            stderr(out),
            stdout(out),
        )
    }

    /// The ledger as JSON.
    fn ledger_json(&self) -> serde_json::Value {
        serde_json::from_slice(&fs::read(self.ledger()).expect("a ledger after the kill"))
            .expect("a JSON ledger")
    }

    /// The pid every repair in the ledger waits for.
    fn recorded_pid(&self) -> u64 {
        let ledger = self.ledger_json();
        let pids: Vec<u64> = ledger["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .filter_map(|entry| entry["after"]["pid"].as_u64())
            .collect();
        assert_eq!(pids.len(), 2, "both repairs wait for the session's process: {ledger:#}");
        assert_eq!(pids[0], pids[1], "{ledger:#}");
        pids[0]
    }
}

/// How many `current_mirror` markers the store holds: one after a complete backup, two while a
/// session runs (or after one that did not end).
fn markers(store: &Path) -> usize {
    fs::read_dir(store.join("rdiff-backup-data")).map_or(0, |dir| {
        dir.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("current_mirror.")).count()
    })
}

/// The pid of a child of `parent` whose command name is `name` and one of whose arguments is
/// `argument`, from the process table (the backup's rdiff-backup names the store; the version
/// query before it does not).
fn child_named(parent: u32, name: &str, argument: &Path) -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|entry| {
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        let stat = fs::read_to_string(entry.path().join("stat")).ok()?;
        let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
        let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
        let cmdline = fs::read(entry.path().join("cmdline")).ok()?;
        let named = cmdline.split(|b| *b == 0).any(|arg| arg == argument.as_os_str().as_encoded_bytes());
        (ppid == parent && comm == name && named).then_some(pid)
    })
}

/// The state letter and start time (field 22) of process `pid`, while it has an entry.
fn state_and_start(pid: u32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    Some((fields.first()?.chars().next()?, fields.get(19)?.parse().ok()?))
}

/// The killed session as the store shows it, for a kill during the second backup: its marker
/// beside the first one.
fn assert_interrupted(crash: &Crash, out: &Output) {
    assert_eq!(markers(&crash.store()), 2, "the killed session's marker\n{}", crash.context(out));
}

/// Kills ari at `moment` of the second backup (or the first), then runs the job once: exit 0,
/// the store verified, holding the first backup and the new one.
fn then_the_next_run(remote: bool, moment: Moment) {
    let crash = Crash::new(remote, &format!("SIGKILL at {moment:?}, then the next run"));
    let first = (moment != Moment::FirstBackup).then(|| crash.first_backup());
    crash.change_every_file();
    let (out, tool) = crash.kill_at(moment);
    match moment {
        Moment::FirstBackup => {
            assert_eq!(
                markers(&crash.store()),
                0,
                "killed before the first backup ended\n{}",
                crash.context(&out)
            )
        }
        Moment::Marked | Moment::Incrementing => assert_interrupted(&crash, &out),
        Moment::Started => {}
    }
    let recorded = crash.recorded_pid();
    if let Some(tool) = tool {
        assert_eq!(recorded, u64::from(tool), "the ledger records the rdiff-backup ari started");
    }
    let out = crash.run(&[]);
    crash.assert_exit(&out, 0);
    crash.assert_stderr(&out, "recovered them before the job ran");
    assert!(!crash.ledger().exists(), "the ledger is empty\n{}", crash.context(&out));
    crash.assert_verified();
    crash.assert_mirrors_the_source();
    let times = backup_times(&crash.store());
    match first {
        Some(first) => assert!(times.len() == 2 && times[0] == first, "{times:?}\n{}", crash.context(&out)),
        None => assert_eq!(times.len(), 1, "{times:?}\n{}", crash.context(&out)),
    }
}

/// Kills ari at `moment` of the second backup, then `ari recover db` alone: exit 0, the store
/// back at the first backup, verified; no backup ran.
fn then_ari_recover(remote: bool, moment: Moment) {
    then_ari_recover_with(remote, moment, "");
}

/// [`then_ari_recover`] with the config lines `extra`.
fn then_ari_recover_with(remote: bool, moment: Moment, extra: &str) {
    let crash =
        Crash::with_config(remote, &format!("SIGKILL at {moment:?}, then ari recover ({extra})"), extra);
    let first = crash.first_backup();
    let mirrored = tests::read_tree(&crash.store().join(crash.mirror_of("")), &[]);
    crash.change_every_file();
    let (out, _) = crash.kill_at(moment);
    assert_interrupted(&crash, &out);
    let out = crash.recover();
    crash.assert_exit(&out, 0);
    assert!(stdout(&out).contains("job db: recovered"), "{}", crash.context(&out));
    assert!(stdout(&out).contains("job db: undone: regress the store"), "{}", crash.context(&out));
    assert_eq!(markers(&crash.store()), 1, "regressed\n{}", crash.context(&out));
    assert!(!crash.ledger().exists(), "the ledger is empty\n{}", crash.context(&out));
    crash.assert_verified();
    assert_eq!(backup_times(&crash.store()), [first], "back at the first backup");
    let now_mirrored = tests::read_tree(&crash.store().join(crash.mirror_of("")), &[]);
    assert!(now_mirrored == mirrored, "the mirror is the first backup's again\n{}", crash.context(&out));
}

#[test]
fn local_killed_during_the_first_backup_then_the_next_run() {
    then_the_next_run(false, Moment::FirstBackup);
}

#[test]
fn local_killed_once_rdiff_backup_runs_then_the_next_run() {
    then_the_next_run(false, Moment::Started);
}

#[test]
fn local_killed_once_the_session_is_marked_then_the_next_run() {
    then_the_next_run(false, Moment::Marked);
}

#[test]
fn local_killed_while_increments_are_written_then_the_next_run() {
    then_the_next_run(false, Moment::Incrementing);
}

#[test]
fn local_killed_once_the_session_is_marked_then_ari_recover() {
    then_ari_recover(false, Moment::Marked);
}

#[test]
fn local_killed_while_increments_are_written_then_ari_recover() {
    then_ari_recover(false, Moment::Incrementing);
}

/// The original's command line regresses with `--check-destination-dir`.
#[test]
fn legacy_command_line_killed_while_increments_are_written_then_ari_recover() {
    then_ari_recover_with(false, Moment::Incrementing, "rdiff_backup_cli: legacy\n");
}

#[test]
fn remote_killed_during_the_first_backup_then_the_next_run() {
    then_the_next_run(true, Moment::FirstBackup);
}

#[test]
fn remote_killed_while_increments_are_written_then_the_next_run() {
    then_the_next_run(true, Moment::Incrementing);
}

#[test]
fn remote_killed_once_the_session_is_marked_then_ari_recover() {
    then_ari_recover(true, Moment::Marked);
}

/// With rdiff-backup's API 201, an interrupted first backup leaves its lock file, which
/// rdiff-backup then takes for a first backup still running; ari removes it once the session is
/// proven gone.
#[test]
fn a_first_backup_of_api_201_killed_leaves_a_lock_that_the_next_run_clears() {
    let crash = Crash::with_config(
        false,
        "API 201: SIGKILL during the first backup, then the next run",
        // rdiff_backup_options refuses `--api-version` (it changes what ari reads), so the job
        // reaches API 201 through an rdiff-backup_path that asks for it on every call.
        "rdiff_backup_path: {fixture}/rdiff-backup-api-201\n",
    );
    let wrapper = crash.fx.path("rdiff-backup-api-201");
    fs::write(&wrapper, "#!/bin/sh\nexec rdiff-backup --api-version 201 \"$@\"\n")
        .expect("write the wrapper");
    fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod the wrapper");
    let (out, _) = crash.kill_at(Moment::FirstBackup);
    assert!(
        crash.store().join("rdiff-backup-data/lock.yml").exists() && markers(&crash.store()) == 0,
        "the interrupted first backup's lock\n{}",
        crash.context(&out)
    );
    let out = crash.run(&[]);
    crash.assert_exit(&out, 0);
    crash.assert_stderr(&out, "clear the lock of the interrupted first backup");
    crash.assert_verified();
    crash.assert_mirrors_the_source();
}

/// ari gets SIGTERM during the second backup: it stops rdiff-backup, and regresses the store in
/// the same run (the job fails, exit 1); the next run needs no recovery and exits 0.
#[test]
fn a_backup_stopped_by_a_signal_is_regressed_in_the_same_run() {
    let crash = Crash::new(false, "SIGTERM while increments are written");
    let first = crash.first_backup();
    crash.change_every_file();
    let mut ari = Running::start(crash.fx.ari().arg("run").arg(&crash.job));
    let deadline = Instant::now() + WAIT_LIMIT;
    while !(markers(&crash.store()) == 2
        && fs::read_dir(crash.store().join("rdiff-backup-data/increments"))
            .is_ok_and(|mut d| d.next().is_some()))
    {
        assert!(ari.child.try_wait().expect("poll ari").is_none(), "ari ended before the increments");
        assert!(Instant::now() < deadline, "no increments within {WAIT_LIMIT:?}");
        thread::sleep(POLL);
    }
    ari.signal(libc::SIGTERM);
    let out = crash.finish(ari);
    crash.assert_exit(&out, 1);
    crash.assert_stderr(&out, "was stopped: ari was interrupted");
    assert_eq!(markers(&crash.store()), 1, "regressed in the same run\n{}", crash.context(&out));
    assert!(!crash.ledger().exists(), "nothing left for recovery\n{}", crash.context(&out));
    crash.assert_verified();
    assert_eq!(backup_times(&crash.store()), [first]);
    let out = crash.run(&[]);
    crash.assert_exit(&out, 0);
    assert!(!stderr(&out).contains("a crashed run left"), "{}", crash.context(&out));
    crash.assert_verified();
}

/// A live process of this test's, killed and reaped when the test ends, however it ends.
struct Live(std::process::Child);

impl Live {
    fn start() -> Live {
        Live(std::process::Command::new("sleep").arg("600").spawn().expect("start sleep"))
    }

    fn id(&self) -> u32 {
        self.0.id()
    }

    fn is_running(&mut self) -> bool {
        self.0.try_wait().expect("poll sleep").is_none()
    }

    /// Kills and reaps it: its pid then names nothing.
    fn end(&mut self) {
        if self.is_running() {
            self.0.kill().expect("kill the sleep");
        }
        self.0.wait().expect("reap the sleep");
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until the killed session's rdiff-backup (the pid its repairs wait for) has ended, gone
/// or a zombie: a test that fakes the record must not race the real process's last writes.
fn wait_until_the_session_ended(crash: &Crash) {
    let pid = u32::try_from(crash.recorded_pid()).expect("a pid");
    assert!(
        tests::eventually(|| state_and_start(pid).is_none_or(|(state, _)| state == 'Z')),
        "the killed session's rdiff-backup (pid {pid}) still runs after {WAIT_LIMIT:?}"
    );
}

/// Rewrites the process record of every repair in the ledger.
fn fake_record(crash: &Crash, pid: u32, start_ticks: u64) {
    let mut ledger = crash.ledger_json();
    for entry in ledger["entries"].as_array_mut().expect("entries") {
        if entry.get("after").is_some() {
            entry["after"]["pid"] = pid.into();
            entry["after"]["start_ticks"] = start_ticks.into();
        }
    }
    // Written as ari writes it: a file of its own user, mode 0600.
    fs::write(crash.ledger(), serde_json::to_vec_pretty(&ledger).unwrap()).expect("rewrite the ledger");
}

/// A session whose recorded process still runs (a faked record of a live process of this
/// test's) is not regressed: ari waits for it, says why, leaves the store and the ledger as
/// they are, and the job does not run (exit 3). Once the process has ended, `ari recover`
/// regresses the store.
#[test]
fn a_recorded_process_that_still_runs_holds_the_repair_and_the_job_back() {
    let (crash, first) = killed_while_incrementing("a live recorded process");
    let mut live = Live::start();
    let (_, start) = state_and_start(live.id()).expect("the sleep runs");
    fake_record(&crash, live.id(), start);
    // The session's marker names the recorded process, as rdiff-backup's own would.
    rewrite_newest_marker(&crash, live.id());
    let before = tests::fingerprint(&crash.store());

    let out = crash.run(&[]);
    let held = live.is_running();
    crash.assert_exit(&out, 3);
    assert!(held, "the sleep ended during the run");
    crash.assert_stderr(
        &out,
        &format!(
            "recovery step regress the store failed: not run: pid {} (sleep), started by the step it repairs, is still running after 30s",
            live.id()
        ),
    );
    crash.assert_stderr(&out, "the job does not run while its ledger holds what a crashed run left (exit 3)");
    assert_eq!(tests::fingerprint(&crash.store()), before, "the store was touched\n{}", crash.context(&out));
    assert!(crash.ledger().exists());

    live.end();
    let out = crash.recover();
    crash.assert_exit(&out, 0);
    assert_eq!(markers(&crash.store()), 1, "{}", crash.context(&out));
    crash.assert_verified();
    assert_eq!(backup_times(&crash.store()), [first]);
}

/// A local job's second backup killed while it increments, its session proven ended: the crash
/// and the time of the first backup.
fn killed_while_incrementing(scenario: &str) -> (Crash, u64) {
    let crash = Crash::new(false, scenario);
    let first = crash.first_backup();
    crash.change_every_file();
    let (out, _) = crash.kill_at(Moment::Incrementing);
    assert_interrupted(&crash, &out);
    wait_until_the_session_ended(&crash);
    (crash, first)
}

/// Rewrites the newest session marker of the crash's store to name `pid`.
fn rewrite_newest_marker(crash: &Crash, pid: u32) {
    let data = crash.store().join("rdiff-backup-data");
    let mut found: Vec<_> = fs::read_dir(&data)
        .expect("the store's data")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("current_mirror.")))
        .collect();
    found.sort();
    let newest = found.last().expect("a session marker");
    fs::write(newest, format!("PID {pid}\n")).expect("rewrite the marker");
}

/// The newer session marker names a live process that is not the one ari recorded (a session
/// of rdiff-backup's started by hand into the store): the record proves ari's session gone,
/// not that one, so ari forces no regress over it: the run fails (rdiff-backup will not back up
/// over an unfinished session), and the store keeps both markers.
#[test]
fn a_session_that_is_not_the_recorded_process_is_never_regressed_by_force() {
    let (crash, _) = killed_while_incrementing("another session");
    let mut live = Live::start();
    rewrite_newest_marker(&crash, live.id());

    let out = crash.run(&[]);
    assert!(live.is_running(), "the other session's process was touched");
    assert_ne!(out.status.code(), Some(0), "{}", crash.context(&out));
    assert_eq!(markers(&crash.store()), 2, "{}", crash.context(&out));
    live.end();
}

/// rdiff-backup takes any live pid in a marker as its session still running. Here both the
/// killed session's marker and ari's record name the pid of a live process of this test's, but
/// the record's start time is not that process's: the pid has been given again, so the session
/// is gone, and the next run regresses and backs up.
#[test]
fn a_recorded_pid_now_of_another_process_is_gone_though_rdiff_backup_thinks_it_runs() {
    let (crash, _) = killed_while_incrementing("a reused pid");
    let mut live = Live::start();
    let (_, start) = state_and_start(live.id()).expect("the sleep runs");
    fake_record(&crash, live.id(), start - 1);
    let data = crash.store().join("rdiff-backup-data");
    for entry in fs::read_dir(&data).expect("the store's data").flatten() {
        if entry.file_name().to_string_lossy().starts_with("current_mirror.") {
            fs::write(entry.path(), format!("PID {}\n", live.id())).expect("rewrite a marker");
        }
    }
    // rdiff-backup itself refuses: the pid runs.
    let own = run(std::process::Command::new(rdiff_backup()).arg("regress").arg(crash.store()));
    let said = stderr(&own).split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        said.contains(&format!("session with process id {} is still running", live.id())),
        "rdiff-backup's own check: {said}"
    );

    let out = crash.run(&[]);
    crash.assert_exit(&out, 0);
    crash.assert_stderr(&out, "recovered them before the job ran");
    assert!(live.is_running(), "the sleep was touched");
    live.end();
    crash.assert_verified();
    crash.assert_mirrors_the_source();
    assert_eq!(backup_times(&crash.store()).len(), 2);
}
