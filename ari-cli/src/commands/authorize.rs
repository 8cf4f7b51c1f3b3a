//! `ari authorize [JOB...] [--host HOST] [--key FILE] [--json]`: for each host the jobs touch,
//! what to install there so that ari's key may run only the jobs' commands: the filter script
//! (ari-core's `authorize`, from the plans), its checksum, and the key's `authorized_keys` line.
//! Every job of jobs_dir when none is named. Runs nothing and writes nothing, but with
//! `--install`, which installs both over the jobs' own ssh connection.

use std::fmt::Write as _;
use std::path::PathBuf;

use ari_core::engine_api::authorize::{self, HostFilter};
use ari_core::engine_api::exit;
use ari_core::engine_api::process::ProcessError;
use ari_core::engine_api::runner::Runner;
use ari_core::error::chain;
use ari_core::step::{Command, Host};

use clap::{Arg, ArgAction, ArgMatches};

use super::context::{jobs_arg, jobs_of, usage_errors, Context, Exec};
use crate::jobs;

pub fn cli() -> clap::Command {
    clap::Command::new("authorize")
        .about("print, for each host the jobs touch, the ssh filter that lets ari's key run only their commands, and the key's authorized_keys line")
        .arg(jobs_arg(false))
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
        )
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let jobs = jobs_of(matches);
    let host = matches.get_one::<String>("host").cloned();
    let key = matches.get_one::<String>("key").cloned();
    let output = if matches.get_flag("install") {
        Output::Install
    } else if matches.get_flag("installer") {
        Output::Installer
    } else if matches.get_flag("json") {
        Output::Json
    } else {
        Output::Text
    };
    Ok(Exec::with_config(move |context| authorize(context, &jobs, host.as_deref(), key.as_deref(), output)))
}

/// What `ari authorize` does with the filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// Prints them, with what to do.
    Text,
    /// Prints them as JSON.
    Json,
    /// Prints a script per host that installs them there.
    Installer,
    /// Installs them.
    Install,
}

fn authorize(
    context: &Context,
    names: &[String],
    host: Option<&str>,
    key: Option<&str>,
    output: Output,
) -> i32 {
    ari_core::engine_api::files::forbid_writes();
    let names: Vec<String> = if names.is_empty() {
        match jobs::discover(&context.jobs_dir()) {
            Ok(paths) => paths.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
            Err(err) => return usage_errors(&[err]),
        }
    } else {
        names.to_vec()
    };
    let (plans, errors) =
        jobs::plan_names(&names, &context.jobs_dir(), &context.config.layer, &context.command_line);
    if !errors.is_empty() {
        return usage_errors(&errors);
    }
    let plans: Vec<_> = plans.iter().collect();
    let filters = match authorize::filters(&plans, host) {
        Ok(filters) => filters,
        Err(why) => return usage_errors(&[why]),
    };
    if filters.is_empty() {
        return usage_errors(&[match host {
            Some(host) => format!("no job touches the host {host} over ssh"),
            None => "the jobs touch no remote host: there is nothing to authorize".to_string(),
        }]);
    }
    let key = match public_key(key) {
        Ok(key) => key,
        Err(why) => return usage_errors(&[why]),
    };
    if matches!(output, Output::Installer | Output::Install) {
        let Some(key) = key.as_deref() else {
            return usage_errors(&["no public key of ari's found in ~/.ssh: give it with --key FILE".into()]);
        };
        if output == Output::Install {
            return install(&filters, &plans, key);
        }
        let text: String = filters
            .iter()
            .map(|f| {
                format!(
                    "# ari authorize: installs the ssh filter for {} (jobs: {})\n{}{}",
                    f.destination,
                    f.jobs.join(", "),
                    notes(f, "# Note: "),
                    f.installer(key)
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        use std::io::Write as _;
        let _ = std::io::stdout().write_all(text.as_bytes());
        return exit::SUCCESS;
    }
    let text = if output == Output::Json {
        /// `ari authorize --json`: each host's filter.
        #[derive(serde::Serialize)]
        struct AuthorizeJson {
            hosts: Vec<serde_json::Value>,
        }
        let hosts = filters.iter().map(|filter| filter.to_json(key_line(filter, key.as_deref()))).collect();
        serde_json::to_string_pretty(&AuthorizeJson { hosts }).unwrap_or_default() + "\n"
    } else {
        filters.iter().map(|filter| as_text(filter, key.as_deref())).collect::<Vec<_>>().join("\n")
    };
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(text.as_bytes());
    exit::SUCCESS
}

/// The key's line: the filter's options, then the key (or a placeholder, said so).
fn key_line(filter: &HostFilter, key: Option<&str>) -> String {
    filter.key_line(key.unwrap_or("PUBLIC-KEY-OF-ARI"))
}

/// Installs each filter and the key's line over the ssh of a job that reaches the host, then
/// checks that the key still gets in, now through the filter.
fn install(filters: &[HostFilter], plans: &[&ari_core::engine_api::plan::JobPlan], key: &str) -> i32 {
    let mut code = exit::SUCCESS;
    for filter in filters {
        let Some(plan) = plans.iter().find(|plan| filter.serves(plan)) else {
            continue;
        };
        let runner = Runner::new(plan.ssh.clone(), false);
        let host = Host::Remote(filter.host.clone());
        match runner.run(&Command::shell(host.clone(), filter.installer(key))) {
            Ok(output) => print!("{}", output.shown_stdout()),
            Err(ProcessError::Filtered { .. }) => {
                log::error!(
                    "{}: a filter is in place and lets ari's key run only the jobs' commands, so it cannot replace itself; install the new one with your own access: {}",
                    filter.destination,
                    ari_core::ssh::filter_installer(&filter.host, filter.ssh.uses_sudo())
                );
                code = exit::worst(code, exit::JOB_FAILED);
                continue;
            }
            Err(err) => {
                log::error!("installing the filter on {} failed: {}", filter.destination, chain(&err));
                code = exit::worst(code, exit::JOB_FAILED);
                continue;
            }
        }
        match runner.run(&Command::argv(host, ["true"])) {
            Ok(_) => print!(
                "ok: {} lets ari's key run its {} commands (jobs: {}), and nothing else\n{}",
                filter.destination,
                filter.allowed(),
                filter.jobs.join(", "),
                notes(filter, "note: ")
            ),
            Err(err) => {
                log::error!(
                    "after the install, ari's key no longer gets through to {}: {}; put the key's earlier line back with your own access",
                    filter.destination,
                    chain(&err)
                );
                code = exit::worst(code, exit::JOB_FAILED);
            }
        }
    }
    code
}

/// The public key: `FILE`'s first line, or the user's default key's; none when there is no
/// default key (a placeholder then stands in the line).
fn public_key(file: Option<&str>) -> Result<Option<String>, String> {
    let candidates: Vec<PathBuf> = match file {
        Some(file) => vec![PathBuf::from(file)],
        None => {
            let Some(home) = std::env::var_os("HOME") else { return Ok(None) };
            ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"]
                .iter()
                .map(|name| PathBuf::from(&home).join(".ssh").join(name))
                .collect()
        }
    };
    for path in &candidates {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let line = text.lines().next().unwrap_or_default().trim().to_string();
                let mut words = line.split_whitespace();
                let (Some(kind), Some(blob)) = (words.next(), words.next()) else {
                    return Err(format!(
                        "--key {}: not an ssh public key (`TYPE KEY [COMMENT]`)",
                        path.display()
                    ));
                };
                if !(kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-")) {
                    return Err(format!("--key {}: `{kind}` is no ssh public key type", path.display()));
                }
                // The installer removes every authorized_keys line that holds this text: it must
                // be a whole key, never a fragment that other lines share.
                if let Err(why) = authorize::check_key_blob(blob) {
                    return Err(format!("--key {}: {why}", path.display()));
                }
                return Ok(Some(line));
            }
            Err(err) if file.is_some() => return Err(format!("--key {}: {err}", path.display())),
            Err(_) => continue,
        }
    }
    Ok(None)
}

/// What the filter's commands let the key do beyond the jobs' own work, a line each after
/// `prefix`.
fn notes(filter: &HostFilter, prefix: &str) -> String {
    filter.notes.iter().map(|note| format!("{prefix}{note}\n")).collect()
}

fn as_text(filter: &HostFilter, key: Option<&str>) -> String {
    let mut out = String::new();
    let _ =
        writeln!(out, "# host {} (as {}), jobs: {}", filter.host, filter.destination, filter.jobs.join(", "));
    let _ = writeln!(
        out,
        "# 1. Install this filter as {} (owned by root, mode 0755), sha256 {}:",
        filter.path, filter.checksum
    );
    out.push_str(&filter.script);
    let _ = writeln!(
        out,
        "# 2. Put this line in the authorized_keys of {} on {}, in place of the key's present line:",
        filter.destination.split_once('@').map_or("the remote user", |(user, _)| user),
        filter.host
    );
    let _ = writeln!(out, "{}", key_line(filter, key));
    if key.is_none() {
        let _ = writeln!(
            out,
            "#    (PUBLIC-KEY-OF-ARI: the public key ari logs in with; give it with --key FILE)"
        );
    }
    if let Some((user, _)) = filter.destination.split_once('@').filter(|(user, _)| *user != "root") {
        if !filter.ssh.uses_sudo() {
            let _ = writeln!(
                out,
                "# Note: ari logs in as {user} without remote_sudo, so the commands run as {user}; snapshots, mounts and zfs need root: set remote_sudo: true for a sudoers drop-in as well"
            );
        }
    }
    out.push_str(&notes(filter, "# Note: "));
    if let Some(sudoers) = filter.sudoers() {
        let _ = writeln!(
            out,
            "# 3. As root, put this sudoers drop-in in /etc/sudoers.d/ (each @PROGRAM@ replaced by its path there; --installer does it and checks it with visudo):"
        );
        out.push_str(&sudoers);
    }
    let _ = writeln!(out, "# The filter allows {} commands:", filter.allowed());
    for line in &filter.exact {
        let _ = writeln!(out, "#   {}", line.lines().next().unwrap_or_default());
    }
    for pattern in &filter.patterns {
        let _ = writeln!(
            out,
            "#   {}   ({{}}: {})",
            pattern.template().lines().next().unwrap_or_default(),
            pattern.chars().what()
        );
    }
    out
}
