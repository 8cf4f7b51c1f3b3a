//! `ari run JOB...`: plan every job, find every tool, then run the jobs one after another.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use ari_core::core_settings::DRY_RUN;
use ari_core::exit;
use ari_core::log_context::set_job_label;
use ari_core::pipeline::{self, JobReport};
use ari_core::process::Runner;

use super::{usage_errors, Context};
use crate::jobs;

pub fn run(context: &Context, names: &[String]) -> i32 {
    let plans = match jobs::plan_all(names, &context.jobs_dir(), &context.config.layer, &context.command_line)
    {
        Ok(plans) => plans,
        Err(errors) => return usage_errors(&errors),
    };
    let missing = pipeline::missing_tools(&plans);
    if !missing.is_empty() {
        let errors: Vec<String> = missing
            .iter()
            .map(|(label, tool, err)| format!("job {label}: {}: {err}", tool.setting))
            .collect();
        return usage_errors(&errors);
    }
    let interrupted = match install_signal_handlers() {
        Ok(flag) => flag,
        Err(err) => return usage_errors(&[format!("cannot install signal handlers: {err}")]),
    };
    let mut code = exit::SUCCESS;
    for plan in &plans {
        set_job_label(Some(plan.label()));
        let runner =
            Runner::new(plan.ssh.clone(), plan.settings.get(&DRY_RUN)).with_cancel(interrupted.clone());
        let report = pipeline::run(plan, &runner);
        report_failures(&report);
        code = exit::worst(code, report.exit_code());
        set_job_label(None);
    }
    code
}

/// SIGINT, SIGTERM and SIGHUP only set a flag: the running command is stopped (its whole
/// process group), then cleanup and post steps run as for a failure.
fn install_signal_handlers() -> std::io::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        signal_hook::flag::register(signal, flag.clone())?;
    }
    Ok(flag)
}

fn report_failures(report: &JobReport) {
    if let Some(failure) = &report.failure {
        log::error!("{} step {} failed: {}", failure.phase.as_str(), failure.step, failure.error);
    }
    for failure in &report.cleanup_failures {
        let left = failure.removes.as_deref().unwrap_or("something");
        log::error!(
            "cleanup step {} failed after its retries: {}; left behind: {left}",
            failure.step,
            failure.error
        );
    }
    for failure in &report.post_failures {
        log::error!("post step {} failed: {}", failure.step, failure.error);
    }
    match report.exit_code() {
        exit::SUCCESS => log::info!("job succeeded in {:.1}s", report.duration.as_secs_f64()),
        exit::CLEANUP_FAILED => log::error!("job failed and its cleanup failed (exit 3)"),
        _ => log::error!("job failed (exit 1)"),
    }
}
