//! rsync's options, as the zfs job may give them: those that rrsync lets through to a
//! write-only server (`rrsync -wo DIR`, which the ZFS host's filter hands rsync's server to) and
//! that change neither where the data goes nor what runs.
//!
//! The lists are the intersection of what ari needs and what rrsync's `-wo` tables take in
//! rsync 3.2.7 (Debian 12) and 3.5.0, checked option by option against the real rrsync by
//! tests/tests/rrsync.rs. Left out on purpose: everything that names a path or a program (`-e`,
//! `--rsync-path`, `--log-file`, `--backup-dir`, `--temp-dir`, `--partial-dir`, `--link-dest`,
//! `--files-from`, `--exclude-from`, `--write-batch`...), that rrsync refuses under a directory
//! (`-L`, `-K`, `-k`, `-s`, `--copy-devices`, `--write-devices`) or in one of the two versions
//! (`--debug`), that sends from the server (`--sender`, `--remove-source-files`), and rsync's
//! remote options (`-M`).

use ari_core::step::Chars;

/// rsync's server options as the client sends them (`-logDtprze.iLsfxCIvu --delete
/// --log-format=%i . `): letters, digits, spaces and `.=,_%-`, and no `/`, so that no absolute
/// path hides in them. The ZFS host's filter lets them through to rrsync, which checks each.
pub const RSYNC_SERVER_OPTIONS: Chars = Chars::new("rsync's server options", "A-Za-z0-9 .=,_%-");

/// Long options without a value.
const FLAGS: &[&str] = &[
    "acls",
    "archive",
    "atimes",
    "checksum",
    "compress",
    "delay-updates",
    "delete",
    "delete-after",
    "delete-before",
    "delete-delay",
    "delete-during",
    "delete-excluded",
    "devices",
    "dirs",
    "executability",
    "existing",
    "fake-super",
    "force",
    "fsync",
    "group",
    "hard-links",
    "human-readable",
    "ignore-errors",
    "ignore-existing",
    "ignore-times",
    "inplace",
    "itemize-changes",
    "links",
    "mkpath",
    "munge-links",
    "no-implied-dirs",
    "no-whole-file",
    "numeric-ids",
    "omit-dir-times",
    "omit-link-times",
    "one-file-system",
    "open-noatime",
    "owner",
    "partial",
    "perms",
    "preallocate",
    "progress",
    "prune-empty-dirs",
    "quiet",
    "recursive",
    "relative",
    "safe-links",
    "size-only",
    "sparse",
    "specials",
    "stats",
    "super",
    "times",
    "update",
    "verbose",
    "whole-file",
    "xattrs",
];

/// Long options with a value (`--NAME=VALUE`): sizes, rates, counts, times, names.
const WITH_VALUE: &[&str] = &[
    "block-size",
    "bwlimit",
    "checksum-choice",
    "compress-choice",
    "compress-level",
    "info",
    "max-delete",
    "max-size",
    "min-size",
    "modify-window",
    "skip-compress",
    "timeout",
];

/// Short options, each a letter without a value: `-a` and what it stands for, and the short
/// forms of the long ones above (`-H` `--hard-links`, `-A` `--acls`...).
const SHORT: &str = "aADEgHhiIJlmOopPqrRSctuUvWxXz";

/// Checks the job's `rsync_options`, each a word: `--NAME`, `--NAME=VALUE` or `-LETTERS`.
pub fn check_rsync_options(options: &[String]) -> Result<(), String> {
    for option in options {
        check_option(option).map_err(|why| format!("`{}` {why}", ari_core::kinds::shown(option)))?;
    }
    Ok(())
}

fn check_option(option: &str) -> Result<(), String> {
    let refused = "is no rsync option ari passes: rsync's server on the ZFS host runs under rrsync's write-only mode, and ari takes only options that change neither where data goes nor what runs (docs/jobs.md lists them)";
    if let Some(long) = option.strip_prefix("--") {
        return match long.split_once('=') {
            None if FLAGS.contains(&long) => Ok(()),
            None if WITH_VALUE.contains(&long) => {
                Err("needs its value, as `--NAME=VALUE` in one word".into())
            }
            Some((name, value)) if WITH_VALUE.contains(&name) => check_value(value),
            _ => Err(refused.into()),
        };
    }
    match option.strip_prefix('-') {
        Some(letters) if !letters.is_empty() && letters.chars().all(|c| SHORT.contains(c)) => Ok(()),
        Some(_) => Err(refused.into()),
        None => Err("is not an option (a word that starts with `-`)".into()),
    }
}

/// The first option that changes which of the files rsync reads reach the dataset (a size limit,
/// another filesystem, only existing or only new files, size alone as the quick check), or a
/// missing `--delete` (what the host deleted stays): a spot check, which compares the dataset
/// with what the job's selection lists on the host, would fail on it every run.
pub fn changes_the_selection(options: &[String]) -> Option<String> {
    const LONG: &[&str] = &[
        "existing",
        "ignore-existing",
        "one-file-system",
        "update",
        "max-size",
        "min-size",
        "size-only",
        "max-delete",
        // What rsync does with symlinks, beyond storing them as they are.
        "safe-links",
        "munge-links",
        "copy-links",
        "copy-unsafe-links",
        "copy-dirlinks",
        "keep-dirlinks",
    ];
    for option in options {
        if let Some(long) = option.strip_prefix("--") {
            let name = long.split_once('=').map_or(long, |(name, _)| name);
            if LONG.contains(&name) {
                return Some(option.clone());
            }
        } else if let Some(letters) = option.strip_prefix('-') {
            if letters.contains(['x', 'u']) {
                return Some(option.clone());
            }
        }
    }
    let deletes =
        options.iter().any(|o| o == "--delete" || (o.starts_with("--delete-") && o != "--delete-excluded"));
    if !deletes {
        return Some("(no --delete)".to_string());
    }
    // Symlinks are stored as symlinks only with -l (in -a).
    let links = options.iter().any(|o| {
        o == "--archive"
            || o == "--links"
            || (!o.starts_with("--") && o.starts_with('-') && o.contains(['a', 'l']))
    });
    (!links).then(|| "(no --links: symlinks are not stored)".to_string())
}

/// A value: a size, a rate, a count or a name list, of the characters rsync's server line
/// and the filter's pattern carry (letters, digits, `.`, `,`, `_`, `-`, and no `-` first).
fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty()
        || value.starts_with('-')
        || !value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ',' | '_' | '-'))
    {
        return Err(
            "has a value that is not a size, a number or a list of names (letters, digits, `.,_-`)".into()
        );
    }
    Ok(())
}

/// Every option the job may give, as `--NAME`, `--NAME=VALUE` (with an example value) and `-L`,
/// for the test that runs each through the real rrsync.
pub fn accepted_examples() -> Vec<String> {
    let mut all: Vec<String> = FLAGS.iter().map(|f| format!("--{f}")).collect();
    all.extend(WITH_VALUE.iter().map(|name| {
        let value = match *name {
            "checksum-choice" => "md5",
            "compress-choice" => "zlib",
            "info" => "stats2",
            "skip-compress" => "gz,jpg",
            "max-size" | "bwlimit" => "1G",
            "min-size" => "1",
            "block-size" => "4096",
            _ => "5",
        };
        format!("--{name}={value}")
    }));
    all.extend(SHORT.chars().map(|c| format!("-{c}")));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_options_hold_no_path() {
        assert!(RSYNC_SERVER_OPTIONS.contains(' ') && RSYNC_SERVER_OPTIONS.contains('%'));
        assert!(!RSYNC_SERVER_OPTIONS.contains('/') && !RSYNC_SERVER_OPTIONS.contains('\''));
    }

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_default_options_and_the_usual_ones_pass() {
        let defaults = "--archive --acls --numeric-ids --delete --inplace";
        assert_eq!(check_rsync_options(&words(defaults)), Ok(()));
        assert_eq!(
            check_rsync_options(&words("-aHAXx --bwlimit=10M --compress-level=3 --info=progress2")),
            Ok(())
        );
        assert_eq!(check_rsync_options(&accepted_examples()), Ok(()));
    }

    #[test]
    fn options_that_name_a_path_or_a_program_or_read_are_refused() {
        for bad in [
            "--log-file=.bashrc",
            "-M--log-file=x",
            "--remote-option=--log-file=x",
            "--rsync-path=sh",
            "-e",
            "--rsh=sh",
            "--sender",
            "--remove-source-files",
            "--backup-dir=..",
            "--temp-dir=/tmp",
            "--partial-dir=x",
            "--link-dest=/etc",
            "--files-from=/etc/shadow",
            "--exclude-from=/etc/shadow",
            "--write-batch=x",
            "--copy-devices",
            "--write-devices",
            "-L",
            "-aL",
            "-K",
            "-s",
            "--protect-args",
            "--debug=all",
            "--bwlimit",
            "--bwlimit=",
            "--bwlimit=-1",
            "--timeout=1;id",
            "--info=a b",
            "archive",
            "-",
            "--",
        ] {
            assert!(check_rsync_options(&[bad.to_string()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_that_leave_files_out_are_named() {
        let words = |list: &[&str]| list.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        assert_eq!(changes_the_selection(&words(&["--archive", "--numeric-ids", "--delete"])), None);
        assert_eq!(changes_the_selection(&words(&["-a", "--delete-after"])), None);
        for (options, named) in [
            (&["--archive", "--delete", "--max-size=1M"][..], "--max-size=1M"),
            (&["-axH", "--delete"], "-axH"),
            (&["-au", "--delete"], "-au"),
            (&["--archive", "--delete", "--safe-links"], "--safe-links"),
            (&["--archive"], "(no --delete)"),
            (&["-rt", "--delete"], "(no --links: symlinks are not stored)"),
        ] {
            assert_eq!(changes_the_selection(&words(options)).as_deref(), Some(named), "{options:?}");
        }
    }
}
