//! The command line: subcommands, common options, and `--NAME VALUE` for every registered
//! setting (snake_case or kebab-case), before the subcommand or after its job, as in
//! `./job --remote_user backup_user` run through the job's `#!/usr/bin/env -S ari run` line.

use std::ffi::OsString;
use std::path::PathBuf;

use ari_core::engine::config::DEFAULT_CONFIG_PATH;
use ari_core::settings::{self, Layer, SettingKind, Source};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// What the user asked for.
#[derive(Debug)]
pub struct Invocation {
    /// The subcommand and its own arguments.
    pub command: Subcommand,
    /// The global config file.
    pub config: PathBuf,
    /// Whether the user named it (then it must exist).
    pub config_explicit: bool,
    /// Settings from the command line.
    pub settings: Layer,
}

/// A subcommand.
#[derive(Debug)]
pub enum Subcommand {
    /// `ari run JOB... [--wait]`
    Run { jobs: Vec<String>, wait: bool },
    /// `ari recover [JOB...] [--show | --forget [--yes]]`
    Recover { jobs: Vec<String>, action: RecoverAction },
    /// `ari run-all [--wait]`
    RunAll { wait: bool },
    /// `ari list`
    List,
    /// `ari status`
    Status,
    /// `ari plan JOB... [--json]`
    Plan { jobs: Vec<String>, json: bool },
    /// `ari check [JOB...] [--connect]`
    Check { jobs: Vec<String>, connect: bool },
    /// `ari settings [JOB]`
    Settings { job: Option<String> },
    /// `ari backends`
    Backends,
    /// `ari completions SHELL`
    Completions { shell: clap_complete::Shell },
    /// `ari schema [job|config]`
    Schema { which: crate::schema::Which },
    /// `ari history JOB [--json]`
    History { job: String, json: bool },
    /// `ari restore JOB PATH [--at TIME] --to DIR [--force]`
    Restore { job: String, path: String, at: Option<String>, to: String, force: bool },
    /// `ari authorize [JOB...] [--host HOST] [--key FILE] [--json]`
    Authorize {
        jobs: Vec<String>,
        host: Option<String>,
        key: Option<String>,
        output: crate::commands::AuthorizeOutput,
    },
}

/// What `ari recover` does with each job's ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoverAction {
    /// Undo what it records (the default).
    Undo,
    /// `--show`: print what it holds, changing nothing.
    Show,
    /// `--forget`: move it aside, so that the job runs again; `yes` skips the question.
    Forget { yes: bool },
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

/// The subcommands, by name.
const SUBCOMMANDS: &[&str] = &[
    "run",
    "run-all",
    "list",
    "status",
    "recover",
    "plan",
    "check",
    "settings",
    "backends",
    "history",
    "restore",
    "authorize",
    "schema",
    "completions",
];

/// The clap command, with the setting options on the top level and on `selected` (every
/// subcommand when `None`). Settings are not `global`: clap copies global options into every
/// subcommand, which for some forty settings and nine subcommands is most of ari's start-up
/// time; a command line names one subcommand, and only it needs them.
fn command_for(selected: Option<&str>) -> Command {
    let jobs = |required: bool| {
        Arg::new("jobs").value_name("JOB").num_args(if required { 1.. } else { 0.. }).required(required).help(
            "a job file, or the name of one in jobs_dir (file name with or without .yaml/.yml, or label)",
        )
    };
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
        .subcommand(
            Command::new("run").about("run jobs, one after another").arg(jobs(true)).arg(
                Arg::new("wait")
                    .long("wait")
                    .action(ArgAction::SetTrue)
                    .help("wait for a run of the same job that is already running, instead of exiting"),
            ),
        )
        .subcommand(
            Command::new("run-all")
                .about("run every enabled job of jobs_dir in parallel (the cron entry point)")
                .arg(
                    Arg::new("wait")
                        .long("wait")
                        .action(ArgAction::SetTrue)
                        .help("wait for a run-all that is already running, instead of exiting"),
                ),
        )
        .subcommand(Command::new("list").about("every entry of jobs_dir: enabled, invalid, or skipped and why"))
        .subcommand(
            Command::new("status")
                .about("last outcome and age of each job; exit 1 when a job's last success is older than max_age"),
        )
        .subcommand(
            Command::new("recover")
                .about("undo what a crashed run left behind, from the job's ledger (every job's when none is named)")
                .arg(jobs(false))
                .arg(
                    Arg::new("show")
                        .long("show")
                        .action(ArgAction::SetTrue)
                        .conflicts_with("forget")
                        .help("print what each ledger holds (for a refused or corrupt one: why, and its raw bytes); changes nothing"),
                )
                .arg(
                    Arg::new("forget")
                        .long("forget")
                        .action(ArgAction::SetTrue)
                        .requires("jobs")
                        .help("move the job's ledger aside (LABEL.json.forgotten-TIME), so that the job runs again; nothing it lists is undone: check that by hand"),
                )
                .arg(
                    Arg::new("yes")
                        .long("yes")
                        .action(ArgAction::SetTrue)
                        .requires("forget")
                        .help("with --forget: do not ask for confirmation (required without a terminal)"),
                ),
        )
        .subcommand(
            Command::new("plan")
                .about("print every step and command that run would execute, cleanup included; runs nothing")
                .arg(jobs(true))
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("one JSON object per job")),
        )
        .subcommand(
            Command::new("check")
                .about("validate the config and jobs (all of jobs_dir when none is named) and find the tools they need")
                .arg(jobs(false))
                .arg(
                    Arg::new("connect")
                        .long("connect")
                        .action(ArgAction::SetTrue)
                        .help("also log in to every remote host over ssh, and compare its ssh filter (ari authorize) with the jobs"),
                ),
        )
        .subcommand(
            Command::new("settings")
                .about("every setting: effective value, where it came from, owner, help")
                .arg(Arg::new("job").value_name("JOB").help("show the values as this job sees them")),
        )
        .subcommand(Command::new("backends").about("registered backends and snapshot sources"))
        .subcommand(
            Command::new("history")
                .about("the backups the job's store holds, newest first: rdiff-backup increments with their sizes, or the dataset's ZFS snapshots")
                .arg(Arg::new("job").value_name("JOB").required(true).help("a job file, or the name of one in jobs_dir"))
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("as one JSON object")),
        )
        .subcommand(
            Command::new("restore")
                .about("copy a path out of the job's store, as a backup holds it, into a directory of this machine")
                .arg(Arg::new("job").value_name("JOB").required(true).help("a job file, or the name of one in jobs_dir"))
                .arg(Arg::new("path").value_name("PATH").required(true).help(
                    "the path as the job names it on its host (/etc/nginx), also when the job reads it from a snapshot",
                ))
                .arg(Arg::new("at").long("at").value_name("TIME").help(format!(
                    "which backup (default: the newest): {}",
                    ari_core::engine::restore::TIME_FORMS
                )))
                .arg(
                    Arg::new("to")
                        .long("to")
                        .value_name("DIR")
                        .required(true)
                        .help("restore into DIR/PATH (DIR/etc/nginx); missing directories are made 0700, and every directory on the way must be root's or ari's user's, writable by no one else unless sticky (/tmp)"),
                )
                .arg(
                    Arg::new("force")
                        .long("force")
                        .action(ArgAction::SetTrue)
                        .help("replace DIR/PATH if it exists, in one swap, removing only what was there (without it, ari never overwrites)"),
                ),
        )
        .subcommand(
            Command::new("authorize")
                .about("print, for each host the jobs touch, the ssh filter that lets ari's key run only their commands, and the key's authorized_keys line")
                .arg(jobs(false))
                .arg(Arg::new("host").long("host").value_name("HOST").help(
                    "only this host, covering every job (of jobs_dir, when no JOB is named) that touches it",
                ))
                .arg(Arg::new("key").long("key").value_name("FILE").help(
                    "the public key ari logs in with (default: the first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub)",
                ))
                .arg(Arg::new("json").long("json").action(ArgAction::SetTrue).help("as JSON"))
                .arg(
                    Arg::new("installer")
                        .long("installer")
                        .action(ArgAction::SetTrue)
                        .conflicts_with_all(["json", "install"])
                        .help("print a sh script that installs the filter and the key's line, to run on the host (ssh ADMIN@HOST sh)"),
                )
                .arg(
                    Arg::new("install")
                        .long("install")
                        .action(ArgAction::SetTrue)
                        .conflicts_with("json")
                        .help("install them over the jobs' own ssh connection (while the key is not yet filtered), then check that the key gets through"),
                ),
        )
        .subcommand(
            Command::new("schema")
                .about("print the JSON Schema of job files (or of the global config), for editors")
                .arg(
                    Arg::new("which")
                        .value_name("FILE")
                        .value_parser(["job", "config"])
                        .default_value("job")
                        .help("job: a job file of jobs_dir; config: the global config"),
                ),
        )
        .subcommand(
            Command::new("completions")
                .about("print the completion script of a shell (bash: source it, or put it in /usr/share/bash-completion/completions/ari)")
                .arg(
                    Arg::new("shell")
                        .value_name("SHELL")
                        .required(true)
                        .value_parser(clap::value_parser!(clap_complete::Shell))
                        .help("bash, zsh, fish, elvish or powershell"),
                ),
        );
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
    // The first word that names a subcommand is the one the line runs (or asks help for).
    let selected = args
        .iter()
        .skip(1)
        .filter_map(|arg| arg.to_str())
        .find(|arg| SUBCOMMANDS.contains(arg))
        .unwrap_or("")
        .to_string();
    let matches = command_for(Some(&selected)).try_get_matches_from(args).map_err(|err| {
        let _ = err.print();
        err.exit_code()
    })?;
    from_matches(&matches).map_err(|message| {
        eprintln!("ari [ERROR] command line: {message}");
        ari_core::engine::exit::USAGE
    })
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
    let jobs = || sub.get_many::<String>("jobs").into_iter().flatten().cloned().collect::<Vec<_>>();
    let command = match name {
        "run" => Subcommand::Run { jobs: jobs(), wait: sub.get_flag("wait") },
        "recover" => {
            let action = if sub.get_flag("show") {
                RecoverAction::Show
            } else if sub.get_flag("forget") {
                RecoverAction::Forget { yes: sub.get_flag("yes") }
            } else {
                RecoverAction::Undo
            };
            Subcommand::Recover { jobs: jobs(), action }
        }
        "run-all" => Subcommand::RunAll { wait: sub.get_flag("wait") },
        "list" => Subcommand::List,
        "status" => Subcommand::Status,
        "plan" => Subcommand::Plan { jobs: jobs(), json: sub.get_flag("json") },
        "check" => Subcommand::Check { jobs: jobs(), connect: sub.get_flag("connect") },
        "settings" => Subcommand::Settings { job: sub.get_one::<String>("job").cloned() },
        "backends" => Subcommand::Backends,
        "history" => Subcommand::History {
            job: sub.get_one::<String>("job").cloned().ok_or("history: a job is required")?,
            json: sub.get_flag("json"),
        },
        "restore" => Subcommand::Restore {
            job: sub.get_one::<String>("job").cloned().ok_or("restore: a job is required")?,
            path: sub.get_one::<String>("path").cloned().ok_or("restore: a path is required")?,
            at: sub.get_one::<String>("at").cloned(),
            to: sub.get_one::<String>("to").cloned().ok_or("restore: --to DIR is required")?,
            force: sub.get_flag("force"),
        },
        "authorize" => Subcommand::Authorize {
            jobs: jobs(),
            host: sub.get_one::<String>("host").cloned(),
            key: sub.get_one::<String>("key").cloned(),
            output: if sub.get_flag("install") {
                crate::commands::AuthorizeOutput::Install
            } else if sub.get_flag("installer") {
                crate::commands::AuthorizeOutput::Installer
            } else if sub.get_flag("json") {
                crate::commands::AuthorizeOutput::Json
            } else {
                crate::commands::AuthorizeOutput::Text
            },
        },
        "schema" => Subcommand::Schema {
            which: match sub.get_one::<String>("which").map(String::as_str) {
                Some("config") => crate::schema::Which::Config,
                _ => crate::schema::Which::Job,
            },
        },
        "completions" => Subcommand::Completions {
            shell: sub
                .get_one::<clap_complete::Shell>("shell")
                .copied()
                .ok_or("completions: a shell is required")?,
        },
        other => return Err(format!("unknown subcommand {other}")),
    };
    Ok(Invocation {
        command,
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
    fn every_subcommand_is_known_by_name_for_its_setting_options() {
        let names: Vec<String> = command().get_subcommands().map(|s| s.get_name().to_string()).collect();
        assert_eq!(names, SUBCOMMANDS, "SUBCOMMANDS must list every subcommand, in order");
    }

    #[test]
    fn no_setting_takes_a_reserved_option_name() {
        for name in [
            "config", "set", "json", "help", "version", "connect", "jobs", "job", "wait", "show", "forget",
            "yes",
        ] {
            assert!(settings::find(name).is_none(), "a setting is named {name}");
        }
    }

    #[test]
    fn settings_on_the_command_line_in_every_spelling() {
        let inv = parse_ok(&[
            "run",
            "./job",
            "--remote_user",
            "backup_user",
            "--ssh-port=2222",
            "--dry-run",
            "--set",
            "ssh_options=-F /x",
        ]);
        let values = &inv.settings.values;
        assert_eq!(values["remote_user"].to_string(), "backup_user");
        assert_eq!(values["ssh_port"].to_string(), "2222");
        assert_eq!(values["dry_run"].to_string(), "true");
        assert_eq!(values["ssh_options"].to_string(), "[-F, /x]");
        assert!(matches!(inv.command, Subcommand::Run { ref jobs, wait: false } if jobs == &["./job"]));
        let inv = parse_ok(&["--debug", "--dry_run=false", "plan", "job", "--json"]);
        assert_eq!(inv.settings.values["debug"].to_string(), "true");
        assert_eq!(inv.settings.values["dry_run"].to_string(), "false");
        assert!(matches!(inv.command, Subcommand::Plan { json: true, .. }));
    }

    #[test]
    fn recover_shows_or_forgets() {
        let action = |args: &[&str]| match parse_ok(args).command {
            Subcommand::Recover { action, .. } => action,
            other => panic!("{other:?}"),
        };
        assert_eq!(action(&["recover"]), RecoverAction::Undo);
        assert_eq!(action(&["recover", "--show"]), RecoverAction::Show);
        assert_eq!(action(&["recover", "db", "--forget"]), RecoverAction::Forget { yes: false });
        assert_eq!(action(&["recover", "db", "--forget", "--yes"]), RecoverAction::Forget { yes: true });
        let refused = |args: &[&str]| {
            let argv: Vec<OsString> =
                std::iter::once("ari").chain(args.iter().copied()).map(OsString::from).collect();
            command_for(Some("recover")).try_get_matches_from(argv).is_err()
        };
        assert!(refused(&["recover", "--forget"]), "--forget names its jobs");
        assert!(refused(&["recover", "db", "--yes"]), "--yes only with --forget");
        assert!(refused(&["recover", "db", "--show", "--forget"]));
    }
}
