//! `ari run-all`: discovery, parallel runs under the global and per-host caps (checked from the
//! run report's timestamps), order from history, the run-all lock, summary modes, exit codes,
//! `ari status` with `max_age`, and no progress display when stderr is no terminal.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::process::{Command, Stdio};

use tests::{eventually, run, stderr, stdout, Fixture, Running};

/// A `command` job that runs locally: it records nothing itself; the run report has its times.
fn sleeper(fx: &Fixture, name: &str, host: &str, seconds: f64) {
    fx.write_job(
        &format!("{name}.yaml"),
        &format!("backend: command\nsource_hostname: {host}\ncommand_host: local\ncommand: [sleep, \"{seconds}\"]\n"),
    );
}

fn failing(fx: &Fixture, name: &str) {
    fx.write_job(&format!("{name}.yaml"), "backend: command\ncommand_host: local\ncommand: [\"false\"]\n");
}

/// The newest run-all report.
fn last_report(fx: &Fixture) -> serde_json::Value {
    let mut reports: Vec<_> = std::fs::read_dir(fx.path("state/reports"))
        .expect("a reports directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("run-all-"))
        .collect();
    reports.sort();
    let path = reports.last().expect("a run-all report");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// (label, start, end, hosts) of every job in a report.
fn spans(report: &serde_json::Value) -> Vec<(String, f64, f64, Vec<String>)> {
    report["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["job"].as_str().unwrap().to_string(),
                j["start"].as_f64().unwrap(),
                j["end"].as_f64().unwrap(),
                j["hosts"].as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_string()).collect(),
            )
        })
        .collect()
}

/// The most jobs (of `host`, or of any host when `None`) that overlapped at any instant.
fn max_overlap(spans: &[(String, f64, f64, Vec<String>)], host: Option<&str>) -> usize {
    let relevant: Vec<_> = spans.iter().filter(|s| host.is_none_or(|h| s.3.iter().any(|x| x == h))).collect();
    relevant.iter().map(|s| relevant.iter().filter(|o| o.1 <= s.1 && s.1 < o.2).count()).max().unwrap_or(0)
}

/// A `command` job that says it started (a file in `started/`) and then runs until the test
/// lets every held job go (makes `go`).
fn held(fx: &Fixture, name: &str, host: &str) {
    fx.write_job(
        &format!("{name}.yaml"),
        &format!(
            "backend: command\nsource_hostname: {host}\ncommand_host: local\ncommand: [sh, -c, \"touch {started}/{name}; while [ ! -e {go} ]; do sleep 0.05; done\"]\n",
            started = fx.p("started"),
            go = fx.p("go"),
        ),
    );
}

/// The held jobs that have started so far, by name.
fn started(fx: &Fixture) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fx.path("started"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn jobs_sharing_a_host_never_exceed_the_caps() {
    let fx = Fixture::new();
    fx.write_config("max_concurrent_jobs: 4\nmax_jobs_per_host: 2\n");
    std::fs::create_dir(fx.path("started")).unwrap();
    for i in 0..6 {
        held(&fx, &format!("a{i}"), "host-a");
        held(&fx, &format!("b{i}"), "host-b");
    }
    // No held job ends before the test lets them go, so once four have started, four run at
    // once: the caps are filled, two jobs of each host.
    let running = Running::start(fx.ari().arg("run-all"));
    assert!(
        eventually(|| started(&fx).len() >= 4),
        "run-all never ran four jobs at once: {:?}\n{}",
        started(&fx),
        running.stderr_so_far()
    );
    let at_once = started(&fx);
    let of = |host: &str| at_once.iter().filter(|name| name.starts_with(host)).count();
    assert_eq!((at_once.len(), of("a"), of("b")), (4, 2, 2), "running at once: {at_once:?}");
    std::fs::write(fx.path("go"), "").unwrap();
    let out = running.wait();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "the summary is printed only on failure by default");
    assert_eq!(started(&fx).len(), 12, "every job ran");
    let report = last_report(&fx);
    let spans = spans(&report);
    assert_eq!(spans.len(), 12);
    assert_eq!(max_overlap(&spans, Some("host-a")), 2, "host-a: {spans:?}");
    assert_eq!(max_overlap(&spans, Some("host-b")), 2, "host-b: {spans:?}");
    assert_eq!(max_overlap(&spans, None), 4, "overall: {spans:?}");
}

#[test]
fn the_default_caps_run_one_job_at_a_time() {
    let fx = Fixture::new();
    for i in 0..3 {
        sleeper(&fx, &format!("j{i}"), &format!("h{i}"), 0.2);
    }
    assert!(run(fx.ari().arg("run-all")).status.success());
    assert_eq!(max_overlap(&spans(&last_report(&fx)), None), 1);
}

/// Sets the duration of every run in the history of `label` to `seconds`.
fn set_durations(fx: &Fixture, label: &str, seconds: f64) {
    let history = fx.path(&format!("state/history/{label}.json"));
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&history).unwrap()).unwrap();
    for run in json["runs"].as_array_mut().expect("a history has runs") {
        run["duration_seconds"] = seconds.into();
    }
    std::fs::write(&history, serde_json::to_vec(&json).unwrap()).unwrap();
}

#[test]
fn order_is_new_jobs_first_then_longest_first() {
    let fx = Fixture::new();
    sleeper(&fx, "a-short", "h1", 0.1);
    sleeper(&fx, "b-mid", "h2", 0.3);
    sleeper(&fx, "c-long", "h3", 0.6);
    let started_order = |fx: &Fixture| {
        let mut spans = spans(&last_report(fx));
        spans.sort_by(|a, b| a.1.total_cmp(&b.1));
        spans.into_iter().map(|s| s.0).collect::<Vec<_>>()
    };
    assert!(run(fx.ari().arg("run-all")).status.success());
    assert_eq!(started_order(&fx), ["a-short", "b-mid", "c-long"], "without history: by name");
    // Each run's duration is in its history: at least as long as the job slept.
    for (label, slept) in [("a-short", 0.1), ("b-mid", 0.3), ("c-long", 0.6)] {
        let history = fx.path(&format!("state/history/{label}.json"));
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&history).unwrap()).unwrap();
        let duration = json["runs"][0]["duration_seconds"].as_f64().unwrap();
        assert!(duration >= slept, "{label} slept {slept} s and took {duration} s: {json}");
    }
    // The order follows the durations the history holds, whatever the machine's load made of
    // the sleeps: the test sets them far apart.
    for (label, seconds) in [("a-short", 10.0), ("b-mid", 30.0), ("c-long", 60.0)] {
        set_durations(&fx, label, seconds);
    }
    sleeper(&fx, "z-new", "h4", 0.1);
    assert!(run(fx.ari().arg("run-all")).status.success());
    assert_eq!(
        started_order(&fx),
        ["z-new", "c-long", "b-mid", "a-short"],
        "then the new one, then longest first"
    );
}

#[test]
fn a_failing_or_invalid_job_does_not_stop_the_others_and_the_worst_exit_wins() {
    let fx = Fixture::new();
    fx.write_config("max_concurrent_jobs: 2\n");
    sleeper(&fx, "good", "h1", 0.1);
    failing(&fx, "bad");
    let out = run(fx.ari().arg("run-all"));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let summary = stdout(&out);
    assert!(summary.contains("good  ") && summary.contains("success"), "{summary}");
    assert!(summary.contains("bad") && summary.contains("failed"), "{summary}");
    assert!(summary.contains("2 jobs, 1 failed; wall time"), "{summary}");

    fx.write_job("broken.yaml", "backend: command\ncomand: [true]\n");
    let out = run(fx.ari().arg("run-all"));
    assert_eq!(out.status.code(), Some(2), "an invalid job makes the worst exit 2: {}", stderr(&out));
    assert!(stderr(&out).contains("broken.yaml:2:9: comand: unknown key"), "{}", stderr(&out));
    assert!(stderr(&out).contains("the other jobs run"), "{}", stderr(&out));
    let report = last_report(&fx);
    assert_eq!(report["jobs"].as_array().unwrap().len(), 2, "the valid jobs ran");
    assert_eq!(report["invalid"][0]["file"], fx.p("jobs.d/broken.yaml"));
}

#[test]
fn two_jobs_with_one_label_are_both_invalid_and_named() {
    let fx = Fixture::new();
    fx.write_job("one.yaml", "label: same\nbackend: command\ncommand_host: local\ncommand: [\"true\"]\n");
    fx.write_job("two.yaml", "label: same\nbackend: command\ncommand_host: local\ncommand: [\"true\"]\n");
    let out = run(fx.ari().arg("run-all"));
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "{}: label `same` is also the label of {}",
            fx.p("jobs.d/one.yaml"),
            fx.p("jobs.d/two.yaml")
        )),
        "{err}"
    );
}

#[test]
fn summary_modes() {
    let fx = Fixture::new();
    sleeper(&fx, "ok", "h1", 0.0);
    let out = run(fx.ari().args(["run-all", "--summary", "always"]));
    assert!(stdout(&out).contains("ok   success  0"), "{}", stdout(&out));
    failing(&fx, "bad");
    let out = run(fx.ari().args(["run-all", "--summary", "never"]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    let out = run(fx.ari().args(["run-all", "--summary=failures"]));
    assert!(stdout(&out).contains("bad"), "{}", stdout(&out));
}

#[test]
fn a_second_run_all_is_refused_while_one_runs_and_wait_waits() {
    let fx = Fixture::new();
    let marker = fx.path("job-started");
    let hold = fx.path("hold");
    std::fs::create_dir(&hold).unwrap();
    // The job runs until the test lets it go (removes `hold`), however long the test takes.
    fx.write_job(
        "slow.yaml",
        &format!(
            "backend: command\ncommand_host: local\ncommand: [sh, -c, \"touch {}; while [ -d {} ]; do sleep 0.1; done\"]\n",
            marker.display(),
            hold.display()
        ),
    );
    let mut first = Running::start(fx.ari().arg("run-all"));
    assert!(eventually(|| marker.exists()), "the first run-all never started its job");
    let out = run(fx.ari().arg("run-all"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!("ari run-all is already running (pid {} on ", first.pid())),
        "{}",
        stderr(&out)
    );

    // --debug shows the info line that says the run waits, which is what this waits for.
    std::fs::remove_file(&marker).unwrap();
    let waiting = Running::start(fx.ari().args(["run-all", "--wait", "--debug"]));
    let line = format!("ari run-all is already running (pid {} on ", first.pid());
    assert!(
        eventually(|| waiting
            .stderr_so_far()
            .lines()
            .any(|l| l.contains(&line) && l.contains("waiting for it"))),
        "the second run-all never said it waits:\n{}",
        waiting.stderr_so_far()
    );
    assert!(first.child.try_wait().unwrap().is_none(), "the first run-all ended while it was held");
    assert!(!marker.exists(), "the waiting run-all started its job while the first ran");
    std::fs::remove_dir(&hold).unwrap();
    let first = first.wait();
    assert!(first.status.success(), "{}", stderr(&first));
    let out = waiting.wait();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(marker.exists(), "--wait ran the job once the first run-all was done");
}

#[test]
fn status_flags_jobs_without_a_recent_success() {
    let fx = Fixture::new();
    sleeper(&fx, "fresh", "h1", 0.0);
    failing(&fx, "failing");
    sleeper(&fx, "old", "h3", 0.0);
    run(fx.ari().arg("run-all"));
    // Back-date old's only success by three days.
    let history = fx.path("state/history/old.json");
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(&history).unwrap()).unwrap();
    let started = json["runs"][0]["started"].as_i64().unwrap();
    json["runs"][0]["started"] = (started - 3 * 86_400).into();
    std::fs::write(&history, serde_json::to_vec(&json).unwrap()).unwrap();

    let out = run(fx.ari().args(["status"]));
    assert_eq!(out.status.code(), Some(0), "without max_age nothing is stale");
    let out = run(fx.ari().args(["status", "--max_age", "26h"]));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    let line = |job: &str| {
        text.lines().find(|l| l.starts_with(job)).unwrap_or_else(|| panic!("{job} in {text}")).to_string()
    };
    assert!(line("fresh").ends_with("ok"), "{text}");
    assert!(
        line("failing").contains("failed (1)")
            && line("failing").contains("never")
            && line("failing").ends_with("STALE"),
        "{text}"
    );
    assert!(line("old").contains("3d") && line("old").ends_with("STALE"), "{text}");
    assert!(text.contains("2 jobs without a success in the last 26h"), "{text}");
}

#[test]
fn list_shows_every_entry_and_why_it_is_skipped() {
    let fx = Fixture::new();
    sleeper(&fx, "web", "h1", 0.0);
    fx.write_job(".disabled.yaml", "backend: command\n");
    fx.write_job("web.yaml.dpkg-old", "backend: command\n");
    fx.write_job("notes.txt", "hello\n");
    std::fs::create_dir_all(fx.path("jobs.d/subdir")).unwrap();
    let out = run(fx.ari().arg("list"));
    let text = stdout(&out);
    for expected in [
        "skipped  .disabled.yaml     hidden: a leading dot disables a job",
        "skipped  notes.txt          a name run-parts would not run, and not ending in .yaml or .yml",
        "skipped  subdir             not a regular file",
        "enabled  web.yaml           label web, backend command, source h1",
        "skipped  web.yaml.dpkg-old  an editor or package-manager leftover",
    ] {
        assert!(text.contains(expected), "`{expected}` not in:\n{text}");
    }
}

#[test]
fn no_progress_display_without_a_terminal_but_one_on_a_terminal() {
    let fx = Fixture::new();
    let hold = fx.path("hold");
    // The job runs while `hold` exists: not at all in the first run, until the test has seen the
    // display in the second.
    fx.write_job(
        "quick.yaml",
        &format!(
            "backend: command\ncommand_host: local\ncommand: [sh, -c, \"while [ -d {} ]; do sleep 0.05; done\"]\n",
            hold.display()
        ),
    );
    let out = run(fx.ari().arg("run-all"));
    assert_eq!(stderr(&out), "", "no progress display when stderr is no terminal");
    // `script` gives ari a terminal, as an admin's shell would.
    std::fs::create_dir(&hold).unwrap();
    let command = format!("{} --config {} run-all", tests::ari_bin().display(), fx.config_path().display());
    let shown =
        Running::start(Command::new("script").args(["-qec", &command, "/dev/null"]).stdin(Stdio::null()));
    assert!(
        eventually(|| shown.stdout_so_far().contains("done")),
        "no progress display on a terminal: {:?}",
        shown.stdout_so_far()
    );
    std::fs::remove_dir(&hold).unwrap();
    let out = shown.wait();
    assert!(out.status.success(), "{}", stderr(&out));
}
