//! `ari check [JOB...] [--connect]`: validate the global config and the jobs (every job of
//! jobs_dir when none is named), find the tools they need, and with `--connect` log in to every
//! remote host. Runs no backup and writes nothing: state_dir is checked with `access(2)`, and
//! its ledgers are read as a run would read them.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use ari_core::engine_api::exit;
use ari_core::engine_api::files::StateDir;
use ari_core::engine_api::ledger::Ledger;
use ari_core::engine_api::runner::Runner;
use ari_core::step::{Command, Host};

use ari_core::error::chain;
use clap::{Arg, ArgAction, ArgMatches};

use super::context::{jobs_arg, jobs_of, Context, Exec};
use crate::jobs;

pub fn cli() -> clap::Command {
    clap::Command::new("check")
        .about("validate the config and jobs (all of jobs_dir when none is named) and find the tools they need")
        .arg(jobs_arg(false))
        .arg(
            Arg::new("connect")
                .long("connect")
                .action(ArgAction::SetTrue)
                .help("also log in to every remote host over ssh, and compare its ssh filter (ari authorize) with the jobs"),
        )
}

pub fn exec(matches: &ArgMatches) -> Result<Exec, String> {
    let (jobs, connect) = (jobs_of(matches), matches.get_flag("connect"));
    Ok(Exec::with_config(move |context| check(context, &jobs, connect)))
}

fn check(context: &Context, names: &[String], connect: bool) -> i32 {
    ari_core::engine_api::files::forbid_writes();
    // One write at the end: a check of a thousand jobs prints a thousand lines.
    let mut out = String::new();
    let mut problems = Vec::new();
    if context.config.found {
        let _ = writeln!(out, "ok: config {}", context.config.path.display());
    } else {
        let _ = writeln!(out, "ok: config {} not found: defaults apply", context.config.path.display());
    }
    let names: Vec<String> = if names.is_empty() {
        match jobs::discover(&context.jobs_dir()) {
            Ok(paths) => paths.iter().map(|p| p.to_string_lossy().into_owned()).collect(),
            Err(err) => {
                problems.push(err);
                Vec::new()
            }
        }
    } else {
        names.to_vec()
    };
    let (plans, errors) =
        jobs::plan_names(&names, &context.jobs_dir(), &context.config.layer, &context.command_line);
    problems.extend(errors);
    problems.extend(ari_core::engine_api::preflight::missing_tools(&plans).iter().map(ToString::to_string));
    for plan in &plans {
        let _ = writeln!(
            out,
            "ok: job {} ({}): backend {}, source {}",
            plan.label(),
            plan.job.path.display(),
            plan.backend,
            plan.job.source_hostname
        );
    }
    capacity(&plans, connect, &mut out, &mut problems);
    let state = state_problems(context);
    if state.is_empty() {
        let _ = writeln!(out, "ok: state_dir {}", context.state_dir().display());
    }
    problems.extend(state);
    // A run only warns when it cannot write the metrics file; check says it before.
    if let Some(path) = context.base.get(&ari_core::core_settings::METRICS_FILE) {
        match ari_core::engine_api::files::outside_file_problem(std::path::Path::new(&path)) {
            None => {
                let _ = writeln!(out, "ok: metrics_file {path}");
            }
            Some(err) => problems.push(format!("metrics_file: {}", chain(&err))),
        }
    }
    if connect {
        let mut seen = BTreeSet::new();
        for plan in &plans {
            // Every host the job touches: the source (which rdiff-backup or rsync reach with
            // their own ssh) and the hosts its steps run on.
            for host in plan.hosts() {
                let Host::Remote(host) = Host::named(&host) else { continue };
                if !seen.insert((plan.ssh.destination(&host), plan.ssh.port(), plan.ssh.options().to_vec())) {
                    continue;
                }
                let runner = Runner::new(plan.ssh.clone(), false);
                match runner.run(&Command::argv(Host::Remote(host.clone()), ["true"])) {
                    Ok(_) => {
                        let _ = writeln!(out, "ok: ssh {}", plan.ssh.destination(&host));
                    }
                    Err(err) => problems.push(format!("job {}: {err}", plan.label())),
                }
            }
        }
        let plan_refs: Vec<_> = plans.iter().collect();
        match ari_core::engine_api::authorize::filters(&plan_refs, None) {
            Ok(filters) => {
                for filter in &filters {
                    check_filter(filter, &plans, &mut out, &mut problems);
                }
            }
            Err(why) => problems.push(why),
        }
    }
    if problems.is_empty() {
        let _ = writeln!(out, "all good: {} job{}", plans.len(), if plans.len() == 1 { "" } else { "s" });
        print!("{out}");
        exit::SUCCESS
    } else {
        for problem in &problems {
            let _ = writeln!(out, "error: {problem}");
        }
        let _ =
            writeln!(out, "{} problem{} found", problems.len(), if problems.len() == 1 { "" } else { "s" });
        print!("{out}");
        exit::USAGE
    }
}

/// Shows each job's store capacity and pool health as a run would read them (the commands on
/// remote hosts only with `--connect`): a store a run would refuse is a problem, a DEGRADED
/// pool a warning.
fn capacity(
    plans: &[ari_core::engine_api::plan::JobPlan],
    connect: bool,
    out: &mut String,
    problems: &mut Vec<String>,
) {
    for plan in plans {
        if !connect && !plan.capacity_is_local() {
            continue;
        }
        let Some(shown) = plan.check_capacity(&plan.query_runner()) else { continue };
        if let Some(reading) = &shown.reading {
            let _ = writeln!(
                out,
                "{}: job {}: {reading}",
                if shown.problem.is_some() { "note" } else { "ok" },
                plan.label()
            );
        }
        for warning in &shown.warnings {
            let _ = writeln!(out, "warning: job {}: {warning}", plan.label());
        }
        if let Some(problem) = shown.problem {
            problems.push(format!("job {}: {problem}", plan.label()));
        }
    }
}

/// Compares the ssh filter installed on `filter`'s host with the one the jobs need: every reason
/// it is not that filter (another ari, format, rules or sudoers drop-in, a job that changed or
/// that is not in it) is a problem, one line per host, ending with the command that installs the
/// right one (the jobs' next run would be refused there); a host without a filter is only noted.
/// Where a filter is in place, the remote user's login shell is checked too.
fn check_filter(
    filter: &ari_core::engine_api::authorize::HostFilter,
    plans: &[ari_core::engine_api::plan::JobPlan],
    out: &mut String,
    problems: &mut Vec<String>,
) {
    let Some(plan) = plans.iter().find(|plan| filter.serves(plan)) else { return };
    let install = ari_core::ssh::filter_installer(&filter.host, filter.ssh.uses_sudo());
    let runner = Runner::new(plan.ssh.clone(), false);
    match runner.run(&ari_core::engine_api::authorize::read_back(filter)) {
        Ok(output) => {
            let reasons = match output.stdout() {
                Ok(installed) => ari_core::engine_api::authorize::out_of_date(filter, installed),
                Err(too_long) => vec![format!("it cannot be read: {too_long}")],
            };
            if reasons.is_empty() {
                let _ = writeln!(out, "ok: ssh filter {} on {}", filter.path, filter.destination);
            } else {
                problems.push(format!(
                    "the ssh filter {} on {} is out of date: {}; the jobs' commands will be refused there until the filter they need is installed: {install}",
                    filter.path,
                    filter.destination,
                    reasons.join("; "),
                ));
            }
            login_shell(filter, out);
            handover_programs(filter, problems);
        }
        Err(ari_core::engine_api::process::ProcessError::Filtered { .. }) => {
            problems.push(format!(
                "the ssh filter {} on {} is not the one the jobs need (it refused to be read back): install the one they need: {install}",
                filter.path, filter.destination
            ));
        }
        Err(_) => {
            let _ = writeln!(
                out,
                "note: no ssh filter at {} on {}: ari's key may run any command there (see `ari authorize`)",
                filter.path, filter.destination
            );
        }
    }
}

/// Warns when the remote user's login shell, which sshd starts to run the filter, reads startup
/// files first (bash's `~/.bashrc`): a file the user can write would be a way around the filter.
/// Asked without sudo, as the filter lets it through.
fn login_shell(filter: &ari_core::engine_api::authorize::HostFilter, out: &mut String) {
    let query = ari_core::engine_api::authorize::login_shell_query(filter);
    let runner = Runner::new(filter.ssh.clone().sudo(false), false);
    match runner.run(&query) {
        Ok(output) => {
            let entry = output.shown_stdout().lines().next().unwrap_or_default();
            let user = ari_core::engine_api::authorize::remote_user(filter);
            if let Some(warning) =
                ari_core::engine_api::authorize::login_shell_warning(user, &filter.host, entry)
            {
                let _ = writeln!(out, "warning: {warning}");
            }
        }
        // An older filter refuses the query: the problem above already says to replace it.
        Err(err) => log::debug!("cannot read the login shell on {}: {err}", filter.destination),
    }
}

/// Runs, without sudo as the filter allows, each probe of a program the filter hands requests
/// to (`rrsync -help`): one that cannot run there (rrsync or python3 missing) is a problem, as
/// every run of the job would fail at it.
fn handover_programs(filter: &ari_core::engine_api::authorize::HostFilter, problems: &mut Vec<String>) {
    let runner = Runner::new(filter.ssh.clone().sudo(false), false);
    for probe in ari_core::engine_api::authorize::handover_probes(filter) {
        match runner.run(&probe) {
            Ok(_) => {}
            // An older filter refuses the probe: the problem above already says to replace it.
            Err(ari_core::engine_api::process::ProcessError::Filtered { .. }) => {}
            Err(err) => problems.push(format!(
                "`{}` cannot run on {}: {}; the filter hands rsync's server to it (Debian: apt install rsync python3)",
                ari_core::step::remote_line(&probe),
                filter.destination,
                chain(&err)
            )),
        }
    }
}

/// What stops ari from using its state directory: `state_dir` not writable (or not ari's), an
/// area that is a symlink or another user's, and every ledger a run would refuse, find corrupt,
/// or recover first.
fn state_problems(context: &Context) -> Vec<String> {
    let state_dir = context.state_dir();
    let found = StateDir::new(&state_dir).problems();
    let mut problems: Vec<String> = found.iter().map(|err| chain(err)).collect();
    // A state_dir that another user could redirect is all there is to say about it.
    if found.iter().any(|err| matches!(err, ari_core::engine_api::files::StateError::UntrustedSymlink { .. }))
    {
        return problems;
    }
    let labels = match Ledger::pending(&state_dir) {
        Ok(labels) => labels,
        Err(err) => {
            problems.push(format!("cannot list the ledgers: {}", chain(&err)));
            return problems;
        }
    };
    let ssh = ari_core::ssh::Ssh::from_settings(&context.base);
    for label in labels {
        match Ledger::open(&state_dir, &label, &ssh) {
            Ok(ledger) if ledger.is_empty() => {}
            Ok(_) => problems.push(format!(
                "job {label}: its ledger ({}) holds what a crashed run left behind: run `ari recover {label}`",
                Ledger::path(&state_dir, &label).display()
            )),
            Err(err) => problems.push(err.advice(&label)),
        }
    }
    problems
}
