//! Calendar retention (issue 21's `zfs_keep`), as restic's and borg's `keep-hourly/daily/
//! weekly/monthly/yearly`: for each rule with a count N, the newest snapshot of each of the N
//! most recent periods that hold a snapshot is kept, so a pause in backups eats no history; one
//! snapshot may be kept by several rules. Periods are read in a time zone (the backup server's
//! local one), weeks are ISO weeks, and a snapshot's time is its ZFS `creation`. A pure function:
//! every rule is a table test, and the properties below are tested over random histories.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use jiff::Timestamp;

/// A period that a rule keeps one snapshot of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// An hour of the local day.
    Hourly,
    /// A local day.
    Daily,
    /// An ISO week.
    Weekly,
    /// A month.
    Monthly,
    /// A year.
    Yearly,
}

impl Period {
    /// Every period, shortest first, by its name in `zfs_keep`.
    pub const ALL: [(Period, &'static str); 5] = [
        (Period::Hourly, "hourly"),
        (Period::Daily, "daily"),
        (Period::Weekly, "weekly"),
        (Period::Monthly, "monthly"),
        (Period::Yearly, "yearly"),
    ];

    /// Its name in `zfs_keep`.
    pub fn as_str(self) -> &'static str {
        Period::ALL.iter().find(|(period, _)| *period == self).map_or("", |(_, name)| name)
    }

    /// The period of a name in `zfs_keep`.
    pub fn named(name: &str) -> Option<Period> {
        Period::ALL.iter().find(|(_, known)| *known == name).map(|(period, _)| *period)
    }

    /// The period that `time` falls in, in `tz`, as a key that orders periods in time.
    fn key(self, time: Timestamp, tz: &TimeZone) -> (i32, i32, i32, i32) {
        let local = time.to_zoned(tz.clone());
        let date = local.date();
        match self {
            Period::Hourly => {
                (i32::from(date.year()), i32::from(date.day_of_year()), i32::from(local.hour()), 0)
            }
            Period::Daily => (i32::from(date.year()), i32::from(date.day_of_year()), 0, 0),
            Period::Weekly => {
                let week = date.iso_week_date();
                (i32::from(week.year()), i32::from(week.week()), 0, 0)
            }
            Period::Monthly => (i32::from(date.year()), i32::from(date.month()), 0, 0),
            Period::Yearly => (i32::from(date.year()), 0, 0, 0),
        }
    }
}

/// How many of each period to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `(period, count)`, each period at most once.
    pub rules: Vec<(Period, u32)>,
}

/// Which snapshots a policy keeps: each kept one's index in the input, with the rules that keep
/// it (in the policy's order).
pub fn kept(creations: &[i64], policy: &Policy, tz: &TimeZone) -> BTreeMap<usize, Vec<Period>> {
    // Newest first; snapshots of one second keep their input order, the later one first.
    let mut order: Vec<usize> = (0..creations.len()).collect();
    order.sort_by(|&a, &b| creations[b].cmp(&creations[a]).then(b.cmp(&a)));
    let mut kept: BTreeMap<usize, Vec<Period>> = BTreeMap::new();
    for &(period, count) in &policy.rules {
        let mut last_key = None;
        let mut periods = 0;
        for &i in &order {
            if periods >= count {
                break;
            }
            let Ok(time) = Timestamp::from_second(creations[i]) else { continue };
            let key = period.key(time, tz);
            // The newest snapshot of a period is the first met of it, newest first.
            if last_key != Some(key) {
                last_key = Some(key);
                periods += 1;
                kept.entry(i).or_default().push(period);
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc() -> TimeZone {
        TimeZone::UTC
    }

    fn at(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_second()
    }

    fn check(times: &[&str], rules: &[(Period, u32)], tz: &TimeZone, expected: &[(&str, &[Period])]) {
        let creations: Vec<i64> = times.iter().map(|t| at(t)).collect();
        let policy = Policy { rules: rules.to_vec() };
        let got: Vec<(&str, Vec<Period>)> =
            kept(&creations, &policy, tz).into_iter().map(|(i, by)| (times[i], by)).collect();
        let expected: Vec<(&str, Vec<Period>)> = expected.iter().map(|(t, by)| (*t, by.to_vec())).collect();
        assert_eq!(got, expected, "{rules:?}");
    }

    use Period::*;

    #[test]
    fn the_newest_of_each_recent_period_is_kept() {
        let times = [
            "2026-12-01T01:00:00Z",
            "2026-12-01T23:00:00Z",
            "2026-12-02T01:00:00Z",
            "2026-12-03T01:00:00Z",
            "2026-12-03T02:00:00Z",
        ];
        check(
            &times,
            &[(Daily, 2)],
            &utc(),
            &[("2026-12-02T01:00:00Z", &[Daily]), ("2026-12-03T02:00:00Z", &[Daily])],
        );
        // One snapshot kept by several rules; a count beyond the history keeps every period.
        check(
            &times,
            &[(Daily, 10), (Monthly, 1)],
            &utc(),
            &[
                ("2026-12-01T23:00:00Z", &[Daily]),
                ("2026-12-02T01:00:00Z", &[Daily]),
                ("2026-12-03T02:00:00Z", &[Daily, Monthly]),
            ],
        );
        check(&times, &[], &utc(), &[]);
    }

    #[test]
    fn a_pause_in_backups_eats_no_history() {
        // Daily 3 over days with snapshots, whatever the gaps between them.
        let times =
            ["2026-01-01T03:00:00Z", "2026-02-10T03:00:00Z", "2026-06-30T03:00:00Z", "2026-12-01T03:00:00Z"];
        check(
            &times,
            &[(Daily, 3)],
            &utc(),
            &[
                ("2026-02-10T03:00:00Z", &[Daily]),
                ("2026-06-30T03:00:00Z", &[Daily]),
                ("2026-12-01T03:00:00Z", &[Daily]),
            ],
        );
    }

    #[test]
    fn weeks_are_iso_weeks_across_a_year_end() {
        // 2026-12-28 (Monday) to 2027-01-03 (Sunday) is ISO week 53 of 2026.
        let times =
            ["2026-12-27T12:00:00Z", "2026-12-28T12:00:00Z", "2027-01-03T12:00:00Z", "2027-01-04T12:00:00Z"];
        check(
            &times,
            &[(Weekly, 3)],
            &utc(),
            &[
                ("2026-12-27T12:00:00Z", &[Weekly]),
                ("2027-01-03T12:00:00Z", &[Weekly]),
                ("2027-01-04T12:00:00Z", &[Weekly]),
            ],
        );
    }

    #[test]
    fn periods_are_local_time_across_a_dst_change_and_month_ends_and_leap_days() {
        let berlin = TimeZone::get("Europe/Berlin").expect("tzdata (Debian's tzdata package)");
        // 23:30 UTC on March 31 is already April 1 in Berlin (CEST, UTC+2): two months locally.
        let times = ["2026-03-31T21:30:00Z", "2026-03-31T23:30:00Z"];
        check(
            &times,
            &[(Monthly, 5)],
            &berlin,
            &[("2026-03-31T21:30:00Z", &[Monthly]), ("2026-03-31T23:30:00Z", &[Monthly])],
        );
        check(&times, &[(Monthly, 5)], &utc(), &[("2026-03-31T23:30:00Z", &[Monthly])]);
        // The night the clocks go back (2026-10-25): 02:30 happens twice in Berlin, one hour.
        let times = ["2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"];
        check(&times, &[(Hourly, 5)], &berlin, &[("2026-10-25T01:30:00Z", &[Hourly])]);
        // A leap day is a day of its own.
        let times = ["2028-02-28T12:00:00Z", "2028-02-29T12:00:00Z", "2028-03-01T12:00:00Z"];
        check(
            &times,
            &[(Daily, 3), (Yearly, 1)],
            &utc(),
            &[
                ("2028-02-28T12:00:00Z", &[Daily]),
                ("2028-02-29T12:00:00Z", &[Daily]),
                ("2028-03-01T12:00:00Z", &[Daily, Yearly]),
            ],
        );
    }

    fn period() -> impl Strategy<Value = Period> {
        prop_oneof![Just(Hourly), Just(Daily), Just(Weekly), Just(Monthly), Just(Yearly)]
    }

    fn policy() -> impl Strategy<Value = Policy> {
        proptest::collection::btree_map(period(), 1u32..20, 1..5)
            .prop_map(|rules| Policy { rules: rules.into_iter().collect() })
    }

    /// Years of snapshots at irregular times: 2020 to 2030.
    fn history() -> impl Strategy<Value = Vec<i64>> {
        proptest::collection::vec(1_577_836_800i64..1_893_456_000, 1..120)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn the_newest_snapshot_is_always_kept(creations in history(), policy in policy()) {
            let kept = kept(&creations, &policy, &TimeZone::UTC);
            let newest = (0..creations.len()).max_by(|&a, &b| creations[a].cmp(&creations[b]).then(a.cmp(&b))).unwrap();
            prop_assert!(kept.contains_key(&newest), "{creations:?} {policy:?}");
        }

        #[test]
        fn a_snapshot_kept_as_its_periods_newest_stays_kept_until_n_newer_periods_hold_snapshots(
            creations in history(),
            later in proptest::collection::vec(1_893_456_000i64..1_924_992_000, 0..30),
            count in 1u32..10,
            period in period(),
        ) {
            let policy = Policy { rules: vec![(period, count)] };
            let tz = TimeZone::UTC;
            let key = |time: i64| period.key(Timestamp::from_second(time).unwrap(), &tz);
            let mut periods: Vec<_> = creations.iter().map(|&t| key(t)).collect();
            periods.sort();
            periods.dedup();
            let newest = *periods.last().unwrap();
            // The later snapshots fall in periods newer than every earlier one (a later one in
            // the newest earlier period would only replace its newest).
            prop_assume!(later.iter().all(|&t| key(t) > newest));
            let mut added: Vec<_> = later.iter().map(|&t| key(t)).collect();
            added.sort();
            added.dedup();
            let before = kept(&creations, &policy, &tz);
            let mut grown = creations.clone();
            grown.extend(&later);
            let after = kept(&grown, &policy, &tz);
            for &i in before.keys() {
                // Its period's rank, newest first, among the periods that hold snapshots.
                let rank = periods.len() - periods.iter().position(|&p| p == key(creations[i])).unwrap();
                let stays = rank + added.len() <= count as usize;
                prop_assert_eq!(after.contains_key(&i), stays, "{:?} then {:?}: {:?} {}", creations, later, period, count);
            }
        }
    }
}
