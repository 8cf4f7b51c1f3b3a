//! The settings of the zfs backend, with the original ari-backup's names and defaults;
//! `zfs_keep_min` is new.

use ari_core::kinds;
use ari_core::settings::{Counts, Setting, SettingKind};

use crate::names::{DATASET, RSYNC_DESTINATION, SNAPSHOT_PREFIX, TIMESTAMP_FORMAT};

/// Where rsync writes: `host:/path` (or a local path on the source host).
pub static RSYNC_DST: Setting<Option<String>> = Setting::with_kind(
    "rsync_dst",
    "zfs",
    SettingKind::Text(&RSYNC_DESTINATION),
    None,
    "rsync destination, HOST:/PATH inside the dataset's mount point (required)",
);
/// The host that holds the dataset.
pub static ZFS_HOSTNAME: Setting<Option<String>> = Setting::with_kind(
    "zfs_hostname",
    "zfs",
    SettingKind::Text(&kinds::HOST),
    None,
    "host of the ZFS dataset, where zfs runs (required)",
);
/// The dataset that holds the backup.
pub static DATASET_NAME: Setting<Option<String>> = Setting::with_kind(
    "dataset_name",
    "zfs",
    SettingKind::Text(&DATASET),
    None,
    "ZFS dataset of the backup, POOL/PATH (required)",
);
/// Snapshots older than this many days are destroyed.
pub static SNAPSHOT_EXPIRATION_DAYS: Setting<Option<u32>> = Setting::with_kind(
    "snapshot_expiration_days",
    "zfs",
    SettingKind::Integer { min: 1, max: 1_000_000 },
    None,
    "destroy the dataset's ari snapshots at least this many days old, unless zfs_keep keeps them (this or zfs_keep is required)",
);
/// Calendar retention: how many hours, days, weeks, months and years keep a snapshot.
pub static ZFS_KEEP: Setting<Option<Counts>> = Setting::with_kind(
    "zfs_keep",
    "zfs",
    SettingKind::Counts(&["hourly", "daily", "weekly", "monthly", "yearly"]),
    None,
    "calendar retention: keep the newest snapshot of each of the last N hours, days, ISO weeks, months and years that hold one, e.g. {daily: 14, weekly: 8, monthly: 12} (local time; with snapshot_expiration_days, a snapshot either keeps is kept)",
);
/// rsync's options.
pub static RSYNC_OPTIONS: Setting<Vec<String>> = Setting::with_kind(
    "rsync_options",
    "zfs",
    SettingKind::Words,
    Some("--archive --acls --numeric-ids --delete --inplace"),
    "rsync options: only those that rrsync's write-only server takes and that change neither where data goes nor what runs (docs/jobs.md lists them)",
);
/// The rsync binary, on the source host.
pub static RSYNC_PATH: Setting<String> = Setting::with_kind(
    "rsync_path",
    "zfs",
    SettingKind::Text(&kinds::PROGRAM),
    Some("/usr/bin/rsync"),
    "rsync binary on the source host",
);
/// Only snapshots with this prefix are ever destroyed.
pub static ZFS_SNAPSHOT_PREFIX: Setting<String> = Setting::with_kind(
    "zfs_snapshot_prefix",
    "zfs",
    SettingKind::Text(&SNAPSHOT_PREFIX),
    Some("ari-backup-"),
    "prefix of ari's ZFS snapshot names; only snapshots with it are ever destroyed",
);
/// strftime format of the timestamp in new snapshot names.
pub static ZFS_SNAPSHOT_TIMESTAMP_FORMAT: Setting<String> = Setting::with_kind(
    "zfs_snapshot_timestamp_format",
    "zfs",
    SettingKind::Text(&TIMESTAMP_FORMAT),
    Some("%Y-%m-%d--%H%M"),
    "strftime format of the timestamp in new snapshot names (local time)",
);
/// The newest this many prefixed snapshots are never destroyed.
pub static ZFS_KEEP_MIN: Setting<u32> = Setting::with_kind(
    "zfs_keep_min",
    "zfs",
    SettingKind::Integer { min: 1, max: 1_000_000 },
    Some("1"),
    "never destroy the newest this many prefixed snapshots, however old (at least 1)",
);

/// How old the pool's last scrub may be for `ari verify --full` to pass.
pub static VERIFY_MAX_SCRUB_AGE: Setting<Option<std::time::Duration>> = Setting::new(
    "verify_max_scrub_age",
    "zfs",
    None,
    "ari verify --full fails when the dataset's pool was last scrubbed longer ago than this, e.g. 35d (or never); no limit by default",
);

ari_core::register_settings!(
    RSYNC_DST,
    ZFS_HOSTNAME,
    DATASET_NAME,
    SNAPSHOT_EXPIRATION_DAYS,
    ZFS_KEEP,
    RSYNC_OPTIONS,
    RSYNC_PATH,
    ZFS_SNAPSHOT_PREFIX,
    ZFS_SNAPSHOT_TIMESTAMP_FORMAT,
    ZFS_KEEP_MIN,
    VERIFY_MAX_SCRUB_AGE,
);
