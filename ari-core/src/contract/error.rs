//! Configuration errors: every one names the file, the line and column when known, and the key.
//!
//! Errors from YAML parsing arrive from `serde_yaml` with a position and a key path; this module
//! turns them into [`ConfigError`], adding "did you mean" suggestions for unknown names.

use std::fmt;
use std::path::{Path, PathBuf};

/// A bad config file, job file or command-line value, found before anything runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the error is in; `None` for the command line.
    #[doc(hidden)]
    pub file: Option<PathBuf>,
    /// 1-based line and column of the offending value, when known.
    #[doc(hidden)]
    pub position: Option<(usize, usize)>,
    /// The message; it names the key (`ssh_port: invalid type ...`).
    #[doc(hidden)]
    pub message: String,
    /// The file's further errors, in file order, each shown on a line of its own after this
    /// one, so that one run reports every error of a file; empty for most errors.
    #[doc(hidden)]
    pub others: Vec<ConfigError>,
}

impl ConfigError {
    /// An error in `file` without a position (for example a missing required key).
    #[doc(hidden)]
    pub fn in_file(file: impl Into<PathBuf>, message: impl Into<String>) -> ConfigError {
        ConfigError { file: Some(file.into()), position: None, message: message.into(), others: Vec::new() }
    }

    /// An error in a command-line value.
    #[doc(hidden)]
    pub fn command_line(message: impl Into<String>) -> ConfigError {
        ConfigError { file: None, position: None, message: message.into(), others: Vec::new() }
    }

    /// Converts a YAML error of `file` into a config error with its position, adding a
    /// suggestion when serde reports an unknown field.
    ///
    /// The message shows control characters escaped and long values cut ([`bounded`]): serde's
    /// messages quote keys and values from the file as they are (`unknown field`, `invalid type:
    /// string "..."`), and a job file must not write escape sequences to a terminal, NUL bytes
    /// to syslog, or megabytes to either, through ari's errors.
    #[doc(hidden)]
    pub fn from_yaml(file: &Path, err: &serde_yaml::Error) -> ConfigError {
        let mut message = bounded(&err.to_string());
        let mut position = err.location().map(|l| (l.line(), l.column()));
        if message.contains("more than one document") {
            message = "the file holds more than one YAML document (a `---` line starts another); \
                 it must be one mapping"
                .into();
            position = second_document(file);
        }
        if let Some((line, column)) = position {
            let suffix = format!(" at line {line} column {column}");
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
        }
        ConfigError {
            file: Some(file.to_path_buf()),
            position,
            message: add_field_suggestion(message),
            others: Vec::new(),
        }
    }

    /// Several errors as one: `first`, then each of `rest` (and its others) as its others, in
    /// the order given.
    pub(crate) fn together(
        mut first: ConfigError,
        rest: impl IntoIterator<Item = ConfigError>,
    ) -> ConfigError {
        for mut error in rest {
            let others = std::mem::take(&mut error.others);
            first.others.push(error);
            first.others.extend(others);
        }
        first
    }

    /// `errors` as one error, or `Ok` when there is none.
    pub(crate) fn any(errors: impl IntoIterator<Item = ConfigError>) -> Result<(), ConfigError> {
        let mut errors = errors.into_iter();
        match errors.next() {
            Some(first) => Err(ConfigError::together(first, errors)),
            None => Ok(()),
        }
    }
}

impl fmt::Display for ConfigError {
    /// `FILE:LINE:COLUMN: message`, the message [`bounded`] whoever built it; then each of the
    /// others the same way, on a line of its own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = bounded(&self.message);
        match (&self.file, self.position) {
            (Some(file), Some((line, column))) => write!(f, "{}:{line}:{column}: {message}", file.display())?,
            (Some(file), None) => write!(f, "{}: {message}", file.display())?,
            (None, _) => write!(f, "command line: {message}")?,
        }
        for other in &self.others {
            write!(f, "\n{other}")?;
        }
        Ok(())
    }
}

/// The most bytes of a message's own words between two quoted values that [`bounded`] keeps:
/// more than any message of ari's has, so that only a value that lost its quotes is cut.
const PROSE_BYTES: usize = 1024;

/// The most bytes of a whole message [`bounded`] keeps.
const MESSAGE_BYTES: usize = 2048;

/// A message as ari shows it: control characters escaped, each value it quotes (between
/// backticks, or the double quotes of serde's `string "..."`, whose escaped quotes it skips) cut
/// to a few hundred bytes by [`crate::contract::kinds::shown`], and every other run of it to
/// [`PROSE_BYTES`], in case a value held a quote of its own, and the whole to
/// [`MESSAGE_BYTES`]. Idempotent, so that a message
/// built of values already shown, or bounded twice, comes out the same.
#[doc(hidden)]
pub fn bounded(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(4096));
    let mut rest = message;
    while !rest.is_empty() {
        let Some(open) = rest.find(['`', '"']) else {
            out.push_str(&prose(rest));
            break;
        };
        out.push_str(&prose(&rest[..open]));
        let quote = rest.as_bytes()[open] as char;
        let inside = &rest[open + 1..];
        let close = closing(inside, quote);
        out.push(quote);
        out.push_str(&crate::contract::kinds::shown(&inside[..close]));
        match inside[close..].chars().next() {
            Some(c) => {
                out.push(c);
                rest = &inside[close + c.len_utf8()..];
            }
            None => rest = "",
        }
    }
    if out.len() <= MESSAGE_BYTES {
        return out;
    }
    // Many short values: the whole is cut as one, between characters (it is escaped already).
    let head_end = (0..=1536).rev().find(|&at| out.is_char_boundary(at)).unwrap_or(0);
    let tail_start = (out.len() - 256..out.len()).find(|&at| out.is_char_boundary(at)).unwrap_or(out.len());
    format!("{}…[{} bytes left out]…{}", &out[..head_end], tail_start - head_end, &out[tail_start..])
}

/// Where the quoted text that starts `text` ends: the next `quote`, past `\"` inside double
/// quotes; the end of `text` when none closes it.
fn closing(text: &str, quote: char) -> usize {
    let mut escaped = false;
    for (at, c) in text.char_indices() {
        match c {
            '\\' if quote == '"' && !escaped => escaped = true,
            c if c == quote && !escaped => return at,
            _ => escaped = false,
        }
    }
    text.len()
}

/// A message's own words: escaped, and cut only past [`PROSE_BYTES`].
fn prose(text: &str) -> String {
    let escaped = crate::contract::kinds::escaped(text);
    if escaped.len() <= PROSE_BYTES {
        escaped
    } else {
        crate::contract::kinds::shown(text)
    }
}

impl std::error::Error for ConfigError {}

/// An error with its causes, `outer: inner: innermost`, as ari shows every failure once.
#[doc(hidden)]
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

/// Where the second YAML document of `file` starts: its second `---` line, or the first after
/// some content.
fn second_document(file: &Path) -> Option<(usize, usize)> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut content = false;
    for (index, line) in text.lines().enumerate() {
        let marker = line == "---" || line.starts_with("--- ");
        if marker && content {
            return Some((index + 1, 1));
        }
        content |= !marker && !line.trim().is_empty() && !line.trim_start().starts_with('#');
    }
    None
}

/// The known name closest to `unknown`, if one is close enough to be a plausible typo.
#[doc(hidden)]
pub fn nearest<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    // No name of ari's is this long, so no typo of one is; and comparing costs the product of
    // the lengths, which a key of megabytes would make seconds.
    if unknown.len() > 128 {
        return None;
    }
    let unknown_normalized = unknown.replace('-', "_").to_lowercase();
    known
        .into_iter()
        .map(|name| (strsim::jaro_winkler(&unknown_normalized, name), name))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

/// " (did you mean `x`?)" or "", for appending to a message.
pub fn did_you_mean<'a>(unknown: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    match nearest(unknown, known) {
        Some(name) => format!(" (did you mean `{name}`?)"),
        None => String::new(),
    }
}

/// serde's derive reports "unknown field `x`, expected one of `a`, `b`": add the nearest of those.
fn add_field_suggestion(message: String) -> String {
    let Some((_, rest)) = message.split_once("unknown field `") else { return message };
    let Some((unknown, expected)) = rest.split_once('`') else { return message };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    let hint = did_you_mean(unknown, known.iter().copied());
    if hint.is_empty() {
        message
    } else {
        format!("{message}{hint}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_only() {
        let known = ["backend", "backup_store_path", "label", "source_hostname", "remote_user"];
        let check = |unknown: &str, expected: Option<&str>| {
            assert_eq!(nearest(unknown, known), expected, "nearest({unknown})")
        };
        check("bakend", Some("backend"));
        check("backup-store-path", Some("backup_store_path"));
        check("source_host", Some("source_hostname"));
        check("remote_usr", Some("remote_user"));
        check("zzzz", None);
    }

    #[test]
    fn messages_show_a_few_hundred_bytes_of_each_value() {
        let value = "x".repeat(2_000_000);
        let serde = format!("ssh_port: invalid type: string {value:?}, expected an integer");
        let shown = bounded(&serde);
        assert!(shown.len() < 320, "{} bytes", shown.len());
        assert!(shown.starts_with("ssh_port: invalid type: string \"xxxxxxxx"), "{shown}");
        assert!(shown.contains("xxx…[1999792 bytes left out]…xxx"), "{shown}");
        assert!(shown.ends_with("xxx\", expected an integer"), "{shown}");
        // A value of backticks and quotes is cut as well, whatever it pairs with.
        let tricky = format!("unknown key `{}`", "a`b\"c".repeat(400_000));
        assert!(bounded(&tricky).len() <= MESSAGE_BYTES, "{}", bounded(&tricky).len());
        // Short messages, escaped quotes and control characters.
        for (message, expected) in [
            ("label: `a b` must not hold ` `", "label: `a b` must not hold ` `"),
            (r#"invalid type: string "a\"b", expected x"#, r#"invalid type: string "a\"b", expected x"#),
            ("unknown key `a\u{1b}[31m` here\n", "unknown key `a\\u{1b}[31m` here\\n"),
            ("an open `quote", "an open `quote"),
        ] {
            assert_eq!(bounded(message), expected);
        }
        for message in [shown.as_str(), tricky.as_str(), "a `b` \"c\" `"] {
            assert_eq!(bounded(&bounded(message)), bounded(message), "idempotent");
        }
        let error = ConfigError::in_file("/j.yaml", format!("label: `{value}` is too long"));
        assert!(error.to_string().len() < 300, "Display bounds whoever built the message");
        assert_eq!(nearest(&"backend".repeat(300_000), ["backend"]), None, "no typo is that long");
    }

    #[test]
    fn serde_unknown_field_gets_a_suggestion() {
        let message = "pre[0]: unknown field `comand`, expected `command` or `host`".to_string();
        assert_eq!(
            add_field_suggestion(message),
            "pre[0]: unknown field `comand`, expected `command` or `host` (did you mean `command`?)"
        );
        let message = "unknown field `xyz`, expected `command` or `host`".to_string();
        assert_eq!(add_field_suggestion(message.clone()), message);
    }
}
