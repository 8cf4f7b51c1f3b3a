//! `ari plan JOB... [--json] [--preview]`: every step and command that `run` would execute, on
//! which host, cleanup included. Runs nothing, and writes nothing to state_dir (not even the
//! tool-version cache). With `--preview` it also runs the read-only listing of the store's
//! backups and shows what the next run's retention keeps, by rule, and destroys.

use ari_core::engine_api::exit;

use clap::{Arg, ArgAction, ArgMatches, Command};

use super::context::{jobs_arg, jobs_of, usage_errors, Context, Exec};
use crate::jobs;

pub fn cli() -> Command {
    Command::new("plan")
        .about("print every step and command that run would execute, cleanup included; runs nothing")
        .arg(jobs_arg(true))
        .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("one JSON object per job"))
        .arg(Arg::new("preview").long("preview").action(ArgAction::SetTrue).help(
            "also list the store's backups (a read-only query on its host) and show what the next run's retention keeps, by rule, and destroys",
        ))
}

/// The jobs, whether to print JSON, and whether to preview retention.
fn args(matches: &ArgMatches) -> (Vec<String>, bool, bool) {
    (jobs_of(matches), matches.get_flag("json"), matches.get_flag("preview"))
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let (jobs, json, preview) = args(matches);
    Ok(Exec::with_config(move |context| plan(context, &jobs, json, preview)))
}

fn plan(context: &Context, names: &[String], json: bool, preview: bool) -> i32 {
    ari_core::engine_api::files::forbid_writes();
    let plans = match jobs::plan_all(names, &context.jobs_dir(), &context.config.layer, &context.command_line)
    {
        Ok(plans) => plans,
        Err(errors) => return usage_errors(&errors),
    };
    let mut out = String::new();
    let mut code = exit::SUCCESS;
    for plan in &plans {
        let previewed = match preview.then(|| ari_core::engine_api::job_run::preview_retention(plan, None)) {
            Some(Err(why)) => {
                log::error!("job {}: the store's backups cannot be judged: {why}", plan.label());
                code = exit::JOB_FAILED;
                None
            }
            Some(Ok(previewed)) => previewed,
            None => None,
        };
        if json {
            let mut value = ari_core::engine_api::plan::plan_json(plan);
            if let Some(previewed) = &previewed {
                value["retention_preview"] = serde_json::to_value(previewed).unwrap_or_default();
            }
            out.push_str(&serde_json::to_string_pretty(&value).unwrap_or_default());
            out.push('\n');
        } else {
            out.push_str(&plan.render());
            if let Some(previewed) = &previewed {
                out.push_str(&super::prune::preview_text(plan.label(), previewed));
            } else if preview && plan.backend_post.is_empty() {
                out.push_str(&format!(
                    "job {}: no retention: the job never destroys a backup\n",
                    plan.label()
                ));
            } else if preview && code == exit::SUCCESS {
                out.push_str(&format!(
                    "job {}: the {} backend's retention is one command of its tool's, shown above\n",
                    plan.label(),
                    plan.backend
                ));
            }
        }
    }
    print!("{out}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_after_the_job_and_settings_before_the_subcommand() {
        let matches =
            crate::cli::subcommand_matches(&["--debug", "--dry_run=false", "plan", "job", "--json"]);
        assert_eq!(args(&matches), (vec!["job".into()], true, false));
    }
}
