//! The hostile-input benchmark of `cargo xtask bench` (`--only yaml`): the time and peak RSS of
//! `ari list` (every job of jobs_dir, loaded) and `ari check JOB` (loaded and planned) for the
//! worst job files the YAML bounds (ari-core/src/contract/yaml.rs) let through or refuse: alias bombs
//! (issue 17's 76 KB and 706 KB files), documents just under the node and value budgets, 8 MiB of
//! one scalar, of one-letter words and of nesting, and a 2 MB value an error echoes. The jobs
//! are `backend: command`, so that `ari check` starts no tool whose time would hide ari's.
//! The promise is that no file under 8 MiB costs more than about 100 MB or 1 s to load; each
//! case is reported against that, never asserted (the tests assert the budgets themselves).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;

use anyhow::Result;
use serde_json::{json, Value};

use super::measure::{measure_any_exit, median};
use crate::shell;

const RSS_MIB_TARGET: f64 = 100.0;
const MS_TARGET: f64 = 1000.0;
const RUNS: usize = 3;

/// Writes a case's job file: `backend: command` (so that `ari check` starts no tool) and its
/// body, streamed, so that xtask never holds a large text: the peak RSS that wait4 reports for a
/// child counts the parent's own at the time it was started.
type Body = fn(&mut dyn Write) -> std::io::Result<()>;

/// Each case: its name, what it is, and its body.
fn cases() -> Vec<(&'static str, &'static str, Body)> {
    fn repeat(out: &mut dyn Write, text: &str, times: usize) -> std::io::Result<()> {
        (0..times).try_for_each(|_| out.write_all(text.as_bytes()))
    }
    fn words(out: &mut dyn Write) -> std::io::Result<()> {
        out.write_all(b"echo")?;
        repeat(out, ", w", 999)
    }
    vec![
        ("alias-bomb-76k", "10,000 hooks aliasing one hook of 1,000 words (refused)", |out| {
            out.write_all(b"pre:\n  - &h {command: [")?;
            words(out)?;
            out.write_all(b"]}\n")?;
            repeat(out, "  - *h\n", 10_000)
        }),
        ("alias-bomb-706k", "100,000 hooks aliasing a hook that aliases 1,000 words (refused)", |out| {
            out.write_all(b"x: &w [")?;
            words(out)?;
            out.write_all(b"]\npre:\n  - &h {command: *w}\n")?;
            repeat(out, "  - *h\n", 100_000)
        }),
        (
            "aliases-under-budget",
            "97 hooks aliasing one hook of 1,000 words: 98,000 nodes expanded (accepted)",
            |out| {
                out.write_all(b"pre:\n  - &h {command: [")?;
                words(out)?;
                out.write_all(b"]}\n")?;
                repeat(out, "  - *h\n", 97)
            },
        ),
        (
            "bytes-under-budget",
            "82 hooks aliasing one 100 KB command: 8.3 MB of values expanded (accepted)",
            |out| {
                out.write_all(b"pre:\n  - &h {command: 'true ")?;
                repeat(out, "e", 100_000)?;
                out.write_all(b"'}\n")?;
                repeat(out, "  - *h\n", 82)
            },
        ),
        (
            "hooks-under-budget",
            "24,990 hooks, 99,960 nodes: as many steps as the budget allows (accepted)",
            |out| {
                out.write_all(b"pre:\n")?;
                repeat(out, "  - {command: [/bin/true]}\n", 24_990)
            },
        ),
        ("words-under-budget", "one hook of 99,980 words (accepted)", |out| {
            out.write_all(b"pre:\n  - command: [/bin/true")?;
            repeat(out, ",w", 99_980)?;
            out.write_all(b"]\n")
        }),
        (
            "one-8mib-scalar",
            "a hook's shell command of 8 MiB (refused when planned: longer than one argument may be)",
            |out| {
                out.write_all(b"pre:\n  - command: 'true ")?;
                repeat(out, "c", MIB8 - 300)?;
                out.write_all(b"'\n")
            },
        ),
        ("nodes-over-budget-8mib", "8 MiB of a flow list of one-letter words (refused at 100,000)", |out| {
            out.write_all(b"pre:\n  - command: [/bin/true")?;
            repeat(out, ",a", (MIB8 - 300) / 2)?;
            out.write_all(b"]\n")
        }),
        ("deep-block-8mib", "8 MiB of `- - - ...` (refused at depth 64)", |out| {
            out.write_all(b"x:\n  ")?;
            repeat(out, "- ", (MIB8 - 300) / 2)?;
            out.write_all(b"x\n")
        }),
        ("value-2mb-in-error", "a 2 MB label, echoed in its error (refused)", |out| {
            out.write_all(b"label: ")?;
            repeat(out, "l", 2_000_000)?;
            out.write_all(b"\n")
        }),
    ]
}

const MIB8: usize = 8 << 20;

pub fn hostile_yaml(ari: &Path) -> Result<Value> {
    shell::header(&format!("hostile YAML: ari list and ari check of each job file ({RUNS} runs each)"));
    let dir = shell::target_dir().join("bench-yaml");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("jobs.d"))?;
    let config = dir.join("ari-backup.conf.yaml");
    fs::write(
        &config,
        format!("state_dir: {}\njobs_dir: {}\n", dir.join("state").display(), dir.join("jobs.d").display()),
    )?;
    let mut results = Vec::new();
    for (name, what, body) in cases() {
        let job = dir.join("jobs.d").join(format!("{name}.yaml"));
        let mut out = BufWriter::new(fs::File::create(&job)?);
        out.write_all(b"backend: command\ncommand: [/bin/true]\n")?;
        body(&mut out)?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        let bytes = fs::metadata(&job)?.len();
        println!("{name}: {what}, {} KB", bytes / 1000);
        let mut measured = serde_json::Map::new();
        for command in ["list", "check"] {
            let log = dir.join(format!("{name}.{command}.log"));
            let (mut ms, mut rss, mut exit) = (Vec::new(), 0.0_f64, 0);
            for _ in 0..RUNS {
                let mut cmd = Command::new(ari);
                cmd.arg("--config").arg(&config).arg(command);
                if command == "check" {
                    cmd.arg(&job);
                }
                let (sample, code) = measure_any_exit(&mut cmd, &log)?;
                ms.push(sample.ms());
                rss = rss.max(sample.mib());
                exit = code;
            }
            let ms = median(&ms);
            let met = ms <= MS_TARGET && rss <= RSS_MIB_TARGET;
            println!(
                "  ari {command}: exit {exit}, median {ms:.0} ms, peak RSS {rss:.1} MiB ({})",
                if met { "within 1 s and 100 MiB" } else { "NOT within 1 s and 100 MiB" }
            );
            measured.insert(
                command.into(),
                json!({ "exit": exit, "median_ms": ms, "peak_rss_mib": rss, "met": met }),
            );
        }
        let output = fs::read_to_string(dir.join(format!("{name}.check.log")))?;
        let said = output
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or("ok")
            .replace(&dir.display().to_string(), "DIR");
        let shown: String = said.chars().take(160).collect();
        println!(
            "  says ({} bytes): {shown}{}",
            said.len(),
            if said.chars().count() > 160 { "..." } else { "" }
        );
        results.push(json!({
            "case": name, "what": what, "bytes": bytes, "error_line_bytes": said.len(),
            "list": measured["list"], "check": measured["check"],
        }));
        fs::remove_file(&job)?;
    }
    Ok(json!({ "ms_target": MS_TARGET, "rss_mib_target": RSS_MIB_TARGET, "cases": results }))
}
