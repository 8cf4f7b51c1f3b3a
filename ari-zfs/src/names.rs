//! What the zfs backend's values are, checked when they are read: a dataset name, the rsync
//! destination, the snapshot prefix and the timestamp format of new snapshot names.
//!
//! A dataset that starts with `-` would become an option of `zfs snapshot`, and an rsync
//! destination without a host would write into a local directory of the source host; both are
//! refused before anything runs.

use ari_core::kinds::{check_host, check_path, check_user, TextKind};

/// A ZFS dataset, `POOL/PATH`.
pub static DATASET: TextKind = TextKind {
    name: "dataset",
    accepts: "a ZFS dataset, POOL/PATH: parts of letters, digits, `_`, `-`, `:`, `.`, the pool starting with a letter, no snapshot (`@`)",
    check: check_dataset,
};

/// Where rsync writes.
pub static RSYNC_DESTINATION: TextKind = TextKind {
    name: "rsync destination",
    accepts: "HOST:/PATH (or USER@HOST:/PATH, [IPV6]:/PATH), or an absolute /PATH on the source host; PATH absolute and normalised",
    check: check_rsync_destination,
};

/// The prefix of ari's snapshot names.
pub static SNAPSHOT_PREFIX: TextKind = TextKind {
    name: "snapshot prefix",
    accepts: "a non-empty part of a ZFS snapshot name: letters, digits, `_`, `-`, `:`, `.`",
    check: check_prefix,
};

/// The strftime format of the timestamp in new snapshot names.
pub static TIMESTAMP_FORMAT: TextKind = TextKind {
    name: "strftime format",
    accepts: "a strftime format whose output is a valid part of a ZFS snapshot name (`%Y-%m-%d--%H%M`)",
    check: check_timestamp_format,
};

/// The longest dataset or snapshot name ZFS takes.
const ZFS_NAME_MAX: usize = 255;

/// A ZFS name part: what `zfs` accepts between the `/` of a dataset and after `@`.
pub fn is_zfs_name(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// Checks a dataset name.
pub fn check_dataset(dataset: &str) -> Result<(), String> {
    if dataset.is_empty() {
        return Err("is empty".into());
    }
    if dataset.starts_with('-') {
        return Err("must not start with `-` (zfs would read it as an option)".into());
    }
    if dataset.starts_with('/') {
        return Err("is a path: write the dataset as POOL/PATH, without a leading `/`".into());
    }
    if dataset.contains('@') || dataset.contains('#') {
        return Err("names a snapshot or bookmark: write the dataset itself, POOL/PATH".into());
    }
    if dataset.len() > ZFS_NAME_MAX {
        return Err(format!("is longer than a ZFS name can be ({ZFS_NAME_MAX} characters)"));
    }
    for part in dataset.split('/') {
        if part.is_empty() {
            return Err("has an empty part (a leading, trailing or doubled `/`)".into());
        }
        if part == "." || part == ".." || !is_zfs_name(part) {
            return Err(format!(
                "has the part `{}`; parts hold letters, digits, `_`, `-`, `:`, `.`",
                ari_core::kinds::shown(part)
            ));
        }
    }
    let pool = dataset.split('/').next().unwrap_or_default();
    if !pool.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(format!("has the pool `{pool}`, which does not start with a letter"));
    }
    let reserved = ["mirror", "raidz", "draid", "spare", "log"];
    if reserved.iter().any(|r| pool.starts_with(r))
        || (pool.starts_with('c') && pool[1..].starts_with(|c: char| c.is_ascii_digit()))
    {
        return Err(format!("has the pool `{pool}`, a name ZFS reserves"));
    }
    Ok(())
}

/// Checks an rsync destination: `[USER@]HOST:/PATH`, `[IPV6]:/PATH`, or `/PATH`.
pub fn check_rsync_destination(destination: &str) -> Result<(), String> {
    if destination.starts_with('-') {
        return Err("must not start with `-` (rsync would read it as an option)".into());
    }
    if destination.starts_with('/') {
        return check_path(destination);
    }
    let (host_part, path) = if let Some(rest) = destination.strip_prefix('[') {
        let (address, after) = rest.split_once(']').ok_or("has a `[` without its `]`")?;
        let path = after.strip_prefix(':').ok_or("needs `:` after `[ADDRESS]`, then the path")?;
        check_host(address).map_err(|why| format!("has the host `{address}`, which {why}"))?;
        (None, path)
    } else {
        let Some((host, path)) = destination.split_once(':') else {
            return Err(
                "is not HOST:/PATH, nor an absolute path (a relative path would be written on the source host)"
                    .into(),
            );
        };
        (Some(host), path)
    };
    if let Some(host) = host_part {
        let host = match host.split_once('@') {
            Some((user, host)) => {
                check_user(user).map_err(|why| format!("has the user `{user}`, which {why}"))?;
                host
            }
            None => host,
        };
        check_host(host).map_err(|why| format!("has the host `{host}`, which {why}"))?;
    }
    if path.starts_with(':') {
        return Err("names an rsync daemon module (`HOST::MODULE`); ari writes over ssh: HOST:/PATH".into());
    }
    check_path(path).map_err(|why| format!("has the path `{path}`, which {why}"))
}

/// The host part of a checked rsync destination, without a user: `zfs` of `backup@zfs:/p`,
/// `::1` of `[::1]:/p`; none for a local path.
pub fn rsync_destination_host(destination: &str) -> Option<&str> {
    if destination.starts_with('/') {
        return None;
    }
    if let Some(rest) = destination.strip_prefix('[') {
        return rest.split_once(']').map(|(address, _)| address);
    }
    let (host, _) = destination.split_once(':')?;
    Some(host.rsplit_once('@').map_or(host, |(_, host)| host))
}

/// The path part of a checked rsync destination: `/p` of `zfs:/p`, `[::1]:/p` or `/p`.
pub fn rsync_destination_path(destination: &str) -> &str {
    if destination.starts_with('/') {
        return destination;
    }
    let after_host = match destination.strip_prefix('[') {
        Some(rest) => rest.split_once(']').map_or(rest, |(_, after)| after),
        None => destination,
    };
    after_host.split_once(':').map_or(after_host, |(_, path)| path)
}

/// Checks the snapshot prefix.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if !is_zfs_name(prefix) {
        return Err(
            "must be non-empty, of letters, digits, _ - . : (expiry destroys only snapshots with it)".into(),
        );
    }
    if prefix.len() > 200 {
        return Err("is longer than 200 characters".into());
    }
    Ok(())
}

/// The timestamp part of a new snapshot's name, now, in the local time zone.
pub fn timestamp(format: &str) -> Result<String, String> {
    jiff::fmt::strtime::format(format.as_bytes(), &jiff::Zoned::now()).map_err(|err| err.to_string())
}

/// Checks a timestamp format by formatting a fixed time (in UTC: asking for the local zone
/// reads the time zone database, which every start of ari would pay for, since defaults are
/// checked too).
pub fn check_timestamp_format(format: &str) -> Result<(), String> {
    let sample = jiff::civil::datetime(2026, 12, 31, 23, 59, 59, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|err| err.to_string())?;
    let stamp = jiff::fmt::strtime::format(format.as_bytes(), &sample).map_err(|err| err.to_string())?;
    if is_zfs_name(&stamp) {
        Ok(())
    } else {
        Err(format!("gives `{stamp}`, which is no valid part of a snapshot name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(kind: &TextKind, ok: &[&str], bad: &[(&str, &str)]) {
        for value in ok {
            assert_eq!((kind.check)(value), Ok(()), "{value:?}");
        }
        for (value, why) in bad {
            let err = (kind.check)(value).expect_err(value);
            assert!(err.contains(why), "{value:?}: `{why}` not in `{err}`");
        }
    }

    #[test]
    fn datasets() {
        check(
            &DATASET,
            &["pool", "zpool-0/backups/ari-backup/mybackup", "tank/a.b:c_d"],
            &[
                ("-r", "must not start with `-`"),
                ("/pool/x", "a path"),
                ("pool/x@snap", "snapshot"),
                ("pool//x", "empty part"),
                ("pool/x/", "empty part"),
                ("pool/a b", "the part `a b`"),
                ("pool/..", "the part `..`"),
                ("0pool/x", "does not start with a letter"),
                ("mirror/x", "reserves"),
                ("c0t0d0/x", "reserves"),
                ("", "is empty"),
            ],
        );
    }

    #[test]
    fn rsync_destinations() {
        check(
            &RSYNC_DESTINATION,
            &["zfs:/zpool-0/backups/x", "backup@zfs-1.example.com:/p", "[::1]:/p", "/local/dataset/mount"],
            &[
                ("local/path", "not HOST:/PATH"),
                ("-e", "must not start with `-`"),
                ("zfs:relative", "not an absolute path"),
                ("zfs::module", "daemon module"),
                ("-x:/p", "must not start with `-`"),
                ("a b:/p", "has the host `a b`"),
                ("x;y@zfs:/p", "has the user `x;y`"),
                ("zfs:/p/../q", "`..`"),
                ("[::1:/p", "without its `]`"),
            ],
        );
    }

    #[test]
    fn prefixes_and_formats() {
        check(
            &SNAPSHOT_PREFIX,
            &["ari-backup-", "a.b:c_d"],
            &[("", "non-empty"), ("a b", "non-empty"), ("a@b", "non-empty")],
        );
        check(
            &TIMESTAMP_FORMAT,
            &["%Y-%m-%d--%H%M", "%s"],
            &[("%Y %m", "gives `2026 12`"), ("%Y/%m", "gives")],
        );
    }
}
