//! What a spot check compares of a job's backup (`verify_sample`): the files the job backs up, as
//! its backend selects them, and where its store holds them. A backend describes its selection
//! ([`Sample`]); the engine lists, picks, hashes and compares, the same way on both sides, with
//! one fixed command line per side (see `docs/verify.md`).

use std::fmt;
use std::sync::Arc;

use crate::contract::plugin::error::PluginError;
use crate::contract::step::{Command, Host};

/// The files a job backs up, by its backend's own include and exclude rules, and where the
/// store holds them ([`BackupBackend::sample`](crate::plugin::BackupBackend::sample)).
///
/// Rules are POSIX extended regular expressions over a path as the backup sees it from its
/// source root (`/home/ann/notes.txt` for `/srv/home/ann/notes.txt` under the root `/srv`),
/// matched against the whole path. With a snapshot source the engine lists the snapshot's mount
/// base in the run instead of the root, and `ari verify` lists the root: so the root is where
/// the backup reads a job without a snapshot (`/`, or rdiff's `top_level_src_dir`), whose
/// snapshot's mount base stands for `/`. A path is backed up when
/// it or a directory above it matches an [`including`](Sample::including) rule, and neither it
/// nor a directory above it matches an [`excluding`](Sample::excluding) rule: an exclude wins,
/// as it does for rdiff-backup's selection when the excludes come first and for rsync's filter.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sample {
    /// Where the backup reads the host's files without a snapshot.
    pub(crate) source_root: String,
    /// Where each included tree starts (a directory, absolute, normalised) and its rule.
    pub(crate) includes: Vec<(String, String)>,
    /// Rules for what is not backed up, with everything below it.
    pub(crate) excludes: Vec<String>,
    /// The host that holds the store.
    pub(crate) store: Host,
    /// The directory of the store that holds the source root's files.
    pub(crate) store_root: String,
    /// Rules for what the store holds beside the backup (rdiff-backup's `rdiff-backup-data`).
    pub(crate) store_only: Vec<String>,
    /// Rules for directories that are not backed up, with everything below them (rsync's
    /// `cache/`): a file they match is.
    pub(crate) excluded_directories: Vec<String>,
    /// An argv, run on the store's host, whose last line of output is the store's directory
    /// instead of `store_root` (the newest ZFS snapshot's): see [`Sample::in_store_found_by`].
    pub(crate) store_finder: Option<Vec<String>>,
    /// Whether the store keeps each file's owner and group as the host's numbers.
    pub(crate) owners: bool,
    /// The commands that mark the backup the check compared as passed, and as failed (a ZFS
    /// user property of the snapshot): see [`Sample::marked_by`].
    pub(crate) marks: Option<(Command, Command)>,
}

impl Sample {
    /// The files below `source_root` on the job's source host, which the store on `store`
    /// holds in its directory `store_root`, each file at its path from the source root.
    pub fn new(source_root: impl Into<String>, store: Host, store_root: impl Into<String>) -> Sample {
        Sample {
            source_root: source_root.into(),
            includes: Vec::new(),
            excludes: Vec::new(),
            store,
            store_root: store_root.into(),
            store_only: Vec::new(),
            excluded_directories: Vec::new(),
            store_finder: None,
            owners: false,
            marks: None,
        }
    }

    /// The same, backing up what `rule` matches below `base` (the longest directory that every
    /// path the rule matches lies in: `/home` for `/home/[^/]*/notes`), with everything below.
    pub fn including(mut self, base: impl Into<String>, rule: impl Into<String>) -> Sample {
        self.includes.push((base.into(), rule.into()));
        self
    }

    /// The same, not backing up what `rule` matches, nor anything below it.
    pub fn excluding(mut self, rule: impl Into<String>) -> Sample {
        self.excludes.push(rule.into());
        self
    }

    /// The same, not backing up the directories `rule` matches, nor anything below them; a
    /// file it matches is backed up (rsync's `cache/`).
    pub fn excluding_directories(mut self, rule: impl Into<String>) -> Sample {
        self.excluded_directories.push(rule.into());
        self
    }

    /// The same, the store's directory being what `finder` prints (one line) when it
    /// runs on the store's host at the start of the store's listing, not `store_root`: for a
    /// store whose copy of this run's backup has a name only the store knows (the newest ZFS
    /// snapshot, under `MOUNTPOINT/.zfs/snapshot/NAME`). `finder` must only read, print an
    /// absolute path, and exit non-zero when it finds nothing: the listing fails then. It is
    /// part of the store's fixed command line, so a host's filter allows it with the rest.
    pub fn in_store_found_by<I, S>(mut self, finder: I) -> Sample
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.store_finder = Some(finder.into_iter().map(Into::into).collect());
        self
    }

    /// The same, the store keeping each file's owner and group as the host's numbers (rsync's
    /// `--numeric-ids`; rdiff-backup's `--preserve-numerical-ids`, or a local source), so that
    /// a spot check compares them. Without it owners are not compared: a tool that maps them by
    /// name gives another number wherever the two systems' users differ.
    pub fn comparing_owners(mut self) -> Sample {
        self.owners = true;
        self
    }

    /// The same, the backup a run's check compared being marked in the store by `passed` or
    /// `failed`, run once the check has a verdict (`zfs set ari:verify=failed` on the run's
    /// snapshot): fixed commands that find the backup themselves, as the store's finder does. A
    /// mark that fails is a warning; the check's verdict stands.
    pub fn marked_by(mut self, passed: Command, failed: Command) -> Sample {
        self.marks = Some((passed, failed));
        self
    }

    /// The same, with `rule` matching what the store holds beside the backup, at the same paths
    /// (`/rdiff-backup-data`): the store's side leaves it out, with everything below.
    pub fn beside_the_backup(mut self, rule: impl Into<String>) -> Sample {
        self.store_only.push(rule.into());
        self
    }

    /// A shell glob as the rule that matches what it matches, as rdiff-backup 2.2's `_glob_to_re`
    /// (rdiff_backup/selection.py) reads it, which is also how rsync's wildmatch reads its
    /// patterns: `\` takes the next character as it is, `**` is any text, `*` and `?`
    /// any but `/`, `[...]` a class (`[!...]` and `[^...]` its complement, a first `]` in it), and a
    /// `[` without its `]` itself. In an ERE class a backslash is itself, as Python's doubled one is.
    pub fn glob(glob: &str) -> String {
        let chars: Vec<char> = glob.chars().collect();
        let mut rule = String::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            match c {
                '\\' => {
                    // The next character as it is (the backslash itself when it is the last).
                    let next = chars.get(i).copied().unwrap_or('\\');
                    rule.push_str(&Sample::literal(&next.to_string()));
                    i += 1;
                }
                '*' if chars.get(i) == Some(&'*') => {
                    rule.push_str(".*");
                    i += 1;
                }
                '*' => rule.push_str("[^/]*"),
                '?' => rule.push_str("[^/]"),
                '[' => {
                    let mut j = i;
                    if j < chars.len() && matches!(chars[j], '!' | '^') {
                        j += 1;
                    }
                    if j < chars.len() && chars[j] == ']' {
                        j += 1;
                    }
                    while j < chars.len() && chars[j] != ']' {
                        j += 1;
                    }
                    if j >= chars.len() {
                        rule.push_str("\\[");
                    } else {
                        let body: String = chars[i..j].iter().collect();
                        let body = match body.strip_prefix(['!', '^']) {
                            Some(rest) => format!("^{rest}"),
                            None => body,
                        };
                        rule.push_str(&format!("[{body}]"));
                        i = j + 1;
                    }
                }
                c => rule.push_str(&Sample::literal(&c.to_string())),
            }
        }
        rule
    }

    /// `text` as a rule that matches exactly it: every character a POSIX extended regular
    /// expression reads specially, escaped.
    pub fn literal(text: &str) -> String {
        let mut rule = String::with_capacity(text.len());
        for c in text.chars() {
            if "\\.[]()*+?{}|^$".contains(c) {
                rule.push('\\');
            }
            rule.push(c);
        }
        rule
    }
}

/// Judges what a [`StoreCheck`]'s command printed: a line for the report when the store is
/// sound, the problem otherwise.
pub(crate) type Judge = Arc<dyn Fn(&str) -> Result<String, PluginError> + Send + Sync>;

/// One check of a whole store for `ari verify --full`
/// ([`BackupBackend::store_checks`](crate::plugin::BackupBackend::store_checks)): a command that
/// only reads, on the store's host, which must exit 0 (rdiff-backup's own `verify`), and an
/// optional judge of what it printed (a ZFS pool's health and its last scrub).
#[derive(Clone)]
#[non_exhaustive]
pub struct StoreCheck {
    /// What it checks, for the report (`the mirror's hashes`).
    pub(crate) name: String,
    /// The command.
    pub(crate) command: Command,
    /// Judges its standard output; none: its exit status says.
    pub(crate) judge: Option<Judge>,
}

impl StoreCheck {
    /// A check named `name` (`the pool's health`) that passes when `command` exits 0.
    pub fn new(name: impl Into<String>, command: Command) -> StoreCheck {
        StoreCheck { name: name.into(), command, judge: None }
    }

    /// The same, passing only when `judge`, given the command's standard output, returns a
    /// line for the report (`ONLINE, scrubbed 3 days ago`) rather than the problem it found.
    pub fn judged_by(
        mut self,
        judge: impl Fn(&str) -> Result<String, PluginError> + Send + Sync + 'static,
    ) -> StoreCheck {
        self.judge = Some(Arc::new(judge));
        self
    }
}

impl fmt::Debug for StoreCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreCheck")
            .field("name", &self.name)
            .field("command", &self.command)
            .field("judged", &self.judge.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_rule_escapes_what_a_regular_expression_reads() {
        assert_eq!(Sample::literal("/srv/a.b (1)/[x]*"), "/srv/a\\.b \\(1\\)/\\[x\\]\\*");
        assert_eq!(Sample::literal("/plain/path"), "/plain/path");
    }
}
