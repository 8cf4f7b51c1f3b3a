//! ari-restic: a restic backend for ari (`backend: restic`), written as a third party would write
//! one: a crate outside ari's workspace that depends on `ari-core` for the plugin API and on
//! `ari-cli` only for its own `ari-restic` binary.
//!
//! The main step is `restic backup` of the job's includes (or of its snapshot source's frozen
//! view), run on the source host; the post step, after a successful backup only, is `restic
//! forget --prune` with the job's keep settings, for this job's snapshots only. Like every
//! plugin it builds steps as data and never runs, prints or cleans up anything itself.

mod backend;
mod settings;
#[cfg(test)]
mod tests;

pub use backend::ResticBackend;
pub use settings::*;
