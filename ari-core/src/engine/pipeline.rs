//! The job pipeline: a job's steps as one plan, and the one function that runs a plan.
//!
//! Order: the capacity check (a refusal stops the job before anything else runs) → the
//! retention's listing, when the backend has one (what the run makes is what is new after it) → `pre` → dumps → snapshot → `after_snapshot` → main → verify (the spot check, when due) → cleanup (the undo of every snapshot step
//! that succeeded, in reverse order) → the backend's post steps → `post`. The first failure
//! before cleanup stops the steps before cleanup; every cleanup and post step runs whatever
//! happened before it, and all their errors are collected. `ari plan` prints the same plan that
//! [`run`] executes.

use std::time::{Duration, Instant, SystemTime};

use crate::contract::step::{Action, Outcome, Phase, Step};
use crate::engine::exit;
use crate::engine::ledger::Ledger;
use crate::engine::plan::JobPlan;
use crate::engine::process::ProcessError;
use crate::engine::runner::Runner;
use crate::engine::step_run::{between_steps, run_step, undo_if_present, StepError, StepFailure, StepRecord};

/// The result of a job.
#[derive(Debug)]
pub struct JobReport {
    /// The job's label.
    pub label: String,
    /// The outcome of the steps up to the main step.
    pub(crate) outcome: Outcome,
    /// The failure that stopped the job before cleanup, if any.
    pub failure: Option<StepFailure>,
    /// Every cleanup step that failed even after its retries: something may be left behind.
    pub cleanup_failures: Vec<StepFailure>,
    /// Every post step that failed.
    pub post_failures: Vec<StepFailure>,
    /// What each step did, in order.
    pub records: Vec<StepRecord>,
    /// What the capacity check read of the store, and warned of, when it read it.
    pub(crate) capacity: Option<Box<crate::engine::capacity::Read>>,
    /// When the job started.
    pub started: SystemTime,
    /// How long it took.
    pub duration: Duration,
}

impl JobReport {
    /// The exit code this job alone would give: 3 when cleanup failed, 1 when anything else
    /// failed, 0 when everything succeeded.
    pub fn exit_code(&self) -> i32 {
        if !self.cleanup_failures.is_empty() {
            exit::CLEANUP_FAILED
        } else if self.failure.is_some() || !self.post_failures.is_empty() {
            exit::JOB_FAILED
        } else {
            exit::SUCCESS
        }
    }

    /// What the job's backup steps transferred, as far as their tools said.
    pub fn transfer(&self) -> crate::contract::step::Transfer {
        self.records
            .iter()
            .filter_map(|r| r.transfer)
            .fold(crate::contract::step::Transfer::default(), |sum, t| sum + t)
    }

    /// What retention kept and destroyed, when it judged.
    pub fn retained(&self) -> Option<crate::engine::step_run::Retained> {
        self.records.iter().find_map(|r| r.retained)
    }

    /// What the spot check found, when it ran to a verdict.
    pub(crate) fn verdict(&self) -> Option<&crate::engine::verify::Verdict> {
        self.records.iter().find_map(|r| r.verdict.as_ref())
    }
}

/// What a run of the pipeline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The whole job; its spot check only when due.
    Backup {
        /// Whether the spot check runs.
        verify_due: bool,
    },
    /// Only the backend's post steps and retention (`ari prune`): applies a changed policy now,
    /// under the same lock and stale guard as a run.
    Prune,
}

/// An undo waiting for the cleanup phase: its step, its ledger entry, and whether it runs only
/// while what it removes is still there (its step was stopped midway, so it may or may not have
/// made it).
struct PendingUndo<'a> {
    step: &'a Step,
    entry: u64,
    conditional: bool,
}

/// Runs a plan: the only place that decides what runs after what. Before a step that makes
/// something runs, its undo is recorded in `ledger`; once undone, the entry goes.
/// `scope` says what runs: the whole job, or only the backend's post steps (`ari prune`).
/// The spot check runs only when due; with it, a backup that does not hold what the
/// host held fails the job, so that no retention step follows it. With `expiry_held` (why:
/// the stale guard), no backend post step (retention, expiry) runs, whatever the outcome.
pub(crate) fn run(
    plan: &JobPlan,
    runner: &Runner,
    ledger: &mut Ledger,
    scope: Scope,
    expiry_held: Option<&str>,
) -> JobReport {
    let (backup, verify_due) = match scope {
        Scope::Backup { verify_due } => (true, verify_due),
        Scope::Prune => (false, false),
    };
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut records = Vec::new();
    let mut failure = None;
    let mut undo: Vec<PendingUndo> = Vec::new();
    // Repairs that failed, or a ledger that could not drop a repair: left behind, as cleanup's.
    let mut repair_failures = Vec::new();
    // The last step that ran and succeeded, for an interrupt that comes between steps.
    let mut last_done: Option<&Step> = None;

    let no_steps = Vec::new();
    let since = started.duration_since(SystemTime::UNIX_EPOCH).ok().map(|d| d.as_secs_f64());
    log::info!("started{}", if runner.is_dry_run() { " (dry run)" } else { "" });
    // The store's capacity and its pool's health, before anything runs: a store that refuses
    // the job runs no hook at all (not even `post`: nothing ran that one would undo). A prune
    // writes nothing, and frees what it destroys: a full store is no reason to refuse one.
    let mut checked = crate::engine::capacity::Checked::default();
    if let Some(query) = plan.capacity_query.as_ref().filter(|_| backup) {
        log::info!("checking the store's capacity");
        let hint = plan.space_hint();
        checked = crate::engine::capacity::check(
            query,
            &plan.capacity,
            &plan.settings,
            hint.as_deref(),
            runner,
            &mut records,
        );
        for warning in checked.read.iter().flat_map(|read| &read.warnings) {
            log::warn!("{warning}");
        }
        if let Some(refused) = checked.failure.take() {
            log::info!("stopped");
            return JobReport {
                label: plan.job.label.clone(),
                outcome: Outcome::Failure,
                failure: Some(refused),
                cleanup_failures: Vec::new(),
                post_failures: Vec::new(),
                records,
                capacity: checked.read,
                started,
                duration: clock.elapsed(),
            };
        }
    }
    // What the store holds before the backup, so that retention keeps what this run makes
    // even when the store host's clock dates it among the old.
    let mut before = crate::engine::retention::Before::NoneMade;
    if let Some(retention) =
        plan.retention().filter(|_| backup && expiry_held.is_none() && !runner.is_dry_run())
    {
        log::info!("listing the store's backups, so that retention keeps what this run makes");
        let step = crate::engine::retention::before_step(retention);
        match crate::engine::retention::before(&step, retention, runner, &mut records) {
            Ok(listed) => before = listed,
            Err(error) => failure = Some(StepFailure::new(&step, error)),
        }
    }
    // A listing that a signal or the deadline stopped stops the job before `pre`.
    let stopped_early = failure.is_some();
    'steps: for (message, steps) in [
        ("processing pre-job hooks", &plan.pre),
        ("streaming database dumps", &plan.dumps),
        ("creating snapshots", &plan.snapshot),
        ("processing after-snapshot hooks", &plan.after_snapshot),
        ("data backup started", &plan.main),
        ("verifying a sample of the backup", if verify_due { &plan.verify } else { &no_steps }),
    ] {
        let steps = if backup && !stopped_early { steps } else { &no_steps };
        if !steps.is_empty() {
            log::info!("{message}");
        }
        for step in steps {
            if runner.is_cancelled() {
                failure = Some(StepFailure::interrupted(step.phase, between_steps(last_done)));
                break 'steps;
            }
            if let Some(limit) = runner.job_expired() {
                failure = Some(StepFailure::new(step, StepError::JobTimeout { limit }));
                break 'steps;
            }
            let entry = match step.undo.as_deref().map(|u| ledger.record(u)).transpose() {
                Ok(entry) => entry,
                Err(source) => {
                    failure = Some(StepFailure::new(step, StepError::Ledger { source }));
                    break 'steps;
                }
            };
            let result = if let Action::Verify(sides) = &step.action {
                crate::engine::step_run::run_verify(step, sides, runner, since, &mut records)
            } else if let Action::Dump(stream) = &step.action {
                crate::engine::step_run::run_dump(step, stream, runner, &mut records)
            } else if step.repairs.is_empty() {
                run_step(step, runner, &mut records)
            } else {
                crate::engine::repair::run_repaired(step, runner, ledger, &mut records, &mut repair_failures)
            };
            if let (Some(step), Some(entry)) = (step.undo.as_deref(), entry) {
                match &result {
                    Ok(()) => undo.push(PendingUndo { step, entry, conditional: false }),
                    // Stopped midway: it may have made its thing, so undo it if it is there.
                    Err(StepError::Process(
                        ProcessError::Interrupted { .. } | ProcessError::TimedOut { .. },
                    )) => undo.push(PendingUndo { step, entry, conditional: true }),
                    // It failed: it made nothing.
                    Err(_) => {
                        if let Err(err) = ledger.remove(entry) {
                            log::warn!("cannot update the ledger: {err}");
                        }
                    }
                }
            }
            if let Err(error) = result {
                failure = Some(StepFailure::new(step, error));
                break 'steps;
            }
            last_done = Some(step);
        }
    }
    if failure.is_none() && backup {
        log::info!("data backup complete");
    }
    if backup && !verify_due && !plan.verify.is_empty() {
        log::info!("verify: not due in this run (verify_every)");
    }

    // Cleanup and post steps run even after an interrupt or past the job's deadline: their
    // runner is stopped only by the abort flag (a third signal).
    let finisher = runner.for_cleanup();
    let mut cleanup_failures = repair_failures;
    if !undo.is_empty() {
        log::info!("cleaning up snapshots");
    }
    for pending in undo.into_iter().rev() {
        let step = pending.step;
        if finisher.is_cancelled() {
            cleanup_failures.push(StepFailure::new(step, StepError::Aborted));
            continue;
        }
        let result = if pending.conditional {
            undo_if_present(step, &finisher, &mut records)
        } else {
            run_step(step, &finisher, &mut records)
        };
        match result {
            Ok(()) => {
                if let Err(source) = ledger.remove(pending.entry) {
                    cleanup_failures.push(StepFailure::new(step, StepError::Ledger { source }));
                }
            }
            Err(error) => cleanup_failures.push(StepFailure::new(step, error)),
        }
    }
    // A signal during cleanup did not stop it, but the job was interrupted all the same: the
    // post steps run as after a failure, and the job fails.
    if failure.is_none() && runner.is_cancelled() {
        failure = Some(StepFailure::interrupted(
            Phase::Cleanup,
            "during cleanup, after the backup succeeded".into(),
        ));
    }
    let outcome = if failure.is_none() { Outcome::Success } else { Outcome::Failure };
    let mut post_failures = Vec::new();
    log::info!("processing post-job hooks");
    // The backend's post steps are a chain, whatever `when` a plugin gave them: each runs only
    // after a successful backup and every backend post step before it (no expiry after a
    // failed `zfs snapshot`). The job's own `post` commands then run by their `when`.
    let mut chain_holds = outcome == Outcome::Success;
    for step in &plan.backend_post {
        if finisher.is_cancelled() {
            log::debug!("skipping {}: cleanup was aborted", step.name);
            continue;
        }
        if let Some(why) = expiry_held.filter(|_| chain_holds) {
            log::warn!("not running {}: {why}", step.name);
            continue;
        }
        if !chain_holds {
            log::info!(
                "skipping {}: it runs only after a successful backup and backend post steps",
                step.name
            );
            continue;
        }
        let result = match (&step.action, plan.retention()) {
            // A signal stops it, listing or destroying (what stays is safe), and so does the
            // job's deadline; other post steps go on.
            (Action::Retention(_), Some(retention)) => {
                crate::engine::retention::run(step, retention, &before, runner, &mut records)
            }
            _ => run_step(step, &finisher, &mut records),
        };
        if let Err(error) = result {
            post_failures.push(StepFailure::new(step, error));
            chain_holds = false;
        }
    }
    for step in plan.post.iter().filter(|_| backup) {
        if finisher.is_cancelled() {
            log::debug!("skipping {}: cleanup was aborted", step.name);
            continue;
        }
        if !step.when.applies(outcome) {
            log::debug!("skipping {} (when: {}, outcome: {outcome:?})", step.name, step.when.as_str());
            continue;
        }
        if let Err(error) = run_step(step, &finisher, &mut records) {
            post_failures.push(StepFailure::new(step, error));
        }
    }
    // A signal during the post steps did not stop them (they may restart what `pre` stopped),
    // but the job was interrupted: it fails.
    if failure.is_none() && runner.is_cancelled() {
        failure = Some(StepFailure::interrupted(
            Phase::Post,
            if backup { "during the post steps, after the backup succeeded" } else { "during ari prune" }
                .into(),
        ));
    }
    log::info!("stopped");
    JobReport {
        label: plan.job.label.clone(),
        outcome,
        failure,
        cleanup_failures,
        post_failures,
        records,
        capacity: checked.read,
        started,
        duration: clock.elapsed(),
    }
}
