//! ari-zfs: the rsync-to-ZFS backend of ari (`backend: zfs`).
//!
//! The main step runs rsync on the source host into `rsync_dst`, a directory of a ZFS dataset on
//! the ZFS host (`--exclude /.zfs`, and ari's ssh settings through `-e`). After a successful
//! backup, `zfs snapshot DATASET@PREFIX+TIMESTAMP` on the ZFS host keeps the history, and expiry
//! destroys the dataset's own prefixed snapshots older than `snapshot_expiration_days`, never the
//! newest `zfs_keep_min` of them. With `snapshot: lvm`, rsync reads the mounted snapshots. On a
//! remote ZFS host, the host's filter hands rsync's server to `rrsync -wo` (module rrsync).
//!
//! It depends on ari-core only and builds steps as data; it never runs anything itself.

mod backend;
pub mod calendar;
mod capacity;
mod expiry;
pub mod names;
pub mod pool;
pub mod rrsync;
pub mod selection;
mod settings;

pub use backend::ZfsBackend;
pub use expiry::expired_snapshots;
pub use settings::*;
