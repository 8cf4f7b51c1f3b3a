//! The listing command of a spot check: one fixed POSIX sh line per side that lists the files
//! the job backs up (regular files and symlinks, no link followed: `find -P`), picks some by a
//! seeded hash of each path, and hashes the picked regular files (`sha256sum`) up to the byte
//! cap, in the order of that hash, so that a large file waits no longer than a small one. It
//! needs GNU find, awk, sort, head, xargs and sha256sum: coreutils and what every Debian has.
//! Its only argument is the seed, so the line a host's filter allows is fixed.
//!
//! What it prints, each field ending in a NUL byte: `ari-verify 1 UID` (its format and the
//! user it ran as); `S STATUS`, find's exit status; per picked file `R FLAG KEY TYPE MODE UID
//! GID SIZE MTIME CTIME`, then the symlink's target (empty for a file), then the path
//! (`./home/ann/notes`), `FLAG` being `H` when its content is hashed below and `-` when not;
//! last, `sha256sum -z`'s `HASH  PATH` for each hashed file.

use crate::contract::kinds::SampleSize;
use crate::contract::quote::single_quoted;
use crate::contract::sample::Sample;

/// The word a plan shows where a run puts its seed.
pub(crate) const SEED: &str = "SEED";

/// The name the script runs under (`$0`), which the filter's line shows.
pub(crate) const NAME: &str = "ari-verify";

/// The most files a side lists, whatever the sample: picked in the order of their seeded hash,
/// so the first this many are a sample too. It bounds what ari reads of each side (about 200
/// bytes a file, well within the 16 MiB of a command's output it keeps) on a tree of any size.
pub(crate) const MAX_PICKED: u64 = 30_000;

/// The prime the listing's path hash is taken modulo: every key is below it.
const KEY_MODULUS: u64 = 4_294_967_291;

/// The key below which a side picks a file: a share of the key range, so that what a side picks
/// is a prefix of the seeded order, the same on both sides (everything for a count, which the
/// side cuts after so many instead).
pub(crate) fn threshold(size: SampleSize) -> u64 {
    match size {
        SampleSize::PerMillion(share) => (u128::from(KEY_MODULUS) * u128::from(share) / 1_000_000) as u64,
        SampleSize::Count(_) => KEY_MODULUS,
    }
}

/// How many files a side keeps at most: the count asked for, never more than [`MAX_PICKED`].
pub(crate) fn kept(size: SampleSize) -> u64 {
    match size {
        SampleSize::PerMillion(_) => MAX_PICKED,
        SampleSize::Count(count) => count.min(MAX_PICKED),
    }
}

/// Which side of the check a listing is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// The host's files, in the snapshot's mount base or the source root.
    Source,
    /// The store's copy.
    Store,
}

/// What one side lists, and how many of its files it keeps and hashes.
pub(crate) struct Listed<'a> {
    pub(crate) sample: &'a Sample,
    pub(crate) side: Side,
    /// Where the listing runs (the store's side may find its own: `Sample::in_store_found_by`).
    pub(crate) root: &'a str,
    /// Live, for a job with a snapshot source: the mount points of its volumes, each listed on
    /// its own filesystem, so that what the job does not snapshot (other filesystems, `/proc`)
    /// is never read.
    pub(crate) volumes: Option<&'a [String]>,
    pub(crate) size: SampleSize,
    pub(crate) cap: Option<u64>,
}

/// The argv that lists, picks and hashes what `listed` says: `sh -c SCRIPT ari-verify SEED`, the
/// seed's word replaced by the run's.
pub(crate) fn argv(listed: &Listed) -> Vec<String> {
    vec!["sh".into(), "-c".into(), script(listed), NAME.into(), SEED.into()]
}

/// Checks what a backend's sample says before any of it reaches a command line: each base an
/// absolute normalised path, each rule a non-empty line.
pub(crate) fn check(sample: &Sample) -> Result<(), String> {
    if sample.includes.is_empty() {
        return Err("it names nothing the job backs up".into());
    }
    for (base, rule) in &sample.includes {
        crate::contract::kinds::PATH
            .check(base)
            .map_err(|why| format!("an include's base `{base}` {why}"))?;
        // An empty include rule is the base itself: everything below it.
        if rule.contains(['\0', '\n', '\r']) {
            return Err(format!("the rule `{}` holds a NUL or a line break", rule.escape_default()));
        }
    }
    for (what, root) in [("store's", &sample.store_root), ("source's", &sample.source_root)] {
        crate::contract::kinds::PATH.check(root).map_err(|why| format!("the {what} root `{root}` {why}"))?;
    }
    if let Some(finder) = &sample.store_finder {
        if finder.is_empty() || finder.iter().any(|word| word.contains('\0')) {
            return Err("the store's finder is empty or holds a NUL".into());
        }
    }
    sample
        .excludes
        .iter()
        .chain(&sample.store_only)
        .chain(&sample.excluded_directories)
        .try_for_each(|rule| check_rule(rule))
}

fn check_rule(rule: &str) -> Result<(), String> {
    if rule.is_empty() || rule.contains(['\0', '\n', '\r']) {
        return Err(format!("the rule `{}` is empty or holds a NUL or a line break", rule.escape_default()));
    }
    Ok(())
}

/// Whether `inner` is `outer` or below it (absolute paths).
fn within(inner: &str, outer: &str) -> bool {
    inner == outer || outer == "/" || inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'))
}

/// Where find starts, as paths from the root: each include's base, none inside another; with
/// `volumes`, only what they hold: a base inside a volume, and a volume inside a base.
fn starts(sample: &Sample, volumes: Option<&[String]>) -> Vec<String> {
    let mut bases: Vec<&str> = sample.includes.iter().map(|(base, _)| base.as_str()).collect();
    bases.sort_unstable();
    bases.dedup();
    let outermost: Vec<&str> = bases
        .iter()
        .copied()
        .filter(|base| !bases.iter().any(|outer| outer != base && within(base, outer)))
        .collect();
    let mut starts: Vec<&str> = match volumes {
        None => outermost,
        Some(volumes) => outermost
            .iter()
            .flat_map(|base| {
                volumes.iter().filter_map(move |volume| {
                    if within(base, volume) {
                        Some(*base)
                    } else if within(volume, base) {
                        Some(volume.as_str())
                    } else {
                        None
                    }
                })
            })
            .collect(),
    };
    starts.sort_unstable();
    starts.dedup();
    starts.iter().map(|start| if *start == "/" { ".".to_string() } else { format!(".{start}") }).collect()
}

/// One rule over the whole of each path find prints (`./home/ann`) from rules over paths from
/// the source root (`/home/ann`).
fn anchored(rules: &[&String], below: bool) -> String {
    let alternatives: Vec<&str> = rules.iter().map(|rule| rule.as_str()).collect();
    format!("\\.({}){}", alternatives.join("|"), if below { "(/.*)?" } else { "" })
}

fn script(listed: &Listed) -> String {
    let Listed { sample, side, root, volumes, size, cap } = *listed;
    let includes: Vec<&String> = sample.includes.iter().map(|(_, rule)| rule).collect();
    let mut excludes: Vec<&String> = sample.excludes.iter().collect();
    if side == Side::Store {
        excludes.extend(&sample.store_only);
    }
    let directories: Vec<&String> = sample.excluded_directories.iter().collect();
    let prune = match (excludes.is_empty(), directories.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!("-regex {} -prune -o ", single_quoted(&anchored(&excludes, false))),
        (true, false) => {
            format!("-type d -regex {} -prune -o ", single_quoted(&anchored(&directories, false)))
        }
        (false, false) => format!(
            "\\( -regex {} -o -type d -regex {} \\) -prune -o ",
            single_quoted(&anchored(&excludes, false)),
            single_quoted(&anchored(&directories, false))
        ),
    };
    // Where the listing runs: the root, or (the store's) what its finder prints.
    let enter = match (side, &sample.store_finder) {
        (Side::Store, Some(finder)) => format!(
            "root=$({}) || exit 3; case $root in /*) ;; *) echo \"ari-verify: the store's finder printed no directory\" >&2; exit 3 ;; esac; cd -P -- \"$root\" || exit 3; ",
            crate::contract::quote::shell_join(finder)
        ),
        _ => format!("cd -P -- {} || exit 3; ", single_quoted(root)),
    };
    let below = threshold(size).to_string();
    // The status line sorts first (key -1), so a side keeps one more.
    let head = format!(" | head -z -n {}", kept(size) + 1);
    let starts: Vec<String> = starts(sample, volumes).iter().map(|start| single_quoted(start)).collect();
    // Each volume's files on its own filesystem: another one mounted inside it is not the job's.
    let one_filesystem = if volumes.is_some() { "-xdev " } else { "" };
    [
        "export LC_ALL=C; seed=$1; ",
        &enter,
        "set --; for p in ",
        &starts.join(" "),
        // A start is listed only when every directory on the way to it is one, not a symlink:
        // `find -P` follows no link below a start, but the kernel follows those above it.
        "; do q=${p#./}; c=.; while [ \"$q\" != \"${q#*/}\" ]; do c=$c/${q%%/*}; q=${q#*/}; \
         { [ -d \"$c\" ] && [ ! -L \"$c\" ]; } || continue 2; done; \
         if [ -e \"$p\" ] || [ -L \"$p\" ]; then set -- \"$@\" \"$p\"; fi; done; ",
        "printf 'ari-verify 1 %s\\0' \"$(id -u)\"; ",
        "{ [ $# -eq 0 ] || find -P \"$@\" ",
        one_filesystem,
        "-regextype posix-extended ",
        &prune,
        "\\( -type f -o -type l \\) -regex ",
        &single_quoted(&anchored(&includes, true)),
        " -printf '%y %m %U %G %s %T@ %C@ %p\\0%l\\0'; printf 'S %s\\0\\0' \"$?\"; } | awk -v seed=\"$seed\" -v below=",
        &below,
        " ",
        &single_quoted(PICK),
        " | sort -z -n -k1,1",
        &head,
        " | awk -v below=",
        &below,
        " -v cap=",
        &cap.map_or_else(|| "-1".to_string(), |cap| cap.to_string()),
        " ",
        &single_quoted(HASH),
    ]
    .concat()
}

/// Picks files by a hash of the path and the seed (the path's bytes, modulo a prime below 2^32,
/// exact in awk's doubles, and printed with `%.0f`: mawk's `%d` stops at 2^31), keyed by that
/// hash: each file whose key is below `below`, and the one with the lowest key above it, which
/// the next stage keeps only when no file was below (so that a share of a small tree still
/// compares a file). The link target goes before the path with its length, so that one
/// NUL-ended record holds both.
const PICK: &str = "BEGIN { RS = sprintf(\"%c\", 0); for (i = 1; i < 256; i++) ord[sprintf(\"%c\", i)] = i } \
NR % 2 == 1 { rec = $0; next } \
substr(rec, 1, 2) == \"S \" { printf \"-1 %s%c\", rec, 0; next } \
{ n = 0; for (i = 1; i <= 7; i++) n += index(substr(rec, n + 1), \" \"); path = substr(rec, n + 1); \
h = seed % 4294967291; for (i = 1; i <= length(path); i++) h = (h * 131 + ord[substr(path, i, 1)]) % 4294967291; \
line = sprintf(\"%.0f %s %d %s%s\", h, substr(rec, 1, n - 1), length($0), $0, path); \
if (h < below) printf \"%s%c\", line, 0; else if (first == \"\" || h < firsth) { first = line; firsth = h } } \
END { if (first != \"\") printf \"%s%c\", first, 0 }";

/// Prints each picked file's fields, its target and its path (the one above `below` only when
/// none was below), and hashes regular files in the picked order while they fit in the cap (all
/// of them when the cap is -1).
const HASH: &str = "BEGIN { RS = sprintf(\"%c\", 0); n = 0; used = 0; listed = 0 } \
{ split($0, f, \" \"); if (f[1] == -1) { printf \"%s%c\", substr($0, 4), 0; next } \
if (f[1] + 0 >= below && listed > 0) next; listed++; \
off = 0; for (i = 1; i <= 9; i++) off += index(substr($0, off + 1), \" \"); \
target = substr($0, off + 1, f[9]); path = substr($0, off + 1 + f[9]); flag = \"-\"; \
if (f[2] == \"f\" && (cap < 0 || used + f[6] <= cap)) { used += f[6]; flag = \"H\"; hashed[++n] = path } \
printf \"R %s %s %s %s %s %s %s %s %s%c%s%c%s%c\", flag, f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], 0, target, 0, path, 0 } \
END { fflush(); cmd = \"xargs -0r sha256sum -z --\"; for (i = 1; i <= n; i++) printf \"%s%c\", hashed[i], 0 | cmd; close(cmd) }";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::step::Host;

    #[test]
    fn a_sample_of_the_whole_root_is_one_rules_may_name_and_bad_rules_are_refused() {
        let whole = Sample::new("/", Host::Local, "/store").including("/", "");
        assert_eq!(check(&whole), Ok(()));
        assert_eq!(starts(&whole, None), ["."]);
        // Live, with volumes at / and /srv/data: each listed on its own filesystem.
        let volumes = ["/".to_string(), "/srv/data".to_string()];
        assert_eq!(starts(&whole, Some(&volumes)), [".", "./srv/data"]);
        let nested = Sample::new("/", Host::Local, "/store")
            .including("/srv", "/srv")
            .including("/srv/www", "/srv/www")
            .including("/etc", "/etc");
        assert_eq!(starts(&nested, None), ["./etc", "./srv"]);
        assert_eq!(starts(&nested, Some(&volumes)), ["./etc", "./srv", "./srv/data"]);
        let data_only = ["/srv/data".to_string()];
        assert_eq!(starts(&nested, Some(&data_only)), ["./srv/data"]);
        for bad in [
            Sample::new("/", Host::Local, "/store"),
            whole.clone().excluding(""),
            whole.clone().excluding("a\nb"),
            Sample::new("/", Host::Local, "store").including("/", ""),
            Sample::new("/", Host::Local, "/store").including("srv", "/srv"),
        ] {
            assert!(check(&bad).is_err(), "{bad:?}");
        }
    }
}
