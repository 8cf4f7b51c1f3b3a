//! The plugin contract: what a backend or snapshot source builds on, and what ari-core's
//! version speaks for (every public item is listed in `ari-core/api.txt`). The traits, steps as
//! data, settings and the kinds of their values, the job model and the reading of job files,
//! errors, quoting, how hosts are reached, the test kit and the prelude.
//!
//! *Invariant:* nothing here names the engine (`crate::engine`), except the test kit, which
//! builds a plan the way `ari plan` does. xtask's `contract_never_names_the_engine` checks it.

pub mod capacity;
pub mod core_settings;
pub mod dump_store;
pub(crate) mod end_check;
pub mod error;
pub mod job;
pub mod kinds;
pub mod plugin;
pub mod prelude;
pub mod quote;
pub mod sample;
pub mod settings;
pub mod ssh;
pub mod step;
pub mod testkit;
pub(crate) mod yaml;
