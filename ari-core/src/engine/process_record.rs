//! The identity of a process ari started, as the ledger records it, and the proof that it is
//! gone.
//!
//! A pid alone proves nothing: rdiff-backup takes any live pid as its session still running, a
//! zombie and an unrelated process that got the number again included. So the record is the
//! pid, the process's start time in clock ticks since boot (`/proc/PID/stat`, field 22) and the
//! boot's id. The process is gone when the boot differs, when the pid is absent or now belongs
//! to a process that started at another time, or when it is a zombie (it has ended; only its
//! exit status waits for a parent); and, since ari starts every command as a process group of
//! its own, only once no live process is left in that group, so that whatever the tool started
//! counts too. The kernel does not give a pid to a new process while a group of that number has
//! a member, so a pid found to belong to another process proves the whole group gone.

use std::io;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Where Linux says which boot this is.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";
/// How often a wait for a process's end looks again.
const POLL: Duration = Duration::from_millis(50);

/// A process ari started, as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRecord")]
pub struct ProcessRecord {
    /// Its pid, which is also its process group's id.
    pub pid: u32,
    /// When it started, in clock ticks since boot (`/proc/PID/stat`, field 22).
    pub start_ticks: u64,
    /// The boot it ran in (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
}

/// A record as the file spells it, checked before it becomes a [`ProcessRecord`].
#[derive(Deserialize)]
struct RawRecord {
    pid: u32,
    start_ticks: u64,
    boot_id: String,
}

impl TryFrom<RawRecord> for ProcessRecord {
    type Error = String;

    fn try_from(raw: RawRecord) -> Result<ProcessRecord, String> {
        if raw.pid <= 1 {
            return Err(format!("a process record names pid {}, which no command of ari's has", raw.pid));
        }
        if !is_boot_id(&raw.boot_id) {
            return Err(format!(
                "a process record's boot_id `{}` is not a boot id",
                crate::contract::kinds::shown(&raw.boot_id)
            ));
        }
        Ok(ProcessRecord { pid: raw.pid, start_ticks: raw.start_ticks, boot_id: raw.boot_id })
    }
}

/// Whether `text` reads as a boot id: a UUID's 36 characters of hexadecimal digits and dashes.
fn is_boot_id(text: &str) -> bool {
    text.len() == 36 && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Whether a recorded process is gone, and how ari knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// It and every process of its group have ended: why ari is sure.
    Gone(String),
    /// A process of it still runs: which (`pid 4242 (rdiff-backup)`).
    Running(String),
}

/// What ari reads of a process in `/proc/PID/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stat {
    /// Its command name, as the kernel keeps it (at most 15 bytes, any of them).
    name: String,
    /// `R`, `S`, `D`, `Z`, ...
    state: char,
    /// Its process group.
    group: u32,
    /// Field 22.
    start_ticks: u64,
}

impl Stat {
    /// Whether it has ended: a zombie (`Z`) or on its way out (`X`).
    fn ended(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// Reads `/proc/PID/stat`'s line: the name sits in parentheses and may hold anything, `)`
/// and spaces included, so the fields are counted from the last `)`.
fn parse_stat(line: &str) -> Option<Stat> {
    let open = line.find('(')?;
    let close = line.rfind(')')?;
    let name = line.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
    // Fields 3 (state), 5 (process group) and 22 (start time), counted from 1 at the pid.
    let state = fields.first()?.chars().next()?;
    let group = fields.get(2)?.parse().ok()?;
    let start_ticks = fields.get(19)?.parse().ok()?;
    Some(Stat { name, state, group, start_ticks })
}

/// The process `pid` now, or `None` when there is none.
fn stat(pid: u32) -> io::Result<Option<Stat>> {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(line) => parse_stat(&line)
            .map(Some)
            .ok_or_else(|| io::Error::other(format!("/proc/{pid}/stat does not read as a process's status"))),
        Err(err)
            if matches!(err.kind(), io::ErrorKind::NotFound) || err.raw_os_error() == Some(libc::ESRCH) =>
        {
            Ok(None)
        }
        Err(err) => Err(err),
    }
}

/// This boot's id.
fn boot_id() -> io::Result<String> {
    let id = std::fs::read_to_string(BOOT_ID)?.trim().to_string();
    if is_boot_id(&id) {
        Ok(id)
    } else {
        Err(io::Error::other(format!(
            "{BOOT_ID} holds `{}`, which is no boot id",
            crate::contract::kinds::shown(&id)
        )))
    }
}

/// `pid 4242 (rdiff-backup)`.
fn named(pid: u32, stat: &Stat) -> String {
    format!("pid {pid} ({})", crate::contract::kinds::shown(&stat.name))
}

impl ProcessRecord {
    /// The record of process `pid`, which must be running (a child of ari's, not yet reaped).
    pub fn of(pid: u32) -> io::Result<ProcessRecord> {
        let stat = stat(pid)?.ok_or_else(|| io::Error::other(format!("process {pid} is not running")))?;
        Ok(ProcessRecord { pid, start_ticks: stat.start_ticks, boot_id: boot_id()? })
    }

    /// Whether the process and its group are gone, as `/proc` shows them now.
    pub fn liveness(&self) -> io::Result<Liveness> {
        if boot_id()? != self.boot_id {
            return Ok(Liveness::Gone("the machine has rebooted since".into()));
        }
        let leader = stat(self.pid)?;
        let why = match &leader {
            Some(now) if now.start_ticks != self.start_ticks => {
                // The number was free to give again, so nothing of the group is left.
                return Ok(Liveness::Gone(format!(
                    "pid {} now belongs to another process ({}), which started later",
                    self.pid,
                    crate::contract::kinds::shown(&now.name)
                )));
            }
            Some(now) if !now.ended() => return Ok(Liveness::Running(named(self.pid, now))),
            Some(_) => format!("pid {} is a zombie: it has ended", self.pid),
            None => format!("pid {} has ended", self.pid),
        };
        if let Some(member) = self.live_member()? {
            return Ok(Liveness::Running(format!("{member}, of the group of pid {}", self.pid)));
        }
        Ok(Liveness::Gone(format!("{why}, and nothing of its process group runs")))
    }

    /// A process of the group that has not ended, named, if there is one.
    fn live_member(&self) -> io::Result<Option<String>> {
        for entry in std::fs::read_dir("/proc")? {
            let Some(pid) = entry?.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
                continue;
            };
            // A process can end between the listing and the read: it is then no member.
            if let Some(stat) = stat(pid).ok().flatten() {
                if stat.group == self.pid && !stat.ended() {
                    return Ok(Some(named(pid, &stat)));
                }
            }
        }
        Ok(None)
    }

    /// Waits up to `limit` for the process and its group to be gone (a killed run's process
    /// still ending, its children closing), looking every 50 ms; the liveness at the end. The
    /// wait ends at once when `cancelled` says so.
    pub fn wait_until_gone(&self, limit: Duration, cancelled: impl Fn() -> bool) -> io::Result<Liveness> {
        let deadline = Instant::now() + limit;
        loop {
            let liveness = self.liveness()?;
            if matches!(liveness, Liveness::Gone(_)) || Instant::now() >= deadline || cancelled() {
                return Ok(liveness);
            }
            std::thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_is_read_from_the_last_parenthesis() {
        let fields = |name: &str, state: &str| {
            format!(
                "4242 ({name}) {state} 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 98765 1000 200"
            )
        };
        let check = |line: &str, expected: Option<(&str, char, u32, u64)>| {
            let got = parse_stat(line).map(|s| (s.name, s.state, s.group, s.start_ticks));
            assert_eq!(got, expected.map(|(n, s, g, t)| (n.to_string(), s, g, t)), "{line}");
        };
        check(&fields("rdiff-backup", "S"), Some(("rdiff-backup", 'S', 4242, 98765)));
        // A name that holds `) Z 1 ` must not pass for the fields.
        check(&fields("x) Z 1 2 3", "R"), Some(("x) Z 1 2 3", 'R', 4242, 98765)));
        check(&fields("sh", "Z"), Some(("sh", 'Z', 4242, 98765)));
        check("4242 (cut) S 1 4242", None);
        check("no parenthesis", None);
    }

    #[test]
    fn a_record_in_the_ledger_must_name_a_process_and_a_boot() {
        let check = |json: &str, expected: Result<(), &str>| {
            let got = serde_json::from_str::<ProcessRecord>(json).map(drop).map_err(|e| e.to_string());
            match expected {
                Ok(()) => assert!(got.is_ok(), "{json}: {got:?}"),
                Err(fragment) => {
                    assert!(got.as_ref().is_err_and(|e| e.contains(fragment)), "{json}: {got:?}")
                }
            }
        };
        let boot = "0f8fad5b-d9cb-469f-a165-70867728950e";
        check(&format!(r#"{{"pid": 4242, "start_ticks": 9, "boot_id": "{boot}"}}"#), Ok(()));
        check(&format!(r#"{{"pid": 1, "start_ticks": 9, "boot_id": "{boot}"}}"#), Err("names pid 1"));
        check(&format!(r#"{{"pid": 0, "start_ticks": 9, "boot_id": "{boot}"}}"#), Err("names pid 0"));
        check(r#"{"pid": 4242, "start_ticks": 9, "boot_id": "x; reboot"}"#, Err("is not a boot id"));
        check(r#"{"pid": -3, "start_ticks": 9, "boot_id": "x"}"#, Err("invalid value"));
    }

    #[test]
    fn this_process_runs_and_a_record_of_other_times_or_boots_is_gone() {
        let me = ProcessRecord::of(std::process::id()).unwrap();
        assert!(matches!(me.liveness().unwrap(), Liveness::Running(_)));
        let earlier = ProcessRecord { start_ticks: me.start_ticks.wrapping_sub(1), ..me.clone() };
        assert!(
            matches!(earlier.liveness().unwrap(), Liveness::Gone(ref why) if why.contains("belongs to another process")),
            "{:?}",
            earlier.liveness()
        );
        let rebooted = ProcessRecord { boot_id: "00000000-0000-0000-0000-000000000000".into(), ..me };
        assert_eq!(rebooted.liveness().unwrap(), Liveness::Gone("the machine has rebooted since".into()));
    }
}
