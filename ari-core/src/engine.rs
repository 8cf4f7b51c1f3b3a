//! The engine: what the `ari` command runs plans with. Planning and running (`pipeline`,
//! `job_run`, `schedule`), processes and remote sessions (`process`, `remote`), the state
//! directory and every other file ari writes (`files`), ledgers, locks, history, reports, metrics, restore, `ari authorize`,
//! the global config and exit codes.
//!
//! None of it is a promise: its items are the crate's own, and ari-cli reaches what it needs
//! through the one curated list in `lib.rs` (`ari_core::engine_api`).

pub(crate) mod authorize;
pub(crate) mod capacity;
pub(crate) mod config;
pub(crate) mod dumps;
pub(crate) mod exit;
pub(crate) mod files;
pub(crate) mod history;
pub(crate) mod job_run;
pub(crate) mod ledger;
pub(crate) mod lock;
pub(crate) mod log_context;
pub(crate) mod metrics;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub(crate) mod plan_json;
pub(crate) mod preflight;
pub(crate) mod process;
pub(crate) mod process_record;
pub(crate) mod recovery;
pub(crate) mod remote;
mod repair;
pub(crate) mod report;
pub(crate) mod restore;
pub(crate) mod retention;
pub(crate) mod runner;
pub(crate) mod schedule;
pub(crate) mod step_run;
pub(crate) mod tool_version;
pub(crate) mod verify;
pub(crate) mod verify_job;
