//! Each job's recent runs, `state_dir/history/LABEL.json`: when they started, how long they took,
//! how they ended. `ari status` reads the last outcome and the last success from it, and
//! `ari run-all` orders jobs by their expected duration (the median of recent successes).
//!
//! A history that does not parse is never overwritten: recording a run moves it aside
//! (`LABEL.json.corrupt-TIMESTAMP`, with a warning) and starts a new one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{Area, StateDir, StateError};

/// How many runs a history keeps.
const KEPT_RUNS: usize = 30;
/// How many recent successes the expected duration looks at.
const EXPECTED_FROM: usize = 5;

/// One finished run of a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Start, seconds since the epoch.
    pub started: i64,
    /// Wall time, seconds.
    pub duration_seconds: f64,
    /// The job's exit code (see `exit`).
    pub exit: i32,
    /// End, seconds since the epoch, to the microsecond (older histories lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<f64>,
    /// Files the backup changed, where its tool said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Bytes the backup transferred, where its tool said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// A job's recent runs, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    /// Recent runs, oldest first.
    pub runs: Vec<RunRecord>,
}

impl History {
    /// Where a job's history lives.
    pub fn path(state_dir: &Path, label: &str) -> PathBuf {
        StateDir::new(state_dir).dir(Area::History).join(History::file_name(label))
    }

    fn file_name(label: &str) -> String {
        format!("{label}.json")
    }

    /// A job's history; none (or one that cannot be read, which is logged) is an empty
    /// history. Reading changes nothing.
    pub fn load(state_dir: &Path, label: &str) -> History {
        match StateDir::new(state_dir).read(Area::History, &History::file_name(label)) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                log::warn!(
                    "ignoring the corrupt history {}: {err}",
                    History::path(state_dir, label).display()
                );
                History::default()
            }),
            Ok(None) => History::default(),
            Err(err) => {
                log::warn!("ignoring the history of job {label}: {err}");
                History::default()
            }
        }
    }

    /// Adds a run to a job's history on disk. A history that does not parse is moved aside
    /// first, with a warning; the returned path says where it went.
    pub fn record(state_dir: &Path, label: &str, run: RunRecord) -> Result<Option<PathBuf>, StateError> {
        let state = StateDir::new(state_dir);
        let name = History::file_name(label);
        let mut moved_aside = None;
        let mut history = match state.read(Area::History, &name)? {
            None => History::default(),
            Some(bytes) => match serde_json::from_slice::<History>(&bytes) {
                Ok(history) => history,
                Err(err) => {
                    let aside = state.move_aside(Area::History, &name, "corrupt")?;
                    log::warn!(
                        "the history {} was corrupt ({err}): moved it aside to {} and started a new one",
                        History::path(state_dir, label).display(),
                        aside.display()
                    );
                    moved_aside = Some(aside);
                    History::default()
                }
            },
        };
        history.runs.push(run);
        let excess = history.runs.len().saturating_sub(KEPT_RUNS);
        history.runs.drain(..excess);
        let bytes = serde_json::to_vec_pretty(&history).unwrap_or_default();
        state.write(Area::History, &name, &bytes)?;
        Ok(moved_aside)
    }

    /// The last run.
    pub fn last(&self) -> Option<&RunRecord> {
        self.runs.last()
    }

    /// The last successful run.
    pub fn last_success(&self) -> Option<&RunRecord> {
        self.runs.iter().rev().find(|r| r.exit == crate::exit::SUCCESS)
    }

    /// The median duration of the recent successful runs, if there are any.
    pub fn expected_duration(&self) -> Option<f64> {
        let mut recent: Vec<f64> = self
            .runs
            .iter()
            .rev()
            .filter(|r| r.exit == crate::exit::SUCCESS)
            .take(EXPECTED_FROM)
            .map(|r| r.duration_seconds)
            .collect();
        if recent.is_empty() {
            return None;
        }
        recent.sort_by(f64::total_cmp);
        Some(recent[recent.len() / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(duration: f64, exit: i32) -> RunRecord {
        RunRecord {
            started: 1_800_000_000,
            duration_seconds: duration,
            exit,
            ended: None,
            files: None,
            bytes: None,
        }
    }

    #[test]
    fn expected_duration_is_the_median_of_recent_successes() {
        let history = History { runs: vec![run(100.0, 0), run(1.0, 1), run(10.0, 0), run(20.0, 0)] };
        assert_eq!(history.expected_duration(), Some(20.0));
        assert_eq!(History::default().expected_duration(), None);
        assert_eq!(History { runs: vec![run(5.0, 1)] }.expected_duration(), None);
        assert_eq!(history.last_success().map(|r| r.duration_seconds), Some(20.0));
    }

    #[test]
    fn records_persist_and_old_runs_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..(KEPT_RUNS + 5) {
            History::record(dir.path(), "db", run(i as f64, 0)).unwrap();
        }
        let history = History::load(dir.path(), "db");
        assert_eq!(history.runs.len(), KEPT_RUNS);
        assert_eq!(history.runs[0].duration_seconds, 5.0);
    }

    #[test]
    fn a_corrupt_history_is_moved_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = History::path(dir.path(), "db");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{\"runs\": [{\"started\"").unwrap();
        assert!(History::load(dir.path(), "db").runs.is_empty(), "loading ignores it");
        assert!(path.exists(), "loading changes nothing");
        let aside = History::record(dir.path(), "db", run(1.0, 0)).unwrap().expect("moved aside");
        assert_eq!(std::fs::read(&aside).unwrap(), b"{\"runs\": [{\"started\"");
        assert!(aside.file_name().unwrap().to_string_lossy().starts_with("db.json.corrupt-"));
        assert_eq!(History::load(dir.path(), "db").runs, [run(1.0, 0)]);
        assert_eq!(History::record(dir.path(), "db", run(2.0, 0)).unwrap(), None);
    }
}
