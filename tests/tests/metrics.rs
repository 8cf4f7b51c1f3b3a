//! The metrics file for node_exporter's textfile collector: written after every real run, with
//! every job of state_dir in it, in a format promtool accepts; a dry run writes none, and a
//! metrics file that cannot be written is a warning, never the run's failure.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, require_tool, run, stderr, Fixture};

fn metrics(fx: &Fixture) -> String {
    std::fs::read_to_string(fx.path("metrics/ari.prom")).expect("the metrics file")
}

fn promtool_accepts(text: &str) {
    use std::io::Write as _;
    let promtool = require_tool("promtool", "prometheus");
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}\n{text}");
}

fn value(text: &str, metric: &str, job: &str) -> Option<f64> {
    let prefix = format!("{metric}{{job=\"{job}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map(|v| v.parse().expect("a number"))
}

#[test]
fn every_real_run_writes_every_jobs_metrics_in_promtools_format() {
    rdiff_backup();
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.path("metrics")).unwrap();
    fx.write_config(&format!("metrics_file: {}\n", fx.p("metrics/ari.prom")));
    let src = fx.make_tree("src", &[("a", "1"), ("b", "22")]);
    let good = fx.write_job("good.yaml", &format!("include: [{}]\n", src.display()));
    let bad =
        fx.write_job("bad.yaml", &format!("include: [{}]\npre:\n  - command: [\"false\"]\n", src.display()));

    assert_exit(&run(fx.ari().arg("run").arg(&good).arg("--dry-run")), 0);
    assert!(!fx.path("metrics/ari.prom").exists(), "a dry run writes no metrics");

    assert_exit(&run(fx.ari().arg("run").arg(&good)), 0);
    let first = metrics(&fx);
    promtool_accepts(&first);
    assert_eq!(value(&first, "ari_job_last_run_success", "good"), Some(1.0));
    // rdiff-backup counts the new files and the directories above them.
    let files = value(&first, "ari_job_last_run_changed_files", "good").expect("changed files");
    assert!(files >= 2.0, "{first}");
    assert_eq!(
        value(&first, "ari_job_last_run_transferred_bytes", "good"),
        Some(3.0),
        "the two files' bytes:\n{first}"
    );
    // No file changed: no file's bytes sent (directories above the include may still count as
    // changed, their times being the fixture's).
    assert_exit(&run(fx.ari().arg("run").arg(&good)), 0);
    let again = metrics(&fx);
    assert_eq!(value(&again, "ari_job_last_run_transferred_bytes", "good"), Some(0.0), "{again}");
    assert!(first.contains("ari_build_info{version=\""), "{first}");

    // Another job's run keeps the first job's metrics in the file.
    assert_exit(&run(fx.ari().arg("run").arg(&bad)), 1);
    let second = metrics(&fx);
    promtool_accepts(&second);
    assert_eq!(value(&second, "ari_job_last_run_success", "good"), Some(1.0));
    assert_eq!(value(&second, "ari_job_last_run_success", "bad"), Some(0.0));
    assert_eq!(value(&second, "ari_job_last_run_exit_code", "bad"), Some(1.0));
    assert_eq!(value(&second, "ari_job_last_success_timestamp_seconds", "bad"), None, "bad never succeeded");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(fx.path("metrics/ari.prom")).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o644, "node_exporter reads it");

    // run-all writes it too; a metrics file that cannot be written is a warning only.
    std::fs::remove_file(&bad).unwrap();
    assert_exit(&run(fx.ari().arg("run-all")), 0);
    promtool_accepts(&metrics(&fx));
    fx.write_config(&format!("metrics_file: {}\n", fx.p("no-such-dir/ari.prom")));
    let out = run(fx.ari().arg("run").arg(&good).arg("--debug"));
    assert_exit(&out, 0);
    assert!(
        stderr(&out)
            .lines()
            .any(|l| l.contains("[WARN]") && l.contains("the metrics file could not be written")),
        "{}",
        stderr(&out)
    );
}

/// The names of ari's metrics: what the dashboard and the alert rules may use.
fn metric_names() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let record = ari_core::history::RunRecord {
        started: 1,
        duration_seconds: 1.0,
        exit: 0,
        ended: Some(2.0),
        files: Some(1),
        bytes: Some(1),
    };
    ari_core::history::History::record(dir.path(), "x", record).unwrap();
    ari_core::metrics::render(dir.path(), 3.0)
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// The `ari_...` names a text uses.
fn used_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("ari_") {
        let name: String =
            rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[at + name.len()..];
        // `ari_backup`, `ari_watch` and the like in prose are not metric names.
        if name.matches('_').count() >= 2 {
            names.push(name);
        }
    }
    names
}

#[test]
fn the_alert_rules_check_and_fire_as_their_tests_say_and_use_only_ari_metrics() {
    let promtool = require_tool("promtool", "prometheus");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let rules = root.join("dist/prometheus/ari-alerts.yml");
    for args in
        [vec!["check", "rules", rules.to_str().unwrap()], vec!["test", "rules", "ari-alerts.test.yml"]]
    {
        let out = std::process::Command::new(&promtool)
            .args(&args)
            .current_dir(root.join("tests/prometheus"))
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let known = metric_names();
    assert!(known.contains(&"ari_job_last_success_timestamp_seconds".to_string()), "{known:?}");
    for file in ["dist/prometheus/ari-alerts.yml", "dist/grafana/ari-dashboard.json"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let used = used_names(&text);
        assert!(!used.is_empty(), "{file} uses no metric");
        for name in used {
            assert!(known.contains(&name), "{file} uses `{name}`, which ari does not write: {known:?}");
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("dist/grafana/ari-dashboard.json")).unwrap())
            .unwrap();
    assert!(dashboard["panels"].as_array().is_some_and(|p| p.len() >= 4), "the dashboard has panels");
}
