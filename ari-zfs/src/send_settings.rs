//! The settings of the zfs-send backend. It also reads the zfs backend's `dataset_name` (the
//! receiving dataset), `zfs_hostname` (its host, the backup server by default), the retention
//! settings and `zfs_snapshot_prefix`, and ari's `bwlimit`.

use ari_core::settings::{Setting, SettingKind};

use crate::names::{DATASET, HOLD_TAG};

/// The dataset whose snapshots are sent, on `source_hostname`.
pub static SOURCE_DATASET: Setting<Option<String>> = Setting::with_kind(
    "source_dataset",
    "zfs-send",
    SettingKind::Text(&DATASET),
    None,
    "ZFS dataset on source_hostname whose snapshots are sent, POOL/PATH (required)",
);
/// Whether a run takes a snapshot of its own, or sends those the sender has.
pub static SNAPSHOTS: Setting<String> = Setting::with_kind(
    "snapshots",
    "zfs-send",
    SettingKind::Choice(&["take", "existing"]),
    Some("existing"),
    "take: snapshot source_dataset (zfs_snapshot_prefix and the time) and send it; existing: send the snapshots with zfs_snapshot_prefix the sender has (those another job made), keeping their names",
);
/// Whether the stream is raw (`zfs send -w`): an encrypted dataset arrives encrypted.
pub static RAW_SEND: Setting<bool> = Setting::new(
    "raw_send",
    "zfs-send",
    Some("false"),
    "send raw (zfs send -w): an encrypted dataset arrives as it is stored, and the receiver never needs its key (nor can it read the data without it)",
);
/// Whether a receiver that diverged may be rolled back.
pub static FORCE_RECEIVE: Setting<bool> = Setting::new(
    "force_receive",
    "zfs-send",
    Some("false"),
    "DESTROYS the receiving dataset's snapshots after the newest one the sender also has (zfs recv -F), where something other than this job wrote to it; by default such a receiver is refused",
);
/// The tag of the hold that keeps the base of the next incremental send on the sender.
pub static HOLD_TAG_SETTING: Setting<Option<String>> = Setting::with_kind(
    "hold_tag",
    "zfs-send",
    SettingKind::Text(&HOLD_TAG),
    None,
    "tag of the hold on the sender's snapshot that the receiver has last (ari-send-LABEL by default); give each receiver of one dataset its own",
);

ari_core::register_settings!(SOURCE_DATASET, SNAPSHOTS, RAW_SEND, FORCE_RECEIVE, HOLD_TAG_SETTING);
