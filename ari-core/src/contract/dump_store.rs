//! Where a job's database dumps land (`BackupBackend::dump_store`): a directory on a host of the
//! store, into which the engine streams each dump (to a temporary name, then renamed once every
//! stage and the format's check passed), and the steps that then make them part of the backup
//! (rdiff-backup versioning the directory into a store of its own).

use crate::contract::step::{Host, Step};

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
}

impl DumpStore {
    /// Dumps land in `directory` on `host`, each as a file named after its label.
    pub fn new(host: Host, directory: impl Into<String>) -> DumpStore {
        DumpStore { host, directory: directory.into(), then: Vec::new() }
    }

    /// Runs `step` once every dump landed (before any snapshot, in the dump phase): rdiff's
    /// versioning of the directory.
    pub fn then(mut self, step: Step) -> DumpStore {
        self.then.push(step);
        self
    }
}
