//! `ari restore JOB PATH [--at TIME] --to DIR [--force]`: copies PATH, as the job names it on
//! its host, out of the job's store as one backup holds it, into DIR/PATH on this machine. Every
//! value is checked, the store's history read and the backup chosen before anything is written;
//! the copy itself runs under the job's lock, through ari-core's restore engine.

use std::path::Path;

use ari_core::error::chain;
use ari_core::exit;
use ari_core::plugin::{join_path, relative_to, RestoreRequest};
use ari_core::restore::{self, RestoreError};
use ari_core::step::Host;

use super::{signals, usage_errors, Context};
use crate::jobs;

/// What the command line asked for.
pub struct Request {
    pub job: String,
    pub path: String,
    pub at: Option<String>,
    pub to: String,
    pub force: bool,
}

pub fn restore(context: &Context, request: &Request) -> i32 {
    if let Some(at) = &request.at {
        if let Err(why) = restore::check_time(at) {
            return usage_errors(&[why]);
        }
    }
    let plans = match jobs::plan_all(
        std::slice::from_ref(&request.job),
        &context.jobs_dir(),
        &context.config.layer,
        &context.command_line,
    ) {
        Ok(plans) => plans,
        Err(errors) => return usage_errors(&errors),
    };
    let Some(plan) = plans.first() else { return usage_errors(&[format!("no job {}", request.job)]) };
    let label = plan.label();
    ari_core::log_context::set_job_label(Some(label));
    if let Err(why) = restore::check_path(&request.path, &plan.job.include, &plan.job.exclude) {
        return usage_errors(&[why]);
    }
    let path = join_path("/", &request.path);
    let target = match target(&request.to, &path) {
        Ok(target) => target,
        Err(why) => return usage_errors(&[why]),
    };
    if let Some(store) = plan
        .directories
        .iter()
        .find(|d| relative_to(&target, &d.path).is_some() || relative_to(&d.path, &target).is_some())
    {
        return usage_errors(&[format!(
            "--to: {target} would be inside {} ({}) or hold it; restore outside the store",
            store.setting, store.path
        )]);
    }
    if std::fs::symlink_metadata(&target).is_ok() && !request.force {
        return usage_errors(&[format!(
            "{target} exists, and ari never overwrites: choose another --to, or give --force to replace it"
        )]);
    }
    let Some(query) = &plan.history else {
        return usage_errors(&[format!(
            "the {} backend keeps no backups that ari can restore from; ask its tool",
            plan.backend
        )]);
    };

    // Which backup: from what the store holds now.
    let Some(backups) = super::history::list(plan, query) else { return exit::JOB_FAILED };
    let now = jiff::Timestamp::now().as_second();
    let backup = match restore::select(&backups, request.at.as_deref(), now) {
        Ok(backup) => backup,
        Err(why) => return usage_errors(&[why]),
    };
    let wanted = RestoreRequest::new(path.clone(), backup.clone(), target.clone(), request.force);
    let copy = match plan.restore(&wanted) {
        Ok(Some(copy)) => copy,
        Ok(None) => return usage_errors(&[format!("the {} backend cannot restore", plan.backend)]),
        Err(err) => return usage_errors(&[err.to_string()]),
    };
    let dry_run = plan.settings.get(&ari_core::core_settings::DRY_RUN);
    if dry_run {
        ari_core::fsutil::forbid_writes();
    }
    let stop = match signals::install() {
        Ok(stop) => stop,
        Err(err) => return usage_errors(&[format!("cannot install signal handlers: {err}")]),
    };
    let when = restore::shown_time(backup.time);
    log::info!("restoring {path} as of {when} (backup {}) to {target}", backup.name);
    match restore::run(plan, &copy, Path::new(&target), &stop) {
        Ok(()) if dry_run => exit::SUCCESS,
        Ok(()) => {
            let is_dir = std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir());
            println!("restored {path} as of {when} (backup {}) to {target}", backup.name);
            println!("ari copies nothing back; to put it in place on the job's host:");
            println!("  {}", copy_back(plan, &target, &path, is_dir));
            exit::SUCCESS
        }
        Err(RestoreError::Locked(err)) => {
            log::error!("{err}");
            exit::JOB_FAILED
        }
        Err(RestoreError::NoTargetDirectory(err)) => usage_errors(&[format!("--to: {}", chain(&err))]),
        Err(err) => {
            log::error!("restoring {path} failed: {}", chain(&err));
            if std::fs::symlink_metadata(&target).is_ok() {
                log::error!("{target} may hold part of the copy");
            }
            exit::JOB_FAILED
        }
    }
}

/// DIR (absolute, or relative to the working directory) joined with PATH.
fn target(to: &str, path: &str) -> Result<String, String> {
    ari_core::kinds::check_no_control(to)
        .map_err(|why| format!("--to `{}` {why}", ari_core::kinds::shown(to)))?;
    if to.is_empty() {
        return Err("--to: the directory is empty".into());
    }
    let dir = std::path::absolute(to).map_err(|err| format!("--to {to}: {err}"))?;
    let dir = dir.to_string_lossy();
    if dir.split('/').any(|part| part == "..") {
        return Err(format!("--to {to}: give the directory without `..`"));
    }
    Ok(join_path(&dir, path))
}

/// The command that puts `target` (the restored `path`) back in its place on the job's host,
/// reaching it as the job does (its ssh, port and options).
fn copy_back(plan: &ari_core::pipeline::JobPlan, target: &str, path: &str, is_dir: bool) -> String {
    let slash = if is_dir { "/" } else { "" };
    let quote = |word: &str| ari_core::quote::shell_join([word]);
    let (to, rsh) = match Host::named(&plan.job.source_hostname) {
        Host::Local => (format!("{path}{slash}"), String::new()),
        Host::Remote(host) => {
            let ssh = &plan.ssh;
            let mut words = vec![ssh.path.clone()];
            if let Some(port) = ssh.port {
                words.extend(["-p".to_string(), port.to_string()]);
            }
            words.extend(ssh.options.iter().cloned());
            let rsh = if words.len() > 1 {
                format!("-e {} ", quote(&ari_core::quote::rsync_rsh_join(&words)))
            } else {
                String::new()
            };
            (format!("{}:{path}{slash}", ssh.destination(&host)), rsh)
        }
    };
    format!("rsync -a --numeric-ids {rsh}{}{slash} {}", quote(target), quote(&to))
}
