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
    pub file: Option<PathBuf>,
    /// 1-based line and column of the offending value, when known.
    pub position: Option<(usize, usize)>,
    /// The message; it names the key (`ssh_port: invalid type ...`).
    pub message: String,
}

impl ConfigError {
    /// An error in `file` without a position (for example a missing required key).
    pub fn in_file(file: impl Into<PathBuf>, message: impl Into<String>) -> ConfigError {
        ConfigError { file: Some(file.into()), position: None, message: message.into() }
    }

    /// An error in a command-line value.
    pub fn command_line(message: impl Into<String>) -> ConfigError {
        ConfigError { file: None, position: None, message: message.into() }
    }

    /// Converts a YAML error of `file` into a config error with its position, adding a
    /// suggestion when serde reports an unknown field.
    ///
    /// The message shows control characters escaped: serde's messages quote keys and values
    /// from the file as they are (`unknown field`, `unknown variant`), and a job file must not
    /// write escape sequences to a terminal, or NUL bytes to syslog, through ari's errors.
    #[doc(hidden)]
    pub fn from_yaml(file: &Path, err: &serde_yaml::Error) -> ConfigError {
        let mut message = crate::kinds::shown(&err.to_string());
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
        ConfigError { file: Some(file.to_path_buf()), position, message: add_field_suggestion(message) }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.position) {
            (Some(file), Some((line, column))) => {
                write!(f, "{}:{line}:{column}: {}", file.display(), self.message)
            }
            (Some(file), None) => write!(f, "{}: {}", file.display(), self.message),
            (None, _) => write!(f, "command line: {}", self.message),
        }
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
