//! The subcommands, one file each, as in cargo's `src/bin/cargo/commands/`: each file owns its
//! clap definition (`cli`), the parsing of its arguments into their types and what they run
//! (`exec`). [`BUILTIN`] lists them; `cli.rs` builds the command line from it and finds the
//! subcommand a line names in it, by name. Adding a subcommand is its file, its `mod` line and
//! its line in [`BUILTIN`].
//!
//! What the subcommands share is in files of its own (`context.rs`, `signals.rs`), which use none
//! of them; a subcommand may use another's helpers (`run_all` presents jobs as `run` does), never
//! this file, so that the uses run one way.

mod authorize;
mod backends;
mod check;
pub(crate) mod completions;
pub(crate) mod context;
mod history;
mod list;
mod plan;
mod prune;
mod recover;
mod restore;
mod run;
mod run_all;
mod schema;
mod settings;
mod signals;
mod status;
mod verify;

use clap::{ArgMatches, Command};

use context::Exec;

/// A subcommand: its clap definition and what its parsed arguments run.
pub struct Builtin {
    /// The clap command, without the setting options (which `cli.rs` adds).
    pub cli: fn() -> Command,
    /// Parses the subcommand's matches into what it runs; an error is a usage error.
    pub exec: fn(&ArgMatches) -> Result<Exec, String>,
}

/// Every subcommand, in the order `ari --help` lists them.
pub const BUILTIN: &[Builtin] = &[
    Builtin { cli: run::cli, exec: run::exec },
    Builtin { cli: run_all::cli, exec: run_all::exec },
    Builtin { cli: list::cli, exec: list::exec },
    Builtin { cli: status::cli, exec: status::exec },
    Builtin { cli: recover::cli, exec: recover::exec },
    Builtin { cli: plan::cli, exec: plan::exec },
    Builtin { cli: check::cli, exec: check::exec },
    Builtin { cli: settings::cli, exec: settings::exec },
    Builtin { cli: backends::cli, exec: backends::exec },
    Builtin { cli: history::cli, exec: history::exec },
    Builtin { cli: prune::cli, exec: prune::exec },
    Builtin { cli: restore::cli, exec: restore::exec },
    Builtin { cli: verify::cli, exec: verify::exec },
    Builtin { cli: authorize::cli, exec: authorize::exec },
    Builtin { cli: schema::cli, exec: schema::exec },
    Builtin { cli: completions::cli, exec: completions::exec },
];

/// The subcommand called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTIN.iter().find(|builtin| (builtin.cli)().get_name() == name)
}
