//! The corpus of bad input (`tests/corpus/bad-input.txt`): job files, global configs and command
//! lines that a hostile or careless admin might write. Each entry names what it is, where it goes
//! and the error ari must give. For each, `ari check` and `ari run` must exit 2 with that error,
//! at that line and column, and run nothing: the bad input goes with a good job listed first,
//! whose `pre` command would leave a marker had anything started.
//!
//! An entry:
//!
//! ```text
//! ### what it is
//! where: job | config | cli        (default: job)
//! expect: LINE:COLUMN message      (in the bad file, at that position)
//! expect: FILE message             (in the bad file, without a position: a missing key)
//! expect: ANY message              (anywhere in the errors: the command line, a missing tool)
//! the job file, the config, or the command-line arguments one per line
//! ```
//!
//! `ARI_UPDATE_CORPUS=1` rewrites each `expect:` line from what ari printed, for review in the
//! diff; a test run never passes that way.

#![allow(clippy::disallowed_methods)] // tests run real tools directly, on purpose

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use tests::{run, stderr, stdout, Fixture};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/bad-input.txt");

#[derive(Debug, Clone, PartialEq)]
enum Where {
    Job,
    Config,
    Cli,
}

#[derive(Debug, Clone)]
struct Entry {
    title: String,
    place: Where,
    expect: String,
    body: String,
    /// The line of `expect:` in the corpus file, for updates.
    expect_line: usize,
}

fn parse_corpus(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let Some(title) = lines[i].strip_prefix("### ") else {
            i += 1;
            continue;
        };
        let mut entry = Entry {
            title: title.trim().to_string(),
            place: Where::Job,
            expect: String::new(),
            body: String::new(),
            expect_line: 0,
        };
        i += 1;
        while i < lines.len() {
            if let Some(place) = lines[i].strip_prefix("where: ") {
                entry.place = match place.trim() {
                    "job" => Where::Job,
                    "config" => Where::Config,
                    "cli" => Where::Cli,
                    other => panic!("{}: unknown place `{other}`", entry.title),
                };
            } else if let Some(expect) = lines[i].strip_prefix("expect: ") {
                entry.expect = expect.trim_end_matches('\n').to_string();
                entry.expect_line = i;
            } else {
                break;
            }
            i += 1;
        }
        while i < lines.len() && !lines[i].starts_with("### ") {
            entry.body.push_str(lines[i]);
            i += 1;
        }
        assert!(!entry.expect.is_empty(), "{}: no `expect:` line", entry.title);
        entries.push(entry);
    }
    entries
}

/// What ari must print for `entry`, with the bad file's path filled in.
fn expected_fragment(entry: &Entry, file: &Path) -> String {
    let (place, message) = entry.expect.split_once(' ').unwrap_or((&entry.expect, ""));
    match place {
        "ANY" => message.to_string(),
        "FILE" => format!("{}: {message}", file.display()),
        position => format!("{}:{position}: {message}", file.display()),
    }
}

/// The first error ari printed, as an `expect:` line would say it.
fn observed(out: &Output, file: &Path) -> String {
    let text = format!("{}{}", stderr(out), stdout(out));
    let file = file.display().to_string();
    let line = text
        .lines()
        .filter_map(|l| l.strip_prefix("ari [ERROR] ").or_else(|| l.strip_prefix("error: ")))
        .find(|l| !l.starts_with("nothing ran"))
        .unwrap_or("(no error)")
        .to_string();
    match line.strip_prefix(&format!("{file}:")) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            let (position, message) = rest.split_once(": ").unwrap_or((rest, ""));
            format!("{position} {message}")
        }
        Some(rest) => format!("FILE {}", rest.trim_start()),
        None => format!("ANY {line}"),
    }
}

/// Runs one entry; returns what went wrong, or nothing, and what ari printed.
fn check_entry(entry: &Entry) -> (Vec<String>, String) {
    let fx = Fixture::new();
    let marker = fx.path("good-job-ran");
    let good =
        fx.write_job("good.yaml", &format!("backend: command\ncommand: [touch, {}]\n", marker.display()));
    let (bad_file, args): (PathBuf, Vec<String>) = match entry.place {
        Where::Job => (fx.write_job("bad.yaml", &entry.body), vec![fx.p("jobs.d/bad.yaml")]),
        Where::Config => {
            // The entry's lines first, so that their positions are as written; then the
            // fixture's directories, unless the entry sets them itself.
            let mut text = entry.body.clone();
            for (key, value) in [("state_dir", fx.p("state")), ("jobs_dir", fx.p("jobs.d"))] {
                if !text.contains(&format!("{key}:"))
                    && !text.trim().starts_with('-')
                    && !text.trim().is_empty()
                {
                    let _ = writeln!(text, "{}{key}: {value}", if text.ends_with('\n') { "" } else { "\n" });
                }
            }
            std::fs::write(fx.config_path(), text).unwrap();
            (fx.config_path(), Vec::new())
        }
        Where::Cli => (fx.config_path(), entry.body.lines().map(str::to_string).collect()),
    };
    let expected = expected_fragment(entry, &bad_file);
    let mut problems = Vec::new();
    let mut seen = String::new();
    for command in ["check", "run"] {
        let mut ari = fx.ari();
        ari.arg(command);
        if command == "run" {
            ari.arg(&good);
        }
        if entry.place == Where::Job || command == "run" {
            ari.args(&args);
        } else {
            ari.args(&args).arg(&good);
        }
        let out = run(&mut ari);
        let text = format!("{}{}", stderr(&out), stdout(&out));
        if seen.is_empty() {
            seen = observed(&out, &bad_file);
        }
        if out.status.code() != Some(2) {
            problems.push(format!("ari {command} exited {:?}, not 2", out.status.code()));
        }
        if !text.contains(&expected) {
            problems.push(format!("ari {command}: `{expected}` not in its output:\n{text}"));
        }
        if marker.exists() {
            problems.push(format!("ari {command} ran a command despite the error"));
        }
    }
    (problems, seen)
}

#[test]
fn every_bad_input_of_the_corpus_is_refused_before_anything_runs() {
    let text = std::fs::read_to_string(CORPUS).expect("read the corpus");
    let entries = parse_corpus(&text);
    assert!(entries.len() >= 150, "the corpus shrank to {} entries", entries.len());
    // Four at a time: each entry starts ari twice.
    let results: Vec<(Vec<String>, String)> = std::thread::scope(|scope| {
        let chunks: Vec<&[Entry]> = entries.chunks(entries.len().div_ceil(4)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| scope.spawn(move || chunk.iter().map(check_entry).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("a corpus thread panicked")).collect()
    });
    if std::env::var_os("ARI_UPDATE_CORPUS").is_some() {
        let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
        for (entry, (_, seen)) in entries.iter().zip(&results) {
            lines[entry.expect_line] = format!("expect: {seen}\n");
        }
        std::fs::write(CORPUS, lines.concat()).expect("write the corpus");
        panic!("the corpus was updated from what ari printed: review the diff, then run again");
    }
    let mut report = String::new();
    for (entry, (problems, _)) in entries.iter().zip(&results) {
        for problem in problems {
            let _ = writeln!(report, "--- {}: {problem}", entry.title);
        }
    }
    let failed = results.iter().filter(|(p, _)| !p.is_empty()).count();
    assert!(report.is_empty(), "{failed} of {} corpus entries failed:\n{report}", entries.len());
}

#[test]
fn every_entry_names_a_position_when_its_value_has_one() {
    // A value in a file has a line and column; only missing keys, and what is not in a file
    // (the command line, a missing tool), may go without.
    let text = std::fs::read_to_string(CORPUS).expect("read the corpus");
    let without: Vec<String> = parse_corpus(&text)
        .into_iter()
        .filter(|e| e.place != Where::Cli && !e.expect.starts_with(|c: char| c.is_ascii_digit()))
        .filter(|e| !e.title.contains("(no position)"))
        .map(|e| format!("{}: {}", e.title, e.expect))
        .collect();
    assert!(
        without.is_empty(),
        "entries without a position, not marked `(no position)`:\n{}",
        without.join("\n")
    );
}

/// The alias bombs of issue 17, valid YAML that serde_yaml expands node by node: 10,000 hooks
/// aliasing one hook of 1,000 words (76 KB; 1.1 GB to load before), and 100,000 hooks aliasing
/// a hook that aliases a list of 1,000 words (the 706 KB file that took `ari check` to 11 GB).
/// Each is refused at the alias that brings the document past the budget of
/// `yaml::MAX_NODES` nodes, aliases expanded, by every command that reads jobs.
#[test]
fn alias_bombs_are_refused_at_the_alias_that_passes_the_budget() {
    let fx = Fixture::new();
    let words = vec!["w"; 1000].join(", ");
    let wide =
        format!("include: [/etc]\npre:\n  - &h {{command: [echo, {words}]}}\n{}", "  - *h\n".repeat(10_000));
    assert!(wide.len() < 80_000, "{}", wide.len());
    let deep = format!(
        "include: [/etc]\nx: &w [{words}]\npre:\n  - &h {{command: *w}}\n{}",
        "  - *h\n".repeat(100_000)
    );
    assert!(deep.len() < 800_000, "{}", deep.len());
    // A hook is its mapping, its key and its list of 1,001 words (through `*w` in the second
    // file, 1,003 then); the 99th alias of the first file and the 98th of the second pass 100,000.
    for (name, text, at) in [
        ("wide.yaml", wide, ":102:5: the alias `*h` repeats 1004 nodes and 1011 bytes"),
        ("deep.yaml", deep, ":102:5: the alias `*h` repeats 1003 nodes and"),
    ] {
        let job = fx.write_job(name, &text);
        let expected = format!("{}{at}", job.display());
        for command in [&["check"][..], &["list"], &["plan"], &["run-all", "--dry-run"]] {
            let mut ari = fx.ari();
            ari.args(command);
            if command[0] != "list" && command[0] != "run-all" {
                ari.arg(&job);
            }
            let out = run(&mut ari);
            let all = format!("{}{}", stdout(&out), stderr(&out));
            assert!(all.contains(&expected), "{name} {command:?}: `{expected}` not in {all}");
            assert!(all.contains("past 100000 nodes"), "{name} {command:?}: {all}");
        }
        std::fs::remove_file(&job).unwrap();
    }
}

/// A value of megabytes shows a few hundred bytes of itself in the error about it, whichever
/// check refuses it: ari's kinds, its own keys and names, or serde_yaml's types.
#[test]
fn errors_show_a_few_hundred_bytes_of_a_value() {
    let fx = Fixture::new();
    let big = "x".repeat(2_000_000);
    let cases = [
        ("label", format!("label: {big}\ninclude: [/etc]\n")),
        ("when", format!("include: [/etc]\npost:\n  - command: [true]\n    when: {big}\n")),
        ("integer", format!("include: [/etc]\nssh_port: {big}\n")),
        ("backend", format!("include: [/etc]\nbackend: {big}\n")),
        ("host", format!("include: [/etc]\nsource_hostname: '-{big}'\n")),
        ("hook", format!("include: [/etc]\npre:\n  - {big}\n")),
        ("snapshot", format!("include: [/etc]\nsnapshot: {big}\n")),
        ("key", format!("include: [/etc]\n? {big}\n: 1\n")),
        ("quoted", format!("include: [/etc]\nssh_port: \"a`b\\\"{big}\"\n")),
    ];
    for (name, text) in cases {
        let job = fx.write_job(&format!("{name}.yaml"), &text);
        let out = run(fx.ari().arg("check").arg(&job));
        assert_eq!(out.status.code(), Some(2), "{name}");
        let error = stdout(&out).lines().find(|l| l.starts_with("error: ")).map(str::to_string);
        let error = error.unwrap_or_else(|| panic!("{name}: no error in {}", stdout(&out)));
        assert!(error.len() < 700, "{name}: an error of {} bytes: {}", error.len(), &error[..700]);
        assert!(error.contains("bytes left out]"), "{name}: {error}");
        std::fs::remove_file(&job).unwrap();
    }
}

/// Inputs too large to write into the corpus file.
#[test]
fn generated_inputs_are_refused_quickly() {
    let fx = Fixture::new();
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "deep.yaml",
            format!("include: [/etc]\nx: {}{}\n", "[".repeat(1 << 20), "]".repeat(1 << 20)),
            ":2:67: sequences and mappings are nested deeper than 64 levels",
        ),
        (
            "deep-map.yaml",
            format!("include: [/etc]\nx: {}1{}\n", "{a: ".repeat(100_000), "}".repeat(100_000)),
            ":2:",
        ),
        (
            "huge.yaml",
            format!("include: [/etc]\n#{}\n", "x".repeat(9 << 20)),
            ": the file is 9437202 bytes, more than the 8388608 bytes ari reads",
        ),
        (
            "many-includes.yaml",
            format!(
                "include:\n{}",
                (0..60_000)
                    .map(|i| format!("  - /srv/a-directory-with-a-long-name/d{i}\n"))
                    .collect::<String>()
            ),
            ": the command of step `rdiff-backup` would be",
        ),
        (
            "too-many-includes.yaml",
            format!("include:\n{}", (0..300_000).map(|i| format!("  - /srv/d{i}\n")).collect::<String>()),
            ":99999:5: the document holds more than 100000 nodes",
        ),
        (
            // 4 MiB of `- - - ...`: serde_yaml held every event before its own recursion limit.
            "deep-block.yaml",
            format!("include: [/etc]\nx:\n  {}x\n", "- ".repeat(2 << 20)),
            ":3:129: sequences and mappings are nested deeper than 64 levels",
        ),
    ];
    for (name, text, expected) in cases {
        let job = fx.write_job(name, &text);
        let out = run(fx.ari().arg("check").arg(&job));
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stdout(&out));
        let expected = format!("{}{expected}", job.display());
        assert!(stdout(&out).contains(&expected), "{name}: `{expected}` not in {}", stdout(&out));
    }
    // A config without end is read no further than a file may be (it used to fill memory).
    let out = run(std::process::Command::new(tests::ari_bin()).args(["--config", "/dev/zero", "check"]));
    assert_eq!(out.status.code(), Some(2));
    let expected = "/dev/zero: the file holds more than the 8388608 bytes ari reads";
    assert!(stderr(&out).contains(expected), "`{expected}` not in {}", stderr(&out));
}
