//! ari-core: the API that ari's backends and snapshot sources build on, and the engine that the
//! `ari` command runs them with.
//!
//! **The plugin API** is what this documentation shows, and what `ari-core`'s version speaks
//! for: the traits [`plugin::BackupBackend`] and [`plugin::SnapshotSource`], the
//! [`plugin::JobContext`] they build steps from, steps as data ([`step`]), settings and their
//! kinds ([`settings`], [`kinds`], [`core_settings`]), the job model ([`job`]), errors
//! ([`ConfigError`]), quoting for tools that start their own ssh ([`quote`], [`ssh`]), a test kit
//! ([`testkit`]), and a [`prelude`] of all a plugin usually needs. `cargo xtask test` compares
//! it with the committed listing `ari-core/api.txt`: a change that removes or alters any of it
//! fails until the version is bumped.
//!
//! **The engine** (the pipeline that runs plans, the one process spawner, the job runner and the
//! scheduler, the state directory, ledgers, locks, history and reports, config and YAML reading)
//! is public so that `ari-cli` can use it, but hidden from this documentation and outside that
//! promise: it may change in any release.
//!
//! It must never print (it logs through `log`; only `ari-cli` sets logging up), never parse
//! command lines, and never clean up external state in `Drop`.

#![deny(missing_docs)]

mod contract;
#[doc(hidden)]
pub mod engine;

pub use contract::{core_settings, error, job, kinds, plugin, prelude, quote, settings, ssh, step, testkit};
pub use error::ConfigError;

#[doc(hidden)]
pub use inventory;

#[cfg(test)]
mod parse_props;
