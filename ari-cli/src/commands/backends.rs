//! `ari backends`: the registered backends and snapshot sources, with their settings.

use ari_core::engine_api::exit;
use ari_core::plugin;
use ari_core::settings;
use clap::{ArgMatches, Command};

use super::context::Exec;

pub fn cli() -> Command {
    Command::new("backends").about("registered backends and snapshot sources")
}

pub fn exec(_: &ArgMatches) -> Result<Exec, String> {
    Ok(Exec::with_config(|_| backends()))
}

fn backends() -> i32 {
    let mut out = String::from("backends:\n");
    let mut backends: Vec<_> = plugin::backends().collect();
    backends.sort_by_key(|b| b.name());
    for backend in backends {
        out.push_str(&describe(backend.name(), backend.summary()));
    }
    out.push_str("snapshot sources:\n");
    let mut sources: Vec<_> = plugin::sources().collect();
    sources.sort_by_key(|s| s.name());
    if sources.is_empty() {
        out.push_str("  (none)\n");
    }
    for source in sources {
        out.push_str(&describe(source.name(), source.summary()));
    }
    print!("{out}");
    exit::SUCCESS
}

fn describe(name: &str, summary: &str) -> String {
    let own: Vec<&str> =
        settings::registry().values().filter(|def| def.owner == name).map(|def| def.name).collect();
    let settings =
        if own.is_empty() { String::new() } else { format!("\n      settings: {}", own.join(", ")) };
    format!("  {name:<8} {summary}{settings}\n")
}
