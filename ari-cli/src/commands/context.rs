//! What every subcommand shares: the [`Context`] it runs in (the global config and the settings
//! before any job), the [`Exec`] its parsed arguments become, the `JOB...` argument, and how it
//! reports usage errors. It uses no other file of the crate, so that every subcommand can use it
//! and the list of subcommands can use them all without a circle.

use std::path::PathBuf;

use ari_core::core_settings::{JOBS_DIR, STATE_DIR};
use ari_core::engine_api::config::GlobalConfig;
use ari_core::engine_api::exit;
use ari_core::settings::{Layer, Settings};
use clap::{Arg, Command};

/// What every subcommand that reads the global config starts from.
pub struct Context {
    /// The global config.
    pub config: GlobalConfig,
    /// Settings from the command line.
    pub command_line: Layer,
    /// Settings before any job: defaults, config, command line.
    pub base: Settings,
}

impl Context {
    /// `jobs_dir` as the config and command line set it.
    pub fn jobs_dir(&self) -> PathBuf {
        PathBuf::from(self.base.get(&JOBS_DIR))
    }

    /// `state_dir` as the config and command line set it.
    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(self.base.get(&STATE_DIR))
    }
}

/// Makes ari's full clap command: every subcommand, each with the setting options.
pub type FullCommand = fn() -> Command;

/// What a subcommand's arguments, once parsed, run.
pub enum Exec {
    /// Runs once the global config is loaded and logging is set up; returns the exit code.
    WithConfig(Box<dyn FnOnce(&Context) -> i32>),
    /// Text that ari generates from itself (completions, schemas), given the maker of its full
    /// clap command: printed before any config is read, since it needs none.
    Generated(Box<dyn FnOnce(FullCommand) -> String>),
}

impl Exec {
    /// A subcommand that runs with the global config.
    pub fn with_config(run: impl FnOnce(&Context) -> i32 + 'static) -> Exec {
        Exec::WithConfig(Box::new(run))
    }

    /// A subcommand that prints what ari generates from itself.
    pub fn generated(render: impl FnOnce(FullCommand) -> String + 'static) -> Exec {
        Exec::Generated(Box::new(render))
    }
}

/// The `JOB...` argument: one or more (`required`), or any number.
pub fn jobs_arg(required: bool) -> Arg {
    Arg::new("jobs")
        .value_name("JOB")
        .num_args(if required { 1.. } else { 0.. })
        .required(required)
        .help("a job file, or the name of one in jobs_dir (file name with or without .yaml/.yml, or label)")
}

/// The job names of a subcommand's `JOB...` argument.
pub fn jobs_of(matches: &clap::ArgMatches) -> Vec<String> {
    matches.get_many::<String>("jobs").into_iter().flatten().cloned().collect()
}

/// Logs each error once and returns the usage exit code.
pub fn usage_errors(errors: &[String]) -> i32 {
    for err in errors {
        log::error!("{err}");
    }
    log::error!("nothing ran: fix the error{} above first", if errors.len() == 1 { "" } else { "s" });
    exit::USAGE
}
