//! ari-core: the stable API that ari's backends, snapshot sources and the `ari` command build on.
//!
//! It holds the plugin traits ([`plugin::BackupBackend`], [`plugin::SnapshotSource`]) and their
//! link-time registry, the settings registry and its layering ([`settings`]), the job model and
//! its strict YAML parsing ([`job`]), steps as data ([`step`]), the pipeline that runs them
//! ([`pipeline`]) and the one process spawner ([`process`]).
//!
//! It must never print (it logs through `log`; only `ari-cli` sets logging up), never parse
//! command lines, and never clean up external state in `Drop`.

#![deny(missing_docs)]

pub mod config;
pub mod core_settings;
pub mod error;
pub mod exit;
pub mod fsutil;
pub mod history;
pub mod job;
pub mod job_run;
pub mod kinds;
pub mod ledger;
pub mod lock;
pub mod log_context;
pub mod pipeline;
pub mod plugin;
pub mod process;
pub mod quote;
pub mod report;
pub mod schedule;
pub mod settings;
pub mod step;
pub mod testkit;
pub mod tool_version;
pub mod yaml;

pub use error::ConfigError;

#[doc(hidden)]
pub use inventory;
