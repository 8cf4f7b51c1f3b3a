//! `ari prune JOB... [--wait]`: applies the jobs' retention now (a changed `zfs_keep`, say),
//! as a run would after a successful backup: under the job's lock, after recovering what a
//! crashed run left, and (unless `--force`) with the stale guard and not after a failed run. It
//! first shows what retention keeps, by rule, and what it destroys; with `--dry-run` it only
//! shows that (the listing runs, read-only).

use ari_core::core_settings::DRY_RUN;
use ari_core::engine_api::exit;
use ari_core::engine_api::job_run;
use ari_core::engine_api::job_run::{preview_retention, Preview};
use ari_core::engine_api::log_context::set_job_label;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::context::{jobs_arg, jobs_of, Context, Exec};
use super::run::{ready_to_run, wait_arg};

pub fn cli() -> Command {
    Command::new("prune")
        .about("apply the jobs' retention now, as a run would after a successful backup; with --dry-run, only show what it keeps and destroys")
        .arg(jobs_arg(true))
        .arg(wait_arg())
        .arg(Arg::new("force").long("force").action(ArgAction::SetTrue).help(
            "destroy even when the job's last run failed, no run of it is recorded, its history cannot be read, or the stale guard (keep_when_stale) holds; it says which guard it overrides",
        ))
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let (jobs, wait, force) = (jobs_of(matches), matches.get_flag("wait"), matches.get_flag("force"));
    Ok(Exec::with_config(move |context| prune(context, &jobs, wait, force)))
}

fn prune(context: &Context, names: &[String], wait: bool, force: bool) -> i32 {
    let (plans, stop) = match ready_to_run(context, names) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let mut code = exit::SUCCESS;
    for plan in &plans {
        set_job_label(Some(plan.label()));
        if plan.backend_post.is_empty() {
            println!("job {}: nothing to prune: the job sets no retention", plan.label());
            set_job_label(None);
            continue;
        }
        match preview_retention(plan, Some(force)) {
            Ok(Some(preview)) => print!("{}", preview_text(plan.label(), &preview)),
            Ok(None) => println!(
                "job {}: the {} backend's retention is one command of its tool's, which ari prune runs (ari plan shows it)",
                plan.label(),
                plan.backend
            ),
            Err(why) => {
                log::error!("the store's backups cannot be judged: {why}");
                code = exit::worst(code, exit::JOB_FAILED);
                set_job_label(None);
                continue;
            }
        }
        if !plan.settings.get(&DRY_RUN) {
            let run = job_run::prune_job(plan, &stop, wait, force);
            super::run::present(plan, &run);
            println!("job {}: {}", plan.label(), pruned(plan.label(), &run));
            code = exit::worst(code, run.exit_code());
        }
        set_job_label(None);
    }
    code
}

/// What a prune did, in a line.
fn pruned(label: &str, run: &job_run::JobRun) -> String {
    if let Some(held) = run.warnings.iter().find(|w| matches!(w, job_run::RunWarning::ExpiryHeld(_))) {
        return held.to_string();
    }
    match &run.outcome {
        job_run::JobOutcome::Ran(report) => match (report.retained(), run.exit_code()) {
            (Some(retained), exit::SUCCESS) => {
                format!("pruned: {} kept, {} destroyed", retained.kept, retained.destroyed)
            }
            (Some(retained), _) => format!(
                "pruning failed ({} kept, {} destroyed): see the errors above",
                retained.kept, retained.destroyed
            ),
            (None, exit::SUCCESS) => "pruned".to_string(),
            (None, _) => "pruning failed: see the errors above".to_string(),
        },
        _ => run.refusal(label).unwrap_or_else(|| "not pruned".to_string()),
    }
}

/// What the next run's retention keeps, by rule, and destroys: newest first, as `ari history`
/// lists backups.
pub fn preview_text(label: &str, preview: &Preview) -> String {
    let mut out = format!("job {label}: what {} keeps and destroys, newest first\n", preview.step);
    if let Some(why) = &preview.held {
        out.push_str(&format!("  nothing is destroyed: {why}\n"));
    }
    if let Some(why) = &preview.overridden {
        out.push_str(&format!("  {why}\n"));
    }
    if preview.verdicts.is_empty() {
        out.push_str("  no backups to judge yet\n");
        return out;
    }
    for verdict in preview.verdicts.iter().rev() {
        out.push_str(&format!(
            "  {:<26} {:<40} {}\n",
            ari_core::engine_api::restore::shown_time(verdict.time()),
            verdict.name(),
            verdict_text(verdict.kept_by())
        ));
    }
    let destroyed = preview.verdicts.iter().filter(|v| v.kept_by().is_empty()).count();
    out.push_str(&format!("  {} kept, {destroyed} destroyed\n", preview.verdicts.len() - destroyed));
    out
}

/// `keep: daily, weekly`, or `destroy`.
pub fn verdict_text(kept_by: &[String]) -> String {
    if kept_by.is_empty() {
        "destroy".to_string()
    } else {
        format!("keep: {}", kept_by.join(", "))
    }
}
