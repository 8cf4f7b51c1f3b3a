//! Recovery: replaying a crash ledger, newest entry first, each undo only while its thing is
//! still there, and nothing older under a repair whose process still runs.

use crate::engine::ledger::Ledger;
use crate::engine::runner::Runner;
use crate::engine::step_run::{StepError, StepFailure};

/// What recovering a ledger did.
#[derive(Debug)]
pub struct Recovery {
    /// Entries undone (or found already gone).
    pub undone: Vec<String>,
    /// Entries whose undo failed; they stay in the ledger.
    pub failures: Vec<StepFailure>,
}

/// Undoes what a ledger records, newest first, each only while its thing is still there;
/// undone entries leave the ledger, failed ones stay for the next try.
pub(crate) fn recover(ledger: &mut Ledger, runner: &Runner) -> Recovery {
    let mut recovery = Recovery { undone: Vec::new(), failures: Vec::new() };
    let mut records = Vec::new();
    let entries: Vec<_> = ledger.entries().to_vec();
    // The process of a repair that still runs: the crashed run is not over, so nothing older
    // than it is undone under it (a snapshot it still reads).
    let mut running: Option<String> = None;
    for entry in entries.iter().rev() {
        let step = entry.step();
        if runner.is_cancelled() {
            recovery.failures.push(StepFailure::new(&step, StepError::Aborted));
            continue;
        }
        if let Some(process) = &running {
            recovery.failures.push(StepFailure::new(&step, StepError::HeldBack { process: process.clone() }));
            continue;
        }
        match crate::engine::repair::repair_or_undo(entry, runner, &mut records) {
            Ok(()) => match ledger.remove(entry.id) {
                Ok(()) => recovery.undone.push(step.name.clone()),
                Err(source) => recovery.failures.push(StepFailure::new(&step, StepError::Ledger { source })),
            },
            Err(error) => {
                if let StepError::StillRunning { process, .. } = &error {
                    running = Some(process.clone());
                }
                recovery.failures.push(StepFailure::new(&step, error));
            }
        }
    }
    recovery
}
