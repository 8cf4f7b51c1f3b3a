//! The spot check (`verify_sample`): after the backup, while the snapshot it read is still
//! mounted, the same fixed listing command runs in the host's snapshot (or source root) and in
//! the store, each picking files by a hash of their path under this run's seed, hashing them
//! up to `verify_max_bytes`; the engine compares the two listings. With the snapshot, any
//! difference is a defect; live (no snapshot, or `ari verify`), what changed since the backup
//! read it is only counted. `script.rs` is the command, `listing.rs` reads what it printed,
//! `compare.rs` judges.

pub(crate) mod compare;
pub(crate) mod listing;
pub(crate) mod script;

use std::hash::{BuildHasher, Hasher};

use crate::contract::core_settings::{REMOTE_SUDO, VERIFY_MAX_BYTES, VERIFY_SAMPLE, VERIFY_TIMEOUT};
use crate::contract::error::ConfigError;
use crate::contract::job::Job;
use crate::contract::kinds::SampleSize;
use crate::contract::plugin::BackupBackend;
use crate::contract::sample::Sample;
use crate::contract::settings::Settings;
use crate::contract::step::{
    Action, Chars, Command, CommandPattern, Host, Phase, Program, Step, VerifySides,
};
use crate::engine::authorize::sudo_rule::sudo_entry;
use crate::engine::process::ProcessError;
use crate::engine::runner::Runner;

pub use compare::Verdict;
use compare::{Difference, Judging};
use listing::Listing;
use script::Side;

/// How many failed files an error names.
const NAMED: usize = 20;

/// The spot check of a job whose settings ask for one; `exact` when the source is the snapshot
/// the backup read (`snapshot_root`), live in the backend's source root otherwise. `None` when
/// `verify_sample` is unset.
pub(crate) fn step(
    job: &Job,
    settings: &Settings,
    backend: &dyn BackupBackend,
    sample: Option<Sample>,
    snapshot_root: Option<&str>,
) -> Result<Option<Step>, ConfigError> {
    let Some(size) = settings.get(&VERIFY_SAMPLE) else { return Ok(None) };
    // `ari verify` of a job with a snapshot lists the live root instead: a line of its own.
    let live = match snapshot_root {
        Some(_) => Some(sides(job, settings, backend, sample.clone(), size, None)?),
        None => None,
    };
    let sides = sides(job, settings, backend, sample, size, snapshot_root)?;
    let mut step = Step::run(Phase::Verify, "verify", sides.source.clone());
    // The one line each remote side may run, its last word the seed.
    let commands =
        [&sides.source, &sides.store].into_iter().chain(live.iter().flat_map(|l| [&l.source, &l.store]));
    for command in commands {
        if let Some(pattern) = pattern(command) {
            if !step.may_run.contains(&pattern) {
                step = step.may_run(pattern);
            }
        }
    }
    // And the marks of the compared backup, as they are.
    for mark in sides.marks.iter().flat_map(|(passed, failed)| [passed, failed]) {
        if let Host::Remote(_) = &mark.host {
            let line = crate::contract::step::remote_line(mark);
            step = step.may_run(CommandPattern::exact(mark.host.clone(), line));
        }
    }
    step.action = Action::Verify(Box::new(sides));
    Ok(Some(step))
}

/// The one line a remote side may run, its last word the seed; none for a local side.
fn pattern(command: &Command) -> Option<CommandPattern> {
    let (Host::Remote(_), Program::Argv(argv)) = (&command.host, &command.program) else { return None };
    let words = &argv[..argv.len() - 1];
    let template = format!("{} {{}}", crate::contract::quote::shell_join(words));
    Some(
        CommandPattern::with_variable(command.host.clone(), template, Chars::DIGITS)
            .noting("lists, and hashes a sample of, the files the job backs up"),
    )
}

/// The sides of a live check of the job (`ari verify`): the backend's source root against the
/// store, picking `verify_sample` of the files, or 1% when the job sets none.
pub(crate) fn live(
    job: &Job,
    settings: &Settings,
    backend: &dyn BackupBackend,
    sample: Option<Sample>,
) -> Result<VerifySides, ConfigError> {
    let size = settings.get(&VERIFY_SAMPLE).unwrap_or(SampleSize::PerMillion(10_000));
    // Only a run marks what it made: `ari verify` judges the store as it is.
    Ok(VerifySides { marks: None, ..sides(job, settings, backend, sample, size, None)? })
}

fn sides(
    job: &Job,
    settings: &Settings,
    backend: &dyn BackupBackend,
    sample: Option<Sample>,
    size: SampleSize,
    snapshot_root: Option<&str>,
) -> Result<VerifySides, ConfigError> {
    let setting_error = |message: String| {
        settings.error_at("verify_sample", &message).unwrap_or_else(|| job.error_at("verify_sample", message))
    };
    let cap = settings.get(&VERIFY_MAX_BYTES).map(|bytes| bytes.0);
    let Some(sample) = sample else {
        return Err(setting_error(format!(
            "the {} backend cannot compare its store with the host: leave verify_sample unset for this job",
            backend.name()
        )));
    };
    script::check(&sample).map_err(|why| {
        setting_error(format!("the {} backend's sample is not usable: {why}", backend.name()))
    })?;
    let source_host = Host::named(&job.source_hostname);
    let root = snapshot_root.unwrap_or(&sample.source_root);
    // Live, a job with a snapshot source lists only what its volumes hold, as the backup reads
    // only them (their snapshots): never another filesystem of the host, nor `/proc`.
    let volumes: Option<Vec<String>> = (snapshot_root.is_none() && job.snapshot.is_some())
        .then(|| job.volumes.iter().map(|volume| volume.mount_point.clone()).collect());
    let source = script::argv(&script::Listed {
        sample: &sample,
        side: Side::Source,
        root,
        volumes: volumes.as_deref(),
        size,
        cap,
    });
    let store = script::argv(&script::Listed {
        sample: &sample,
        side: Side::Store,
        root: &sample.store_root,
        volumes: None,
        size,
        cap,
    });
    // Under remote_sudo a host's drop-in must allow each remote side as one rule: refused now,
    // for this job alone, when sudo could match no rule that long (the run's check and `ari
    // verify`'s alike).
    if settings.get(&REMOTE_SUDO) {
        for command in [
            Command::argv(source_host.clone(), source.clone()),
            Command::argv(sample.store.clone(), store.clone()),
        ] {
            let Some(pattern) = pattern(&command) else { continue };
            let words = crate::contract::ssh::sudo_words(pattern.template(), true);
            if let Err(why) = sudo_entry(&words, Some(Chars::DIGITS)) {
                return Err(setting_error(format!(
                    "under remote_sudo, the spot check's command on {} cannot be allowed by sudo: {why}. Verify this job with a remote_user of root behind the filter (docs/verify.md)",
                    command.host
                )));
            }
        }
    }
    Ok(VerifySides {
        source: Command::argv(source_host, source),
        store: Command::argv(sample.store.clone(), store),
        exact: snapshot_root.is_some(),
        size,
        owners: sample.owners,
        timeout: settings.get(&VERIFY_TIMEOUT),
        marks: sample.marks.clone(),
    })
}

/// Why a spot check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyFailure {
    /// A side's command did not succeed.
    #[error(transparent)]
    Process(#[from] ProcessError),
    /// A side printed what is not a listing, or its find failed.
    #[error("cannot use the output of {command}: {message}")]
    Listing {
        /// The side's command and its host.
        command: String,
        /// What was wrong.
        message: String,
    },
    /// The backup does not hold what the host held.
    #[error("{message}")]
    Found {
        /// The counts and the first files.
        message: String,
        /// Everything the check found.
        verdict: Box<Verdict>,
    },
}

impl VerifyFailure {
    /// What the check found, when it ran to a verdict.
    pub fn verdict(&self) -> Option<&Verdict> {
        match self {
            VerifyFailure::Found { verdict, .. } => Some(verdict),
            _ => None,
        }
    }
}

/// Runs both sides and judges them: the verdict when the backup passed, the error otherwise.
pub(crate) fn attempt(
    sides: &VerifySides,
    runner: &Runner,
    since: Option<f64>,
) -> Result<Verdict, VerifyFailure> {
    let runner = &runner.clone().with_step_timeout(sides.timeout, "verify_timeout");
    let seed = (std::collections::hash_map::RandomState::new().build_hasher().finish() >> 32).to_string();
    let source = seeded(&sides.source, &seed);
    let store = seeded(&sides.store, &seed);
    let (source_output, store_output) = std::thread::scope(|scope| {
        let label = crate::engine::log_context::job_label();
        let store = &store;
        let store_side = scope.spawn(move || {
            crate::engine::log_context::set_job_label(label.as_deref());
            runner.run(store)
        });
        let source_side = runner.run(&source);
        (source_side, store_side.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    });
    let (source_output, store_output) = (source_output?, store_output?);
    if runner.is_dry_run() {
        return Ok(Verdict::default());
    }
    let read = |command: &Command, output: &crate::engine::process::Output| {
        let listing = output
            .stdout_bytes()
            .map_err(|too_long| too_long.to_string())
            .and_then(Listing::read)
            .map_err(|message| VerifyFailure::Listing { command: command.to_string(), message })?;
        match listing.status {
            0 => Ok(listing),
            status => Err(VerifyFailure::Listing {
                command: command.to_string(),
                message: format!(
                    "find exited {status} while listing: {}",
                    output.stderr().lines().rev().take(3).collect::<Vec<_>>().join("; ")
                ),
            }),
        }
    };
    let (source_listing, store_listing) = (read(&source, &source_output)?, read(&store, &store_output)?);
    // A host that lists nothing of what the store holds compared nothing: never a pass.
    if source_listing.entries.is_empty() && !store_listing.entries.is_empty() {
        return Err(VerifyFailure::Listing {
            command: source.to_string(),
            message: format!(
                "it listed none of the files the job backs up, of which the store holds {}{}",
                store_listing.entries.len(),
                if store_listing.entries.len() as u64 >= script::kept(sides.size) { " or more" } else { "" }
            ),
        });
    }
    let judging = Judging {
        exact: sides.exact,
        since,
        count: script::kept(sides.size),
        below: script::threshold(sides.size),
        owners: sides.owners,
    };
    let verdict = compare::compare(&source_listing, &store_listing, judging);
    log::info!("{}", summary(&verdict));
    if verdict.files == 0 && verdict.findings.is_empty() {
        // Not a failure (a job may back up nothing yet), but no proof either.
        log::warn!(
            "verify: no file was compared: neither side lists a file the job backs up (an include that does not exist, or lies below a symlink, on the host)"
        );
    }
    if verdict.passed() {
        Ok(verdict)
    } else {
        Err(VerifyFailure::Found { message: failure(&verdict), verdict: Box::new(verdict) })
    }
}

/// `command`, its last word (`SEED`) replaced by `seed`.
fn seeded(command: &Command, seed: &str) -> Command {
    match &command.program {
        Program::Argv(words) => {
            let mut words = words.clone();
            if let Some(last) = words.last_mut() {
                *last = seed.to_string();
            }
            Command::argv(command.host.clone(), words)
        }
        Program::Shell(_) => command.clone(),
    }
}

/// One line for the log: what was compared.
pub fn summary(verdict: &Verdict) -> String {
    format!(
        "verify: {} file{} compared ({} by content, {}), {} changed since the backup, {} failed{}",
        verdict.files,
        if verdict.files == 1 { "" } else { "s" },
        verdict.hashed,
        shown_bytes(verdict.bytes),
        verdict.changed,
        verdict.findings.len(),
        match (verdict.modes, verdict.owners) {
            (true, true) => "",
            (true, false) => "; owners not compared (the store does not keep them as the host's numbers)",
            _ => "; modes and owners not compared (a side did not run as root)",
        }
    )
}

/// The error of a failed check: the counts, and the first files by path.
fn failure(verdict: &Verdict) -> String {
    let count =
        |wanted: fn(&Difference) -> bool| verdict.findings.iter().filter(|f| wanted(&f.difference)).count();
    let missing = count(|d| matches!(d, Difference::Missing));
    let extra = count(|d| matches!(d, Difference::Extra));
    let unreadable = count(|d| matches!(d, Difference::Unreadable(_)));
    let differ = verdict.findings.len() - missing - extra - unreadable;
    let mut counts = Vec::new();
    for (n, what) in [
        (missing, "missing from the store"),
        (extra, "in the store but not on the host"),
        (differ, "differing"),
        (unreadable, "unreadable"),
    ] {
        if n > 0 {
            counts.push(format!("{n} {what}"));
        }
    }
    let named: Vec<String> = verdict
        .findings
        .iter()
        .take(NAMED)
        .map(|finding| {
            let what = match &finding.difference {
                Difference::Missing => "missing from the store".to_string(),
                Difference::Extra => "not on the host".to_string(),
                Difference::Differs(fields) if fields.len() == 1 => format!("{} differs", fields[0]),
                Difference::Differs(fields) => format!("{} differ", fields.join(", ")),
                Difference::Unreadable(side) => format!("could not be read on the {side}'s side"),
            };
            format!("{} ({what})", listing::shown(&finding.path))
        })
        .collect();
    let more = verdict.findings.len().saturating_sub(NAMED);
    format!(
        "the backup does not hold what the host held: {} of {} files failed ({}): {}{}",
        verdict.findings.len(),
        verdict.files + missing as u64 + extra as u64,
        counts.join(", "),
        named.join(", "),
        if more > 0 { format!(", and {more} more") } else { String::new() }
    )
}

/// A verdict as JSON (`ari verify --json`, the run report): the counts and every failed file.
#[derive(Debug, serde::Serialize)]
pub struct VerdictJson {
    files: u64,
    hashed: u64,
    bytes: u64,
    changed: u64,
    modes_compared: bool,
    owners_compared: bool,
    failed: Vec<FindingJson>,
}

/// A failed file: its path, and what differs (`missing`, `extra`, `differs` with its fields,
/// `unreadable` with the side).
#[derive(Debug, serde::Serialize)]
struct FindingJson {
    path: String,
    problem: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    side: Option<&'static str>,
}

impl VerdictJson {
    /// The JSON of `verdict`.
    pub fn of(verdict: &Verdict) -> VerdictJson {
        VerdictJson {
            files: verdict.files,
            hashed: verdict.hashed,
            bytes: verdict.bytes,
            changed: verdict.changed,
            modes_compared: verdict.modes,
            owners_compared: verdict.owners,
            failed: verdict
                .findings
                .iter()
                .map(|finding| {
                    let (problem, fields, side) = match &finding.difference {
                        Difference::Missing => ("missing", Vec::new(), None),
                        Difference::Extra => ("extra", Vec::new(), None),
                        Difference::Differs(fields) => ("differs", fields.clone(), None),
                        Difference::Unreadable(side) => ("unreadable", Vec::new(), Some(*side)),
                    };
                    FindingJson { path: listing::shown(&finding.path), problem, fields, side }
                })
                .collect(),
        }
    }
}

/// Bytes as people read them: `512 B`, `3.2 MiB`.
fn shown_bytes(bytes: u64) -> String {
    let mut value = bytes as f64;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if value < 1024.0 {
            return if unit == "B" { format!("{bytes} B") } else { format!("{value:.1} {unit}") };
        }
        value /= 1024.0;
    }
    format!("{value:.1} TiB")
}

#[cfg(test)]
mod tests {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::contract::kinds::SampleSize;
    use crate::contract::ssh::Ssh;

    /// The listing of `root` as the real command prints it, with the seed 7, whose sample is
    /// `tree`'s files below `root`, without what `excluded` names.
    fn listed(sample: &Sample, side: Side, root: &str, size: SampleSize, cap: Option<u64>) -> Listing {
        let mut argv = script::argv(&script::Listed { sample, side, root, volumes: None, size, cap });
        *argv.last_mut().unwrap() = "7".into();
        let output = Runner::new(Ssh::new("ssh"), false).run(&Command::argv(Host::Local, argv)).unwrap();
        let listing = Listing::read(output.stdout_bytes().unwrap()).unwrap();
        assert_eq!(listing.status, 0, "{}", output.stderr());
        listing
    }

    fn write(path: &std::path::Path, content: &[u8]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// A tree of hostile names, and its copy as a store holds it.
    fn trees() -> (tempfile::TempDir, String, String) {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        for name in ["a file", "new\nline", "-dash", "x'quote\"", "deep/er/file", "skip/me", "big"] {
            write(&host.join("data").join(name), name.as_bytes());
        }
        write(&host.join("data").join(std::ffi::OsStr::from_bytes(b"not-utf8-\xff")), b"bytes");
        write(&host.join("data/big"), &vec![7u8; 100_000]);
        write(&host.join("outside"), b"not included");
        symlink("../outside", host.join("data/link")).unwrap();
        let store = dir.path().join("store");
        let (host, store) = (host.to_string_lossy().into_owned(), store.to_string_lossy().into_owned());
        let copy = Command::argv(Host::Local, ["cp", "-a", host.as_str(), store.as_str()]);
        Runner::new(Ssh::new("ssh"), false).run(&copy).unwrap();
        (dir, host, store)
    }

    fn sample() -> Sample {
        Sample::new("/", Host::Local, "/unused").including("/data", "/data").excluding("/data/skip")
    }

    #[test]
    fn the_real_command_lists_what_the_sample_selects_and_both_sides_agree() {
        let (_dir, host, store) = trees();
        let all = SampleSize::PerMillion(1_000_000);
        let source = listed(&sample(), Side::Source, &host, all, None);
        let paths: Vec<String> = source.entries.keys().map(|path| listing::shown(path)).collect();
        assert_eq!(
            paths,
            [
                "/data/-dash",
                "/data/a file",
                "/data/big",
                "/data/deep/er/file",
                "/data/link",
                "/data/new\\nline",
                "/data/not-utf8-\\xff",
                "/data/x'quote\"",
            ]
        );
        assert_eq!(source.entries[&b"/data/link".to_vec()].target, b"../outside");
        assert_eq!(source.hashes.len(), 7, "every regular file hashed: {:?}", source.hashes.keys());
        let verdict = compare::compare(
            &source,
            &listed(&sample(), Side::Store, &store, all, None),
            Judging { exact: true, since: None, count: u64::MAX, below: u64::MAX, owners: true },
        );
        assert!(verdict.passed(), "{verdict:?}");
        assert_eq!(verdict.files, 8);
    }

    #[test]
    fn a_flipped_byte_with_its_size_and_time_kept_fails() {
        let (_dir, host, store) = trees();
        let file = std::path::Path::new(&store).join("data/deep/er/file");
        let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
        std::fs::write(&file, b"deep/er/filf").unwrap();
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(mtime).unwrap();
        let all = SampleSize::PerMillion(1_000_000);
        let exact = Judging { exact: true, since: None, count: u64::MAX, below: u64::MAX, owners: true };
        let verdict = compare::compare(
            &listed(&sample(), Side::Source, &host, all, None),
            &listed(&sample(), Side::Store, &store, all, None),
            exact,
        );
        assert_eq!(verdict.findings.len(), 1, "{verdict:?}");
        assert_eq!(verdict.findings[0].path, b"/data/deep/er/file");
        assert!(failure(&verdict).contains("/data/deep/er/file (content differs)"), "{}", failure(&verdict));
    }

    #[test]
    fn a_share_a_count_and_a_cap_pick_the_same_files_on_both_sides() {
        let (_dir, host, store) = trees();
        for (size, cap) in [
            (SampleSize::PerMillion(500_000), None),
            (SampleSize::Count(3), None),
            (SampleSize::PerMillion(1_000_000), Some(1_000)),
        ] {
            let source = listed(&sample(), Side::Source, &host, size, cap);
            let kept = listed(&sample(), Side::Store, &store, size, cap);
            let picked = |listing: &Listing| -> Vec<(Vec<u8>, u64, bool)> {
                listing.entries.iter().map(|(path, e)| (path.clone(), e.key, e.hashed)).collect()
            };
            assert_eq!(picked(&source), picked(&kept), "{size:?} {cap:?}");
            if let SampleSize::Count(count) = size {
                assert_eq!(source.entries.len() as u64, count);
            }
            if let Some(cap) = cap {
                let hashed: u64 = source.entries.values().filter(|e| e.hashed).map(|e| e.size).sum();
                assert!(hashed <= cap && !source.entries[&b"/data/big".to_vec()].hashed, "{hashed} > {cap}");
            }
        }
        // A share too small to pick any file of this tree still lists one on each side, the same.
        let tiny = SampleSize::PerMillion(1);
        let (source, kept) = (
            listed(&sample(), Side::Source, &host, tiny, None),
            listed(&sample(), Side::Store, &store, tiny, None),
        );
        assert_eq!(source.entries.len(), 1);
        assert_eq!(source.entries.keys().collect::<Vec<_>>(), kept.entries.keys().collect::<Vec<_>>());
        // Another seed picks other files: the sample rotates.
        let half = SampleSize::PerMillion(500_000);
        let seven = listed(&sample(), Side::Source, &host, half, None);
        let sample = sample();
        let listed = script::Listed {
            sample: &sample,
            side: Side::Source,
            root: &host,
            volumes: None,
            size: half,
            cap: None,
        };
        let mut argv = script::argv(&listed);
        let picks: std::collections::BTreeSet<Vec<String>> = (1..20)
            .map(|seed| {
                *argv.last_mut().unwrap() = seed.to_string();
                let output = Runner::new(Ssh::new("ssh"), false)
                    .run(&Command::argv(Host::Local, argv.clone()))
                    .unwrap();
                Listing::read(output.stdout_bytes().unwrap())
                    .unwrap()
                    .entries
                    .into_keys()
                    .map(|p| listing::shown(&p))
                    .collect()
            })
            .collect();
        assert!(picks.len() > 5, "20 seeds picked only {} different samples", picks.len());
        assert!(!seven.entries.is_empty());
    }
}
