//! `cargo xtask bench`: whole-process measurements of the release `ari`
//! binary, the numbers the rewrite is judged by. Two benchmarks:
//!
//! - incremental no-change backup: ari's wall time for an rdiff backup of a
//!   ~100 MB tree that has not changed, against the bare rdiff-backup
//!   command that ari runs (taken from `ari plan --json`), so the ratio is
//!   ari's own overhead;
//! - dry run of one job: ari's start-up, config loading and planning.
//!
//! Others live in files of their own: the spot check's cost on the same tree (`verify.rs`),
//! fleet and many jobs (`fleet.rs`), the remote job
//! (`tests/tests/bench_remote.rs`), the worst job files to load (`hostile_yaml.rs`,
//! `--only yaml`), a database dump through ari (`dump.rs`, `--only dump`), and the judging of
//! a dataset's snapshots by calendar retention (`retention.rs`, `--only retention`), and a zfs-send stream through ari against the bare pipe (`send.rs`, `--only send`). All of them measure through `measure.rs`, and the inputs that must be the
//! same on every machine come from `xorshift.rs`.
//!
//! Results are medians after one warm-up run, printed beside the targets and
//! the Python original's numbers, and written to target/bench/results.json.
//! Missing a target is reported, not an error; a measured command that
//! fails is an error, since its timing would mean nothing.

mod data;
mod dump;
mod fleet;
mod hostile_yaml;
mod measure;
mod retention;
mod send;
mod verify;
mod xorshift;

use crate::{deps, shell};
use anyhow::{bail, ensure, Context, Result};
use measure::{measure, median, Sample};
use serde_json::{json, Value};
use std::fs;

use data::{write_pseudo_random, yaml_path};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};
use xorshift::XorShift;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Timed runs of the incremental backup benchmark, each for ari and for
    /// bare rdiff-backup (after one untimed warm-up run of each).
    #[arg(long, default_value_t = 10)]
    runs: usize,

    /// Timed runs of the dry-run benchmark; it is quick, so many runs make
    /// its millisecond median stable.
    #[arg(long, default_value_t = 50)]
    dry_run_runs: usize,

    /// Run only these benchmarks: backup (with the dry run), verify (the spot check's cost, on
    /// the backup benchmark's tree), fleet, many-jobs, remote, yaml, dump (a 1 GiB database
    /// dump through ari against the bare pipe), retention (judging up to 100,000 snapshots),
    /// send (a zfs-send stream through ari against the bare pipe, with a stand-in zfs).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

/// Targets for the Rust version, and what the Python original measured.
const RATIO_TARGET: f64 = 1.02;
const PYTHON_RATIO: f64 = 1.23;
const DRY_RUN_MS_TARGET: f64 = 3.0;
const PYTHON_DRY_RUN_MS: f64 = 81.0;
const DRY_RUN_RSS_MIB_TARGET: f64 = 6.0;
const PYTHON_DRY_RUN_RSS_MIB: f64 = 18.8;

/// Shape of the benchmark tree: about as many files and bytes as a modest
/// home directory, enough for rdiff-backup's per-file work to dominate.
const FILE_COUNT: usize = 2_000;
const DIR_COUNT: usize = 40;
const TOTAL_BYTES: u64 = 100_000_000;
/// Mean file size; sizes spread evenly from MEAN - SPREAD to MEAN + SPREAD.
const MEAN_SIZE: u64 = TOTAL_BYTES / FILE_COUNT as u64;
const SPREAD: u64 = MEAN_SIZE - 1_000;

pub fn run(args: &BenchArgs) -> Result<()> {
    ensure!(args.runs >= 1 && args.dry_run_runs >= 1, "--runs and --dry-run-runs must be at least 1");
    shell::header("system tools");
    deps::ensure()?;

    shell::header("build ari (release)");
    shell::run(shell::cargo().args(["build", "--release", "-p", "ari-cli"]))?;
    let want = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let mut results = serde_json::Map::new();
    if want("backup") || want("verify") {
        let measured = backup_benchmarks(args, want("backup"), want("verify"))?;
        results.extend(measured.as_object().cloned().unwrap_or_default());
    }
    let ari = shell::target_dir().join("release/ari");
    if want("fleet") {
        results.insert("fleet".into(), fleet::fleet(&ari)?);
    }
    if want("many-jobs") {
        results.insert("many_jobs".into(), fleet::many_jobs(&ari, args.dry_run_runs)?);
    }
    if want("remote") {
        results.insert("remote".into(), remote(args.runs)?);
    }
    if want("dump") {
        results.insert("dump".into(), dump::dump_benchmarks(&ari, args.runs)?);
    }
    if want("retention") {
        results.insert("retention".into(), retention::retention_benchmarks(&ari, args.runs)?);
    }
    if want("send") {
        results.insert("send".into(), send::send_benchmarks(&ari, args.runs)?);
    }
    if want("yaml") {
        results.insert("hostile_yaml".into(), hostile_yaml::hostile_yaml(&ari)?);
    }
    let json_path = shell::target_dir().join("bench/results.json");
    fs::create_dir_all(json_path.parent().unwrap_or(Path::new(".")))?;
    fs::write(&json_path, serde_json::to_string_pretty(&Value::Object(results))? + "\n")
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("\nwritten to {}", json_path.display());
    Ok(())
}

/// A remote two-volume LVM rdiff job through the test harness's sshd, with and without ssh
/// connection sharing (tests/tests/bench_remote.rs): authentications and time outside the backup.
fn remote(runs: usize) -> Result<Value> {
    shell::header("remote job: ssh connection sharing");
    let out = shell::output(
        shell::cargo()
            .args(["test", "-p", "tests", "--test", "bench_remote", "--", "--ignored", "--nocapture"])
            .env("ARI_BENCH_RUNS", runs.to_string()),
    )?;
    let line = out
        .lines()
        .find_map(|line| line.strip_prefix("ARI-BENCH-REMOTE "))
        .context("the remote benchmark printed no result")?;
    let result: Value = serde_json::from_str(line)?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(result)
}

/// The incremental no-change backup against bare rdiff-backup, and the dry run of one job
/// (`timed`); the spot check's cost on the same tree and store (`verify`).
fn backup_benchmarks(args: &BenchArgs, timed: bool, verify: bool) -> Result<Value> {
    let target = shell::target_dir();
    let dir = target.join("bench");
    let bench = Bench {
        ari: target.join("release/ari"),
        config: dir.join("ari-backup.conf.yaml"),
        job: dir.join("jobs.d/bench.yaml"),
        logs: dir.join("logs"),
        dir,
    };

    shell::header(&format!("benchmark data in {}", bench.dir.display()));
    bench.setup()?;

    shell::header("initial full backup (not timed)");
    shell::run(&mut bench.ari_run(&[]))?;
    let mut last_backup = SystemTime::now();

    let mut results = serde_json::Map::new();
    if verify {
        let setup = verify::Setup {
            ari: &bench.ari,
            config: &bench.config,
            job: &bench.job,
            src: &bench.dir.join("src"),
            mirror: &bench.dir.join("store/bench"),
            logs: &bench.logs,
        };
        results.insert("verify".into(), verify::verify_benchmarks(&setup, args.runs, last_backup)?);
        last_backup = SystemTime::now();
    }
    if !timed {
        return Ok(Value::Object(results));
    }

    shell::header("the bare rdiff-backup command, from `ari plan --json`");
    let bare_argv = bench.bare_argv()?;
    println!("bare command: {}", display_argv(&bare_argv));

    shell::header(&format!(
        "incremental no-change backup: 1 warm-up + {} timed runs each of ari and bare rdiff-backup, interleaved",
        args.runs
    ));
    // Alternating ari and bare runs lets slow drift (page cache, CPU
    // frequency, other load) affect both sides alike.
    let mut ari_samples = Vec::new();
    let mut bare_samples = Vec::new();
    for round in 0..=args.runs {
        let mut pair = Vec::new();
        for (name, mut cmd) in [("ari", bench.ari_run(&[])), ("bare", argv_command(&bare_argv))] {
            // rdiff-backup's one-session-per-second rule: see
            // shell::wait_for_next_second. The wait is not timed.
            shell::wait_for_next_second(last_backup);
            let sample = measure(&mut cmd, &bench.logs.join(format!("{name}.log")))?;
            last_backup = SystemTime::now();
            pair.push(sample);
        }
        let label = if round == 0 { "warm-up".to_string() } else { format!("run {round}/{}", args.runs) };
        println!("{label:>10}: ari {:8.1} ms, bare {:8.1} ms", pair[0].ms(), pair[1].ms());
        if round > 0 {
            ari_samples.push(pair[0]);
            bare_samples.push(pair[1]);
        }
    }

    shell::header(&format!("dry run of one job: 1 warm-up + {} timed runs", args.dry_run_runs));
    let mut dry_samples = Vec::new();
    for round in 0..=args.dry_run_runs {
        let sample = measure(&mut bench.ari_run(&["--dry-run"]), &bench.logs.join("dry-run.log"))?;
        if round > 0 {
            dry_samples.push(sample);
        }
    }
    println!("done");

    let report = Report::new(&ari_samples, &bare_samples, &dry_samples);
    shell::header("results");
    report.print(args);
    results.extend(report.json(args, &bare_argv).as_object().cloned().unwrap_or_default());
    Ok(Value::Object(results))
}

/// Paths of the benchmark setup.
struct Bench {
    dir: PathBuf,
    ari: PathBuf,
    config: PathBuf,
    job: PathBuf,
    /// Output of the measured commands, one file per kind (overwritten by
    /// each run): kept out of the terminal so printing costs the same for
    /// every run, and shown when a run fails.
    logs: PathBuf,
}

impl Bench {
    /// Recreates the source tree, config and job. The tree is regenerated
    /// every time (a second or so) so that a stale or edited tree never skews
    /// the numbers, and the store starts empty for the same reason.
    fn setup(&self) -> Result<()> {
        if self.dir.exists() {
            fs::remove_dir_all(&self.dir)
                .with_context(|| format!("removing the old {}", self.dir.display()))?;
        }
        let src = self.dir.join("src");
        let store = self.dir.join("store");
        let started = Instant::now();
        let files = file_plan();
        for (index, (rel, size)) in files.iter().enumerate() {
            write_pseudo_random(&src.join(rel), *size, index as u64)?;
        }
        println!(
            "generated {} files, {:.1} MB in {} directories in {:.1} s",
            files.len(),
            files.iter().map(|(_, size)| size).sum::<u64>() as f64 / 1e6,
            DIR_COUNT,
            started.elapsed().as_secs_f64()
        );
        // The store stands for an existing backup disk (see demo.rs).
        fs::create_dir_all(&store)?;
        fs::create_dir_all(&self.logs)?;
        fs::create_dir_all(self.job.parent().expect("job has a parent"))?;
        fs::write(
            &self.config,
            format!(
                "backup_store_path: {}\nstate_dir: {}\n",
                yaml_path(&store)?,
                yaml_path(&self.dir.join("state"))?
            ),
        )?;
        fs::write(
            &self.job,
            format!(
                "label: bench\nbackend: rdiff\nsource_hostname: localhost\ninclude: [{}]\n",
                yaml_path(&src)?
            ),
        )?;
        println!("config {}, job {}", self.config.display(), self.job.display());
        Ok(())
    }

    /// `ari run JOB --config CONF [extra]`.
    fn ari_run(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(&self.ari);
        cmd.arg("run").arg(&self.job).arg("--config").arg(&self.config).args(extra);
        cmd
    }

    /// The `local_argv` of the plan's one "main" step: the rdiff-backup
    /// command line ari runs, to be run directly without ari.
    fn bare_argv(&self) -> Result<Vec<String>> {
        let mut cmd = Command::new(&self.ari);
        cmd.arg("plan").arg(&self.job).arg("--config").arg(&self.config).arg("--json");
        let text = shell::output(&mut cmd)?;
        main_local_argv(&text)
    }
}

/// Extracts the main step's `local_argv` from `ari plan --json` output.
fn main_local_argv(plan_json: &str) -> Result<Vec<String>> {
    let plan: Value = serde_json::from_str(plan_json).context("parsing `ari plan --json`")?;
    let steps = plan["steps"].as_array().context("`ari plan --json` has no \"steps\" array")?;
    let main: Vec<&Value> = steps.iter().filter(|s| s["phase"] == "main").collect();
    let [step] = main.as_slice() else {
        bail!("expected exactly one step with phase \"main\" in the plan, found {}", main.len());
    };
    let argv = step["local_argv"]
        .as_array()
        .context("the main step has no \"local_argv\" array")?
        .iter()
        .map(|a| a.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .context("the main step's local_argv holds a non-string")?;
    ensure!(!argv.is_empty(), "the main step's local_argv is empty");
    Ok(argv)
}

fn argv_command(argv: &[String]) -> Command {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    cmd
}

fn display_argv(argv: &[String]) -> String {
    argv.iter().map(|a| shell::quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}

/// Summary numbers of one batch of samples.
struct Stats {
    median_ms: f64,
    peak_rss_mib: f64,
    all_ms: Vec<f64>,
}

impl Stats {
    fn new(samples: &[Sample]) -> Self {
        let all_ms: Vec<f64> = samples.iter().map(Sample::ms).collect();
        let peak_kib = samples.iter().map(|s| s.max_rss_kib).max().unwrap_or(0);
        Stats { median_ms: median(&all_ms), peak_rss_mib: peak_kib as f64 / 1024.0, all_ms }
    }
}

struct Report {
    ari: Stats,
    bare: Stats,
    ratio: f64,
    dry: Stats,
}

impl Report {
    fn new(ari: &[Sample], bare: &[Sample], dry: &[Sample]) -> Self {
        let ari = Stats::new(ari);
        let bare = Stats::new(bare);
        Report { ratio: ari.median_ms / bare.median_ms, ari, bare, dry: Stats::new(dry) }
    }

    fn print(&self, args: &BenchArgs) {
        let verdict = |met: bool| if met { "met" } else { "NOT met" };
        println!("{:<44} {:>12}  {:<10} {:<8} python", "", "value", "target", "");
        println!("incremental no-change backup ({} runs)", args.runs);
        println!("{:<44} {:>9.1} ms", "  ari run, median", self.ari.median_ms);
        println!("{:<44} {:>9.1} ms", "  bare rdiff-backup, median", self.bare.median_ms);
        println!(
            "{:<44} {:>12.3}  {:<10} {:<8} {PYTHON_RATIO}",
            "  ratio ari / bare",
            self.ratio,
            format!("<= {RATIO_TARGET}"),
            verdict(self.ratio <= RATIO_TARGET)
        );
        println!("{:<44} {:>8.1} MiB", "  peak RSS, ari run (incl. rdiff-backup)", self.ari.peak_rss_mib);
        println!("{:<44} {:>8.1} MiB", "  peak RSS, bare rdiff-backup", self.bare.peak_rss_mib);
        println!("dry run of one job ({} runs)", args.dry_run_runs);
        println!(
            "{:<44} {:>9.2} ms  {:<10} {:<8} {PYTHON_DRY_RUN_MS} ms",
            "  median wall time",
            self.dry.median_ms,
            format!("<= {DRY_RUN_MS_TARGET} ms"),
            verdict(self.dry.median_ms <= DRY_RUN_MS_TARGET)
        );
        println!(
            "{:<44} {:>8.1} MiB  {:<10} {:<8} {PYTHON_DRY_RUN_RSS_MIB} MiB",
            "  peak RSS",
            self.dry.peak_rss_mib,
            format!("<= {DRY_RUN_RSS_MIB_TARGET} MiB"),
            verdict(self.dry.peak_rss_mib <= DRY_RUN_RSS_MIB_TARGET)
        );
    }

    fn json(&self, args: &BenchArgs, bare_argv: &[String]) -> Value {
        json!({
            "incremental_no_change": {
                "runs": args.runs,
                "data": {"files": FILE_COUNT, "directories": DIR_COUNT, "bytes": TOTAL_BYTES},
                "bare_argv": bare_argv,
                "ari_median_ms": self.ari.median_ms,
                "bare_median_ms": self.bare.median_ms,
                "ratio": self.ratio,
                "ratio_target": RATIO_TARGET,
                "ratio_met": self.ratio <= RATIO_TARGET,
                "python_ratio": PYTHON_RATIO,
                "ari_peak_rss_mib": self.ari.peak_rss_mib,
                "ari_peak_rss_note": "wait4 ru_maxrss: the larger of ari's and its children's (rdiff-backup's) peak",
                "bare_peak_rss_mib": self.bare.peak_rss_mib,
                "ari_ms": self.ari.all_ms,
                "bare_ms": self.bare.all_ms,
            },
            "dry_run": {
                "runs": args.dry_run_runs,
                "median_ms": self.dry.median_ms,
                "median_ms_target": DRY_RUN_MS_TARGET,
                "median_ms_met": self.dry.median_ms <= DRY_RUN_MS_TARGET,
                "python_median_ms": PYTHON_DRY_RUN_MS,
                "peak_rss_mib": self.dry.peak_rss_mib,
                "peak_rss_mib_target": DRY_RUN_RSS_MIB_TARGET,
                "peak_rss_mib_met": self.dry.peak_rss_mib <= DRY_RUN_RSS_MIB_TARGET,
                "python_peak_rss_mib": PYTHON_DRY_RUN_RSS_MIB,
                "ms": self.dry.all_ms,
            },
        })
    }
}

/// The benchmark tree: relative path and size of each file. Files come in
/// pairs MEAN + d and MEAN - d, so sizes vary but the total is exactly
/// TOTAL_BYTES.
fn file_plan() -> Vec<(PathBuf, u64)> {
    let mut rng = XorShift::new(0xA41);
    let mut files = Vec::with_capacity(FILE_COUNT);
    for index in 0..FILE_COUNT {
        let size = if index % 2 == 0 {
            MEAN_SIZE + rng.next() % (SPREAD + 1)
        } else {
            let (_, partner) = files[index - 1];
            2 * MEAN_SIZE - partner
        };
        let rel = PathBuf::from(format!("dir-{:02}/file-{index:04}.bin", index % DIR_COUNT));
        files.push((rel, size));
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn file_plan_has_the_promised_shape() {
        let files = file_plan();
        assert_eq!(files.len(), FILE_COUNT);
        assert_eq!(files.iter().map(|(_, s)| s).sum::<u64>(), TOTAL_BYTES);
        let dirs: HashSet<_> = files.iter().map(|(p, _)| p.parent().unwrap()).collect();
        assert_eq!(dirs.len(), DIR_COUNT);
        let min = files.iter().map(|(_, s)| *s).min().unwrap();
        let max = files.iter().map(|(_, s)| *s).max().unwrap();
        assert!(min >= 1_000 && max <= 2 * MEAN_SIZE - 1_000);
        assert!(max - min > MEAN_SIZE, "sizes should vary widely");
        assert_eq!(files, file_plan(), "the plan is deterministic");
    }

    #[test]
    fn generated_files_are_deterministic_and_sized() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_pseudo_random(&a, 1_003, 7).unwrap();
        write_pseudo_random(&b, 1_003, 7).unwrap();
        let bytes = fs::read(&a).unwrap();
        assert_eq!(bytes.len(), 1_003);
        assert_eq!(bytes, fs::read(&b).unwrap());
        write_pseudo_random(&b, 1_003, 8).unwrap();
        assert_ne!(bytes, fs::read(&b).unwrap());
    }

    #[test]
    fn main_local_argv_takes_the_main_step() {
        let plan = r#"{"job": "j", "backend": "rdiff", "steps": [
            {"phase": "pre", "name": "hook", "host": "localhost", "argv": ["true"], "local_argv": ["true"]},
            {"phase": "main", "name": "rdiff-backup", "host": "localhost",
             "argv": ["rdiff-backup", "backup"], "local_argv": ["rdiff-backup", "backup", "/", "/s"]}
        ]}"#;
        assert_eq!(main_local_argv(plan).unwrap(), ["rdiff-backup", "backup", "/", "/s"]);
        assert!(main_local_argv(r#"{"steps": []}"#).is_err());
    }
}
