//! The settings of the zfs backend, with the original ari-backup's names and defaults;
//! `zfs_keep_min` is new.

use ari_core::settings::{Setting, SettingKind};

/// Where rsync writes: `host:/path` (or a local path on the source host).
pub static RSYNC_DST: Setting<Option<String>> = Setting::new(
    "rsync_dst",
    "zfs",
    None,
    "rsync destination, HOST:/PATH inside the dataset's mount point (required)",
);
/// The host that holds the dataset.
pub static ZFS_HOSTNAME: Setting<Option<String>> =
    Setting::new("zfs_hostname", "zfs", None, "host of the ZFS dataset, where zfs runs (required)");
/// The dataset that holds the backup.
pub static DATASET_NAME: Setting<Option<String>> =
    Setting::new("dataset_name", "zfs", None, "ZFS dataset of the backup, POOL/PATH (required)");
/// Snapshots older than this many days are destroyed.
pub static SNAPSHOT_EXPIRATION_DAYS: Setting<Option<u32>> = Setting::new(
    "snapshot_expiration_days",
    "zfs",
    None,
    "destroy the dataset's ari snapshots at least this many days old (required)",
);
/// rsync's options.
pub static RSYNC_OPTIONS: Setting<Vec<String>> = Setting::with_kind(
    "rsync_options",
    "zfs",
    SettingKind::Words,
    Some("--archive --acls --numeric-ids --delete --inplace"),
    "rsync options",
);
/// The rsync binary, on the source host.
pub static RSYNC_PATH: Setting<String> =
    Setting::new("rsync_path", "zfs", Some("/usr/bin/rsync"), "rsync binary on the source host");
/// Only snapshots with this prefix are ever destroyed.
pub static ZFS_SNAPSHOT_PREFIX: Setting<String> = Setting::new(
    "zfs_snapshot_prefix",
    "zfs",
    Some("ari-backup-"),
    "prefix of ari's ZFS snapshot names; only snapshots with it are ever destroyed",
);
/// strftime format of the timestamp in new snapshot names.
pub static ZFS_SNAPSHOT_TIMESTAMP_FORMAT: Setting<String> = Setting::new(
    "zfs_snapshot_timestamp_format",
    "zfs",
    Some("%Y-%m-%d--%H%M"),
    "strftime format of the timestamp in new snapshot names (local time)",
);
/// The newest this many prefixed snapshots are never destroyed.
pub static ZFS_KEEP_MIN: Setting<u32> = Setting::new(
    "zfs_keep_min",
    "zfs",
    Some("1"),
    "never destroy the newest this many prefixed snapshots, however old (at least 1)",
);

ari_core::register_settings!(
    RSYNC_DST,
    ZFS_HOSTNAME,
    DATASET_NAME,
    SNAPSHOT_EXPIRATION_DAYS,
    RSYNC_OPTIONS,
    RSYNC_PATH,
    ZFS_SNAPSHOT_PREFIX,
    ZFS_SNAPSHOT_TIMESTAMP_FORMAT,
    ZFS_KEEP_MIN,
);
