//! ari-core: the API that ari's backends and snapshot sources build on, and the engine that the
//! `ari` command runs them with.
//!
//! **The plugin API** is what this documentation shows, and what `ari-core`'s version speaks
//! for: the traits [`plugin::BackupBackend`] and [`plugin::SnapshotSource`], the
//! [`plugin::JobContext`] they build steps from, steps as data ([`step`]), settings and their
//! kinds ([`settings`], [`kinds`], [`core_settings`]), the job model ([`job`]), errors
//! ([`ConfigError`], [`plugin::PluginError`]), quoting for tools that start their own ssh
//! ([`quote`], [`ssh`]), a test kit ([`testkit`]), and a [`prelude`] of all a plugin usually
//! needs. It is what ari's own plugins use: what only the engine uses is the crate's own, and
//! what only `ari-cli` also uses is `#[doc(hidden)]`. `cargo xtask test` compares it with the
//! committed listing `ari-core/api.txt`: a change that removes or alters any of it fails until
//! the version is bumped.
//!
//! **The engine** (`src/engine/`: planning and running, the one process spawner, remote
//! sessions, the job runner and the scheduler, the state directory, ledgers, locks, history,
//! reports, metrics, restore, `ari authorize`, the global config) is the crate's own: its items
//! are `pub(crate)` (`unreachable_pub` says so), and ari-cli reaches what it runs through one
//! curated list, the hidden module `engine_api`, which is outside that promise and may change
//! in any release. The contract (`src/contract/`) never names the engine, except the test kit;
//! xtask's `rooms` checks fail otherwise.
//!
//! It must never print (it logs through `log`; only `ari-cli` sets logging up), never parse
//! command lines, and never clean up external state in `Drop`.

#![deny(missing_docs)]
// An engine item ari-cli does not use is the crate's own: `pub` is for the contract and the
// curated list below.
#![warn(unreachable_pub)]

mod contract;
mod engine;

pub use contract::{
    capacity, core_settings, dump_store, error, job, kinds, plugin, prelude, quote, sample, settings, ssh,
    step, testkit,
};
pub use error::ConfigError;

#[doc(hidden)]
pub use inventory;

/// The engine as ari-cli runs it: the one list of what ari-cli uses of it, and no promise (it
/// may change in any release, and `api.txt` does not list it). Everything else of the engine is
/// the crate's own.
#[doc(hidden)]
pub mod engine_api {
    pub mod authorize {
        pub use crate::engine::authorize::{
            check_key_blob, filters, handover_probes, login_shell_query, login_shell_warning, out_of_date,
            read_back, remote_user, HostFilter,
        };
    }
    pub mod capacity {
        pub use crate::engine::capacity::CapacityShown;
    }
    pub mod config {
        pub use crate::engine::config::{GlobalConfig, DEFAULT_CONFIG_PATH};
    }
    pub mod exit {
        pub use crate::engine::exit::{worst, CLEANUP_FAILED, JOB_FAILED, SUCCESS, USAGE};
    }
    pub mod files {
        pub use crate::engine::files::restore_target::RestoreTarget;
        pub use crate::engine::files::{forbid_writes, outside_file_problem, StateDir, StateError};
    }
    pub mod history {
        pub use crate::engine::history::{DumpRecord, History, HistoryError, RunRecord, VerifyRecord};
    }
    pub mod job_run {
        pub use crate::engine::job_run::{
            preview_retention, prune_job, recover_job, run_job, JobOutcome, JobRun, Preview, RecoverOutcome,
            RunWarning, StopFlags,
        };
    }
    pub mod ledger {
        pub use crate::engine::ledger::{Entry, Ledger, Shown};
    }
    pub mod lock {
        pub use crate::engine::lock::{Lock, LockError};
    }
    pub mod log_context {
        pub use crate::engine::log_context::{job_label, set_job_label};
    }
    pub mod metrics {
        pub use crate::engine::metrics::write;
    }
    pub mod pipeline {
        pub use crate::engine::pipeline::JobReport;
    }
    pub mod plan {
        pub use crate::engine::plan::JobPlan;
        pub use crate::engine::plan_json::plan_json;
    }
    pub mod preflight {
        pub use crate::engine::preflight::missing_tools;
    }
    pub mod process {
        pub use crate::engine::process::{humane, ProcessError};
    }
    pub mod recovery {
        pub use crate::engine::recovery::Recovery;
    }
    pub mod report {
        pub use crate::engine::report::{write_run_report, Invalid, RunAllLimits};
    }
    pub mod restore {
        pub use crate::engine::restore::{
            check_path, check_time, dump_source, preview, run, select, shown_time, DumpSource, RestoreError,
            Wanted, TIME_FORMS,
        };
    }
    pub mod runner {
        pub use crate::engine::runner::Runner;
    }
    pub mod schedule {
        pub use crate::engine::schedule::{run, Candidate, Executor};
    }
    pub mod verify {
        pub use crate::engine::verify::{summary, Verdict, VerdictJson};
        pub use crate::engine::verify_job::{check_job, Checked, StoreChecked, VerifyError};
    }
}

#[cfg(test)]
mod parse_props;
