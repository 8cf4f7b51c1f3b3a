//! The sudoers drop-in under `remote_sudo`: one rule per command, its arguments as sudo matches
//! them (joined by spaces), each command one shell text in a subshell whose other splits no
//! shell runs (`ssh::sudo_argv`), proven for a hook's text by asking the shells.

use super::host_filter::{first_line, HostFilter};
use crate::contract::step::{Chars, Command, Host};

/// The sudoers form of a command: its program, and its arguments as a regular expression that
/// sudo (1.9.10 and later) matches against them joined by spaces: the fixed text literal, each
/// `{}` one or more of `chars`. An argument sudoers cannot hold (a newline) is an error.
pub(super) fn sudo_entry(words: &[String], chars: Option<Chars>) -> Result<(String, String), String> {
    let Some((program, args)) = words.split_first() else { return Err("an empty command".into()) };
    // The installer finds the program by this name and writes its path into the rule.
    if program.is_empty() || !program.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.+-/".contains(&b)) {
        return Err(format!(
            "the program `{}` is no name a sudoers rule can hold: give the hook a plain program name or path",
            crate::contract::kinds::shown(program)
        ));
    }
    let joined = args.join(" ");
    if joined.contains(['\n', '\r']) {
        return Err(format!(
            "`{}` spans lines, which a sudoers rule cannot allow: put it in a script on the host, and call that",
            first_line(&joined)
        ));
    }
    // A shell text in ari's subshell (`ssh::sudo_argv`, a hook's): the shells here must run the
    // whole and refuse every other split of it. An argv's needs no such proof: its words are
    // quoted, so no `(`, `)` or `#` of theirs counts.
    if let [c, script] = args {
        if program == "/bin/sh" && c == "-c" && script.starts_with("( ") && !script.starts_with("( exec ") {
            only_the_whole_runs(script).map_err(|why| {
                format!(
                    "`{}` {why}: under remote_sudo each command runs as one `( ... )` text, which sudo also admits cut short; put it in a script on the host, and call that",
                    crate::contract::kinds::shown(first_line(script))
                )
            })?;
        }
    }
    let mut regex = String::from("^");
    let mut parts = joined.split("{}").peekable();
    while let Some(part) = parts.next() {
        regex.push_str(&sudoers_literal(part));
        if parts.peek().is_some() {
            let chars = chars.ok_or("a `{}` without its characters")?;
            regex.push_str(&format!("[{}]+", chars.set));
        }
    }
    regex.push('$');
    if regex.len() > SUDOERS_ARGS_MAX {
        let head: String = first_line(&joined).chars().take(80).collect();
        return Err(format!(
            "`{program} {}...` is too long for a sudoers rule: its arguments take {} characters there, and sudo matches none longer than {SUDOERS_ARGS_MAX}; shorten it (a hook: put it in a script on the host)",
            crate::contract::kinds::shown(&head),
            regex.len()
        ));
    }
    Ok((program.clone(), regex))
}

/// Whether `script` (`( TEXT )`) runs whole and no piece of it does: this machine's shells
/// (`/bin/sh`, and bash where there is one) parse the whole (`sh -n -c`) and refuse every piece
/// cut before a space, as sudo's joined match admits them. A shell that cannot be started
/// counts against it: what is not proven refused is not admitted.
fn only_the_whole_runs(script: &str) -> Result<(), String> {
    let shells: Vec<&str> =
        ["/bin/sh", "/bin/bash"].into_iter().filter(|s| std::path::Path::new(s).exists()).collect();
    let runner = crate::engine::runner::Runner::new(crate::contract::ssh::Ssh::new("ssh"), false);
    let parses = |text: &str| {
        shells
            .iter()
            .map(|shell| runner.run(&Command::argv(Host::Local, [*shell, "-n", "-c", text])))
            .collect::<Vec<_>>()
    };
    if !parses(script).iter().all(Result::is_ok) {
        return Err(
            "is no shell text the subshell runs (it does not parse there, or a `#` comment hides its `)`)"
                .into(),
        );
    }
    let runs = |piece: &str| {
        parses(piece)
            .iter()
            .any(|parsed| !matches!(parsed, Err(crate::engine::process::ProcessError::Exited { .. })))
    };
    match script.match_indices(' ').map(|(cut, _)| &script[..cut]).find(|piece| runs(piece)) {
        Some(piece) => Err(format!(
            "has a piece that a shell runs on its own (`{}`)",
            crate::contract::kinds::shown(piece)
        )),
        None => Ok(()),
    }
}

/// The path on which the drop-in's commands find their programs (sudoers' `secure_path`,
/// Debian's own): never the remote user's PATH, which that user could fill.
const SECURE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The longest argument text (`^...$`, with its backslashes) of a sudoers rule that sudo still
/// matches: sudo 1.9.13 (Debian 12) parses a longer one without a complaint, `visudo -c` too, and
/// then matches no command against it.
pub(super) const SUDOERS_ARGS_MAX: usize = 1023;

/// `text` as literal text in a sudoers regular expression: the ERE's special characters and
/// sudoers' own (`#`, `,`, `:`, `=`, `!`) behind a backslash, and nothing else (glibc gives `\<`,
/// `\>`, `\'` and the like meanings of their own).
fn sudoers_literal(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '.' | '[' | ']' | '(' | ')' | '*' | '+' | '?' | '{' | '}' | '|' | '^' | '$' | '\\' | '#'
            | ',' | ':' | '=' | '!' => format!("\\{c}"),
            c => c.to_string(),
        })
        .collect()
}

impl HostFilter {
    /// The sudoers drop-in for a non-root remote user (`remote_sudo`): one rule per command,
    /// `@PROGRAM@` standing for the program's path on the host, which the installer fills in
    /// (`command -v` under sudo's secure_path). None without `remote_sudo`.
    pub fn sudoers(&self) -> Option<String> {
        if !self.ssh.sudo {
            return None;
        }
        let user = self.destination.split_once('@').map_or("USER", |(user, _)| user);
        let mut out = format!(
            "# ari's sudoers drop-in for {} (jobs: {}), generated by `ari authorize` of ari {}.\n\
             # It lets {user} run as root exactly the commands of these jobs, each through `sudo -n`.\n\
             # Each runs from `/`: sudo matches a rule's arguments joined by spaces, so a rule also\n\
             # admits other splits of its words, whose relative paths then name nothing {user} made;\n\
             # and each finds its programs on this path alone, not on {user}'s.\n\
             Defaults:{user} runcwd=/, env_reset, secure_path=\"{SECURE_PATH}\"\n",
            self.destination,
            self.jobs.join(", "),
            env!("CARGO_PKG_VERSION")
        );
        let path = |program: &str| {
            if program.starts_with('/') {
                program.to_string()
            } else {
                format!("@{program}@")
            }
        };
        for (program, args) in &self.sudo_entries {
            let args = if args == "^$" { "\"\"".to_string() } else { args.clone() };
            out.push_str(&format!("{user} ALL=(root) NOPASSWD: {} {args}\n", path(program)));
        }
        // sudo resets the environment; the request the filter hands a program is kept for that
        // program alone (the program judges it: the filter wrote it from what it matched).
        for (program, variable) in &self.sudo_env_keep {
            out.push_str(&format!("Defaults!{} env_keep += \"{variable}\"\n", path(program)));
        }
        Some(out)
    }
}
