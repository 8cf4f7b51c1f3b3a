//! `ari list`: every entry of jobs_dir: enabled (with its label, backend and source), invalid
//! (with the error), or skipped and why.

use ari_core::engine_api::exit;

use clap::{ArgMatches, Command};

use super::context::{usage_errors, Context, Exec};
use super::settings::table;
use crate::jobs::{self, Entry};

pub fn cli() -> Command {
    Command::new("list").about("every entry of jobs_dir: enabled, invalid, or skipped and why")
}

pub fn exec(_: &ArgMatches) -> Result<Exec, String> {
    Ok(Exec::with_config(list))
}

fn list(context: &Context) -> i32 {
    let entries = match jobs::scan(&context.jobs_dir()) {
        Ok(entries) => entries,
        Err(err) => return usage_errors(&[err]),
    };
    let enabled: Vec<_> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Enabled(path) => Some(path.clone()),
            Entry::Skipped(..) => None,
        })
        .collect();
    let mut planned = jobs::plan_each(&enabled, &context.config.layer, &context.command_line).into_iter();
    let mut rows = Vec::new();
    for entry in &entries {
        let name = |path: &std::path::Path| {
            path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        };
        match entry {
            Entry::Skipped(path, reason) => {
                rows.push(["skipped".to_string(), name(path), reason.to_string()])
            }
            Entry::Enabled(path) => match planned.next().map(|(_, plan)| plan) {
                Some(Ok(plan)) => rows.push([
                    "enabled".to_string(),
                    name(path),
                    format!(
                        "label {}, backend {}, source {}",
                        plan.label(),
                        plan.backend,
                        plan.job.source_hostname
                    ),
                ]),
                Some(Err(err)) => rows.push(["invalid".to_string(), name(path), err]),
                None => {}
            },
        }
    }
    print!("{}", table(&["STATUS", "FILE", "DETAIL"], &rows));
    exit::SUCCESS
}
