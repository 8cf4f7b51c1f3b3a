//! The settings of the rdiff backend, with the original ari-backup's names and defaults.

use ari_core::kinds;
use ari_core::settings::{Setting, SettingKind};

use crate::options::RDIFF_OPTIONS;
use crate::timespec::TIMESPEC;

/// Base path of the backups; a job's backup is `backup_store_path/label`.
pub static BACKUP_STORE_PATH: Setting<Option<String>> = Setting::with_kind(
    "backup_store_path",
    "rdiff",
    SettingKind::Text(&kinds::PATH),
    None,
    "base path of the backups; a job's backup is BACKUP_STORE_PATH/LABEL (required)",
);
/// The rdiff-backup binary.
pub static RDIFF_BACKUP_PATH: Setting<String> = Setting::with_kind(
    "rdiff_backup_path",
    "rdiff",
    SettingKind::Text(&kinds::PROGRAM),
    Some("/usr/bin/rdiff-backup"),
    "rdiff-backup binary",
);
/// Whether rdiff-backup's ssh compresses.
pub static SSH_COMPRESSION: Setting<bool> =
    Setting::new("ssh_compression", "rdiff", Some("false"), "compress rdiff-backup's ssh connection");
/// Options for every backup, split like a shell would.
pub static RDIFF_BACKUP_OPTIONS: Setting<Vec<String>> = Setting::with_kind(
    "rdiff_backup_options",
    "rdiff",
    SettingKind::CheckedWords(&RDIFF_OPTIONS),
    Some("--exclude-device-files --exclude-fifos --exclude-sockets --terminal-verbosity 1"),
    "rdiff-backup options of every backup: what it backs up and how it stores it (docs/jobs.md lists those ari passes on)",
);
/// Trim increments older than this after a successful backup.
pub static REMOVE_OLDER_THAN_TIMESPEC: Setting<Option<String>> = Setting::with_kind(
    "remove_older_than_timespec",
    "rdiff",
    SettingKind::Text(&TIMESPEC),
    None,
    "after a successful backup, remove increments older than this rdiff-backup time spec (1M, 2W, 10D)",
);
/// The source root of the mirror.
pub static TOP_LEVEL_SRC_DIR: Setting<String> = Setting::with_kind(
    "top_level_src_dir",
    "rdiff",
    SettingKind::Text(&kinds::PATH),
    Some("/"),
    "source root of the mirror on the source host",
);
/// Which command line of rdiff-backup to use.
pub static RDIFF_BACKUP_CLI: Setting<String> = Setting::with_kind(
    "rdiff_backup_cli",
    "rdiff",
    SettingKind::Choice(&["auto", "new", "legacy"]),
    Some("auto"),
    "rdiff-backup command line: new (2.1+), legacy (the original's), or auto (by version)",
);

ari_core::register_settings!(
    BACKUP_STORE_PATH,
    RDIFF_BACKUP_PATH,
    SSH_COMPRESSION,
    RDIFF_BACKUP_OPTIONS,
    REMOVE_OLDER_THAN_TIMESPEC,
    TOP_LEVEL_SRC_DIR,
    RDIFF_BACKUP_CLI,
);
