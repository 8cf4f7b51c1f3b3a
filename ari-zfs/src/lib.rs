//! ari-zfs: the rsync-to-ZFS backend of ari (`backend: zfs`).
//!
//! The main step runs rsync on the source host into `rsync_dst`, a directory of a ZFS dataset on
//! the ZFS host (`--exclude /.zfs`, and ari's ssh settings through `-e`). After a successful
//! backup, `zfs snapshot DATASET@PREFIX+TIMESTAMP` on the ZFS host keeps the history, and expiry
//! (the engine's retention step, judged by module expiry) destroys the dataset's own prefixed
//! snapshots that no rule keeps: calendar retention (`zfs_keep`, module calendar), an age below
//! `snapshot_expiration_days`, and the newest `zfs_keep_min`. With `snapshot: lvm`, rsync reads the mounted snapshots. On a
//! remote ZFS host, the host's filter hands rsync's server to `rrsync -wo` (module rrsync).
//!
//! It depends on ari-core only and builds steps as data; it never runs anything itself.

mod backend;
pub mod calendar;
mod capacity;
pub mod expiry;
pub mod names;
pub mod pool;
pub mod replication;
pub mod rrsync;
pub mod selection;
pub mod send;
mod send_settings;
mod settings;

pub use backend::ZfsBackend;
pub use send::ZfsSendBackend;
pub use send_settings::*;
pub use settings::*;
