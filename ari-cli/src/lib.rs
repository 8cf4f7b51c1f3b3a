//! ari-cli: the `ari` command. It parses the command line, loads the global config and the jobs,
//! maps them to the registered plugins, runs them through ari-core's pipeline, prints, and sets
//! the exit code.
//!
//! It links every in-tree plugin (`use ari_rdiff as _;`: a crate the binary never names would be
//! dropped by the linker, and its registrations with it). A third party builds their own `ari`
//! in three lines: depend on `ari-cli` and their plugin crate, `use my_backend as _;`, and call
//! [`main`]. This is the only crate that sets up logging or prints.

mod cli;
mod commands;
mod dispatch;
pub mod docs;
mod job_keys;
mod jobs;
mod logging;
pub mod manual;
mod ping;
#[cfg(test)]
mod plugin_invariants;
pub mod schema;

use ari_command as _;
use ari_lvm as _;

/// The backend of a job that names none: rdiff-backup, as in the original, whose main use it was.
pub const DEFAULT_BACKEND: &str = "rdiff";

use ari_rdiff as _;
use ari_zfs as _;

/// Runs `ari` with the process's arguments and exits with its exit code.
pub fn main() -> ! {
    let code = run(std::env::args_os().collect());
    std::process::exit(code)
}

/// Runs `ari` with `args` (the first is the program name) and returns the exit code.
pub fn run(args: Vec<std::ffi::OsString>) -> i32 {
    let invocation = match cli::parse(args) {
        Ok(invocation) => invocation,
        Err(code) => return code,
    };
    dispatch::dispatch(invocation)
}
