//! Repairs (`Step::repaired_by`): running a step that declares them, so that they are in the
//! ledger with the record of the step's process before that process runs, and running a repair,
//! in the same run or in recovery, only once that process is proven gone.

use std::time::{Duration, Instant};

use crate::contract::step::{Command, Host, Program, Step, REPAIRED_PID};
use crate::engine::ledger::{Entry, Ledger};
use crate::engine::process::{self, ProcessError};
use crate::engine::process_record::{Liveness, ProcessRecord};
use crate::engine::runner::Runner;
use crate::engine::step_run::{
    attempt_step, undo_if_present, wait_to_retry, StepError, StepFailure, StepRecord,
};

/// How long a repair waits for the process of the step it repairs to end: a process that ari's
/// death sent SIGTERM (`PR_SET_PDEATHSIG`) may take a moment to go, and its children with it.
const PROCESS_GRACE: Duration = Duration::from_secs(30);

/// Runs a ledger entry: a repair once the process it waits for is proven gone, then, as every
/// undo, only while its presence query says its thing is still there.
pub(crate) fn repair_or_undo(
    entry: &Entry,
    runner: &Runner,
    records: &mut Vec<StepRecord>,
) -> Result<(), StepError> {
    let mut step = entry.step();
    if let Some(process) = &entry.after {
        wait_until_gone(process, &entry.name, runner)?;
        if let Some(present) = step.present.as_mut() {
            present.query = with_repaired_pid(&present.query, process.pid);
        }
    }
    undo_if_present(&step, runner, records)
}

/// `query` with [`REPAIRED_PID`] set to `pid` before it, when it is local shell text (the only
/// kind that reads it).
fn with_repaired_pid(query: &Command, pid: u32) -> Command {
    match (&query.host, &query.program) {
        (Host::Local, Program::Shell(script)) => {
            Command::shell(Host::Local, format!("{REPAIRED_PID}={pid}; {script}"))
        }
        _ => query.clone(),
    }
}

/// Returns once `process` and its group are proven gone, waiting up to [`PROCESS_GRACE`]; an
/// error when one of them still runs, or when `/proc` cannot tell.
fn wait_until_gone(process: &ProcessRecord, repair: &str, runner: &Runner) -> Result<(), StepError> {
    let liveness = match process.liveness() {
        Ok(Liveness::Running(who)) => {
            log::info!(
                "{repair}: waiting up to {} for {who}, started by the step it repairs, to end",
                process::humane(PROCESS_GRACE)
            );
            process.wait_until_gone(PROCESS_GRACE, || runner.is_cancelled())
        }
        other => other,
    };
    match liveness {
        Ok(Liveness::Gone(why)) => {
            log::debug!("{repair}: the process of the step it repairs is gone: {why}");
            Ok(())
        }
        Ok(Liveness::Running(_)) if runner.is_cancelled() => Err(StepError::Aborted),
        Ok(Liveness::Running(process)) => {
            Err(StepError::StillRunning { process, waited: process::humane(PROCESS_GRACE) })
        }
        Err(source) => Err(StepError::Liveness { source }),
    }
}

/// Runs a step that declares repairs (`Step::repaired_by`). Each try starts its process held
/// at a gate until the repairs are in the ledger with the process's record. A try that ends
/// normally drops them unrun; one that does not (fails, is stopped, times out) runs them at
/// once, each once the process is proven gone and only while its presence query says it is
/// needed, before a retry or the next phase, with the cleanup runner (a first signal does not
/// stop them). A repair that fails stays in the ledger for recovery, is reported as left
/// behind, and ends the retries.
pub(crate) fn run_repaired(
    step: &Step,
    runner: &Runner,
    ledger: &mut Ledger,
    records: &mut Vec<StepRecord>,
    failures: &mut Vec<StepFailure>,
) -> Result<(), StepError> {
    let clock = Instant::now();
    let mut attempt = 0;
    // What the repairs did, reported after the step they repair.
    let mut repairs = Vec::new();
    let result = loop {
        let mut recorded = Vec::new();
        // The ledger (or /proc) failed, so the process never ran.
        let mut not_recorded = false;
        let result = {
            let mut on_start = |pid: u32| -> std::io::Result<()> {
                let recording =
                    ProcessRecord::of(pid).and_then(|process| ledger.record_repairs(&step.repairs, &process));
                match recording {
                    Ok(ids) => {
                        recorded = ids;
                        Ok(())
                    }
                    Err(err) => {
                        not_recorded = true;
                        Err(err)
                    }
                }
            };
            attempt_step(step, runner, Some(&mut on_start))
        };
        let result = match result {
            Err(StepError::Process(ProcessError::Spawn { source, .. })) if not_recorded => {
                Err(StepError::Ledger { source })
            }
            result => result,
        };
        if result.is_ok() {
            if let Err(source) = ledger.remove_all(&recorded) {
                failures.push(StepFailure::new(step, StepError::Ledger { source }));
            }
            break result;
        }
        let repaired = repair_now(&recorded, ledger, &runner.for_cleanup(), &mut repairs, failures);
        match result {
            Err(ref error) if repaired && attempt < step.retry.max_retries && !runner.is_cancelled() => {
                attempt += 1;
                wait_to_retry(step, attempt, error);
            }
            result => break result,
        }
    };
    records.push(StepRecord::of(step, &result, clock.elapsed()));
    records.extend(repairs);
    result.map(|_| ())
}

/// Runs the repairs `ids` of a try that did not end normally, in the order the step declares
/// them; each that succeeds (or finds nothing to repair) leaves the ledger. Whether all did.
fn repair_now(
    ids: &[u64],
    ledger: &mut Ledger,
    finisher: &Runner,
    records: &mut Vec<StepRecord>,
    failures: &mut Vec<StepFailure>,
) -> bool {
    let mut repaired = true;
    // Newest first, as recovery runs them: the order the step declares them in.
    for id in ids.iter().rev() {
        let Some(entry) = ledger.entry(*id).cloned() else { continue };
        let step = entry.step();
        if finisher.is_cancelled() {
            failures.push(StepFailure::new(&step, StepError::Aborted));
            repaired = false;
            continue;
        }
        match repair_or_undo(&entry, finisher, records).map(|()| ledger.remove(*id)) {
            Ok(Ok(())) => {}
            Ok(Err(source)) => {
                failures.push(StepFailure::new(&step, StepError::Ledger { source }));
                repaired = false;
            }
            Err(error) => {
                failures.push(StepFailure::new(&step, error));
                repaired = false;
            }
        }
    }
    repaired
}
