//! `ari restore JOB PATH [--at TIME] --to DIR [--force]`: copies PATH, as the job names it on
//! its host, out of the job's store as one backup holds it, into DIR/PATH on this machine;
//! `ari restore JOB --dump NAME [--at TIME] --to DIR [--raw]` writes one of the job's database
//! dumps into DIR (decompressed unless `--raw`) and shows the command that loads it. Every
//! value is checked, DIR's directories judged, the store's history read and the backup chosen
//! before anything is written; the copy itself runs under the job's lock, through ari-core's
//! restore engine, which keeps it inside DIR.

use std::path::PathBuf;

use ari_core::engine_api::exit;
use ari_core::engine_api::files::RestoreTarget;
use ari_core::engine_api::restore::{self, RestoreError, Wanted};
use ari_core::error::chain;
use ari_core::plugin::{join_path, RestoreRequest};
use ari_core::step::Host;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::context::{usage_errors, Context, Exec};
use super::history::list;
use super::signals;
use crate::jobs;

pub fn cli() -> Command {
    Command::new("restore")
        .about("copy a path (or, with --dump, a database dump) out of the job's store, as a backup holds it, into a directory of this machine")
        .arg(Arg::new("job").value_name("JOB").required(true).help("a job file, or the name of one in jobs_dir"))
        .arg(
            Arg::new("path")
                .value_name("PATH")
                .required_unless_present("dump")
                .conflicts_with("dump")
                .help("the path as the job names it on its host (/etc/nginx), also when the job reads it from a snapshot"),
        )
        .arg(Arg::new("dump").long("dump").value_name("NAME").help(
            "instead of a path: the job's database dump NAME (its `dumps:` entry), written to DIR/FILE",
        ))
        .arg(
            Arg::new("raw")
                .long("raw")
                .action(ArgAction::SetTrue)
                .requires("dump")
                .help("with --dump: keep a compressed dump as it is stored (FILE.zst)"),
        )
        .arg(
            Arg::new("at")
                .long("at")
                .value_name("TIME")
                .help(format!("which backup (default: the newest): {}", restore::TIME_FORMS)),
        )
        .arg(
            Arg::new("to")
                .long("to")
                .value_name("DIR")
                .required(true)
                .help("restore into DIR/PATH (DIR/etc/nginx); missing directories are made 0700, and every directory on the way must be root's or ari's user's, writable by no one else unless sticky (/tmp)"),
        )
        .arg(
            Arg::new("force")
                .long("force")
                .action(ArgAction::SetTrue)
                .help("replace DIR/PATH if it exists, in one swap, removing only what was there (without it, ari never overwrites)"),
        )
}

/// What the command line asked for.
struct Request {
    job: String,
    what: What,
    raw: bool,
    at: Option<String>,
    to: String,
    force: bool,
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let request = Request {
        job: matches.get_one::<String>("job").cloned().ok_or("restore: a job is required")?,
        what: match (matches.get_one::<String>("path"), matches.get_one::<String>("dump")) {
            (_, Some(dump)) => What::Dump(dump.clone()),
            (Some(path), None) => What::Path(path.clone()),
            (None, None) => return Err("restore: a path or --dump NAME is required".into()),
        },
        raw: matches.get_flag("raw"),
        at: matches.get_one::<String>("at").cloned(),
        to: matches.get_one::<String>("to").cloned().ok_or("restore: --to DIR is required")?,
        force: matches.get_flag("force"),
    };
    Ok(Exec::with_config(move |context| restore(context, &request)))
}

fn restore(context: &Context, request: &Request) -> i32 {
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
    ari_core::engine_api::log_context::set_job_label(Some(label));
    // What is copied, out of which store, and where it goes in DIR.
    let (path, placed_as, dump) = match &request.what {
        What::Path(path) => {
            if let Err(why) = restore::check_path(path, &plan.job.include, &plan.job.exclude) {
                return usage_errors(&[why]);
            }
            let path = join_path("/", path);
            (path.clone(), path, None)
        }
        What::Dump(name) => match restore::dump_source(plan, name) {
            // A compressed dump is decompressed before it is placed, unless --raw.
            Ok(source) => {
                let file = match source.file.strip_suffix(".zst").filter(|_| !request.raw) {
                    Some(plain) => plain.to_string(),
                    None => source.file.clone(),
                };
                (source.path.clone(), format!("/{file}"), Some(source))
            }
            Err(why) => return usage_errors(&[why]),
        },
    };
    let target = match directory(&request.to)
        .and_then(|dir| RestoreTarget::new(&dir, &placed_as).map_err(|err| format!("--to: {}", chain(&err))))
    {
        Ok(target) => target,
        Err(why) => return usage_errors(&[why]),
    };
    // Checked now so that a refusal comes before anything runs, and again, holding each
    // directory, when the restore writes.
    if let Err(err) = target.check(&plan.directories, request.force) {
        return usage_errors(&[format!("--to: {}", chain(&err))]);
    }
    let query = match &dump {
        Some(source) => Some(&source.history),
        None => plan.history.as_ref(),
    };
    let Some(query) = query else {
        return usage_errors(&[format!(
            "the {} backend keeps no backups that ari can restore from; ask its tool",
            plan.backend
        )]);
    };

    // Which backup: from what the store holds now.
    let Some(backups) = list(plan, query) else { return exit::JOB_FAILED };
    if backups.is_empty() {
        log::error!("job {} has no backup yet: there is nothing to restore from", plan.label());
        return exit::JOB_FAILED;
    }
    let now = jiff::Timestamp::now().as_second();
    let backup = match restore::select(&backups, request.at.as_deref(), now) {
        Ok(backup) => backup,
        Err(why) => return usage_errors(&[why]),
    };
    // The backend's copy, asked once before anything is written (a backend that cannot
    // restore, a request it refuses); the run asks again with the real staging directory.
    let preview = RestoreRequest::new(path.clone(), backup.clone(), target.staging_preview());
    match plan.restore(&preview) {
        Ok(Some(_)) => {}
        Ok(None) => return usage_errors(&[format!("the {} backend cannot restore", plan.backend)]),
        Err(err) => return usage_errors(&[err.to_string()]),
    }
    warn_if_it_failed_verification(context, plan.label(), backup.time(), backup.name());
    let shown = target.path().display().to_string();
    let wanted = match &dump {
        Some(source) => {
            let decompress = source.file.ends_with(".zst") && !request.raw;
            Wanted::dump(source, backup.clone(), target, request.force, decompress)
        }
        None => Wanted::new(path.clone(), backup.clone(), target, request.force),
    };
    let dry_run = plan.settings.get(&ari_core::core_settings::DRY_RUN);
    if dry_run {
        ari_core::engine_api::files::forbid_writes();
    }
    let stop = match signals::install() {
        Ok(stop) => stop,
        Err(err) => return usage_errors(&[format!("cannot install signal handlers: {err}")]),
    };
    let when = restore::shown_time(backup.time());
    log::info!("restoring {path} as of {when} (backup {}) to {shown}", backup.name());
    if dry_run {
        return match restore::preview(plan, &wanted, &stop) {
            Ok(()) => exit::SUCCESS,
            Err(err) => {
                log::error!("restoring {path} failed: {}", chain(&err));
                exit::JOB_FAILED
            }
        };
    }
    match restore::run(plan, &wanted, &stop) {
        Ok(placed) if dump.is_some() => {
            let source = dump.as_ref().expect("a dump");
            let file = shown.clone();
            println!("restored dump {} as of {when} (backup {}) to {file}", source.file, backup.name());
            println!(
                "to load it: {}",
                source.load.replace("FILE", &ari_core::quote::shell_join([file.as_str()]))
            );
            match placed.leftover {
                None => exit::SUCCESS,
                Some(left) => {
                    log::error!(
                        "the dump is in place, but what it replaced was not all removed: {}",
                        chain(&left)
                    );
                    exit::CLEANUP_FAILED
                }
            }
        }
        Ok(placed) => {
            println!("restored {path} as of {when} (backup {}) to {shown}", backup.name());
            println!("ari copies nothing back; to put it in place on the job's host:");
            println!("  {}", copy_back(plan, &shown, &path, placed.is_dir));
            match placed.leftover {
                None => exit::SUCCESS,
                Some(left) => {
                    log::error!(
                        "the restore is in place, but what it replaced was not all removed: {}",
                        chain(&left)
                    );
                    exit::CLEANUP_FAILED
                }
            }
        }
        Err(RestoreError::Locked(err)) => {
            log::error!("{err}");
            exit::JOB_FAILED
        }
        Err(err @ RestoreError::Target(_)) => {
            usage_errors(&[format!("{}; nothing was written", chain(&err))])
        }
        Err(err @ RestoreError::NotInBackup { .. }) => {
            // The README's promise: a PATH that no backup holds is a usage error.
            log::error!("{err}; nothing was written");
            exit::USAGE
        }
        Err(err) => {
            log::error!("restoring {path} failed: {}; {shown} is as it was", chain(&err));
            exit::JOB_FAILED
        }
    }
}

/// What `ari restore` copies: a path of the job's, or one of its dumps.
enum What {
    Path(String),
    Dump(String),
}

/// Warns when the backup at `time` was made by a run whose spot check failed: the restore goes
/// on (it may still be the best copy there is), but the admin is told.
fn warn_if_it_failed_verification(context: &Context, label: &str, time: i64, name: &str) {
    let history = match ari_core::engine_api::history::History::read(&context.state_dir(), label) {
        Ok(history) => history,
        Err(err) => {
            // Said, never taken for an empty one: the backup's check is unknown.
            eprintln!("warning: whether backup {name} passed its spot check is unknown: {}", chain(&err));
            return;
        }
    };
    if let Some(verify) = history.made_by(time).and_then(|run| run.verify.as_ref()).filter(|v| !v.passed) {
        let warning = format!(
            "backup {name} was made by a run whose spot check found {} file{} that it does not hold as the host held them: what it restores may be damaged (docs/verify.md)",
            verify.failed,
            if verify.failed == 1 { "" } else { "s" }
        );
        // Said on stderr whatever the logging: the admin restoring must see it.
        eprintln!("warning: {warning}");
        log::warn!("{warning}");
    }
}

/// DIR, absolute (relative to the working directory when given so), without `..`.
fn directory(to: &str) -> Result<PathBuf, String> {
    ari_core::kinds::check_no_control(to)
        .map_err(|why| format!("--to `{}` {why}", ari_core::kinds::shown(to)))?;
    if to.is_empty() {
        return Err("--to: the directory is empty".into());
    }
    let dir = std::path::absolute(to).map_err(|err| format!("--to {to}: {err}"))?;
    if dir.components().any(|part| part == std::path::Component::ParentDir) {
        return Err(format!("--to {to}: give the directory without `..`"));
    }
    Ok(dir)
}

/// The command that puts `target` (the restored `path`) back in its place on the job's host,
/// reaching it as the job does (its ssh, port and options).
fn copy_back(plan: &ari_core::engine_api::plan::JobPlan, target: &str, path: &str, is_dir: bool) -> String {
    let slash = if is_dir { "/" } else { "" };
    let quote = |word: &str| ari_core::quote::shell_join([word]);
    let (to, rsh) = match Host::named(&plan.job.source_hostname) {
        Host::Local => (format!("{path}{slash}"), String::new()),
        Host::Remote(host) => {
            let ssh = &plan.ssh;
            let mut words = vec![ssh.path().to_string()];
            if let Some(port) = ssh.port() {
                words.extend(["-p".to_string(), port.to_string()]);
            }
            words.extend(ssh.options().iter().cloned());
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
