//! `ari verify JOB [--full]`: a spot check outside the nightly run, under the job's lock, against
//! the live host (no snapshot is made, also for a job with a snapshot source): what changed since
//! the last backup read it is counted, not failed (see `verify/compare.rs`). With `--full`, then
//! the backend's checks of the whole store (`BackupBackend::store_checks`), each on its own:
//! rdiff-backup's `verify` of the mirror and of the oldest backup, a ZFS pool's health.

use std::path::Path;
use std::sync::Arc;

use crate::contract::error::ConfigError;
use crate::engine::history::History;
use crate::engine::job_run::{master_timeout, StopFlags};
use crate::engine::lock::{Lock, LockError};
use crate::engine::plan::JobPlan;
use crate::engine::remote::Session;
use crate::engine::runner::Runner;
use crate::engine::verify::{self, Verdict, VerifyFailure};

/// Why `ari verify` could not check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The job's lock is held (a run, a restore).
    #[error(transparent)]
    Locked(LockError),
    /// The job cannot be checked (its backend has no sample).
    #[error(transparent)]
    Config(ConfigError),
    /// The job's private run directory could not be made.
    #[error("cannot make the job's run directory")]
    NoRunDirectory(#[source] crate::engine::files::StateError),
}

/// What `ari verify` found.
#[derive(Debug)]
pub struct Checked {
    /// The spot check: its verdict when the backup passed.
    pub spot: Result<Verdict, VerifyFailure>,
    /// With `--full`, each check of the whole store.
    pub store: Vec<StoreChecked>,
}

impl Checked {
    /// Whether everything passed.
    pub fn passed(&self) -> bool {
        self.spot.is_ok() && self.store.iter().all(|check| check.result.is_ok())
    }
}

/// One check of the whole store, and how it ended: the line it reported, or the problem.
#[derive(Debug)]
pub struct StoreChecked {
    /// What it checks.
    pub name: String,
    /// Its command and host.
    pub command: String,
    /// The report's line, or what failed.
    pub result: Result<String, String>,
}

/// Checks `plan`'s store against its live host, under the job's lock; with `full`, then the
/// backend's checks of the whole store.
pub fn check_job(plan: &JobPlan, stop: &StopFlags, full: bool) -> Result<Checked, VerifyError> {
    let sides = plan.live_verify().map_err(VerifyError::Config)?;
    let state_dir = plan.state_dir();
    let state_dir = Path::new(&state_dir);
    let label = plan.label();
    let _lock = Lock::try_acquire(state_dir, label, &format!("job {label}")).map_err(VerifyError::Locked)?;
    let session = Session::open(plan.connections.clone(), state_dir, master_timeout(plan))
        .map_err(VerifyError::NoRunDirectory)?;
    let session = Arc::new(session);
    let runner = Runner::new(plan.ssh.clone(), false)
        .with_cancel(stop.interrupted.clone())
        .with_abort(stop.abort.clone())
        .with_session(Arc::clone(&session));
    // A file only the host holds that changed after the last successful run started may be
    // newer than its backup; without a history, any may be.
    // Its start to the microsecond where the history has the end (a file made just before the
    // run, in the same second, is older than it).
    let since = match History::read(state_dir, label) {
        Ok(history) => history.last_success().map(|run| run.start()),
        Err(err) => {
            log::warn!(
                "every file that differs is counted as changed since the backup: {}",
                crate::contract::error::chain(&err)
            );
            None
        }
    };
    let spot = verify::attempt(&sides, &runner, since);
    // The checks of the whole store are bounded as the spot check is: a hung `zpool status`
    // (a suspended pool) must not keep the job's lock.
    let bounded = runner.clone().with_step_timeout(sides.timeout, "verify_timeout");
    let store = if full { store_checks(plan, &bounded) } else { Ok(Vec::new()) };
    for warning in session.close() {
        log::warn!("{warning}");
    }
    Ok(Checked { spot, store: store.map_err(VerifyError::Config)? })
}

/// Runs the backend's checks of the whole store, each whatever the others gave.
fn store_checks(plan: &JobPlan, runner: &Runner) -> Result<Vec<StoreChecked>, ConfigError> {
    let backups = match &plan.history {
        Some(query) if !query.holds_none_yet() => {
            let listed = runner
                .run(query.command())
                .map_err(|err| err.to_string())
                .and_then(|output| output.stdout().map(str::to_string).map_err(|err| err.to_string()))
                .and_then(|printed| query.read(&printed).map_err(|err| err.to_string()));
            match listed {
                Ok(mut backups) => {
                    backups.sort_by_key(|backup| backup.time());
                    backups
                }
                Err(why) => {
                    return Ok(vec![StoreChecked {
                        name: "the store's backups".into(),
                        command: query.command().to_string(),
                        result: Err(format!("cannot list them: {why}")),
                    }])
                }
            }
        }
        _ => Vec::new(),
    };
    // Each dump the store keeps, read back and judged by its format (the spot check leaves the
    // dump directory out of its comparison).
    let dumps = crate::engine::dumps::checks(&plan.dumps).into_iter().map(|(name, command, check)| {
        log::info!("checking dump {name}: {command}");
        let result =
            runner.run(&command).map_err(|err| crate::contract::error::chain(&err)).and_then(|output| {
                let printed = output.stdout_bytes().map_err(|err| err.to_string())?;
                crate::engine::dumps::judge_stored(printed, &check).map(|size| format!("ok, {size} bytes"))
            });
        StoreChecked { name: format!("dump {name}"), command: command.to_string(), result }
    });
    Ok(plan
        .store_checks(&backups)?
        .into_iter()
        .map(|check| {
            log::info!("checking {}: {}", check.name, check.command);
            let result = runner
                .run(&check.command)
                .map_err(|err| crate::contract::error::chain(&err))
                .and_then(|output| match &check.judge {
                    None => Ok("ok".to_string()),
                    Some(judge) => output
                        .stdout()
                        .map_err(|err| err.to_string())
                        .and_then(|printed| judge(printed).map_err(|err| err.to_string())),
                });
            StoreChecked { name: check.name, command: check.command.to_string(), result }
        })
        .chain(dumps)
        .collect())
}
