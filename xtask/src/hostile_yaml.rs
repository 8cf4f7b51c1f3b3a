//! The hostile-input benchmark of `cargo xtask bench` (`--only yaml`): the time and peak RSS of
//! `ari check JOB` for the worst job files the YAML bounds (ari-core/src/yaml.rs) let through or
//! refuse: alias bombs (issue 17's 76 KB and 706 KB files), documents just under the node and
//! value budgets, 8 MiB of one scalar and 8 MiB of nesting, and a 2 MB value an error echoes.
//! The promise is that no file under 8 MiB costs more than about 100 MB or 1 s to load; each
//! case is reported against that, never asserted (the tests assert the budgets themselves).

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::bench::{measure_any_exit, median};
use crate::shell;

const RSS_MIB_TARGET: f64 = 100.0;
const MS_TARGET: f64 = 1000.0;
const RUNS: usize = 3;

/// One job file: its name, what it is, and its text (after a common head naming the store).
fn cases() -> Vec<(&'static str, &'static str, String)> {
    let words = vec!["w"; 999].join(", ");
    let mib8 = 8 << 20;
    vec![
        (
            "alias-bomb-76k",
            "10,000 hooks aliasing one hook of 1,000 words (refused)",
            format!("pre:\n  - &h {{command: [echo, {words}]}}\n{}", "  - *h\n".repeat(10_000)),
        ),
        (
            "alias-bomb-706k",
            "100,000 hooks aliasing a hook that aliases 1,000 words (refused)",
            format!("x: &w [echo, {words}]\npre:\n  - &h {{command: *w}}\n{}", "  - *h\n".repeat(100_000)),
        ),
        (
            "aliases-under-budget",
            "97 hooks aliasing one hook of 1,000 words: 98,000 nodes expanded (accepted)",
            format!("pre:\n  - &h {{command: [echo, {words}]}}\n{}", "  - *h\n".repeat(97)),
        ),
        (
            "bytes-under-budget",
            "82 hooks aliasing one 100 KB command: 8.3 MB of values expanded (accepted)",
            format!("pre:\n  - &h {{command: 'true {}'}}\n{}", "e".repeat(100_000), "  - *h\n".repeat(82)),
        ),
        (
            "nodes-under-budget",
            "a flow list of 99,990 excludes (accepted)",
            format!("exclude: [{}]\n", (0..99_990).map(|i| format!("/x/{i}")).collect::<Vec<_>>().join(",")),
        ),
        (
            "one-8mib-scalar",
            "a comment of 8 MiB (accepted)",
            format!("# {}\n", "c".repeat(mib8 - 200)),
        ),
        (
            "nodes-over-budget-8mib",
            "8 MiB of a flow list of one-letter values (refused at 100,000)",
            format!("exclude: [{}]\n", vec!["a"; (mib8 - 200) / 2].join(",")),
        ),
        (
            "deep-block-8mib",
            "8 MiB of `- - - ...` (refused at depth 64)",
            format!("x:\n  {}x\n", "- ".repeat((mib8 - 200) / 2)),
        ),
        (
            "value-2mb-in-error",
            "a 2 MB label, echoed in its error (refused)",
            format!("label: {}\n", "l".repeat(2_000_000)),
        ),
    ]
}

pub fn hostile_yaml(ari: &Path) -> Result<Value> {
    shell::header(&format!("hostile YAML: ari check of each job file ({RUNS} runs)"));
    let dir = shell::target_dir().join("bench-yaml");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("jobs.d"))?;
    fs::create_dir_all(dir.join("store"))?;
    let config = dir.join("ari-backup.conf.yaml");
    fs::write(
        &config,
        format!(
            "state_dir: {}\njobs_dir: {}\nbackup_store_path: {}\n",
            dir.join("state").display(),
            dir.join("jobs.d").display(),
            dir.join("store").display()
        ),
    )?;
    let mut results = Vec::new();
    for (name, what, body) in cases() {
        let job = dir.join("jobs.d").join(format!("{name}.yaml"));
        let text = format!("include: [/etc]\n{body}");
        fs::write(&job, &text)?;
        let log = dir.join(format!("{name}.log"));
        let mut ms = Vec::new();
        let mut rss: f64 = 0.0;
        let mut exit = 0;
        for _ in 0..RUNS {
            let mut cmd = Command::new(ari);
            cmd.arg("--config").arg(&config).arg("check").arg(&job);
            let (sample, code) = measure_any_exit(&mut cmd, &log)?;
            ms.push(sample.ms());
            rss = rss.max(sample.mib());
            exit = code;
        }
        let output = fs::read_to_string(&log).with_context(|| format!("reading {}", log.display()))?;
        let said = output
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or("ok")
            .replace(&dir.display().to_string(), "DIR");
        let error_bytes = said.len();
        let shown: String = said.chars().take(150).collect();
        let ms = median(&ms);
        let met = ms <= MS_TARGET && rss <= RSS_MIB_TARGET;
        println!(
            "{name}: {what}\n  {} KB, exit {exit}, median {ms:.0} ms, peak RSS {rss:.1} MiB ({}), says: {shown}{}",
            text.len() / 1000,
            if met { "within 1 s and 100 MiB" } else { "NOT within 1 s and 100 MiB" },
            if said.chars().count() > 150 { "..." } else { "" },
        );
        results.push(json!({
            "case": name, "what": what, "bytes": text.len(), "exit": exit, "median_ms": ms,
            "peak_rss_mib": rss, "error_line_bytes": error_bytes, "met": met,
        }));
        fs::remove_file(&job)?;
    }
    Ok(json!({ "ms_target": MS_TARGET, "rss_mib_target": RSS_MIB_TARGET, "cases": results }))
}
