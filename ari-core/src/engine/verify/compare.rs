//! Judging two listings: the host's (in the snapshot the backup read, or live) against the
//! store's. With the snapshot, any difference is a defect. Live, a regular file whose size or
//! modification time differs from the store's changed since the backup read it, as did a
//! symlink whose target differs and whose status changed after the backup started, a file only
//! the host holds whose status changed after then, and a file only the store holds (deleted
//! since): those are counted as changed, never as failures.

use crate::engine::verify::listing::{Entry, Listing};

/// How the listings are judged.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Judging {
    /// The host's side is the snapshot the backup read.
    pub(crate) exact: bool,
    /// Live: when the backup started (seconds since the epoch), if known; a file only the host
    /// holds whose status changed since is new since the backup.
    pub(crate) since: Option<f64>,
    /// The most files each side kept (the first so many keys).
    pub(crate) count: u64,
    /// The key below which a side picked every file it has; a side that had none there listed
    /// the first above it instead.
    pub(crate) below: u64,
    /// Whether the store keeps owners as the host's numbers (`Sample::comparing_owners`).
    pub(crate) owners: bool,
}

/// What differs about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Difference {
    /// On the host, not in the store.
    Missing,
    /// In the store, not on the host.
    Extra,
    /// On both, differing in these (`content`, `size`, `type`, `mode`, `owner`, `target`).
    Differs(Vec<&'static str>),
    /// Picked for hashing on a side that printed no hash for it: it could not be read there.
    Unreadable(&'static str),
}

/// A file that failed the check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Finding {
    /// Its path from the source root, as its bytes.
    pub(crate) path: Vec<u8>,
    /// What differs.
    pub(crate) difference: Difference,
}

/// The outcome of a check.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Files compared (on both sides, not changed since the backup).
    pub(crate) files: u64,
    /// Bytes whose content was compared, as the host's side counted them.
    pub(crate) bytes: u64,
    /// Files compared by content.
    pub(crate) hashed: u64,
    /// Files that changed since the backup read them (live only): reported, not failures.
    pub(crate) changed: u64,
    /// Whether modes were compared (both sides ran as root).
    pub(crate) modes: bool,
    /// Whether owners were compared (both sides ran as root, and the store keeps them as the
    /// host's numbers).
    pub(crate) owners: bool,
    /// Every file that failed, in path order.
    pub(crate) findings: Vec<Finding>,
}

impl Verdict {
    /// Whether the backup passed.
    pub(crate) fn passed(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Compares the host's listing `source` with the store's `store`.
pub(crate) fn compare(source: &Listing, store: &Listing, judging: Judging) -> Verdict {
    let modes = source.uid == 0 && store.uid == 0;
    let owners = modes && judging.owners;
    // Each side listed a prefix of the one seeded order: every file it has below `below`, cut
    // after `count` files, or, having none below, its first file above. What a side covers ends
    // at its last key when it was cut or went above, else just below `below`; only the keys
    // both sides cover are judged.
    let covered = |listing: &Listing| {
        let last = listing.entries.values().map(|e| e.key).max();
        match last {
            Some(last) if last >= judging.below || listing.entries.len() as u64 >= judging.count => last,
            _ => judging.below.saturating_sub(1),
        }
    };
    let limit = covered(source).min(covered(store));
    let mut findings = Vec::new();
    let (mut files, mut bytes, mut hashed, mut changed) = (0, 0, 0, 0);
    for (path, host) in source.entries.iter().filter(|(_, e)| e.key <= limit) {
        let Some(kept) = store.entries.get(path) else {
            let new_since = match (judging.exact, judging.since) {
                (true, _) => false,
                (false, Some(since)) => host.ctime >= since,
                (false, None) => true,
            };
            if new_since {
                changed += 1;
            } else {
                findings.push(Finding { path: path.clone(), difference: Difference::Missing });
            }
            continue;
        };
        if !judging.exact && changed_since(host, kept, judging.since) {
            changed += 1;
            continue;
        }
        files += 1;
        let mut differs = differences(host, kept, modes, owners);
        if host.kind == 'f' && host.size == kept.size && host.hashed && kept.hashed {
            match (source.hashes.get(path), store.hashes.get(path)) {
                (Some(a), Some(b)) => {
                    hashed += 1;
                    bytes += host.size;
                    if a != b {
                        differs.insert(0, "content");
                    }
                }
                (None, _) => {
                    findings.push(Finding { path: path.clone(), difference: Difference::Unreadable("host") });
                    continue;
                }
                (_, None) => {
                    findings
                        .push(Finding { path: path.clone(), difference: Difference::Unreadable("store") });
                    continue;
                }
            }
        }
        if !differs.is_empty() {
            findings.push(Finding { path: path.clone(), difference: Difference::Differs(differs) });
        }
    }
    for (path, _) in store.entries.iter().filter(|(p, e)| e.key <= limit && !source.entries.contains_key(*p))
    {
        if judging.exact {
            findings.push(Finding { path: path.clone(), difference: Difference::Extra });
        } else {
            changed += 1;
        }
    }
    findings.sort_by(|a, b| a.path.cmp(&b.path));
    Verdict { files, bytes, hashed, changed, modes, owners, findings }
}

/// Live: whether the host's file may have changed since the backup read it. A regular file
/// whose size or modification time differs from the store's did (both tools keep the time, to
/// the second), as did one whose status changed since the backup started; a symlink, whose time neither keeps, did when its target differs and its status
/// changed since the backup started (or that is unknown).
fn changed_since(host: &Entry, kept: &Entry, since: Option<f64>) -> bool {
    match (host.kind, kept.kind) {
        // A file whose status changed since the backup started may have been rewritten with
        // its size and time put back: only the status's time cannot be set.
        ('f', 'f') => {
            host.size != kept.size
                || host.mtime != kept.mtime
                || since.is_some_and(|since| host.ctime >= since)
        }
        ('l', 'l') => host.target != kept.target && since.is_none_or(|since| host.ctime >= since),
        _ => true,
    }
}

/// What differs between a file's two entries, content aside.
fn differences(host: &Entry, kept: &Entry, modes: bool, owners: bool) -> Vec<&'static str> {
    let mut differs = Vec::new();
    if host.kind != kept.kind {
        differs.push("type");
        return differs;
    }
    match host.kind {
        'l' => {
            if host.target != kept.target {
                differs.push("target");
            }
        }
        _ => {
            if host.size != kept.size {
                differs.push("size");
            }
            if modes && host.mode != kept.mode {
                differs.push("mode");
            }
        }
    }
    if owners && host.owner != kept.owner {
        differs.push("owner");
    }
    differs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(key: u64, size: u64, mtime: i64, ctime: f64) -> Entry {
        Entry {
            key,
            kind: 'f',
            mode: "644".into(),
            owner: (0, 0),
            size,
            mtime,
            ctime,
            target: Vec::new(),
            hashed: true,
        }
    }

    fn listing(uid: u32, files: &[(&str, Entry, &str)]) -> Listing {
        let mut listing = Listing { uid, status: 0, ..Listing::default() };
        for (path, entry, hash) in files {
            listing.entries.insert(path.as_bytes().to_vec(), entry.clone());
            if !hash.is_empty() {
                listing.hashes.insert(path.as_bytes().to_vec(), hash.to_string());
            }
        }
        listing
    }

    const EXACT: Judging =
        Judging { exact: true, since: None, count: u64::MAX, below: u64::MAX, owners: true };

    fn differences(verdict: &Verdict) -> Vec<(&str, &Difference)> {
        verdict.findings.iter().map(|f| (std::str::from_utf8(&f.path).unwrap(), &f.difference)).collect()
    }

    #[test]
    fn the_same_files_pass() {
        let files = [("/a", file(1, 5, 10, 10.0), "aa"), ("/b", file(2, 7, 10, 10.0), "bb")];
        let verdict = compare(&listing(0, &files), &listing(0, &files), EXACT);
        assert!(verdict.passed(), "{verdict:?}");
        assert_eq!(
            (verdict.files, verdict.hashed, verdict.bytes, verdict.modes, verdict.owners),
            (2, 2, 12, true, true)
        );
    }

    #[test]
    fn with_the_snapshot_every_difference_fails() {
        let mut link = file(5, 3, 10, 10.0);
        link.kind = 'l';
        link.target = b"../x".to_vec();
        let mut other_link = link.clone();
        other_link.target = b"../y".to_vec();
        let mut mode = file(6, 1, 10, 10.0);
        mode.mode = "600".into();
        let mut owner = file(7, 1, 10, 10.0);
        owner.owner = (1000, 0);
        let mut unhashed = file(8, 1, 10, 10.0);
        unhashed.hashed = true;
        let host = listing(
            0,
            &[
                ("/content", file(1, 5, 10, 10.0), "aa"),
                ("/missing", file(2, 5, 10, 10.0), "aa"),
                ("/size", file(3, 5, 10, 10.0), "aa"),
                ("/link", link, ""),
                ("/mode", file(6, 1, 10, 10.0), "cc"),
                ("/owner", file(7, 1, 10, 10.0), "cc"),
                ("/unread", unhashed.clone(), ""),
            ],
        );
        let store = listing(
            0,
            &[
                ("/content", file(1, 5, 10, 10.0), "ab"),
                ("/extra", file(4, 5, 10, 10.0), "aa"),
                ("/size", file(3, 6, 10, 10.0), "aa"),
                ("/link", other_link, ""),
                ("/mode", mode, "cc"),
                ("/owner", owner, "cc"),
                ("/unread", unhashed, "dd"),
            ],
        );
        let verdict = compare(&host, &store, EXACT);
        assert_eq!(
            differences(&verdict),
            [
                ("/content", &Difference::Differs(vec!["content"])),
                ("/extra", &Difference::Extra),
                ("/link", &Difference::Differs(vec!["target"])),
                ("/missing", &Difference::Missing),
                ("/mode", &Difference::Differs(vec!["mode"])),
                ("/owner", &Difference::Differs(vec!["owner"])),
                ("/size", &Difference::Differs(vec!["size"])),
                ("/unread", &Difference::Unreadable("host")),
            ]
        );
    }

    #[test]
    fn modes_and_owners_count_only_when_both_sides_ran_as_root() {
        let mut mine = file(1, 1, 10, 10.0);
        mine.owner = (1000, 1000);
        mine.mode = "600".into();
        let host = listing(0, &[("/a", file(1, 1, 10, 10.0), "aa")]);
        let verdict = compare(&host, &listing(1000, &[("/a", mine, "aa")]), EXACT);
        assert!(verdict.passed() && !verdict.modes && !verdict.owners, "{verdict:?}");
        // A store that maps owners by name: modes compared, owners not.
        let mut other = file(1, 1, 10, 10.0);
        other.owner = (1000, 1000);
        let by_name = Judging { owners: false, ..EXACT };
        let verdict = compare(&host, &listing(0, &[("/a", other, "aa")]), by_name);
        assert!(verdict.passed() && verdict.modes && !verdict.owners, "{verdict:?}");
    }

    #[test]
    fn live_what_changed_since_the_backup_is_counted_never_failed() {
        let live =
            Judging { exact: false, since: Some(100.0), count: u64::MAX, below: u64::MAX, owners: true };
        let host = listing(
            0,
            &[
                ("/edited", file(1, 6, 120, 120.0), "new"),
                ("/new", file(2, 1, 120, 120.0), "aa"),
                ("/never-backed-up", file(3, 1, 50, 50.0), "aa"),
                ("/rotten", file(4, 1, 50, 50.0), "aa"),
            ],
        );
        let store = listing(
            0,
            &[
                ("/edited", file(1, 5, 90, 90.0), "old"),
                ("/deleted", file(5, 1, 50, 50.0), "aa"),
                ("/rotten", file(4, 1, 50, 50.0), "bb"),
            ],
        );
        let verdict = compare(&host, &store, live);
        assert_eq!(
            differences(&verdict),
            [("/never-backed-up", &Difference::Missing), ("/rotten", &Difference::Differs(vec!["content"])),]
        );
        assert_eq!((verdict.changed, verdict.files), (3, 1));
        // Without the backup's start, a file only the host holds may be new: counted, not failed.
        let unknown = compare(&host, &store, Judging { since: None, ..live });
        assert_eq!(differences(&unknown), [("/rotten", &Difference::Differs(vec!["content"]))]);
    }

    #[test]
    fn live_a_symlink_is_judged_by_its_target_and_status_not_its_time() {
        let live =
            Judging { exact: false, since: Some(100.0), count: u64::MAX, below: u64::MAX, owners: true };
        let link = |target: &str, mtime: i64, ctime: f64| Entry {
            kind: 'l',
            target: target.as_bytes().to_vec(),
            hashed: false,
            ..file(1, 3, mtime, ctime)
        };
        let host = listing(
            0,
            &[
                ("/same", link("a", 50, 50.0), ""),
                ("/rotten", link("a", 50, 50.0), ""),
                ("/new", link("b", 150, 150.0), ""),
            ],
        );
        let store = listing(
            0,
            &[
                ("/same", link("a", 99, 99.0), ""),
                ("/rotten", link("b", 50, 50.0), ""),
                ("/new", link("a", 50, 50.0), ""),
            ],
        );
        let verdict = compare(&host, &store, live);
        assert_eq!(differences(&verdict), [("/rotten", &Difference::Differs(vec!["target"]))]);
        assert_eq!((verdict.files, verdict.changed), (2, 1));
    }

    #[test]
    fn a_count_compares_only_the_keys_both_sides_reached() {
        // Each side kept its first two keys: the host 1 and 3, the store 1 and 2 (the host has
        // no file 2). Key 3 is past what the store reached: not judged.
        let count = Judging { count: 2, ..EXACT };
        let host = listing(0, &[("/a", file(1, 1, 1, 1.0), "aa"), ("/c", file(3, 1, 1, 1.0), "aa")]);
        let store = listing(0, &[("/a", file(1, 1, 1, 1.0), "aa"), ("/b", file(2, 1, 1, 1.0), "aa")]);
        let verdict = compare(&host, &store, count);
        assert_eq!(differences(&verdict), [("/b", &Difference::Extra)]);
    }

    #[test]
    fn a_side_with_no_file_below_the_share_lists_its_first_and_only_what_both_cover_is_judged() {
        let share = Judging { below: 10, ..EXACT };
        // Neither side has a key below 10: each lists its first above, the same file.
        let host = listing(0, &[("/a", file(50, 1, 1, 1.0), "aa")]);
        let verdict = compare(&host, &listing(0, &[("/a", file(50, 1, 1, 1.0), "aa")]), share);
        assert!(verdict.passed() && verdict.files == 1, "{verdict:?}");
        // The host has two below 10; the store none, so it listed its first above: the host's
        // two are truly missing from the store, and the store's first is past what the host
        // covers (below 10), not judged.
        let host = listing(0, &[("/a", file(3, 1, 1, 1.0), "aa"), ("/b", file(7, 1, 1, 1.0), "aa")]);
        let store = listing(0, &[("/c", file(40, 1, 1, 1.0), "aa")]);
        let verdict = compare(&host, &store, share);
        assert_eq!(differences(&verdict), [("/a", &Difference::Missing), ("/b", &Difference::Missing)]);
    }

    #[test]
    fn a_file_past_the_byte_cap_is_compared_without_its_content() {
        let mut big = file(1, 9, 1, 1.0);
        big.hashed = false;
        let host = listing(0, &[("/big", big.clone(), "")]);
        let verdict = compare(&host, &listing(0, &[("/big", big, "")]), EXACT);
        assert!(verdict.passed());
        assert_eq!((verdict.files, verdict.hashed, verdict.bytes), (1, 0, 0));
    }
}
