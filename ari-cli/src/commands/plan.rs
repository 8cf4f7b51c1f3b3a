//! `ari plan JOB... [--json]`: every step and command that `run` would execute, on which host,
//! cleanup included. Runs nothing, and writes nothing to state_dir (not even the tool-version
//! cache).

use ari_core::engine_api::exit;
use ari_core::engine_api::plan::JobPlan;
use ari_core::step::{Action, Program};

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
            out.push_str(&render(plan));
        }
    }
    print!("{out}");
    exit::SUCCESS
}

/// The plan as text for a person.
pub fn render(plan: &JobPlan) -> String {
    let mut out = format!(
        "job {} (backend {}, source {}{})\n",
        plan.label(),
        plan.backend,
        plan.job.source_hostname,
        plan.job.snapshot.as_deref().map(|s| format!(", snapshot {s}")).unwrap_or_default()
    );
    for (i, step) in plan.steps().iter().enumerate() {
        let command = step.action.command();
        let when = match step.when {
            ari_core::step::When::Always => String::new(),
            when => format!(" [when {}]", when.as_str()),
        };
        let text = shown(&command.program);
        out.push_str(&format!(
            "{:>3}. {:<14} {} on {}{when}\n",
            i + 1,
            step.phase.as_str(),
            step.name,
            command.host
        ));
        out.push_str(&format!("       {text}\n"));
        match &step.action {
            Action::RefuseIf { reason, .. } => {
                out.push_str(&format!("       (stops the job if it succeeds: {reason})\n"))
            }
            Action::Dynamic { .. } => {
                out.push_str("       (dynamic: the commands that follow depend on its output)\n");
                if let Some(pattern) = &step.shows {
                    out.push_str(&format!("       (then: {})\n", ari_core::kinds::escaped(pattern)));
                }
            }
            _ => {}
        }
        if let Some(probe) = step.present.as_ref() {
            if let (Program::Argv(argv), Some(expect)) = (&probe.query.program, &probe.expect) {
                out.push_str(&format!(
                    "       (runs only after `{}` shows `{}`)\n",
                    ari_core::quote::shell_join(argv),
                    expect.join(" ")
                ));
            }
        }
        for repair in &step.repairs {
            let only_while = repair
                .present
                .as_ref()
                .map(|probe| format!(", only while `{}` succeeds", shown(&probe.query.program)));
            out.push_str(&format!(
                "       (if it does not end normally, once its process has ended: {}: {}{})\n",
                repair.name,
                shown(&repair.action.command().program),
                only_while.unwrap_or_default()
            ));
        }
        if step.retry.max_retries > 0 {
            out.push_str(&format!(
                "       (retried up to {} times, {}s apart)\n",
                step.retry.max_retries,
                step.retry.interval.as_secs()
            ));
        }
    }
    out.push_str(&plan.connections.render());
    out
}

/// A command's program as the plan shows it, control characters escaped.
fn shown(program: &Program) -> String {
    match program {
        Program::Argv(argv) => ari_core::kinds::escaped(&ari_core::quote::shell_join(argv)),
        Program::Shell(script) => format!("sh: {}", ari_core::kinds::escaped(script)),
    }
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
