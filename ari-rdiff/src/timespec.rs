//! rdiff-backup's time specs, as `remove_older_than_timespec` takes them, checked before they
//! reach the command line: a value rdiff-backup would refuse (`abc`) fails every night after the
//! backup, and one starting with `-` becomes an option.
//!
//! The forms are those of rdiff-backup's manual (TIME FORMATS): `now`; seconds since the epoch;
//! an interval of numbers with the units `s`, `m`, `h`, `D`, `W`, `M`, `Y` (`1M`, `2W3D`); a
//! number of backup sessions (`5B`); a date (`2002-01-25`, `2002/01/25`, `01/25/2002`); a date
//! and time (`2002-01-25T07:00:00+02:00`).

use ari_core::kinds::TextKind;

/// An rdiff-backup time spec.
pub static TIMESPEC: TextKind = TextKind {
    name: "timespec",
    accepts: "an rdiff-backup time spec: an interval like `1M`, `2W3D`, `10D`; `5B` (backups); a date `2024-01-25`; a time `2024-01-25T07:00:00+02:00`; seconds since the epoch; or `now`",
    check: check_timespec,
};

/// Checks a time spec.
pub fn check_timespec(spec: &str) -> Result<(), String> {
    let ok = spec == "now"
        || is_number(spec)
        || ari_core::restore::interval_seconds(spec).is_some()
        || spec.strip_suffix('B').is_some_and(is_number)
        || is_date(spec)
        || is_date_time(spec);
    if ok {
        Ok(())
    } else {
        Err("is not an rdiff-backup time spec (like 1M, 2W3D, 10D, 5B, 2024-01-25 or now)".into())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_specs() {
        for ok in [
            "now",
            "1M",
            "2W3D",
            "10D",
            "1h78m",
            "90s",
            "1Y",
            "5B",
            "1700000000",
            "2024-01-25",
            "2024/01/25",
            "01/25/2024",
            "2024-01-25T07:00:00",
            "2024-01-25T07:00:00+02:00",
            "2024-01-25T07-00-00-05-00",
            "2024-01-25T07:00:00Z",
        ] {
            assert_eq!(check_timespec(ok), Ok(()), "{ok}");
        }
        for bad in ["", "--force", "-1D", "abc", "1x", "M", "1M2", "1 M", "2024-1-25", "now;", "5b", "1MB"] {
            assert!(check_timespec(bad).is_err(), "{bad}");
        }
    }
}
