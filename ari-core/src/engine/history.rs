//! Each job's recent runs, `state_dir/history/LABEL.json`: when they started, how long they took,
//! how they ended. `ari status` reads the last outcome and the last success from it,
//! `ari run-all` orders jobs by their expected duration (the median of recent successes), and
//! the metrics file shows each job's last run.
//!
//! A history that does not parse is never overwritten, and never silently read as empty: every
//! reader gets [`HistoryError::Corrupt`] from [`History::read`] and says so (`ari status` in its
//! table and on stderr, run-all's ordering and the metrics file as warnings, the metrics file
//! also as `ari_job_history_readable 0`); reading changes nothing, so the file stays where it is
//! until the job's next run, whose [`History::record`] moves it aside
//! (`LABEL.json.corrupt-TIMESTAMP`) and starts a new one, and that run says so as a warning of
//! its own (`the backup succeeded, but ...`). A history ari refuses to read (another user's, a
//! symlink) is [`HistoryError::Unreadable`] the same way, and is neither moved nor replaced.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::files::{Area, StateDir, StateError};

/// How many runs a history keeps.
const KEPT_RUNS: usize = 30;
/// How many recent successes the expected duration looks at.
const EXPECTED_FROM: usize = 5;

/// Why a job's history could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The file does not parse: kept as it is until the job's next run moves it aside.
    #[error("the history {} is corrupt ({reason}): it is kept as it is until the job's next run moves it aside", path.display())]
    Corrupt {
        /// The history file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// ari refused the file or could not read it.
    #[error("the history of job {label} cannot be read")]
    Unreadable {
        /// The job.
        label: String,
        /// Why.
        #[source]
        source: StateError,
    },
}

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
    /// What the run's spot check found, when one ran to a verdict: a backup that failed it is
    /// marked so here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyRecord>,
    /// The run's database dumps that ran, in order: each one's size and time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dumps: Vec<DumpRecord>,
    /// What the run's retention kept and destroyed, when it judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<crate::engine::step_run::Retained>,
    /// What the run's capacity check read of the store and its pool, when it read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<crate::engine::capacity::CapacityRecord>,
}

/// One database dump of a run (`dumps:`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpRecord {
    /// Its label.
    pub name: String,
    /// Whether it streamed whole and passed its format's check (and so replaced the previous).
    pub ok: bool,
    /// How many bytes the dump tool wrote (before compression), as far as it came.
    pub bytes: u64,
    /// How long it took.
    pub seconds: f64,
}

impl DumpRecord {
    /// The dumps among a run's step records.
    pub(crate) fn of_steps(records: &[crate::engine::step_run::StepRecord]) -> Vec<DumpRecord> {
        records
            .iter()
            .filter_map(|record| {
                let (name, bytes) = record.dumped.as_ref()?;
                Some(DumpRecord {
                    name: name.clone(),
                    ok: record.error.is_none(),
                    bytes: *bytes,
                    seconds: record.duration.as_secs_f64(),
                })
            })
            .collect()
    }
}

impl RunRecord {
    /// When the run started, to the microsecond where the record has its end (older histories
    /// lack it: the second then).
    pub fn start(&self) -> f64 {
        self.ended.map_or(self.started as f64, |ended| ended - self.duration_seconds)
    }

    /// When the run ended (older histories: from its start and its duration).
    pub fn end(&self) -> f64 {
        self.ended.unwrap_or(self.started as f64 + self.duration_seconds)
    }
}

/// What a run's spot check found (`verify_sample`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyRecord {
    /// Whether the backup held what the host held.
    pub passed: bool,
    /// Files compared.
    pub files: u64,
    /// Bytes compared by content.
    pub bytes: u64,
    /// Files missing, extra, differing or unreadable.
    pub failed: u64,
    /// Files that changed since the backup read them (live checks only).
    pub changed: u64,
    /// The job's `verify_every` in seconds, when set: how old a check may be, for the alert
    /// that reads it from the metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_seconds: Option<u64>,
}

impl VerifyRecord {
    /// The record of `verdict`.
    pub(crate) fn of(
        verdict: &crate::engine::verify::Verdict,
        every: Option<std::time::Duration>,
    ) -> VerifyRecord {
        VerifyRecord {
            passed: verdict.passed(),
            files: verdict.files,
            bytes: verdict.bytes,
            failed: verdict.findings.len() as u64,
            changed: verdict.changed,
            every_seconds: every.map(|every| every.as_secs()),
        }
    }
}

/// A job's recent runs, oldest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    /// Recent runs, oldest first.
    pub runs: Vec<RunRecord>,
}

impl History {
    /// The run that made a backup at `time` (seconds since the epoch, as the backend's history
    /// names it: rdiff-backup's increment by its session's start, a ZFS snapshot by its
    /// creation, both within the run): the latest run that started by then and ended after.
    pub fn made_by(&self, time: i64) -> Option<&RunRecord> {
        self.runs.iter().rev().find(|run| run.started <= time && time as f64 <= run.end().ceil())
    }

    /// The last run whose spot check ran to a verdict.
    pub fn last_verified(&self) -> Option<(&RunRecord, &VerifyRecord)> {
        self.runs.iter().rev().find_map(|run| Some((run, run.verify.as_ref()?)))
    }

    /// Where a job's history lives.
    pub fn path(state_dir: &Path, label: &str) -> PathBuf {
        StateDir::new(state_dir).dir(Area::History).join(History::file_name(label))
    }

    fn file_name(label: &str) -> String {
        format!("{label}.json")
    }

    /// A job's history; none is an empty history. Reading changes nothing: a corrupt history
    /// stays where it is, and the caller says so.
    pub fn read(state_dir: &Path, label: &str) -> Result<History, HistoryError> {
        match StateDir::new(state_dir).read(Area::History, &History::file_name(label)) {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).map_err(|err| HistoryError::Corrupt {
                path: History::path(state_dir, label),
                reason: err.to_string(),
            }),
            Ok(None) => Ok(History::default()),
            Err(source) => Err(HistoryError::Unreadable { label: label.to_string(), source }),
        }
    }

    /// Adds a run to a job's history on disk. A history that does not parse is moved aside
    /// first and a new one started; the returned path says where it went, for the caller to
    /// report.
    pub fn record(state_dir: &Path, label: &str, run: RunRecord) -> Result<Option<PathBuf>, StateError> {
        let state = StateDir::new(state_dir);
        let name = History::file_name(label);
        let mut moved_aside = None;
        let mut history = match History::read(state_dir, label) {
            Ok(history) => history,
            Err(HistoryError::Corrupt { .. }) => {
                moved_aside = Some(state.move_aside(Area::History, &name, "corrupt")?);
                History::default()
            }
            Err(HistoryError::Unreadable { source, .. }) => return Err(source),
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
        self.runs.iter().rev().find(|r| r.exit == crate::engine::exit::SUCCESS)
    }

    /// The median duration of the recent successful runs, if there are any.
    pub fn expected_duration(&self) -> Option<f64> {
        let mut recent: Vec<f64> = self
            .runs
            .iter()
            .rev()
            .filter(|r| r.exit == crate::engine::exit::SUCCESS)
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
            verify: None,
            dumps: Vec::new(),
            retention: None,
            capacity: None,
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
        let history = History::read(dir.path(), "db").unwrap();
        assert_eq!(history.runs.len(), KEPT_RUNS);
        assert_eq!(history.runs[0].duration_seconds, 5.0);
    }

    #[test]
    fn a_corrupt_history_is_reported_by_reading_and_moved_aside_by_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = History::path(dir.path(), "db");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{\"runs\": [{\"started\"").unwrap();
        let err = History::read(dir.path(), "db").unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("the history {} is corrupt (EOF while parsing", path.display())),
            "{err}"
        );
        assert!(err.ends_with("): it is kept as it is until the job's next run moves it aside"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"runs\": [{\"started\"", "reading changes nothing");
        let aside = History::record(dir.path(), "db", run(1.0, 0)).unwrap().expect("moved aside");
        assert_eq!(std::fs::read(&aside).unwrap(), b"{\"runs\": [{\"started\"");
        assert!(aside.file_name().unwrap().to_string_lossy().starts_with("db.json.corrupt-"));
        assert_eq!(History::read(dir.path(), "db").unwrap().runs, [run(1.0, 0)]);
        assert_eq!(History::record(dir.path(), "db", run(2.0, 0)).unwrap(), None);
    }

    #[test]
    fn a_history_ari_refuses_is_neither_read_nor_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = History::path(dir.path(), "db");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(dir.path().join("elsewhere"), b"{\"runs\": []}").unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &path).unwrap();
        let err = History::read(dir.path(), "db").unwrap_err();
        assert!(matches!(err, HistoryError::Unreadable { .. }), "{err:?}");
        assert!(
            crate::contract::error::chain(&err).contains("is a symlink"),
            "{}",
            crate::contract::error::chain(&err)
        );
        assert!(History::record(dir.path(), "db", run(1.0, 0)).is_err());
        assert!(path.symlink_metadata().unwrap().file_type().is_symlink(), "left as it was");
    }

    #[test]
    fn a_backup_is_made_by_the_latest_run_that_started_by_its_time_and_ended_after() {
        let at = |started: i64, ended: f64| RunRecord {
            started,
            ended: Some(ended),
            ..run(ended - started as f64, 0)
        };
        let history = History { runs: vec![at(100, 101.4), at(101, 103.2)] };
        assert_eq!(history.made_by(100).map(|r| r.started), Some(100));
        assert_eq!(
            history.made_by(101).map(|r| r.started),
            Some(101),
            "the later of two that hold the second"
        );
        assert_eq!(history.made_by(104).map(|r| r.started), Some(101), "ended 103.2: its last second is 104");
        assert_eq!(history.made_by(105), None);
        assert_eq!(history.made_by(99), None);
        assert!(
            (history.runs[1].start() - 101.0).abs() < 1e-9 && (history.runs[1].end() - 103.2).abs() < 1e-9
        );
    }
}
