//! ari-lvm: the LVM snapshot source of ari (`snapshot: lvm`), which any backend can use.
//!
//! Before the backup it snapshots each volume of the job on the source host, then mounts each
//! snapshot under `snapshot_mount_root/label` where the volume is normally mounted, so the
//! backend reads a crash-consistent copy of the files at the paths the job names. Every step
//! carries its undo (umount, rmdir, lvremove), which the pipeline runs in reverse order whatever
//! happened, retried, each even when one before it failed.
//!
//! It depends on ari-core only and builds steps as data; it never runs anything itself.

mod settings;
mod source;

pub use settings::*;
pub use source::LvmSource;
