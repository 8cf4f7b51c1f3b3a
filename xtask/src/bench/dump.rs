//! `cargo xtask bench --only dump`: what streaming a database dump through ari costs.
//!
//! - A 1 GiB dump (`cat` of a pseudo-random file, on the backup server: ssh would cost both
//!   sides alike) through `ari run`: the time of its two steps (the stream into the temporary
//!   name, and the rename over the previous dump), from the run report, against the bare pipe
//!   that does the same work (`cat FILE | cat > DIR/.tmp && sync DIR/.tmp && mv DIR/.tmp
//!   DIR/FILE && sync DIR`: the dump tool writes into a pipe, as into ssh, and a process writes
//!   that to the file, as ssh would); then the same through `zstd -q -c -T0 --rsyncable` on both
//!   sides. The ratio is
//!   ari's throughput as a share of the bare pipe's (goal: at least 0.95).
//! - ari's own peak memory (its `VmHWM`, read from /proc while it runs: wait4 would report
//!   rdiff-backup's) for a 64 MiB and a 1 GiB dump: flat in the dump's size.
//!
//! The files live in /dev/shm where there is one (about 4 GiB while it runs, removed at the
//! end), so that the disk's speed, the same for both sides, does not drown the difference.
//!
//! Reported, never asserted.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::data::{write_pseudo_random, yaml_path};
use super::measure::{measure, median};
use crate::shell;

const BIG: u64 = 1 << 30;
const SMALL: u64 = 64 << 20;
/// What ari's throughput should be at least, as a share of the bare pipe's.
const RATIO_TARGET: f64 = 0.95;

pub(super) fn dump_benchmarks(ari: &Path, runs: usize) -> Result<Value> {
    // In memory where the machine has /dev/shm: the disk's own speed (the same for both sides,
    // and on a shared machine the noisiest part) drops out, and what is left is the pipeline's
    // cost, which is what ari adds to.
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() { shm.join("ari-bench-dump") } else { shell::target_dir().join("bench/dump") };
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing the old {}", dir.display()))?;
    }
    let (big, small) = (dir.join("big.bin"), dir.join("small.bin"));
    shell::header(&format!("dump benchmark data in {}", dir.display()));
    write_pseudo_random(&big, BIG, 0xD0)?;
    write_pseudo_random(&small, SMALL, 0xD1)?;
    let logs = dir.join("logs");
    let bare_dir = dir.join("bare");
    for made in [&logs, &bare_dir, &dir.join("src"), &dir.join("store")] {
        fs::create_dir_all(made)?;
    }
    let config = dir.join("ari-backup.conf.yaml");
    fs::write(
        &config,
        format!(
            "backup_store_path: {}\nstate_dir: {}\n",
            yaml_path(&dir.join("store"))?,
            yaml_path(&dir.join("state"))?
        ),
    )?;
    let job = |name: &str, file: &Path, compress: &str| -> Result<PathBuf> {
        let path = dir.join(format!("{name}.yaml"));
        fs::write(
            &path,
            format!(
                "label: {name}\nbackend: rdiff\ninclude: [{}]\ndumps:\n  - {{name: db, command: [cat, {}], host: localhost, compress: {compress}}}\n",
                yaml_path(&dir.join("src"))?,
                yaml_path(file)?
            ),
        )?;
        Ok(path)
    };
    let mut results = serde_json::Map::new();
    for (name, compress, through) in
        [("plain", "none", "cat"), ("zstd", "zstd", "zstd -q -c -T0 --rsyncable")]
    {
        let job = job(&format!("dump-{name}"), &big, compress)?;
        let bare = format!(
            "cat {big} | {through} > {dir}/.tmp && sync {dir}/.tmp && mv -f {dir}/.tmp {dir}/db && sync {dir}",
            big = shell::quote(big.as_os_str()),
            dir = shell::quote(bare_dir.as_os_str()),
        );
        shell::header(&format!(
            "a 1 GiB dump ({name}): 1 warm-up + {runs} timed runs each through ari and bare, interleaved"
        ));
        let (mut ari_s, mut bare_s) = (Vec::new(), Vec::new());
        for round in 0..=runs {
            // Each side starts with nothing of the other's left to write back (the run's
            // rdiff-backup versions the dump too): `sync`, untimed.
            shell::run(&mut Command::new("sync"))?;
            shell::run(
                Command::new(ari).arg("run").arg(&job).arg("--config").arg(&config).stdout(Stdio::null()),
            )?;
            shell::run(&mut Command::new("sync"))?;
            let through_ari =
                dump_seconds(&dir.join("state/reports")).context("the run report's dump steps")?;
            let bare_sample =
                measure(Command::new("sh").args(["-c", &bare]), &logs.join(format!("bare-{name}.log")))?;
            let label = if round == 0 { "warm-up".to_string() } else { format!("run {round}/{runs}") };
            println!("{label:>10}: ari {:8.1} ms, bare {:8.1} ms", through_ari * 1e3, bare_sample.ms());
            if round > 0 {
                ari_s.push(through_ari * 1e3);
                bare_s.push(bare_sample.ms());
            }
        }
        let (ari_ms, bare_ms) = (median(&ari_s), median(&bare_s));
        let ratio = bare_ms / ari_ms;
        println!(
            "{name}: ari {ari_ms:.0} ms ({:.0} MiB/s), bare {bare_ms:.0} ms ({:.0} MiB/s): throughput ratio {ratio:.3} (target >= {RATIO_TARGET})",
            1024.0 / (ari_ms / 1e3),
            1024.0 / (bare_ms / 1e3)
        );
        results.insert(
            name.into(),
            json!({"ari_median_ms": ari_ms, "bare_median_ms": bare_ms, "throughput_ratio": ratio, "target": RATIO_TARGET, "ari_ms": ari_s, "bare_ms": bare_s}),
        );
    }

    shell::header("ari's own peak memory for a 64 MiB and a 1 GiB dump");
    let mut peaks = serde_json::Map::new();
    for (name, file) in [("64MiB", &small), ("1GiB", &big)] {
        let job = job(&format!("dump-rss-{name}"), file, "none")?;
        let peak = own_peak_kib(Command::new(ari).arg("run").arg(&job).arg("--config").arg(&config))?;
        println!("{name:>6}: ari's VmHWM {:.1} MiB", peak as f64 / 1024.0);
        peaks.insert(name.into(), json!(peak as f64 / 1024.0));
    }
    results.insert("ari_peak_rss_mib".into(), Value::Object(peaks));
    results.insert("in".into(), json!(dir.display().to_string()));
    fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    Ok(Value::Object(results))
}

/// The durations of the newest run report's dump steps (the stream and the rename), in seconds.
fn dump_seconds(reports: &Path) -> Result<f64> {
    let mut names: Vec<PathBuf> = fs::read_dir(reports)?.flatten().map(|e| e.path()).collect();
    names.sort();
    let newest = names.last().context("no run report")?;
    let report: Value = serde_json::from_str(&fs::read_to_string(newest)?)?;
    let steps = report["jobs"][0]["steps"].as_array().context("a report without steps")?;
    let seconds: f64 = steps
        .iter()
        .filter(|s| s["phase"] == "dump" && s["step"].as_str().is_some_and(|n| n.ends_with("dump db")))
        .filter_map(|s| s["duration_seconds"].as_f64())
        .sum();
    anyhow::ensure!(seconds > 0.0, "{} has no dump steps", newest.display());
    Ok(seconds)
}

/// Runs `cmd` to its end and returns its own peak resident memory (`VmHWM`, KiB), read from
/// /proc while it runs.
fn own_peak_kib(cmd: &mut Command) -> Result<u64> {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().context("start ari")?;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(text) = fs::read_to_string(&status_file) {
            if let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
        }
        if let Some(status) = child.try_wait()? {
            anyhow::ensure!(status.success(), "ari run failed: {status}");
            return Ok(peak);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
