//! `ari verify JOB [--sample N|N%] [--full] [--json]`: a spot check of the job's store against its
//! live host, outside the nightly run and under the job's lock: the same listing on both sides as
//! a run's `verify_sample` check, with what changed since the last backup counted, not failed;
//! with `--full`, then the backend's checks of the whole store. It makes no snapshot and writes
//! nothing but the job's lock and run directory.

use ari_core::engine_api::exit;
use ari_core::engine_api::verify::{self, Checked, StoreChecked, VerifyError};
use ari_core::error::chain;
use clap::{Arg, ArgAction, ArgMatches, Command};

use super::context::{usage_errors, Context, Exec};
use super::signals;
use crate::jobs;

pub fn cli() -> Command {
    Command::new("verify")
        .about("compare a sample of the job's files on its host with its store, now, without a snapshot (what changed since the last backup is counted, not failed)")
        .arg(Arg::new("job").value_name("JOB").required(true).help("a job file, or the name of one in jobs_dir"))
        .arg(
            Arg::new("sample")
                .long("sample")
                .value_name("N|N%")
                .help("how many files: a count (500) or a share (5%); default: the job's verify_sample, else 1%"),
        )
        .arg(Arg::new("full").long("full").action(ArgAction::SetTrue).help(
            "then check the whole store: rdiff-backup's own verify of the mirror and of the oldest backup; a ZFS pool's health and last scrub (verify_max_scrub_age); each database dump it keeps, read back and judged by its format",
        ))
        .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("as one JSON object"))
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let job = matches.get_one::<String>("job").cloned().ok_or("verify: a job is required")?;
    let sample = matches.get_one::<String>("sample").cloned();
    let (full, json) = (matches.get_flag("full"), matches.get_flag("json"));
    Ok(Exec::with_config(move |context| check(context, &job, sample.as_deref(), full, json)))
}

fn check(context: &Context, name: &str, sample: Option<&str>, full: bool, json: bool) -> i32 {
    let mut command_line = context.command_line.clone();
    if let Some(sample) = sample {
        if let Err(why) = command_line.set_from_text("verify_sample", sample) {
            return usage_errors(&[format!("--sample: {why}")]);
        }
    }
    let plans = match jobs::plan_all(
        &[name.to_string()],
        &context.jobs_dir(),
        &context.config.layer,
        &command_line,
    ) {
        Ok(plans) => plans,
        Err(errors) => return usage_errors(&errors),
    };
    let Some(plan) = plans.first() else { return usage_errors(&[format!("no job {name}")]) };
    ari_core::engine_api::log_context::set_job_label(Some(plan.label()));
    let stop = match signals::install() {
        Ok(stop) => stop,
        Err(err) => return usage_errors(&[format!("cannot install signal handlers: {err}")]),
    };
    let checked = match verify::check_job(plan, &stop, full) {
        Ok(checked) => checked,
        Err(VerifyError::Config(err)) => return usage_errors(&[err.to_string()]),
        Err(err) => {
            log::error!("{}", chain(&err));
            return exit::JOB_FAILED;
        }
    };
    if json {
        let shown = VerifyJson::of(plan.label(), &checked);
        println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
    } else {
        if let Some(verdict) =
            checked.spot.as_ref().ok().or_else(|| checked.spot.as_ref().err().and_then(|f| f.verdict()))
        {
            println!("job {}: {}", plan.label(), verify::summary(verdict));
        }
        for check in &checked.store {
            match &check.result {
                Ok(line) => println!("job {}: {}: {line}", plan.label(), check.name),
                Err(_) => println!("job {}: {}: FAILED", plan.label(), check.name),
            }
        }
    }
    if let Err(failure) = &checked.spot {
        log::error!("{}", chain(failure));
    }
    for StoreChecked { name, command, result } in &checked.store {
        if let Err(why) = result {
            log::error!("{name} failed: {command}: {why}");
        }
    }
    if checked.passed() {
        exit::SUCCESS
    } else {
        exit::JOB_FAILED
    }
}

/// `ari verify --json`: the job, whether everything passed, the spot check's counts and every
/// file that failed, and each check of the whole store.
#[derive(serde::Serialize)]
struct VerifyJson<'a> {
    job: &'a str,
    passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<verify::VerdictJson>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    store_checks: Vec<StoreCheckJson<'a>>,
}

/// One check of the whole store.
#[derive(serde::Serialize)]
struct StoreCheckJson<'a> {
    name: &'a str,
    command: &'a str,
    passed: bool,
    detail: &'a str,
}

impl<'a> VerifyJson<'a> {
    fn of(job: &'a str, checked: &'a Checked) -> VerifyJson<'a> {
        let verdict = match &checked.spot {
            Ok(verdict) => Some(verdict),
            Err(failure) => failure.verdict(),
        };
        VerifyJson {
            job,
            passed: checked.passed(),
            error: checked.spot.as_ref().err().map(|failure| chain(failure)),
            verdict: verdict.map(verify::VerdictJson::of),
            store_checks: checked
                .store
                .iter()
                .map(|check| StoreCheckJson {
                    name: &check.name,
                    command: &check.command,
                    passed: check.result.is_ok(),
                    detail: match &check.result {
                        Ok(line) | Err(line) => line,
                    },
                })
                .collect(),
        }
    }
}
