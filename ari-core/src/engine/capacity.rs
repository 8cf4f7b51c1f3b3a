//! The capacity check: before a job's `pre` commands, its store's size and free space and the
//! health of the pool under it (`BackupBackend::capacity`), read through the job's runner and
//! judged here, the same for every backend. A store with less free than `min_free_space`, a
//! pool in any state but `ONLINE` or `DEGRADED` (or `DEGRADED` with `refuse_degraded_pool`),
//! or a query that fails or prints what its reader refuses, means that the job does not start:
//! no hook runs, nothing is made. A `DEGRADED` pool is otherwise a warning. A dry run logs the
//! commands and judges nothing.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::contract::capacity::CapacityQuery;
use crate::contract::core_settings::{MIN_FREE_SPACE, REFUSE_DEGRADED_POOL};
use crate::contract::kinds::{shown_bytes, FreeSpace};
use crate::contract::settings::Settings;
use crate::contract::step::{Phase, Step};
use crate::engine::process::ProcessError;
use crate::engine::runner::Runner;
use crate::engine::step_run::{StepError, StepFailure, StepRecord};

/// The name of the step that reads the store's space.
pub(crate) const SPACE_STEP: &str = "store space";
/// The name of the step that reads the pool's health.
pub(crate) const POOL_STEP: &str = "pool health";
/// What is recorded of a pool whose health could not be read (exported, gone, a status ari
/// does not read): `UNKNOWN`, which the metrics show as not ONLINE.
fn unknown(pool: &crate::contract::capacity::PoolQuery) -> PoolRecord {
    PoolRecord { name: pool.name.clone(), state: "UNKNOWN".to_string(), last_scrub: None }
}

/// What a capacity check read: the run's history keeps it, and the metrics show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityRecord {
    /// What the figures are of: a path, a dataset.
    pub store: String,
    /// The store's size, in bytes; none when the check stopped at the pool, before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_bytes: Option<u64>,
    /// What is free of it for new data, in bytes; none when the check stopped at the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_bytes: Option<u64>,
    /// The pool under the store, when it lies on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolRecord>,
}

/// The health of the pool under a store, as a capacity check read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRecord {
    /// Its name.
    pub name: String,
    /// Its state (`ONLINE`, `DEGRADED`, ...).
    pub state: String,
    /// When its last scrub ended, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scrub: Option<i64>,
}

/// What the engine makes of a reading.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Judgement {
    /// Why the job must not start, and the step whose figure says so (`POOL_STEP`,
    /// `SPACE_STEP`); none: it may.
    pub(crate) refusal: Option<(&'static str, String)>,
    /// What the run report says beside it (a DEGRADED pool).
    pub(crate) warnings: Vec<String>,
}

/// The steps of a capacity query, as the plan shows them and the pipeline runs them.
pub(crate) fn steps(query: &CapacityQuery) -> Vec<Step> {
    let pool = query.pool.as_ref().map(|pool| Step::run(Phase::Capacity, POOL_STEP, pool.command.clone()));
    pool.into_iter().chain([Step::run(Phase::Capacity, SPACE_STEP, query.space.clone())]).collect()
}

/// What a capacity check read, and what it warned of.
#[derive(Debug)]
pub(crate) struct Read {
    /// The figures.
    pub(crate) reading: CapacityRecord,
    /// What the run report says beside the backup (a DEGRADED pool).
    pub(crate) warnings: Vec<String>,
}

/// How a capacity check ended: what it read (also when it refused the job, so that the
/// metrics show a FAULTED pool), and the failure that stops the job.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The figures and warnings; none in a dry run or when the figures could not be read.
    pub(crate) read: Option<Box<Read>>,
    /// Why the job does not start: a query that failed or printed what its reader refuses, or
    /// a judgement that refuses the store.
    pub(crate) failure: Option<StepFailure>,
}

/// What `ari check` shows of a job's store: its figures as one line, what a run would warn of,
/// and why a run would not start.
#[derive(Debug, Default)]
pub struct CapacityShown {
    /// The figures (`the store /srv has 3.2 GiB free of 50.0 GiB`), when they could be read.
    pub reading: Option<String>,
    /// What a run would warn of (a DEGRADED pool).
    pub warnings: Vec<String>,
    /// Why a run would not start: the store or pool refused, or the figures could not be read.
    pub problem: Option<String>,
}

impl From<Checked> for CapacityShown {
    fn from(checked: Checked) -> CapacityShown {
        let problem = checked.failure.map(|failure| match failure.error {
            StepError::Capacity { why, .. } => format!("{why}: a run would not start"),
            error => format!(
                "capacity check `{}` failed: {}; a run would not start",
                failure.step,
                crate::contract::error::chain(&error)
            ),
        });
        let (reading, warnings) = match checked.read {
            Some(read) => (Some(shown(&read.reading)), read.warnings),
            None => (None, Vec::new()),
        };
        CapacityShown { reading, warnings, problem }
    }
}

/// Runs the capacity query's steps (`steps`, `query`'s commands: the pool's first), records
/// each in `records`, and judges what they printed by the job's settings, each as soon as it is
/// read: a pool that refuses the job stops the check before the space query (which a FAULTED
/// or SUSPENDED pool's datasets may fail, or hang on), and what was read of it is kept (the
/// metrics show the FAULTED pool). A refusal for space gives `space_hint`. Nothing is judged in
/// a dry run.
pub(crate) fn check(
    query: &CapacityQuery,
    steps: &[Step],
    settings: &Settings,
    space_hint: Option<&str>,
    runner: &Runner,
    records: &mut Vec<StepRecord>,
) -> Checked {
    let (min_free, refuse_degraded) = (settings.get(&MIN_FREE_SPACE), settings.get(&REFUSE_DEGRADED_POOL));
    let mut reading =
        CapacityRecord { store: query.store.clone(), total_bytes: None, available_bytes: None, pool: None };
    // What was read so far, and what it warns of (a DEGRADED pool, also when the space then
    // refuses the job), with the failure that stops the check.
    let stopped = |reading: &CapacityRecord, failure: StepFailure| Checked {
        read: (reading.pool.is_some() || reading.total_bytes.is_some()).then(|| {
            let warnings = judge(reading, min_free, refuse_degraded).warnings;
            Box::new(Read { reading: reading.clone(), warnings })
        }),
        failure: Some(failure),
    };
    for step in steps {
        let clock = Instant::now();
        let command = step.action.command();
        let result = runner.run(command).map_err(StepError::from).and_then(|output| {
            output.stdout().map(str::to_string).map_err(|too_long| StepError::Expand {
                command: command.to_string(),
                message: too_long.to_string(),
            })
        });
        let mut record = StepRecord::of(step, &Ok(None), clock.elapsed());
        record.error = result.as_ref().err().map(ToString::to_string);
        records.push(record);
        let text = match result {
            Ok(_) if runner.is_dry_run() => continue,
            Ok(text) => text,
            Err(error) => {
                // A pool whose status cannot be read (exported, gone) is not the pool it was at
                // the last run: recorded as UNKNOWN, which the metrics show as not ONLINE. A
                // status that did not run to its end (a signal, ssh that did not connect) says
                // nothing of the pool.
                let silent = matches!(
                    error,
                    StepError::Process(ProcessError::Interrupted { .. } | ProcessError::Ssh { .. })
                );
                if let Some(pool) = query.pool.as_ref().filter(|_| step.name == POOL_STEP && !silent) {
                    reading.pool = Some(unknown(pool));
                }
                return stopped(&reading, StepFailure::new(step, error));
            }
        };
        let unreadable = |message: String| {
            StepFailure::new(step, StepError::Expand { command: command.to_string(), message })
        };
        match (&query.pool, step.name.as_str()) {
            (Some(pool), POOL_STEP) => match (pool.read)(&text) {
                Ok(pool) => {
                    reading.pool =
                        Some(PoolRecord { name: pool.name, state: pool.state, last_scrub: pool.last_scrub })
                }
                Err(err) => {
                    reading.pool = Some(unknown(pool));
                    return stopped(&reading, unreadable(err.to_string()));
                }
            },
            _ => match (query.read_space)(&text) {
                Ok(space) => {
                    reading.total_bytes = Some(space.total_bytes);
                    reading.available_bytes = Some(space.available_bytes);
                }
                Err(err) => return stopped(&reading, unreadable(err.to_string())),
            },
        }
        if let Some((name, why)) = judge(&reading, min_free, refuse_degraded).refusal {
            log::info!("capacity: {}", shown(&reading));
            // A run refused for space destroys nothing; a prune can, when the job has retention.
            let hint = space_hint.filter(|_| name == SPACE_STEP).map(str::to_string);
            return stopped(&reading, StepFailure::new(step, StepError::Capacity { why, hint }));
        }
    }
    if runner.is_dry_run() {
        log::info!("dry run: the store's capacity is not judged");
        return Checked::default();
    }
    let judgement = judge(&reading, min_free, refuse_degraded);
    log::info!("capacity: {}", shown(&reading));
    Checked { read: Some(Box::new(Read { reading, warnings: judgement.warnings })), failure: None }
}

/// A reading as one line: `the store pool/backups/web has 3.2 GiB free of 50.0 GiB; pool pool
/// is ONLINE, last scrubbed ...`.
pub(crate) fn shown(reading: &CapacityRecord) -> String {
    let mut line = match (reading.available_bytes, reading.total_bytes) {
        (Some(available), Some(total)) => {
            format!(
                "the store {} has {} free of {}",
                reading.store,
                shown_bytes(available),
                shown_bytes(total)
            )
        }
        _ => format!("the store {} (its space not read)", reading.store),
    };
    if let Some(pool) = &reading.pool {
        line.push_str(&format!("; pool {} is {}", pool.name, pool.state));
        match pool.last_scrub.and_then(|at| jiff::Timestamp::from_second(at).ok()) {
            Some(at) => line.push_str(&format!(", last scrubbed {}", at.strftime("%Y-%m-%d %H:%M UTC"))),
            None => line.push_str(", no finished scrub"),
        }
    }
    line
}

/// Judges a reading: less free than `min_free` (bytes, or a share of the store's size) refuses;
/// a pool `ONLINE` passes, `DEGRADED` warns (refuses with `refuse_degraded`), any other state
/// refuses.
pub(crate) fn judge(
    reading: &CapacityRecord,
    min_free: Option<FreeSpace>,
    refuse_degraded: bool,
) -> Judgement {
    let mut judgement = Judgement::default();
    if let Some(pool) = &reading.pool {
        match pool.state.as_str() {
            "ONLINE" => {}
            "DEGRADED" if !refuse_degraded => judgement.warnings.push(format!(
                "the pool {} under the store {} is DEGRADED: replace the failed device (`zpool status {}`); backups go on (refuse_degraded_pool: true stops them)",
                pool.name, reading.store, pool.name
            )),
            "DEGRADED" => {
                judgement.refusal = Some((POOL_STEP, format!(
                    "the pool {} under the store {} is DEGRADED, and refuse_degraded_pool is set",
                    pool.name, reading.store
                )));
                return judgement;
            }
            state => {
                judgement.refusal = Some((POOL_STEP, format!(
                    "the pool {} under the store {} is {state}, not ONLINE or DEGRADED",
                    pool.name, reading.store
                )));
                return judgement;
            }
        }
    }
    let (Some(min_free), Some(total), Some(available)) =
        (min_free, reading.total_bytes, reading.available_bytes)
    else {
        return judgement;
    };
    // A store that says it has no size (a broken reading, a tmpfs without a limit) cannot be
    // judged by a share of it: refused, as any byte threshold refuses it.
    if total == 0 && matches!(min_free, FreeSpace::PerMillion(_)) {
        judgement.refusal = Some((
            SPACE_STEP,
            format!(
                "the store {} reports a size of 0 bytes, so min_free_space {min_free} cannot be judged; set it in bytes (e.g. 10G)",
                reading.store
            ),
        ));
        return judgement;
    }
    {
        let wanted = min_free.of(total);
        if available < wanted {
            let threshold = match min_free {
                FreeSpace::Bytes(_) => min_free.to_string(),
                FreeSpace::PerMillion(_) => {
                    format!("{min_free} ({} of {})", shown_bytes(wanted), shown_bytes(total))
                }
            };
            judgement.refusal = Some((
                SPACE_STEP,
                format!(
                    "the store {} has {} free ({available} bytes), below min_free_space {threshold}",
                    reading.store,
                    shown_bytes(available),
                ),
            ));
        }
    }
    judgement
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn reading(total: u64, available: u64, state: Option<&str>) -> CapacityRecord {
        CapacityRecord {
            store: "pool/backups/web".into(),
            total_bytes: Some(total),
            available_bytes: Some(available),
            pool: state.map(|state| PoolRecord {
                name: "pool".into(),
                state: state.into(),
                last_scrub: None,
            }),
        }
    }

    /// Judges a store of `total` bytes with `available` free on a pool in `state`: `expected`
    /// is `runs`, `warns` or `refused`, or `warns, refused`.
    fn check(
        (total, available, state): (u64, u64, Option<&str>),
        min_free: Option<FreeSpace>,
        refuse_degraded: bool,
        expected: &str,
    ) {
        let judged = judge(&reading(total, available, state), min_free, refuse_degraded);
        let mut said = Vec::new();
        if !judged.warnings.is_empty() {
            said.push("warns");
        }
        if judged.refusal.is_some() {
            said.push("refused");
        }
        let said = if said.is_empty() { "runs".to_string() } else { said.join(", ") };
        assert_eq!(
            said, expected,
            "{total} {available} {state:?} {min_free:?} {refuse_degraded}: {judged:?}"
        );
    }

    #[test]
    fn a_store_is_judged_by_its_free_space_and_its_pool() {
        let ten_percent = Some(FreeSpace::PerMillion(100_000));
        let three_gib = Some(FreeSpace::Bytes(3 * GIB));
        check((50 * GIB, 3 * GIB, None), None, false, "runs");
        check((50 * GIB, 3 * GIB, None), ten_percent, false, "refused");
        check((50 * GIB, 5 * GIB, None), ten_percent, false, "runs");
        check((50 * GIB, 5 * GIB - 1, None), ten_percent, false, "refused");
        check((50 * GIB, 3 * GIB, None), three_gib, false, "runs");
        check((50 * GIB, 3 * GIB - 1, None), three_gib, false, "refused");
        check((0, 0, None), ten_percent, false, "refused");
        check((0, 0, None), Some(FreeSpace::Bytes(1)), false, "refused");
        check((50 * GIB, 40 * GIB, Some("ONLINE")), ten_percent, true, "runs");
        check((50 * GIB, 40 * GIB, Some("DEGRADED")), ten_percent, false, "warns");
        check((50 * GIB, 40 * GIB, Some("DEGRADED")), None, true, "refused");
        check((50 * GIB, 1, Some("DEGRADED")), ten_percent, false, "warns, refused");
        for state in ["FAULTED", "UNAVAIL", "SUSPENDED", "OFFLINE", "REMOVED"] {
            check((50 * GIB, 40 * GIB, Some(state)), None, false, "refused");
        }
    }

    #[test]
    fn a_refusal_names_the_figure_and_the_threshold() {
        let judged =
            judge(&reading(50 * GIB, 3_435_973_837, None), Some(FreeSpace::PerMillion(100_000)), false);
        assert_eq!(
            judged.refusal.unwrap(),
            (SPACE_STEP, "the store pool/backups/web has 3.2 GiB free (3435973837 bytes), below min_free_space 10% (5.0 GiB of 50.0 GiB)".to_string())
        );
        let judged = judge(&reading(50 * GIB, GIB, None), Some(FreeSpace::Bytes(2 * GIB)), false);
        assert_eq!(
            judged.refusal.unwrap().1,
            "the store pool/backups/web has 1.0 GiB free (1073741824 bytes), below min_free_space 2.0 GiB"
        );
        let judged = judge(&reading(GIB, GIB, Some("SUSPENDED")), None, false);
        assert_eq!(
            judged.refusal.unwrap(),
            (
                POOL_STEP,
                "the pool pool under the store pool/backups/web is SUSPENDED, not ONLINE or DEGRADED"
                    .to_string()
            )
        );
    }
}
