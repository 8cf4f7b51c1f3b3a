//! `ari recover [JOB...]`: undo what crashed runs left behind, from each job's ledger (every
//! ledger in state_dir when no job is named), newest first, each only while it is still there.

use ari_core::core_settings::COMMAND_TIMEOUT;
use ari_core::exit;
use ari_core::job::Job;
use ari_core::ledger::Ledger;
use ari_core::lock::Lock;
use ari_core::log_context::set_job_label;
use ari_core::pipeline;
use ari_core::process::Runner;

use super::run::report_recovery;
use super::{signals, usage_errors, Context};
use crate::jobs;

pub fn recover(context: &Context, names: &[String]) -> i32 {
    let state_dir = context.state_dir();
    let labels: Vec<String> = if names.is_empty() {
        Ledger::pending(&state_dir)
    } else {
        let mut labels = Vec::new();
        for name in names {
            // A job whose file is gone can still be recovered by its label.
            if Ledger::path(&state_dir, name).exists() {
                labels.push(name.clone());
                continue;
            }
            match jobs::resolve(name, &context.jobs_dir())
                .and_then(|p| Job::load(&p).map_err(|e| e.to_string()))
            {
                Ok(job) => labels.push(job.label),
                Err(err) => return usage_errors(&[err]),
            }
        }
        labels
    };
    if labels.is_empty() {
        println!("nothing to recover: no ledger in {}", state_dir.join("ledger").display());
        return exit::SUCCESS;
    }
    let flags = match signals::install() {
        Ok(flags) => flags,
        Err(err) => return usage_errors(&[format!("cannot install signal handlers: {err}")]),
    };
    let mut code = exit::SUCCESS;
    for label in labels {
        set_job_label(Some(&label));
        let _lock = match Lock::acquire(&state_dir, &label, &format!("job {label}"), false) {
            Ok(lock) => lock,
            Err(err) => {
                log::error!("{}: not recovering a job that is running", super::chain(&err));
                code = exit::worst(code, exit::JOB_FAILED);
                continue;
            }
        };
        let mut ledger =
            match Ledger::open(&state_dir, &label, &ari_core::process::Ssh::from_settings(&context.base)) {
                Ok(ledger) => ledger,
                Err(err) => {
                    log::error!("cannot read the ledger: {err}");
                    code = exit::worst(code, exit::CLEANUP_FAILED);
                    continue;
                }
            };
        if ledger.is_empty() {
            println!("job {label}: nothing to recover");
            continue;
        }
        let runner = Runner::new(ledger.ssh().clone(), false)
            .with_cancel(flags.interrupted.clone())
            .with_command_timeout(context.base.get(&COMMAND_TIMEOUT));
        let recovery = pipeline::recover(&mut ledger, &runner);
        for name in &recovery.undone {
            println!("job {label}: undone: {name}");
        }
        if report_recovery(&recovery) {
            println!("job {label}: recovered");
        } else {
            println!(
                "job {label}: {} things could not be undone; see the errors above",
                recovery.failures.len()
            );
            code = exit::worst(code, exit::CLEANUP_FAILED);
        }
        set_job_label(None);
    }
    code
}
