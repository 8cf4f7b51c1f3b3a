//! `ari history JOB [--json]`: the backups the job's store holds, newest first, as the backend's
//! tool lists them (rdiff-backup's increments with their sizes, the dataset's ZFS snapshots with
//! the space each holds), each with the database dumps the run that made it streamed (from
//! ari's own history of the job), and what the next run's retention does to each: kept, by which
//! rules, or destroyed. Runs read-only queries, and writes nothing.

use ari_core::engine_api::exit;
use ari_core::engine_api::history::DumpRecord;
use ari_core::engine_api::runner::Runner;
use ari_core::plugin::StoredBackup;

use ari_core::error::chain;
use clap::{Arg, ArgAction, ArgMatches, Command};

use super::context::{usage_errors, Context, Exec};
use crate::jobs;

pub fn cli() -> Command {
    Command::new("history")
        .about("the backups the job's store holds, newest first: rdiff-backup increments with their sizes, or the dataset's ZFS snapshots")
        .arg(Arg::new("job").value_name("JOB").required(true).help("a job file, or the name of one in jobs_dir"))
        .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("as one JSON object"))
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let job = matches.get_one::<String>("job").cloned().ok_or("history: a job is required")?;
    let json = matches.get_flag("json");
    Ok(Exec::with_config(move |context| history(context, &job, json)))
}

fn history(context: &Context, name: &str, json: bool) -> i32 {
    ari_core::engine_api::files::forbid_writes();
    let plans = match jobs::plan_all(
        &[name.to_string()],
        &context.jobs_dir(),
        &context.config.layer,
        &context.command_line,
    ) {
        Ok(plans) => plans,
        Err(errors) => return usage_errors(&errors),
    };
    let Some(plan) = plans.first() else { return usage_errors(&[format!("no job {name}")]) };
    let Some(query) = &plan.history else {
        return usage_errors(&[format!(
            "job {}: the {} backend keeps no history that ari can list; ask its tool",
            plan.label(),
            plan.backend
        )]);
    };
    ari_core::engine_api::log_context::set_job_label(Some(plan.label()));
    let Some(mut backups) = list(plan, query) else { return exit::JOB_FAILED };
    backups.sort_by_key(|b| std::cmp::Reverse(b.time()));
    // The dumps of the run that made each backup, as ari's history of the job recorded them.
    // A history that cannot be read is said, never taken for an empty one.
    let runs = match ari_core::engine_api::history::History::read(&context.state_dir(), plan.label()) {
        Ok(runs) => runs,
        Err(err) => {
            log::warn!("no dumps are shown: {}", chain(&err));
            Default::default()
        }
    };
    let dumps = |backup: &StoredBackup| -> Vec<DumpRecord> {
        runs.made_by(backup.time()).map(|run| run.dumps.clone()).unwrap_or_default()
    };
    // What the next run's retention does to each backup; a judgement that fails is said.
    let preview = match ari_core::engine_api::job_run::preview_retention(plan, None) {
        Ok(preview) => preview,
        Err(why) => {
            log::warn!("what the next run keeps and destroys cannot be shown: {why}");
            None
        }
    };
    let next_run = |backup: &StoredBackup| -> Option<Vec<String>> {
        let verdicts = &preview.as_ref()?.verdicts;
        verdicts.iter().find(|v| v.name() == backup.name()).map(|v| v.kept_by().to_vec())
    };
    let held = preview.as_ref().and_then(|p| p.held.as_deref());
    let text = if json {
        as_json(plan.label(), plan.backend, &backups, dumps, next_run, held)
    } else {
        as_table(plan.label(), plan.backend, &backups, dumps, next_run, held)
    };
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(text.as_bytes());
    exit::SUCCESS
}

/// The backups `query` lists for `plan`'s job (read-only, on whichever host holds the store);
/// none, with the error logged, when the listing fails or prints what ari cannot read.
pub fn list(
    plan: &ari_core::engine_api::plan::JobPlan,
    query: &ari_core::plugin::HistoryQuery,
) -> Option<Vec<StoredBackup>> {
    if query.holds_none_yet() {
        return Some(Vec::new());
    }
    let output = match Runner::new(plan.ssh.clone(), false).run(query.command()) {
        Ok(output) => output,
        Err(err) => {
            log::error!("listing the backups failed: {}", chain(&err));
            return None;
        }
    };
    match output
        .stdout()
        .map_err(|too_long| too_long.to_string())
        .and_then(|printed| query.read(printed).map_err(|err| err.to_string()))
    {
        Ok(backups) => Some(backups),
        Err(why) => {
            log::error!("{} printed what ari cannot read: {why}", query.command());
            None
        }
    }
}

fn as_table(
    label: &str,
    backend: &str,
    backups: &[StoredBackup],
    dumps: impl Fn(&StoredBackup) -> Vec<DumpRecord>,
    next_run: impl Fn(&StoredBackup) -> Option<Vec<String>>,
    held: Option<&str>,
) -> String {
    if backups.is_empty() {
        return format!("job {label} ({backend}): no backups yet\n");
    }
    let mut out = format!("job {label} ({backend}): {} backups, newest first\n", backups.len());
    if let Some(why) = held {
        out.push_str(&format!("  the stale guard holds, so the next run destroys nothing: {why}\n"));
    }
    for backup in backups {
        let size = backup.size().map(humane_bytes).unwrap_or_else(|| "-".into());
        let next = next_run(backup)
            .map(|kept_by| format!("  next run: {}", super::prune::verdict_text(&kept_by)))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<26} {:>10}  {}{next}\n",
            ari_core::engine_api::restore::shown_time(backup.time()),
            size,
            backup.name()
        ));
        let dumps: Vec<String> = dumps(backup)
            .iter()
            .map(|d| format!("{} {}{}", d.name, humane_bytes(d.bytes), if d.ok { "" } else { " (failed)" }))
            .collect();
        if !dumps.is_empty() {
            out.push_str(&format!("  {:<26} dumps: {}\n", "", dumps.join(", ")));
        }
    }
    out
}

/// `ari history --json`: the job, its backend, and its backups, newest first.
#[derive(serde::Serialize)]
struct HistoryJson<'a> {
    job: &'a str,
    backend: &'a str,
    backups: Vec<BackupJson<'a>>,
    /// Why the stale guard holds, so that the next run destroys nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    retention_held: Option<&'a str>,
}

/// One backup: its time (seconds since the epoch, and as RFC 3339), its name, its size.
#[derive(serde::Serialize)]
struct BackupJson<'a> {
    time: i64,
    time_rfc3339: String,
    name: &'a str,
    size: Option<u64>,
    /// The dumps the run that made it streamed (`ari restore --dump NAME --at NAME`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dumps: Vec<DumpRecord>,
    /// What the next run's retention does to it: the rules that keep it, empty when it is
    /// destroyed; absent when retention does not judge it.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_run_kept_by: Option<Vec<String>>,
}

fn as_json(
    label: &str,
    backend: &str,
    backups: &[StoredBackup],
    dumps: impl Fn(&StoredBackup) -> Vec<DumpRecord>,
    next_run: impl Fn(&StoredBackup) -> Option<Vec<String>>,
    held: Option<&str>,
) -> String {
    let backups = backups
        .iter()
        .map(|b| BackupJson {
            time: b.time(),
            time_rfc3339: jiff::Timestamp::from_second(b.time()).map(|t| t.to_string()).unwrap_or_default(),
            name: b.name(),
            size: b.size(),
            dumps: dumps(b),
            next_run_kept_by: next_run(b),
        })
        .collect();
    serde_json::to_string_pretty(&HistoryJson { job: label, backend, backups, retention_held: held })
        .unwrap_or_default()
        + "\n"
}

/// Bytes as a person reads them: `4.0 KiB`.
fn humane_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_a_person_writes_them() {
        assert_eq!(humane_bytes(60), "60 B");
        assert_eq!(humane_bytes(4104), "4.0 KiB");
        assert_eq!(humane_bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
