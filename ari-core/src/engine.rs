//! The engine: what the `ari` command runs plans with. Planning and running (`pipeline`,
//! `job_run`, `schedule`), processes and remote sessions (`process`, `remote`), the state
//! directory and every other file ari writes (`files`), ledgers, locks, history, reports, metrics, restore, `ari authorize`,
//! the global config and exit codes.
//!
//! None of it is a promise: its items are the crate's own, and ari-cli reaches what it needs
//! through the one curated list in `lib.rs` (`ari_core::engine_api`).

pub mod authorize;
pub mod config;
pub mod exit;
pub mod files;
pub mod history;
pub mod job_run;
pub mod ledger;
pub mod lock;
pub mod log_context;
pub mod metrics;
pub mod pipeline;
pub mod plan;
pub mod preflight;
pub mod process;
pub mod process_record;
pub mod recovery;
pub mod remote;
mod repair;
pub mod report;
pub mod restore;
pub mod runner;
pub mod schedule;
pub mod step_run;
pub mod tool_version;
