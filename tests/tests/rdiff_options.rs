//! `rdiff_backup_options` against the real rdiff-backup: every option ari passes on is one of
//! rdiff-backup's own, in the place its command line takes it (before the action, or after
//! `backup`), every option ari refuses is one rdiff-backup has (the refusals are of real
//! options, not guesses), and a backup with every allowed option runs in both command lines.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::collections::BTreeSet;
use std::process::Command;

use ari_rdiff::options::{allowed_options, refused_options, Place};
use tests::rdiff::{backup_times, now, rdiff_backup};
use tests::{assert_exit, run, stderr, Fixture};

/// The options one of rdiff-backup's help texts lists.
fn listed(args: &[&str]) -> BTreeSet<String> {
    let out = run(Command::new(rdiff_backup()).args(args));
    assert_exit(&out, 0);
    String::from_utf8_lossy(&out.stdout)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|word| {
            (word.starts_with("--") && word.len() > 2) || (word.len() == 2 && word.starts_with('-'))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn every_option_ari_passes_on_or_refuses_is_rdiff_backups_own() {
    let global = listed(&["--help"]);
    let backup = listed(&["backup", "--help"]);
    let legacy = listed(&["--no-new", "--help"]);
    assert!(
        global.contains("--remote-schema") && backup.contains("--exclude-fifos"),
        "{global:?} {backup:?}"
    );
    for (name, place, _) in allowed_options() {
        let (help, listing) = match place {
            Place::Global => ("rdiff-backup --help", &global),
            _ => ("rdiff-backup backup --help", &backup),
        };
        assert!(listing.contains(name), "{name} is not in `{help}`, where ari puts it");
        assert!(
            legacy.contains(name),
            "{name} is not in the legacy command line (`rdiff-backup --no-new --help`)"
        );
    }
    for name in refused_options() {
        assert!(
            legacy.contains(*name) || global.contains(*name) || backup.contains(*name),
            "ari refuses {name}, which rdiff-backup does not have"
        );
    }
}

/// A value rdiff-backup takes for an allowed option that takes one.
fn sample(name: &str, map: &str, time: u64) -> String {
    match name {
        "--terminal-verbosity" | "-v" | "--verbosity" => "3".into(),
        "--not-compressed-regexp" | "--no-compression-regexp" | "--exclude-regexp" => {
            "never-this-name$".into()
        }
        "--exclude-if-present" => ".nobackup".into(),
        "--max-file-size" => "1000000000".into(),
        "--min-file-size" => "1".into(),
        "--group-mapping-file" | "--user-mapping-file" => map.into(),
        "--current-time" => time.to_string(),
        other => panic!("{other} takes a value: give this test a sample of it"),
    }
}

#[test]
fn a_backup_with_every_option_ari_passes_on_runs_in_both_command_lines() {
    rdiff_backup();
    let fx = Fixture::new();
    let src = fx.make_tree("src", &[("a.txt", "1\n"), ("skipped/.nobackup", ""), ("skipped/b", "2\n")]);
    let map = fx.path("ids.map");
    std::fs::write(&map, "root:root\n").unwrap();
    let time = now() - 7200;
    let mut words = Vec::new();
    for (name, _, takes_value) in allowed_options() {
        // It stops the backup where the file system has no ACLs, as the test directory may not.
        if name == "--never-drop-acls" {
            continue;
        }
        words.push(name.to_string());
        if takes_value {
            words.push(sample(name, &map.to_string_lossy(), time));
        }
    }
    for cli in ["new", "legacy"] {
        let job = fx.write_job(
            &format!("{cli}.yaml"),
            &format!("include: [{}]\nrdiff_backup_cli: {cli}\n", src.display()),
        );
        // On the command line: --current-time is one run's, and a file may not set it. No word
        // holds a space or anything else a shell would read.
        assert!(words.iter().all(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || "-_./$:".contains(c))));
        let options = format!("rdiff_backup_options={}", words.join(" "));
        let out = run(fx.ari().arg("run").arg(&job).arg("--set").arg(options));
        assert_exit(&out, 0);
        let repo = fx.path(&format!("store/{cli}"));
        assert_eq!(backup_times(&repo), [time], "{cli}: the backup took --current-time: {}", stderr(&out));
        let mirror = repo.join(src.strip_prefix("/").unwrap());
        assert!(mirror.join("a.txt").is_file(), "{cli}: the file is backed up");
        assert!(!mirror.join("skipped").exists(), "{cli}: --exclude-if-present .nobackup took effect");
    }
}
