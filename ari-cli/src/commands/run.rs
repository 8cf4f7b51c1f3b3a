//! `ari run JOB... [--wait]`: plan every job, find every tool, then run the jobs one after
//! another, each under its lock, recovering first what a crashed run of it left behind.

use std::path::PathBuf;

use ari_core::core_settings::{COMMAND_TIMEOUT, DRY_RUN, JOB_TIMEOUT};
use ari_core::exit;
use ari_core::history::{History, RunRecord};
use ari_core::ledger::Ledger;
use ari_core::lock::Lock;
use ari_core::log_context::set_job_label;
use ari_core::pipeline::{self, JobPlan, JobReport, Recovery};
use ari_core::process::Runner;

use super::signals::{self, Flags};
use super::{chain, ledger_problem, report, usage_errors, Context};
use crate::jobs;

pub fn run(context: &Context, names: &[String], wait: bool) -> i32 {
    let plans = match jobs::plan_all(names, &context.jobs_dir(), &context.config.layer, &context.command_line)
    {
        Ok(plans) => plans,
        Err(errors) => return usage_errors(&errors),
    };
    let missing = pipeline::missing_tools(&plans);
    if !missing.is_empty() {
        let errors: Vec<String> = missing.iter().map(ToString::to_string).collect();
        return usage_errors(&errors);
    }
    let flags = match signals::install() {
        Ok(flags) => flags,
        Err(err) => return usage_errors(&[format!("cannot install signal handlers: {err}")]),
    };
    let started = std::time::SystemTime::now();
    let mut code = exit::SUCCESS;
    let mut reports = Vec::new();
    for plan in &plans {
        set_job_label(Some(plan.label()));
        let job = run_job(plan, &flags, wait);
        code = exit::worst(code, job.code);
        reports.push(report::job_json(plan, &job));
        set_job_label(None);
    }
    if !plans.iter().all(|p| p.settings.get(&DRY_RUN)) {
        report::write_run_report(
            &context.state_dir(),
            "run",
            started,
            code,
            reports,
            Vec::new(),
            serde_json::json!({}),
        );
    }
    code
}

/// How one job of a run ended.
pub struct JobRun {
    /// Its exit code.
    pub code: i32,
    /// What its steps did, when they ran.
    pub report: Option<JobReport>,
    /// Why its steps did not run, when they did not.
    pub error: Option<String>,
    /// What went wrong beside the backup (its history could not be written): the run report
    /// records them, and a job that succeeded gets the outcome `warning`.
    pub warnings: Vec<String>,
}

/// Runs one job under its lock, after recovering what a crashed run left. A real run is added
/// to the job's history; when that fails, the backup still counts, and the failure is a warning.
pub fn run_job(plan: &JobPlan, flags: &Flags, wait: bool) -> JobRun {
    let started = jiff::Timestamp::now().as_second();
    let clock = std::time::Instant::now();
    let (code, report, error) = match run_job_steps(plan, flags, wait) {
        Ok((code, report)) => (code, report, None),
        // Another run holds the job: this one did nothing worth a place in the history.
        Err(Unrun::Locked(error)) => {
            return JobRun { code: exit::JOB_FAILED, report: None, error: Some(error), warnings: Vec::new() }
        }
        Err(Unrun::Refused(code, error)) => (code, None, Some(error)),
    };
    let mut warnings = Vec::new();
    if !plan.settings.get(&DRY_RUN) {
        let record = RunRecord { started, duration_seconds: clock.elapsed().as_secs_f64(), exit: code };
        match History::record(&PathBuf::from(plan.state_dir()), plan.label(), record) {
            Ok(None) => {}
            Ok(Some(aside)) => warnings.push(format!(
                "the job's history was corrupt: it was moved aside to {} and a new one started",
                aside.display()
            )),
            Err(err) => {
                let warning = format!("the job's history could not be written: {}", chain(&err));
                if code == exit::SUCCESS {
                    log::error!("the backup succeeded, but {warning}; `ari status` will not show this run");
                } else {
                    log::error!("{warning}");
                }
                warnings.push(warning);
            }
        }
    }
    JobRun { code, report, error, warnings }
}

/// Why a job's steps did not run.
enum Unrun {
    /// Another run holds its lock (or the lock could not be taken): nothing happened.
    Locked(String),
    /// Its ledger could not be used, or recovery failed: the exit code, and why.
    Refused(i32, String),
}

/// The job's steps, unless its lock or its ledger stop them.
fn run_job_steps(plan: &JobPlan, flags: &Flags, wait: bool) -> Result<(i32, Option<JobReport>), Unrun> {
    let dry_run = plan.settings.get(&DRY_RUN);
    let state_dir = PathBuf::from(plan.state_dir());
    let label = plan.label();
    let runner = Runner::new(plan.ssh.clone(), dry_run)
        .with_cancel(flags.interrupted.clone())
        .with_abort(flags.abort.clone())
        .with_command_timeout(plan.settings.get(&COMMAND_TIMEOUT))
        .with_job_timeout(plan.settings.get(&JOB_TIMEOUT));
    if dry_run {
        // A dry run makes nothing: no lock, no ledger, no recovery.
        match Ledger::open(&state_dir, label, &plan.ssh) {
            Ok(ledger) if !ledger.is_empty() => log::warn!(
                "the ledger holds {} things a crashed run left behind; a real run would undo them first",
                ledger.entries().len()
            ),
            Ok(_) => {}
            Err(err) => log::warn!("a real run would not run: {}", ledger_problem(label, &err)),
        }
        let report = pipeline::run(plan, &runner, &mut Ledger::disabled());
        report_failures(&report);
        return Ok((report.exit_code(), Some(report)));
    }
    let _lock = match Lock::acquire(&state_dir, label, &format!("job {label}"), wait) {
        Ok(lock) => lock,
        Err(err) => {
            let error = chain(&err);
            log::error!("{error}");
            return Err(Unrun::Locked(error));
        }
    };
    let mut ledger = match Ledger::open(&state_dir, label, &plan.ssh) {
        Ok(ledger) => ledger,
        Err(err) => {
            let error = ledger_problem(label, &err);
            log::error!("{error}");
            return Err(Unrun::Refused(exit::CLEANUP_FAILED, error));
        }
    };
    if !ledger.is_empty() {
        log::error!(
            "a crashed run left {} things behind ({}); recovering them first",
            ledger.entries().len(),
            ledger.entries().iter().filter_map(|e| e.removes.as_deref()).collect::<Vec<_>>().join("; ")
        );
        let recoverer = Runner::new(ledger.ssh().clone(), false)
            .with_cancel(flags.interrupted.clone())
            .with_command_timeout(plan.settings.get(&COMMAND_TIMEOUT));
        let recovery = pipeline::recover(&mut ledger, &recoverer);
        if !report_recovery(&recovery) {
            let error = "the job does not run while its ledger holds what a crashed run left (exit 3)";
            log::error!("{error}");
            return Err(Unrun::Refused(exit::CLEANUP_FAILED, error.to_string()));
        }
    }
    let report = pipeline::run(plan, &runner, &mut ledger);
    report_failures(&report);
    Ok((report.exit_code(), Some(report)))
}

/// Logs what a recovery did; true when everything was undone.
pub fn report_recovery(recovery: &Recovery) -> bool {
    for name in &recovery.undone {
        log::info!("recovered: {name}");
    }
    for failure in &recovery.failures {
        let left = failure.removes.as_deref().unwrap_or("something");
        log::error!("recovery step {} failed: {}; left behind: {left}", failure.step, chain(&failure.error));
    }
    recovery.failures.is_empty()
}

fn report_failures(report: &JobReport) {
    if let Some(failure) = &report.failure {
        if failure.is_between_steps() {
            log::error!("{}", chain(&failure.error));
        } else {
            log::error!("{} step {} failed: {}", failure.phase.as_str(), failure.step, chain(&failure.error));
        }
    }
    for failure in &report.cleanup_failures {
        let left = failure.removes.as_deref().unwrap_or("something");
        log::error!(
            "cleanup step {} failed after its retries: {}; left behind: {left}",
            failure.step,
            chain(&failure.error)
        );
    }
    for failure in &report.post_failures {
        log::error!("post step {} failed: {}", failure.step, chain(&failure.error));
    }
    match report.exit_code() {
        exit::SUCCESS => log::info!("job succeeded in {:.1}s", report.duration.as_secs_f64()),
        exit::CLEANUP_FAILED => log::error!("job failed and its cleanup failed (exit 3)"),
        _ => log::error!("job failed (exit 1)"),
    }
}
