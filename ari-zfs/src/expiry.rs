//! Which snapshots expiry destroys, from the output of
//! `zfs list -H -p -t snapshot -o name,creation -d 1 DATASET`: a pure function, so that every
//! rule is a unit test.
//!
//! Rules: only snapshots of the dataset itself (`DATASET@...`, never a child's), only those whose
//! name after `@` starts with the prefix, only those at least the limit old, and never the newest
//! `keep_min` prefixed ones, so a long outage (no new snapshots) cannot wipe the history. A line
//! that does not parse is an error naming it, and no snapshot is destroyed.

const DAY: i64 = 86_400;

/// The snapshots to destroy, oldest first.
pub fn expired_snapshots(
    listing: &str,
    dataset: &str,
    prefix: &str,
    expiration_days: u32,
    keep_min: u32,
    now: i64,
) -> Result<Vec<String>, String> {
    let mut ours: Vec<(i64, String)> = Vec::new();
    for (i, line) in listing.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split('\t');
        let (Some(name), Some(creation), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!("line {}: expected NAME<tab>CREATION, found `{line}`", i + 1));
        };
        let creation: i64 = creation
            .trim()
            .parse()
            .map_err(|_| format!("line {}: creation `{creation}` is not seconds since the epoch", i + 1))?;
        let Some((owner, snapshot)) = name.split_once('@') else {
            return Err(format!("line {}: `{name}` is not a snapshot name", i + 1));
        };
        if owner == dataset && snapshot.starts_with(prefix) {
            ours.push((creation, name.to_string()));
        }
    }
    // Newest first, to keep the newest `keep_min`; equal times by name for a stable order.
    ours.sort_by(|a, b| b.cmp(a));
    let limit = i64::from(expiration_days) * DAY;
    // Saturating: a creation time far in the past or future (zfs prints none, but a line is
    // only text) must not overflow, and an age past i64's range is still past the limit.
    let mut expired: Vec<(i64, String)> = ours
        .into_iter()
        .skip(keep_min as usize)
        .filter(|(creation, _)| now.saturating_sub(*creation) >= limit)
        .collect();
    expired.sort();
    Ok(expired.into_iter().map(|(_, name)| name).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const DATASET: &str = "pool/backups/web";

    fn line(name: &str, days_old: i64) -> String {
        format!("{name}\t{}\n", NOW - days_old * DAY)
    }

    fn check(listing: &str, keep_min: u32, expected: &[&str]) {
        let got = expired_snapshots(listing, DATASET, "ari-backup-", 60, keep_min, NOW).unwrap();
        assert_eq!(got, expected, "listing:\n{listing}");
    }

    #[test]
    fn expired_and_fresh() {
        let listing = line("pool/backups/web@ari-backup-old", 90)
            + &line("pool/backups/web@ari-backup-older", 120)
            + &line("pool/backups/web@ari-backup-new", 1);
        check(&listing, 1, &["pool/backups/web@ari-backup-older", "pool/backups/web@ari-backup-old"]);
    }

    #[test]
    fn exactly_at_the_limit_is_expired_one_second_less_is_not() {
        let listing = line("pool/backups/web@ari-backup-at", 60)
            + &format!("pool/backups/web@ari-backup-almost\t{}\n", NOW - 60 * DAY + 1)
            + &line("pool/backups/web@ari-backup-new", 0);
        check(&listing, 1, &["pool/backups/web@ari-backup-at"]);
    }

    #[test]
    fn without_the_prefix_and_of_children_never() {
        let listing = line("pool/backups/web@manual-keep", 400)
            + &line("pool/backups/web/child@ari-backup-x", 400)
            + &line("pool/backups/webby@ari-backup-y", 400)
            + &line("pool/backups/web@ari-backup-new", 0);
        check(&listing, 1, &[]);
    }

    #[test]
    fn keep_min_guards_a_long_outage() {
        let listing = line("pool/backups/web@ari-backup-a", 100)
            + &line("pool/backups/web@ari-backup-b", 90)
            + &line("pool/backups/web@ari-backup-c", 80);
        check(&listing, 1, &["pool/backups/web@ari-backup-a", "pool/backups/web@ari-backup-b"]);
        check(&listing, 2, &["pool/backups/web@ari-backup-a"]);
        check(&listing, 5, &[]);
        check("", 1, &[]);
    }

    #[test]
    fn creation_times_at_the_ends_of_the_range_do_not_overflow() {
        let listing = format!(
            "pool/backups/web@ari-backup-min\t{}\npool/backups/web@ari-backup-max\t{}\n",
            i64::MIN,
            i64::MAX
        );
        check(&listing, 0, &["pool/backups/web@ari-backup-min"]);
        let got = expired_snapshots(&listing, DATASET, "ari-backup-", 60, 0, i64::MIN).unwrap();
        assert_eq!(got, Vec::<String>::new());
        let got = expired_snapshots(&listing, DATASET, "ari-backup-", 0, 0, i64::MAX).unwrap();
        assert_eq!(got, ["pool/backups/web@ari-backup-min", "pool/backups/web@ari-backup-max"]);
    }

    #[test]
    fn malformed_listings_name_the_line() {
        let bad = |listing: &str, expected: &str| {
            let err = expired_snapshots(listing, DATASET, "ari-backup-", 60, 1, NOW).unwrap_err();
            assert_eq!(err, expected);
        };
        bad(
            "pool/backups/web@ari-backup-a 1700000000\n",
            "line 1: expected NAME<tab>CREATION, found `pool/backups/web@ari-backup-a 1700000000`",
        );
        bad(
            &(line("pool/backups/web@a", 1) + "pool/backups/web@b\tyesterday\n"),
            "line 2: creation `yesterday` is not seconds since the epoch",
        );
        bad("pool/backups/web\t1700000000\n", "line 1: `pool/backups/web` is not a snapshot name");
        bad("a\tb\tc\n", "line 1: expected NAME<tab>CREATION, found `a\tb\tc`");
    }
}
