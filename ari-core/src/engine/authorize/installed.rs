//! What `ari check --connect` asks of a host whose filter is installed: the filter read back
//! and compared with the one the jobs need (its header says what made it), the remote user's
//! login shell, and whether each program the filter hands a request to can run there.

use std::collections::{BTreeMap, BTreeSet};

use super::host_filter::{digest, sha256_hex, HostFilter};
use crate::contract::step::{Command, Host};

/// The command that reads the installed filter back (`ari check --connect`).
pub fn read_back(filter: &HostFilter) -> Command {
    Command::argv(Host::Remote(filter.host.clone()), ["cat", &filter.path])
}

/// The command that reads the remote user's entry in the host's user database, whose 7th field
/// is the login shell that sshd starts the filter with (`ari check --connect`). It runs without
/// sudo, even under `remote_sudo`: the filter allows it so.
pub fn login_shell_query(filter: &HostFilter) -> Command {
    Command::argv(Host::Remote(filter.host.clone()), ["getent", "passwd", remote_user(filter)])
}

/// The commands that show each program the filter hands a request to can run on its host
/// (`rrsync -help`: rrsync is there, and its interpreter): run without sudo, as the filter
/// allows them (`ari check --connect`).
pub fn handover_probes(filter: &HostFilter) -> Vec<Command> {
    let probes: BTreeSet<&Vec<String>> = filter
        .patterns
        .iter()
        .filter_map(|p| p.handover.as_ref().map(|h| &h.probe))
        .filter(|probe| !probe.is_empty())
        .collect();
    probes.into_iter().map(|probe| Command::argv(Host::Remote(filter.host.clone()), probe)).collect()
}

/// The user ari's key logs in as on `filter`'s host: `remote_user`, or root when ssh's own
/// configuration chooses it.
pub fn remote_user(filter: &HostFilter) -> &str {
    filter.ssh.user.as_deref().unwrap_or("root")
}

/// The login shells that run the filter without reading a startup file first (bash started by
/// sshd reads `~/.bashrc`, zsh `~/.zshenv`), and those that run nothing at all.
pub(crate) const PLAIN_SHELLS: &[&str] = &[
    "/bin/sh",
    "/usr/bin/sh",
    "/bin/dash",
    "/usr/bin/dash",
    "/bin/false",
    "/usr/bin/false",
    "/sbin/nologin",
    "/usr/sbin/nologin",
    "/bin/nologin",
];

/// The warning for `user`'s login shell on `host`, from the user's `getent passwd` line: none for
/// a shell of `PLAIN_SHELLS` (or an entry without a shell field: sshd then uses `/bin/sh`).
pub fn login_shell_warning(user: &str, host: &str, passwd_entry: &str) -> Option<String> {
    let shell = passwd_entry.split(':').nth(6).map(str::trim).filter(|shell| !shell.is_empty())?;
    if PLAIN_SHELLS.contains(&shell) {
        return None;
    }
    let reads = match shell.rsplit('/').next().unwrap_or_default() {
        "bash" => "~/.bashrc",
        "zsh" => "~/.zshenv",
        _ => "its startup files",
    };
    Some(format!(
        "{user}'s login shell on {host} is {}, which runs {reads} before ari's filter: use /bin/sh (chsh -s /bin/sh {user})",
        crate::contract::kinds::shown(shell)
    ))
}

/// What `ari check --connect` finds wrong with the filter installed on a host (`installed`, as
/// read back) for the jobs `filter` was made from: every reason it is not the filter they need,
/// from its header (the ari and filter-format that made it, its rules' and its sudoers drop-in's
/// digests, its jobs'). None when it is that filter, byte for byte.
pub fn out_of_date(filter: &HostFilter, installed: &str) -> Vec<String> {
    if sha256_hex(installed.as_bytes()) == filter.checksum {
        return Vec::new();
    }
    let header = |key: &str| {
        installed.lines().find_map(|line| line.strip_prefix(key)).map(|rest| rest.trim().to_string())
    };
    let mut reasons = Vec::new();
    let this = env!("CARGO_PKG_VERSION");
    match header(VERSION_LINE) {
        None => reasons.push(format!("it was made by an ari older than {FIRST_RECORDING_VERSION}")),
        Some(version) if version != this => reasons.push(format!(
            "it was made by ari {}, this is ari {this}",
            crate::contract::kinds::shown(&version)
        )),
        Some(_) => {}
    }
    if let Some(format) = header(FORMAT_LINE).filter(|format| *format != FILTER_FORMAT.to_string()) {
        reasons.push(format!(
            "its filter-format is {}, this ari writes {FILTER_FORMAT}",
            crate::contract::kinds::shown(&format)
        ));
    }
    if header(RULES_LINE).is_some_and(|rules| rules != rules_digest(filter)) {
        reasons.push("it lets through other commands than the jobs run now".to_string());
    }
    match (header(SUDOERS_LINE), filter.sudoers()) {
        (Some(recorded), Some(sudoers)) if recorded != sha256_hex(sudoers.as_bytes()) => {
            reasons.push("its sudoers drop-in was made for other commands".to_string())
        }
        (None, Some(_)) if header(VERSION_LINE).is_some() => {
            reasons.push("it was made without remote_sudo, and the jobs set it".to_string())
        }
        (Some(_), None) => {
            reasons.push("it was made for remote_sudo, and the jobs no longer set it".to_string())
        }
        _ => {}
    }
    let recorded: BTreeMap<&str, &str> = installed
        .lines()
        .filter_map(|line| line.strip_prefix(JOB_LINE))
        .filter_map(|rest| rest.split_once(' '))
        .collect();
    for (job, digest) in &filter.job_digests {
        match recorded.get(job.as_str()) {
            Some(recorded) if recorded == digest => {}
            Some(_) => reasons.push(format!("job {job} changed since the filter was made")),
            None => reasons.push(format!("job {job} is not in the filter")),
        }
    }
    if reasons.is_empty() {
        reasons.push(
            "it is not the filter this ari makes for the jobs (it was changed after it was made)".to_string(),
        );
    }
    reasons
}

/// How the filter's header records a job: `# ari job LABEL DIGEST`.
pub(super) const JOB_LINE: &str = "# ari job ";

/// How the filter's header records the ari that made it: `# ari version X.Y.Z`.
pub(super) const VERSION_LINE: &str = "# ari version ";

/// How the filter's header records its format: `# ari filter-format N`.
pub(super) const FORMAT_LINE: &str = "# ari filter-format ";

/// How the filter's header records what it lets through: `# ari rules SHA256`.
pub(super) const RULES_LINE: &str = "# ari rules ";

/// How the filter's header records the sudoers drop-in made with it: `# ari sudoers SHA256`.
pub(super) const SUDOERS_LINE: &str = "# ari sudoers ";

/// The filter's format: what its header records and how it takes a command apart. A filter of
/// another format is replaced whatever its rules.
pub(crate) const FILTER_FORMAT: u32 = 2;

/// The first ari whose filters record what made them: a filter without those lines is older.
const FIRST_RECORDING_VERSION: &str = "0.4.0";

/// What the whole filter lets through, as a digest: its exact lines and its patterns, as
/// [`digest`] takes one job's.
pub(super) fn rules_digest(filter: &HostFilter) -> String {
    digest(&filter.ssh, &filter.exact, &filter.patterns)
}
