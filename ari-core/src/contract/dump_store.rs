//! Where a job's database dumps land (`BackupBackend::dump_store`): a directory on a host of the
//! store, into which the engine streams each dump (to a temporary name, then renamed once every
//! stage and the format's check passed), and the steps that then make them part of the backup
//! (rdiff-backup versioning the directory into a store of its own).

use std::sync::Arc;

use crate::contract::plugin::error::PluginError;
use crate::contract::plugin::store::{HistoryQuery, Restore, RestoreRequest};
use crate::contract::step::{Host, Step};

/// Copies a dump out of one backup of the dumps' own store.
pub(crate) type DumpRestore = Arc<dyn Fn(&RestoreRequest) -> Result<Restore, PluginError> + Send + Sync>;

/// How a dump comes back out of the store (`ari restore --dump`).
#[derive(Clone)]
pub(crate) enum Kept {
    /// As any file of the job's own backups, at this path as the job names paths on its host
    /// (zfs: `/.ari-dumps`, inside each snapshot).
    InBackups(String),
    /// In a store of their own: `history` lists its backups, `restore` copies a dump out of one
    /// (the request's path is `/FILE`).
    Apart { history: HistoryQuery, restore: DumpRestore },
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kept::InBackups(path) => f.debug_tuple("InBackups").field(path).finish(),
            Kept::Apart { history, .. } => {
                f.debug_struct("Apart").field("history", history).finish_non_exhaustive()
            }
        }
    }
}

/// Where a job's dumps land, as its backend says.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DumpStore {
    /// The host that holds the directory.
    pub(crate) host: Host,
    /// The directory (absolute, normalised): the engine makes it when missing, and writes only
    /// inside it, refusing one whose path leads elsewhere (a symbolic link).
    pub(crate) directory: String,
    /// What runs once every dump is in the directory, before any snapshot.
    pub(crate) then: Vec<Step>,
    /// How a dump comes back, when the backend says.
    pub(crate) kept: Option<Kept>,
}

impl DumpStore {
    /// Dumps land in `directory` on `host`, each as a file named after its label.
    pub fn new(host: Host, directory: impl Into<String>) -> DumpStore {
        DumpStore { host, directory: directory.into(), then: Vec::new(), kept: None }
    }

    /// Runs `step` once every dump landed (before any snapshot, in the dump phase): rdiff's
    /// versioning of the directory.
    pub fn then(mut self, step: Step) -> DumpStore {
        self.then.push(step);
        self
    }

    /// Dumps are files of the job's own backups, at `path` as the job names paths on its host
    /// (the directory it writes them into, seen from the source's root): `ari restore --dump`
    /// copies one as it copies any path, from the backups `history` lists.
    pub fn kept_in_backups(mut self, path: impl Into<String>) -> DumpStore {
        self.kept = Some(Kept::InBackups(path.into()));
        self
    }

    /// Dumps are kept in a store of their own, whose backups `history` lists and out of one of
    /// which `restore` copies a dump (the request's path is `/FILE`, FILE the dump's file).
    pub fn kept_apart(
        mut self,
        history: HistoryQuery,
        restore: impl Fn(&RestoreRequest) -> Result<Restore, PluginError> + Send + Sync + 'static,
    ) -> DumpStore {
        self.kept = Some(Kept::Apart { history, restore: Arc::new(restore) });
        self
    }
}
