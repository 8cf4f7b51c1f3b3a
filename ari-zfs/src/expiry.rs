//! Which snapshots expiry destroys, and which rules keep the others, from the output of
//! `zfs list -H -p -t snapshot -o name,creation -d 1 DATASET`: a pure function, so that every
//! rule is a unit test.
//!
//! Candidates: only snapshots of the dataset itself (`DATASET@...`, never a child's), only
//! those whose name after `@` starts with the prefix; another tool's snapshots are never judged.
//! A candidate is kept by any rule that keeps it: the newest `keep_min` (so a long outage, with
//! no new snapshots, cannot wipe the history), calendar retention (`zfs_keep`, see
//! [`crate::calendar`]), and its age below `snapshot_expiration_days`. A snapshot whose
//! `creation` is more than [`FUTURE_SLACK`] after now (a ZFS host whose clock ran ahead) is
//! kept as `future` and takes no rule's place: else it would be "the newest", and every rule
//! would keep it instead of the backup just made. A line that does not parse is an error
//! naming it, and no snapshot is destroyed.

use jiff::tz::TimeZone;

use crate::calendar::{self, Policy};

const DAY: i64 = 86_400;

/// How far a snapshot's `creation` may lie after ari's now (clocks differ a little) before it
/// counts as from the future: the engine's own [`ari_core::plugin::CLOCK_SLACK`].
pub const FUTURE_SLACK: i64 = ari_core::plugin::CLOCK_SLACK;

/// What keeps a snapshot: the job's retention settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// `snapshot_expiration_days`: a snapshot younger than this is kept.
    pub expiration_days: Option<u32>,
    /// `zfs_keep`: calendar retention.
    pub calendar: Policy,
    /// `zfs_keep_min`: the newest this many are kept.
    pub keep_min: u32,
    /// `zfs_snapshot_timestamp_format`: the time ari named a snapshot by, when it is more than
    /// [`FUTURE_SLACK`] after the store host's `creation`, is the snapshot's time (the store
    /// host's clock was behind when it was made; of two clocks that disagree the later date
    /// never makes a backup look older than it is). None: `creation` alone.
    pub named: Option<String>,
}

/// One of the dataset's own prefixed snapshots, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// Its full name, `DATASET@PREFIX...`.
    pub name: String,
    /// Its time, seconds since the epoch: its `creation`, or the time in its name when the two
    /// disagree (see `store_dated`).
    pub creation: i64,
    /// The rules that keep it (`keep_min`, `daily`, `age`), empty when it is destroyed.
    pub kept_by: Vec<&'static str>,
    /// Its `creation`, when that is not its time (the time in its name is): the store host's
    /// clock was off when it was made.
    pub store_dated: Option<i64>,
}

/// Every candidate of the listing, oldest first, with the rules that keep it; periods are read
/// in `tz`.
pub fn judge(
    listing: &str,
    dataset: &str,
    prefix: &str,
    rules: &Rules,
    now: i64,
    tz: &TimeZone,
) -> Result<Vec<Judged>, String> {
    // (time, name, creation when the time is not it)
    let mut ours: Vec<(i64, String, Option<i64>)> = Vec::new();
    // Snapshots with a hold (`userrefs` above 0): ZFS destroys none of them, and a replication
    // keeps the base of its next incremental send so (`zfs-send`).
    let mut held: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for (i, line) in listing.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let (name, creation, userrefs) = match fields[..] {
            [name, creation] => (name, creation, None),
            [name, creation, userrefs] => (name, creation, Some(userrefs)),
            _ => {
                return Err(format!(
                    "line {}: expected NAME<tab>CREATION[<tab>USERREFS], found `{line}`",
                    i + 1
                ))
            }
        };
        if let Some(userrefs) = userrefs {
            let count: u64 = userrefs
                .trim()
                .parse()
                .map_err(|_| format!("line {}: userrefs `{userrefs}` is not a whole number", i + 1))?;
            if count > 0 {
                held.insert(name.to_string());
            }
        }
        let creation: i64 = creation
            .trim()
            .parse()
            .map_err(|_| format!("line {}: creation `{creation}` is not seconds since the epoch", i + 1))?;
        let Some((owner, snapshot)) = name.split_once('@') else {
            return Err(format!("line {}: `{name}` is not a snapshot name", i + 1));
        };
        if owner == dataset && snapshot.starts_with(prefix) {
            let named = rules
                .named
                .as_deref()
                .and_then(|format| crate::names::named_time(format, &snapshot[prefix.len()..], tz))
                // Only a name later than `creation`: of two clocks that disagree, the later date
                // is the one by which the snapshot looks no older than it is (a backup server
                // whose clock was behind named it early, and its `creation` is right).
                .filter(|named| named.saturating_sub(creation) > FUTURE_SLACK);
            match named {
                Some(named) => ours.push((named, name.to_string(), Some(creation))),
                None => ours.push((creation, name.to_string(), None)),
            }
        }
    }
    // Oldest first; equal times by name, for a stable order. Those from the future last, kept
    // apart: no rule counts them.
    ours.sort();
    let future = ours.iter().filter(|(time, _, _)| *time > now.saturating_add(FUTURE_SLACK)).count();
    let judged = ours.len() - future;
    let creations: Vec<i64> = ours[..judged].iter().map(|(time, _, _)| *time).collect();
    let by_calendar = calendar::kept(&creations, &rules.calendar, tz);
    let newest_kept = judged.saturating_sub(rules.keep_min as usize);
    Ok(ours
        .into_iter()
        .enumerate()
        .map(|(i, (creation, name, store_dated))| {
            let mut kept_by = Vec::new();
            if i >= judged {
                return Judged { name, creation, kept_by: vec!["future"], store_dated };
            }
            if i >= newest_kept {
                kept_by.push("keep_min");
            }
            kept_by.extend(by_calendar.get(&i).into_iter().flatten().map(|period| period.as_str()));
            // Saturating: a creation time far in the past or future (zfs prints none, but a
            // line is only text) must not overflow, and an age past i64's range is still past
            // the limit.
            if let Some(days) = rules.expiration_days {
                if now.saturating_sub(creation) < i64::from(days) * DAY {
                    kept_by.push("age");
                }
            }
            if held.contains(&name) {
                kept_by.push("held");
            }
            Judged { name, creation, kept_by, store_dated }
        })
        .collect())
}

/// The snapshots that `snapshot_expiration_days` and `keep_min` alone destroy, oldest first.
#[cfg(test)]
fn expired_snapshots(
    listing: &str,
    dataset: &str,
    prefix: &str,
    expiration_days: u32,
    keep_min: u32,
    now: i64,
) -> Result<Vec<String>, String> {
    let rules =
        Rules { expiration_days: Some(expiration_days), calendar: Policy::default(), keep_min, named: None };
    Ok(judge(listing, dataset, prefix, &rules, now, &TimeZone::UTC)?
        .into_iter()
        .filter(|judged| judged.kept_by.is_empty())
        .map(|judged| judged.name)
        .collect())
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
    fn a_held_snapshot_is_kept_as_held_and_a_listing_with_holds_is_read() {
        let listing = format!(
            "pool/backups/web@ari-backup-base\t{}\t1\npool/backups/web@ari-backup-old\t{}\t0\npool/backups/web@ari-backup-new\t{}\t0\n",
            NOW - 100 * DAY,
            NOW - 90 * DAY,
            NOW
        );
        check(&listing, 1, &["pool/backups/web@ari-backup-old"]);
        let rules = Rules { expiration_days: Some(1), calendar: Policy::default(), keep_min: 1, named: None };
        let judged = judge(&listing, "pool/backups/web", "ari-backup-", &rules, NOW, &TimeZone::UTC).unwrap();
        assert_eq!(judged[0].kept_by, ["held"], "{judged:?}");
        for bad in ["pool/backups/web@ari-backup-x\t1\tmany\n", "pool/backups/web@ari-backup-x\t1\t2\t3\n"] {
            assert!(
                judge(bad, "pool/backups/web", "ari-backup-", &rules, NOW, &TimeZone::UTC).is_err(),
                "{bad}"
            );
        }
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
    fn a_snapshot_the_store_misdated_is_judged_by_the_time_in_its_name() {
        // NOW is 2027-01-15T08:00:00Z. A snapshot named a day ago by ari, which a ZFS host with
        // its clock 400 days behind dated by `creation`; another whose two times agree.
        let named =
            |time: i64| jiff::Timestamp::from_second(time).unwrap().strftime("%Y-%m-%d--%H%M").to_string();
        // A third, named a year early by a backup server whose clock was behind, made two days
        // ago by a ZFS host whose clock was right: the later date, its `creation`, is its time.
        let listing = format!(
            "{DATASET}@ari-backup-{}\t{}\n{DATASET}@ari-backup-{}\t{}\n{DATASET}@ari-backup-{}\t{}\n",
            named(NOW - DAY),
            NOW - 400 * DAY,
            named(NOW - 40 * DAY),
            NOW - 40 * DAY,
            named(NOW - 365 * DAY),
            NOW - 2 * DAY,
        );
        let rules = |format: Option<&str>| Rules {
            expiration_days: Some(30),
            calendar: Policy::default(),
            keep_min: 0,
            named: format.map(String::from),
        };
        let got =
            judge(&listing, DATASET, "ari-backup-", &rules(Some("%Y-%m-%d--%H%M")), NOW, &TimeZone::UTC)
                .unwrap();
        assert_eq!((got[0].kept_by.len(), got[0].store_dated), (0, None), "{got:?}");
        assert_eq!((got[1].creation, got[1].store_dated), (NOW - 2 * DAY, None), "{got:?}");
        assert_eq!(got[1].kept_by, ["age"]);
        assert_eq!(got[2].creation, NOW - DAY - (NOW - DAY) % 60, "{got:?}");
        assert_eq!(got[2].kept_by, ["age"]);
        assert_eq!(got[2].store_dated, Some(NOW - 400 * DAY));
        // By creation alone (a format without the time of day), the misdated one goes.
        let got =
            judge(&listing, DATASET, "ari-backup-", &rules(Some("%Y-%m-%d")), NOW, &TimeZone::UTC).unwrap();
        assert!(got.iter().all(|j| j.store_dated.is_none()), "{got:?}");
        let kept: Vec<bool> = got.iter().map(|j| !j.kept_by.is_empty()).collect();
        assert_eq!(kept, [false, false, true], "{got:?}");
    }

    /// Each of the dataset's own snapshots, oldest first, with the rules that keep it.
    fn judged(listing: &str, rules: &Rules) -> Vec<(String, Vec<&'static str>)> {
        judge(listing, DATASET, "ari-backup-", rules, NOW, &TimeZone::UTC)
            .unwrap()
            .into_iter()
            .map(|j| (j.name.trim_start_matches("pool/backups/web@ari-backup-").to_string(), j.kept_by))
            .collect()
    }

    #[test]
    fn every_rule_that_keeps_a_snapshot_is_named_and_a_snapshot_no_rule_keeps_is_destroyed() {
        use crate::calendar::Period::{Daily, Monthly};
        // NOW is 2027-01-15T08:00:00Z: one snapshot a day for 70 days, at 08:00 UTC.
        let listing: String =
            (0..70).rev().map(|days| line(&format!("pool/backups/web@ari-backup-{days}"), days)).collect();
        let calendar = Policy { rules: vec![(Daily, 3), (Monthly, 2)] };
        let rules = Rules { expiration_days: None, calendar: calendar.clone(), keep_min: 2, named: None };
        let kept: Vec<_> = judged(&listing, &rules).into_iter().filter(|(_, by)| !by.is_empty()).collect();
        assert_eq!(
            kept,
            [
                // The newest of December 2026, 15 days ago.
                ("15".to_string(), vec!["monthly"]),
                ("2".to_string(), vec!["daily"]),
                ("1".to_string(), vec!["keep_min", "daily"]),
                ("0".to_string(), vec!["keep_min", "daily", "monthly"]),
            ]
        );
        // With snapshot_expiration_days too, a snapshot either keeps is kept.
        let rules = Rules { expiration_days: Some(10), calendar, keep_min: 1, named: None };
        let got = judged(&listing, &rules);
        assert_eq!(got.len(), 70);
        let destroyed = got.iter().filter(|(_, by)| by.is_empty()).count();
        assert_eq!(destroyed, 70 - 10 - 1, "ten younger than 10 days, and December's newest: {got:?}");
        assert_eq!(got[69], ("0".to_string(), vec!["keep_min", "daily", "monthly", "age"]));
        assert_eq!(got[60], ("9".to_string(), vec!["age"]));
        assert_eq!(got[59], ("10".to_string(), vec![]));
        // No rule at all keeps only keep_min.
        let none = Rules { expiration_days: None, calendar: Policy::default(), keep_min: 1, named: None };
        assert_eq!(judged(&listing, &none).iter().filter(|(_, by)| by.is_empty()).count(), 69);
    }

    #[test]
    fn a_snapshot_from_the_future_is_kept_apart_and_takes_no_rules_place() {
        use crate::calendar::Period::{Daily, Weekly};
        // A ZFS host whose clock once ran a year ahead left a snapshot dated then.
        // The run's own snapshot is stamped by a host clock an hour ahead: within the slack.
        let listing = line("pool/backups/web@ari-backup-ahead", -365)
            + &line("pool/backups/web@ari-backup-2d", 2)
            + &format!("pool/backups/web@ari-backup-new\t{}\n", NOW + FUTURE_SLACK);
        let rules = Rules {
            expiration_days: None,
            calendar: Policy { rules: vec![(Daily, 1), (Weekly, 1)] },
            keep_min: 1,
            named: None,
        };
        assert_eq!(
            judged(&listing, &rules),
            [
                ("2d".to_string(), vec![]),
                ("new".to_string(), vec!["keep_min", "daily", "weekly"]),
                ("ahead".to_string(), vec!["future"]),
            ]
        );
    }

    #[test]
    fn the_worked_example_of_docs_jobs_md() {
        use crate::calendar::Period::{Daily, Monthly, Weekly};
        let days = ["11-25", "11-26", "11-27", "11-28", "11-29", "11-30", "12-05", "12-06", "12-07"];
        let listing: String = days
            .iter()
            .map(|day| {
                let time: jiff::Timestamp = format!("2026-{day}T02:00:00Z").parse().unwrap();
                format!("pool/backups/web@ari-backup-{day}\t{}\n", time.as_second())
            })
            .collect();
        let calendar = Policy { rules: vec![(Daily, 3), (Weekly, 2), (Monthly, 2)] };
        let rules = Rules { expiration_days: None, calendar, keep_min: 1, named: None };
        let kept: Vec<_> = judged(&listing, &rules).into_iter().filter(|(_, by)| !by.is_empty()).collect();
        let expected = [
            ("11-30", vec!["monthly"]),
            ("12-05", vec!["daily"]),
            ("12-06", vec!["daily", "weekly"]),
            ("12-07", vec!["keep_min", "daily", "weekly", "monthly"]),
        ];
        assert_eq!(kept, expected.map(|(day, by)| (day.to_string(), by)));
    }

    #[test]
    fn malformed_listings_name_the_line() {
        let bad = |listing: &str, expected: &str| {
            let err = expired_snapshots(listing, DATASET, "ari-backup-", 60, 1, NOW).unwrap_err();
            assert_eq!(err, expected);
        };
        bad(
            "pool/backups/web@ari-backup-a 1700000000\n",
            "line 1: expected NAME<tab>CREATION[<tab>USERREFS], found `pool/backups/web@ari-backup-a 1700000000`",
        );
        bad(
            &(line("pool/backups/web@a", 1) + "pool/backups/web@b\tyesterday\n"),
            "line 2: creation `yesterday` is not seconds since the epoch",
        );
        bad("pool/backups/web\t1700000000\n", "line 1: `pool/backups/web` is not a snapshot name");
        bad("a\tb\tc\td\n", "line 1: expected NAME<tab>CREATION[<tab>USERREFS], found `a\tb\tc\td`");
    }
}

/// Properties of expiry over generated listings: whatever `zfs list` prints, expiry never
/// panics and destroys only what the rules allow, and a listing it cannot read destroys nothing.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    const DATASET: &str = "pool/backups/web";
    const NOW: i64 = 1_800_000_000;

    fn config(cases: u32) -> Config {
        Config {
            cases,
            rng_seed: RngSeed::Fixed(0x00a1_b4c6_0000_0009),
            failure_persistence: None,
            ..Config::default()
        }
    }

    /// What a line of the listing is.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Owner {
        /// The dataset's own snapshot with the prefix: the only kind expiry may destroy.
        Ours,
        /// The dataset's own, without the prefix (made by hand).
        Unprefixed,
        /// A child dataset's, with the prefix.
        Child,
        /// A dataset whose name starts with the dataset's, with the prefix.
        Sibling,
        /// The parent dataset's, with the prefix.
        Parent,
    }

    #[derive(Debug, Clone)]
    enum Line {
        Snapshot { owner: Owner, creation: Creation, style: u8, tail: String },
        Blank(String),
    }

    /// A creation time, or one this many seconds from the expiry limit (where `>=` matters).
    #[derive(Debug, Clone, Copy)]
    enum Creation {
        At(i64),
        FromLimit(i64),
    }

    impl Creation {
        fn time(self, now: i64, days: u32) -> i64 {
            match self {
                Creation::At(time) => time,
                Creation::FromLimit(delta) => now.saturating_sub(i64::from(days) * DAY).saturating_add(delta),
            }
        }
    }

    fn creation() -> impl Strategy<Value = Creation> {
        prop_oneof![
            4 => (0i64..200 * DAY).prop_map(|age| Creation::At(NOW - age)),
            2 => (-1i64..=1).prop_map(Creation::FromLimit),
            1 => any::<i64>().prop_map(Creation::At),
            1 => prop::sample::select(&[i64::MIN, i64::MIN + 1, i64::MAX, -1, 0, 1, NOW, NOW + 1][..])
                .prop_map(Creation::At),
            1 => (-100_000i64..100_000).prop_map(Creation::At),
        ]
    }

    fn line() -> impl Strategy<Value = Line> {
        let owner = prop::sample::select(
            &[
                Owner::Ours,
                Owner::Ours,
                Owner::Ours,
                Owner::Unprefixed,
                Owner::Child,
                Owner::Sibling,
                Owner::Parent,
            ][..],
        );
        prop_oneof![
            8 => (owner, creation(), 0u8..4, "[a-zA-Z0-9_:.-]{0,8}")
                .prop_map(|(owner, creation, style, tail)| Line::Snapshot { owner, creation, style, tail }),
            1 => prop::sample::select(&["", " ", "\t ", "  \t"][..]).prop_map(|s| Line::Blank(s.to_string())),
        ]
    }

    /// The lines as `zfs list` would print them; the names, unique, of those that are ours.
    fn listing(lines: &[Line], prefix: &str, now: i64, days: u32) -> (Vec<String>, Vec<(i64, String)>) {
        let mut text = Vec::new();
        let mut ours = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            match line {
                Line::Blank(blank) => text.push(blank.clone()),
                Line::Snapshot { owner, creation, style, tail } => {
                    let creation = &creation.time(now, days);
                    let name = match owner {
                        Owner::Ours => format!("{DATASET}@{prefix}{i}{tail}"),
                        Owner::Unprefixed => format!("{DATASET}@manual{i}{tail}"),
                        Owner::Child => format!("{DATASET}/child@{prefix}{i}{tail}"),
                        Owner::Sibling => format!("{DATASET}by@{prefix}{i}{tail}"),
                        Owner::Parent => format!("pool/backups@{prefix}{i}{tail}"),
                    };
                    // zfs prints plain numbers; what parses as one anyway is read as one.
                    let shown = match style {
                        0 | 1 => creation.to_string(),
                        2 => format!(" {creation} "),
                        _ if *creation >= 0 => format!("+{creation}"),
                        _ => creation.to_string(),
                    };
                    text.push(format!("{name}\t{shown}"));
                    if *owner == Owner::Ours {
                        ours.push((*creation, name));
                    }
                }
            }
        }
        (text, ours)
    }

    fn params() -> impl Strategy<Value = (&'static str, u32, u32, i64)> {
        (
            prop::sample::select(&["ari-backup-", "a", "x:y."][..]),
            prop_oneof![4 => 0u32..400, 1 => Just(u32::MAX)],
            prop_oneof![4 => 0u32..6, 1 => Just(u32::MAX)],
            prop_oneof![4 => Just(NOW), 1 => any::<i64>(), 1 => prop::sample::select(&[i64::MIN, i64::MAX, 0][..])],
        )
    }

    proptest! {
        #![proptest_config(config(2000))]

        #[test]
        fn only_our_old_snapshots_beyond_the_newest_keep_min_expire(
            lines in prop::collection::vec(line(), 0..30),
            (prefix, days, keep_min, now) in params(),
        ) {
            let (text, ours) = listing(&lines, prefix, now, days);
            let text = text.join("\n");
            let expired = expired_snapshots(&text, DATASET, prefix, days, keep_min, now)
                .map_err(|err| TestCaseError::fail(format!("{err}\nlisting:\n{text}")))?;
            let old_enough = |creation: i64| {
                i128::from(now) - i128::from(creation) >= i128::from(days) * i128::from(DAY)
            };
            // A snapshot from the future is never expired and is no one's newer (keep_min).
            let future = |creation: i64| i128::from(creation) > i128::from(now) + i128::from(FUTURE_SLACK);
            let newer = |creation: i64, name: &str| {
                ours.iter().filter(|(c, n)| !future(*c) && (*c, n.as_str()) > (creation, name)).count()
            };
            let mut previous: Option<(i64, &str)> = None;
            for name in &expired {
                prop_assert!(name.starts_with(&format!("{DATASET}@{prefix}")), "{name} is not ours");
                let Some((creation, _)) = ours.iter().find(|(_, n)| n == name) else {
                    return Err(TestCaseError::fail(format!("{name} is not one of the dataset's own")));
                };
                prop_assert!(old_enough(*creation), "{name} made at {creation} is younger than {days} days");
                prop_assert!(!future(*creation), "{name} made at {creation} is from the future");
                prop_assert!(
                    newer(*creation, name) as u64 >= u64::from(keep_min),
                    "{name} is one of the newest {keep_min}"
                );
                prop_assert!(previous < Some((*creation, name)), "not oldest first: {expired:?}");
                previous = Some((*creation, name));
            }
            for (creation, name) in &ours {
                if old_enough(*creation) && newer(*creation, name) as u64 >= u64::from(keep_min) {
                    prop_assert!(expired.contains(name), "{name} should have expired: {expired:?}");
                }
            }
        }

        #[test]
        fn a_malformed_line_destroys_nothing_and_is_named(
            lines in prop::collection::vec(line(), 0..20),
            at in any::<prop::sample::Index>(),
            bad in prop::sample::select(&[
                "pool/backups/web@ari-backup-a 1700000000",
                "pool/backups/web@ari-backup-a\t1700000000\textra",
                "pool/backups/web@ari-backup-a\tyesterday",
                "pool/backups/web@ari-backup-a\t",
                "pool/backups/web@ari-backup-a\t1.5",
                "pool/backups/web@ari-backup-a\t99999999999999999999",
                "pool/backups/web@ari-backup-a\t-",
                "pool/backups/web@ari-backup-a\t0x10",
                "pool/backups/web\t1700000000",
                "\t1700000000",
                "pool/backups/web@ari-backup-a",
                "a\tb\tc",
            ][..]),
            (prefix, days, keep_min, now) in params(),
        ) {
            let (mut text, _) = listing(&lines, prefix, now, days);
            let at = at.index(text.len() + 1);
            text.insert(at, bad.to_string());
            let text = text.join("\n");
            match expired_snapshots(&text, DATASET, prefix, days, keep_min, now) {
                Ok(expired) => prop_assert!(false, "a malformed line was read; would destroy {expired:?}"),
                Err(err) => prop_assert!(err.starts_with(&format!("line {}: ", at + 1)), "{err}"),
            }
        }

        #[test]
        fn any_listing_is_read_or_refused_without_a_panic(
            text in prop_oneof![
                any::<String>(),
                prop::collection::vec(
                    prop::sample::select(&[
                        "\t", "\n", "@", "/", " ", "pool/backups/web", "pool/backups/web@", "ari-backup-",
                        "child", "1700000000", "-1", "+", "9223372036854775807", "-9223372036854775808",
                        "\r\n", "\0", "é",
                    ][..]),
                    0..40,
                ).prop_map(|pieces| pieces.concat()),
            ],
            (prefix, days, keep_min, now) in params(),
        ) {
            if let Ok(expired) = expired_snapshots(&text, DATASET, prefix, days, keep_min, now) {
                for name in &expired {
                    prop_assert!(name.starts_with(&format!("{DATASET}@{prefix}")), "{name}");
                    prop_assert!(text.lines().any(|l| l.split('\t').next() == Some(name.as_str())), "{name}");
                }
            }
        }
    }
}
