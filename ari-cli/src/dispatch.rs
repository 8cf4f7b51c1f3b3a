//! Runs what the command line asked for: prints what ari generates from itself (completions,
//! schemas) without reading any config, or loads the global config, sets up logging, and runs
//! the subcommand in the [`Context`] they make.

use std::io::Write as _;

use ari_core::core_settings::{DEBUG, DRY_RUN, STDERR_LOGGING};
use ari_core::engine_api::config::GlobalConfig;
use ari_core::engine_api::exit;
use ari_core::settings::{Layer, Settings};

use crate::cli::{self, Invocation};
use crate::commands::context::{Context, Exec};
use crate::logging::{self, LogSettings};

/// Runs the subcommand and returns the exit code.
pub fn dispatch(invocation: Invocation) -> i32 {
    let Invocation { exec, config, config_explicit, settings: command_line } = invocation;
    let run = match exec {
        Exec::WithConfig(run) => run,
        // Generated from ari itself: they need no config. A closed pipe (`... | head`) is no error.
        Exec::Generated(render) => {
            let _ = std::io::stdout().write_all(render(cli::full_command).as_bytes());
            return exit::SUCCESS;
        }
    };
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
    run(&Context { config, command_line, base })
}
