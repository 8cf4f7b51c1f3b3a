//! ari-command: the command backend of ari (`backend: command`).
//!
//! The main step is a command the job names (`command`), run without a shell on the job's source
//! host (over ssh when it is remote) or on the backup server (`command_host: local`). An admin
//! wraps any backup tool (restic, borg, pg_dump to a file, ...) in ari's snapshots, hooks, locks,
//! scheduling and reports. `{snapshot_root}` in the command becomes where the job's snapshot
//! source shows the frozen files, and `{label}` the job's label. There are no post steps.
//!
//! It is also the smallest example of a backend for third parties: it depends on ari-core only,
//! registers itself and its settings with ari-core's macros, builds its one step as data with pure
//! functions, and never runs, prints or cleans up anything itself.

mod argv;
mod backend;
mod settings;

pub use backend::CommandBackend;
pub use settings::*;
