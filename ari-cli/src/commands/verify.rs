//! `ari verify JOB [--sample N|N%] [--json]`: a spot check of the job's store against its live
//! host, outside the nightly run and under the job's lock: the same listing on both sides as a
//! run's `verify_sample` check, with what changed since the last backup counted, not failed. It
//! makes no snapshot and writes nothing but the job's lock and run directory.

use ari_core::engine_api::exit;
use ari_core::engine_api::verify::{self, Verdict, VerifyError};
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
        .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("as one JSON object"))
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let job = matches.get_one::<String>("job").cloned().ok_or("verify: a job is required")?;
    let sample = matches.get_one::<String>("sample").cloned();
    let json = matches.get_flag("json");
    Ok(Exec::with_config(move |context| check(context, &job, sample.as_deref(), json)))
}

fn check(context: &Context, name: &str, sample: Option<&str>, json: bool) -> i32 {
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
    let result = verify::check_job(plan, &stop);
    let verdict = match &result {
        Ok(verdict) => Some(verdict),
        Err(err) => err.verdict(),
    };
    if json {
        let shown = VerifyJson::of(plan.label(), verdict, result.as_ref().err());
        println!("{}", serde_json::to_string_pretty(&shown).unwrap_or_default());
    } else if let Some(verdict) = verdict {
        println!("job {}: {}", plan.label(), verify::summary(verdict));
    }
    match result {
        Ok(_) => exit::SUCCESS,
        Err(VerifyError::Config(err)) => usage_errors(&[err.to_string()]),
        Err(err) => {
            log::error!("{}", chain(&err));
            exit::JOB_FAILED
        }
    }
}

/// `ari verify --json`: the job, whether it passed, the counts, and every file that failed.
#[derive(serde::Serialize)]
struct VerifyJson<'a> {
    job: &'a str,
    passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<verify::VerdictJson<'a>>,
}

impl<'a> VerifyJson<'a> {
    fn of(job: &'a str, verdict: Option<&'a Verdict>, error: Option<&VerifyError>) -> VerifyJson<'a> {
        VerifyJson {
            job,
            passed: error.is_none(),
            error: error.map(|err| chain(err)),
            verdict: verdict.map(verify::VerdictJson::of),
        }
    }
}
