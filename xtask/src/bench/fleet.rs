//! The scheduling benchmarks of `cargo xtask bench`:
//!
//! - fleet: 40 `command` jobs sleeping heavy-tailed durations (a fixed seed; the longest named
//!   last, so name order would start it last), `max_concurrent_jobs: 4`, `max_jobs_per_host`
//!   high. The second `ari run-all` (history known) should come within 5% of the lower bound
//!   max(sum / 4, longest); the same jobs under `run-parts --list | xargs -P 4`, as the original
//!   ran them, for comparison;
//! - many jobs: 1,000 job files: `ari check` of all (target ≤ 100 ms) and the peak RSS of
//!   `ari run-all --dry-run` (target ≤ 20 MiB).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::measure::{measure, median};
use super::xorshift::XorShift;
use crate::shell;

const FLEET_JOBS: usize = 40;
const SLOTS: u32 = 4;
const MAKESPAN_TARGET: f64 = 1.05;
const MANY_JOBS: usize = 1_000;
const CHECK_MS_TARGET: f64 = 100.0;
const DRY_RUN_RSS_MIB_TARGET: f64 = 20.0;

/// Heavy-tailed durations (Pareto, shape 1.2, scale 0.25 s, capped at 12 s), sorted so that the
/// longest job gets the last name.
fn durations() -> Vec<f64> {
    let mut rng = XorShift::new(2026);
    let mut durations: Vec<f64> = (0..FLEET_JOBS)
        .map(|_| {
            let uniform = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let pareto = 0.25 / (1.0 - uniform).powf(1.0 / 1.2);
            (pareto.min(12.0) * 10.0).round() / 10.0
        })
        .collect();
    durations.sort_by(f64::total_cmp);
    durations
}

/// Makes `dir` afresh with an empty `jobs.d` and a config pointing ari's state and jobs there,
/// plus `settings`; returns the jobs directory and the config.
fn fresh_setup(dir: &Path, settings: &str) -> Result<(PathBuf, PathBuf)> {
    let _ = fs::remove_dir_all(dir);
    let jobs = dir.join("jobs.d");
    fs::create_dir_all(&jobs)?;
    let config = dir.join("ari-backup.conf.yaml");
    let text =
        format!("state_dir: {}\njobs_dir: {}\n{settings}", dir.join("state").display(), jobs.display());
    fs::write(&config, text)?;
    Ok((jobs, config))
}

/// Writes the fleet: a config and one executable job file per job, named as run-parts wants.
fn write_fleet(dir: &Path, durations: &[f64]) -> Result<PathBuf> {
    let (jobs, config) =
        fresh_setup(dir, &format!("max_concurrent_jobs: {SLOTS}\nmax_jobs_per_host: 100\nsummary: never\n"))?;
    for (i, seconds) in durations.iter().enumerate() {
        let path = jobs.join(format!("job{i:02}"));
        fs::write(
            &path,
            format!(
                "#!/usr/bin/env -S ari run\nbackend: command\nsource_hostname: host{i:02}\ncommand_host: local\ncommand: [sleep, \"{seconds}\"]\n"
            ),
        )?;
        fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    Ok(config)
}

fn timed(cmd: &mut Command, log: &Path) -> Result<f64> {
    Ok(measure(cmd, log)?.wall.as_secs_f64())
}

pub fn fleet(ari: &Path) -> Result<Value> {
    let dir = shell::target_dir().join("bench-fleet");
    let durations = durations();
    let sum: f64 = durations.iter().sum();
    let longest = durations.iter().copied().fold(0.0, f64::max);
    let bound = (sum / SLOTS as f64).max(longest);
    shell::header(&format!(
        "fleet: {FLEET_JOBS} jobs, {sum:.1} s of work, longest {longest:.1} s, {SLOTS} at once: lower bound {bound:.2} s"
    ));
    let config = write_fleet(&dir, &durations)?;
    let run_all = || {
        let mut cmd = Command::new(ari);
        cmd.arg("--config").arg(&config).arg("run-all");
        cmd
    };
    let first = timed(&mut run_all(), &dir.join("first.log"))?;
    println!("first run (no history: new jobs by name): {first:.2} s");
    let second = timed(&mut run_all(), &dir.join("second.log"))?;
    println!("second run (history: longest first): {second:.2} s, {:.3} of the lower bound", second / bound);

    // The original's way: run-parts lists the jobs, xargs runs four at a time.
    let script = format!(
        "run-parts --list {jobs} | xargs -P {SLOTS} -n 1 {ari} --config {config} run",
        jobs = dir.join("jobs.d").display(),
        ari = ari.display(),
        config = config.display()
    );
    let xargs = timed(Command::new("sh").args(["-c", &script]), &dir.join("xargs.log"))?;
    println!(
        "run-parts | xargs -P {SLOTS} (name order): {xargs:.2} s, {:.3} of the lower bound",
        xargs / bound
    );

    let ratio = second / bound;
    println!(
        "makespan / lower bound: {ratio:.3} (target <= {MAKESPAN_TARGET}: {})",
        if ratio <= MAKESPAN_TARGET { "met" } else { "NOT met" }
    );
    Ok(json!({
        "jobs": FLEET_JOBS, "slots": SLOTS, "durations": durations, "sum_seconds": sum, "longest_seconds": longest,
        "lower_bound_seconds": bound, "first_run_seconds": first, "second_run_seconds": second,
        "ratio": ratio, "ratio_target": MAKESPAN_TARGET, "ratio_met": ratio <= MAKESPAN_TARGET,
        "xargs_seconds": xargs, "xargs_ratio": xargs / bound,
    }))
}

pub fn many_jobs(ari: &Path, runs: usize) -> Result<Value> {
    let dir = shell::target_dir().join("bench-many");
    let settings = format!(
        "backup_store_path: {}\nmax_concurrent_jobs: 4\nmax_jobs_per_host: 4\n",
        dir.join("store").display()
    );
    let (jobs, config) = fresh_setup(&dir, &settings)?;
    // The store stands for an existing backup disk: ari checks that it is there.
    fs::create_dir_all(dir.join("store"))?;
    // Half rdiff jobs of remote hosts with hooks, half command jobs: what a real fleet holds.
    for i in 0..MANY_JOBS {
        let text = if i % 2 == 0 {
            format!(
                "label: host{i:04}\nsource_hostname: host{i:04}.example\ninclude: [/etc, /home, /var/lib]\nexclude: [/var/lib/tmp]\nremove_older_than_timespec: 1M\nrdiff_backup_cli: new\npre:\n  - command: [systemctl, stop, app]\n    host: host{i:04}.example\npost:\n  - command: [systemctl, start, app]\n    host: host{i:04}.example\n"
            )
        } else {
            format!("backend: command\ncommand_host: local\ncommand: [/bin/true, \"{{label}}\"]\nsource_hostname: host{i:04}.example\n")
        };
        fs::write(jobs.join(format!("job{i:04}.yaml")), text)?;
    }
    shell::header(&format!("{MANY_JOBS} job files: ari check ({runs} runs) and ari run-all --dry-run"));
    let mut check_ms = Vec::new();
    for round in 0..=runs {
        let mut cmd = Command::new(ari);
        cmd.arg("--config").arg(&config).arg("check");
        let sample = measure(&mut cmd, &dir.join("check.log"))?;
        if round > 0 {
            check_ms.push(sample.ms());
        }
    }
    let check = median(&check_ms);
    let started = Instant::now();
    let mut cmd = Command::new(ari);
    cmd.arg("--config").arg(&config).args(["run-all", "--dry-run"]);
    let dry = measure(&mut cmd, &dir.join("run-all-dry-run.log")).context("ari run-all --dry-run")?;
    let dry_seconds = started.elapsed().as_secs_f64();
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    println!(
        "ari check of {MANY_JOBS} jobs: median {check:.1} ms (target <= {CHECK_MS_TARGET} ms: {})",
        verdict(check <= CHECK_MS_TARGET)
    );
    println!(
        "ari run-all --dry-run of {MANY_JOBS} jobs: peak RSS {:.1} MiB (target <= {DRY_RUN_RSS_MIB_TARGET} MiB: {}), {dry_seconds:.2} s",
        dry.mib(),
        verdict(dry.mib() <= DRY_RUN_RSS_MIB_TARGET)
    );
    Ok(json!({
        "jobs": MANY_JOBS, "check_runs": runs, "check_median_ms": check, "check_ms": check_ms,
        "check_ms_target": CHECK_MS_TARGET, "check_met": check <= CHECK_MS_TARGET,
        "run_all_dry_run_peak_rss_mib": dry.mib(), "run_all_dry_run_rss_target_mib": DRY_RUN_RSS_MIB_TARGET,
        "run_all_dry_run_rss_met": dry.mib() <= DRY_RUN_RSS_MIB_TARGET, "run_all_dry_run_seconds": dry_seconds,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_is_heavy_tailed_and_its_longest_job_is_named_last() {
        let d = durations();
        assert_eq!(d.len(), FLEET_JOBS);
        assert_eq!(d, durations(), "a fixed seed");
        let longest = d.iter().copied().fold(0.0, f64::max);
        assert_eq!(d[FLEET_JOBS - 1], longest);
        let median = median(&d);
        assert!(longest > 8.0 * median, "heavy tail: longest {longest}, median {median}");
    }
}
