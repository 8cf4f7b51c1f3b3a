//! ari-rdiff: the rdiff-backup backend of ari (`backend: rdiff`).
//!
//! The main step mirrors the job's includes from the source host (or from the snapshot's mount
//! base) into `backup_store_path/label` with reverse increments; after a successful backup,
//! retention removes increments older than `remove_older_than_timespec`. Remote sources go
//! through `--remote-schema`, so that `ssh_path`, `ssh_port`, `remote_user` and `ssh_options`
//! reach rdiff-backup's own ssh. rdiff-backup 2.1 and later get the new command line
//! (`rdiff-backup backup ...`), older ones the original's (`rdiff_backup_cli`). A backup that
//! does not end normally is regressed (`rdiff-backup regress`) once ari has proven its session
//! gone (the step's repairs). On a remote source, rdiff-backup's server is restricted to the
//! source root, read-only, and runs in a read-only systemd unit without network
//! (`rdiff_backup_server_confinement`, `confine.rs`).
//!
//! It depends on ari-core only, and never runs anything itself except asking rdiff-backup its
//! version through ari-core.

mod argv;
mod backend;
mod capacity;
mod confine;
pub mod options;
mod repair;
mod selection;
mod settings;
pub mod timespec;
mod tracebacks;

pub use backend::RdiffBackend;
pub use settings::*;
