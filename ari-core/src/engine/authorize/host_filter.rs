//! One host's filter as data (`HostFilter`): what it lets through, its key's options, and the
//! digests its header records; and the small text helpers the filter's parts share.

use std::collections::{BTreeMap, BTreeSet};

use sha2::Digest as _;

use crate::contract::quote::single_quoted;
use crate::contract::step::{CommandPattern, Handover};
use crate::engine::plan::JobPlan;

/// What one host's filter lets through, for one destination (`[USER@]HOST`) of ari's key.
#[derive(Debug, Clone)]
pub struct HostFilter {
    /// The host as the jobs name it.
    pub host: String,
    /// The ssh destination: the host with the jobs' `remote_user`.
    pub destination: String,
    /// How the jobs reach it (`remote_sudo` among it).
    pub ssh: crate::contract::ssh::Ssh,
    /// Where the filter goes on the host (`ssh_filter_path`).
    pub path: String,
    /// More options of the key's line (`ssh_key_options`).
    pub extra_options: Option<String>,
    /// The authorized_keys file `--install` writes (`authorized_keys_file`); none: the remote
    /// user's `~/.ssh/authorized_keys`.
    pub keys_file: Option<String>,
    /// The jobs it serves, by label.
    pub jobs: Vec<String>,
    /// Each job's digest: the SHA-256 of what it runs on this host, which the filter's header
    /// records so that `ari check --connect` can say which jobs changed since.
    pub job_digests: BTreeMap<String, String>,
    /// The command lines it lets through exactly.
    pub exact: BTreeSet<String>,
    /// The command lines with a variable part.
    pub patterns: Vec<CommandPattern>,
    /// What the allowed commands let the key do beyond the jobs' own work
    /// ([`CommandPattern::noting`]), for `ari authorize` to say beside the filter.
    pub notes: BTreeSet<String>,
    /// Under `remote_sudo`: each command as sudoers matches it (program, then its arguments as
    /// a regular expression), for the drop-in.
    pub sudo_entries: BTreeSet<(String, String)>,
    /// Under `remote_sudo`: the environment variable that sudo keeps for one program, by
    /// program (the request a [`Handover`] carries), for the drop-in.
    pub sudo_env_keep: BTreeSet<(String, String)>,
    /// The filter, a POSIX sh script.
    pub script: String,
    /// The script's SHA-256, in hex.
    pub checksum: String,
}

impl HostFilter {
    /// Whether `plan`'s job is one the filter serves: its ssh reaches the filter's host as the
    /// filter expects (port, options, `remote_sudo`), for installing it or reading it back.
    pub fn serves(&self, plan: &JobPlan) -> bool {
        self.jobs.iter().any(|job| job == plan.label())
    }

    /// How many distinct commands (exact lines and patterns) it allows.
    pub fn allowed(&self) -> usize {
        self.exact.len() + self.patterns.len()
    }

    /// The options of the key's `authorized_keys` line: no forwarding, no pty, no agent, no X11
    /// (`restrict`; ari's jobs need none of them), and the filter as its forced command.
    pub fn key_options(&self) -> String {
        let mut options =
            format!("restrict,command=\"{}\"", self.path.replace('\\', "\\\\").replace('"', "\\\""));
        if let Some(extra) = &self.extra_options {
            options.push(',');
            options.push_str(extra);
        }
        options
    }

    /// The key's whole `authorized_keys` line for the public key `key` (`TYPE BASE64 [COMMENT]`).
    pub fn key_line(&self, key: &str) -> String {
        format!("{} {key}", self.key_options())
    }
}

/// What one job runs on one host, as a digest: its exact lines and its patterns (with what the
/// filter runs in their place), in order.
pub(super) fn digest(
    ssh: &crate::contract::ssh::Ssh,
    exact: &BTreeSet<String>,
    patterns: &[CommandPattern],
) -> String {
    let mut text = String::new();
    for line in exact {
        text.push_str(&format!("{line}\0"));
    }
    let mut patterns: Vec<String> = patterns
        .iter()
        .map(|p| match &p.handover {
            None if p.independent => format!("{}\0{}\0parts", p.template, p.chars.set),
            None => format!("{}\0{}", p.template, p.chars.set),
            Some(handover) => format!("{}\0{}\0{}", p.template, p.chars.set, handover_text(ssh, handover)),
        })
        .collect();
    patterns.sort();
    text.push_str(&patterns.join("\0"));
    sha256_hex(text.as_bytes())
}

/// Checks the base64 part of a public key (`AAAAC3Nza...`), which the installer uses to find the
/// key's earlier lines: base64 characters only, and at least a key's length (an ed25519 key's
/// is 68), so that no other line can hold it by chance.
pub fn check_key_blob(blob: &str) -> Result<(), String> {
    if blob.len() < 64 || !blob.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    {
        return Err(format!(
            "`{}` is not the base64 of an ssh public key",
            crate::contract::kinds::shown(blob)
        ));
    }
    Ok(())
}

/// The SHA-256 of `bytes`, in lower-case hex, as `sha256sum` prints it.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `template` as the inside of an sh double-quoted string, `{}` becoming `${v}`.
pub(super) fn double_quoted_template(template: &str) -> String {
    let escaped: String = template
        .chars()
        .map(|c| match c {
            '\\' | '"' | '$' | '`' => format!("\\{c}"),
            c => c.to_string(),
        })
        .collect();
    format!("\"{}\"", escaped.replace("{}", "${v}"))
}

/// What the filter runs in place of a command that matched a pattern handed to `handover`, as
/// the host's shell gets it: the request in its variable, single-quoted (`{}` standing for the
/// matched variable part, whose characters hold no `'`), then the program, through sudo under
/// `remote_sudo`.
pub(super) fn handover_text(ssh: &crate::contract::ssh::Ssh, handover: &Handover) -> String {
    format!(
        "{}={} {}",
        handover.variable,
        single_quoted(&handover.request),
        // The program itself, not in a subshell: sudo keeps the request for it alone, and its
        // rule's one other split is answered by `runcwd` (see `sudoers`).
        ssh.remote_program(&crate::contract::quote::shell_join(&handover.argv))
    )
}
