//! What a run left in `state_dir/reports`: the newest run report's job, and the names of its
//! steps and its warnings, as the tests of a run read them.

use std::path::Path;

/// The newest run report's (first) job, as JSON.
pub fn last_report(state: &Path) -> serde_json::Value {
    let mut reports: Vec<_> = std::fs::read_dir(state.join("reports"))
        .expect("read the reports directory")
        .map(|e| e.expect("a report's entry").path())
        .collect();
    reports.sort();
    let newest = reports.last().expect("a run report");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(newest).expect("read the report"))
            .expect("a JSON report");
    report["jobs"][0].clone()
}

/// The newest run report's job: the names of the steps that ran, and its warnings.
pub fn last_run(state: &Path) -> (Vec<String>, Vec<String>) {
    let job = last_report(state);
    let names = |key: &str, field: Option<&str>| -> Vec<String> {
        job[key]
            .as_array()
            .expect("a list in the report")
            .iter()
            .map(|v| field.map_or(v, |f| &v[f]).as_str().expect("a string in the report").to_string())
            .collect()
    };
    (names("steps", Some("step")), names("warnings", None))
}

/// Records in `state`'s history of `label` one successful run that ended a minute ago, as a
/// job that ran before has: `ari prune` holds for a job with no run recorded.
pub fn record_success(state: &Path, label: &str) {
    let ended = jiff::Timestamp::now().as_second() - 60;
    let history = serde_json::json!({
        "runs": [{ "started": ended - 10, "duration_seconds": 10.0, "exit": 0, "ended": ended as f64 }]
    });
    let dir = state.join("history");
    std::fs::create_dir_all(&dir).expect("make the history directory");
    std::fs::write(dir.join(format!("{label}.json")), history.to_string()).expect("write the history");
}
