//! Real backups of a local directory with the real rdiff-backup: a first backup, an incremental
//! one after changes, restores of both versions, and retention.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use tests::rdiff::{backup_times, now, options_at, rdiff_backup, restore};
use tests::{read_tree, run, stderr, Fixture};

const DAY: u64 = 86_400;

fn source_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("etc/hosts", "127.0.0.1 localhost\n"),
        ("etc/app/config.yaml", "level: 1\n"),
        ("home/alice/notes.txt", "first version\n"),
        ("home/alice/keep.txt", "unchanged\n"),
        ("home/alice/cache/big.bin", "cache data that is excluded\n"),
    ]
}

#[test]
fn a_local_backup_then_an_incremental_one_restore_both_versions() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &source_files());
    let job = fx.write_job(
        "local.yaml",
        &format!(
            "label: local\nbackend: rdiff\nsource_hostname: localhost\ninclude: [{src}]\nexclude: [{src}/home/alice/cache]\n",
            src = src.display()
        ),
    );
    let first_time = now() - 3 * DAY;
    let out = run(fx.ari().args(["run"]).arg(&job).args(["--set", &options_at(first_time)]));
    assert!(out.status.success(), "first backup failed: {}", stderr(&out));
    assert_eq!(stderr(&out), "", "a successful run prints nothing");

    let repo = fx.path("store/local");
    let mirror = repo.join(src.strip_prefix("/").unwrap());
    let mut expected = read_tree(&src, &["cache"]);
    assert_eq!(read_tree(&mirror, &[]), expected, "the mirror holds the source without the excluded cache");
    let first_version = expected.clone();

    std::fs::write(src.join("home/alice/notes.txt"), "second version\n").unwrap();
    std::fs::write(src.join("home/alice/new.txt"), "added\n").unwrap();
    std::fs::remove_file(src.join("etc/hosts")).unwrap();
    let out = run(fx.ari().args(["run", "local"]));
    assert!(out.status.success(), "incremental backup failed: {}", stderr(&out));

    expected = read_tree(&src, &["cache"]);
    assert_eq!(read_tree(&mirror, &[]), expected, "the mirror follows the changes");
    let times = backup_times(&repo);
    assert_eq!(times.len(), 2, "one increment and the current mirror: {times:?}");
    assert_eq!(times[0], first_time);

    let restored_old = fx.path("restore-old");
    restore(&repo, &src.to_string_lossy(), first_time, &restored_old);
    assert_eq!(read_tree(&restored_old, &[]), first_version, "the increment restores the first version");
    let restored_new = fx.path("restore-new");
    restore(&repo, &src.to_string_lossy(), times[1], &restored_new);
    assert_eq!(read_tree(&restored_new, &[]), expected, "the mirror restores the second version");
}

#[test]
fn retention_removes_only_increments_older_than_the_timespec() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a.txt", "1\n")]);
    let job =
        fx.write_job("keep.yaml", &format!("include: [{}]\nremove_older_than_timespec: 1W\n", src.display()));
    let repo = fx.path("store/keep");
    let t0 = now() - 30 * DAY;
    let t1 = now() - 3 * DAY;
    // Each version has its own length: rdiff-backup sees a change by size and mtime, and two
    // writes within one second share their mtime.
    for (time, contents) in [(t0, "1\n"), (t1, "22\n")] {
        std::fs::write(src.join("a.txt"), contents).unwrap();
        let out = run(fx.ari().arg("run").arg(&job).args(["--set", &options_at(time)]));
        assert!(out.status.success(), "backup at {time} failed: {}", stderr(&out));
    }
    // The 30-day-old increment is older than 1W: retention after the second backup removed it.
    assert_eq!(backup_times(&repo), vec![t1], "only the mirror is left");

    // Nothing older than a week now: rdiff-backup warns (exit 2), which is a normal night.
    std::fs::write(src.join("a.txt"), "333\n").unwrap();
    let out = run(fx.ari().arg("run").arg(&job));
    assert!(out.status.success(), "a retention with nothing to remove is no failure: {}", stderr(&out));
    assert_eq!(backup_times(&repo).len(), 2, "the 3-day-old increment is kept");
}

#[test]
fn a_failed_backup_exits_1_and_runs_the_failure_hooks_only() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a.txt", "1\n")]);
    // A file where the repository should be: rdiff-backup cannot create it.
    std::fs::write(fx.path("store/broken"), "not a directory").unwrap();
    let job = fx.write_job(
        "broken.yaml",
        &format!(
            "include: [{src}]\npost:\n  - command: touch {ok}\n    when: success\n  - command: touch {failed}\n    when: failure\n  - command: [touch, {always}]\n",
            src = src.display(),
            ok = fx.p("ran-on-success"),
            failed = fx.p("ran-on-failure"),
            always = fx.p("ran-always"),
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("ari (broken) [ERROR] main step rdiff-backup failed"), "{err}");
    assert!(err.contains("exited with status"), "{err}");
    assert!(!fx.path("ran-on-success").exists());
    assert!(fx.path("ran-on-failure").exists());
    assert!(fx.path("ran-always").exists());
}

#[test]
fn a_failed_pre_command_stops_the_job_before_the_backup() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a.txt", "1\n")]);
    let job = fx.write_job(
        "pre.yaml",
        &format!(
            "include: [{src}]\npre:\n  - command: [\"false\"]\n  - command: touch {second}\npost:\n  - command: touch {post}\n    when: failure\n",
            src = src.display(),
            second = fx.p("second-pre-ran"),
            post = fx.p("post-ran"),
        ),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("pre step pre[0] failed: `false` on localhost exited with status 1"),
        "{}",
        stderr(&out)
    );
    assert!(!fx.path("second-pre-ran").exists(), "the first failure stops the pre steps");
    assert!(!fx.path("store/pre").exists(), "no backup after a failed pre step");
    assert!(fx.path("post-ran").exists(), "post steps run after a failure");
}

#[test]
fn a_command_that_cannot_start_says_why() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a.txt", "1\n")]);
    // A directory is no program: the kernel refuses to execute it.
    let job = fx.write_job(
        "nostart.yaml",
        &format!("include: [{}]\npre:\n  - command: [{}]\n", src.display(), src.display()),
    );
    let out = run(fx.ari().arg("run").arg(&job));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("pre step pre[0] failed: cannot start `{}`: Permission denied", src.display())),
        "{err}"
    );
}

#[test]
fn two_runs_of_a_job_in_a_row_both_back_up() {
    // rdiff-backup refuses a backup within the second of the last one: ari waits for the next
    // second when the job's last run ended in this one, so a second `ari run` right after the
    // first backs up too, without --current-time.
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a.txt", "1\n")]);
    let job = fx.write_job("twice.yaml", &format!("label: twice\ninclude: [{}]\n", src.display()));
    for attempt in ["first", "second"] {
        let out = run(fx.ari().arg("run").arg(&job));
        assert!(out.status.success(), "the {attempt} run failed: {}", stderr(&out));
    }
    assert_eq!(backup_times(&fx.path("store/twice")).len(), 2, "two backups");
}
