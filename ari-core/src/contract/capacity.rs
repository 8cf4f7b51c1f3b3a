//! How full a job's store is, and how healthy the pool under it, read before a run
//! ([`BackupBackend::capacity`](crate::plugin::BackupBackend::capacity)). A backend names
//! read-only commands fixed by the job and the readers of what they print ([`CapacityQuery`]);
//! the engine runs them before the job's `pre` commands, through the job's connections and
//! limits, and judges the figures ([`Space`], [`Pool`]) against `min_free_space` and
//! `refuse_degraded_pool` itself, so that every backend's store is held to the same rules.
//!
//! A reader gets a command's whole standard output and must refuse what it does not understand
//! (an error, which fails the job before anything runs): a figure it guessed would let a job run
//! into a full or broken store.

use std::fmt;
use std::sync::Arc;

use crate::contract::plugin::error::PluginError;
use crate::contract::step::Command;

/// Reads what a space command printed.
pub(crate) type ReadSpace = Arc<dyn Fn(&str) -> Result<Space, PluginError> + Send + Sync>;
/// Reads what a pool command printed.
pub(crate) type ReadPool = Arc<dyn Fn(&str) -> Result<Pool, PluginError> + Send + Sync>;

/// How to read a job's store's capacity: a command whose output gives the store's size and free
/// space, and, for a store on a pool (ZFS), a command whose output gives the pool's health.
/// Each command must only read, and is fixed by the job (so `ari authorize` allows it exactly).
#[derive(Clone)]
pub struct CapacityQuery {
    /// What the figures are of, for messages and metrics: a path, a dataset.
    pub(crate) store: String,
    /// The command that gives the store's size and free space.
    pub(crate) space: Command,
    /// Reads its standard output.
    pub(crate) read_space: ReadSpace,
    /// The command that gives the pool's health, and its reader.
    pub(crate) pool: Option<PoolQuery>,
}

impl CapacityQuery {
    /// The capacity of `store` (a path, a dataset: what messages and metrics name), read by
    /// `read` from what `command` prints.
    pub fn new(
        store: impl Into<String>,
        command: Command,
        read: impl Fn(&str) -> Result<Space, PluginError> + Send + Sync + 'static,
    ) -> CapacityQuery {
        CapacityQuery { store: store.into(), space: command, read_space: Arc::new(read), pool: None }
    }

    /// The same, with the health of the pool `name` under the store read by `read` from what
    /// `command` prints. When `command` fails (an exported pool), the run records the pool's
    /// state as `UNKNOWN`, so that the metrics do not go on showing its last good state.
    pub fn with_pool(
        mut self,
        name: impl Into<String>,
        command: Command,
        read: impl Fn(&str) -> Result<Pool, PluginError> + Send + Sync + 'static,
    ) -> CapacityQuery {
        self.pool = Some(PoolQuery { name: name.into(), command, read: Arc::new(read) });
        self
    }

    /// What the figures are of.
    #[doc(hidden)]
    pub fn store(&self) -> &str {
        &self.store
    }

    /// The commands in the order they run: the pool's first (a broken pool is what a failing
    /// space query would hide), then the space's.
    #[doc(hidden)]
    pub fn commands(&self) -> Vec<&Command> {
        self.pool.as_ref().map(|pool| &pool.command).into_iter().chain([&self.space]).collect()
    }
}

/// The pool under a store: its name, the command that reads its health and the reader of what
/// that prints.
#[derive(Clone)]
pub(crate) struct PoolQuery {
    pub(crate) name: String,
    pub(crate) command: Command,
    pub(crate) read: ReadPool,
}

impl fmt::Debug for CapacityQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapacityQuery")
            .field("store", &self.store)
            .field("space", &self.space)
            .field("pool", &self.pool.as_ref().map(|pool| &pool.command))
            .finish()
    }
}

/// A store's size and what is free of it for new data, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Space {
    /// Its size: what it could hold (a filesystem's size; a dataset's used and available, which
    /// a quota bounds).
    pub total_bytes: u64,
    /// What new data may still take (for an unprivileged writer: what a filesystem keeps for
    /// root does not count).
    pub available_bytes: u64,
}

impl Space {
    /// `available_bytes` free of `total_bytes`; an error when more is free than there is.
    pub fn new(total_bytes: u64, available_bytes: u64) -> Result<Space, PluginError> {
        if available_bytes > total_bytes {
            return Err(PluginError::new(format!(
                "{available_bytes} bytes free of a store of {total_bytes} bytes, which is no store's"
            )));
        }
        Ok(Space { total_bytes, available_bytes })
    }
}

/// The health of the pool a store lies on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pool {
    /// Its name.
    pub name: String,
    /// Its state, a word of capitals as its tool prints it: `ONLINE`, `DEGRADED`, `FAULTED`,
    /// `UNAVAIL`, `SUSPENDED`, ... The engine runs a job on an `ONLINE` pool, warns of a
    /// `DEGRADED` one, and refuses any other.
    pub state: String,
    /// When its last scrub ended, seconds since the epoch; none when it never finished one.
    pub last_scrub: Option<i64>,
}

impl Pool {
    /// The pool `name` in `state` (a word of capitals: `ONLINE`), last scrubbed at `last_scrub`;
    /// an error for a state that is no such word.
    pub fn new(
        name: impl Into<String>,
        state: impl Into<String>,
        last_scrub: Option<i64>,
    ) -> Result<Pool, PluginError> {
        let state = state.into();
        if state.is_empty() || state.len() > 32 || !state.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(PluginError::new(format!(
                "a pool state that is no word of capitals: `{}`",
                crate::contract::kinds::shown(&state)
            )));
        }
        Ok(Pool { name: name.into(), state, last_scrub })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_checked_for_what_they_are() {
        assert_eq!(Space::new(10, 3), Ok(Space { total_bytes: 10, available_bytes: 3 }));
        assert!(Space::new(0, 0).is_ok());
        assert!(Space::new(3, 10).is_err());
        assert!(Pool::new("tank", "DEGRADED", None).is_ok());
        for state in ["", "online", "ON LINE", "ONLINE\n", "-x"] {
            assert!(Pool::new("tank", state, None).is_err(), "{state:?}");
        }
    }
}
