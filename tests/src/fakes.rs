//! Fake `lvcreate`, `lvremove`, `lvs`, `mount`, `umount`, `mountpoint`, `findmnt` and `zfs` for the
//! integration tests, whose machine has neither device-mapper nor ZFS: a [`Fakes`] value
//! owns a temporary directory with one wrapper script per tool in `bin/`, the fakes' shared
//! state (`state.json`), the rules that make chosen calls fail or hang (`faults.json`) and a
//! log of every call (`calls.jsonl`).
//!
//! The scripts run the `ari-fake` binary of this crate (`src/bin/ari-fake/`) with the
//! state directory written into them, not passed through the environment, so that the
//! same fakes work when ari runs them locally through `PATH` and on the far side of the
//! harness's sshd (see [`crate::SshdBuilder::path_prefix`]), which passes no environment.
//!
//! This module also holds the file formats and the locking rule that the binary uses, so
//! that the two sides cannot disagree about them.
//!
//! # Replication: `zfs send`, `zfs recv`, holds
//!
//! Sender and receiver datasets live in the same state. Each snapshot has a GUID (random
//! looking, never 0, kept by a receive) and a `createtxg` (from a counter per pool, the
//! part of the name before the first `/`), and user holds by tag.
//!
//! A stream ([`stream`]) is text and bytes: a header line, `ARI-FAKE-ZFS-STREAM ` and a
//! [`stream::StreamHeader`] as JSON (the source dataset, the raw flag, the incremental
//! source's GUID, each snapshot's name after `@`, GUID and creation time, the payload size
//! per snapshot, and for a resumed stream how much of the first snapshot's payload the
//! receiver already has); then, per snapshot, its payload: [`State::send_payload_bytes`]
//! bytes of `.`, less what a resumed stream skips; then the line `END`. The sender writes
//! it in chunks, flushing each, so that a rate limiter between the two sides paces it.
//!
//! The receiver commits each snapshot as soon as its payload is in (the last one once
//! `END` is in too), as OpenZFS commits each snapshot of a `-I` stream on its own. With
//! `-s`, the snapshot being received is named by a resume token in
//! [`State::resume_tokens`], set before the first payload byte is read, so that a receive
//! killed by a signal leaves it. A token ([`stream::ResumeToken`]) is
//! `1-CHECKSUM-LENGTH-PAYLOAD` in lowercase hex like OpenZFS's: CHECKSUM is FNV-1a of the
//! payload bytes, LENGTH their count, PAYLOAD the hex of JSON naming `fromguid`,
//! `object`, `offset`, `bytes`, `toguid`, `toname` and `rawok`.
//!
//! Neither side holds the state directory's lock while it writes to or reads from a pipe:
//! both run at once in one pipeline, and the lock would deadlock them. A streaming call is
//! recorded in `calls.jsonl` as it starts, with exit -1, and its line is rewritten with
//! the real exit status when it ends; one killed on the way keeps -1.

use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tempfile::TempDir;

pub mod stream;

/// The tools that [`Fakes::new`] plants in `bin/`.
pub const TOOLS: &[&str] =
    &["lvcreate", "lvremove", "lvs", "mount", "umount", "mountpoint", "findmnt", "zfs", "zpool"];

/// The fakes' whole state, `state.json`. Maps are ordered so that the file, and the panic
/// messages that show it, read the same from one run to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// A fake clock, in epoch seconds, for the creation time of ZFS snapshots; `None`
    /// means the real clock.
    #[serde(default)]
    pub now: Option<i64>,
    /// Origin logical volumes, by `vg/lv`.
    #[serde(default)]
    pub volumes: BTreeMap<String, Volume>,
    /// Snapshot logical volumes, by `vg/lv`.
    #[serde(default)]
    pub snapshots: BTreeMap<String, Snapshot>,
    /// Mounted directories (absolute, without trailing slash) and what is mounted there.
    #[serde(default)]
    pub mounts: BTreeMap<String, Mount>,
    /// ZFS datasets that exist.
    #[serde(default)]
    pub datasets: BTreeSet<String>,
    /// ZFS snapshots, in the order they were made.
    #[serde(default)]
    pub zfs_snapshots: Vec<ZfsSnapshot>,
    /// The mount points of datasets that have one, by dataset: a snapshot of such a dataset
    /// copies what the directory holds to `MOUNTPOINT/.zfs/snapshot/NAME`, as ZFS shows it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mountpoints: BTreeMap<String, String>,
    /// What `zfs get available,used` shows of a dataset, by dataset; one not here shows
    /// [`DatasetSpace::default`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub space: BTreeMap<String, DatasetSpace>,
    /// What `zpool status` shows of a pool (the first part of a dataset's name), by pool; one
    /// not here is ONLINE and never scrubbed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pools: BTreeMap<String, PoolHealth>,
    /// The last `createtxg` given to a snapshot, by pool.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub txgs: BTreeMap<String, u64>,
    /// The payload bytes per snapshot of a `zfs send` stream: 0 makes a stream of a header
    /// and a trailer; more makes one large enough to be paced or cut.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub send_payload_bytes: u64,
    /// Properties that `zfs recv -o` set (`readonly`, `canmount`), and `received_raw=yes`
    /// for a dataset received from a raw stream, by dataset.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dataset_properties: BTreeMap<String, BTreeMap<String, String>>,
    /// The `receive_resume_token` of datasets with a partial `zfs recv -s`, by dataset.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resume_tokens: BTreeMap<String, String>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl State {
    /// A new snapshot `name` made at `creation`, with the next `createtxg` of its pool and a
    /// GUID that no snapshot has yet; the caller adds it to [`State::zfs_snapshots`].
    pub fn new_zfs_snapshot(&mut self, name: &str, creation: i64) -> ZfsSnapshot {
        let createtxg = self.next_txg(name);
        let mut seed = stream::checksum(format!("{name}\0{createtxg}").as_bytes());
        let guid = loop {
            let guid = splitmix64(&mut seed);
            if guid != 0 && self.zfs_snapshots.iter().all(|snapshot| snapshot.guid != guid) {
                break guid;
            }
        };
        ZfsSnapshot { name: name.to_owned(), creation, guid, createtxg, ..ZfsSnapshot::default() }
    }

    /// Advances the `createtxg` counter of the pool that `name` (a dataset or snapshot) is in.
    pub fn next_txg(&mut self, name: &str) -> u64 {
        let counter = self.txgs.entry(pool_of(name).to_owned()).or_default();
        *counter += 1;
        *counter
    }
}

/// The pool a dataset or snapshot is in: its name up to the first `/` or `@`.
pub fn pool_of(name: &str) -> &str {
    name.split(['/', '@']).next().unwrap_or(name)
}

/// One step of SplitMix64: well-spread 64-bit values from a counter.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A dataset's `available` and `used` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpace {
    pub available: u64,
    pub used: u64,
}

impl Default for DatasetSpace {
    /// 100 GiB free, 1 GiB used: room for any test's backup.
    fn default() -> DatasetSpace {
        DatasetSpace { available: 100 << 30, used: 1 << 30 }
    }
}

/// A pool's state, and when its last scrub ended (epoch seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolHealth {
    pub state: String,
    #[serde(default)]
    pub last_scrub: Option<i64>,
}

/// An origin logical volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    /// The directory whose tree a mount of this volume, or of a snapshot of it, shows.
    pub content: String,
}

/// A snapshot logical volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// The origin, `vg/lv`.
    pub origin: String,
    /// The size given with `-L`, as given.
    pub size: String,
}

/// A mount that the fake `mount` made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// The device as given, `/dev/vg/lv`.
    pub device: String,
    /// The `-o` argument as given; empty when there was none.
    pub options: String,
    /// The mount point's own mode and times from before the mount. A real mount shows the
    /// filesystem's root in their place and a real umount brings them back; the fake copies
    /// the root's over them, so it must keep them to put them back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covered: Option<CoveredDir>,
}

/// A mount point's attributes from before a mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoveredDir {
    pub mode: u32,
    pub accessed: SystemTime,
    pub modified: SystemTime,
}

/// A ZFS snapshot, `dataset@name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZfsSnapshot {
    pub name: String,
    /// Epoch seconds, as `zfs list -p` shows it.
    pub creation: i64,
    /// User properties (`ari:verify`), as `zfs set` gave them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub properties: std::collections::BTreeMap<String, String>,
    /// Unique to the snapshot and kept by `zfs send | zfs recv`, so that the two sides'
    /// copies have the same one; never 0 once made by [`State::new_zfs_snapshot`].
    #[serde(default)]
    pub guid: u64,
    /// The transaction group that made the snapshot, from its pool's counter: the order of
    /// a dataset's snapshots, and of `-I` streams.
    #[serde(default)]
    pub createtxg: u64,
    /// User holds (`zfs hold`): tag to the epoch seconds it was placed at. A held snapshot
    /// cannot be destroyed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holds: BTreeMap<String, i64>,
}

/// One rule of `faults.json`: which calls of a tool misbehave, and how. Every field but
/// `tool` may be left out of a hand-written file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    pub tool: String,
    /// 1-based numbers of this tool's calls, counted over the whole state directory,
    /// failed and unexpected calls included.
    #[serde(default)]
    pub calls: Vec<u32>,
    /// Matches every call of the tool, whatever its number.
    #[serde(default)]
    pub always: bool,
    /// Matches only calls whose space-joined arguments contain this.
    #[serde(default)]
    pub args_contain: Option<String>,
    #[serde(default)]
    pub exit: i32,
    #[serde(default)]
    pub stderr: String,
    /// Printed instead of the tool's normal output.
    #[serde(default)]
    pub stdout: Option<String>,
    /// Sleep until killed (or until the state directory is gone).
    #[serde(default)]
    pub hang: bool,
}

impl Fault {
    /// Whether this rule applies to call number `number` of `tool` with `args`.
    pub fn matches(&self, tool: &str, number: u32, args: &[String]) -> bool {
        self.tool == tool
            && (self.always || self.calls.contains(&number))
            && self.args_contain.as_ref().is_none_or(|needle| args.join(" ").contains(needle.as_str()))
    }
}

/// One line of `calls.jsonl`: a finished call of a fake tool, or a hanging one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Call {
    pub tool: String,
    pub args: Vec<String>,
    /// The exit status; -1 for a call that hung (it was recorded before it started to hang,
    /// since it never finishes), or for a streaming call (`zfs send`, `zfs recv`) that has
    /// not ended: it is still running, or it was killed.
    pub exit: i32,
    /// The call was not one that ari should make: an unknown tool or option, a wrong
    /// number of arguments, a refused dangerous request, or an error of the fake itself.
    pub unexpected: bool,
    /// A fault rule made this call hang.
    #[serde(default)]
    pub hung: bool,
    /// When the call started, in epoch milliseconds.
    #[serde(default)]
    pub time_ms: u64,
}

impl Call {
    /// The call as one line for a failure message.
    pub fn describe(&self) -> String {
        let outcome = match (self.hung, self.exit) {
            (true, _) => "hung".to_owned(),
            (false, -1) => "running or killed".to_owned(),
            (false, exit) => format!("exit {exit}"),
        };
        let unexpected = if self.unexpected { " UNEXPECTED" } else { "" };
        format!("{} {} -> {outcome}{unexpected}", self.tool, self.args.join(" "))
    }
}

// The files of a state directory. The binary and the test side both go through these
// functions, under `lock`, so that no call sees another's half-written state.

const STATE_FILE: &str = "state.json";
const FAULTS_FILE: &str = "faults.json";
const CALLS_FILE: &str = "calls.jsonl";
const LOCK_FILE: &str = "lock";

/// Takes the exclusive lock of a state directory, held until the file is dropped. Every
/// reader and writer takes it: fake calls run concurrently when ari runs jobs in parallel.
pub fn lock(dir: &Path) -> io::Result<File> {
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK_FILE))?;
    // std's File::lock (Rust 1.89, the workspace's rust-version) saves unsafe flock(2) calls.
    file.lock()?;
    Ok(file)
}

fn invalid_data(path: &Path, err: serde_json::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{}: {err}", path.display()))
}

/// Reads `state.json`; call it under [`lock`].
pub fn read_state(dir: &Path) -> io::Result<State> {
    let path = dir.join(STATE_FILE);
    serde_json::from_str(&fs::read_to_string(&path)?).map_err(|err| invalid_data(&path, err))
}

/// Writes `state.json` whole, through a rename so that a crash leaves the old or the new
/// file and never half of one; call it under [`lock`].
pub fn write_state(dir: &Path, state: &State) -> io::Result<()> {
    write_json(dir, STATE_FILE, state)
}

/// Reads `faults.json`; call it under [`lock`].
pub fn read_faults(dir: &Path) -> io::Result<Vec<Fault>> {
    let path = dir.join(FAULTS_FILE);
    serde_json::from_str(&fs::read_to_string(&path)?).map_err(|err| invalid_data(&path, err))
}

/// Writes `faults.json` whole; call it under [`lock`].
pub fn write_faults(dir: &Path, faults: &[Fault]) -> io::Result<()> {
    write_json(dir, FAULTS_FILE, &faults)
}

fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    text.push('\n');
    let temporary = dir.join(format!("{name}.tmp"));
    fs::write(&temporary, text)?;
    fs::rename(&temporary, dir.join(name))
}

/// Reads `calls.jsonl`, oldest call first; call it under [`lock`].
pub fn read_calls(dir: &Path) -> io::Result<Vec<Call>> {
    let path = dir.join(CALLS_FILE);
    fs::read_to_string(&path)?
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).map_err(|err| invalid_data(&path, err)))
        .collect()
}

/// Appends one call to `calls.jsonl`; call it under [`lock`].
pub fn append_call(dir: &Path, call: &Call) -> io::Result<()> {
    let mut line = serde_json::to_string(call).map_err(io::Error::other)?;
    line.push('\n');
    OpenOptions::new().append(true).create(true).open(dir.join(CALLS_FILE))?.write_all(line.as_bytes())
}

/// Replaces line `index` (0-based) of `calls.jsonl` with `call`: a streaming call's end;
/// call it under [`lock`].
pub fn finish_call(dir: &Path, index: usize, call: &Call) -> io::Result<()> {
    let path = dir.join(CALLS_FILE);
    let mut lines: Vec<String> = fs::read_to_string(&path)?.lines().map(str::to_owned).collect();
    let line = lines
        .get_mut(index)
        .ok_or_else(|| io::Error::other(format!("{}: no call number {}", path.display(), index + 1)))?;
    *line = serde_json::to_string(call).map_err(io::Error::other)?;
    let mut text = lines.join("\n");
    text.push('\n');
    let temporary = dir.join(format!("{CALLS_FILE}.tmp"));
    fs::write(&temporary, text)?;
    fs::rename(&temporary, path)
}

/// A set of fake tools with their state, in a temporary directory removed on drop; see the
/// module documentation.
///
/// Every method panics when the fakes' files cannot be read or written, with the path.
/// Assertions panic with the whole state and call log, so that a failing scenario
/// explains itself.
pub struct Fakes {
    dir: TempDir,
}

impl Default for Fakes {
    fn default() -> Self {
        Fakes::new()
    }
}

impl Fakes {
    /// A temporary directory with `bin/` holding the fake tools, an empty state, no fault
    /// rules and an empty call log.
    ///
    /// Panics when the `ari-fake` binary is not built, saying how to build it.
    pub fn new() -> Fakes {
        let fake = fake_bin();
        let dir =
            tempfile::Builder::new().prefix("ari-fakes-").tempdir().expect("create a temp dir for fakes");
        let fakes = Fakes { dir };
        let bin = fakes.bin_dir();
        fs::create_dir(&bin).unwrap_or_else(|err| panic!("create {}: {err}", bin.display()));
        for tool in TOOLS {
            let script = format!(
                "#!/bin/sh\n# A fake {tool} for ari's tests; see tests/src/fakes.rs.\n\
                 exec {} --state {} --tool {tool} -- \"$@\"\n",
                single_quoted(&fake),
                single_quoted(fakes.dir()),
            );
            let path = bin.join(tool);
            fs::write(&path, script).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                .unwrap_or_else(|err| panic!("chmod {}: {err}", path.display()));
        }
        {
            let _lock = fakes.lock();
            fakes.check(write_state(fakes.dir(), &State::default()));
            fakes.check(write_faults(fakes.dir(), &[]));
            fakes.check(File::create(fakes.dir().join(CALLS_FILE)).map(drop));
        }
        fakes
    }

    /// The directory holding the fake tools, to put first on `PATH`.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// The state directory: `state.json`, `faults.json`, `calls.jsonl`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The current `PATH` with [`Fakes::bin_dir`] in front, for a local command.
    pub fn path_env(&self) -> OsString {
        let rest = env::var_os("PATH").unwrap_or_default();
        env::join_paths(std::iter::once(self.bin_dir()).chain(env::split_paths(&rest)))
            .expect("the fakes' bin dir holds no `:`")
    }

    /// Adds an origin logical volume `name` (`vg/lv`), which shows the tree under
    /// `content` when it, or a snapshot of it, is mounted.
    pub fn add_volume(&self, name: &str, content: &Path) {
        assert!(
            name.split('/').count() == 2 && name.split('/').all(|part| !part.is_empty()),
            "a logical volume is named vg/lv, got {name:?}"
        );
        assert!(
            content.is_absolute(),
            "the content of {name} must be an absolute path, got {}",
            content.display()
        );
        let content = content.to_str().expect("the content path is UTF-8").to_owned();
        self.update_state(|state| {
            state.volumes.insert(name.to_owned(), Volume { content });
        });
    }

    /// Adds a ZFS dataset.
    pub fn add_dataset(&self, name: &str) {
        assert!(!name.contains('@'), "a dataset name has no `@`, got {name:?}");
        self.update_state(|state| {
            state.datasets.insert(name.to_owned());
        });
    }

    /// Adds a ZFS dataset mounted at `dir` (which must exist): its snapshots keep copies of
    /// what `dir` held, under `dir/.zfs/snapshot/NAME`.
    pub fn add_mounted_dataset(&self, name: &str, dir: &std::path::Path) {
        assert!(dir.is_dir(), "the mount point {} must exist", dir.display());
        self.add_dataset(name);
        let dir = dir.to_str().expect("the mount point is UTF-8").to_owned();
        self.update_state(|state| {
            state.mountpoints.insert(name.to_owned(), dir);
        });
    }

    /// Adds a ZFS snapshot `dataset@name` made at `creation` (epoch seconds), as if an
    /// earlier run had made it. Its dataset need not be added for this.
    pub fn add_zfs_snapshot(&self, name: &str, creation: i64) {
        assert!(name.contains('@'), "a ZFS snapshot is named dataset@name, got {name:?}");
        self.update_state(|state| {
            let snapshot = state.new_zfs_snapshot(name, creation);
            state.zfs_snapshots.push(snapshot);
        });
    }

    /// Like [`Fakes::add_zfs_snapshot`], with the GUID `guid`: a snapshot that an earlier
    /// replication made, or one that only looks like it.
    pub fn add_zfs_snapshot_with_guid(&self, name: &str, creation: i64, guid: u64) {
        assert!(name.contains('@'), "a ZFS snapshot is named dataset@name, got {name:?}");
        assert!(guid != 0, "a snapshot's GUID is never 0");
        self.update_state(|state| {
            let snapshot = ZfsSnapshot { guid, ..state.new_zfs_snapshot(name, creation) };
            state.zfs_snapshots.push(snapshot);
        });
    }

    /// Sets the payload bytes per snapshot of the streams that `zfs send` writes.
    pub fn set_send_payload_bytes(&self, bytes: u64) {
        self.update_state(|state| state.send_payload_bytes = bytes);
    }

    /// The snapshot `name` with its GUID, `createtxg` and holds, if it exists.
    pub fn zfs_snapshot(&self, name: &str) -> Option<ZfsSnapshot> {
        self.state().zfs_snapshots.into_iter().find(|s| s.name == name)
    }

    /// The `receive_resume_token` of `dataset`, if a partial `zfs recv -s` left one.
    pub fn resume_token(&self, dataset: &str) -> Option<String> {
        self.state().resume_tokens.get(dataset).cloned()
    }

    /// Sets what `zfs get available,used` shows of `dataset`.
    pub fn set_space(&self, dataset: &str, available: u64, used: u64) {
        self.update_state(|state| {
            state.space.insert(dataset.to_owned(), DatasetSpace { available, used });
        });
    }

    /// Sets what `zpool status` shows of `pool`: its state, and its last scrub's end.
    pub fn set_pool(&self, pool: &str, state_word: &str, last_scrub: Option<i64>) {
        self.update_state(|state| {
            state.pools.insert(pool.to_owned(), PoolHealth { state: state_word.to_owned(), last_scrub });
        });
    }

    /// Makes every call of `tool` whose space-joined arguments contain `args_contain` print
    /// `stdout` (exactly) instead of its normal output and exit 0: for malformed output.
    pub fn output_matching(&self, tool: &str, args_contain: &str, stdout: &str) {
        self.add_fault(Fault {
            always: true,
            args_contain: Some(args_contain.to_owned()),
            stdout: Some(stdout.to_owned()),
            ..self.fault(tool)
        });
    }

    /// Sets the fake clock that `zfs snapshot` stamps new snapshots with.
    pub fn set_now(&self, epoch: i64) {
        self.update_state(|state| state.now = Some(epoch));
    }

    /// Makes the calls of `tool` numbered `calls` (1-based, failed calls counted) print
    /// `stderr` and exit with `exit`, changing nothing.
    pub fn fail(&self, tool: &str, calls: &[u32], exit: i32, stderr: &str) {
        self.add_fault(Fault { calls: calls.to_vec(), exit, stderr: line(stderr), ..self.fault(tool) });
    }

    /// Makes every call of `tool` fail like [`Fakes::fail`].
    pub fn fail_always(&self, tool: &str, exit: i32, stderr: &str) {
        self.add_fault(Fault { always: true, exit, stderr: line(stderr), ..self.fault(tool) });
    }

    /// Makes every call of `tool` whose space-joined arguments contain `args_contain` fail
    /// like [`Fakes::fail`].
    pub fn fail_matching(&self, tool: &str, args_contain: &str, exit: i32, stderr: &str) {
        self.add_fault(Fault {
            always: true,
            args_contain: Some(args_contain.to_owned()),
            exit,
            stderr: line(stderr),
            ..self.fault(tool)
        });
    }

    /// Makes the calls of `tool` numbered `calls` print `stdout` (exactly, newline
    /// included or not) instead of their normal output and exit 0, changing nothing: for
    /// malformed output.
    pub fn output(&self, tool: &str, calls: &[u32], stdout: &str) {
        self.add_fault(Fault { calls: calls.to_vec(), stdout: Some(stdout.to_owned()), ..self.fault(tool) });
    }

    /// Makes the calls of `tool` numbered `calls` sleep until they are killed. A hanging
    /// call also ends by itself once this value is dropped, so that a test that fails to
    /// kill it leaves nothing running.
    pub fn hang(&self, tool: &str, calls: &[u32]) {
        self.add_fault(Fault { calls: calls.to_vec(), hang: true, ..self.fault(tool) });
    }

    fn fault(&self, tool: &str) -> Fault {
        assert!(TOOLS.contains(&tool), "there is no fake {tool:?}; the fakes are {TOOLS:?}");
        Fault { tool: tool.to_owned(), ..Fault::default() }
    }

    fn add_fault(&self, fault: Fault) {
        let _lock = self.lock();
        let mut faults = self.check(read_faults(self.dir()));
        faults.push(fault);
        self.check(write_faults(self.dir(), &faults));
    }

    /// The whole state, for assertions the other methods do not cover (mount options).
    pub fn state(&self) -> State {
        let _lock = self.lock();
        self.check(read_state(self.dir()))
    }

    /// The snapshot logical volumes that exist, `vg/lv`, sorted.
    pub fn snapshots(&self) -> Vec<String> {
        self.state().snapshots.into_keys().collect()
    }

    /// The mounted directories, sorted.
    pub fn mounts(&self) -> Vec<String> {
        self.state().mounts.into_keys().collect()
    }

    /// The ZFS snapshots that exist, with their creation times, oldest made first.
    pub fn zfs_snapshots(&self) -> Vec<(String, i64)> {
        self.state().zfs_snapshots.into_iter().map(|s| (s.name, s.creation)).collect()
    }

    /// The user property `property` of the snapshot `name`, as `zfs set` gave it.
    pub fn zfs_property(&self, name: &str, property: &str) -> Option<String> {
        self.state().zfs_snapshots.into_iter().find(|s| s.name == name)?.properties.get(property).cloned()
    }

    /// Every call of every fake so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        let _lock = self.lock();
        self.check(read_calls(self.dir()))
    }

    /// The calls of one tool, oldest first.
    pub fn calls_of(&self, tool: &str) -> Vec<Call> {
        self.calls().into_iter().filter(|call| call.tool == tool).collect()
    }

    /// Panics, listing them, if any call was unexpected.
    pub fn assert_no_unexpected_calls(&self) {
        let unexpected: Vec<String> = self
            .calls()
            .iter()
            .filter(|call| call.unexpected)
            .map(|call| format!("  {}", call.describe()))
            .collect();
        if !unexpected.is_empty() {
            panic!("the fakes got unexpected calls:\n{}\n{}", unexpected.join("\n"), self.report());
        }
    }

    /// Panics if a snapshot or a mount is left over, or if any call was unexpected: what a
    /// run that cleans up after itself leaves.
    pub fn assert_clean(&self) {
        let state = self.state();
        if !state.snapshots.is_empty() || !state.mounts.is_empty() {
            panic!(
                "the fakes are not clean: snapshots left: {:?}, mounts left: {:?}\n{}",
                state.snapshots.keys().collect::<Vec<_>>(),
                state.mounts.keys().collect::<Vec<_>>(),
                self.report()
            );
        }
        self.assert_no_unexpected_calls();
    }

    /// The state, the fault rules and the call log, for a failure message.
    pub fn report(&self) -> String {
        let _lock = self.lock();
        let read = |name: &str| {
            fs::read_to_string(self.dir().join(name))
                .unwrap_or_else(|err| format!("(cannot read {name}: {err})\n"))
        };
        let mut text = format!(
            "--- fake state ({}) ---\n{}--- fault rules ---\n{}--- fake calls ---\n",
            self.dir().join(STATE_FILE).display(),
            read(STATE_FILE),
            read(FAULTS_FILE),
        );
        match read_calls(self.dir()) {
            Ok(calls) if calls.is_empty() => text.push_str("(none)\n"),
            Ok(calls) => {
                for (index, call) in calls.iter().enumerate() {
                    let _ = writeln!(text, "{:>3}. {}", index + 1, call.describe());
                }
            }
            Err(err) => {
                let _ = writeln!(text, "(cannot read the call log: {err})");
            }
        }
        text
    }

    fn update_state(&self, change: impl FnOnce(&mut State)) {
        let _lock = self.lock();
        let mut state = self.check(read_state(self.dir()));
        change(&mut state);
        self.check(write_state(self.dir(), &state));
    }

    fn lock(&self) -> File {
        self.check(lock(self.dir()))
    }

    fn check<T>(&self, result: io::Result<T>) -> T {
        result.unwrap_or_else(|err| panic!("the fakes' files in {}: {err}", self.dir().display()))
    }
}

/// `text` ending in a newline, as a tool's message does; the helpers take it without.
fn line(text: &str) -> String {
    if text.is_empty() || text.ends_with('\n') {
        text.to_owned()
    } else {
        format!("{text}\n")
    }
}

/// A path quoted for the wrapper scripts.
fn single_quoted(path: &Path) -> String {
    let text = path.to_str().expect("the fakes' paths are UTF-8");
    // Temporary directories and cargo's target dir never hold a quote; refusing one keeps
    // the scripts simple enough to read at a glance.
    assert!(!text.contains('\''), "cannot write {text:?} into a fake's script: it holds a `'`");
    format!("'{text}'")
}

/// The `ari-fake` binary built from this crate, by [`crate::tools::built_bin`].
fn fake_bin() -> PathBuf {
    let path = crate::tools::built_bin("ari-fake");
    // The scripts run it from other directories, and through sshd.
    std::path::absolute(&path).unwrap_or(path)
}
