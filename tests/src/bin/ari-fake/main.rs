//! `ari-fake`: the fake `lvcreate`, `lvremove`, `lvs`, `mount`, `umount`, `mountpoint`,
//! `findmnt`, `zfs` and `zpool` that the integration tests put first on `PATH`, because the test machine has
//! neither device-mapper nor ZFS. Wrapper scripts written by `tests::fakes::Fakes` run it as
//! `ari-fake --state STATE_DIR --tool TOOL -- ARGS...`.
//!
//! Each call takes the state directory's lock, reads `state.json` and `faults.json`, does
//! what the real tool would (within the few forms ari uses), writes the new state, appends
//! a line to `calls.jsonl`, and exits with the real tool's status and messages. A "mount"
//! copies the volume's content directory into the mount point, and a "umount" empties it
//! again, so that rsync and rdiff-backup read real files. Any call outside the known forms
//! is unexpected: it exits 99 and is marked in the log, so that a test notices.
//!
//! `zfs send` and `zfs recv` ([`replication`]) stream through a pipe, so they do their
//! streaming without the lock, and are logged as they start and again as they end.

// The fake runs `touch -h -r` to give a copied symlink the times of the original, which std
// cannot set without unsafe code. The workspace's one-spawner rule is for production code.
#![allow(clippy::disallowed_methods)]

use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::fs::{self, File, FileTimes, Metadata};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{self, Command, ExitCode, Stdio};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tests::fakes::{self, Call, CoveredDir, Mount, Snapshot, State, ZfsSnapshot, TOOLS};

mod replication;

/// The exit status of an unexpected call: no real tool here uses it.
const UNEXPECTED: i32 = 99;

/// What `lvcreate`, `lvremove` and `lvs` exit with on failure (LVM's ECMD_FAILED).
const LVM_FAILED: i32 = 5;

/// What `mount` and `umount` exit with on failure (MNT_EX_FAIL), and `mountpoint` when
/// the directory does not exist.
const MOUNT_FAILED: i32 = 32;

/// The mount options the fake accepts: those that make sense for a read-only snapshot of
/// an ext4 or XFS volume. Anything else is what a real mount would refuse, or a typo.
const MOUNT_OPTIONS: &[&str] = &[
    "ro",
    "rw",
    "noatime",
    "nodiratime",
    "relatime",
    "nodev",
    "nosuid",
    "noexec",
    "nosymfollow",
    "nouuid",
    "norecovery",
    "noload",
];

/// How often a hanging call checks whether its test is over (its state directory gone),
/// so that a call nobody killed does not outlive the test by more than this.
const HANG_POLL: Duration = Duration::from_secs(1);

/// The only columns the fake `lvs` can show.
const LVS_COLUMNS: &str = "vg_name,lv_name,origin";

fn main() -> ExitCode {
    let started = epoch_ms();
    let argv: Vec<String> = env::args_os().skip(1).map(|arg| arg.to_string_lossy().into_owned()).collect();
    let Some((dir, tool, args)) = invocation(&argv) else {
        eprintln!("ari-fake: usage: ari-fake --state STATE_DIR --tool TOOL -- ARGS...; got {argv:?}");
        return exit_code(UNEXPECTED);
    };
    let outcome = match call(Path::new(dir), tool, args, started) {
        Ok(outcome) => outcome,
        // The call could not even be recorded: say so loudly, it is a bug of the fakes.
        Err(err) => Outcome::error(format!(
            "ari-fake: internal error in `{tool} {}` with state {dir}: {err}\n",
            args.join(" ")
        )),
    };
    print!("{}", outcome.stdout);
    eprint!("{}", outcome.stderr);
    exit_code(outcome.exit)
}

/// Splits `--state DIR --tool TOOL -- ARGS...`.
fn invocation(argv: &[String]) -> Option<(&str, &str, &[String])> {
    match argv {
        [state, dir, tool_flag, tool, separator, args @ ..]
            if state == "--state" && tool_flag == "--tool" && separator == "--" =>
        {
            Some((dir, tool, args))
        }
        _ => None,
    }
}

/// What a call prints and exits with.
#[derive(Debug)]
struct Outcome {
    exit: i32,
    stdout: String,
    stderr: String,
    unexpected: bool,
}

impl Outcome {
    fn ok(stdout: impl Into<String>) -> Outcome {
        Outcome { exit: 0, stdout: stdout.into(), stderr: String::new(), unexpected: false }
    }

    fn fail(exit: i32, stderr: impl Into<String>) -> Outcome {
        let mut stderr = stderr.into();
        stderr.push('\n');
        Outcome { exit, stdout: String::new(), stderr, unexpected: false }
    }

    fn unexpected(tool: &str, args: &[String], reason: &str) -> Outcome {
        Outcome::error(format!("ari-fake: unexpected call: {tool} {}\nari-fake: {reason}\n", args.join(" ")))
    }

    fn error(stderr: String) -> Outcome {
        Outcome { exit: UNEXPECTED, stdout: String::new(), stderr, unexpected: true }
    }
}

/// Runs one call under the state directory's lock and records it.
fn call(dir: &Path, tool: &str, args: &[String], started: u64) -> io::Result<Outcome> {
    let lock = fakes::lock(dir)?;
    let calls = fakes::read_calls(dir)?;
    let earlier = calls.iter().filter(|call| call.tool == tool).count();
    let number = u32::try_from(earlier + 1).unwrap_or(u32::MAX);
    let state = fakes::read_state(dir)?;
    let faults = fakes::read_faults(dir)?;
    let record = |outcome: &Outcome, hung: bool| Call {
        tool: tool.to_owned(),
        args: args.to_vec(),
        exit: if hung { -1 } else { outcome.exit },
        unexpected: outcome.unexpected,
        hung,
        time_ms: started,
    };

    // A malformed call is reported as such even when a fault rule covers its tool: a rule
    // that makes every `zfs` call fail must not hide that ari called `zfs` wrongly.
    let outcome = match parse(tool, args) {
        Err(reason) => Outcome::unexpected(tool, args, &reason),
        Ok(op) => match faults.iter().find(|fault| fault.matches(tool, number, args)) {
            Some(fault) if fault.hang => {
                fakes::append_call(dir, &record(&Outcome::ok(""), true))?;
                // Other calls, and the test's own reads, must go on while this one hangs.
                drop(lock);
                hang(dir);
            }
            Some(fault) => Outcome {
                exit: fault.exit,
                stdout: fault.stdout.clone().unwrap_or_default(),
                stderr: fault.stderr.clone(),
                unexpected: false,
            },
            None => match replication::streaming(&op, &state) {
                Some(Ok(streaming)) => {
                    // Logged now, so that the call counts and shows even if it is killed.
                    let running = Outcome { exit: -1, ..Outcome::ok("") };
                    fakes::append_call(dir, &record(&running, false))?;
                    drop(lock);
                    let outcome = streaming.run(dir).unwrap_or_else(|err| {
                        Outcome::error(format!(
                            "ari-fake: internal error in `{tool} {}`: {err}\n",
                            args.join(" ")
                        ))
                    });
                    let _lock = fakes::lock(dir)?;
                    fakes::finish_call(dir, calls.len(), &record(&outcome, false))?;
                    return Ok(outcome);
                }
                Some(Err(refused)) => refused,
                None => {
                    let mut new_state = state.clone();
                    match execute(&op, &mut new_state) {
                        Ok(Ok(outcome)) => {
                            if new_state != state {
                                fakes::write_state(dir, &new_state)?;
                            }
                            outcome
                        }
                        Ok(Err(reason)) => Outcome::unexpected(tool, args, &reason),
                        Err(err) => Outcome::error(format!(
                            "ari-fake: internal error in `{tool} {}`: {err}\n",
                            args.join(" ")
                        )),
                    }
                }
            },
        },
    };
    fakes::append_call(dir, &record(&outcome, false))?;
    drop(lock);
    Ok(outcome)
}

/// Sleeps until killed, or until the test that set the fault is over.
fn hang(dir: &Path) -> ! {
    loop {
        thread::sleep(HANG_POLL);
        if !dir.exists() {
            process::exit(UNEXPECTED);
        }
    }
}

/// A call in one of the forms the fakes know.
#[derive(Debug)]
enum Op {
    LvCreate {
        origin: String,
        name: String,
        size: String,
    },
    LvRemove {
        lv: String,
    },
    Lvs {
        lv: Option<String>,
    },
    Mount {
        device: String,
        dir: String,
        options: Option<String>,
    },
    Umount {
        dir: String,
    },
    /// `umount /dev/VG/LV`: wherever that device is mounted.
    UmountDevice {
        device: String,
    },
    Mountpoint {
        dir: String,
    },
    /// `findmnt -n -o TARGET --source /dev/VG/LV`.
    FindmntSource {
        device: String,
    },
    ZfsSnapshot {
        name: String,
    },
    ZfsList {
        dataset: String,
        columns: ListColumns,
    },
    /// `zfs list -H -o name DATASET`: whether the dataset exists.
    ZfsListName {
        dataset: String,
    },
    ZfsDestroy {
        name: String,
    },
    ZfsGetMountpoint {
        dataset: String,
    },
    /// `zfs get -H -p -o value guid DATASET@SNAPSHOT`: what the resume script compares.
    ZfsGetGuid {
        name: String,
    },
    /// `zfs get -H -p -o value available,used DATASET`.
    ZfsGetSpace {
        dataset: String,
    },
    /// `zpool status POOL`.
    ZpoolStatus {
        pool: String,
    },
    ZfsSet {
        property: String,
        value: String,
        name: String,
    },
    /// `zfs get -H -p -o value receive_resume_token DATASET`.
    ZfsGetResumeToken {
        dataset: String,
    },
    ZfsHold {
        tag: String,
        name: String,
    },
    ZfsRelease {
        tag: String,
        name: String,
    },
    /// `zfs holds -H SNAPSHOT`.
    ZfsHolds {
        name: String,
    },
    ZfsSend(replication::Send),
    /// `zfs send -nvt TOKEN`.
    ZfsSendDryRun {
        token: String,
    },
    ZfsRecv(replication::Receive),
    /// `zfs recv -A DATASET`.
    ZfsRecvAbort {
        dataset: String,
    },
}

/// The column sets of `zfs list -H -p -t snapshot -o COLUMNS -d 1 DATASET` that the fake
/// shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListColumns {
    /// `name,creation`
    Creation,
    /// `name,creation,used`
    CreationUsed,
    /// `name,creation,userrefs`: what expiry judges.
    CreationHolds,
    /// `name,guid,createtxg,creation,userrefs`: what replication compares.
    Replication,
}

/// Recognizes a call, or says why it is unexpected.
fn parse(tool: &str, args: &[String]) -> Result<Op, String> {
    match tool {
        "lvcreate" => {
            let mut options = Options::parse(args, &["-s"], &["-L", "-n"])?;
            options.flag("-s")?;
            let size = options.value("-L")?;
            let name = options.value("-n")?;
            let [origin] = options.positionals()?;
            split_lv(&origin)?;
            if name.is_empty() || name.contains('/') {
                return Err(format!("-n takes a bare LV name, got {name:?}"));
            }
            Ok(Op::LvCreate { origin, name, size })
        }
        "lvremove" => {
            let options = Options::parse(args, &["-f"], &[])?;
            // Without -f, a real lvremove asks on the terminal.
            options.flag("-f")?;
            let [lv] = options.positionals()?;
            split_lv(&lv)?;
            Ok(Op::LvRemove { lv })
        }
        "lvs" => {
            let mut options = Options::parse(args, &["--noheadings"], &["-o"])?;
            options.flag("--noheadings")?;
            let columns = options.value("-o")?;
            if columns != LVS_COLUMNS {
                return Err(format!("the fake lvs shows only -o {LVS_COLUMNS}"));
            }
            let lv = match options.positionals.as_slice() {
                [] => None,
                [lv] => {
                    split_lv(lv)?;
                    Some(lv.clone())
                }
                _ => return Err("lvs takes at most one vg/lv".to_owned()),
            };
            Ok(Op::Lvs { lv })
        }
        "mount" => {
            let mut options = Options::parse(args, &[], &["-o"])?;
            let mount_options = options.values.remove("-o");
            let [device, dir] = options.positionals()?;
            Ok(Op::Mount { device, dir: normalize(&dir)?, options: mount_options })
        }
        "umount" => {
            let options = Options::parse(args, &[], &[])?;
            let [target] = options.positionals()?;
            match target.strip_prefix("/dev/") {
                Some(lv) => {
                    split_lv(lv)?;
                    Ok(Op::UmountDevice { device: target })
                }
                None => Ok(Op::Umount { dir: normalize(&target)? }),
            }
        }
        "findmnt" => {
            let mut options = Options::parse(args, &["-n"], &["-o", "--source"])?;
            options.flag("-n")?;
            let columns = options.value("-o")?;
            if columns != "TARGET" {
                return Err(format!("the fake findmnt shows only -o TARGET, got {columns:?}"));
            }
            let device = options.value("--source")?;
            let [] = options.positionals()?;
            Ok(Op::FindmntSource { device })
        }
        "mountpoint" => {
            let options = Options::parse(args, &["-q"], &[])?;
            options.flag("-q")?;
            let [dir] = options.positionals()?;
            Ok(Op::Mountpoint { dir: normalize(&dir)? })
        }
        "zfs" => parse_zfs(args),
        "zpool" => {
            let Some(("status", args)) = args.split_first().map(|(first, rest)| (first.as_str(), rest))
            else {
                return Err("the fake zpool knows only `zpool status POOL`".to_owned());
            };
            let options = Options::parse(args, &[], &[])?;
            let [pool] = options.positionals()?;
            if pool.contains('/') || pool.contains('@') {
                return Err(format!("zpool status takes a pool, got {pool:?}"));
            }
            // ari asks for the times in UTC, which the fake's text always is.
            if std::env::var("TZ").as_deref() != Ok("UTC") {
                return Err("zpool status without TZ=UTC: its times would be local".to_owned());
            }
            Ok(Op::ZpoolStatus { pool })
        }
        _ => Err(format!("there is no fake {tool:?}; the fakes are {TOOLS:?}")),
    }
}

fn parse_zfs(args: &[String]) -> Result<Op, String> {
    let Some((subcommand, args)) = args.split_first() else {
        return Err("zfs needs a subcommand".to_owned());
    };
    match subcommand.as_str() {
        "snapshot" => {
            let options = Options::parse(args, &[], &[])?;
            let [name] = options.positionals()?;
            if name.matches('@').count() != 1 {
                return Err(format!("zfs snapshot takes one dataset@name, got {name:?}"));
            }
            Ok(Op::ZfsSnapshot { name })
        }
        "list" => {
            let mut options = Options::parse(args, &["-H", "-p"], &["-t", "-o", "-d"])?;
            options.flag("-H")?;
            if options.values.get("-o").is_some_and(|columns| columns == "name")
                && !options.flags.contains("-p")
                && !options.values.contains_key("-t")
                && !options.values.contains_key("-d")
            {
                let [dataset] = options.positionals()?;
                if dataset.contains('@') {
                    return Err(format!("zfs list -o name takes a dataset here, got {dataset:?}"));
                }
                return Ok(Op::ZfsListName { dataset });
            }
            options.flag("-p")?;
            let columns = options.value("-o")?;
            let columns = match columns.as_str() {
                "name,creation" => ListColumns::Creation,
                "name,creation,used" => ListColumns::CreationUsed,
                "name,creation,userrefs" => ListColumns::CreationHolds,
                "name,guid,createtxg,creation,userrefs" => ListColumns::Replication,
                other => {
                    return Err(format!(
                        "the fake zfs list takes -o name,creation[,used|,userrefs] or \
                         name,guid,createtxg,creation,userrefs, got {other:?}"
                    ))
                }
            };
            for (option, wanted) in [("-t", "snapshot"), ("-d", "1")] {
                let value = options.value(option)?;
                if value != wanted {
                    return Err(format!("the fake zfs list takes only {option} {wanted}, got {value:?}"));
                }
            }
            let [dataset] = options.positionals()?;
            if dataset.contains('@') {
                return Err(format!("zfs list takes a dataset here, got {dataset:?}"));
            }
            Ok(Op::ZfsList { dataset, columns })
        }
        "set" => {
            let options = Options::parse(args, &[], &[])?;
            let [assignment, name] = options.positionals()?;
            let (property, value) = assignment
                .split_once('=')
                .filter(|(property, _)| property.contains(':'))
                .ok_or_else(|| {
                    format!("the fake zfs set takes one user property PROP:NAME=VALUE, got {assignment:?}")
                })?;
            if !name.contains('@') {
                return Err(format!("the fake zfs set marks snapshots only, got {name:?}"));
            }
            Ok(Op::ZfsSet { property: property.to_string(), value: value.to_string(), name })
        }
        "destroy" => {
            let options = Options::parse(args, &[], &[])?;
            let [name] = options.positionals()?;
            // Destroying a dataset would destroy the backups themselves: never ari's job.
            if !name.contains('@') {
                return Err(format!("refusing to destroy {name:?}, which is a dataset, not a snapshot"));
            }
            Ok(Op::ZfsDestroy { name })
        }
        "get" => {
            let mut options = Options::parse(args, &["-H", "-p"], &["-o"])?;
            options.flag("-H")?;
            options.flag("-p")?;
            let columns = options.value("-o")?;
            if columns != "value" {
                return Err(format!("the fake zfs get takes only -o value, got {columns:?}"));
            }
            let [property, dataset] = options.positionals()?;
            if property == "available,used" && !dataset.contains('@') {
                return Ok(Op::ZfsGetSpace { dataset });
            }
            if property == "receive_resume_token" && !dataset.contains('@') {
                return Ok(Op::ZfsGetResumeToken { dataset });
            }
            if property == "guid" && dataset.contains('@') {
                return Ok(Op::ZfsGetGuid { name: dataset });
            }
            if property != "mountpoint" || dataset.contains('@') {
                return Err(format!(
                    "the fake zfs get shows only a dataset's mountpoint, got {property:?} {dataset:?}"
                ));
            }
            Ok(Op::ZfsGetMountpoint { dataset })
        }
        "hold" => {
            let (tag, name) = replication::parse_hold(args)?;
            Ok(Op::ZfsHold { tag, name })
        }
        "release" => {
            let (tag, name) = replication::parse_hold(args)?;
            Ok(Op::ZfsRelease { tag, name })
        }
        "holds" => Ok(Op::ZfsHolds { name: replication::parse_holds(args)? }),
        "send" => replication::parse_send(args),
        "recv" => replication::parse_recv(args),
        other => Err(format!("the fake zfs has no subcommand {other:?}")),
    }
}

/// A call's options and positional arguments, each option known and given at most once.
#[derive(Debug, Default)]
struct Options {
    flags: BTreeSet<String>,
    values: BTreeMap<String, String>,
    positionals: Vec<String>,
}

impl Options {
    fn parse(args: &[String], flags: &[&str], valued: &[&str]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if arg.starts_with('-') && arg.len() > 1 {
                if flags.contains(&arg.as_str()) {
                    if !options.flags.insert(arg.clone()) {
                        return Err(format!("{arg} is given twice"));
                    }
                } else if valued.contains(&arg.as_str()) {
                    let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
                    if options.values.insert(arg.clone(), value.clone()).is_some() {
                        return Err(format!("{arg} is given twice"));
                    }
                } else {
                    return Err(format!("unknown option {arg}"));
                }
            } else {
                options.positionals.push(arg.clone());
            }
        }
        Ok(options)
    }

    fn flag(&self, flag: &str) -> Result<(), String> {
        if self.flags.contains(flag) {
            Ok(())
        } else {
            Err(format!("{flag} is missing"))
        }
    }

    fn value(&mut self, option: &str) -> Result<String, String> {
        self.values.remove(option).ok_or_else(|| format!("{option} is missing"))
    }

    fn positionals<const N: usize>(self) -> Result<[String; N], String> {
        let count = self.positionals.len();
        self.positionals
            .try_into()
            .map_err(|_| format!("expected {N} argument(s) besides the options, got {count}"))
    }
}

/// `vg/lv` into its two parts.
fn split_lv(name: &str) -> Result<(&str, &str), String> {
    match name.split_once('/') {
        Some((vg, lv)) if !vg.is_empty() && !lv.is_empty() && !lv.contains('/') => Ok((vg, lv)),
        _ => Err(format!("expected a logical volume as vg/lv, got {name:?}")),
    }
}

/// A directory as the state keys it: absolute, without trailing slashes.
fn normalize(dir: &str) -> Result<String, String> {
    let absolute = std::path::absolute(dir).map_err(|err| format!("bad directory {dir:?}: {err}"))?;
    let text = absolute.to_str().ok_or_else(|| format!("directory {dir:?} is not UTF-8"))?;
    let trimmed = text.trim_end_matches('/');
    Ok(if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() })
}

/// Does what the real tool would to `state` (and, for mounts, to the file system).
///
/// `Ok(Err(reason))` is an unexpected call that only the state reveals; `Err` is an I/O
/// error of the fake itself.
fn execute(op: &Op, state: &mut State) -> io::Result<Result<Outcome, String>> {
    Ok(Ok(match op {
        Op::LvCreate { origin, name, size } => {
            let (vg, _) = split_lv(origin).expect("checked by parse");
            if let Some(missing) = missing_lv(state, origin) {
                return Ok(Ok(missing));
            }
            if state.snapshots.contains_key(origin) {
                return Ok(Ok(Outcome::fail(LVM_FAILED, "  Snapshots of snapshots are not supported.")));
            }
            let full = format!("{vg}/{name}");
            if state.snapshots.contains_key(&full) || state.volumes.contains_key(&full) {
                return Ok(Ok(Outcome::fail(
                    LVM_FAILED,
                    format!("  Logical Volume \"{name}\" already exists in volume group \"{vg}\""),
                )));
            }
            state.snapshots.insert(full, Snapshot { origin: origin.clone(), size: size.clone() });
            Outcome::ok(format!("  Logical volume \"{name}\" created.\n"))
        }
        Op::LvRemove { lv } => {
            let (vg, name) = split_lv(lv).expect("checked by parse");
            if state.volumes.contains_key(lv) {
                // A real lvremove -f would remove it: ari must only ever remove its snapshots.
                return Ok(Err(format!(
                    "refusing to remove {lv}, which is an origin volume, not a snapshot"
                )));
            }
            if !state.snapshots.contains_key(lv) {
                return Ok(Ok(Outcome::fail(
                    LVM_FAILED,
                    format!("  Failed to find logical volume \"{lv}\""),
                )));
            }
            let device = format!("/dev/{vg}/{name}");
            if state.mounts.values().any(|mount| mount.device == device) {
                return Ok(Ok(Outcome::fail(
                    LVM_FAILED,
                    format!("  Logical volume {lv} contains a filesystem in use."),
                )));
            }
            state.snapshots.remove(lv);
            Outcome::ok(format!("  Logical volume \"{name}\" successfully removed.\n"))
        }
        Op::Lvs { lv } => {
            if let Some(lv) = lv {
                if let Some(missing) = missing_lv(state, lv) {
                    return Ok(Ok(missing));
                }
            }
            let mut rows: Vec<(&str, &str, &str)> = Vec::new();
            for name in state.volumes.keys() {
                let (vg, lv) = split_lv(name).map_err(io::Error::other)?;
                rows.push((vg, lv, ""));
            }
            for (name, snapshot) in &state.snapshots {
                let (vg, lv) = split_lv(name).map_err(io::Error::other)?;
                let (_, origin) = split_lv(&snapshot.origin).map_err(io::Error::other)?;
                rows.push((vg, lv, origin));
            }
            // lvs sorts by VG, then LV name.
            rows.sort();
            let selected = rows
                .iter()
                .filter(|(vg, name, _)| lv.as_ref().is_none_or(|lv| *lv == format!("{vg}/{name}")));
            Outcome::ok(
                selected.map(|(vg, lv, origin)| format!("  {vg} {lv} {origin}\n")).collect::<String>(),
            )
        }
        Op::Mount { device, dir, options } => return mount(state, device, dir, options.as_deref()),
        Op::Umount { dir } => return unmount(state, dir),
        Op::UmountDevice { device } => {
            let dirs: Vec<String> = state
                .mounts
                .iter()
                .filter(|(_, m)| m.device == *device)
                .map(|(dir, _)| dir.clone())
                .collect();
            match dirs.as_slice() {
                [] => Outcome::fail(MOUNT_FAILED, format!("umount: {device}: not mounted.")),
                [dir] => return unmount(state, &dir.clone()),
                // A real umount would take the last mount; ari proves there is only one.
                _ => {
                    return Ok(Err(format!(
                        "{device} is mounted at {dirs:?}: which one goes is not ari's to guess"
                    )))
                }
            }
        }
        Op::FindmntSource { device } => {
            let dirs: String = state
                .mounts
                .iter()
                .filter(|(_, m)| m.device == *device)
                .map(|(dir, _)| format!("{dir}\n"))
                .collect();
            // findmnt prints nothing and exits 1 when nothing matches.
            if dirs.is_empty() {
                Outcome { exit: 1, ..Outcome::ok("") }
            } else {
                Outcome::ok(dirs)
            }
        }
        Op::Mountpoint { dir } => {
            if state.mounts.contains_key(dir) {
                Outcome::ok("")
            } else if fs::symlink_metadata(dir).is_err() {
                // mountpoint -q still reports an error, as the real one does.
                Outcome::fail(MOUNT_FAILED, format!("mountpoint: {dir}: No such file or directory"))
            } else {
                Outcome { exit: 1, ..Outcome::ok("") }
            }
        }
        Op::ZfsSnapshot { name } => {
            let (dataset, _) = name.split_once('@').expect("checked by parse");
            if !state.datasets.contains(dataset) {
                return Ok(Ok(no_dataset(dataset)));
            }
            if state.zfs_snapshots.iter().any(|snapshot| snapshot.name == *name) {
                return Ok(Ok(Outcome::fail(
                    1,
                    format!("cannot create snapshot '{name}': dataset already exists"),
                )));
            }
            let creation = now(state);
            if let Some(mountpoint) = state.mountpoints.get(dataset) {
                // What ZFS shows of the snapshot: the dataset's files as they are now.
                let (_, snapshot) = name.split_once('@').expect("checked by parse");
                let shown = Path::new(mountpoint).join(".zfs/snapshot").join(snapshot);
                fs::create_dir_all(&shown)?;
                copy_tree_except(Path::new(mountpoint), &shown, ".zfs")?;
            }
            let snapshot = state.new_zfs_snapshot(name, creation);
            state.zfs_snapshots.push(snapshot);
            Outcome::ok("")
        }
        Op::ZfsGetGuid { name } => match state.zfs_snapshots.iter().find(|snapshot| snapshot.name == *name) {
            Some(snapshot) => Outcome::ok(format!("{}\n", snapshot.guid)),
            None => Outcome::fail(1, format!("cannot open '{name}': dataset does not exist")),
        },
        Op::ZfsGetMountpoint { dataset } => {
            if !state.datasets.contains(dataset) {
                return Ok(Ok(no_dataset(dataset)));
            }
            Outcome::ok(format!("{}\n", state.mountpoints.get(dataset).map_or("none", String::as_str)))
        }
        Op::ZfsGetSpace { dataset } => {
            if !state.datasets.contains(dataset) {
                return Ok(Ok(no_dataset(dataset)));
            }
            let space = state.space.get(dataset).copied().unwrap_or_default();
            Outcome::ok(format!("{}\n{}\n", space.available, space.used))
        }
        Op::ZpoolStatus { pool } => {
            let prefix = format!("{pool}/");
            if !state.datasets.iter().any(|dataset| dataset == pool || dataset.starts_with(&prefix)) {
                return Ok(Ok(Outcome::fail(1, format!("cannot open '{pool}': no such pool"))));
            }
            let health = state.pools.get(pool).cloned();
            let word = health.as_ref().map_or("ONLINE", |health| health.state.as_str());
            let scan = match health.as_ref().and_then(|health| health.last_scrub) {
                Some(at) => {
                    let when = jiff::Timestamp::from_second(at)
                        .map_err(io::Error::other)?
                        .to_zoned(jiff::tz::TimeZone::UTC)
                        .strftime("%a %b %e %H:%M:%S %Y")
                        .to_string();
                    format!("scrub repaired 0B in 00:00:01 with 0 errors on {when}")
                }
                None => "none requested".to_owned(),
            };
            Outcome::ok(format!(
                "  pool: {pool}\n state: {word}\n  scan: {scan}\nconfig:\n\n\tNAME        STATE     READ WRITE CKSUM\n\t{pool}        {word}       0     0     0\n\nerrors: No known data errors\n"
            ))
        }
        Op::ZfsList { dataset, columns } => {
            if !state.datasets.contains(dataset) {
                return Ok(Ok(no_dataset(dataset)));
            }
            let prefix = format!("{dataset}@");
            let mut snapshots: Vec<&ZfsSnapshot> =
                state.zfs_snapshots.iter().filter(|snapshot| snapshot.name.starts_with(&prefix)).collect();
            // Stable: snapshots made in the same second stay in the order they were made.
            match columns {
                ListColumns::Replication => snapshots.sort_by_key(|snapshot| snapshot.createtxg),
                _ => snapshots.sort_by_key(|snapshot| snapshot.creation),
            }
            Outcome::ok(
                snapshots
                    .iter()
                    // The fake holds no data: every snapshot uses nothing.
                    .map(|snapshot| match columns {
                        ListColumns::CreationUsed => format!("{}\t{}\t0\n", snapshot.name, snapshot.creation),
                        ListColumns::Creation => format!("{}\t{}\n", snapshot.name, snapshot.creation),
                        ListColumns::CreationHolds => {
                            format!("{}\t{}\t{}\n", snapshot.name, snapshot.creation, snapshot.holds.len())
                        }
                        ListColumns::Replication => format!(
                            "{}\t{}\t{}\t{}\t{}\n",
                            snapshot.name,
                            snapshot.guid,
                            snapshot.createtxg,
                            snapshot.creation,
                            snapshot.holds.len()
                        ),
                    })
                    .collect::<String>(),
            )
        }
        Op::ZfsListName { dataset } => match state.datasets.contains(dataset) {
            true => Outcome::ok(format!("{dataset}\n")),
            false => no_dataset(dataset),
        },
        Op::ZfsGetResumeToken { dataset } => {
            if !state.datasets.contains(dataset) {
                return Ok(Ok(no_dataset(dataset)));
            }
            Outcome::ok(format!("{}\n", state.resume_tokens.get(dataset).map_or("-", String::as_str)))
        }
        Op::ZfsHold { tag, name } => replication::hold(state, tag, name),
        Op::ZfsRelease { tag, name } => replication::release(state, tag, name),
        Op::ZfsHolds { name } => replication::holds(state, name)?,
        Op::ZfsSendDryRun { token } => replication::dry_run(state, token),
        Op::ZfsRecvAbort { dataset } => replication::abort(state, dataset),
        Op::ZfsSend(_) | Op::ZfsRecv(_) => {
            return Err(io::Error::other("a streaming call is run by replication::streaming"))
        }
        Op::ZfsSet { property, value, name } => {
            match state.zfs_snapshots.iter_mut().find(|snapshot| snapshot.name == *name) {
                Some(snapshot) => {
                    snapshot.properties.insert(property.clone(), value.clone());
                    Outcome::ok("")
                }
                None => Outcome::fail(1, format!("cannot open '{name}': dataset does not exist")),
            }
        }
        Op::ZfsDestroy { name } => {
            if state.zfs_snapshots.iter().any(|snapshot| snapshot.name == *name && !snapshot.holds.is_empty())
            {
                return Ok(Ok(Outcome::fail(1, format!("cannot destroy snapshot {name}: dataset is busy"))));
            }
            let before = state.zfs_snapshots.len();
            state.zfs_snapshots.retain(|snapshot| snapshot.name != *name);
            if state.zfs_snapshots.len() == before {
                return Ok(Ok(Outcome::fail(
                    1,
                    "could not find any snapshots to destroy; check snapshot names.",
                )));
            }
            let (dataset, snapshot) = name.split_once('@').expect("checked by parse");
            if let Some(mountpoint) = state.mountpoints.get(dataset) {
                let shown = Path::new(mountpoint).join(".zfs/snapshot").join(snapshot);
                if shown.exists() {
                    fs::remove_dir_all(&shown)?;
                }
            }
            Outcome::ok("")
        }
    }))
}

/// The failure of an LVM command naming `vg/lv` that does not exist, if it does not.
fn missing_lv(state: &State, name: &str) -> Option<Outcome> {
    if state.volumes.contains_key(name) || state.snapshots.contains_key(name) {
        return None;
    }
    let (vg, _) = split_lv(name).ok()?;
    let vg_exists =
        state.volumes.keys().chain(state.snapshots.keys()).any(|lv| lv.split('/').next() == Some(vg));
    Some(if vg_exists {
        Outcome::fail(LVM_FAILED, format!("  Failed to find logical volume \"{name}\""))
    } else {
        Outcome::fail(LVM_FAILED, format!("  Volume group \"{vg}\" not found"))
    })
}

/// The fake clock's time, or the real one's, in epoch seconds.
fn now(state: &State) -> i64 {
    state.now.unwrap_or_else(|| i64::try_from(epoch_ms() / 1000).unwrap_or(i64::MAX))
}

fn no_dataset(dataset: &str) -> Outcome {
    Outcome::fail(1, format!("cannot open '{dataset}': dataset does not exist"))
}

/// `umount DIR`: empties the directory the fake filled, and gives it back its own mode and
/// times.
fn unmount(state: &mut State, dir: &str) -> io::Result<Result<Outcome, String>> {
    let Some(mount) = state.mounts.remove(dir) else {
        return Ok(Ok(Outcome::fail(MOUNT_FAILED, format!("umount: {dir}: not mounted."))));
    };
    let path = Path::new(dir);
    make_writable(path)?;
    for entry in fs::read_dir(path)? {
        let entry = entry?.path();
        if fs::symlink_metadata(&entry)?.is_dir() {
            fs::remove_dir_all(&entry)?;
        } else {
            fs::remove_file(&entry)?;
        }
    }
    if let Some(covered) = mount.covered {
        File::open(path)?
            .set_times(FileTimes::new().set_accessed(covered.accessed).set_modified(covered.modified))?;
        fs::set_permissions(path, fs::Permissions::from_mode(covered.mode))?;
    }
    Ok(Ok(Outcome::ok("")))
}

/// `mount [-o OPTIONS] /dev/VG/LV DIR`: shows the origin volume's content in `dir`.
fn mount(
    state: &mut State,
    device: &str,
    dir: &str,
    options: Option<&str>,
) -> io::Result<Result<Outcome, String>> {
    let fail = |message: String| Ok(Ok(Outcome::fail(MOUNT_FAILED, format!("mount: {dir}: {message}"))));
    let lv = device.strip_prefix("/dev/").filter(|lv| split_lv(lv).is_ok());
    let origin = match lv {
        Some(lv) if state.volumes.contains_key(lv) => lv.to_owned(),
        Some(lv) if state.snapshots.contains_key(lv) => state.snapshots[lv].origin.clone(),
        _ => return fail(format!("special device {device} does not exist.")),
    };
    let path = Path::new(dir);
    if !path.is_dir() {
        return fail("mount point does not exist.".to_owned());
    }
    if state.mounts.contains_key(dir) {
        return fail(format!("{device} already mounted on {dir}."));
    }
    if options.is_some_and(|options| options.split(',').any(|option| !MOUNT_OPTIONS.contains(&option))) {
        return fail(format!(
            "wrong fs type, bad option, bad superblock on {device}, missing codepage or helper program, \
             or other error."
        ));
    }
    // A real mount hides what the directory held and shows it again after umount; the fake
    // copies into the directory and empties it at umount, which would lose those files.
    if fs::read_dir(path)?.next().is_some() {
        return Ok(Err(format!("{dir} is not empty; the fake cannot mount over files")));
    }
    let Some(volume) = state.volumes.get(&origin) else {
        return Err(io::Error::other(format!("the snapshot's origin {origin} is not a volume")));
    };
    let content = Path::new(&volume.content);
    let root = fs::metadata(content).map_err(|err| {
        io::Error::new(err.kind(), format!("the content of {origin}, {}: {err}", content.display()))
    })?;
    let here = fs::metadata(path)?;
    let covered = CoveredDir {
        mode: here.permissions().mode(),
        accessed: here.accessed()?,
        modified: here.modified()?,
    };
    copy_tree(content, path)?;
    // The mount point shows the filesystem's root, whose times rsync copies too.
    copy_attributes(path, &root)?;
    state.mounts.insert(
        dir.to_owned(),
        Mount {
            device: device.to_owned(),
            options: options.unwrap_or_default().to_owned(),
            covered: Some(covered),
        },
    );
    Ok(Ok(Outcome::ok("")))
}

/// Copies the tree under `from` into the existing, empty `to`, keeping modes and times so
/// that rsync and rdiff-backup see the same files at every mount.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    copy_tree_except(from, to, "")
}

/// [`copy_tree`] without the top-level entry `skip` (a dataset's `.zfs`).
fn copy_tree_except(from: &Path, to: &Path, skip: &str) -> io::Result<()> {
    let mut entries = fs::read_dir(from)?.collect::<io::Result<Vec<_>>>()?;
    entries.retain(|entry| entry.file_name() != skip);
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let source = entry.path();
        let target = to.join(entry.file_name());
        let meta = fs::symlink_metadata(&source)?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&source)?, &target)?;
            copy_symlink_times(&source, &target)?;
        } else if kind.is_dir() {
            fs::create_dir(&target)?;
            copy_tree(&source, &target)?;
            copy_attributes(&target, &meta)?;
        } else if kind.is_file() {
            let mut output = File::create(&target)?;
            io::copy(&mut File::open(&source)?, &mut output)?;
            output.set_times(times(&meta)?)?;
            output.set_permissions(meta.permissions())?;
        } else {
            return Err(io::Error::other(format!(
                "{} is not a file, a directory or a symlink; the fake cannot copy it",
                source.display()
            )));
        }
    }
    Ok(())
}

/// Gives the directory `dir` the times and mode in `meta`. Times first: setting them opens
/// the directory, which the copied mode may not allow.
fn copy_attributes(dir: &Path, meta: &Metadata) -> io::Result<()> {
    File::open(dir)?.set_times(times(meta)?)?;
    fs::set_permissions(dir, meta.permissions())
}

fn times(meta: &Metadata) -> io::Result<FileTimes> {
    Ok(FileTimes::new().set_accessed(meta.accessed()?).set_modified(meta.modified()?))
}

/// `touch -h -r`: std sets times through a file handle, which a symlink cannot give.
fn copy_symlink_times(source: &Path, target: &Path) -> io::Result<()> {
    let output =
        Command::new("touch").arg("-h").arg("-r").arg(source).arg(target).stdin(Stdio::null()).output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "touch -h -r {} {}: {}",
            source.display(),
            target.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Gives `dir` and every directory under it owner write and search permission, so that
/// umount can empty a copy of a read-only tree.
fn make_writable(dir: &Path) -> io::Result<()> {
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o700 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o700))?;
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if fs::symlink_metadata(&path)?.is_dir() {
            make_writable(&path)?;
        }
    }
    Ok(())
}

fn epoch_ms() -> u64 {
    let elapsed = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
}

/// An exit status as the shell would see it.
fn exit_code(exit: i32) -> ExitCode {
    ExitCode::from(u8::try_from(exit.rem_euclid(256)).unwrap_or(u8::MAX))
}
