//! `ari status`: the last outcome and age of each enabled job, from its history; a job whose last
//! success is older than `max_age` (or that never succeeded, or whose history cannot be read) is
//! flagged, and then the exit code is 1, so that a monitoring check can call it. A history that
//! cannot be read is an error on stderr and a row that says so, never "never run".

use ari_core::core_settings::MAX_AGE;
use ari_core::engine_api::exit;
use ari_core::engine_api::history::{History, HistoryError};
use ari_core::engine_api::process::humane;
use ari_core::job::{default_label, Job};

use ari_core::error::chain;
use clap::{ArgMatches, Command};

use super::context::{usage_errors, Context, Exec};
use super::settings::table;
use crate::jobs;

pub fn cli() -> Command {
    Command::new("status")
        .about("last outcome and age of each job; exit 1 when a job's last success is older than max_age")
}

pub fn exec(_: &ArgMatches) -> Result<Exec, String> {
    Ok(Exec::with_config(status))
}

fn status(context: &Context) -> i32 {
    let paths = match jobs::discover(&context.jobs_dir()) {
        Ok(paths) => paths,
        Err(err) => return usage_errors(&[err]),
    };
    let max_age = context.base.get(&MAX_AGE);
    let now = jiff::Timestamp::now().as_second();
    let age = |at: i64| age_text((now - at).max(0));
    let mut rows = Vec::new();
    let mut stale = 0;
    for path in &paths {
        // state_dir is the process's: every job's history is in the same one.
        let label = Job::load(path).map(|job| job.label).unwrap_or_else(|_| default_label(path));
        let state_dir = context.state_dir();
        let history = match History::read(&state_dir, &label) {
            Ok(history) => history,
            Err(err) => {
                // Never shown as "never run": what the job did is unknown until its next run
                // starts a new history, and a monitoring check must not take it for fine.
                log::error!("{}", chain(&err));
                if max_age.is_some() {
                    stale += 1;
                }
                let unknown = match err {
                    HistoryError::Corrupt { .. } => "history corrupt",
                    _ => "history unreadable",
                };
                let state = if max_age.is_some() { "STALE" } else { "UNKNOWN" };
                rows.push([label, unknown.into(), "?".into(), "?".into(), "?".into(), state.into()]);
                continue;
            }
        };
        let last = history.last();
        let success = history.last_success();
        let too_old = match (max_age, success) {
            (Some(limit), Some(run)) => {
                now - run.started - run.duration_seconds as i64 > limit.as_secs() as i64
            }
            (Some(_), None) => true,
            (None, _) => false,
        };
        if too_old {
            stale += 1;
        }
        // A run whose spot check failed is a failed run, and says why.
        let last_outcome = |r: &ari_core::engine_api::history::RunRecord| match &r.verify {
            Some(verify) if !verify.passed => "verify failed (1)".to_string(),
            _ => outcome(r.exit).to_string(),
        };
        let verified = match history.last_verified() {
            Some((run, verify)) if verify.passed => format!("passed {}", age(run.started)),
            Some((run, verify)) => format!(
                "FAILED {} ({} file{})",
                age(run.started),
                verify.failed,
                if verify.failed == 1 { "" } else { "s" }
            ),
            None => "-".to_string(),
        };
        rows.push([
            label,
            last.map(last_outcome).unwrap_or_else(|| "never run".into()),
            last.map(|r| age(r.started)).unwrap_or_else(|| "-".into()),
            success.map(|r| age(r.started)).unwrap_or_else(|| "never".into()),
            verified,
            if too_old { "STALE".to_string() } else { "ok".to_string() },
        ]);
    }
    print!("{}", table(&["JOB", "LAST OUTCOME", "LAST RUN", "LAST SUCCESS", "LAST VERIFY", "STATE"], &rows));
    match max_age {
        Some(limit) if stale > 0 => {
            println!(
                "{stale} job{} without a success in the last {}",
                if stale == 1 { "" } else { "s" },
                humane(limit)
            );
            exit::JOB_FAILED
        }
        _ => exit::SUCCESS,
    }
}

/// An age as an admin reads it: `<1m ago`, `42m ago`, `5h 3m ago`, `3d 2h ago`.
fn age_text(seconds: i64) -> String {
    let (days, hours, minutes) = (seconds / 86_400, seconds % 86_400 / 3600, seconds % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => "<1m ago".to_string(),
        (0, 0, m) => format!("{m}m ago"),
        (0, h, m) => format!("{h}h {m}m ago"),
        (d, h, _) => format!("{d}d {h}h ago"),
    }
}

fn outcome(code: i32) -> &'static str {
    match code {
        exit::SUCCESS => "success",
        exit::CLEANUP_FAILED => "cleanup failed (3)",
        exit::USAGE => "not run (2)",
        _ => "failed (1)",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn ages() {
        let check = |seconds: i64, expected: &str| assert_eq!(super::age_text(seconds), expected);
        check(30, "<1m ago");
        check(60 * 42, "42m ago");
        check(5 * 3600 + 180, "5h 3m ago");
        check(3 * 86_400 + 2 * 3600 + 59, "3d 2h ago");
    }
}
