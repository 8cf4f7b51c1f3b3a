//! What a job's store holds and how it comes back: the backups `ari history` lists
//! ([`HistoryQuery`], [`StoredBackup`]) and how a backend copies a path out of one
//! ([`RestoreRequest`], [`Restore`]).

use std::sync::Arc;

use super::error::PluginError;

/// One backup the store holds, as `ari history` lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredBackup {
    /// When it was made, seconds since the epoch.
    pub(crate) time: i64,
    /// Its name in the store (an rdiff-backup increment's time, a ZFS snapshot's name).
    pub(crate) name: String,
    /// The space it takes, in bytes, where the tool says.
    pub(crate) size: Option<u64>,
}

impl StoredBackup {
    /// A backup made at `time`, named `name`, of `size` bytes where known.
    pub fn new(time: i64, name: impl Into<String>, size: Option<u64>) -> StoredBackup {
        StoredBackup { time, name: name.into(), size }
    }

    /// Its name in the store, as [`BackupBackend::history`](super::BackupBackend::history) listed it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When it was made, seconds since the epoch.
    #[doc(hidden)]
    pub fn time(&self) -> i64 {
        self.time
    }

    /// The space it takes, in bytes, where the tool says.
    #[doc(hidden)]
    pub fn size(&self) -> Option<u64> {
        self.size
    }
}

/// How to list the backups a job's store holds: a read-only command, and how to read what it
/// prints (the error says what in the output was not understood).
#[derive(Debug, Clone)]
pub struct HistoryQuery {
    /// The command, on whichever host holds the store.
    pub(crate) command: crate::contract::step::Command,
    /// Reads its standard output.
    pub(crate) parse: fn(&str) -> Result<Vec<StoredBackup>, PluginError>,
    /// A path on the backup server that exists once the store holds a backup (rdiff-backup's
    /// `rdiff-backup-data`): without it the store holds none yet, and the command (whose tool
    /// would call that an error) does not run. None: the command says.
    pub(crate) marker: Option<String>,
}

impl HistoryQuery {
    /// Lists the backups with `command`, read by `parse`.
    pub fn new(
        command: crate::contract::step::Command,
        parse: fn(&str) -> Result<Vec<StoredBackup>, PluginError>,
    ) -> HistoryQuery {
        HistoryQuery { command, parse, marker: None }
    }

    /// The same, the store holding no backup yet while `path` (on the backup server) is not
    /// there.
    pub fn marked_by(mut self, path: impl Into<String>) -> HistoryQuery {
        self.marker = Some(path.into());
        self
    }

    /// Whether the store shows that it holds no backup yet: its marker is not there.
    #[doc(hidden)]
    pub fn holds_none_yet(&self) -> bool {
        self.marker.as_ref().is_some_and(|marker| std::fs::symlink_metadata(marker).is_err())
    }

    /// The command that lists the backups.
    #[doc(hidden)]
    pub fn command(&self) -> &crate::contract::step::Command {
        &self.command
    }

    /// The backups the command's standard output lists.
    #[doc(hidden)]
    pub fn read(&self, stdout: &str) -> Result<Vec<StoredBackup>, PluginError> {
        (self.parse)(stdout)
    }
}

/// What `ari restore` asks a backend for: one path of the job's source as one stored backup
/// holds it, copied to a new local path on the backup server. The engine checked every part
/// before the backend sees it: `path` is absolute and normalised, within what the job's include
/// and exclude back up; `backup` is one that [`BackupBackend::history`](super::BackupBackend::history) listed. `target` does not
/// exist; its parent is a fresh private directory of ari's, reached through a descriptor ari
/// holds (`/proc/PID/fd/N/copy/NAME`), and its last part is `path`'s (DIR's own for `/`). The
/// copy must make exactly `target`; ari moves it to DIR/PATH afterwards, replacing what is there
/// only with `--force`, and a copy that makes nothing means that the backup does not hold
/// `path`.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    /// The path as the job names it: the path on the source host, even when the job reads it
    /// from a snapshot.
    pub(crate) path: String,
    /// The backup to copy it out of.
    pub(crate) backup: StoredBackup,
    /// The local path to create.
    pub(crate) target: String,
}

impl RestoreRequest {
    /// The path as the job names it: the path on the source host, even when the job reads it
    /// from a snapshot.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The backup to copy it out of.
    pub fn backup(&self) -> &StoredBackup {
        &self.backup
    }

    /// The local path to create.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// `path` as `backup` holds it, copied to `target`.
    #[doc(hidden)]
    pub fn new(path: impl Into<String>, backup: StoredBackup, target: impl Into<String>) -> Self {
        RestoreRequest { path: path.into(), backup, target: target.into() }
    }
}

/// Builds a restore's copy from what its query printed.
pub(crate) type CopyCommand =
    Arc<dyn Fn(&str) -> Result<crate::contract::step::Command, PluginError> + Send + Sync>;

/// How a backend copies a path out of its store: the copy, built from what an optional
/// read-only query printed (the dataset's mount point); the error says what in that output was
/// not understood.
#[derive(Clone)]
pub struct Restore {
    /// Asked first, on whichever host holds the store; its standard output goes to `copy`.
    pub(crate) query: Option<crate::contract::step::Command>,
    /// The copy itself.
    pub(crate) copy: CopyCommand,
    /// Exit statuses of the copy that, with the output that says so, mean that the backup does
    /// not hold the path (as a copy that exits 0 and makes nothing does).
    pub(crate) absent: Vec<crate::contract::step::Tolerated>,
}

impl Restore {
    /// A restore that is one command.
    pub fn new(copy: crate::contract::step::Command) -> Restore {
        Restore { query: None, copy: Arc::new(move |_| Ok(copy.clone())), absent: Vec::new() }
    }

    /// A restore whose command is built from what `query` prints.
    pub fn after(
        query: crate::contract::step::Command,
        copy: impl Fn(&str) -> Result<crate::contract::step::Command, PluginError> + Send + Sync + 'static,
    ) -> Restore {
        Restore { query: Some(query), copy: Arc::new(copy), absent: Vec::new() }
    }

    /// The same restore, reading exit status `code` of the copy, when its standard error holds
    /// `output`, as the backup not holding the path (rsync's "No such file or directory" for its
    /// source): `ari restore` then exits 2, as for a copy that makes nothing.
    pub fn absent_when(mut self, code: i32, output: &'static str) -> Restore {
        self.absent.push(crate::contract::step::Tolerated::new(code, output));
        self
    }
}

impl std::fmt::Debug for Restore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restore").field("query", &self.query).finish_non_exhaustive()
    }
}
