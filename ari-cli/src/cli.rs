//! The command line: the common options, the subcommands of `commands::BUILTIN` (each defined
//! in its own file), and `--NAME VALUE` for every registered setting (snake_case or kebab-case),
//! before the subcommand or after its job, as in `./job --remote_user backup_user` run through
//! the job's `#!/usr/bin/env -S ari run` line. A line parses into an [`Invocation`]: the
//! command-line settings, the config file, and what the subcommand's arguments run.

use std::ffi::OsString;
use std::path::PathBuf;

use ari_core::engine_api::config::DEFAULT_CONFIG_PATH;
use ari_core::settings::{self, Layer, SettingKind, Source};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::commands::context::Exec;
use crate::commands::{self, BUILTIN};

/// What the user asked for.
pub struct Invocation {
    /// What the subcommand's arguments run.
    pub exec: Exec,
    /// The global config file.
    pub config: PathBuf,
    /// Whether the user named it (then it must exist).
    pub config_explicit: bool,
    /// Settings from the command line.
    pub settings: Layer,
}

/// The clap command, with an argument for every registered setting on it and on every
/// subcommand: what completions complete.
pub fn full_command() -> Command {
    command_for(None)
}

/// The clap command with the setting options on the top level only: what ari(1) shows once.
pub fn command_with_settings_on_top() -> Command {
    command_for(Some(""))
}

#[cfg(test)]
fn command() -> Command {
    full_command()
}

/// The clap command, with the setting options on the top level and on `selected` (every
/// subcommand when `None`). Settings are not `global`: clap copies global options into every
/// subcommand, which for some forty settings and nine subcommands is most of ari's start-up
/// time; a command line names one subcommand, and only it needs them.
fn command_for(selected: Option<&str>) -> Command {
    let mut command = Command::new("ari")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Pulls backups of many hosts to one backup server over ssh")
        .after_help("Settings are layered: default < global config < job file < command line.\nExit codes: 0 success, 1 a job failed, 2 usage/config/missing tool (nothing ran), 3 cleanup failed (something may be left behind).")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .arg(
            Arg::new("config")
                .long("config")
                .value_name("PATH")
                .env("ARI_CONFIG")
                .global(true)
                .value_parser(clap::value_parser!(PathBuf))
                .help(format!("global config file [default: {DEFAULT_CONFIG_PATH}]")),
        )
        .arg(
            Arg::new("set")
                .long("set")
                .value_name("NAME=VALUE")
                .action(ArgAction::Append)
                .global(true)
                .help("set any setting, as in a job file"),
        )
        .subcommands(BUILTIN.iter().map(|builtin| (builtin.cli)()));
    command = command.args(setting_args());
    command.mut_subcommands(|sub| {
        if selected.is_none_or(|name| sub.get_name() == name) {
            sub.args(setting_args())
        } else {
            sub
        }
    })
}

/// An option for every registered setting: `--NAME VALUE`, `--NAME=VALUE`, kebab-case too.
fn setting_args() -> Vec<Arg> {
    let mut args = Vec::new();
    for def in settings::registry().values() {
        let default = def.default.map(|d| format!(" [default: {d}]")).unwrap_or_default();
        let mut arg = Arg::new(def.name)
            .long(def.name)
            .help_heading("Settings (also in the config and job files)")
            .help(format!("{}{default} ({})", def.help, def.owner));
        let kebab = def.name.replace('_', "-");
        if kebab != def.name {
            arg = arg.alias(kebab);
        }
        arg = match def.kind {
            SettingKind::Bool => {
                arg.value_name("BOOL").num_args(0..=1).require_equals(true).default_missing_value("true")
            }
            SettingKind::Choice(choices) => arg.value_name(choices.join("|")).num_args(1),
            // The bound is in the help.
            SettingKind::DurationAtMost(_) => arg.value_name("DURATION").num_args(1),
            _ => arg.value_name(def.kind.describe().to_uppercase().replace([' ', '-'], "_")).num_args(1),
        };
        args.push(arg);
    }
    args
}

/// Parses the command line; on a usage error, prints it and returns the exit code.
pub fn parse(args: Vec<OsString>) -> Result<Invocation, i32> {
    let matches = command_for(Some(&selected(&args))).try_get_matches_from(args).map_err(|err| {
        let _ = err.print();
        err.exit_code()
    })?;
    from_matches(&matches).map_err(|message| {
        eprintln!("ari [ERROR] command line: {message}");
        ari_core::engine_api::exit::USAGE
    })
}

/// The subcommand that `args` runs (or asks help for): the first word that names one; empty
/// when none does.
fn selected(args: &[OsString]) -> String {
    let names: Vec<String> = BUILTIN.iter().map(|builtin| (builtin.cli)().get_name().to_string()).collect();
    let named = |arg: &&str| names.iter().any(|name| name == arg);
    args.iter().skip(1).filter_map(|arg| arg.to_str()).find(named).unwrap_or("").to_string()
}

/// `ari run` with settings in every spelling after its job.
#[cfg(test)]
pub(crate) const RUN_WITH_SETTINGS: &[&str] = &[
    "run",
    "./job",
    "--remote_user",
    "backup_user",
    "--ssh-port=2222",
    "--dry-run",
    "--set",
    "ssh_options=-F /x",
];

/// The matches of the subcommand of `args` (without the program name), parsed as [`parse`] does:
/// for the subcommands' tests of their own arguments.
#[cfg(test)]
pub(crate) fn subcommand_matches(args: &[&str]) -> ArgMatches {
    let argv: Vec<OsString> =
        std::iter::once("ari").chain(args.iter().copied()).map(OsString::from).collect();
    let matches =
        command_for(Some(&selected(&argv))).try_get_matches_from(argv).expect("a valid command line");
    matches.subcommand().expect("a subcommand").1.clone()
}

fn from_matches(matches: &ArgMatches) -> Result<Invocation, String> {
    let mut layer = Layer::new(Source::CommandLine);
    for assignment in matches.get_many::<String>("set").into_iter().flatten() {
        let (name, value) =
            assignment.split_once('=').ok_or_else(|| format!("--set {assignment}: expected NAME=VALUE"))?;
        let name = name.trim();
        layer.set_from_text(name, value).map_err(|err| format!("--set {name}: {err}"))?;
    }
    let (name, sub) = matches.subcommand().ok_or("a subcommand is required")?;
    // Before the subcommand (`ari --debug run`), then after it (`ari run job --debug`).
    for found in [matches, sub] {
        for def in settings::registry().values() {
            if found.value_source(def.name) == Some(ValueSource::CommandLine) {
                if let Some(value) = found.get_one::<String>(def.name) {
                    layer.set_from_text(def.name, value).map_err(|err| format!("--{}: {err}", def.name))?;
                }
            }
        }
    }
    let config_source = sub.value_source("config");
    let config =
        sub.get_one::<PathBuf>("config").cloned().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let builtin = commands::find(name).ok_or_else(|| format!("unknown subcommand {name}"))?;
    let exec = (builtin.exec)(sub)?;
    Ok(Invocation {
        exec,
        config,
        config_explicit: matches!(config_source, Some(ValueSource::CommandLine | ValueSource::EnvVariable)),
        settings: layer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(args: &[&str]) -> Invocation {
        let argv: Vec<OsString> =
            std::iter::once("ari").chain(args.iter().copied()).map(OsString::from).collect();
        parse(argv).unwrap_or_else(|code| panic!("{args:?} exited {code}"))
    }

    #[test]
    fn the_command_is_well_formed() {
        command().debug_assert();
    }

    #[test]
    fn every_subcommand_is_found_by_its_name_and_gets_the_setting_options_when_named() {
        let names: Vec<String> = command().get_subcommands().map(|s| s.get_name().to_string()).collect();
        assert_eq!(names.len(), BUILTIN.len());
        for name in &names {
            let found = commands::find(name).unwrap_or_else(|| panic!("no subcommand {name} in BUILTIN"));
            assert_eq!((found.cli)().get_name(), name);
            assert_eq!(selected(&["ari".into(), "--debug".into(), name.into(), "job".into()]), *name);
            let command = command_for(Some(name));
            for sub in command.get_subcommands() {
                let has_settings = sub.get_arguments().any(|arg| arg.get_id() == "debug");
                assert_eq!(has_settings, sub.get_name() == name, "setting options on {}", sub.get_name());
            }
        }
        assert!(commands::find("help").is_none() && commands::find("").is_none());
    }

    #[test]
    fn no_setting_takes_a_reserved_option_name() {
        for name in [
            "config", "set", "json", "help", "version", "connect", "jobs", "job", "wait", "show", "forget",
            "yes",
        ] {
            assert!(settings::find(name).is_none(), "a setting is named {name}");
        }
        for builtin in BUILTIN {
            for arg in (builtin.cli)().get_arguments() {
                assert!(
                    settings::find(arg.get_id().as_str()).is_none(),
                    "a setting is named {}",
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn settings_on_the_command_line_in_every_spelling() {
        let inv = parse_ok(RUN_WITH_SETTINGS);
        let values = &inv.settings.values;
        assert_eq!(values["remote_user"].to_string(), "backup_user");
        assert_eq!(values["ssh_port"].to_string(), "2222");
        assert_eq!(values["dry_run"].to_string(), "true");
        assert_eq!(values["ssh_options"].to_string(), "[-F, /x]");
        // What the subcommand makes of its own arguments among these: its test (run.rs, plan.rs).
        let inv = parse_ok(&["--debug", "--dry_run=false", "plan", "job", "--json"]);
        assert_eq!(inv.settings.values["debug"].to_string(), "true");
        assert_eq!(inv.settings.values["dry_run"].to_string(), "false");
    }
}
