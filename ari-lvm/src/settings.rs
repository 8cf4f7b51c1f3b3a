//! The settings of the LVM snapshot source, with the original ari-backup's names and defaults.

use ari_core::settings::Setting;

/// Snapshots are mounted under `snapshot_mount_root/label`.
pub static SNAPSHOT_MOUNT_ROOT: Setting<String> = Setting::new(
    "snapshot_mount_root",
    "lvm",
    Some("/tmp"),
    "snapshots are mounted under SNAPSHOT_MOUNT_ROOT/LABEL on the source host",
);
/// A snapshot's LV name is the volume's name plus this suffix.
pub static SNAPSHOT_SUFFIX: Setting<String> = Setting::new(
    "snapshot_suffix",
    "lvm",
    Some("-ari_backup"),
    "a snapshot's LV name is the volume's LV name plus this suffix",
);
/// The size of each snapshot, as `lvcreate -L` takes it.
pub static SNAPSHOT_SIZE: Setting<String> =
    Setting::new("snapshot_size", "lvm", Some("1G"), "size of each snapshot (lvcreate -L), e.g. 1G or 500M");

ari_core::register_settings!(SNAPSHOT_MOUNT_ROOT, SNAPSHOT_SUFFIX, SNAPSHOT_SIZE);
