//! Running one planned job end to end, the one way `ari run`, `ari run-all` and `ari recover`
//! all do it: under the job's lock, recover what a crashed run's ledger holds, run the pipeline,
//! record the run in the job's history; and say how it ended as one [`JobOutcome`]. The caller
//! only presents the result.
//!
//! A dry run makes nothing: it takes no lock, touches no ledger, records no history.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::contract::core_settings::{COMMAND_TIMEOUT, DRY_RUN, JOB_TIMEOUT, SSH_CONNECT_TIMEOUT};
use crate::contract::error::chain;
use crate::contract::step::Outcome;
use crate::engine::exit;
use crate::engine::history::{History, RunRecord};
use crate::engine::ledger::{Ledger, LedgerError};
use crate::engine::lock::{Lock, LockError};
use crate::engine::pipeline::{self, JobReport};
use crate::engine::plan::JobPlan;
use crate::engine::process::Ssh;
use crate::engine::recovery::Recovery;
use crate::engine::remote::Session;
use crate::engine::runner::Runner;
use crate::engine::step_run::StepFailure;

/// The flags that stop a run, which the signal handlers set.
#[derive(Debug, Clone, Default)]
pub struct StopFlags {
    /// Set by the first signal: stop the running command; cleanup and post steps still run.
    pub interrupted: Arc<AtomicBool>,
    /// Set by the third: stop cleanup too, leaving the ledger for `ari recover`.
    pub abort: Arc<AtomicBool>,
}

impl StopFlags {
    /// Whether ari was asked to stop.
    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }
}

/// How one job's run ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobOutcome {
    /// Its steps ran (in a dry run: were logged).
    Ran(JobReport),
    /// Another run holds its lock, or the lock could not be taken: nothing happened.
    Locked(LockError),
    /// Its ledger cannot be used (refused, corrupt, unreadable): nothing ran.
    LedgerRefused(LedgerError),
    /// Not everything a crashed run left could be undone, so the job did not run.
    RecoveryFailed,
    /// ari was interrupted before the job started.
    NotStarted,
    /// The job's private run directory (its ssh wrapper, its control sockets) could not be
    /// made: nothing ran.
    NoRunDirectory(crate::engine::files::StateError),
}

/// What went wrong beside a job's backup.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunWarning {
    /// The job's history could not be written (a full or read-only state_dir): why.
    HistoryNotWritten(String),
    /// The job's history was corrupt: moved aside to this file, and a new one started.
    HistoryMovedAside(std::path::PathBuf),
    /// A shared ssh connection did not come up, so its commands had a connection each: why.
    SharingFailed(String),
    /// The stale guard (`keep_when_stale`) held the backend's retention and expiry: why.
    ExpiryHeld(String),
    /// The pool under the job's store is DEGRADED (the capacity check): what it said.
    PoolDegraded(String),
    /// What a step said beside its work (retention: the store host's clock looks wrong).
    Step(String),
}

impl std::fmt::Display for RunWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunWarning::HistoryNotWritten(why) => write!(f, "the job's history could not be written: {why}"),
            RunWarning::HistoryMovedAside(aside) => write!(
                f,
                "the job's history was corrupt: it was moved aside to {} and a new one started",
                aside.display()
            ),
            RunWarning::SharingFailed(why) => f.write_str(why),
            RunWarning::ExpiryHeld(why) => write!(f, "nothing was expired: {why}"),
            RunWarning::PoolDegraded(why) | RunWarning::Step(why) => f.write_str(why),
        }
    }
}

/// A job's run: how it ended, what was recovered first, and what went wrong beside it.
#[derive(Debug)]
pub struct JobRun {
    /// How it ended.
    pub outcome: JobOutcome,
    /// What the job's ledger held from a crashed run, undone before the job ran.
    pub recovery: Option<Recovery>,
    /// What went wrong beside the backup (its history could not be written); a run that
    /// succeeded with warnings has the outcome `warning` in its report.
    pub warnings: Vec<RunWarning>,
    /// When it started.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
}

impl JobRun {
    /// A job that ari did not start because it was interrupted.
    pub fn not_started() -> JobRun {
        JobRun {
            outcome: JobOutcome::NotStarted,
            recovery: None,
            warnings: Vec::new(),
            started: SystemTime::now(),
            duration: Duration::ZERO,
        }
    }

    /// The exit code of this job alone (see `exit`).
    pub fn exit_code(&self) -> i32 {
        match &self.outcome {
            JobOutcome::Ran(report) => report.exit_code(),
            JobOutcome::Locked(_) | JobOutcome::NotStarted | JobOutcome::NoRunDirectory(_) => {
                exit::JOB_FAILED
            }
            JobOutcome::LedgerRefused(_) | JobOutcome::RecoveryFailed => exit::CLEANUP_FAILED,
        }
    }

    /// Why the job's steps did not run, when they did not.
    pub fn refusal(&self, label: &str) -> Option<String> {
        match &self.outcome {
            JobOutcome::Ran(_) => None,
            JobOutcome::Locked(err) => Some(chain(err)),
            JobOutcome::LedgerRefused(err) => Some(err.advice(label)),
            JobOutcome::RecoveryFailed => {
                Some("the job does not run while its ledger holds what a crashed run left (exit 3)".into())
            }
            JobOutcome::NotStarted => Some("not started: ari was interrupted".into()),
            JobOutcome::NoRunDirectory(err) => Some(format!("the job did not run: {}", chain(err))),
        }
    }

    /// The job's part of a run report: its steps, exit code, file, hosts, and why it did not
    /// run or what went wrong beside it.
    pub fn to_json(&self, plan: &JobPlan) -> serde_json::Value {
        serde_json::to_value(JobJson::of(self, plan)).unwrap_or_default()
    }
}

/// A job's part of a run report. A job whose steps ran has their times and failures; one that
/// did not says why (`error`).
#[derive(Debug, Serialize)]
struct JobJson<'a> {
    job: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
    exit: i32,
    #[serde(flatten)]
    ran: Option<RanJson<'a>>,
    steps: Vec<StepRecordJson<'a>>,
    backend: &'a str,
    file: String,
    hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    warnings: Vec<String>,
}

/// What only a job whose steps ran has.
#[derive(Debug, Serialize)]
struct RanJson<'a> {
    start: f64,
    end: f64,
    duration_seconds: f64,
    failure: Option<FailureJson<'a>>,
    cleanup_failures: Vec<FailureJson<'a>>,
    post_failures: Vec<FailureJson<'a>>,
    /// What the spot check found, when it ran to a verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<crate::engine::verify::VerdictJson>,
    /// The database dumps that ran: each one's size and time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dumps: Vec<crate::engine::history::DumpRecord>,
    /// What retention kept and destroyed, when it judged.
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<crate::engine::step_run::Retained>,
}

/// A step that failed.
#[derive(Debug, Serialize)]
struct FailureJson<'a> {
    step: &'a str,
    phase: &'static str,
    error: String,
    left_behind: Option<&'a str>,
}

/// A step that ran.
#[derive(Debug, Serialize)]
struct StepRecordJson<'a> {
    step: &'a str,
    phase: &'static str,
    host: &'a str,
    command: &'a str,
    ok: bool,
    error: Option<&'a str>,
    duration_seconds: f64,
}

impl<'a> JobJson<'a> {
    fn of(run: &'a JobRun, plan: &'a JobPlan) -> JobJson<'a> {
        let seconds =
            |t: SystemTime| t.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let failure = |f: &'a StepFailure| FailureJson {
            step: &f.step,
            phase: f.phase.as_str(),
            error: f.error.to_string(),
            left_behind: f.removes.as_deref(),
        };
        let report = match &run.outcome {
            JobOutcome::Ran(report) => Some(report),
            _ => None,
        };
        let error = run.refusal(plan.label());
        let ran_outcome =
            report.map(|r| if matches!(r.outcome, Outcome::Success) { "success" } else { "failure" });
        let outcome = match (ran_outcome, &error) {
            (_, Some(_)) => Some("failure"),
            (Some("success"), None) if !run.warnings.is_empty() => Some("warning"),
            (outcome, None) => outcome,
        };
        JobJson {
            job: report.map_or(plan.label(), |r| &r.label),
            outcome,
            exit: run.exit_code(),
            ran: report.map(|r| RanJson {
                start: seconds(r.started),
                end: seconds(r.started + r.duration),
                duration_seconds: r.duration.as_secs_f64(),
                failure: r.failure.as_ref().map(failure),
                cleanup_failures: r.cleanup_failures.iter().map(failure).collect(),
                post_failures: r.post_failures.iter().map(failure).collect(),
                verify: r.verdict().map(crate::engine::verify::VerdictJson::of),
                dumps: crate::engine::history::DumpRecord::of_steps(&r.records),
                retention: r.retained(),
            }),
            steps: report
                .map(|r| {
                    r.records
                        .iter()
                        .map(|r| StepRecordJson {
                            step: &r.step,
                            phase: r.phase.as_str(),
                            host: &r.host,
                            command: &r.command,
                            ok: r.error.is_none(),
                            error: r.error.as_deref(),
                            duration_seconds: r.duration.as_secs_f64(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            backend: plan.backend,
            file: plan.job.path.display().to_string(),
            hosts: plan.hosts(),
            error,
            warnings: run.warnings.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Runs one planned job end to end: with `wait`, waiting for another run of it to end.
pub fn run_job(plan: &JobPlan, stop: &StopFlags, wait: bool) -> JobRun {
    let started = SystemTime::now();
    let clock = Instant::now();
    let (outcome, recovery, warnings) = run_under_lock(plan, stop, wait, None);
    let mut run = JobRun { outcome, recovery, warnings, started, duration: clock.elapsed() };
    // A run that another run's lock refused did nothing worth a place in the history.
    if !plan.settings.get(&DRY_RUN) && !matches!(run.outcome, JobOutcome::Locked(_)) {
        let start = jiff::Timestamp::try_from(started).map(|t| t.as_second()).unwrap_or_default();
        let ended = jiff::Timestamp::now().as_microsecond() as f64 / 1e6;
        let transfer = match &run.outcome {
            JobOutcome::Ran(report) => report.transfer(),
            _ => crate::contract::step::Transfer::default(),
        };
        let record = RunRecord {
            started: start,
            duration_seconds: run.duration.as_secs_f64(),
            exit: run.exit_code(),
            ended: Some(ended),
            files: transfer.files,
            bytes: transfer.bytes,
            verify: match &run.outcome {
                JobOutcome::Ran(report) => report.verdict().map(|verdict| {
                    let every = plan.settings.get(&crate::contract::core_settings::VERIFY_EVERY);
                    crate::engine::history::VerifyRecord::of(verdict, every)
                }),
                _ => None,
            },
            dumps: match &run.outcome {
                JobOutcome::Ran(report) => crate::engine::history::DumpRecord::of_steps(&report.records),
                _ => Vec::new(),
            },
            retention: match &run.outcome {
                JobOutcome::Ran(report) => report.retained(),
                _ => None,
            },
            capacity: match &run.outcome {
                JobOutcome::Ran(report) => report.capacity.as_ref().map(|read| read.reading.clone()),
                _ => None,
            },
        };
        match History::record(Path::new(&plan.state_dir()), plan.label(), record) {
            Ok(None) => {}
            Ok(Some(aside)) => run.warnings.push(RunWarning::HistoryMovedAside(aside)),
            Err(err) => run.warnings.push(RunWarning::HistoryNotWritten(chain(&err))),
        }
    }
    run
}

/// `ari prune`: the job's backend post steps and retention alone, now, under the job's lock and
/// the stale guard, after recovering what a crashed run left, as a run would run them after a
/// successful backup. Nothing is recorded in the job's history: a prune is no backup, and the
/// stale guard must not take it for one. Nor does a prune destroy after a failed run (a run
/// would not), unless `force`: see [`prune_held`].
pub fn prune_job(plan: &JobPlan, stop: &StopFlags, wait: bool, force: bool) -> JobRun {
    let started = SystemTime::now();
    let clock = Instant::now();
    let (outcome, recovery, warnings) = run_under_lock(plan, stop, wait, Some(force));
    JobRun { outcome, recovery, warnings, started, duration: clock.elapsed() }
}

/// Why a prune destroys nothing, unless `force`: the stale guard's reason, a last run that
/// failed, no run recorded at all, or a history that cannot be read (a run destroys nothing
/// after a failed backup, and a prune keeps that promise unless told otherwise: an admin whose
/// store is too full for a run, whose runs are therefore refused, frees it with `--force`).
fn prune_guard(plan: &JobPlan) -> Option<String> {
    expiry_held(plan).or_else(|| match History::read(Path::new(&plan.state_dir()), plan.label()) {
        Ok(history) => match history.last() {
            None => Some(
                "no run of the job is recorded, so no backup of it is known to have succeeded".to_string(),
            ),
            Some(run) => {
                (run.exit != exit::SUCCESS).then(|| format!("the job's last run failed (exit {})", run.exit))
            }
        },
        Err(err) => Some(format!("the job's history cannot be read ({})", chain(&err))),
    })
}

/// What holds a prune (`force` unset), as its run report says it: the guard, and how to
/// override it.
fn prune_held(plan: &JobPlan, force: bool) -> Option<String> {
    if force {
        return None;
    }
    prune_guard(plan).map(|why| format!("{why}; `ari prune --force` destroys all the same"))
}

/// What `--force` overrides in a prune, when a guard would have held it: said, so that an admin
/// who frees a full store does not wipe a stale job's history unawares.
pub(crate) fn prune_overridden(plan: &JobPlan, force: bool) -> Option<String> {
    force.then(|| prune_guard(plan)).flatten().map(|why| format!("--force: destroying although {why}"))
}

/// `prune`: a prune (`Some(force)`), or a run.
fn run_under_lock(
    plan: &JobPlan,
    stop: &StopFlags,
    wait: bool,
    prune: Option<bool>,
) -> (JobOutcome, Option<Recovery>, Vec<RunWarning>) {
    let scope = match prune {
        Some(_) => pipeline::Scope::Prune,
        None => pipeline::Scope::Backup { verify_due: verify_due(plan) },
    };
    let held = || match prune {
        Some(force) => prune_held(plan, force),
        None => expiry_held(plan),
    };
    let dry_run = plan.settings.get(&DRY_RUN);
    let state_dir = plan.state_dir();
    let state_dir = Path::new(&state_dir);
    let label = plan.label();
    let runner = Runner::new(plan.ssh.clone(), dry_run)
        .with_cancel(stop.interrupted.clone())
        .with_abort(stop.abort.clone())
        .with_command_timeout(plan.settings.get(&COMMAND_TIMEOUT))
        .with_job_timeout(plan.settings.get(&JOB_TIMEOUT));
    if dry_run {
        match Ledger::open(state_dir, label, &plan.ssh) {
            Ok(ledger) if !ledger.is_empty() => log::warn!(
                "the ledger holds {} things a crashed run left behind; a real run would undo them first",
                ledger.entries().len()
            ),
            Ok(_) => {}
            Err(err) => log::warn!("a real run would not run: {}", err.advice(label)),
        }
        let held = held();
        let report = pipeline::run(plan, &runner, &mut Ledger::disabled(), scope, held.as_deref());
        return (JobOutcome::Ran(report), None, Vec::new());
    }
    let _lock = match Lock::acquire(state_dir, label, &format!("job {label}"), wait) {
        Ok(lock) => lock,
        Err(err) => return (JobOutcome::Locked(err), None, Vec::new()),
    };
    let mut ledger = match Ledger::open(state_dir, label, &plan.ssh) {
        Ok(ledger) => ledger,
        Err(err) => return (JobOutcome::LedgerRefused(err), None, Vec::new()),
    };
    let mut recovery = None;
    if !ledger.is_empty() {
        log::info!(
            "a crashed run left {} things behind ({}); undoing them before the job runs",
            ledger.entries().len(),
            ledger.entries().iter().filter_map(|e| e.removes.as_deref()).collect::<Vec<_>>().join("; ")
        );
        let recovered = undo_ledger(&mut ledger, stop, plan.settings.get(&COMMAND_TIMEOUT));
        let failed = !recovered.failures.is_empty();
        recovery = Some(recovered);
        if failed {
            return (JobOutcome::RecoveryFailed, recovery, Vec::new());
        }
    }
    let session = match Session::open(plan.connections.clone(), state_dir, master_timeout(plan)) {
        Ok(session) => Arc::new(session),
        Err(err) => return (JobOutcome::NoRunDirectory(err), recovery, Vec::new()),
    };
    let runner = runner.with_session(Arc::clone(&session));
    wait_for_the_next_second(plan);
    let held = held();
    let overridden = prune.and_then(|force| prune_overridden(plan, force));
    if let Some(why) = &overridden {
        log::warn!("{why}");
    }
    let report = pipeline::run(plan, &runner, &mut ledger, scope, held.as_deref());
    let mut warnings: Vec<RunWarning> = session.close().into_iter().map(RunWarning::SharingFailed).collect();
    warnings.extend(overridden.map(RunWarning::Step));
    let degraded = report.capacity.iter().flat_map(|read| read.warnings.iter().cloned());
    warnings.extend(degraded.map(RunWarning::PoolDegraded));
    warnings.extend(report.records.iter().flat_map(|r| r.warnings.iter().cloned()).map(RunWarning::Step));
    // Only a run that reached its backend post steps (a backup that succeeded) had them held.
    if let Some(why) = held.filter(|_| !plan.backend_post.is_empty() && report.outcome == Outcome::Success) {
        warnings.push(RunWarning::ExpiryHeld(why));
    }
    (JobOutcome::Ran(report), recovery, warnings)
}

/// Why this run expires nothing (`keep_when_stale`, the stale guard): the job's previous success
/// ended longer ago than the setting, or is unknown (no history, or one that cannot be read), or
/// the last run's spot check failed. None without the setting, or when none of that holds.
pub(crate) fn expiry_held(plan: &JobPlan) -> Option<String> {
    let limit = plan.settings.get(&crate::contract::core_settings::KEEP_WHEN_STALE)?;
    let history = match History::read(Path::new(&plan.state_dir()), plan.label()) {
        Ok(history) => history,
        Err(err) => {
            return Some(format!(
                "the job's history cannot be read ({}), so its last success is unknown (keep_when_stale)",
                crate::contract::error::chain(&err)
            ))
        }
    };
    if history.last().and_then(|run| run.verify.as_ref()).is_some_and(|verify| !verify.passed) {
        return Some("the last run's spot check failed (keep_when_stale)".to_string());
    }
    let Some(success) = history.last_success() else {
        return Some("no earlier successful run is recorded (keep_when_stale)".to_string());
    };
    let age = jiff::Timestamp::now().as_second() as f64 - success.end();
    // Days where a person counts in days: `10 days`, `7d`.
    let shown = crate::engine::process::humane_days;
    let limit_shown = match limit.as_secs() {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s => crate::engine::process::humane(Duration::from_secs(s)),
    };
    (age > limit.as_secs_f64()).then(|| {
        format!(
            "the last success ended {} ago, longer than keep_when_stale {limit_shown} (a host that was down keeps its history)",
            shown(age.max(0.0) as u64)
        )
    })
}

/// What the next run's retention would do to the backups the store holds now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Preview {
    /// The retention step's name (`zfs expiry`).
    pub step: String,
    /// Why the stale guard holds, when it does: then nothing is destroyed.
    pub held: Option<String>,
    /// What `ari prune --force` overrides (the stale guard, a failed last run), when it does.
    pub overridden: Option<String>,
    /// Every backup retention may destroy, oldest first, with the rules that keep it.
    pub verdicts: Vec<crate::contract::plugin::Verdict>,
}

/// The preview of `plan`'s retention (its listing runs, read-only, on the store's host), as the
/// next run would judge it, or as `ari prune` would (`prune: Some(force)`); none when its
/// backend has no retention ari judges.
pub fn preview_retention(plan: &JobPlan, prune: Option<bool>) -> Result<Option<Preview>, String> {
    let Some(retention) = plan.retention() else { return Ok(None) };
    // What keeps every backup while a guard holds: its name in the preview.
    let (held, guard) = match (prune, expiry_held(plan)) {
        (Some(true), _) => (None, ""),
        (_, Some(why)) => (Some(why), "stale guard"),
        (Some(false), None) => (prune_held(plan, false), "prune guard"),
        (None, None) => (None, ""),
    };
    let overridden = prune.and_then(|force| prune_overridden(plan, force));
    let verdicts =
        crate::engine::retention::preview(retention, &plan.query_runner(), held.as_ref().map(|_| guard))?;
    Ok(Some(Preview { step: retention.name.clone(), held, overridden, verdicts }))
}

/// Whether this run includes the spot check: always, unless `verify_every` is set and a check
/// ran to a verdict within it (a run whose check failed does not count: the next one checks
/// again).
fn verify_due(plan: &JobPlan) -> bool {
    let Some(every) = plan.settings.get(&crate::contract::core_settings::VERIFY_EVERY) else { return true };
    if plan.verify.is_empty() {
        return false;
    }
    let history = History::read(Path::new(&plan.state_dir()), plan.label()).unwrap_or_default();
    let last = history.runs.iter().rev().find(|run| run.verify.as_ref().is_some_and(|v| v.passed));
    let now = jiff::Timestamp::now().as_second();
    last.is_none_or(|run| {
        now.saturating_sub(run.started) >= i64::try_from(every.as_secs()).unwrap_or(i64::MAX)
    })
}

/// How long a shared connection may take to come up: ssh's own connect timeout, and then some
/// for the key exchange and authentication.
pub(crate) fn master_timeout(plan: &JobPlan) -> Duration {
    let connect = match plan.settings.get(&SSH_CONNECT_TIMEOUT) {
        0 => 60,
        seconds => u64::from(seconds),
    };
    Duration::from_secs(connect + 10)
}

/// Waits, when the job's last run ended in this very second, for the next one, for a backend
/// whose tool names a backup by the second (rdiff-backup's increments) and refuses a second
/// backup within it ([`crate::contract::plugin::BackupBackend::names_backups_by_the_second`]).
fn wait_for_the_next_second(plan: &JobPlan) {
    if !crate::contract::plugin::backend(plan.backend).is_some_and(|b| b.names_backups_by_the_second()) {
        return;
    }
    // A history that cannot be read gives no time to wait for; the run's own record of it
    // moves a corrupt one aside and says so.
    let history = History::read(Path::new(&plan.state_dir()), plan.label()).unwrap_or_default();
    if let Some(last) = history.last() {
        // Without its precise end (an older history), the start's lost fraction may hide up
        // to a second.
        wait_until_after(last.ended.unwrap_or(last.started as f64 + last.duration_seconds + 1.0));
    }
}

/// Returns once the clock's second is past the second of `ended` (seconds since the epoch).
fn wait_until_after(ended: f64) {
    let second = ended.floor() as i64;
    loop {
        let now = jiff::Timestamp::now();
        if now.as_second() > second {
            return;
        }
        let into_second = u64::try_from(now.subsec_nanosecond()).unwrap_or(0).min(999_999_999);
        let pause = Duration::from_nanos(1_000_000_000 - into_second);
        log::debug!("the job's last run ended within this second: waiting {pause:?} for the next");
        std::thread::sleep(pause);
    }
}

/// Undoes what a ledger records, reaching its hosts as the run that wrote it did.
fn undo_ledger(ledger: &mut Ledger, stop: &StopFlags, command_timeout: Option<Duration>) -> Recovery {
    let runner = Runner::new(ledger.ssh().clone(), false)
        .with_cancel(stop.interrupted.clone())
        .with_command_timeout(command_timeout);
    crate::engine::recovery::recover(ledger, &runner)
}

/// How recovering a job's ledger ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecoverOutcome {
    /// A run of the job holds its lock: its ledger was left alone.
    Locked(LockError),
    /// Its ledger cannot be used (refused, corrupt, unreadable): nothing ran.
    LedgerRefused(LedgerError),
    /// The ledger was empty.
    Nothing,
    /// What the ledger recorded, undone or not.
    Recovered(Recovery),
}

/// Recovers one job's ledger under its lock, as `ari recover` does.
pub fn recover_job(
    state_dir: &Path,
    label: &str,
    ssh: &Ssh,
    stop: &StopFlags,
    command_timeout: Option<Duration>,
) -> RecoverOutcome {
    let _lock = match Lock::try_acquire(state_dir, label, &format!("job {label}")) {
        Ok(lock) => lock,
        Err(err) => return RecoverOutcome::Locked(err),
    };
    let mut ledger = match Ledger::open(state_dir, label, ssh) {
        Ok(ledger) => ledger,
        Err(err) => return RecoverOutcome::LedgerRefused(err),
    };
    if ledger.is_empty() {
        return RecoverOutcome::Nothing;
    }
    RecoverOutcome::Recovered(undo_ledger(&mut ledger, stop, command_timeout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_after_one_that_ended_in_this_second_starts_in_the_next() {
        let now = jiff::Timestamp::now();
        let ended = now.as_second() as f64 + 0.999;
        wait_until_after(ended);
        assert!(
            jiff::Timestamp::now().as_second() > now.as_second(),
            "still in the second the last run ended in"
        );
        // A run that ended in an earlier second does not wait at all: the clock's second is
        // still the one this call started in (or just one later).
        let before = jiff::Timestamp::now().as_second();
        wait_until_after((before - 5) as f64);
        assert!(jiff::Timestamp::now().as_second() - before <= 1);
    }
}
