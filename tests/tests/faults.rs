//! Fault injection for ari's "never hang, never leak" promises (docs/failures.md): every step of
//! an rdiff-backup job over two LVM volumes and of a zfs job over one LVM volume, in turn, fails,
//! hangs past `command_timeout`, runs when ari gets SIGTERM, and runs when ari gets SIGKILL
//! (after which `ari recover`, or the job's next run, must undo what the killed run made). The
//! LVM, mount and ZFS tools are the stateful fakes; the main step and rdiff-backup's retention
//! run a script that fails, hangs, or hands over to the real tool. After every scenario nothing
//! is left: no snapshot, no mount, no mount directory, no ledger, and ari's exit code is the
//! documented one; where a cleanup step kept failing, what it left is named and `ari recover`
//! then removes it. Then the cases around them: a hung ssh, two runs of one job, `--wait`, a
//! third signal during cleanup, and `job_timeout`.
//!
//! No test sleeps to decide an outcome: each waits, with a deadline, for the condition it needs
//! (a hung call in the fakes' log, a marker file, a line on ari's stderr), and every ari it starts
//! is bounded by [`RUN_LIMIT`], so that a hang of ari fails the test instead of stalling it. Every
//! hanging script loops only while the fixture's `hold` directory exists, so none outlives its
//! test.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::fs;
use std::path::PathBuf;
use std::process::Output;
use std::thread;
use std::time::{Duration, Instant};

use tests::fakes::Call;
use tests::rdiff::{now, options_at, rdiff_backup};
use tests::wait::WAIT_LIMIT;
use tests::{require_tool, Running, Sshd, World};

/// `max_retries` of every scenario: a cleanup step runs at most this many times more.
const MAX_RETRIES: u32 = 2;
/// How long any ari of this file may run before the test calls it hung. The slowest scenario
/// takes a few seconds; a minute leaves room for a loaded machine and still ends a hang.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// How often those conditions are looked at.
const POLL: Duration = Duration::from_millis(20);
/// The dataset of the zfs job.
const DATASET: &str = "pool/backups/web";
/// How much earlier than its `command_timeout` after a hung call started its retry may start,
/// when the hung call ended at that deadline: a slow start of the fake on a loaded machine.
/// Stopped by a signal instead, it would end one poll interval (100 ms) after the signal, which
/// the test sends as soon as it sees the call.
const TIMEOUT_SLACK_MS: u64 = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// rdiff-backup over `vg0/root` at `/` and `vg1/data` at `/srv/data`, with retention.
    Rdiff,
    /// rsync into a ZFS dataset over `vg0/root` at `/`, then a ZFS snapshot and expiry.
    Zfs,
}

impl Backend {
    fn label(self) -> &'static str {
        match self {
            Backend::Rdiff => "db",
            Backend::Zfs => "web",
        }
    }
}

/// A step of the job that a scenario makes misbehave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    LvCreate,
    /// The `mountpoint -q` check before a mount: it "fails" by saying the target is a mount point.
    Mountpoint,
    Mount,
    /// rdiff-backup or rsync: the script.
    Main,
    /// The `findmnt` that proves an `umount`'s target before each try: when it fails, the
    /// umount does not run.
    Findmnt,
    Umount,
    LvRemove,
    /// rdiff-backup's `remove increments`: the script.
    Retention,
    ZfsSnapshot,
    /// The `zfs list` of expiry.
    ZfsList,
}

/// Where a step runs in the pipeline, which decides what its failure means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Snapshot steps and the main steps (the backup, and the zfs backend's snapshot of what it
    /// wrote): a failure stops the job, cleanup follows.
    Making,
    /// Undo steps: retried, never interrupted by the first signals.
    Cleanup,
    /// The backend's post steps, after cleanup.
    Post,
}

impl Step {
    /// The backend's post steps that come after this one, which its failure must keep from
    /// running.
    fn later_post_steps(self) -> &'static [Step] {
        match self {
            Step::ZfsSnapshot => &[Step::ZfsList],
            _ => &[],
        }
    }

    fn phase(self) -> Phase {
        match self {
            Step::LvCreate | Step::Mountpoint | Step::Mount | Step::Main | Step::ZfsSnapshot => Phase::Making,
            Step::Findmnt | Step::Umount | Step::LvRemove => Phase::Cleanup,
            Step::Retention | Step::ZfsList => Phase::Post,
        }
    }

    /// The fake tool the step runs; `None` for the steps that run the script.
    fn fake(self) -> Option<&'static str> {
        match self {
            Step::LvCreate => Some("lvcreate"),
            Step::Mountpoint => Some("mountpoint"),
            Step::Mount => Some("mount"),
            Step::Findmnt => Some("findmnt"),
            Step::Umount => Some("umount"),
            Step::LvRemove => Some("lvremove"),
            Step::ZfsSnapshot | Step::ZfsList => Some("zfs"),
            Step::Main | Step::Retention => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// The step fails: each of its tries, for a cleanup step, so that the run leaves something
    /// behind, but not the calls after them, so that `ari recover` can succeed.
    Fail,
    /// The step's first call hangs until it is killed.
    Hang,
}

/// What the script does for the main step or for retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    /// Hands over to the real tool.
    Real,
    Fail,
    /// Its first call makes a marker directory and loops while the hold directory exists; later
    /// calls hand over to the real tool, so that the job's next run can succeed.
    Hang,
}

impl From<Fault> for Behaviour {
    fn from(fault: Fault) -> Behaviour {
        match fault {
            Fault::Fail => Behaviour::Fail,
            Fault::Hang => Behaviour::Hang,
        }
    }
}

/// One scenario: the LVM [`World`] (two origin volumes, no pause between retries) whose config
/// also has a short `command_timeout` and `max_retries: 2`, the dataset for the zfs job, and the
/// job.
struct Rig {
    backend: Backend,
    scenario: String,
    /// `command_timeout` in seconds.
    timeout: u64,
    world: World,
    job: PathBuf,
}

impl Rig {
    /// A rig with `command_timeout: 1s`.
    fn new(backend: Backend, scenario: impl Into<String>) -> Rig {
        Rig::with_timeout(backend, scenario, 1)
    }

    /// A rig for a fault in `step`. Where the real rdiff-backup runs before the fault, under the
    /// same `command_timeout`, it gets 5s: on a loaded machine, its start alone may take a
    /// second. rsync is fast enough for 1s.
    fn for_step(backend: Backend, step: Step, scenario: impl Into<String>) -> Rig {
        let slow = backend == Backend::Rdiff && step.phase() != Phase::Making;
        Rig::with_timeout(backend, scenario, if slow { 5 } else { 1 })
    }

    fn with_timeout(backend: Backend, scenario: impl Into<String>, timeout: u64) -> Rig {
        let world = World::lvm();
        fs::create_dir_all(world.fx.path("hold")).expect("create the hold dir");
        match backend {
            Backend::Rdiff => {
                rdiff_backup();
            }
            Backend::Zfs => {
                require_tool("rsync", "rsync");
                world.fakes.add_dataset(DATASET);
                fs::create_dir_all(world.fx.path("zfs/web")).expect("create the dataset's directory");
            }
        }
        let job = world.fx.path(&format!("jobs.d/{}.yaml", backend.label()));
        let rig = Rig { backend, scenario: scenario.into(), timeout, world, job };
        rig.set_config("");
        rig.set_job("");
        rig.write_tool(Behaviour::Real, Behaviour::Real);
        rig
    }

    /// Writes the config: the rig's settings, then `extra` YAML lines.
    fn set_config(&self, extra: &str) {
        self.world.write_config(&format!(
            "max_retries: {MAX_RETRIES}\ncommand_timeout: {}s\n{extra}",
            self.timeout
        ));
    }

    /// Writes the job: the rig's job, then `extra` YAML lines (settings that override the
    /// config's, `pre` commands).
    fn set_job(&self, extra: &str) {
        let tool = self.tool_path();
        let yaml = match self.backend {
            Backend::Rdiff => format!(
                "label: db\nsnapshot: lvm\nvolumes:\n  - {{name: vg0/root, mount_point: /}}\n  - {{name: vg1/data, mount_point: /srv/data}}\ninclude: [/etc, /srv/data]\nrdiff_backup_path: {tool}\nremove_older_than_timespec: 1D\n{extra}"
            ),
            Backend::Zfs => format!(
                "label: web\nbackend: zfs\nsnapshot: lvm\nvolumes: [{{name: vg0/root, mount_point: /}}]\nrsync_path: {tool}\nrsync_dst: {dst}\nzfs_hostname: localhost\ndataset_name: {DATASET}\nsnapshot_expiration_days: 60\n{extra}",
                dst = self.world.fx.p("zfs/web"),
            ),
        };
        fs::write(&self.job, yaml).expect("write the job");
    }

    fn label(&self) -> &'static str {
        self.backend.label()
    }

    /// `snapshot_mount_root/label`, where the root volume's snapshot is mounted.
    fn base(&self) -> String {
        self.world.fx.p(&format!("mnt/{}", self.label()))
    }

    fn ledger_path(&self) -> PathBuf {
        self.world.fx.path(&format!("state/ledger/{}.json", self.label()))
    }

    fn tool_path(&self) -> String {
        self.world.fx.p("bin/backup-tool")
    }

    /// The directory a hanging script's first call makes before it loops.
    fn marker(&self, step: Step) -> PathBuf {
        self.world.fx.path(&format!("hung-{step:?}"))
    }

    /// Writes the script that stands for rdiff-backup (`--version`, the backup, retention) or
    /// for rsync.
    fn write_tool(&self, main: Behaviour, retention: Behaviour) {
        let script = match self.backend {
            Backend::Rdiff => {
                let real = rdiff_backup();
                let real = real.to_string_lossy();
                format!(
                    "#!/bin/sh\n# rdiff-backup for one scenario of tests/tests/faults.rs.\n\
                     if [ \"$1\" = --version ]; then echo 'rdiff-backup 2.2.2'; exit 0; fi\n\
                     case \" $* \" in\n*\" remove increments \"*)\n{}\n;;\nesac\n{}\n",
                    self.script_part(retention, Step::Retention, &real),
                    self.script_part(main, Step::Main, &real)
                )
            }
            Backend::Zfs => {
                let real = require_tool("rsync", "rsync");
                format!(
                    "#!/bin/sh\n# rsync for one scenario of tests/tests/faults.rs.\n{}\n",
                    self.script_part(main, Step::Main, &real.to_string_lossy())
                )
            }
        };
        self.world.fx.write_script("bin/backup-tool", &script);
    }

    /// The script's lines for the main step or for retention; each ends the script.
    fn script_part(&self, behaviour: Behaviour, step: Step, real: &str) -> String {
        match behaviour {
            Behaviour::Real => format!("exec {real} \"$@\""),
            Behaviour::Fail => format!("echo '{step:?}: injected failure' >&2; exit 1"),
            Behaviour::Hang => format!(
                "if mkdir {marker} 2>/dev/null; then\n    while [ -d {hold} ]; do sleep 0.1; done\n    exit 1\nfi\nexec {real} \"$@\"",
                marker = self.marker(step).display(),
                hold = self.world.fx.p("hold"),
            ),
        }
    }

    /// The number of the call of `step`'s fake tool that a fault hits.
    fn call(&self, step: Step) -> u32 {
        match (self.backend, step) {
            // The second volume's: by then the first volume's snapshot and mount exist, and
            // must be undone.
            (Backend::Rdiff, Step::LvCreate | Step::Mountpoint | Step::Mount) => 2,
            // The root volume's umount, once the data volume inside it is unmounted: a mount left
            // there also keeps its directory and its snapshot, as a real busy mount would.
            (Backend::Rdiff, Step::Findmnt | Step::Umount) => 2,
            // The capacity check reads the dataset's space (the first zfs call); expiry's listing
            // runs before the backup (the second), so that expiry keeps what the run makes; the
            // snapshot step lists the dataset's snapshots (the third) to name the new one, then
            // takes it (the fourth); expiry's listing after the backup is the fifth.
            (_, Step::ZfsSnapshot) => 4,
            (_, Step::ZfsList) => 5,
            _ => 1,
        }
    }

    /// Makes `step` misbehave in this run.
    fn inject(&self, step: Step, fault: Fault) {
        let Some(tool) = step.fake() else {
            match step {
                Step::Main => self.write_tool(fault.into(), Behaviour::Real),
                _ => self.write_tool(Behaviour::Real, fault.into()),
            }
            return;
        };
        let n = self.call(step);
        match (fault, step.phase()) {
            (Fault::Hang, _) => self.world.fakes.hang(tool, &[n]),
            // `mountpoint -q` succeeding means "a mount point": ari refuses to mount over it.
            (Fault::Fail, _) if step == Step::Mountpoint => self.world.fakes.output(tool, &[n], ""),
            (Fault::Fail, Phase::Cleanup) => {
                let tries: Vec<u32> = (n..=n + MAX_RETRIES).collect();
                self.world.fakes.fail(tool, &tries, 5, &format!("{tool}: injected failure"));
            }
            (Fault::Fail, _) => self.world.fakes.fail(tool, &[n], 5, &format!("{tool}: injected failure")),
        }
    }

    /// The start of the command of `step` as ari shows it (after a backquote).
    fn command(&self, step: Step) -> String {
        let base = self.base();
        let rdiff = self.backend == Backend::Rdiff;
        match step {
            Step::LvCreate if rdiff => "lvcreate -s -L 1G vg1/data -n data-ari_backup".into(),
            Step::LvCreate => "lvcreate -s -L 1G vg0/root -n root-ari_backup".into(),
            Step::Mountpoint if rdiff => format!("mountpoint -q {base}/srv/data"),
            Step::Mountpoint => format!("mountpoint -q {base}"),
            Step::Mount if rdiff => format!("mount /dev/vg1/data-ari_backup {base}/srv/data"),
            Step::Mount => format!("mount /dev/vg0/root-ari_backup {base}"),
            Step::Main => format!("{} ", self.tool_path()),
            Step::Findmnt => "findmnt -n -o TARGET --source /dev/vg0/root-ari_backup".into(),
            Step::Umount => "umount /dev/vg0/root-ari_backup".into(),
            Step::LvRemove if rdiff => "lvremove -f vg1/data-ari_backup".into(),
            Step::LvRemove => "lvremove -f vg0/root-ari_backup".into(),
            Step::Retention => format!("{} --force remove increments --older-than 1D ", self.tool_path()),
            Step::ZfsSnapshot => format!("zfs snapshot {DATASET}@"),
            Step::ZfsList => format!("zfs list -H -p -t snapshot -o name,creation,userrefs -d 1 {DATASET}"),
        }
    }

    /// How ari names `step` when it fails, and a fragment of why.
    fn failure(&self, step: Step) -> (String, String) {
        let base = self.base();
        let rdiff = self.backend == Backend::Rdiff;
        let target = if rdiff { format!("{base}/srv/data") } else { base.clone() };
        let injected = format!("{}: injected failure", step.fake().unwrap_or_default());
        match step {
            Step::LvCreate if rdiff => ("snapshot step lvcreate vg1/data-ari_backup failed".into(), injected),
            Step::LvCreate => ("snapshot step lvcreate vg0/root-ari_backup failed".into(), injected),
            Step::Mountpoint => (
                format!("snapshot step check {target} failed"),
                format!("{target} is already a mount point on localhost"),
            ),
            Step::Mount => (format!("snapshot step mount {target} failed"), injected),
            Step::Main if rdiff => ("main step rdiff-backup failed".into(), "Main: injected failure".into()),
            Step::Main => ("main step rsync failed".into(), "Main: injected failure".into()),
            Step::Retention => {
                ("post step remove increments failed".into(), "Retention: injected failure".into())
            }
            Step::ZfsSnapshot => ("main step zfs snapshot failed".into(), injected),
            Step::ZfsList => ("post step zfs expiry failed".into(), injected),
            Step::Findmnt | Step::Umount | Step::LvRemove => {
                unreachable!("a failing cleanup step is told by what it leaves")
            }
        }
    }

    /// What a cleanup step that keeps failing leaves, as ari names it after `left behind:`, and
    /// as the fakes show it (mounts, snapshots).
    fn left_behind(&self, step: Step) -> (String, Vec<String>, Vec<String>) {
        let base = self.base();
        let root = "vg0/root-ari_backup".to_owned();
        match (self.backend, step) {
            // The root volume stays mounted, so its snapshot cannot go either.
            (_, Step::Findmnt | Step::Umount) => {
                (format!("mount of /dev/vg0/root-ari_backup at {base} on localhost"), vec![base], vec![root])
            }
            (Backend::Rdiff, Step::LvRemove) => (
                "snapshot vg1/data-ari_backup on localhost".into(),
                vec![],
                vec!["vg1/data-ari_backup".into()],
            ),
            (Backend::Zfs, Step::LvRemove) => (format!("snapshot {root} on localhost"), vec![], vec![root]),
            _ => unreachable!("{step:?} is no cleanup step"),
        }
    }

    /// Extra arguments for a run that a later run of the same job follows within a second:
    /// rdiff-backup refuses two backups in one second, and a ZFS snapshot name is per minute.
    fn first_run_args(&self) -> Vec<String> {
        match self.backend {
            Backend::Rdiff => vec!["--set".into(), options_at(now() - 3600)],
            Backend::Zfs => vec!["--set".into(), "zfs_snapshot_timestamp_format=first".into()],
        }
    }

    /// Starts `ari run JOB ARGS...`.
    fn spawn(&self, args: &[String]) -> Running {
        Running::start(self.world.ari().arg("run").arg(&self.job).args(args))
    }

    /// `ari run JOB ARGS...` to its end.
    fn run(&self, args: &[String]) -> Output {
        self.finish(self.spawn(args))
    }

    /// `ari recover ARGS...` to its end.
    fn recover(&self, args: &[&str]) -> Output {
        self.finish(Running::start(self.world.ari().arg("recover").args(args)))
    }

    /// Waits for ari to exit, for at most [`RUN_LIMIT`]; a longer run is a hang, and fails the
    /// test (after ari, our child, is killed).
    fn finish(&self, ari: Running) -> Output {
        self.finish_within(ari, RUN_LIMIT)
    }

    /// Waits for ari to exit, for at most `limit`.
    fn finish_within(&self, mut ari: Running, limit: Duration) -> Output {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = ari.child.try_wait().expect("poll ari") {
                return ari.output(status);
            }
            if Instant::now() >= deadline {
                let _ = ari.child.kill();
                let status = ari.child.wait().expect("reap ari");
                let out = ari.output(status);
                panic!("ari did not exit within {limit:?}: it hangs\n{}", self.context(&out));
            }
            thread::sleep(POLL);
        }
    }

    /// Waits until `step`'s hung call runs: in the fakes' call log (which records a hanging call
    /// before it starts to hang), or the script's marker. Fails if ari exits first.
    fn wait_until_hung(&self, step: Step, ari: &mut Running) {
        let what = format!("the hung call of {step:?}");
        self.wait_until(ari, &what, |_| match step.fake() {
            Some(tool) => self.world.fakes.calls_of(tool).iter().any(|call| call.hung),
            None => self.marker(step).exists(),
        });
    }

    /// Polls `condition` until it holds, for at most [`WAIT_LIMIT`], while ari runs.
    fn wait_until(&self, ari: &mut Running, what: &str, mut condition: impl FnMut(&Running) -> bool) {
        let deadline = Instant::now() + WAIT_LIMIT;
        while !condition(ari) {
            if let Some(status) = ari.child.try_wait().expect("poll ari") {
                let out = ari.output(status);
                panic!("ari exited before {what}\n{}", self.context(&out));
            }
            if Instant::now() >= deadline {
                let _ = ari.child.kill();
                let status = ari.child.wait().expect("reap ari");
                let out = ari.output(status);
                panic!("no {what} within {WAIT_LIMIT:?}\n{}", self.context(&out));
            }
            thread::sleep(POLL);
        }
    }

    /// SIGKILLs ari and reaps it; then lets any hanging script end.
    fn kill(&self, mut ari: Running) -> Output {
        ari.child.kill().expect("SIGKILL ari");
        let status = ari.child.wait().expect("reap ari");
        self.release();
        ari.output(status)
    }

    /// Removes the hold directory: every hanging script's loop ends.
    fn release(&self) {
        let _ = fs::remove_dir(self.world.fx.path("hold"));
    }

    /// Everything a failure message needs: the scenario, ari's exit and output, the ledger and
    /// the fakes' state, rules and calls.
    fn context(&self, out: &Output) -> String {
        let ledger = fs::read_to_string(self.ledger_path()).unwrap_or_else(|_| "(no ledger file)".into());
        format!(
            "scenario: {}\nari's exit: {}\n--- ari's stderr ---\n{}--- ari's stdout ---\n{}--- ledger {} ---\n{ledger}\n{}",
            self.scenario,
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout),
            self.ledger_path().display(),
            self.world.fakes.report()
        )
    }

    /// How ari ends a command killed at this rig's `command_timeout`.
    fn killed_at_timeout(&self) -> String {
        format!("was killed when it reached command_timeout {}s", self.timeout)
    }

    /// Asserts ari's exit code; the message starts with what the fakes hold, so that a wrong
    /// "left behind" reads at a glance.
    fn assert_exit(&self, out: &Output, code: i32) {
        assert_eq!(
            out.status.code(),
            Some(code),
            "expected exit {code}, got {}; the fakes now hold snapshots {:?} and mounts {:?}\n{}",
            out.status,
            self.world.fakes.snapshots(),
            self.world.fakes.mounts(),
            self.context(out)
        );
    }

    fn assert_stderr(&self, out: &Output, text: &str) {
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(text),
            "ari's stderr lacks {text:?}\n{}",
            self.context(out)
        );
    }

    /// Asserts that one line of ari's stderr holds every fragment.
    fn assert_line(&self, out: &Output, fragments: &[&str]) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.lines().any(|line| fragments.iter().all(|f| line.contains(f))),
            "no line of ari's stderr holds all of {fragments:?}\n{}",
            self.context(out)
        );
    }

    fn assert_stdout(&self, out: &Output, text: &str) {
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(text),
            "ari's stdout lacks {text:?}\n{}",
            self.context(out)
        );
    }

    /// Nothing left: no snapshot and no mount (the fakes), no mount directory (the real disk),
    /// no ledger, no call the fakes did not expect.
    fn assert_clean(&self, out: &Output) {
        let state = self.world.fakes.state();
        let dirs = self.world.mount_dirs();
        let unexpected: Vec<String> =
            self.world.fakes.calls().iter().filter(|c| c.unexpected).map(Call::describe).collect();
        let ledger = self.ledger_path().exists();
        assert!(
            state.snapshots.is_empty() && state.mounts.is_empty() && dirs.is_empty() && !ledger && unexpected.is_empty(),
            "not clean: snapshots {:?}, mounts {:?}, mount directories {dirs:?}, ledger file left: {ledger}, unexpected calls {unexpected:?}\n{}",
            state.snapshots.keys().collect::<Vec<_>>(),
            state.mounts.keys().collect::<Vec<_>>(),
            self.context(out)
        );
        self.world.fakes.assert_clean();
    }

    /// The hung call of `step`'s fake and the retry after it, which succeeded.
    fn hung_and_retry(&self, step: Step, out: &Output) -> (Call, Call) {
        let tool = step.fake().expect("a cleanup step runs a fake");
        let calls = self.world.fakes.calls_of(tool);
        let Some(at) = calls.iter().position(|call| call.hung) else {
            panic!("no hung {tool} call\n{}", self.context(out));
        };
        let hung = calls[at].clone();
        let Some(retry) = calls[at + 1..].iter().find(|call| call.args == hung.args) else {
            panic!("the hung `{}` was not retried\n{}", hung.describe(), self.context(out));
        };
        assert_eq!(retry.exit, 0, "the retry of the hung call failed\n{}", self.context(out));
        (hung, retry.clone())
    }

    /// The job's backup arrived, so the run after a crash did the whole job.
    fn assert_backed_up(&self, out: &Output) {
        let (path, snapshot) = match self.backend {
            Backend::Rdiff => (self.world.fx.path("store/db/etc/hosts"), true),
            Backend::Zfs => (
                self.world.fx.path("zfs/web/etc/hosts"),
                self.world
                    .fakes
                    .zfs_snapshots()
                    .iter()
                    .any(|(name, _)| name.starts_with(&format!("{DATASET}@ari-backup-2"))),
            ),
        };
        assert!(
            path.exists() && snapshot,
            "the job did not back up ({} missing?)\n{}",
            path.display(),
            self.context(out)
        );
    }
}

// The modes, each a function of (backend, step, the expected exit code), and the table that
// runs every step through every mode (one test per row, so that a failure names its scenario).

/// (a) The step fails. A failure before cleanup or in a post step fails the job (exit 1) and
/// cleanup leaves nothing. A cleanup step failing on every try exits 3, names what it leaves,
/// keeps it in the ledger, and `ari recover` then removes it.
fn fails(backend: Backend, step: Step, expected: i32) {
    let rig = Rig::for_step(backend, step, format!("{backend:?}: {step:?} fails"));
    rig.inject(step, Fault::Fail);
    let out = rig.run(&[]);
    rig.assert_exit(&out, expected);
    if step.phase() != Phase::Cleanup {
        // The tool's own message follows on the next lines, under "last lines of its output".
        let (what, why) = rig.failure(step);
        rig.assert_line(&out, &[&what]);
        rig.assert_stderr(&out, &why);
        // The backend's post steps are a chain: none runs after one that failed.
        let calls: Vec<String> =
            rig.world.fakes.calls().iter().map(|c| format!("{} {}", c.tool, c.args.join(" "))).collect();
        let failed_at = calls.iter().rposition(|c| c.starts_with(&rig.command(step)));
        for later in step.later_post_steps() {
            let command = rig.command(*later);
            let after = failed_at.map_or(&calls[..], |at| &calls[at + 1..]);
            assert!(
                !after.iter().any(|c| c.starts_with(&command)),
                "{later:?} ran after {step:?} failed: {calls:#?}\n{}",
                rig.context(&out)
            );
        }
        rig.assert_clean(&out);
        return;
    }
    let (named, mounts, snapshots) = rig.left_behind(step);
    rig.assert_line(&out, &["left behind: ", &named]);
    assert_eq!(
        (rig.world.fakes.mounts(), rig.world.fakes.snapshots()),
        (mounts, snapshots),
        "what the failed cleanup left\n{}",
        rig.context(&out)
    );
    assert!(rig.ledger_path().exists(), "the ledger keeps what is left\n{}", rig.context(&out));
    let out = rig.recover(&[]);
    rig.assert_exit(&out, 0);
    rig.assert_stdout(&out, &format!("job {}: recovered", rig.label()));
    rig.assert_clean(&out);
}

/// (b) The step's first call hangs past `command_timeout`. Before cleanup: killed at the
/// deadline, named with the limit, exit 1. A cleanup step: killed, retried, exit 0. A post step:
/// killed, exit 1.
fn hangs(backend: Backend, step: Step, expected: i32) {
    let rig = Rig::for_step(backend, step, format!("{backend:?}: {step:?} hangs"));
    rig.inject(step, Fault::Hang);
    let out = rig.run(&[]);
    rig.assert_exit(&out, expected);
    match step.phase() {
        Phase::Making | Phase::Post => {
            rig.assert_line(&out, &[&format!("`{}", rig.command(step)), &rig.killed_at_timeout()])
        }
        Phase::Cleanup => {
            rig.hung_and_retry(step, &out);
        }
    }
    rig.assert_clean(&out);
}

/// (c) ari gets SIGTERM while the step hangs. Before cleanup the step is stopped at once, and
/// so is the engine's retention (zfs expiry: what it does not destroy stays, which is safe); a
/// cleanup or other post step goes on (to its `command_timeout`, then a cleanup step's retry).
/// Exit 1 either way: the run was interrupted.
fn sigterm(backend: Backend, step: Step, expected: i32) {
    let rig = Rig::for_step(backend, step, format!("{backend:?}: SIGTERM while {step:?} hangs"));
    rig.inject(step, Fault::Hang);
    let mut ari = rig.spawn(&[]);
    rig.wait_until_hung(step, &mut ari);
    ari.signal(libc::SIGTERM);
    let out = rig.finish(ari);
    rig.assert_exit(&out, expected);
    rig.assert_line(&out, &["received SIGTERM"]);
    match step.phase() {
        Phase::Making => {
            rig.assert_line(&out, &[&format!("`{}", rig.command(step)), "was stopped: ari was interrupted"])
        }
        Phase::Cleanup => {
            // Had the signal stopped it, the retry would have started within a poll interval.
            let (hung, retry) = rig.hung_and_retry(step, &out);
            assert!(
                retry.time_ms + TIMEOUT_SLACK_MS >= hung.time_ms + rig.timeout * 1000,
                "the signal stopped cleanup step `{}`: its retry started {} ms after it, before its command_timeout\n{}",
                hung.describe(),
                retry.time_ms.saturating_sub(hung.time_ms),
                rig.context(&out)
            );
        }
        Phase::Post if step == Step::ZfsList => {
            rig.assert_line(&out, &[&format!("`{}", rig.command(step)), "was stopped: ari was interrupted"])
        }
        Phase::Post => rig.assert_line(&out, &[&format!("`{}", rig.command(step)), &rig.killed_at_timeout()]),
    }
    rig.assert_clean(&out);
}

/// Starts the job with `step` hanging, SIGKILLs ari once it hangs, and says whether the ledger
/// holds something: it does until the post steps, which make nothing to undo.
fn killed_while_hung(rig: &Rig, step: Step, args: &[String]) -> bool {
    rig.inject(step, Fault::Hang);
    let mut ari = rig.spawn(args);
    rig.wait_until_hung(step, &mut ari);
    let out = rig.kill(ari);
    let leftover = rig.ledger_path().exists();
    assert_eq!(
        leftover,
        step.phase() != Phase::Post,
        "the ledger after SIGKILL during {step:?}\n{}",
        rig.context(&out)
    );
    leftover
}

/// (d-i) ari gets SIGKILL while the step hangs; `ari recover LABEL` undoes what it made.
fn sigkill_then_recover(backend: Backend, step: Step, expected: i32) {
    let rig =
        Rig::for_step(backend, step, format!("{backend:?}: SIGKILL while {step:?} hangs, then ari recover"));
    let leftover = killed_while_hung(&rig, step, &[]);
    let out = rig.recover(&[rig.label()]);
    rig.assert_exit(&out, expected);
    let said = if leftover { "recovered" } else { "nothing to recover" };
    rig.assert_stdout(&out, &format!("job {}: {said}", rig.label()));
    rig.assert_clean(&out);
}

/// (d-ii) ari gets SIGKILL while the step hangs; the job's next run recovers first, then runs.
fn sigkill_then_next_run(backend: Backend, step: Step, expected: i32) {
    let rig =
        Rig::for_step(backend, step, format!("{backend:?}: SIGKILL while {step:?} hangs, then the next run"));
    let leftover = killed_while_hung(&rig, step, &rig.first_run_args());
    // No fault is left, so no hang needs the short timeout, and the real backup gets room.
    let out = rig.run(&["--set".into(), "command_timeout=1m".into()]);
    rig.assert_exit(&out, expected);
    if leftover {
        rig.assert_line(&out, &["a crashed run left ", "recovered them before the job ran"]);
    }
    rig.assert_clean(&out);
    rig.assert_backed_up(&out);
}

/// One test per row: `mode { name: Backend Step => expected exit, ... }`.
macro_rules! scenarios {
    ($($mode:ident { $($name:ident: $backend:ident $step:ident => $exit:expr,)* })*) => {
        $(mod $mode {
            $(#[test]
            fn $name() {
                super::$mode(super::Backend::$backend, super::Step::$step, $exit);
            })*
        })*
    };
}

scenarios! {
    fails {
        rdiff_lvcreate: Rdiff LvCreate => 1,
        rdiff_mountpoint: Rdiff Mountpoint => 1,
        rdiff_mount: Rdiff Mount => 1,
        rdiff_main: Rdiff Main => 1,
        rdiff_findmnt: Rdiff Findmnt => 3,
        rdiff_umount: Rdiff Umount => 3,
        rdiff_lvremove: Rdiff LvRemove => 3,
        rdiff_retention: Rdiff Retention => 1,
        zfs_lvcreate: Zfs LvCreate => 1,
        zfs_mountpoint: Zfs Mountpoint => 1,
        zfs_mount: Zfs Mount => 1,
        zfs_main: Zfs Main => 1,
        zfs_findmnt: Zfs Findmnt => 3,
        zfs_umount: Zfs Umount => 3,
        zfs_lvremove: Zfs LvRemove => 3,
        zfs_snapshot: Zfs ZfsSnapshot => 1,
        zfs_list: Zfs ZfsList => 1,
    }
    hangs {
        rdiff_lvcreate: Rdiff LvCreate => 1,
        rdiff_mountpoint: Rdiff Mountpoint => 1,
        rdiff_mount: Rdiff Mount => 1,
        rdiff_main: Rdiff Main => 1,
        rdiff_findmnt: Rdiff Findmnt => 0,
        rdiff_umount: Rdiff Umount => 0,
        rdiff_lvremove: Rdiff LvRemove => 0,
        rdiff_retention: Rdiff Retention => 1,
        zfs_lvcreate: Zfs LvCreate => 1,
        zfs_mountpoint: Zfs Mountpoint => 1,
        zfs_mount: Zfs Mount => 1,
        zfs_main: Zfs Main => 1,
        zfs_findmnt: Zfs Findmnt => 0,
        zfs_umount: Zfs Umount => 0,
        zfs_lvremove: Zfs LvRemove => 0,
        zfs_snapshot: Zfs ZfsSnapshot => 1,
        zfs_list: Zfs ZfsList => 1,
    }
    sigterm {
        rdiff_lvcreate: Rdiff LvCreate => 1,
        rdiff_mountpoint: Rdiff Mountpoint => 1,
        rdiff_mount: Rdiff Mount => 1,
        rdiff_main: Rdiff Main => 1,
        rdiff_findmnt: Rdiff Findmnt => 1,
        rdiff_umount: Rdiff Umount => 1,
        rdiff_lvremove: Rdiff LvRemove => 1,
        rdiff_retention: Rdiff Retention => 1,
        zfs_lvcreate: Zfs LvCreate => 1,
        zfs_mountpoint: Zfs Mountpoint => 1,
        zfs_mount: Zfs Mount => 1,
        zfs_main: Zfs Main => 1,
        zfs_findmnt: Zfs Findmnt => 1,
        zfs_umount: Zfs Umount => 1,
        zfs_lvremove: Zfs LvRemove => 1,
        zfs_snapshot: Zfs ZfsSnapshot => 1,
        zfs_list: Zfs ZfsList => 1,
    }
    sigkill_then_recover {
        rdiff_lvcreate: Rdiff LvCreate => 0,
        rdiff_mountpoint: Rdiff Mountpoint => 0,
        rdiff_mount: Rdiff Mount => 0,
        rdiff_main: Rdiff Main => 0,
        rdiff_findmnt: Rdiff Findmnt => 0,
        rdiff_umount: Rdiff Umount => 0,
        rdiff_lvremove: Rdiff LvRemove => 0,
        rdiff_retention: Rdiff Retention => 0,
        zfs_lvcreate: Zfs LvCreate => 0,
        zfs_mountpoint: Zfs Mountpoint => 0,
        zfs_mount: Zfs Mount => 0,
        zfs_main: Zfs Main => 0,
        zfs_findmnt: Zfs Findmnt => 0,
        zfs_umount: Zfs Umount => 0,
        zfs_lvremove: Zfs LvRemove => 0,
        zfs_snapshot: Zfs ZfsSnapshot => 0,
        zfs_list: Zfs ZfsList => 0,
    }
    sigkill_then_next_run {
        rdiff_lvcreate: Rdiff LvCreate => 0,
        rdiff_mountpoint: Rdiff Mountpoint => 0,
        rdiff_mount: Rdiff Mount => 0,
        rdiff_main: Rdiff Main => 0,
        rdiff_findmnt: Rdiff Findmnt => 0,
        rdiff_umount: Rdiff Umount => 0,
        rdiff_lvremove: Rdiff LvRemove => 0,
        rdiff_retention: Rdiff Retention => 0,
        zfs_lvcreate: Zfs LvCreate => 0,
        zfs_mountpoint: Zfs Mountpoint => 0,
        zfs_mount: Zfs Mount => 0,
        zfs_main: Zfs Main => 0,
        zfs_findmnt: Zfs Findmnt => 0,
        zfs_umount: Zfs Umount => 0,
        zfs_lvremove: Zfs LvRemove => 0,
        zfs_snapshot: Zfs ZfsSnapshot => 0,
        zfs_list: Zfs ZfsList => 0,
    }
}

/// A shell command that hangs on its first run only (until the hold directory goes), making
/// `marker` when it starts; later runs return at once.
fn hang_once(rig: &Rig, marker: &str) -> String {
    format!(
        "if mkdir {} 2>/dev/null; then while [ -d {} ]; do sleep 0.1; done; fi",
        rig.world.fx.p(marker),
        rig.world.fx.p("hold")
    )
}

/// (e) A `pre` command on a remote host (the harness's sshd) that never returns: ari kills the
/// ssh that runs it at `command_timeout`, and no snapshot step starts.
#[test]
fn a_remote_command_that_never_returns_is_killed_at_command_timeout() {
    let sshd = Sshd::start();
    let rig = Rig::new(Backend::Rdiff, "a remote pre command hangs");
    rig.set_config(&sshd.config_yaml());
    rig.set_job(&format!(
        "pre:\n  - command: \"echo $$ > {pid}; while [ -d {hold} ]; do sleep 0.1; done\"\n    host: {host}\n",
        pid = rig.world.fx.p("remote.pid"),
        hold = rig.world.fx.p("hold"),
        host = sshd.host_alias(),
    ));
    let out = rig.run(&[]);
    rig.assert_exit(&out, 1);
    rig.assert_line(
        &out,
        &["pre step pre[0] failed", "on ari-test-host was killed when it reached command_timeout 1s"],
    );
    assert!(
        rig.world.fx.path("remote.pid").exists(),
        "the command ran on the remote side\n{}",
        rig.context(&out)
    );
    assert!(
        rig.world.fakes.calls().is_empty(),
        "no snapshot step ran after the failed pre step\n{}",
        rig.context(&out)
    );
    rig.assert_clean(&out);
    // Killing the local ssh does not stop the remote shell (it has no tty, so no SIGHUP): it runs
    // on until the hold directory goes. Ending it here lets the sshd stop at once.
    rig.release();
}

/// (e) An ssh that hangs itself (a fake `ssh_path`): killed at `command_timeout`; it got ari's
/// options that make a real ssh fail fast on a dead host.
#[test]
fn a_hung_ssh_is_killed_at_command_timeout() {
    let rig = Rig::new(Backend::Rdiff, "ssh hangs");
    let ssh = rig.world.fx.write_script(
        "bin/ssh",
        &format!(
            "#!/bin/sh\necho \"$@\" > {args}\nmkdir {marker}\nwhile [ -d {hold} ]; do sleep 0.1; done\nexit 255\n",
            args = rig.world.fx.p("ssh.args"),
            marker = rig.world.fx.p("ssh-started"),
            hold = rig.world.fx.p("hold"),
        ),
    );
    rig.set_config(&format!("ssh_path: {}\n", ssh.display()));
    rig.set_job("pre:\n  - command: [true]\n    host: db-server\n");
    let out = rig.run(&[]);
    rig.assert_exit(&out, 1);
    rig.assert_line(
        &out,
        &["pre step pre[0] failed", "on db-server was killed when it reached command_timeout 1s"],
    );
    let args = fs::read_to_string(rig.world.fx.path("ssh.args")).unwrap_or_default();
    assert!(
        args.contains(
            "-o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=15 -o ServerAliveCountMax=4"
        ),
        "ssh got {args:?}\n{}",
        rig.context(&out)
    );
    assert!(
        rig.world.fakes.calls().is_empty(),
        "no snapshot step ran after the failed pre step\n{}",
        rig.context(&out)
    );
    rig.assert_clean(&out);
}

/// (f) A second run of a job that is running exits 1 at once, naming the first run's PID; the
/// first, stopped by SIGTERM, cleans up as usual.
#[test]
fn a_second_run_of_a_running_job_exits_at_once_naming_the_first() {
    let rig = Rig::new(Backend::Rdiff, "two runs of one job");
    // Without a command_timeout that ends it, the first run's pre command runs until SIGTERM.
    rig.set_job(&format!("command_timeout: 1m\npre:\n  - command: \"{}\"\n", hang_once(&rig, "pre-started")));
    let mut first = rig.spawn(&[]);
    rig.wait_until(&mut first, "the first run's pre command", |_| rig.world.fx.path("pre-started").exists());
    // Were the second run to wait for the lock, it would wait for the minute of the first's
    // command_timeout.
    let second = rig.finish_within(rig.spawn(&[]), Duration::from_secs(10));
    rig.assert_exit(&second, 1);
    rig.assert_line(
        &second,
        &[&format!("job db is already running (pid {} on ", first.pid()), "wait for it, or use --wait"],
    );
    assert!(rig.world.fakes.calls().is_empty(), "the second run made nothing\n{}", rig.context(&second));
    first.signal(libc::SIGTERM);
    let out = rig.finish(first);
    rig.assert_exit(&out, 1);
    rig.assert_line(&out, &["pre step pre[0] failed", "was stopped: ari was interrupted"]);
    rig.assert_clean(&out);
}

/// (g) `ari run --wait` of a running job waits for the first run to end, then runs the job.
#[test]
fn run_with_wait_runs_once_the_first_run_is_gone() {
    let rig = Rig::new(Backend::Rdiff, "run --wait behind a running job");
    rig.set_job(&format!("command_timeout: 1m\npre:\n  - command: \"{}\"\n", hang_once(&rig, "pre-started")));
    let mut first = rig.spawn(&[]);
    rig.wait_until(&mut first, "the first run's pre command", |_| rig.world.fx.path("pre-started").exists());
    // --debug shows the info line that says the run waits, which is what this waits for.
    let mut second = rig.spawn(&["--wait".into(), "--debug".into()]);
    let waiting = format!("job db is already running (pid {} on ", first.pid());
    rig.wait_until(&mut second, "the second run waiting for the first", |ari| {
        ari.stderr_so_far().lines().any(|line| line.contains(&waiting) && line.contains("waiting for it"))
    });
    assert!(
        rig.world.fakes.calls().is_empty(),
        "the waiting run made nothing yet\n{}",
        rig.world.fakes.report()
    );
    first.signal(libc::SIGTERM);
    let out = rig.finish(first);
    rig.assert_exit(&out, 1);
    let out = rig.finish(second);
    rig.assert_exit(&out, 0);
    assert_eq!(
        rig.world.fakes.calls_of("lvcreate").len(),
        2,
        "the second run ran the job\n{}",
        rig.context(&out)
    );
    rig.assert_clean(&out);
    rig.assert_backed_up(&out);
}

/// (h) A third signal aborts a hung cleanup step: exit 3, the ledger keeps what is left, and
/// `ari recover` then removes it.
#[test]
fn a_third_signal_aborts_cleanup_and_leaves_the_ledger_for_recover() {
    let rig = Rig::new(Backend::Rdiff, "three signals during a hung umount");
    // The hung umount must outlast the three signals: no 1s timeout for it.
    rig.set_job("command_timeout: 1m\n");
    rig.inject(Step::Umount, Fault::Hang);
    let mut ari = rig.spawn(&[]);
    rig.wait_until_hung(Step::Umount, &mut ari);
    // signal-hook may merge signals that arrive together: each waits for ari's answer to the
    // one before.
    for answer in ["received SIGTERM: stopping", "received SIGTERM again: cleanup is not interrupted"] {
        ari.signal(libc::SIGTERM);
        rig.wait_until(&mut ari, answer, |ari| ari.stderr_so_far().contains(answer));
    }
    let umounts = rig.world.fakes.calls_of("umount");
    assert!(
        umounts.last().is_some_and(|call| call.hung),
        "two signals stopped the hung umount: it was retried\n{}",
        rig.world.fakes.report()
    );
    ari.signal(libc::SIGTERM);
    let out = rig.finish(ari);
    rig.assert_exit(&out, 3);
    rig.assert_stderr(&out, "received SIGTERM a third time: aborting cleanup");
    rig.assert_line(
        &out,
        &["left behind: ", &format!("mount of /dev/vg0/root-ari_backup at {}", rig.base())],
    );
    assert!(rig.ledger_path().exists(), "the ledger keeps what is left\n{}", rig.context(&out));
    assert_eq!(
        rig.world.fakes.snapshots(),
        ["vg0/root-ari_backup", "vg1/data-ari_backup"],
        "aborted cleanup removed no snapshot\n{}",
        rig.context(&out)
    );
    let out = rig.recover(&[]);
    rig.assert_exit(&out, 0);
    rig.assert_stdout(&out, "job db: recovered");
    rig.assert_clean(&out);
}

/// (i) `job_timeout` kills a hung main step at the job's deadline; cleanup runs after it.
#[test]
fn job_timeout_kills_a_hung_backup_and_cleanup_runs() {
    let rig = Rig::new(Backend::Rdiff, "the main step hangs past job_timeout");
    rig.set_job("job_timeout: 2s\ncommand_timeout: 1m\n");
    rig.inject(Step::Main, Fault::Hang);
    let out = rig.run(&[]);
    rig.assert_exit(&out, 1);
    rig.assert_line(
        &out,
        &[
            "main step rdiff-backup failed",
            &format!("`{}", rig.command(Step::Main)),
            "was killed when it reached job_timeout 2s",
        ],
    );
    assert_eq!(
        (rig.world.fakes.calls_of("umount").len(), rig.world.fakes.calls_of("lvremove").len()),
        (2, 2),
        "every cleanup step ran\n{}",
        rig.context(&out)
    );
    rig.assert_clean(&out);
}
