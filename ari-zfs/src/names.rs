//! What the zfs backend's values are, checked when they are read: a dataset name, the rsync
//! destination, the snapshot prefix and the timestamp format of new snapshot names.
//!
//! A dataset that starts with `-` would become an option of `zfs snapshot`, and an rsync
//! destination without a host would write into a local directory of the source host; both are
//! refused before anything runs.

use ari_core::kinds::{TextKind, HOST, PATH, USER};
use ari_core::step::Chars;

/// A ZFS dataset, `POOL/PATH`.
pub static DATASET: TextKind = TextKind::new(
    "dataset",
    "a ZFS dataset, POOL/PATH: parts of letters, digits, `_`, `-`, `:`, `.`, the pool starting with a letter, no snapshot (`@`)",
    check_dataset,
);

/// Where rsync writes.
pub static RSYNC_DESTINATION: TextKind = TextKind::new(
    "rsync destination",
    "HOST:/PATH (or USER@HOST:/PATH, [IPV6]:/PATH), or an absolute /PATH on the source host; PATH absolute and normalised, and on a HOST not `/` and of letters, digits and `/._+,:@=-`",
    check_rsync_destination,
);

/// The prefix of ari's snapshot names.
pub static SNAPSHOT_PREFIX: TextKind = TextKind::new(
    "snapshot prefix",
    "a non-empty part of a ZFS snapshot name: letters, digits, `_`, `-`, `:`, `.`",
    check_prefix,
);

/// The tag of a `zfs-send` job's hold on the sender.
pub static HOLD_TAG: TextKind = TextKind::new(
    "hold tag",
    "a ZFS hold tag: letters, digits, `_`, `-`, `:`, `.`, not starting with `-`, at most 200 characters",
    check_hold_tag,
);

/// Checks a hold tag: a word no shell or `zfs` reads as anything but the tag.
pub fn check_hold_tag(tag: &str) -> Result<(), String> {
    if !is_zfs_name(tag) || tag.starts_with('-') {
        return Err("must be non-empty, of letters, digits, _ - . :, and not start with -".into());
    }
    if tag.len() > 200 {
        return Err("is longer than 200 characters".into());
    }
    Ok(())
}

/// The strftime format of the timestamp in new snapshot names.
pub static TIMESTAMP_FORMAT: TextKind = TextKind::new(
    "strftime format",
    "a strftime format (`%Y-%m-%d--%H%M`) whose output, at any time in any time zone, is part of a ZFS snapshot name: letters, digits, `_`, `-`, `:`, `.` and conversions that give digits or names (`%Y %m %d %H %M %S %F %T %s %a %b`...; not the time zone's `%Z`, `%z`, `%Q`, nor space padding or a width), at most 200 characters",
    check_timestamp_format,
);

/// The longest dataset or snapshot name ZFS takes.
const ZFS_NAME_MAX: usize = 255;

/// The characters of a ZFS name part after the dataset (`2026-12-02--0300`), as a host's filter
/// lets them through in ari's `zfs snapshot` and `zfs destroy`: those of [`is_zfs_name`].
pub const ZFS_NAME: Chars = Chars::new("a ZFS name part", "A-Za-z0-9_.:-");

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
        return PATH.check(destination);
    }
    let (host_part, path) = if let Some(rest) = destination.strip_prefix('[') {
        let (address, after) = rest.split_once(']').ok_or("has a `[` without its `]`")?;
        let path = after.strip_prefix(':').ok_or("needs `:` after `[ADDRESS]`, then the path")?;
        HOST.check(address).map_err(|why| format!("has the host `{address}`, which {why}"))?;
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
                USER.check(user).map_err(|why| format!("has the user `{user}`, which {why}"))?;
                host
            }
            None => host,
        };
        HOST.check(host).map_err(|why| format!("has the host `{host}`, which {why}"))?;
    }
    if path.starts_with(':') {
        return Err("names an rsync daemon module (`HOST::MODULE`); ari writes over ssh: HOST:/PATH".into());
    }
    PATH.check(path).map_err(|why| format!("has the path `{path}`, which {why}"))?;
    // The ZFS host's filter matches the path as rsync sends it, and hands it to rrsync as the one
    // directory the key may write: rsync sends it as it is only when no character needs its
    // escaping, and `/` would be the whole host.
    if let Some(c) = path.chars().find(|c| !(c.is_ascii_alphanumeric() || "/._+,:@=-".contains(*c))) {
        return Err(format!(
            "has `{}` in its path, which rsync escapes on its way to the host; a remote path holds letters, digits and `/._+,:@=-`",
            c.escape_default()
        ));
    }
    if path == "/" {
        return Err("writes into the host's `/`: name the directory in the dataset".into());
    }
    Ok(())
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

/// The most characters a timestamp may have: the rest of a snapshot name's 255 go to the
/// dataset, `@`, the prefix and a `-N` suffix.
pub const TIMESTAMP_MAX: usize = 200;

/// What `free_name` may add to a snapshot name that the dataset already has (`-2`, ...).
pub const FREE_SUFFIX_MAX: usize = 6;

/// The longest snapshot name ZFS takes, `DATASET@NAME` whole.
pub const SNAPSHOT_NAME_MAX: usize = ZFS_NAME_MAX;

/// The strftime conversions a snapshot name may hold, each with the most characters it gives
/// for any time of years 0 to 9999, in any time zone, and whether it pads with a space
/// unless a `-` or `0` flag says otherwise. Each gives digits, ASCII letters or `:` (never a
/// time zone's name or offset, whose `/` and `+` no ZFS name holds).
const CONVERSIONS: &[(char, usize, bool)] = &[
    ('Y', 4, false),
    ('C', 2, false),
    ('y', 2, false),
    ('G', 4, false),
    ('g', 2, false),
    ('m', 2, false),
    ('d', 2, false),
    ('e', 2, true),
    ('j', 3, false),
    ('H', 2, false),
    ('I', 2, false),
    ('k', 2, true),
    ('l', 2, true),
    ('M', 2, false),
    ('S', 2, false),
    ('f', 9, false),
    ('N', 9, false),
    ('s', 12, false),
    ('U', 2, false),
    ('V', 2, false),
    ('W', 2, false),
    ('u', 1, false),
    ('w', 1, false),
    ('q', 1, false),
    ('a', 3, false),
    ('A', 9, false),
    ('b', 3, false),
    ('h', 3, false),
    ('B', 9, false),
    ('p', 2, false),
    ('P', 2, false),
    ('F', 10, false),
    ('R', 5, false),
    ('T', 8, false),
];

/// Why a conversion that a snapshot name cannot hold is refused.
fn refused_conversion(spec: char) -> String {
    let why = match spec {
        'Q' | 'Z' | 'z' | ':' => {
            "the time zone's name or offset, which holds `/` or `+` in many zones (Europe/Berlin, +0530)"
        }
        '%' => "a `%`, which no ZFS name holds",
        'n' | 't' => "whitespace",
        'c' | 'r' | 'x' | 'X' => "the date or time with spaces",
        'D' => "a `/`",
        _ => "no strftime conversion that ari takes in a snapshot name (%Y %m %d %H %M %S %F %T %s and the like)",
    };
    format!("has `%{}`: {why}", spec.escape_default())
}

/// The most characters `format` gives, whatever the time and the host's time zone, or why it
/// can give something that no ZFS snapshot name holds.
///
/// Read by what each conversion can give, not by formatting one sample time: `%Q` gives `UTC`
/// on a machine in UTC and `Europe/Berlin` on the host that runs the job, `%e` gives `31` on
/// the last of the month and ` 1` on the first.
pub fn timestamp_width(format: &str) -> Result<usize, String> {
    let mut width = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            if !is_zfs_name(c.encode_utf8(&mut [0; 4])) {
                return Err(format!(
                    "holds `{}`, which no ZFS snapshot name holds (letters, digits, `_`, `-`, `:`, `.`)",
                    c.escape_default()
                ));
            }
            width += 1;
            continue;
        }
        let flag = chars.next_if(|c| matches!(c, '_' | '-' | '0' | '^' | '#'));
        if flag == Some('_') {
            return Err("has the flag `%_`, which pads with spaces".into());
        }
        if chars.next_if(char::is_ascii_digit).is_some() {
            return Err("has a padding width (`%10Y`): write the conversion without one".into());
        }
        let spec = chars.next().ok_or("ends with a lone `%`")?;
        let Some(&(_, most, space_padded)) = CONVERSIONS.iter().find(|(known, _, _)| *known == spec) else {
            return Err(refused_conversion(spec));
        };
        if space_padded && !matches!(flag, Some('-' | '0')) {
            return Err(format!("has `%{spec}`, which pads with a space: write `%-{spec}` or `%0{spec}`"));
        }
        width += most;
    }
    Ok(width)
}

/// Checks a timestamp format: what it can give, at any time in any time zone, is a part of a
/// ZFS snapshot name (`timestamp_width`), not empty, and at most `TIMESTAMP_MAX` characters;
/// and jiff formats it (at a fixed time in UTC: asking for the local zone reads the time zone
/// database, which every start of ari would pay for, since defaults are checked too).
pub fn check_timestamp_format(format: &str) -> Result<(), String> {
    if format.is_empty() {
        return Err("is empty: every snapshot name would be the prefix alone".into());
    }
    // Refused before it is read: a format of megabytes gives as many characters.
    if format.len() > 4 * TIMESTAMP_MAX {
        return Err(format!("is longer than a snapshot name can be ({SNAPSHOT_NAME_MAX} characters)"));
    }
    let width = timestamp_width(format)?;
    if width > TIMESTAMP_MAX {
        return Err(format!(
            "can give {width} characters; a timestamp holds at most {TIMESTAMP_MAX} (a snapshot name, with its dataset and prefix, at most {SNAPSHOT_NAME_MAX})"
        ));
    }
    let sample = jiff::civil::datetime(2026, 12, 31, 23, 59, 59, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|err| err.to_string())?;
    let stamp = jiff::fmt::strtime::format(format.as_bytes(), &sample).map_err(|err| err.to_string())?;
    // What the table above promises, checked against jiff itself.
    if stamp.is_empty() || !is_zfs_name(&stamp) || stamp.len() > width {
        return Err(format!(
            "gives `{}`, which is no valid part of a snapshot name",
            ari_core::kinds::shown(&stamp)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_lets_through_the_characters_of_a_zfs_name() {
        for c in (0..=127u8).map(char::from) {
            assert_eq!(ZFS_NAME.contains(c), is_zfs_name(&c.to_string()), "{c:?}");
        }
    }

    #[track_caller]
    fn check(kind: &TextKind, ok: &[&str], bad: &[(&str, &str)]) {
        for value in ok {
            assert_eq!(kind.check(value), Ok(()), "{value:?}");
        }
        for (value, why) in bad {
            let err = kind.check(value).expect_err(value);
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
                ("zfs:/", "the host's `/`"),
                ("zfs:/p q", "has ` ` in its path"),
                ("zfs:/p{}", "has `{` in its path"),
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
        let huge = "%Y".repeat(51);
        let megabytes = "%Y".repeat(1 << 20);
        check(
            &TIMESTAMP_FORMAT,
            &[
                "%Y-%m-%d--%H%M",
                "%s",
                "%F_%T",
                "%-e.%0k%-l",
                "%^a%#p%A%B",
                "%G-W%V-%u",
                "first",
                &"%Y".repeat(50),
            ],
            &[
                ("%Y %m", "holds ` `"),
                ("%Y/%m", "holds `/`"),
                ("%Q", "`%Q`: the time zone's name"),
                ("%:Q", "`%:`: the time zone's name"),
                ("%Z", "`%Z`: the time zone's name"),
                ("%z", "`%z`"),
                ("%:z", "`%:`"),
                ("%e", "pads with a space: write `%-e`"),
                ("%k", "pads with a space"),
                ("%_d", "pads with spaces"),
                ("%10Y", "padding width"),
                ("%-3d", "padding width"),
                ("%D", "a `/`"),
                ("%c", "with spaces"),
                ("%n", "whitespace"),
                ("%%", "a `%`"),
                ("%+", "no strftime conversion"),
                ("%E", "no strftime conversion"),
                ("%Y%", "lone `%`"),
                ("", "is empty"),
                ("\u{e9}t\u{e9}", "holds `\\u{e9}`"),
                (&huge, "can give 204 characters"),
                (&megabytes, "longer than a snapshot name can be"),
            ],
        );
    }

    #[test]
    fn a_format_is_as_wide_as_its_widest_time() {
        // Every accepted conversion, at the times that make it widest, gives no more than the
        // table says, and only ZFS name characters: the table is checked against jiff.
        let zones = ["UTC", "America/St_Johns", "Asia/Kathmandu", "Pacific/Kiritimati", "America/Sao_Paulo"];
        let times = [
            jiff::civil::datetime(9999, 9, 29, 23, 59, 59, 999_999_999),
            jiff::civil::datetime(2026, 1, 1, 0, 0, 0, 0),
            jiff::civil::datetime(2024, 12, 30, 12, 0, 60 - 1, 1),
            jiff::civil::datetime(1, 1, 1, 1, 1, 1, 0),
        ];
        let mut formatted = 0;
        for &(spec, most, space_padded) in CONVERSIONS {
            let format = if space_padded { format!("%-{spec}") } else { format!("%{spec}") };
            assert_eq!(timestamp_width(&format), Ok(most), "{format}");
            for zone in zones {
                let Ok(tz) = jiff::tz::TimeZone::get(zone) else { continue };
                for time in times {
                    let Ok(zoned) = time.to_zoned(tz.clone()) else { continue };
                    let stamp = jiff::fmt::strtime::format(format.as_bytes(), &zoned).unwrap();
                    assert!(is_zfs_name(&stamp) && stamp.len() <= most, "{format} at {zoned}: `{stamp}`");
                    formatted += 1;
                }
            }
        }
        // Each conversion at each time in at least UTC and most zones (a missing zone database
        // leaves UTC only, which fails here rather than checking less without a word).
        assert!(formatted > CONVERSIONS.len() * times.len() * 3, "only {formatted} formatted");
    }
}

/// The time ari named a snapshot by: `stamp` (the snapshot's name after the prefix) read with
/// the timestamp `format` in `tz`, a `-N` suffix that `free_name` added left out; none when the
/// format does not give a date and a time of day to the minute, or the name does not read.
/// ari names a snapshot by the backup server's clock, which the store host's `creation` may
/// not agree with (an RTC reset, a clock without NTP).
pub fn named_time(format: &str, stamp: &str, tz: &jiff::tz::TimeZone) -> Option<i64> {
    let read = |text: &str| -> Option<i64> {
        let broken = jiff::fmt::strtime::parse(format.as_bytes(), text.as_bytes()).ok()?;
        broken.hour()?;
        broken.minute()?;
        let datetime = broken.to_datetime().ok()?;
        Some(tz.to_ambiguous_zoned(datetime).compatible().ok()?.timestamp().as_second())
    };
    read(stamp).or_else(|| {
        let (base, n) = stamp.rsplit_once('-')?;
        (!n.is_empty() && n.len() <= FREE_SUFFIX_MAX && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| read(base))
            .flatten()
    })
}

#[cfg(test)]
mod named_time_tests {
    use super::*;

    #[test]
    fn a_name_gives_its_time_when_the_format_says_a_date_and_a_minute() {
        let utc = jiff::tz::TimeZone::UTC;
        let at = |text: &str| text.parse::<jiff::Timestamp>().unwrap().as_second();
        let format = "%Y-%m-%d--%H%M";
        assert_eq!(named_time(format, "2026-12-07--1259", &utc), Some(at("2026-12-07T12:59:00Z")));
        assert_eq!(named_time(format, "2026-12-07--1259-2", &utc), Some(at("2026-12-07T12:59:00Z")));
        assert_eq!(named_time("%Y%m%dT%H%M%S", "20261207T125901", &utc), Some(at("2026-12-07T12:59:01Z")));
        // Local time: the server's zone, as the name was made.
        let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
        assert_eq!(named_time(format, "2026-07-01--0200", &paris), Some(at("2026-07-01T00:00:00Z")));
        // No time of day, no date, or a name that does not read: none.
        for (format, stamp) in [
            ("%Y-%m-%d", "2026-12-07"),
            ("nightly", "nightly"),
            ("%H%M", "1259"),
            (format, "2026-12-07--12"),
            (format, "seed-3"),
            (format, "2026-12-07--1259-x"),
            (format, "2026-13-07--1259"),
        ] {
            assert_eq!(named_time(format, stamp, &utc), None, "{format} {stamp}");
        }
    }
}
