//! Run reports: each `ari run` and `ari run-all` writes one JSON file to `state_dir/reports`
//! (jobs, their hosts, steps, commands, exit codes, start, end, duration, outcome, cleanup,
//! warnings; each job's part is [`JobRun::to_json`](crate::engine::job_run::JobRun::to_json)), and keeps
//! the newest `KEPT_REPORTS`. A report that cannot be written costs no backup: the caller shows
//! the error, and the exit code stays the backups'.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::contract::error::chain;
use crate::engine::files::{Area, StateDir, StateError};

/// How many run reports `state_dir/reports` keeps.
const KEPT_REPORTS: usize = 100;

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A run report: the command, its times and exit code, each job's part
/// ([`JobRun::to_json`](crate::engine::job_run::JobRun::to_json)), the job files it refused, and
/// `run-all`'s limits.
#[derive(Debug, Serialize)]
struct RunReport<'a> {
    command: &'a str,
    pid: u32,
    start: f64,
    end: f64,
    duration_seconds: f64,
    exit: i32,
    jobs: Vec<serde_json::Value>,
    invalid: Vec<Invalid>,
    #[serde(flatten)]
    limits: Option<RunAllLimits>,
}

/// A job file the run refused, and why.
#[derive(Debug, Serialize)]
pub struct Invalid {
    /// The job file.
    pub file: String,
    /// ari's error about it.
    pub error: String,
}

/// `run-all`'s limits, as its report records them.
#[derive(Debug, Serialize)]
pub struct RunAllLimits {
    /// `max_concurrent_jobs`.
    pub max_concurrent_jobs: u64,
    /// `max_jobs_per_host`.
    pub max_jobs_per_host: u64,
}

/// Writes a run report and prunes the old ones; the error, when it cannot be written, is for
/// the caller to show: it costs no backup.
pub fn write_run_report(
    state_dir: &Path,
    command: &str,
    started: SystemTime,
    code: i32,
    jobs: Vec<serde_json::Value>,
    invalid: Vec<Invalid>,
    limits: Option<RunAllLimits>,
) -> Result<PathBuf, StateError> {
    let ended = SystemTime::now();
    let report = RunReport {
        command,
        pid: std::process::id(),
        start: seconds(started),
        end: seconds(ended),
        duration_seconds: seconds(ended) - seconds(started),
        exit: code,
        jobs,
        invalid,
        limits,
    };
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.6fZ").to_string();
    let name = format!("{command}-{stamp}-{}.json", std::process::id());
    let bytes = serde_json::to_vec_pretty(&report).unwrap_or_default();
    let state = StateDir::new(state_dir);
    let path = state.write(Area::Reports, &name, &bytes)?;
    prune(&state);
    Ok(path)
}

/// The time in a report's name (`run-20260101T020000.000000Z-42.json`), by which they sort.
fn stamp(name: &str) -> &str {
    name.strip_prefix("run-all-").or_else(|| name.strip_prefix("run-")).unwrap_or(name)
}

/// Keeps the newest reports. One about to go that is not a report (it does not parse) is moved
/// aside rather than deleted, with a warning; one that is not ari's own stays where it is.
fn prune(state: &StateDir) {
    let mut names = match state.list(Area::Reports, ".json") {
        Ok(names) => names,
        Err(err) => {
            log::warn!("cannot prune the run reports: {}", chain(&err));
            return;
        }
    };
    names.sort_by(|a, b| stamp(a).cmp(stamp(b)));
    let excess = names.len().saturating_sub(KEPT_REPORTS);
    for old in &names[..excess] {
        let result = match state.read(Area::Reports, old) {
            Ok(None) => Ok(()),
            Ok(Some(bytes)) if serde_json::from_slice::<serde_json::Value>(&bytes).is_ok() => {
                state.remove(Area::Reports, old)
            }
            Ok(Some(_)) => state.move_aside(Area::Reports, old, "corrupt").map(|aside| {
                log::warn!("the run report {old} was corrupt: moved it aside to {}", aside.display());
            }),
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            log::warn!("cannot prune the run report {old}: {}", chain(&err));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_of_run_and_run_all_sort_by_their_time() {
        let mut names = vec![
            "run-all-20260102T000000.000000Z-1.json",
            "run-20260103T000000.000000Z-2.json",
            "run-20260101T000000.000000Z-3.json",
        ];
        names.sort_by(|a, b| stamp(a).cmp(stamp(b)));
        assert_eq!(
            names,
            [
                "run-20260101T000000.000000Z-3.json",
                "run-all-20260102T000000.000000Z-1.json",
                "run-20260103T000000.000000Z-2.json"
            ]
        );
    }

    #[test]
    fn pruning_keeps_the_newest_and_moves_a_corrupt_one_aside() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        for i in 0..KEPT_REPORTS + 2 {
            let contents: &[u8] = if i == 0 { b"{\"truncated" } else { b"{}" };
            state.write(Area::Reports, &format!("run-2026{i:04}-1.json"), contents).unwrap();
        }
        prune(&state);
        let names = state.list(Area::Reports, "").unwrap();
        assert_eq!(names.iter().filter(|n| n.ends_with(".json")).count(), KEPT_REPORTS);
        assert!(!names.contains(&"run-20260001-1.json".to_string()), "the oldest good one went");
        let aside: Vec<_> = names.iter().filter(|n| n.starts_with("run-20260000-1.json.corrupt-")).collect();
        assert_eq!(aside.len(), 1, "{names:?}");
        assert_eq!(std::fs::read(state.dir(Area::Reports).join(aside[0])).unwrap(), b"{\"truncated");
    }
}
