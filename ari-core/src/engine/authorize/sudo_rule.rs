//! One command as a sudoers rule (`remote_sudo`): its program, and its arguments as the regular
//! expression sudo matches them with, within what sudo can match. Used by the drop-in
//! (`sudoers.rs`), and by the plan of a command whose line is long (the spot check), so that a
//! job that no rule could allow is refused before anything runs.

use crate::contract::step::{Chars, Command, Host};

/// The sudoers form of a command: its program, and its arguments as a regular expression that
/// sudo (1.9.10 and later) matches against them joined by spaces: the fixed text literal, each
/// `{}` one or more of `chars`. An argument sudoers cannot hold (a newline) is an error.
pub(crate) fn sudo_entry(words: &[String], chars: Option<Chars>) -> Result<(String, String), String> {
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

/// The longest argument text (`^...$`, with its backslashes) of a sudoers rule that sudo still
/// matches: sudo 1.9.13 (Debian 12) parses a longer one without a complaint, `visudo -c` too, and
/// then matches no command against it.
pub(crate) const SUDOERS_ARGS_MAX: usize = 1023;

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

/// The first line of `text`.
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
