//! `cargo xtask bench --only retention`: what judging a dataset's snapshots costs ari, for
//! 1,000, 10,000 and 100,000 snapshots (one an hour back from now) under
//! `zfs_keep: {hourly: 24, daily: 14, weekly: 8, monthly: 12, yearly: 5}`.
//!
//! ari runs `ari plan JOB --preview` (planning, the listing, the judgement of every snapshot,
//! the table) against a stand-in `zfs` on its PATH that prints the listing from a file, as a
//! real `zfs list -H -p` prints it; the bare side is that stand-in alone (`zfs list ...` into
//! /dev/null): the ratio is ari's wall time over the listing's. Also ari's peak RSS (wait4: ari
//! and the stand-in it waited for). Reported, never asserted.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::data::yaml_path;
use super::measure::{measure, median};
use crate::shell;

const DATASET: &str = "pool/backups/bench";
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

pub(super) fn retention_benchmarks(ari: &Path, runs: usize) -> Result<Value> {
    let dir = shell::target_dir().join("bench/retention");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing the old {}", dir.display()))?;
    }
    let bin = dir.join("bin");
    for made in [&bin, &dir.join("jobs.d"), &dir.join("state"), &dir.join("logs"), &dir.join("zfs")] {
        fs::create_dir_all(made)?;
    }
    let listing = dir.join("listing");
    // The stand-in zfs: `zfs list ...` prints the listing; nothing else is asked of it.
    let stand_in = bin.join("zfs");
    fs::write(&stand_in, format!("#!/bin/sh\nexec cat {}\n", shell_quote(&listing)))?;
    fs::set_permissions(&stand_in, fs::Permissions::from_mode(0o755))?;
    let config = dir.join("ari-backup.conf.yaml");
    fs::write(
        &config,
        format!(
            "state_dir: {}\njobs_dir: {}\n",
            yaml_path(&dir.join("state"))?,
            yaml_path(&dir.join("jobs.d"))?
        ),
    )?;
    let job = dir.join("jobs.d/bench.yaml");
    fs::write(
        &job,
        format!(
            "label: bench\nbackend: zfs\ninclude: [/etc]\nrsync_dst: {}\nzfs_hostname: localhost\ndataset_name: {DATASET}\nzfs_keep: {{hourly: 24, daily: 14, weekly: 8, monthly: 12, yearly: 5}}\n",
            yaml_path(&dir.join("zfs"))?
        ),
    )?;
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let mut results = Vec::new();
    for size in SIZES {
        shell::header(&format!("retention: judging {size} snapshots"));
        let text: String = (0..size)
            .map(|i| format!("{DATASET}@ari-backup-{i}\t{}\n", now - 86_400 - 3600 * i as u64))
            .collect();
        fs::write(&listing, text)?;
        let log = dir.join("logs/run.log");
        let mut ari_cmd = Command::new(ari);
        ari_cmd
            .args(["--config"])
            .arg(&config)
            .args(["plan", "bench", "--preview"])
            .env("PATH", &path)
            .env("TZ", "UTC")
            .env_remove("ARI_CONFIG");
        let mut bare_cmd = Command::new(&stand_in);
        bare_cmd.args(["list", "-H", "-p", "-t", "snapshot", "-o", "name,creation", "-d", "1", DATASET]);
        // One warm-up each, then the timed runs.
        measure(&mut ari_cmd, &log)?;
        measure(&mut bare_cmd, &log)?;
        let ari_samples = (0..runs).map(|_| measure(&mut ari_cmd, &log)).collect::<Result<Vec<_>>>()?;
        let bare_samples = (0..runs).map(|_| measure(&mut bare_cmd, &log)).collect::<Result<Vec<_>>>()?;
        let ari_ms = median(&ari_samples.iter().map(|s| s.ms()).collect::<Vec<_>>());
        let bare_ms = median(&bare_samples.iter().map(|s| s.ms()).collect::<Vec<_>>());
        let rss = median(&ari_samples.iter().map(|s| s.mib()).collect::<Vec<_>>());
        println!(
            "  {size} snapshots: ari plan --preview {ari_ms:.1} ms, the listing alone {bare_ms:.1} ms (ratio {:.1}), ari's peak RSS {rss:.1} MiB",
            ari_ms / bare_ms
        );
        results.push(json!({
            "snapshots": size,
            "ari_preview_ms": ari_ms,
            "listing_ms": bare_ms,
            "ratio": ari_ms / bare_ms,
            "ari_max_rss_mib": rss,
        }));
    }
    Ok(Value::Array(results))
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}
