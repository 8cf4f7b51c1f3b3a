//! `ari authorize`: the only commands ari's key may run on a host, from the plans of the jobs
//! that touch it, as a POSIX sh filter for the key's `command="..."`.
//!
//! Every remote command a job runs is in its plan as data: its steps' commands, their undos and
//! probes (which recovery after a crash runs too), the store's history query, and what a step
//! declares it may run beyond them ([`crate::contract::step::CommandPattern`]: a dynamic step's expansions,
//! which the pipeline refuses to run when they match none, and what a local tool starts there
//! through the job's ssh). To those ari adds its own: `true` (`ari check --connect`) and the
//! script that stops a remote process group. The filter takes the command line sshd hands it
//! (`SSH_ORIGINAL_COMMAND`), takes off ari's remote wrapper (its marker with a nonce of 16 hex
//! digits and its watcher, or the watcher alone, exactly as `remote::prefix` writes them), lets
//! the rest through only when it is one of the job's commands exactly or matches one of their
//! patterns, and then `exec`s the whole line with `/bin/sh -c`, so that the watcher's `$PPID`
//! is still sshd's session process. Anything else is refused and logged to syslog.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::contract::core_settings::{AUTHORIZED_KEYS_FILE, SSH_FILTER_PATH, SSH_KEY_OPTIONS};
use crate::contract::quote::single_quoted;
use crate::contract::ssh::{MARKER_START, WATCHER};
use crate::contract::step::{Chars, Command, CommandPattern, Host};
use crate::engine::plan::JobPlan;
use crate::engine::remote::KILL_TEMPLATE;

mod host_filter;
mod installed;
mod installer;
pub(crate) mod sudo_rule;
mod sudoers;

pub(crate) use host_filter::sha256_hex;
pub use host_filter::{check_key_blob, HostFilter};
use host_filter::{digest, double_quoted_template, handover_text};
use sudo_rule::{first_line, sudo_entry};

pub(crate) use installed::FILTER_FORMAT;
pub use installed::{
    handover_probes, login_shell_query, login_shell_warning, out_of_date, read_back, remote_user,
};
use installed::{rules_digest, FORMAT_LINE, JOB_LINE, RULES_LINE, SUDOERS_LINE, VERSION_LINE};

/// One host's filter as `ari authorize --json` shows it.
#[derive(Debug, Serialize)]
struct FilterJson<'a> {
    host: &'a str,
    destination: &'a str,
    jobs: &'a [String],
    filter_path: &'a str,
    filter_sha256: &'a str,
    key_options: String,
    allowed: &'a BTreeSet<String>,
    allowed_patterns: Vec<PatternJson<'a>>,
    filter: &'a str,
    sudoers: Option<String>,
    notes: &'a BTreeSet<String>,
    authorized_keys_line: String,
}

/// A command line the filter allows with a variable part.
#[derive(Debug, Serialize)]
struct PatternJson<'a> {
    template: &'a str,
    variable: &'static str,
    characters: &'static str,
    handed_to: Option<String>,
}

impl HostFilter {
    /// As data, for `ari authorize --json`, with the key's `authorized_keys` line.
    pub fn to_json(&self, authorized_keys_line: String) -> serde_json::Value {
        let json = FilterJson {
            host: &self.host,
            destination: &self.destination,
            jobs: &self.jobs,
            filter_path: &self.path,
            filter_sha256: &self.checksum,
            key_options: self.key_options(),
            allowed: &self.exact,
            allowed_patterns: self
                .patterns
                .iter()
                .map(|p| PatternJson {
                    template: &p.template,
                    variable: p.chars.what,
                    characters: p.chars.set,
                    handed_to: p.handover.as_ref().map(|h| handover_text(&self.ssh, h)),
                })
                .collect(),
            filter: &self.script,
            sudoers: self.sudoers(),
            notes: &self.notes,
            authorized_keys_line,
        };
        serde_json::to_value(json).unwrap_or_default()
    }
}

/// Everything a plan runs on remote hosts, by host: exact lines and patterns.
/// What one job runs on one host: exact lines, patterns, and (for sudoers) the commands as
/// argv (a pattern's with `{}` in its arguments).
#[derive(Debug, Default)]
struct OnHost {
    exact: BTreeSet<String>,
    patterns: Vec<CommandPattern>,
    argv: BTreeSet<(Vec<String>, Option<Chars>)>,
    env_keep: BTreeSet<(String, String)>,
    notes: BTreeSet<String>,
}

fn remote_commands(plan: &JobPlan) -> BTreeMap<String, OnHost> {
    let mut by_host: BTreeMap<String, OnHost> = BTreeMap::new();
    // As the host's shell gets them: through sudo under remote_sudo.
    let exact = |command: &Command, by_host: &mut BTreeMap<String, OnHost>| {
        if let Host::Remote(host) = &command.host {
            let on = by_host.entry(host.clone()).or_default();
            on.exact.insert(plan.ssh.remote_text(&command.program));
            on.argv.insert((crate::contract::ssh::sudo_argv(&command.program).to_vec(), None));
        }
    };
    let history = plan.history.as_ref().map(|query| &query.command);
    for step in plan.steps() {
        // A spot check's sides carry the run's seed: their patterns below allow them.
        if !matches!(step.action, crate::contract::step::Action::Verify(_)) {
            exact(step.action.command(), &mut by_host);
        }
        if let Some(probe) = &step.present {
            exact(&probe.query, &mut by_host);
        }
        // A dump's writer, on the store's host: as fixed as the dump itself.
        if let crate::contract::step::Action::Dump(stream) = &step.action {
            exact(&stream.writer, &mut by_host);
        }
        // A gathering step's queries, each as fixed as its first.
        if let crate::contract::step::Action::Gather { queries, .. } = &step.action {
            for query in &queries[1..] {
                exact(query, &mut by_host);
            }
        }
        // A dynamic step's expansions are argv commands that ari runs (through sudo as any of
        // its own); what another step declares is what its tool starts through the job's ssh.
        // So are a spot check's sides, each an argv that ends in the run's seed.
        let expands = matches!(
            step.action,
            crate::contract::step::Action::Dynamic { .. }
                | crate::contract::step::Action::Gather { .. }
                | crate::contract::step::Action::Retention(_)
                | crate::contract::step::Action::Verify(_)
        );
        for pattern in &step.may_run {
            let Host::Remote(host) = &pattern.host else { continue };
            let on = by_host.entry(host.clone()).or_default();
            on.notes.extend(pattern.note.clone());
            let variable = pattern.template.contains("{}");
            match &pattern.handover {
                // What sudo runs is the program the filter hands the request to, and only it.
                Some(handover) => {
                    on.argv.insert((handover.argv.clone(), None));
                    if let Some(program) = handover.argv.first() {
                        on.env_keep.insert((program.clone(), handover.variable.to_string()));
                    }
                }
                None if expands => {
                    let words = crate::contract::ssh::sudo_words(&pattern.template, true).to_vec();
                    on.argv.insert((words, variable.then_some(pattern.chars)));
                }
                None => {
                    let words = shell_words::split(&pattern.template)
                        .unwrap_or_else(|_| vec![pattern.template.clone()]);
                    on.argv.insert((words, variable.then_some(pattern.chars)));
                }
            }
            let mut pattern = pattern.clone();
            pattern.template = if expands {
                plan.ssh.remote_argv_template(&pattern.template)
            } else {
                plan.ssh.remote_program(&pattern.template)
            };
            if !variable {
                on.exact.insert(pattern.template.clone());
            } else if !on.patterns.contains(&pattern) {
                on.patterns.push(pattern);
            }
        }
    }
    if let Some(query) = history {
        exact(query, &mut by_host);
    }
    // `ari verify --full`'s checks of the whole store (a ZFS pool's status): none depends on
    // the backups the store holds, except rdiff's, which run on the backup server.
    for check in plan.store_checks(&[]).unwrap_or_default() {
        exact(&check.command, &mut by_host);
    }
    // And its reading of each dump the store keeps.
    for (_, command, _) in crate::engine::dumps::checks(&plan.dumps) {
        exact(&command, &mut by_host);
    }
    // Hosts that only a tool reaches (rdiff-backup's source) are in the plan's hosts too.
    for host in plan.hosts() {
        if let Host::Remote(host) = Host::named(&host) {
            by_host.entry(host).or_default();
        }
    }
    by_host
}

/// The filters for every host that `plans` touch (only `only_host`'s, when given), one per
/// destination; jobs that reach one host as different users get one filter per user. Errors
/// name jobs that disagree on the filter's path for one destination.
pub fn filters(plans: &[&JobPlan], only_host: Option<&str>) -> Result<Vec<HostFilter>, String> {
    let mut by_destination: BTreeMap<String, HostFilter> = BTreeMap::new();
    for plan in plans {
        let path = plan.settings.get(&SSH_FILTER_PATH);
        let extra_options = plan.settings.get(&SSH_KEY_OPTIONS);
        let keys_file = plan.settings.get(&AUTHORIZED_KEYS_FILE);
        for (host, OnHost { exact, patterns, argv, env_keep, notes }) in remote_commands(plan) {
            if only_host.is_some_and(|only| only != host) {
                continue;
            }
            let destination = plan.ssh.destination(&host);
            let filter = by_destination.entry(destination.clone()).or_insert_with(|| HostFilter {
                host: host.clone(),
                destination: destination.clone(),
                ssh: plan.ssh.clone(),
                path: path.clone(),
                extra_options: extra_options.clone(),
                keys_file: keys_file.clone(),
                jobs: Vec::new(),
                job_digests: BTreeMap::new(),
                exact: BTreeSet::new(),
                patterns: Vec::new(),
                notes: BTreeSet::new(),
                sudo_entries: BTreeSet::new(),
                sudo_env_keep: BTreeSet::new(),
                script: String::new(),
                checksum: String::new(),
            });
            if filter.ssh.sudo != plan.ssh.sudo {
                return Err(format!(
                    "jobs {} and {} reach {destination} one with remote_sudo and one without; one host has one filter",
                    filter.jobs.join(", "),
                    plan.label()
                ));
            }
            if filter.extra_options != extra_options || filter.keys_file != keys_file {
                return Err(format!(
                    "jobs {} and {} set different ssh_key_options or authorized_keys_file for {destination}; one host has one key line",
                    filter.jobs.join(", "),
                    plan.label()
                ));
            }
            if filter.path != path {
                return Err(format!(
                    "jobs {} and {} set different ssh_filter_path for {destination} ({} and {path}); one host has one filter",
                    filter.jobs.join(", "),
                    plan.label(),
                    filter.path
                ));
            }
            filter.jobs.push(plan.label().to_string());
            filter.job_digests.insert(plan.label().to_string(), digest(&plan.ssh, &exact, &patterns));
            filter.exact.extend(exact);
            filter.notes.extend(notes);
            if plan.ssh.sudo {
                for (words, chars) in argv {
                    filter.sudo_entries.insert(sudo_entry(&words, chars)?);
                }
                filter.sudo_env_keep.extend(env_keep);
            }
            for pattern in patterns {
                if !filter.patterns.contains(&pattern) {
                    filter.patterns.push(pattern);
                }
            }
        }
    }
    let mut filters: Vec<HostFilter> = by_destination.into_values().collect();
    for filter in &mut filters {
        // ari's own: the connection check, reading the installed filter back, the remote user's
        // login shell, and stopping a command's process group.
        let ssh = &filter.ssh;
        filter.exact.insert(ssh.remote_text(&crate::contract::step::Program::Argv(vec!["true".to_string()])));
        filter.exact.insert(ssh.remote_text(&read_back(filter).program));
        // Without sudo even under remote_sudo: any user may read the user database, and the
        // drop-in then needs no rule for it.
        filter.exact.insert(ssh.clone().sudo(false).remote_text(&login_shell_query(filter).program));
        // And, as plainly, whether each program the filter hands a request to can run there.
        for probe in handover_probes(filter) {
            filter.exact.insert(ssh.clone().sudo(false).remote_text(&probe.program));
        }
        let stop = CommandPattern::with_variable(
            Host::Remote(filter.host.clone()),
            crate::engine::remote::kill_text(ssh, KILL_TEMPLATE),
            Chars::DIGITS,
        );
        if !filter.patterns.contains(&stop) {
            filter.patterns.push(stop);
        }
        if filter.ssh.sudo {
            use crate::contract::step::Program;
            let own = [
                (Program::Argv(vec!["true".to_string()]), None),
                (read_back(filter).program, None),
                (Program::Shell(KILL_TEMPLATE.to_string()), Some(Chars::DIGITS)),
            ];
            for (program, chars) in own {
                filter.sudo_entries.insert(sudo_entry(&crate::contract::ssh::sudo_argv(&program), chars)?);
            }
        }
        filter.script = script(filter);
        filter.checksum = sha256_hex(filter.script.as_bytes());
    }
    Ok(filters)
}

/// The filter script.
fn script(filter: &HostFilter) -> String {
    let mut out = String::new();
    out.push_str("#!/bin/sh\n");
    out.push_str(&format!(
        "# ari's ssh filter for {} (jobs: {}), generated by `ari authorize` of ari {}.\n",
        filter.destination,
        filter.jobs.join(", "),
        env!("CARGO_PKG_VERSION")
    ));
    out.push_str(
        "# The forced command of ari's key: it lets through exactly the commands of these jobs,\n\
         # after ari's remote wrapper, and refuses everything else, logging it to syslog\n\
         # (auth.warning, tag ari-filter). Install it unchanged: `ari check --connect` compares\n\
         # its SHA-256 with the one the jobs need. Regenerate it when a job changes.\n",
    );
    out.push_str(&format!("{VERSION_LINE}{}\n", env!("CARGO_PKG_VERSION")));
    out.push_str(&format!("{FORMAT_LINE}{FILTER_FORMAT}\n"));
    out.push_str(&format!("{RULES_LINE}{}\n", rules_digest(filter)));
    if let Some(sudoers) = filter.sudoers() {
        out.push_str(&format!("{SUDOERS_LINE}{}\n", sha256_hex(sudoers.as_bytes())));
    }
    for (job, digest) in &filter.job_digests {
        out.push_str(&format!("{JOB_LINE}{job} {digest}\n"));
    }
    out.push_str("set -f\n");
    out.push_str("cmd=${SSH_ORIGINAL_COMMAND-}\n");
    out.push_str(
        "refuse() {\n\
         \tshown=$cmd; [ ${#shown} -le 2000 ] || shown=\"$(printf '%.2000s' \"$cmd\")...\"\n\
         \tlogger -t ari-filter -p auth.warning -- \"refused for $USER from ${SSH_CLIENT%% *}: $1: $shown\" 2>/dev/null\n\
         \techo \"ari-filter: refused ($1): ari's key may run only the commands of its jobs here\" >&2\n\
         \texit 126\n\
         }\n",
    );
    out.push_str("[ -n \"$cmd\" ] || refuse 'no command (a login)'\n");
    out.push_str(&format!("marker={}\n", single_quoted(MARKER_START)));
    out.push_str(&format!("watcher={}\n", single_quoted(WATCHER)));
    out.push_str(
        "case $cmd in\n\
         \"$marker\"*)\n\
         \tnonce=${cmd#\"$marker\"}\n\
         \tnonce=${nonce%%[!0-9a-f]*}\n\
         \t[ ${#nonce} -eq 16 ] || refuse 'a marker without its nonce'\n\
         \twrapper=\"$marker$nonce \\$\\$ >&2; $watcher\"\n\
         \tcase $cmd in\n\
         \t\"$wrapper\"*) body=${cmd#\"$wrapper\"} ;;\n\
         \t*) refuse 'not ari'\\''s remote wrapper' ;;\n\
         \tesac ;;\n\
         \"$watcher\"*) body=${cmd#\"$watcher\"} ;;\n\
         *) body=$cmd ;;\n\
         esac\n",
    );
    out.push_str("ok=\n");
    out.push_str("case $body in\n");
    for line in &filter.exact {
        out.push_str(&format!("{}) ok=1 ;;\n", single_quoted(line)));
    }
    out.push_str("esac\n");
    for pattern in &filter.patterns {
        let Some((fixed, _)) = pattern.template.split_once("{}") else { continue };
        out.push_str(&format!(
            "# {}: `{{}}` is {} ({})\n",
            first_line(&pattern.template),
            pattern.chars.what,
            pattern.chars.set
        ));
        // A handed-over command is replaced, after ari's remote wrapper, by its handover.
        let then = match &pattern.handover {
            None => "ok=1".to_string(),
            Some(handover) => {
                out.push_str(&format!("# ... run as: {}\n", handover_text(&filter.ssh, handover)));
                format!(
                    "ok=1; cmd=\"${{cmd%\"$body\"}}\"{}",
                    double_quoted_template(&handover_text(&filter.ssh, handover))
                )
            }
        };
        if pattern.independent {
            out.push_str(&parts_check(&pattern.template, pattern.chars.set));
            continue;
        }
        out.push_str(&format!(
            "if [ -z \"$ok\" ]; then v=${{body#{fixed}}}; if [ \"$v\" != \"$body\" ]; then v=${{v%%[!{set}]*}}; if [ -n \"$v\" ] && [ \"$body\" = {expected} ]; then {then}; fi; fi; fi\n",
            fixed = single_quoted(fixed),
            set = pattern.chars.set,
            expected = double_quoted_template(&pattern.template),
        ));
    }
    out.push_str("[ -n \"$ok\" ] || refuse 'not a command of the jobs'\n");
    out.push_str("exec /bin/sh -c \"$cmd\"\n");
    out
}

/// The filter's check of a pattern whose `{}` parts are independent
/// ([`CommandPattern::argv_parts`]): each fixed text in turn must follow, each part is the
/// longest run of `set` after it and not empty, and the last fixed text must end the line.
fn parts_check(template: &str, set: &str) -> String {
    let mut fixed: Vec<&str> = template.split("{}").collect();
    let last = fixed.pop().unwrap_or_default();
    let mut out = String::from("if [ -z \"$ok\" ]; then r=$body; f=1; ");
    for text in fixed {
        let text = single_quoted(text);
        out.push_str(&format!(
            "if [ -n \"$f\" ]; then case $r in {text}*) r=${{r#{text}}}; v=${{r%%[!{set}]*}}; if [ -n \"$v\" ]; then r=${{r#\"$v\"}}; else f=; fi ;; *) f= ;; esac; fi; "
        ));
    }
    out.push_str(&format!("if [ -n \"$f\" ] && [ \"$r\" = {} ]; then ok=1; fi; fi\n", single_quoted(last)));
    out
}

#[cfg(test)]
mod tests {
    use super::sudo_rule::SUDOERS_ARGS_MAX;
    use super::*;

    #[test]
    fn the_wrapper_the_filter_takes_off_is_the_one_ari_puts_on() {
        let wrapped = crate::contract::ssh::prefix(Some("0123456789abcdef"));
        assert_eq!(wrapped, format!("{MARKER_START}0123456789abcdef $$ >&2; {WATCHER}"));
        assert_eq!(crate::contract::ssh::prefix(None), WATCHER);
        assert_eq!(crate::engine::remote::kill_script(42), KILL_TEMPLATE.replace("{}", "42"));
    }

    #[test]
    fn templates_become_double_quoted_strings_with_the_value_in_place() {
        assert_eq!(double_quoted_template("kill -{} $x \"`a`\""), "\"kill -${v} \\$x \\\"\\`a\\`\\\"\"");
        assert_eq!(single_quoted("it's"), "'it'\\''s'");
    }

    #[test]
    fn the_stop_script_matches_its_pattern_with_sudo_and_without() {
        for sudo in [false, true] {
            let ssh = crate::contract::ssh::Ssh::new("ssh").sudo(sudo);
            let pattern = CommandPattern::with_variable(
                Host::named("h"),
                crate::engine::remote::kill_text(&ssh, KILL_TEMPLATE),
                Chars::DIGITS,
            );
            let sent = crate::engine::remote::kill_text(&ssh, &crate::engine::remote::kill_script(4242));
            assert!(pattern.matches(&sent), "{sent}");
            assert_eq!(sent.starts_with("sudo -n -- /bin/sh -c '( g=4242; "), sudo, "{sent}");
            for tampered in [
                sent.replace(" -gt 1 ]", " -gt 0 ]"),
                sent.replacen("4242", "4242 ", 1),
                sent.replacen("4242", "1; kill -TERM -1", 1),
                sent.replacen("g=4242", "g=-1", 1),
            ] {
                assert!(!pattern.matches(&tampered), "{tampered}");
            }
        }
    }

    #[test]
    fn only_a_whole_key_finds_the_lines_to_replace() {
        let ed25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIIi3/KiBx6I57HhhK0BWRDin8cFptzgqsjcSwWimX1YT";
        assert!(check_key_blob(ed25519).is_ok());
        for bad in ["", "A", "AAAA", &ed25519[..40], &format!("{ed25519};rm"), &format!("{ed25519} x")] {
            assert!(check_key_blob(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_sudoers_rule_holds_a_plain_program_and_its_arguments_literally() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            sudo_entry(&words(&["mount", "-o", "ro,noatime", "/dev/x", "/mnt"]), None).unwrap(),
            ("mount".to_string(), "^-o ro\\,noatime /dev/x /mnt$".to_string())
        );
        assert_eq!(
            sudo_entry(
                &words(&["zfs", "snapshot", "p/x@a-{}"]),
                Some(Chars::new("a ZFS name part", "A-Za-z0-9_.:-"))
            )
            .unwrap()
            .1,
            "^snapshot p/x@a-[A-Za-z0-9_.:-]+$"
        );
        assert!(sudo_entry(&words(&["/bin/sh", "-c", "a\nb"]), None).is_err(), "a line break");
        assert!(sudo_entry(&words(&["x|y", "z"]), None).is_err(), "a program sed and sudoers cannot hold");
        let long = "a".repeat(SUDOERS_ARGS_MAX - "^-c $".len());
        assert!(sudo_entry(&words(&["/bin/sh", "-c", &long]), None).is_ok(), "the longest rule sudo matches");
        let err = sudo_entry(&words(&["/bin/sh", "-c", &format!("{long}a")]), None).unwrap_err();
        assert!(err.contains("too long for a sudoers rule"), "{err}");
    }

    /// A filter for jobs `a` and `b` on `h`, as `filters` finishes one.
    fn made(sudo: bool) -> HostFilter {
        let mut filter = HostFilter {
            host: "h".into(),
            destination: "backup@h".into(),
            ssh: crate::contract::ssh::Ssh {
                user: Some("backup".into()),
                ..crate::contract::ssh::Ssh::new("ssh")
            }
            .sudo(sudo),
            path: "/usr/local/sbin/ari-filter".into(),
            extra_options: None,
            keys_file: None,
            jobs: vec!["a".into(), "b".into()],
            job_digests: [("a".to_string(), "1".repeat(64)), ("b".to_string(), "2".repeat(64))].into(),
            exact: ["true".to_string(), "lvs vg0".to_string()].into(),
            patterns: vec![CommandPattern::with_variable(
                Host::named("h"),
                "zfs snapshot p@x-{}",
                Chars::DIGITS,
            )],
            notes: BTreeSet::new(),
            sudo_entries: [("lvs".to_string(), "^vg0$".to_string())].into(),
            sudo_env_keep: BTreeSet::new(),
            script: String::new(),
            checksum: String::new(),
        };
        filter.script = script(&filter);
        filter.checksum = sha256_hex(filter.script.as_bytes());
        filter
    }

    #[test]
    #[allow(clippy::disallowed_methods)] // the proof is what the real sh does with the filter
    fn a_pattern_of_independent_parts_lets_through_only_its_own_shape() {
        let mut filter = made(false);
        filter.patterns = vec![CommandPattern::argv_parts(
            Host::named("h"),
            ["zfs", "send", "-I", "p/x@a-{}", "p/x@a-{}"],
            Chars::new("a ZFS name part", "A-Za-z0-9_.:-"),
        )];
        filter.script = script(&filter);
        let exit = |line: &str| {
            let run = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(&filter.script)
                .env("SSH_ORIGINAL_COMMAND", line)
                .env("PATH", "/nonexistent")
                .output()
                .unwrap();
            run.status.code()
        };
        // Let through: sh then finds no zfs (127); refused: 126.
        for line in
            ["zfs send -I p/x@a-1 p/x@a-2", "zfs send -I p/x@a-2026-12-01--0300 p/x@a-2026-12-02--0300"]
        {
            assert_eq!(exit(line), Some(127), "{line}");
        }
        for line in [
            "zfs send -I p/x@a-1 p/y@a-2",
            "zfs send -I p/x@a- p/x@a-2",
            "zfs send -I p/x@a-1 p/x@a-",
            "zfs send -I p/x@a-1 p/x@a-2 p/x@a-3",
            "zfs send -I p/x@a-1 -R p/x@a-2",
            "zfs send -I p/x@a-1 p/x@a-2;id",
            "zfs send -I p/x@a-1 p/x@a-2 ",
            "zfs send -I p/x@a-1  p/x@a-2",
            "zfs send -I p/x@a-1 p/x@a-$(id)",
        ] {
            assert_eq!(exit(line), Some(126), "{line}");
        }
    }

    /// The reasons `out_of_date` gives for the filter's script with `edit` made to it.
    fn check(sudo: bool, edit: impl Fn(&str) -> String, expected: &[&str]) {
        let filter = made(sudo);
        let installed = edit(&filter.script);
        assert_eq!(out_of_date(&filter, &installed), expected, "{installed}");
    }

    #[test]
    fn the_filter_header_says_what_made_it_and_check_names_every_difference() {
        let version = env!("CARGO_PKG_VERSION");
        let header = made(true).script;
        for line in [
            format!("# ari version {version}\n"),
            "# ari filter-format 2\n".to_string(),
            format!("# ari rules {}\n", rules_digest(&made(true))),
            format!("# ari sudoers {}\n", sha256_hex(made(true).sudoers().unwrap().as_bytes())),
            format!("# ari job a {}\n", "1".repeat(64)),
        ] {
            assert!(header.contains(&line), "{line}: {header}");
        }
        assert!(!made(false).script.contains("# ari sudoers "), "no drop-in without remote_sudo");

        let drop = |prefix: &'static str| {
            move |s: &str| -> String {
                s.lines().filter(|l| !l.starts_with(prefix)).map(|l| format!("{l}\n")).collect()
            }
        };
        let swap = |from: String, to: String| move |s: &str| -> String { s.replace(&from, &to) };
        check(true, |s| s.to_string(), &[]);
        check(false, |s| s.to_string(), &[]);
        check(
            false,
            |s| drop("# ari version ")(&drop("# ari filter-format ")(&drop("# ari rules ")(s))),
            &["it was made by an ari older than 0.4.0"],
        );
        check(
            false,
            swap(format!("# ari version {version}"), "# ari version 0.3.0".into()),
            &[&format!("it was made by ari 0.3.0, this is ari {version}")],
        );
        check(
            false,
            swap("# ari filter-format 2".into(), "# ari filter-format 1".into()),
            &["its filter-format is 1, this ari writes 2"],
        );
        check(
            false,
            swap(
                format!("# ari rules {}", rules_digest(&made(false))),
                format!("# ari rules {}", "0".repeat(64)),
            ),
            &["it lets through other commands than the jobs run now"],
        );
        let sudoers = sha256_hex(made(true).sudoers().unwrap().as_bytes());
        check(
            true,
            swap(format!("# ari sudoers {sudoers}"), format!("# ari sudoers {}", "0".repeat(64))),
            &["its sudoers drop-in was made for other commands"],
        );
        check(true, drop("# ari sudoers "), &["it was made without remote_sudo, and the jobs set it"]);
        check(
            false,
            |s| s.replace("# ari job a", "# ari sudoers 0\n# ari job a"),
            &["it was made for remote_sudo, and the jobs no longer set it"],
        );
        check(
            false,
            swap(format!("# ari job a {}", "1".repeat(64)), format!("# ari job a {}", "3".repeat(64))),
            &["job a changed since the filter was made"],
        );
        check(false, drop("# ari job b "), &["job b is not in the filter"]);
        check(
            false,
            |s| s.replace("exec /bin/sh", "exec  /bin/sh"),
            &["it is not the filter this ari makes for the jobs (it was changed after it was made)"],
        );
    }

    #[test]
    fn a_login_shell_that_reads_a_startup_file_is_warned_of() {
        let warning = |entry: &str| login_shell_warning("backup", "h", entry);
        assert_eq!(
            warning("backup:x:1:1::/home/backup:/bin/bash").as_deref(),
            Some("backup's login shell on h is /bin/bash, which runs ~/.bashrc before ari's filter: use /bin/sh (chsh -s /bin/sh backup)")
        );
        assert!(warning("backup:x:1:1::/home/backup:/usr/bin/zsh").unwrap().contains("runs ~/.zshenv"));
        assert!(warning("backup:x:1:1::/home/backup:/bin/ksh").unwrap().contains("runs its startup files"));
        for plain in ["/bin/sh", "/bin/dash", "/usr/bin/dash", "/bin/false", "/usr/sbin/nologin", ""] {
            assert_eq!(warning(&format!("backup:x:1:1::/home/backup:{plain}")), None, "{plain}");
        }
        assert_eq!(warning(""), None, "no entry: nothing to say");
    }

    #[test]
    fn a_hook_with_a_piece_a_shell_runs_on_its_own_is_no_sudoers_rule() {
        let rule = |text: &str| {
            sudo_entry(
                &crate::contract::ssh::sudo_argv(&crate::contract::step::Program::Shell(text.to_string())),
                None,
            )
        };
        // A `case` in the subshell is fine: its `)` closes nothing of ari's.
        for fine in [
            "echo hooked > /tmp/x",
            "mysqldump db > /root/db.sql",
            "echo \"$(date)\" >> /var/log/x",
            "case $x in a) id ;; esac",
        ] {
            assert!(rule(fine).is_ok(), "{fine}: {:?}", rule(fine));
        }
        // Texts a shell closes early (a third review found these past a paren count), and a
        // comment that hides the subshell's end.
        for cut in [
            "echo ${x#(} ) ; echo PWNED > /tmp/x ; ( true",
            "echo ${x:-(} ) ; id ; ( true",
            "echo \"$(echo \"(\")\" ) ; id ; ( true",
            "echo a ) ; id ; ( b",
            "echo a # a comment",
        ] {
            let err = rule(cut).unwrap_err();
            assert!(err.contains("put it in a script on the host"), "{cut}: {err}");
        }
    }

    #[test]
    fn checksums_are_sha256sums() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
