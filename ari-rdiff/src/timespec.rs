//! rdiff-backup's time specs, as `remove_older_than_timespec` takes them, checked before they
//! reach the command line: a value rdiff-backup would refuse (`abc`) fails every night after the
//! backup, one starting with `-` becomes an option, and one that removes every increment
//! (`now`) empties the store's history at every run.
//!
//! The forms are those of rdiff-backup's manual (TIME FORMATS) and of its parser (`Time.py`,
//! `genstrtotime`): `now`; seconds since the epoch; an interval of numbers with the units `s`,
//! `m`, `h`, `D`, `W`, `M`, `Y` (`1M`, `2W3D`), counted back from the time the command runs; a
//! number of backup sessions (`5B`: the time of the fifth backup before the latest, which is
//! `0B`); a date (`2002-01-25`, `2002/01/25`, `01/25/2002`: midnight, local time); a date and
//! time (`2002-01-25T07:00:00+02:00`, local time without a zone).
//!
//! `remove increments --older-than T` removes every increment strictly older than T, never the
//! latest backup (the mirror). What "removes the newest backup" means here: the newest
//! increment is the backup the run before made; a spec is refused when it removes that one
//! whatever the job's schedule, that is when T is at or after the start of the backup that just
//! ran: `now`, an interval of zero, `0B`, a time still to come. rdiff-backup names a backup by
//! the second it started, and retention runs after the backup ends, so an interval shorter than
//! a backup takes is the same as `now`: intervals under an hour are refused too. Whether a
//! longer one keeps an increment depends on how often the job runs, which ari does not know
//! (`1D` with nightly runs keeps none: last night's backup is a day and some minutes old when
//! retention runs); `docs/jobs.md` says so.

use ari_core::kinds::TextKind;

/// An rdiff-backup time spec.
pub static TIMESPEC: TextKind = TextKind::new(
    "timespec",
    "an rdiff-backup time spec that keeps the newest increment: an interval of at least an hour like `1M`, `2W3D`, `10D`; `5B` (backups, at least `1B`); a past date `2024-01-25` or time `2024-01-25T07:00:00+02:00`; past seconds since the epoch; not `now`",
    check_timespec,
);

/// The shortest interval retention takes: shorter ones remove every increment at every run.
pub const SHORTEST_INTERVAL: i64 = 3600;

/// The hint that follows a refusal: what keeps history.
const KEEP: &str = "keep a time (`1M`, `10D`) or a number of backups (`5B`)";

/// Checks a time spec: its form, and that it keeps the newest increment (see the module's
/// documentation), by the clock of the check.
pub fn check_timespec(spec: &str) -> Result<(), String> {
    check_timespec_at(spec, jiff::Timestamp::now().as_second())
}

/// `check_timespec` with `now` in seconds since the epoch.
fn check_timespec_at(spec: &str, now: i64) -> Result<(), String> {
    let every = |what: &str| {
        format!("{what}, so every run would remove every increment and keep only the latest backup; {KEEP}")
    };
    if spec == "now" {
        return Err(every("is the time retention runs"));
    }
    if is_number(spec) {
        // Digits past an i64 are a time no clock reaches.
        return match spec.parse::<i64>() {
            Ok(seconds) if seconds < now => Ok(()),
            _ => Err(every("is a time still to come")),
        };
    }
    if let Some(seconds) = ari_core::kinds::interval_seconds(spec) {
        if seconds == 0 {
            return Err(every("is an interval of zero"));
        }
        if seconds < SHORTEST_INTERVAL {
            return Err(every("is under an hour, which a backup and the wait for the next run outlast"));
        }
        return Ok(());
    }
    if let Some(count) = spec.strip_suffix('B').filter(|count| is_number(count)) {
        if count.bytes().all(|b| b == b'0') {
            return Err(every("is the latest backup, and every increment is older"));
        }
        return Ok(());
    }
    let time = if is_date(spec) {
        date_time(spec).ok_or("is no date of the calendar")?
    } else if is_date_time(spec) {
        date_time(spec).ok_or("is no date and time of the calendar")?
    } else {
        return Err("is not an rdiff-backup time spec (like 1M, 2W3D, 10D, 5B or 2024-01-25)".into());
    };
    if time >= now {
        return Err(every("is a time still to come"));
    }
    Ok(())
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `text` has the digits and separators of `pattern`, where `9` stands for a digit.
fn shaped(text: &str, pattern: &str) -> bool {
    text.len() == pattern.len()
        && text.bytes().zip(pattern.bytes()).all(|(t, p)| if p == b'9' { t.is_ascii_digit() } else { t == p })
}

fn is_date(text: &str) -> bool {
    ["9999-99-99", "9999/99/99", "99/99/9999", "99-99-9999"].iter().any(|p| shaped(text, p))
}

fn is_date_time(text: &str) -> bool {
    let Some((date, time)) = text.split_once('T') else { return false };
    let (clock, zone) = time.split_at(time.len().min(8));
    shaped(date, "9999-99-99")
        && (shaped(clock, "99:99:99") || shaped(clock, "99-99-99"))
        && (zone.is_empty()
            || zone == "Z"
            || ["+99:99", "-99:99", "+99-99", "-99-99"].iter().any(|p| shaped(zone, p)))
}

/// The time a date or date-time spec names, in seconds since the epoch, as rdiff-backup reads
/// it (a date is midnight; without a zone, the local one); `None` for no day of the calendar.
fn date_time(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i16>().ok();
    let (year, month, day) = if text.as_bytes().get(2).is_some_and(|b| !b.is_ascii_digit()) {
        // Month first: 01/25/2002.
        (number(6..10)?, number(0..2)?, number(3..5)?)
    } else {
        (number(0..4)?, number(5..7)?, number(8..10)?)
    };
    let date = jiff::civil::Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()?;
    let (mut time, mut zone) = (jiff::civil::Time::midnight(), None);
    if let Some((_, rest)) = text.split_once('T') {
        let (clock, offset) = rest.split_at(8);
        let part = |range: std::ops::Range<usize>| i8::try_from(clock.get(range)?.parse::<i16>().ok()?).ok();
        time = jiff::civil::Time::new(part(0..2)?, part(3..5)?, part(6..8)?, 0).ok()?;
        if !offset.is_empty() {
            let seconds = match offset {
                "Z" => 0,
                _ => {
                    let sign = if offset.starts_with('-') { -1 } else { 1 };
                    let hours: i32 = offset.get(1..3)?.parse().ok()?;
                    let minutes: i32 = offset.get(4..6)?.parse().ok()?;
                    sign * (hours * 3600 + minutes * 60)
                }
            };
            zone = Some(jiff::tz::TimeZone::fixed(jiff::tz::Offset::from_seconds(seconds).ok()?));
        }
    }
    let zone = zone.unwrap_or_else(jiff::tz::TimeZone::system);
    // A day of the calendar past the last instant jiff holds (9999-12-30T22:00Z) is still to come.
    Some(date.to_datetime(time).to_zoned(zone).map_or(i64::MAX, |zoned| zoned.timestamp().as_second()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2025-06-15T12:00:00Z, the clock of these checks.
    const NOW: i64 = 1_749_988_800;

    #[track_caller]
    fn check(spec: &str, expected: Result<(), &str>) {
        match (check_timespec_at(spec, NOW), expected) {
            (Ok(()), Ok(())) => {}
            (Err(err), Err(why)) => assert!(err.contains(why), "{spec}: `{why}` not in `{err}`"),
            (got, _) => panic!("{spec}: {got:?}"),
        }
    }

    #[test]
    fn time_specs_of_every_form() {
        for ok in [
            "1M",
            "2W3D",
            "10D",
            "1h",
            "60m",
            "3600s",
            "1h78m",
            "1Y",
            "1B",
            "5B",
            "1700000000",
            "0",
            "2024-01-25",
            "2024/01/25",
            "01/25/2024",
            "2024-01-25T07:00:00",
            "2024-01-25T07:00:00+02:00",
            "2024-01-25T07-00-00-05-00",
            "2024-01-25T07:00:00Z",
        ] {
            check(ok, Ok(()));
        }
        for bad in ["", "--force", "-1D", "abc", "1x", "M", "1M2", "1 M", "2024-1-25", "now;", "5b", "1MB"] {
            check(bad, Err("is not an rdiff-backup time spec"));
        }
    }

    #[test]
    fn a_spec_that_removes_the_newest_increment_is_refused_with_why() {
        check("now", Err("is the time retention runs, so every run would remove every increment"));
        for zero in ["0D", "0s", "0W0D", "00h"] {
            check(zero, Err("is an interval of zero"));
        }
        for short in ["1s", "90s", "59m", "59m59s"] {
            check(short, Err("is under an hour"));
        }
        for latest in ["0B", "00B"] {
            check(latest, Err("is the latest backup, and every increment is older"));
        }
        for future in [
            "1749988801",
            "99999999999999999999999",
            "2025-06-16",
            "06/16/2025",
            "2025-06-15T13:00:00Z",
            "2025-06-15T12:30:00+00:00",
            "9999-12-31",
        ] {
            check(future, Err("is a time still to come"));
        }
        check("1749988799", Ok(()));
        check("2025-06-15T11:59:59Z", Ok(()));
        check("2025-06-15T13:30:00+02:00", Ok(()));
    }

    #[test]
    fn a_date_that_no_calendar_has_is_refused() {
        check("2024-02-30", Err("is no date of the calendar"));
        check("13/01/2024", Err("is no date of the calendar"));
        check("2024-01-25T25:00:00", Err("is no date and time"));
        check("2024-01-25T07:00:00+99:00", Err("is no date and time"));
    }

    #[test]
    fn the_clock_of_the_check_is_now() {
        assert!(check_timespec("now").is_err());
        assert!(check_timespec("1M").is_ok());
        assert!(check_timespec("2000-01-01").is_ok());
        assert!(check_timespec("2999-01-01").is_err());
    }
}
