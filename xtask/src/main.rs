//! `cargo xtask`: the project's tooling entry point. It installs the system
//! tools the tests need (`deps`), runs the one full test command that CI and
//! the README use (`test`), shows a real backup to a new user (`demo`),
//! measures ari against bare rdiff-backup (`bench`) and proves the example
//! third-party backend (`example`). This file only parses the command line
//! and dispatches; each command lives in its own module.

// xtask is developer tooling, not production code: the workspace rule that
// every process goes through ari_core::process exists to keep ari's own
// spawning auditable, and does not apply to a build helper that runs cargo,
// apt-get and the freshly built `ari` binary.
#![allow(clippy::disallowed_methods)]
// Two small libc calls need unsafe: geteuid() to know whether we may run
// apt-get ourselves, and wait4() to read a benchmarked child's peak RSS,
// which std::process does not expose.
#![allow(unsafe_code)]

mod bench;
mod checks;
mod deb;
mod demo;
mod deps;
mod dist;
mod example;
mod shell;
mod test;
mod vm;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Project tooling for ari (run as `cargo xtask <command>`).
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install the system tools the tests need (rdiff-backup, rsync, ssh).
    Deps,
    /// Run the whole test suite: deps, fmt, clippy, build, tests, doctests.
    Test(test::TestArgs),
    /// Make a real backup of a small sample tree and show the result.
    Demo,
    /// Time ari against bare rdiff-backup and measure a dry run.
    Bench(bench::BenchArgs),
    /// The qemu guest with real LVM and ZFS: build its image, boot it, run the scenarios.
    Vm(vm::VmArgs),
    /// Build the example restic backend (examples/ari-restic), test it, and back up with it.
    Example,
    /// Write the man pages and shell completions, generated from ari, to target/dist.
    Dist,
    /// Build the Debian package (target/deb/ari_VERSION_amd64.deb) and check it with lintian.
    Deb,
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Deps => {
            shell::header("system tools for the tests");
            deps::ensure()
        }
        Command::Test(args) => test::run(&args),
        Command::Demo => demo::run(),
        Command::Bench(args) => bench::run(&args),
        Command::Vm(args) => vm::run(&args),
        Command::Example => example::build_and_unit_test().and_then(|()| example::scenario()),
        Command::Dist => dist::write().map(|dir| println!("written to {}", dir.display())),
        Command::Deb => deb::build().map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The error chain says what failed; a backtrace of xtask itself
            // (which anyhow adds when RUST_BACKTRACE is set, as CI often does)
            // would only bury that.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
