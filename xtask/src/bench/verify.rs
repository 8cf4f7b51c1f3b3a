//! `cargo xtask bench --only verify` (and part of the default run): what the spot check costs,
//! on the backup benchmark's tree and store (`mod.rs` sets them up):
//!
//! - an incremental no-change `ari run` with `--verify_sample 1%` against the same run without
//!   it, interleaved: the check's share of a nightly run;
//! - `ari verify --sample 100%` (both sides list and hash every file, at once) against bare
//!   `find | xargs sha256sum` over the same files on both sides at once: the listing's hashing
//!   speed as a share of sha256sum's own;
//! - the peak RSS of `ari verify` at 1% and at 100%: ari keeps each side's listing, at most
//!   30,000 files, so its memory stays bounded whatever the sample.
//!
//! Reported, never asserted.

use anyhow::Result;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use super::measure::{measure, median, Sample};
use crate::shell;

/// Where the backup benchmark's files are.
pub(super) struct Setup<'a> {
    pub(super) ari: &'a Path,
    pub(super) config: &'a Path,
    pub(super) job: &'a Path,
    pub(super) src: &'a Path,
    pub(super) mirror: &'a Path,
    pub(super) logs: &'a Path,
}

pub(super) fn verify_benchmarks(setup: &Setup, runs: usize, mut last_backup: SystemTime) -> Result<Value> {
    let ari = |args: &[&str]| {
        let mut cmd = Command::new(setup.ari);
        cmd.args(args).arg("--config").arg(setup.config);
        cmd
    };
    let job = setup.job.display().to_string();

    shell::header(&format!(
        "spot check cost: 1 warm-up + {runs} timed runs each of `ari run` with --verify_sample 1% and without, interleaved"
    ));
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..=runs {
        let mut pair = Vec::new();
        for (name, extra) in [("verify", &["--verify_sample", "1%"][..]), ("plain", &[][..])] {
            shell::wait_for_next_second(last_backup);
            let sample = measure(
                &mut ari(&[&["run", &job], extra].concat()),
                &setup.logs.join(format!("run-{name}.log")),
            )?;
            last_backup = SystemTime::now();
            pair.push(sample);
        }
        let label = if round == 0 { "warm-up".to_string() } else { format!("run {round}/{runs}") };
        println!("{label:>10}: with 1% {:8.1} ms, without {:8.1} ms", pair[0].ms(), pair[1].ms());
        if round > 0 {
            with.push(pair[0]);
            without.push(pair[1]);
        }
    }

    shell::header(&format!("hashing speed: 1 warm-up + {runs} timed runs each of `ari verify --sample 100%` and bare find | sha256sum on both sides"));
    let bare_script = format!(
        "export LC_ALL=C; (cd {src} && find -P . -type f -print0 | xargs -0r sha256sum -z -- >/dev/null) & (cd {mirror} && find -P . -path ./rdiff-backup-data -prune -o -type f -print0 | xargs -0r sha256sum -z -- >/dev/null); wait",
        src = shell::quote(setup.src.as_os_str()),
        mirror = shell::quote(setup.mirror.as_os_str()),
    );
    let (mut full, mut bare) = (Vec::new(), Vec::new());
    for round in 0..=runs {
        let ari_sample =
            measure(&mut ari(&["verify", &job, "--sample", "100%"]), &setup.logs.join("verify-100.log"))?;
        let bare_sample =
            measure(Command::new("sh").args(["-c", &bare_script]), &setup.logs.join("sha256sum.log"))?;
        let label = if round == 0 { "warm-up".to_string() } else { format!("run {round}/{runs}") };
        println!(
            "{label:>10}: ari verify {:8.1} ms, bare sha256sum {:8.1} ms",
            ari_sample.ms(),
            bare_sample.ms()
        );
        if round > 0 {
            full.push(ari_sample);
            bare.push(bare_sample);
        }
    }
    let small = measure(&mut ari(&["verify", &job, "--sample", "1%"]), &setup.logs.join("verify-1.log"))?;

    let ms = |samples: &[Sample]| median(&samples.iter().map(Sample::ms).collect::<Vec<_>>());
    let peak = |samples: &[Sample]| samples.iter().map(Sample::mib).fold(0.0, f64::max);
    let (with_ms, without_ms, full_ms, bare_ms) = (ms(&with), ms(&without), ms(&full), ms(&bare));
    let speed = bare_ms / full_ms;
    shell::header("spot check results");
    println!(
        "incremental run with a 1% spot check / without:     {:>8.3}  (target: at most 1.05)",
        with_ms / without_ms
    );
    println!("hashing speed, as a share of bare sha256sum's:      {:>8.3}  (target: at least 0.80)", speed);
    println!("peak RSS of ari verify at 1% / at 100% (MiB):     {:>6.1} / {:.1}", small.mib(), peak(&full));
    Ok(json!({
        "run_with_1_percent_ms": with_ms,
        "run_without_ms": without_ms,
        "spot_check_overhead_ratio": with_ms / without_ms,
        "verify_100_percent_ms": full_ms,
        "bare_sha256sum_both_sides_ms": bare_ms,
        "hashing_speed_share_of_sha256sum": speed,
        "verify_peak_rss_mib_1_percent": small.mib(),
        "verify_peak_rss_mib_100_percent": peak(&full),
    }))
}
