//! Run reports: each `ari run` and `ari run-all` writes one JSON file to `state_dir/reports`
//! (jobs, their hosts, steps, commands, exit codes, start, end, duration, outcome, cleanup), and
//! keeps the newest [`KEPT_REPORTS`].

use std::path::Path;
use std::time::SystemTime;

use ari_core::pipeline::{JobPlan, JobReport};

/// How many run reports `state_dir/reports` keeps.
const KEPT_REPORTS: usize = 100;

/// A job's part of a run report.
pub fn job_json(plan: &JobPlan, code: i32, report: Option<&JobReport>) -> serde_json::Value {
    let mut json = match report {
        Some(report) => report.to_json(),
        None => serde_json::json!({ "job": plan.label(), "exit": code, "steps": [] }),
    };
    json["exit"] = code.into();
    json["backend"] = plan.job.backend.clone().into();
    json["file"] = plan.job.path.display().to_string().into();
    json["hosts"] = plan.hosts().into();
    json
}

fn seconds(time: SystemTime) -> f64 {
    time.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Writes a run report; a failure to write is logged, never fatal.
pub fn write_run_report(
    state_dir: &Path,
    command: &str,
    started: SystemTime,
    code: i32,
    jobs: Vec<serde_json::Value>,
    invalid: Vec<serde_json::Value>,
    extra: serde_json::Value,
) -> Option<std::path::PathBuf> {
    let ended = SystemTime::now();
    let mut report = serde_json::json!({
        "command": command,
        "pid": std::process::id(),
        "start": seconds(started),
        "end": seconds(ended),
        "duration_seconds": seconds(ended) - seconds(started),
        "exit": code,
        "jobs": jobs,
        "invalid": invalid,
    });
    if let (Some(report), Some(extra)) = (report.as_object_mut(), extra.as_object()) {
        report.extend(extra.clone());
    }
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.6fZ").to_string();
    let dir = state_dir.join("reports");
    let path = dir.join(format!("{command}-{stamp}-{}.json", std::process::id()));
    let bytes = serde_json::to_vec_pretty(&report).unwrap_or_default();
    if let Err(err) = ari_core::fsutil::write_atomic(&path, &bytes) {
        log::warn!("cannot write the run report {}: {err}", path.display());
        return None;
    }
    prune(&dir);
    Some(path)
}

/// Keeps the newest reports (their names sort by time).
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut names: Vec<_> =
        entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    names.sort_by_key(|p| {
        p.file_name().map(|n| n.to_string_lossy().split_once('-').map(|(_, rest)| rest.to_string()))
    });
    let excess = names.len().saturating_sub(KEPT_REPORTS);
    for old in &names[..excess] {
        let _ = std::fs::remove_file(old);
    }
}
