//! Reading `zpool status POOL`: the pool's state, its last scan and its error line. OpenZFS 2.1
//! has no JSON output, so this reads the text, each line by its label (`state:`, `scan:`,
//! `errors:`), and refuses what it does not know rather than guess. Times are read in UTC: the
//! command runs with `TZ=UTC` (`status_command`). The retention issue's capacity checks read
//! the same pool status.

use ari_core::plugin::PluginError;
use ari_core::step::{Command, Host};

/// What `zpool status` says of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStatus {
    /// `ONLINE`, `DEGRADED`, `FAULTED`, `OFFLINE`, `UNAVAIL`, `REMOVED`, `SUSPENDED`.
    pub state: String,
    /// Its last scan.
    pub scan: Scan,
    /// Whether its `errors:` line says there are none (`No known data errors`).
    pub no_known_errors: bool,
    /// Devices of its `config:` table whose read, write or checksum error count is not 0, as
    /// `NAME READ WRITE CKSUM`.
    pub device_errors: Vec<String>,
}

/// A pool's last scan, as its `scan:` line gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// `none requested`: never scrubbed.
    Never,
    /// A scrub is running now, since this time (seconds since the epoch).
    ScrubRunning {
        /// When it started.
        since: i64,
    },
    /// The last scrub ended at this time (seconds since the epoch) and found this many errors.
    Scrubbed {
        /// When it ended.
        at: i64,
        /// The errors it found (`with N errors`).
        errors: u64,
    },
    /// Something else: a resilver, a canceled scrub; the line as it is.
    Other(String),
}

/// The argv that prints `pool`'s status with times in UTC, on `host`.
pub fn status_command(host: Host, pool: &str) -> Command {
    Command::argv(host, ["env", "TZ=UTC", "zpool", "status", pool])
}

/// Reads `zpool status` of one pool.
pub fn read_status(text: &str) -> Result<PoolStatus, PluginError> {
    let field =
        |label: &str| text.lines().find_map(|line| line.trim_start().strip_prefix(label)).map(str::trim);
    let state = field("state:").ok_or_else(|| PluginError::new("no `state:` line in zpool status"))?;
    if state.is_empty() || !state.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(
            format!("a pool state that is no word of zpool's: `{}`", ari_core::kinds::shown(state)).into()
        );
    }
    let scan = match field("scan:") {
        None | Some("none requested") => Scan::Never,
        Some(line) if line.starts_with("scrub in progress since ") => {
            Scan::ScrubRunning { since: utc_time(&line["scrub in progress since ".len()..])? }
        }
        Some(line) if line.starts_with("scrub repaired") => {
            let errors = line
                .split_once(" with ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| {
                    format!("a scrub line without its errors: `{}`", ari_core::kinds::shown(line))
                })?;
            let (_, when) = line.split_once(" on ").ok_or_else(|| {
                format!("a scrub line without its time: `{}`", ari_core::kinds::shown(line))
            })?;
            Scan::Scrubbed { at: utc_time(when)?, errors }
        }
        Some(line) => Scan::Other(line.to_string()),
    };
    let no_known_errors = field("errors:").is_some_and(|line| line == "No known data errors");
    Ok(PoolStatus { state: state.to_string(), scan, no_known_errors, device_errors: device_errors(text) })
}

/// The devices of the `config:` table (`NAME STATE READ WRITE CKSUM`, after its header) whose
/// counts are not all 0 (`1.2K` and the like count as not 0).
fn device_errors(text: &str) -> Vec<String> {
    let rows = text.lines().skip_while(|line| line.trim() != "config:").skip(1);
    let mut found = Vec::new();
    let mut header_seen = false;
    for line in rows {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() == Some(&"errors:") {
            break;
        }
        if words.starts_with(&["NAME", "STATE", "READ", "WRITE", "CKSUM"]) {
            header_seen = true;
            continue;
        }
        if let (true, [name, _state, read, write, cksum, ..]) = (header_seen, &words[..]) {
            if [read, write, cksum].iter().any(|count| **count != "0") {
                found.push(format!("{name} {read} {write} {cksum}"));
            }
        }
    }
    found
}

/// A time as `zpool status` prints it under `TZ=UTC` (`Sun Dec  6 00:24:01 2026`).
fn utc_time(text: &str) -> Result<i64, PluginError> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let normal = words.join(" ");
    jiff::civil::DateTime::strptime("%a %b %d %H:%M:%S %Y", &normal)
        .ok()
        .and_then(|time| time.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|time| time.timestamp().as_second())
        .ok_or_else(|| format!("a scrub time that is no time: `{}`", ari_core::kinds::shown(text)).into())
}

/// Judges a pool for `ari verify --full`: ONLINE, no known data errors, a last scrub that found
/// no errors and, when `max_scrub_age` (seconds) is set, ended within it, at `now`. The line for
/// the report, or what is wrong.
pub fn judge(status: &PoolStatus, max_scrub_age: Option<u64>, now: i64) -> Result<String, String> {
    if status.state != "ONLINE" {
        return Err(format!("the pool is {}, not ONLINE", status.state));
    }
    if !status.no_known_errors {
        return Err("the pool reports data errors (`zpool status -v` names the files)".into());
    }
    if !status.device_errors.is_empty() {
        return Err(format!(
            "devices report errors (NAME READ WRITE CKSUM): {}",
            status.device_errors.join(", ")
        ));
    }
    let age = |at: i64| u64::try_from(now.saturating_sub(at)).unwrap_or(0);
    let days = |seconds: u64| format!("{:.1} days", seconds as f64 / 86_400.0);
    match (&status.scan, max_scrub_age) {
        (Scan::Scrubbed { errors, .. }, _) if *errors > 0 => {
            Err(format!("its last scrub found {errors} errors"))
        }
        (Scan::Scrubbed { at, .. }, Some(max)) if age(*at) > max => Err(format!(
            "its last scrub ended {} ago, longer than verify_max_scrub_age ({})",
            days(age(*at)),
            days(max)
        )),
        (Scan::Scrubbed { at, .. }, _) => {
            Ok(format!("ONLINE, last scrubbed {} ago without errors", days(age(*at))))
        }
        // A scrub that has run longer than the limit is no recent scrub.
        (Scan::ScrubRunning { since }, Some(max)) if age(*since) > max => Err(format!(
            "its scrub has been running for {}, longer than verify_max_scrub_age ({})",
            days(age(*since)),
            days(max)
        )),
        (Scan::ScrubRunning { .. }, _) => Ok("ONLINE, a scrub is running".into()),
        (Scan::Never, Some(_)) => Err("it was never scrubbed, and verify_max_scrub_age is set".into()),
        (Scan::Other(line), Some(_)) => Err(format!(
            "its last scan is no finished scrub (`{}`), and verify_max_scrub_age is set",
            ari_core::kinds::shown(line)
        )),
        (Scan::Never, None) => Ok("ONLINE, never scrubbed".into()),
        (Scan::Other(line), None) => Ok(format!("ONLINE, last scan: {}", ari_core::kinds::shown(line))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEALTHY: &str = "  pool: tank
 state: ONLINE
  scan: scrub repaired 0B in 00:00:01 with 0 errors on Sun Dec  6 00:24:01 2026
config:

\tNAME        STATE     READ WRITE CKSUM
\ttank        ONLINE       0     0     0
\t  vdc       ONLINE       0     0     0

errors: No known data errors
";

    #[test]
    fn a_healthy_pool_reads_as_it_is() {
        let status = read_status(HEALTHY).unwrap();
        let at = 1_796_516_641; // 2026-12-06 00:24:01 UTC
        assert_eq!(
            status,
            PoolStatus {
                state: "ONLINE".into(),
                scan: Scan::Scrubbed { at, errors: 0 },
                no_known_errors: true,
                device_errors: Vec::new()
            }
        );
        assert_eq!(
            judge(&status, Some(7 * 86_400), at + 86_400).unwrap(),
            "ONLINE, last scrubbed 1.0 days ago without errors"
        );
        let too_old = judge(&status, Some(86_400), at + 3 * 86_400).unwrap_err();
        assert!(
            too_old.contains("ended 3.0 days ago, longer than verify_max_scrub_age (1.0 days)"),
            "{too_old}"
        );
    }

    #[test]
    fn degraded_pools_errors_and_missing_scrubs_fail() {
        let degraded = read_status(&HEALTHY.replace(" state: ONLINE", " state: DEGRADED")).unwrap();
        assert_eq!(judge(&degraded, None, 0).unwrap_err(), "the pool is DEGRADED, not ONLINE");
        let errors =
            read_status(&HEALTHY.replace("No known data errors", "2 data errors, use '-v' for a list"))
                .unwrap();
        assert!(judge(&errors, None, 0).unwrap_err().contains("data errors"));
        let found = read_status(&HEALTHY.replace("with 0 errors", "with 3 errors")).unwrap();
        assert_eq!(judge(&found, None, 0).unwrap_err(), "its last scrub found 3 errors");
        let never = read_status(&HEALTHY.replace(
            "scrub repaired 0B in 00:00:01 with 0 errors on Sun Dec  6 00:24:01 2026",
            "none requested",
        ))
        .unwrap();
        assert_eq!(never.scan, Scan::Never);
        assert!(judge(&never, Some(1), 0).is_err() && judge(&never, None, 0).is_ok());
        let running = read_status(
            &HEALTHY.replace("scrub repaired 0B in 00:00:01 with 0 errors on", "scrub in progress since"),
        )
        .unwrap();
        assert_eq!(running.scan, Scan::ScrubRunning { since: 1_796_516_641 });
        let late = judge(&running, Some(35 * 86_400), 1_796_516_641 + 200 * 86_400).unwrap_err();
        assert!(late.contains("running for 200.0 days"), "{late}");
        assert!(judge(&running, Some(35 * 86_400), 1_796_516_641 + 86_400).is_ok());
        let cksum =
            read_status(&HEALTHY.replace(
                "\t  vdc       ONLINE       0     0     0",
                "\t  vdc       ONLINE       0     0   847",
            ))
            .unwrap();
        assert_eq!(cksum.device_errors, ["vdc 0 0 847"]);
        assert!(judge(&cksum, None, 0).unwrap_err().contains("vdc 0 0 847"));
        let resilver = read_status(&HEALTHY.replace("scrub repaired", "resilvered")).unwrap();
        assert!(matches!(resilver.scan, Scan::Other(_)) && judge(&resilver, Some(1), 0).is_err());
    }

    #[test]
    fn what_is_no_pool_status_is_refused() {
        assert!(read_status("").is_err());
        assert!(read_status(" state: on line\n").is_err());
        assert!(read_status(&HEALTHY.replace("Sun Dec  6 00:24:01 2026", "yesterday")).is_err());
    }
}
