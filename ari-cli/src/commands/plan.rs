//! `ari plan JOB... [--json]`: every step and command that `run` would execute, on which host,
//! cleanup included. Runs nothing, and writes nothing to state_dir (not even the tool-version
//! cache).

use ari_core::engine_api::exit;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::context::{jobs_arg, jobs_of, usage_errors, Context, Exec};
use crate::jobs;

pub fn cli() -> Command {
    Command::new("plan")
        .about("print every step and command that run would execute, cleanup included; runs nothing")
        .arg(jobs_arg(true))
        .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("one JSON object per job"))
}

/// The jobs, and whether to print JSON.
fn args(matches: &ArgMatches) -> (Vec<String>, bool) {
    (jobs_of(matches), matches.get_flag("json"))
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let (jobs, json) = args(matches);
    Ok(Exec::with_config(move |context| plan(context, &jobs, json)))
}

fn plan(context: &Context, names: &[String], json: bool) -> i32 {
    ari_core::engine_api::files::forbid_writes();
    let plans = match jobs::plan_all(names, &context.jobs_dir(), &context.config.layer, &context.command_line)
    {
        Ok(plans) => plans,
        Err(errors) => return usage_errors(&errors),
    };
    let mut out = String::new();
    for plan in &plans {
        if json {
            out.push_str(
                &serde_json::to_string_pretty(&ari_core::engine_api::plan::plan_json(plan))
                    .unwrap_or_default(),
            );
            out.push('\n');
        } else {
            out.push_str(&plan.render());
        }
    }
    print!("{out}");
    exit::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_after_the_job_and_settings_before_the_subcommand() {
        let matches =
            crate::cli::subcommand_matches(&["--debug", "--dry_run=false", "plan", "job", "--json"]);
        assert_eq!(args(&matches), (vec!["job".into()], true));
    }
}
