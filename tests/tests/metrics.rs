//! The metrics file for node_exporter's textfile collector: written after every real run, with
//! every job of state_dir in it, in a format promtool accepts; a dry run writes none, and a
//! metrics file that cannot be written is a warning, never the run's failure. It is written only
//! where nothing is or over a regular file of ari's user, in a directory no other user can swap
//! it in: a device, a FIFO, a symlink, a directory or another user's file is left as it is.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tests::rdiff::rdiff_backup;
use tests::{assert_exit, require_tool, run, run_with_stdin, stderr, stdout, Fixture};

fn metrics(fx: &Fixture) -> String {
    std::fs::read_to_string(fx.path("metrics/ari.prom")).expect("the metrics file")
}

fn promtool_accepts(text: &str) {
    let promtool = require_tool("promtool", "prometheus");
    let out =
        run_with_stdin(std::process::Command::new(promtool).args(["check", "metrics"]), text.as_bytes());
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

/// The unprivileged user that owns the other user's files below.
const NOBODY: u32 = 65534;

/// What is at a path, as the refusals must leave it: its type and mode, owner, inode and device
/// numbers, and a regular file's or a symlink target's contents.
fn state_of(path: &Path) -> (u32, u32, u64, u64, Option<Vec<u8>>) {
    let meta = std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Only what reading cannot block on or never end (a FIFO, a device): regular files.
    let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
    let contents = if regular { std::fs::read(path).ok() } else { None };
    (meta.mode(), meta.uid(), meta.ino(), meta.rdev(), contents)
}

/// `mknod`/`mkfifo` as an admin would: the real tools, as root.
fn make_node(args: &[&str]) {
    let status = std::process::Command::new(args[0]).args(&args[1..]).status().expect("run mknod/mkfifo");
    assert!(status.success(), "{args:?}");
}

fn require_root() {
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    assert_eq!(
        uid, 0,
        "this test needs root: it makes a device node with mknod and chowns files to uid {NOBODY}; run the tests as root (as CI does)"
    );
}

#[test]
fn a_metrics_file_is_written_only_where_nothing_is_or_over_a_file_of_aris_own() {
    require_root();
    let fx = Fixture::new();
    let dir = fx.path("metrics");
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("ari.prom");
    fx.write_config(&format!("metrics_file: {}\n", target.display()));
    let job = fx.write_job("db.yaml", &format!("backend: command\ncommand: [touch, {}]\n", fx.p("ran")));
    let precious = fx.path("precious");
    type Setup<'a> = Box<dyn Fn() + 'a>;
    let cases: Vec<(&str, Setup, String)> = vec![
        (
            "a device node like /dev/full",
            Box::new(|| make_node(&["mknod", target.to_str().unwrap(), "c", "1", "7"])),
            format!("{} is a device, not a regular file", target.display()),
        ),
        (
            "a FIFO",
            Box::new(|| make_node(&["mkfifo", target.to_str().unwrap()])),
            format!("{} is a FIFO, not a regular file", target.display()),
        ),
        (
            "a symlink to another file",
            Box::new(|| {
                std::fs::write(&precious, "precious\n").unwrap();
                std::os::unix::fs::symlink(&precious, &target).unwrap();
            }),
            format!(
                "{} is a symlink (to {}): ari neither follows nor replaces one there",
                target.display(),
                precious.display()
            ),
        ),
        (
            "another user's file",
            Box::new(|| {
                std::fs::write(&target, "theirs\n").unwrap();
                std::os::unix::fs::lchown(&target, Some(NOBODY), Some(NOBODY)).unwrap();
            }),
            format!(
                "{} is owned by uid {NOBODY} (nobody), not by uid 0 (root), the user ari runs as",
                target.display()
            ),
        ),
        (
            "a directory",
            Box::new(|| std::fs::create_dir(&target).unwrap()),
            format!("{} is a directory, not a regular file", target.display()),
        ),
        (
            "a directory other users can write in",
            Box::new(|| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap()),
            format!(
                "{} has mode 0777: its group and other users can write in it and it is not sticky (+t)",
                dir.display()
            ),
        ),
        (
            "another user's directory",
            Box::new(|| std::os::unix::fs::lchown(&dir, Some(NOBODY), Some(NOBODY)).unwrap()),
            format!(
                "{} is owned by uid {NOBODY} (nobody): its owner could replace what ari writes in it",
                dir.display()
            ),
        ),
    ];
    for (what, setup, expected) in cases {
        setup();
        let watched = if target.symlink_metadata().is_ok() { target.clone() } else { dir.clone() };
        let before = state_of(&watched);
        let out = run(fx.ari().arg("run").arg(&job).arg("--debug"));
        assert_exit(&out, 0);
        assert!(fx.path("ran").exists(), "{what}: the backup ran");
        let warning = format!("the metrics file could not be written: {expected}");
        assert!(
            stderr(&out).lines().any(|l| l.contains("[WARN]") && l.contains(&warning)),
            "{what}: a warning `{warning}` not in:\n{}",
            stderr(&out)
        );
        assert_eq!(state_of(&watched), before, "{what}: left as it was");
        if precious.exists() {
            assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious\n", "{what}");
        }
        // `ari check` says the same before any run.
        let out = run(fx.ari().arg("check"));
        assert_exit(&out, 2);
        assert!(
            stdout(&out).contains(&format!("error: metrics_file: {expected}")),
            "{what}: {}",
            stdout(&out)
        );
        // Back to a directory of root's with nothing in it.
        let _ = std::fs::remove_dir(&target).or_else(|_| std::fs::remove_file(&target));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::lchown(&dir, Some(0), Some(0)).unwrap();
        std::fs::remove_file(fx.path("ran")).unwrap();
    }
    // A sticky directory that everyone can write in, as /tmp, is fine: no one else can replace
    // a file of root's there.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = run(fx.ari().arg("run").arg(&job).arg("--debug"));
    assert_exit(&out, 0);
    assert!(!stderr(&out).contains("metrics file could not be written"), "{}", stderr(&out));
    let meta = std::fs::symlink_metadata(&target).unwrap();
    assert!(meta.is_file() && meta.uid() == 0 && meta.mode() & 0o777 == 0o644, "{meta:?}");
    assert!(std::fs::read_to_string(&target).unwrap().contains("ari_job_last_run_success{job=\"db\"} 1"));
    let out = run(fx.ari().arg("check"));
    assert!(stdout(&out).contains(&format!("ok: metrics_file {}\n", target.display())), "{}", stdout(&out));
}

/// The names of ari's metrics: what the dashboard and the alert rules may use, as the metrics
/// file of a real backup (which reports files and bytes, and is spot-checked every week) holds
/// them.
fn metric_names() -> Vec<String> {
    rdiff_backup();
    let fx = Fixture::new();
    std::fs::create_dir_all(fx.path("metrics")).unwrap();
    fx.write_config(&format!("metrics_file: {}\n", fx.p("metrics/ari.prom")));
    let src = fx.make_tree("src", &[("a", "1")]);
    let job = fx
        .write_job(
        "x.yaml",
        &format!(
            "include: [{}]\nverify_sample: 1\nverify_every: 7d\ndumps:\n  - {{name: d, command: [echo, dump]}}\n",
            src.display()
        ),
    );
    assert_exit(&run(fx.ari().arg("run").arg(&job)), 0);
    let names = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(String::from)
            .collect()
    };
    let mut known = names(&metrics(&fx));
    // A zfs job (the fakes) adds its pool's health and last scrub.
    known.extend(names(&zfs_metrics()));
    known.sort();
    known.dedup();
    known
}

/// The metrics file after a run of a zfs job (the fakes: a pool ONLINE, scrubbed a day ago).
fn zfs_metrics() -> String {
    require_tool("rsync", "rsync");
    let zfs = tests::World::new();
    std::fs::create_dir_all(zfs.fx.path("metrics")).unwrap();
    zfs.write_config(&format!("metrics_file: {}\n", zfs.fx.p("metrics/ari.prom")));
    zfs.fakes.add_dataset("pool/backups/web");
    zfs.fakes.set_pool("pool", "ONLINE", Some(jiff::Timestamp::now().as_second() - 86_400));
    let src = zfs.fx.make_tree("src", &[("etc/hosts", "127.0.0.1\n")]);
    std::fs::create_dir_all(zfs.fx.path("zfs/web")).unwrap();
    let job = zfs.fx.write_job(
        "web.yaml",
        &format!(
            "label: web\nbackend: zfs\ninclude: [{}]\nrsync_dst: {}\nzfs_hostname: localhost\ndataset_name: pool/backups/web\nsnapshot_expiration_days: 60\n",
            src.display(),
            zfs.fx.p("zfs/web")
        ),
    );
    assert_exit(&zfs.run(&job), 0);
    let text = std::fs::read_to_string(zfs.fx.path("metrics/ari.prom")).expect("the metrics file");
    promtool_accepts(&text);
    text
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
