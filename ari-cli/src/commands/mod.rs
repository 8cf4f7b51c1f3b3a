//! The subcommands, and what they share: the global config, logging, and reporting errors.

mod authorize;
mod backends;
mod check;
mod history;
mod list;
mod plan;
mod recover;
mod restore;
mod run;
mod run_all;
mod settings;
mod signals;
mod status;

use std::path::PathBuf;

use ari_core::core_settings::{DEBUG, DRY_RUN, JOBS_DIR, STATE_DIR, STDERR_LOGGING};
use ari_core::engine::config::GlobalConfig;
use ari_core::engine::exit;
use ari_core::settings::{Layer, Settings};

pub use authorize::Output as AuthorizeOutput;

use crate::cli::{Invocation, Subcommand};
use crate::logging::{self, LogSettings};

/// What every subcommand starts from.
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

/// Runs the subcommand and returns the exit code.
pub fn dispatch(invocation: Invocation) -> i32 {
    let Invocation { command, config, config_explicit, settings: command_line } = invocation;
    // Generated from ari itself: they need no config. A closed pipe (`... | head`) is no error.
    let generated = match command {
        Subcommand::Completions { shell } => Some(crate::manual::completion(shell)),
        Subcommand::Schema { which } => Some(crate::schema::rendered(which)),
        _ => None,
    };
    if let Some(text) = generated {
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(text.as_bytes());
        return exit::SUCCESS;
    }
    let loaded = GlobalConfig::load(&config, config_explicit);
    let config_layer = loaded.as_ref().map(|c| c.layer.clone()).unwrap_or_else(|_| Layer::default());
    let base = Settings::resolve([&config_layer, &command_line]);
    logging::init(&LogSettings {
        debug: base.get(&DEBUG),
        dry_run: base.get(&DRY_RUN),
        stderr_logging: base.get(&STDERR_LOGGING),
    });
    let config = match loaded {
        Ok(config) => config,
        Err(err) => {
            log::error!("{err}");
            return exit::USAGE;
        }
    };
    let context = Context { config, command_line, base };
    match command {
        Subcommand::Run { jobs, wait } => run::run(&context, &jobs, wait),
        Subcommand::Recover { jobs, action } => recover::recover(&context, &jobs, action),
        Subcommand::RunAll { wait } => run_all::run_all(&context, wait),
        Subcommand::List => list::list(&context),
        Subcommand::Status => status::status(&context),
        Subcommand::Plan { jobs, json } => plan::plan(&context, &jobs, json),
        Subcommand::Check { jobs, connect } => check::check(&context, &jobs, connect),
        Subcommand::Settings { job } => settings::settings(&context, job.as_deref()),
        Subcommand::Backends => backends::backends(),
        Subcommand::History { job, json } => history::history(&context, &job, json),
        Subcommand::Authorize { jobs, host, key, output } => {
            authorize::authorize(&context, &jobs, host.as_deref(), key.as_deref(), output)
        }
        Subcommand::Restore { job, path, at, to, force } => {
            restore::restore(&context, &restore::Request { job, path, at, to, force })
        }
        // Printed above, before the config is read.
        Subcommand::Completions { .. } | Subcommand::Schema { .. } => exit::SUCCESS,
    }
}

/// Logs each error once and returns the usage exit code.
pub fn usage_errors(errors: &[String]) -> i32 {
    for err in errors {
        log::error!("{err}");
    }
    log::error!("nothing ran: fix the error{} above first", if errors.len() == 1 { "" } else { "s" });
    exit::USAGE
}

pub use ari_core::error::chain;
