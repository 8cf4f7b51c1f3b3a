//! `ari run JOB... [--wait]`: plan every job, find every tool, then run the jobs one after
//! another through ari-core's job runner (lock, recovery, pipeline, history), and present how
//! each ended.

use ari_core::core_settings::DRY_RUN;
use ari_core::engine_api::exit;
use ari_core::engine_api::job_run::{self, JobOutcome, JobRun, RunWarning};
use ari_core::engine_api::log_context::set_job_label;
use ari_core::engine_api::pipeline::JobReport;
use ari_core::engine_api::plan::JobPlan;
use ari_core::engine_api::recovery::Recovery;
use ari_core::engine_api::report;
use ari_core::error::chain;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::context::{jobs_arg, jobs_of, usage_errors, Context, Exec};
use super::signals;
use crate::jobs;

pub fn cli() -> Command {
    Command::new("run").about("run jobs, one after another").arg(jobs_arg(true)).arg(wait_arg())
}

/// `--wait`: for a run of the same job that holds its lock.
pub fn wait_arg() -> Arg {
    Arg::new("wait")
        .long("wait")
        .action(ArgAction::SetTrue)
        .help("wait for a run of the same job that is already running, instead of exiting")
}

/// The jobs planned, every tool found, and the signal handlers installed: what must hold before
/// a job's lock is taken; else the exit code, the errors said.
pub fn ready_to_run(context: &Context, names: &[String]) -> Result<(Vec<JobPlan>, job_run::StopFlags), i32> {
    let plans = jobs::plan_all(names, &context.jobs_dir(), &context.config.layer, &context.command_line)
        .map_err(|errors| usage_errors(&errors))?;
    let missing = ari_core::engine_api::preflight::missing_tools(&plans);
    if !missing.is_empty() {
        let errors: Vec<String> = missing.iter().map(ToString::to_string).collect();
        return Err(usage_errors(&errors));
    }
    let stop = signals::install()
        .map_err(|err| usage_errors(&[format!("cannot install signal handlers: {err}")]))?;
    Ok((plans, stop))
}

/// The jobs, and whether to wait.
fn args(matches: &ArgMatches) -> (Vec<String>, bool) {
    (jobs_of(matches), matches.get_flag("wait"))
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let (jobs, wait) = args(matches);
    Ok(Exec::with_config(move |context| run(context, &jobs, wait)))
}

fn run(context: &Context, names: &[String], wait: bool) -> i32 {
    let (plans, stop) = match ready_to_run(context, names) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let started = std::time::SystemTime::now();
    let mut code = exit::SUCCESS;
    let mut reports = Vec::new();
    for plan in &plans {
        set_job_label(Some(plan.label()));
        let pings = crate::ping::Pings::start(plan, plan.settings.get(&DRY_RUN));
        let job = job_run::run_job(plan, &stop, wait);
        present(plan, &job);
        if let Some(pings) = pings {
            pings.finish(job.exit_code());
        }
        code = exit::worst(code, job.exit_code());
        reports.push(job.to_json(plan));
        set_job_label(None);
    }
    if !plans.iter().all(|p| p.settings.get(&DRY_RUN)) {
        write_report(context, "run", started, code, reports, Vec::new(), None);
    }
    code
}

/// Writes a run report, and the metrics file when `metrics_file` is set; a report that cannot be
/// written is an error on stderr, a metrics file a warning, and no more.
pub fn write_report(
    context: &Context,
    command: &str,
    started: std::time::SystemTime,
    code: i32,
    jobs: Vec<serde_json::Value>,
    invalid: Vec<report::Invalid>,
    limits: Option<report::RunAllLimits>,
) {
    if let Err(err) =
        report::write_run_report(&context.state_dir(), command, started, code, jobs, invalid, limits)
    {
        let what = format!("the run report could not be written: {}", chain(&err));
        if code == exit::SUCCESS {
            log::error!("the backup succeeded, but {what}");
        } else {
            log::error!("{what}");
        }
    }
    if let Some(path) = context.base.get(&ari_core::core_settings::METRICS_FILE) {
        if let Err(why) =
            ari_core::engine_api::metrics::write(&context.state_dir(), std::path::Path::new(&path))
        {
            log::warn!("{why}");
        }
    }
}

/// Says how one job's run ended, each failure once: what recovery undid or could not, why the
/// job did not run, which steps failed, and what went wrong beside the backup.
pub fn present(plan: &JobPlan, run: &JobRun) {
    if let Some(recovery) = &run.recovery {
        let left = recovery.undone.len() + recovery.failures.len();
        let what: Vec<&str> = recovery
            .undone
            .iter()
            .map(String::as_str)
            .chain(recovery.failures.iter().map(|f| f.step.as_str()))
            .collect();
        if recovery.failures.is_empty() {
            log::error!(
                "a crashed run left {left} things behind ({}); recovered them before the job ran",
                what.join("; ")
            );
        } else {
            log::error!(
                "a crashed run left {left} things behind ({}); {} could not be undone",
                what.join("; "),
                recovery.failures.len()
            );
        }
        present_recovery(recovery);
    }
    match &run.outcome {
        JobOutcome::Ran(report) => present_report(report),
        _ => {
            if let Some(why) = run.refusal(plan.label()) {
                log::error!("{why}");
            }
        }
    }
    for warning in &run.warnings {
        match warning {
            RunWarning::HistoryNotWritten(_) if run.exit_code() == exit::SUCCESS => {
                log::error!("the backup succeeded, but {warning}; `ari status` will not show this run")
            }
            RunWarning::HistoryNotWritten(_) => log::error!("{warning}"),
            // A corrupt history is news (a full disk, a crash mid-write, someone's hand): said
            // where cron mails it, without failing the run.
            RunWarning::HistoryMovedAside(_) if run.exit_code() == exit::SUCCESS => {
                log::error!("the backup succeeded, but {warning}")
            }
            RunWarning::HistoryMovedAside(_) => log::error!("{warning}"),
            _ => log::warn!("{warning}"),
        }
    }
}

/// Logs what a recovery did; true when everything was undone.
pub fn present_recovery(recovery: &Recovery) -> bool {
    for name in &recovery.undone {
        log::info!("recovered: {name}");
    }
    for failure in &recovery.failures {
        let left = failure.removes.as_deref().unwrap_or("something");
        log::error!("recovery step {} failed: {}; left behind: {left}", failure.step, chain(&failure.error));
    }
    recovery.failures.is_empty()
}

fn present_report(report: &JobReport) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_among_setting_options() {
        let matches = crate::cli::subcommand_matches(crate::cli::RUN_WITH_SETTINGS);
        assert_eq!(args(&matches), (vec!["./job".into()], false));
        let matches = crate::cli::subcommand_matches(&["run", "a", "--wait", "b"]);
        assert_eq!(args(&matches), (vec!["a".into(), "b".into()], true));
    }
}
