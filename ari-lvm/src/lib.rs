//! ari-lvm: the LVM snapshot source of ari (`snapshot: lvm`), which any backend can use.
//!
//! Before the backup it snapshots each volume of the job on the source host, then mounts each
//! snapshot under `snapshot_mount_root/label` where the volume is normally mounted, so the
//! backend reads a crash-consistent copy of the files at the paths the job names. Every step
//! carries its undo (umount, rmdir, lvremove), which the pipeline runs in reverse order whatever
//! happened, retried, each even when one before it failed. Every `mkdir`, `mount`, `umount` and
//! `rmdir` first proves, on the host, that its path leads where its text says (`mount_path`),
//! and a volume's `mount_options` may only restrict the mount (`options`).
//!
//! It depends on ari-core only and builds steps as data; it never runs anything itself.

mod mount_path;
mod options;
mod settings;
mod source;

pub use options::{check_mount_options, ALLOWED as ALLOWED_MOUNT_OPTIONS, MOUNT_OPTIONS};
pub use settings::*;
pub use source::LvmSource;
