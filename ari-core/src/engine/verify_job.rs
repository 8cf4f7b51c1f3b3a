//! `ari verify JOB`: a spot check outside the nightly run, under the job's lock, against the
//! live host (no snapshot is made, also for a job with a snapshot source): what changed since
//! the last backup read it is counted, not failed (see `verify/compare.rs`).

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

/// Why `ari verify` gave no verdict, or what failed.
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
    /// The check ran and failed, or could not run.
    #[error(transparent)]
    Failed(VerifyFailure),
}

impl VerifyError {
    /// What the check found, when it ran to a verdict that failed.
    pub fn verdict(&self) -> Option<&Verdict> {
        match self {
            VerifyError::Failed(failure) => failure.verdict(),
            _ => None,
        }
    }
}

/// Checks `plan`'s store against its live host, under the job's lock; the verdict when it
/// passed.
pub fn check_job(plan: &JobPlan, stop: &StopFlags) -> Result<Verdict, VerifyError> {
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
    let since = History::read(state_dir, label).ok().and_then(|history| {
        history.runs.iter().rev().find(|run| run.exit == 0).map(|run| run.started as f64)
    });
    let result = verify::attempt(&sides, &runner, since);
    for warning in session.close() {
        log::warn!("{warning}");
    }
    result.map_err(VerifyError::Failed)
}
