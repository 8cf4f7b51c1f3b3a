//! `rdiff_backup_options`, checked by what each option does: an allow-list of rdiff-backup
//! 2.2's options (`rdiff-backup --help`, `rdiff-backup backup --help`, and the legacy command
//! line's `rdiff-backup --no-new --help`) that only choose what is backed up and how it is
//! stored, each with the value it takes. Everything else is refused with why: options that run
//! a program (`--remote-schema`) or send data elsewhere (`--tempdir`), that change what ari
//! reads (`--parsable-output`, `--api-version`) or the backup's time (`--current-time`), that
//! widen the job's checked `include` (`--include`, file lists), and the legacy command line's
//! actions (`--remove-older-than`, `--restore-as-of`, `--server`), which would run instead of the
//! backup.
//!
//! Spelling is exact: rdiff-backup's parser (Python's argparse) takes any unambiguous
//! abbreviation (`--remote-sch` is `--remote-schema`), reads arguments from a file for a word
//! starting with `@`, and ends its options at `--`; none of these passes.

use ari_core::kinds::{self, ListKind};

/// The options of every backup, checked.
pub static RDIFF_OPTIONS: ListKind = ListKind::new(
    "rdiff-backup options",
    "rdiff-backup options that choose what is backed up and how it is stored (`--exclude-fifos`, `--exclude-regexp RE`, `--no-acls`, `--terminal-verbosity 1`; see docs/jobs.md), each spelled out; none that runs a program, sends data elsewhere, widens the job's include, or is an action",
    check_options,
);

/// Where rdiff-backup 2.1+ takes an option: before the action, or after `backup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A global option, before the action.
    Global,
    /// An option of `backup`.
    Backup,
}

/// What an option takes after it, as its next word or after `=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    /// A verbosity, `0` to `9`.
    Verbosity,
    /// A number of bytes.
    Bytes,
    /// A regular expression (Python's).
    Regexp,
    /// A file name, looked for in each directory.
    FileName,
    /// A file on the backup server, an absolute path.
    Path,
    /// Seconds since the epoch, in the past.
    PastSeconds,
}

/// The options ari passes on: name, place, value.
const ALLOWED: &[(&str, Place, Takes)] = &[
    ("--fsync", Place::Global, Takes::Nothing),
    ("--no-fsync", Place::Global, Takes::Nothing),
    ("--terminal-verbosity", Place::Global, Takes::Verbosity),
    ("-v", Place::Global, Takes::Verbosity),
    ("--verbosity", Place::Global, Takes::Verbosity),
    ("--use-compatible-timestamps", Place::Global, Takes::Nothing),
    // One run's backup at a time of its own (tests, importing old copies); the backend's check
    // keeps it to the command line.
    ("--current-time", Place::Global, Takes::PastSeconds),
    ("--create-full-path", Place::Backup, Takes::Nothing),
    ("--compression", Place::Backup, Takes::Nothing),
    ("--no-compression", Place::Backup, Takes::Nothing),
    ("--not-compressed-regexp", Place::Backup, Takes::Regexp),
    ("--no-compression-regexp", Place::Backup, Takes::Regexp),
    ("--exclude-device-files", Place::Backup, Takes::Nothing),
    ("--exclude-fifos", Place::Backup, Takes::Nothing),
    ("--exclude-sockets", Place::Backup, Takes::Nothing),
    ("--exclude-symbolic-links", Place::Backup, Takes::Nothing),
    ("--exclude-special-files", Place::Backup, Takes::Nothing),
    ("--exclude-other-filesystems", Place::Backup, Takes::Nothing),
    ("--exclude-regexp", Place::Backup, Takes::Regexp),
    ("--exclude-if-present", Place::Backup, Takes::FileName),
    ("--max-file-size", Place::Backup, Takes::Bytes),
    ("--min-file-size", Place::Backup, Takes::Bytes),
    ("--acls", Place::Backup, Takes::Nothing),
    ("--no-acls", Place::Backup, Takes::Nothing),
    ("--carbonfile", Place::Backup, Takes::Nothing),
    ("--no-carbonfile", Place::Backup, Takes::Nothing),
    ("--compare-inode", Place::Backup, Takes::Nothing),
    ("--no-compare-inode", Place::Backup, Takes::Nothing),
    ("--eas", Place::Backup, Takes::Nothing),
    ("--no-eas", Place::Backup, Takes::Nothing),
    ("--hard-links", Place::Backup, Takes::Nothing),
    ("--no-hard-links", Place::Backup, Takes::Nothing),
    ("--resource-forks", Place::Backup, Takes::Nothing),
    ("--no-resource-forks", Place::Backup, Takes::Nothing),
    ("--never-drop-acls", Place::Backup, Takes::Nothing),
    ("--preserve-numerical-ids", Place::Backup, Takes::Nothing),
    ("--group-mapping-file", Place::Backup, Takes::Path),
    ("--user-mapping-file", Place::Backup, Takes::Path),
    ("--file-statistics", Place::Backup, Takes::Nothing),
    ("--no-file-statistics", Place::Backup, Takes::Nothing),
    ("--print-statistics", Place::Backup, Takes::Nothing),
];

/// rdiff-backup 2.2's long options that ari refuses (each has its reason in `refusal`), for
/// telling what an abbreviation would be read as.
const REFUSED: &[&str] = &[
    "--remote-schema",
    "--tempdir",
    "--remote-tempdir",
    "--api-version",
    "--new",
    "--no-new",
    "--force",
    "--chars-to-quote",
    "--override-chars-to-quote",
    "--parsable-output",
    "--no-print-statistics",
    "--null-separator",
    "--ssh-compression",
    "--no-ssh-compression",
    "--ssh-no-compression",
    "--allow-duplicate-timestamps",
    "--include",
    "--exclude",
    "--include-device-files",
    "--include-fifos",
    "--include-sockets",
    "--include-symbolic-links",
    "--include-special-files",
    "--include-other-filesystems",
    "--include-regexp",
    "--include-if-present",
    "--include-filelist",
    "--exclude-filelist",
    "--include-filelist-stdin",
    "--exclude-filelist-stdin",
    "--include-globbing-filelist",
    "--exclude-globbing-filelist",
    "--include-globbing-filelist-stdin",
    "--exclude-globbing-filelist-stdin",
    "--restrict",
    "--restrict-path",
    "--restrict-mode",
    "--restrict-read-only",
    "--restrict-update-only",
    "--backup-mode",
    "--restore-as-of",
    "--restore",
    "--remove-older-than",
    "--server",
    "--list-increments",
    "--list-increment-sizes",
    "--list-at-time",
    "--list-changed-since",
    "--compare",
    "--compare-at-time",
    "--compare-hash",
    "--compare-hash-at-time",
    "--compare-full",
    "--compare-full-at-time",
    "--verify",
    "--verify-at-time",
    "--check-destination-dir",
    "--calculate-average",
    "--test-server",
    "--help",
    "--version",
];

/// Why an option of rdiff-backup that is not allowed is refused; `None` for one ari does not
/// know (refused all the same).
fn refusal(name: &str) -> Option<&'static str> {
    Some(match name {
        "--remote-schema" => "runs a program of its own to reach the host: ari sets the one that carries the job's ssh settings and stops with the job",
        "--tempdir" | "--remote-tempdir" => "writes the backup's temporary data elsewhere than the store (set TMPDIR in ari's environment to move /tmp)",
        "--api-version" => "changes rdiff-backup's protocol and the output ari reads: ari chooses the command line by rdiff-backup's version (rdiff_backup_cli)",
        "--new" | "--no-new" => "changes how rdiff-backup reads its command line: set rdiff_backup_cli instead",
        "--force" => "lets rdiff-backup overwrite a directory that is no backup of the job; ari passes it to the actions that need it",
        "--chars-to-quote" | "--override-chars-to-quote" => "changes the names files have in the store, which restore and verify read",
        "--parsable-output" | "--no-print-statistics" => "changes the output ari reads for the job's metrics",
        "--null-separator" => "is for file lists, which ari does not pass",
        "--ssh-compression" | "--no-ssh-compression" | "--ssh-no-compression" => "is set by ssh_compression",
        "--allow-duplicate-timestamps" => "lets a backup take the second of another; ari waits for the next second itself",
        "--include" | "--exclude" => "selects outside the job's include and exclude, which are checked and which restore reads: list the path there",
        "--include-device-files" | "--include-fifos" | "--include-sockets" | "--include-symbolic-links"
        | "--include-special-files" | "--include-other-filesystems" | "--include-regexp" | "--include-if-present" => {
            "includes what it matches anywhere on the host, beyond the job's include"
        }
        "--include-filelist" | "--exclude-filelist" | "--include-filelist-stdin" | "--exclude-filelist-stdin"
        | "--include-globbing-filelist" | "--exclude-globbing-filelist" | "--include-globbing-filelist-stdin"
        | "--exclude-globbing-filelist-stdin" => {
            "reads a selection from a file, whose `+ ` lines include anything: list the paths in include and exclude"
        }
        "--restrict" | "--restrict-path" | "--restrict-mode" | "--restrict-read-only" | "--restrict-update-only" => {
            "restricts rdiff-backup's server, which the host's filter starts, not the backup's client"
        }
        "-b" | "--backup-mode" | "-r" | "--restore-as-of" | "--restore" | "--remove-older-than" | "-s" | "--server"
        | "-l" | "--list-increments" | "--list-increment-sizes" | "--list-at-time" | "--list-changed-since"
        | "--compare" | "--compare-at-time" | "--compare-hash" | "--compare-hash-at-time" | "--compare-full"
        | "--compare-full-at-time" | "--verify" | "--verify-at-time" | "--check-destination-dir"
        | "--calculate-average" | "--test-server" => {
            "is an action of rdiff-backup's legacy command line, which would run instead of the backup (or onto the source)"
        }
        "-h" | "--help" | "-V" | "--version" => "prints and exits: no backup would be made",
        _ => return None,
    })
}

/// Checks `rdiff_backup_options`: every word an allowed option or the value of the one before,
/// spelled out, each value of its kind.
pub fn check_options(words: &[String]) -> Result<(), String> {
    let mut words = words.iter();
    while let Some(word) = words.next() {
        kinds::check_no_control(word).map_err(|why| format!("`{}` {why}", kinds::shown(word)))?;
        let (name, attached) = split(word);
        let Some(&(_, _, takes)) = ALLOWED.iter().find(|(known, _, _)| *known == name) else {
            return Err(refused(word, name));
        };
        let value = match (takes, attached) {
            (Takes::Nothing, None) => continue,
            (Takes::Nothing, Some(_)) => {
                return Err(format!("`{}`: {name} takes no value", kinds::shown(word)))
            }
            (_, Some(value)) => value,
            (_, None) => {
                let value = words.next().ok_or_else(|| format!("`{word}` needs a value after it"))?;
                kinds::check_no_control(value)
                    .map_err(|why| format!("the value of `{word}`, `{}`, {why}", kinds::shown(value)))?;
                if value.starts_with('-') || value.starts_with('@') {
                    return Err(format!(
                        "the value of `{word}`, `{}`, starts with `{}`, which rdiff-backup reads as {}: write `{name}={}`",
                        kinds::shown(value),
                        &value[..1],
                        if value.starts_with('-') { "an option" } else { "a file of arguments" },
                        kinds::shown(value)
                    ));
                }
                value.as_str()
            }
        };
        check_value(takes, value)
            .map_err(|why| format!("the value of `{name}`, `{}`, {why}", kinds::shown(value)))?;
    }
    Ok(())
}

/// An option word as rdiff-backup reads it: its name, and the value written into the same
/// word (`--max-file-size=10`, `-v5`).
fn split(word: &str) -> (&str, Option<&str>) {
    if word.starts_with("--") {
        return match word.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (word, None),
        };
    }
    match word.strip_prefix('-') {
        Some(rest) if rest.len() > 1 && rest.is_char_boundary(1) => (&word[..2], Some(&rest[1..])),
        _ => (word, None),
    }
}

/// The refusal of `word`, whose option name is `name`.
fn refused(word: &str, name: &str) -> String {
    let shown = kinds::shown(word);
    if word == "--" {
        return "`--` ends rdiff-backup's options: what follows would be places to back up from or to".into();
    }
    if !word.starts_with('-') {
        let what = if word.starts_with('@') {
            "rdiff-backup reads arguments from the file a word starting with `@` names"
        } else {
            "rdiff-backup would read it as a place to back up from or to"
        };
        return format!("`{shown}` is not an option ({what})");
    }
    if let Some(why) = refusal(name) {
        return match word == name {
            true => format!("`{shown}` {why}"),
            false => format!("`{shown}`: {name} {why}"),
        };
    }
    // rdiff-backup reads an abbreviation as the one option it begins.
    let known = ALLOWED.iter().map(|(known, _, _)| *known).chain(REFUSED.iter().copied());
    let abbreviates: Vec<&str> =
        known.filter(|known| name.starts_with("--") && known.starts_with(name)).collect();
    if let Some(why) = abbreviates.iter().find_map(|known| refusal(known).map(|why| (known, why))) {
        return format!("`{shown}`: rdiff-backup would read it as `{}`, which {}", why.0, why.1);
    }
    if !abbreviates.is_empty() {
        return format!(
            "`{shown}`: write the option in full ({}); rdiff-backup takes abbreviations, which ari does not check",
            abbreviates.join(", ")
        );
    }
    format!("`{shown}` is not an rdiff-backup option that ari passes on (docs/jobs.md lists them)")
}

/// Checks an option's value by what it takes.
fn check_value(takes: Takes, value: &str) -> Result<(), String> {
    match takes {
        Takes::Nothing => Ok(()),
        Takes::Verbosity if value.len() == 1 && value.as_bytes()[0].is_ascii_digit() => Ok(()),
        Takes::Verbosity => Err("is not a verbosity from 0 to 9".into()),
        // rdiff-backup refuses 0 ("must be a positive integer").
        Takes::Bytes
            if !value.is_empty()
                && value.len() <= 19
                && value.bytes().all(|b| b.is_ascii_digit())
                && value.bytes().any(|b| b != b'0') =>
        {
            Ok(())
        }
        Takes::Bytes => Err("is not a positive number of bytes".into()),
        Takes::Regexp if value.is_empty() => Err("is empty".into()),
        Takes::Regexp => Ok(()),
        Takes::FileName if value.is_empty() || value == "." || value == ".." || value.contains('/') => {
            Err("is not a file name (without `/`)".into())
        }
        Takes::FileName => Ok(()),
        Takes::Path => kinds::PATH.check(value),
        Takes::PastSeconds => match value.parse::<i64>() {
            Ok(seconds) if value.bytes().all(|b| b.is_ascii_digit()) && seconds < now() => Ok(()),
            // rdiff-backup takes no backup older than the last: one in the future stops every
            // run until then.
            _ => Err("is not a time in the past, in seconds since the epoch".into()),
        },
    }
}

/// Now, in seconds since the epoch.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
}

/// Whether the options give the backup a time of its own (`--current-time`), which only one run
/// may do: set in a file, every run after the first would fail.
pub fn sets_the_time(options: &[String]) -> bool {
    options.iter().any(|word| split(word).0 == "--current-time")
}

/// The first option that changes which regular files and symlinks rdiff-backup stores beyond
/// the job's include and exclude (`--exclude-regexp`, `--exclude-if-present`, a size limit,
/// another filesystem, symlinks): a spot check, which lists by the job's selection, would call
/// what it leaves out missing, every run.
pub fn changes_the_selection(options: &[String]) -> Option<&str> {
    const SELECTING: &[&str] = &[
        "--exclude-symbolic-links",
        "--exclude-special-files",
        "--exclude-other-filesystems",
        "--exclude-regexp",
        "--exclude-if-present",
        "--max-file-size",
        "--min-file-size",
    ];
    options.iter().map(|word| split(word).0).find(|name| SELECTING.contains(name))
}

/// Whether rdiff-backup keeps owners as the source's numbers (`--preserve-numerical-ids`)
/// rather than mapping them by name.
pub fn keeps_numeric_owners(options: &[String]) -> bool {
    options.iter().any(|word| split(word).0 == "--preserve-numerical-ids")
}

/// The options ari passes on: each name, where it goes, and whether it takes a value.
pub fn allowed_options() -> impl Iterator<Item = (&'static str, Place, bool)> {
    ALLOWED.iter().map(|&(name, place, takes)| (name, place, takes != Takes::Nothing))
}

/// The long options of rdiff-backup 2.2 that ari refuses, each for a reason its error gives.
pub fn refused_options() -> &'static [&'static str] {
    REFUSED
}

/// Where each option of a checked list goes: `(global, backup)`, each option with its value.
pub fn split_global_options(options: &[String]) -> (Vec<String>, Vec<String>) {
    let mut global = Vec::new();
    let mut action = Vec::new();
    let mut words = options.iter();
    while let Some(word) = words.next() {
        let (name, attached) = split(word);
        let (place, takes) = ALLOWED
            .iter()
            .find(|(known, _, _)| *known == name)
            .map_or((Place::Backup, Takes::Nothing), |&(_, place, takes)| (place, takes));
        let into = if place == Place::Global { &mut global } else { &mut action };
        into.push(word.clone());
        if takes != Takes::Nothing && attached.is_none() {
            into.extend(words.next().cloned());
        }
    }
    (global, action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(words: &[&str], expected: Result<(), &str>) {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        match (check_options(&words), expected) {
            (Ok(()), Ok(())) => {}
            (Err(err), Err(why)) => assert!(err.contains(why), "{words:?}: `{why}` not in `{err}`"),
            (got, _) => panic!("{words:?}: {got:?}"),
        }
    }

    #[test]
    fn the_default_and_common_options_pass() {
        let default = crate::settings::RDIFF_BACKUP_OPTIONS.def.default.unwrap();
        let words: Vec<&str> = default.split_whitespace().collect();
        check(&words, Ok(()));
        check(&[], Ok(()));
        check(
            &["--exclude-other-filesystems", "--exclude-if-present", ".nobackup", "--no-acls", "--no-eas"],
            Ok(()),
        );
        check(
            &["--exclude-regexp", "\\.cache$", "--exclude-regexp=-tmp$", "--max-file-size=1000000000"],
            Ok(()),
        );
        check(&["-v5", "-v", "3", "--verbosity=2", "--terminal-verbosity", "9", "--no-fsync"], Ok(()));
        check(&["--user-mapping-file", "/etc/ari-backup/users.map", "--preserve-numerical-ids"], Ok(()));
        check(&["--print-statistics", "--no-file-statistics", "--create-full-path"], Ok(()));
    }

    #[test]
    fn options_that_run_send_elsewhere_or_widen_are_refused_with_why() {
        check(&["--remote-schema", "ssh -C %s rdiff-backup server"], Err("`--remote-schema` runs a program"));
        check(
            &["--remote-schema=sh -c id"],
            Err("`--remote-schema=sh -c id`: --remote-schema runs a program"),
        );
        check(&["--tempdir", "/tmp"], Err("temporary data elsewhere"));
        check(&["--remote-tempdir=/x"], Err("temporary data elsewhere"));
        check(&["--api-version", "200"], Err("rdiff-backup's protocol"));
        check(&["--current-time", "0"], Ok(()));
        check(&["--current-time=99999999999"], Err("not a time in the past"));
        check(&["--current-time", "-5"], Err("starts with `-`"));
        check(&["--current-time=+5"], Err("not a time in the past"));
        check(&["--force"], Err("overwrite"));
        check(&["--no-new"], Err("rdiff_backup_cli"));
        check(&["--parsable-output"], Err("output ari reads"));
        check(&["--no-print-statistics"], Err("output ari reads"));
        check(&["--include", "/"], Err("job's include and exclude"));
        check(&["--include-device-files"], Err("beyond the job's include"));
        check(&["--include-regexp=.*"], Err("beyond the job's include"));
        check(&["--exclude-globbing-filelist", "/etc/x"], Err("`+ ` lines include"));
        check(&["--remove-older-than", "now"], Err("legacy command line"));
        check(&["-r", "now"], Err("legacy command line"));
        check(&["--restore-as-of=now"], Err("legacy command line"));
        check(&["-s"], Err("legacy command line"));
        check(&["--ssh-no-compression"], Err("ssh_compression"));
        check(&["--version"], Err("prints and exits"));
        check(&["-V"], Err("prints and exits"));
        check(&["--restrict-read-only", "/"], Err("server"));
        check(&["--bogus"], Err("not an rdiff-backup option that ari passes on"));
    }

    #[test]
    fn spelling_is_exact() {
        check(
            &["--remote-sch", "x"],
            Err("rdiff-backup would read it as `--remote-schema`, which runs a program"),
        );
        check(&["--remote-t=/x"], Err("read it as `--remote-tempdir`, which writes"));
        check(&["--exclude-fif"], Err("write the option in full (--exclude-fifos)"));
        check(&["--"], Err("ends rdiff-backup's options"));
        check(&["/etc"], Err("place to back up from or to"));
        check(&["@/etc/args"], Err("reads arguments from the file"));
        check(&["-vV"], Err("the value of `-v`, `V`, is not a verbosity"));
        check(&["--exclude-fifos=yes"], Err("takes no value"));
        check(&["--exclude-fifos\n"], Err("control character"));
    }

    #[test]
    fn every_refused_long_option_says_why() {
        for name in REFUSED {
            assert!(refusal(name).is_some(), "{name}");
            assert!(!ALLOWED.iter().any(|(allowed, _, _)| allowed == name), "{name} is allowed and refused");
        }
    }

    #[test]
    fn values_are_of_their_kind() {
        check(&["--terminal-verbosity"], Err("needs a value"));
        check(&["--terminal-verbosity", "10"], Err("not a verbosity"));
        check(&["--max-file-size", "1G"], Err("not a positive number of bytes"));
        check(&["--min-file-size=0"], Err("not a positive number of bytes"));
        check(&["--exclude-regexp", "--remote-schema"], Err("starts with `-`, which rdiff-backup reads as an option: write `--exclude-regexp=--remote-schema`"));
        check(&["--exclude-regexp", "@x"], Err("a file of arguments"));
        check(&["--exclude-regexp="], Err("is empty"));
        check(&["--exclude-if-present", "../x"], Err("not a file name"));
        check(&["--user-mapping-file", "map"], Err("not an absolute path"));
        check(&["--user-mapping-file", "/etc/../x"], Err("normalised"));
        check(&["--exclude-regexp", "a\nb"], Err("control character"));
    }

    #[test]
    fn options_split_into_global_and_backup() {
        let strings = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let check = |options: &[&str], global: &[&str], action: &[&str]| {
            assert_eq!(
                split_global_options(&strings(options)),
                (strings(global), strings(action)),
                "{options:?}"
            );
        };
        check(
            &["--terminal-verbosity", "1", "--exclude-fifos"],
            &["--terminal-verbosity", "1"],
            &["--exclude-fifos"],
        );
        check(
            &["--terminal-verbosity=5", "-v", "3", "-v4"],
            &["--terminal-verbosity=5", "-v", "3", "-v4"],
            &[],
        );
        check(
            &["--no-fsync", "--no-acls", "--exclude-regexp", "x", "--use-compatible-timestamps"],
            &["--no-fsync", "--use-compatible-timestamps"],
            &["--no-acls", "--exclude-regexp", "x"],
        );
    }
}
