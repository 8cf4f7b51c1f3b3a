//! The crash ledger: before ari makes anything outside itself (a snapshot, a mount directory, a
//! mount), it records the step that undoes it in the job's ledger, `state_dir/ledger/LABEL.json`,
//! written atomically and fsynced; once the undo has run, the entry goes. A run killed by SIGKILL
//! or a power cut leaves the ledger behind, and `ari recover` (or the job's next run) undoes
//! what it records, in reverse order, each only while what it removes is still there.
//!
//! A step's repair (`Step::repaired_by`) is recorded the same way, with the identity of the
//! process the step started (`after`), before that process may run; it runs only once that
//! process is proven gone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::contract::ssh::Ssh;
use crate::contract::step::{Command, Host, Phase, Program, Retry, Step, Tolerated};
use crate::engine::files::{Area, StateDir, StateError};
use crate::engine::process_record::ProcessRecord;

/// A command as the ledger stores it: `{"host": ..., "argv": [...]}` or `{"host": ...,
/// "shell": "..."}`. It always holds a command on a plain host name: a file that says otherwise
/// does not parse, so no entry can quietly become another command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawCommand", into = "RawCommand")]
pub struct CommandRecord {
    command: Command,
}

/// A command as the file spells it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RawCommand {
    host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    argv: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shell: Option<String>,
}

impl TryFrom<RawCommand> for CommandRecord {
    type Error = String;

    fn try_from(raw: RawCommand) -> Result<CommandRecord, String> {
        crate::contract::job::check_host(&raw.host)
            .map_err(|e| format!("a command's host `{}` {e}", raw.host.escape_debug()))?;
        let host = Host::named(&raw.host);
        let command = match (raw.argv, raw.shell) {
            (Some(argv), None) if argv.first().is_some_and(|program| !program.is_empty()) => {
                Command::argv(host, argv)
            }
            (Some(_), None) => return Err("a command has an empty argv".into()),
            (None, Some(script)) if !script.trim().is_empty() => Command::shell(host, script),
            (None, Some(_)) => return Err("a command has an empty shell script".into()),
            (Some(_), Some(_)) => return Err("a command has both `argv` and `shell`".into()),
            (None, None) => return Err("a command has neither `argv` nor `shell`".into()),
        };
        Ok(CommandRecord { command })
    }
}

impl From<CommandRecord> for RawCommand {
    fn from(record: CommandRecord) -> RawCommand {
        let (argv, shell) = match record.command.program {
            Program::Argv(argv) => (Some(argv), None),
            Program::Shell(script) => (None, Some(script)),
        };
        RawCommand { host: record.command.host.to_string(), argv, shell }
    }
}

impl CommandRecord {
    /// The record of a command.
    pub fn of(command: &Command) -> CommandRecord {
        CommandRecord { command: command.clone() }
    }

    /// The command.
    pub fn command(&self) -> Command {
        self.command.clone()
    }
}

/// One thing a run made and has not undone yet: the step that undoes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unique within the ledger.
    pub id: u64,
    /// The undo step's name (`umount /tmp/db`).
    pub name: String,
    /// What is left behind while the entry stands.
    #[serde(default)]
    pub removes: Option<String>,
    /// The undo command.
    pub command: CommandRecord,
    /// The query that succeeds while the thing is still there.
    #[serde(default)]
    pub present: Option<CommandRecord>,
    /// The words that query must print for the thing to be ari's (a destructive undo's proof).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub present_expect: Option<Vec<String>>,
    /// Retries of the undo.
    pub max_retries: u32,
    /// Seconds between them.
    pub retry_interval_seconds: u64,
    /// For a repair: the process whose end it waits for, which the step it repairs started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<ProcessRecord>,
    /// Non-zero exit statuses of the command that still count as success, with the words its
    /// output must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerated: Vec<ToleratedRecord>,
}

/// An exit status the ledger's command may end with and still succeed, when its output holds
/// `output` (never empty: the words are the proof).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawTolerated")]
pub struct ToleratedRecord {
    /// The exit status.
    pub code: i32,
    /// What the output must hold.
    pub output: String,
}

#[derive(Deserialize)]
struct RawTolerated {
    code: i32,
    output: String,
}

impl TryFrom<RawTolerated> for ToleratedRecord {
    type Error = String;

    fn try_from(raw: RawTolerated) -> Result<ToleratedRecord, String> {
        if raw.code == 0 || raw.output.trim().is_empty() {
            return Err(format!("a tolerated exit status {} without the words that make it one", raw.code));
        }
        Ok(ToleratedRecord { code: raw.code, output: raw.output })
    }
}

impl Entry {
    /// The undo step again, as the pipeline runs it.
    pub fn step(&self) -> Step {
        let mut step = Step::run(Phase::Cleanup, self.name.clone(), self.command.command()).retry(Retry {
            max_retries: self.max_retries,
            interval: std::time::Duration::from_secs(self.retry_interval_seconds),
        });
        step.removes = self.removes.clone();
        step.present = self.present.as_ref().map(|query| crate::contract::step::Probe {
            query: query.command(),
            expect: self.present_expect.clone(),
        });
        step.tolerated = self.tolerated.iter().map(|t| Tolerated::new(t.code, t.output.clone())).collect();
        step
    }

    /// The entry of `undo` (or a repair), with the record of the process it waits for, under
    /// `id`.
    fn of(id: u64, undo: &Step, after: Option<&ProcessRecord>) -> Entry {
        Entry {
            id,
            name: undo.name.clone(),
            removes: undo.removes.clone(),
            command: CommandRecord::of(undo.action.command()),
            present: undo.present.as_ref().map(|probe| CommandRecord::of(&probe.query)),
            present_expect: undo.present.as_ref().and_then(|probe| probe.expect.clone()),
            max_retries: undo.retry.max_retries,
            retry_interval_seconds: undo.retry.interval.as_secs(),
            after: after.cloned(),
            tolerated: undo
                .tolerated
                .iter()
                .map(|t| ToleratedRecord { code: t.code, output: t.output.to_string() })
                .collect(),
        }
    }
}

/// The ledger format this ari writes: 3, whose repairs carry the record of the process they
/// wait for (`after`). It also runs format 2, whose destructive undo commands carry the proof of
/// their target (`present_expect`) as 3's do, and which has no repairs; an older ari refuses
/// format 3, whose repairs it would run without waiting. A file without `format` is an older
/// ari's, whose `lvremove` entries carry no proof.
const FORMAT: u32 = 3;
/// The oldest format this ari runs.
const OLDEST_FORMAT: u32 = 2;

/// The file's contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LedgerFile {
    /// [`FORMAT`]; 0 (absent) in an older ari's ledger.
    #[serde(default)]
    format: u32,
    job: String,
    ssh: Ssh,
    entries: Vec<Entry>,
}

/// Why a job's ledger cannot be used. Nothing of such a ledger runs, and its job does not run
/// until the admin has looked at it (`ari recover JOB --show`) and cleared it
/// (`ari recover JOB --forget`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The file is not one ari may run commands from: a symlink, another user's, writable by
    /// others.
    #[error("refusing the ledger of job {label}")]
    Refused {
        /// The job.
        label: String,
        /// What is wrong with the file.
        #[source]
        source: StateError,
    },
    /// The file is ari's but does not hold a ledger.
    #[error("the ledger {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (`it is empty`).
        reason: String,
    },
    /// The file was written by another version of ari, whose entries this one does not run.
    #[error("the ledger {} cannot be run: {reason}", path.display())]
    OtherFormat {
        /// The file.
        path: PathBuf,
        /// Which ari wrote it, and why this one runs none of it.
        reason: String,
    },
    /// The file could not be read or written.
    #[error(transparent)]
    State(StateError),
}

impl LedgerError {
    /// Whether the ledger itself is bad (refused or corrupt), so that only the admin can clear
    /// it, as opposed to the filesystem failing.
    pub fn needs_the_admin(&self) -> bool {
        matches!(
            self,
            LedgerError::Refused { .. } | LedgerError::Corrupt { .. } | LedgerError::OtherFormat { .. }
        )
    }

    /// What ari says about a ledger of job `label` that it cannot use: why, and for a refused or
    /// corrupt one, the two commands that show and clear it.
    pub fn advice(&self, label: &str) -> String {
        let why = crate::contract::error::chain(self);
        if self.needs_the_admin() {
            format!(
                "{why}; ari runs nothing from it, and job {label} does not run until it is cleared: see what it \
                 holds with `ari recover {label} --show`, check by hand that what it lists is gone, then clear \
                 it with `ari recover {label} --forget`"
            )
        } else {
            format!("{why}; job {label} does not run until its ledger can be read")
        }
    }
}

/// What a ledger file holds, for showing to the admin: its bytes, and its entries or why they
/// cannot be read. Nothing in it is acted on.
#[derive(Debug)]
pub struct Shown {
    /// The file.
    pub path: PathBuf,
    /// Its raw contents.
    pub bytes: Vec<u8>,
    /// Its entries as the file lists them, or what is wrong with it.
    pub entries: Result<Vec<Entry>, String>,
}

/// A job's ledger.
#[derive(Debug)]
pub struct Ledger {
    state: Option<StateDir>,
    label: String,
    file: LedgerFile,
}

impl Ledger {
    /// Where a job's ledger lives.
    pub fn path(state_dir: &Path, label: &str) -> PathBuf {
        StateDir::new(state_dir).dir(Area::Ledger).join(Ledger::file_name(label))
    }

    fn file_name(label: &str) -> String {
        format!("{label}.json")
    }

    /// Whether the job has a ledger file (whatever it holds, a symlink included).
    pub fn exists(state_dir: &Path, label: &str) -> bool {
        StateDir::new(state_dir).exists(Area::Ledger, &Ledger::file_name(label))
    }

    /// Opens a job's ledger (empty when there is no file); `ssh` is how its hosts are reached,
    /// kept with the entries so that recovery needs no job file. A file that is not ari's own,
    /// that others can write, or that does not hold a well-formed ledger is an error, and
    /// nothing of it is used.
    pub fn open(state_dir: &Path, label: &str, ssh: &Ssh) -> Result<Ledger, LedgerError> {
        let state = StateDir::new(state_dir);
        let name = Ledger::file_name(label);
        let file = match state.read_commands(Area::Ledger, &name) {
            Ok(Some(bytes)) => parse(label, &bytes)
                .map_err(|reason| LedgerError::Corrupt { path: Ledger::path(state_dir, label), reason })?,
            Ok(None) => {
                LedgerFile { format: FORMAT, job: label.to_string(), ssh: ssh.clone(), entries: Vec::new() }
            }
            Err(source) if source.is_refusal() => {
                return Err(LedgerError::Refused { label: label.to_string(), source })
            }
            Err(err) => return Err(LedgerError::State(err)),
        };
        if let Some(reason) = other_format(file.format) {
            return Err(LedgerError::OtherFormat { path: Ledger::path(state_dir, label), reason });
        }
        Ok(Ledger { state: Some(state), label: label.to_string(), file })
    }

    /// What a job's ledger file holds, whoever owns it, for `ari recover --show`; `None` when
    /// there is no file.
    pub fn show(state_dir: &Path, label: &str) -> Result<Option<Shown>, StateError> {
        let bytes = StateDir::new(state_dir).read_for_display(Area::Ledger, &Ledger::file_name(label))?;
        Ok(bytes.map(|bytes| Shown {
            path: Ledger::path(state_dir, label),
            entries: parse(label, &bytes).map(|file| file.entries),
            bytes,
        }))
    }

    /// Moves a job's ledger aside, to `LABEL.json.forgotten-TIMESTAMP`, so that nothing of it
    /// runs; returns where it went. The caller holds the job's lock.
    pub fn forget(state_dir: &Path, label: &str) -> Result<PathBuf, StateError> {
        StateDir::new(state_dir).move_aside(Area::Ledger, &Ledger::file_name(label), "forgotten")
    }

    /// A ledger that records nothing, for dry runs, which make nothing.
    pub fn disabled() -> Ledger {
        Ledger {
            state: None,
            label: String::new(),
            file: LedgerFile { format: FORMAT, job: String::new(), ssh: Ssh::new(""), entries: Vec::new() },
        }
    }

    /// The labels of every job with a ledger file in `state_dir`.
    pub fn pending(state_dir: &Path) -> Result<Vec<String>, StateError> {
        let names = StateDir::new(state_dir).list(Area::Ledger, ".json")?;
        Ok(names.into_iter().filter_map(|name| name.strip_suffix(".json").map(str::to_string)).collect())
    }

    /// How the ledger's hosts are reached.
    pub fn ssh(&self) -> &Ssh {
        &self.file.ssh
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[Entry] {
        &self.file.entries
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.file.entries.is_empty()
    }

    /// The id the next entry gets.
    fn next_id(&self) -> u64 {
        self.file.entries.iter().map(|e| e.id).max().map_or(1, |max| max + 1)
    }

    /// Records the undo of something about to be made; returns the entry's id.
    pub fn record(&mut self, undo: &Step) -> std::io::Result<u64> {
        let id = self.next_id();
        if self.state.is_none() {
            return Ok(id);
        }
        self.file.entries.push(Entry::of(id, undo, None));
        self.save()?;
        Ok(id)
    }

    /// Records `repairs`, each to run once `process` is proven gone, in one write; returns
    /// their ids in the order recorded. The last is recorded first, so that running the newest
    /// entry first, as recovery does, runs them in the order given.
    pub fn record_repairs(&mut self, repairs: &[Step], process: &ProcessRecord) -> std::io::Result<Vec<u64>> {
        let ids: Vec<u64> = (self.next_id()..).take(repairs.len()).collect();
        if self.state.is_none() || repairs.is_empty() {
            return Ok(ids);
        }
        for (id, repair) in ids.iter().zip(repairs.iter().rev()) {
            self.file.entries.push(Entry::of(*id, repair, Some(process)));
        }
        self.save()?;
        Ok(ids)
    }

    /// The entry `id`, while the ledger holds it.
    pub fn entry(&self, id: u64) -> Option<&Entry> {
        self.file.entries.iter().find(|e| e.id == id)
    }

    /// Removes an entry once its undo has run (or the thing was never made).
    pub fn remove(&mut self, id: u64) -> std::io::Result<()> {
        self.remove_all(&[id])
    }

    /// Removes entries in one write (the repairs of a step that ended normally).
    pub fn remove_all(&mut self, ids: &[u64]) -> std::io::Result<()> {
        let before = self.file.entries.len();
        self.file.entries.retain(|e| !ids.contains(&e.id));
        if self.file.entries.len() == before || self.state.is_none() {
            return Ok(());
        }
        self.save()
    }

    /// Writes the ledger atomically (a temp file renamed over it), fsyncing the file and its
    /// directory, so that a crash leaves either the old or the new ledger; an empty ledger is
    /// no file at all.
    fn save(&self) -> std::io::Result<()> {
        let Some(state) = &self.state else { return Ok(()) };
        let name = Ledger::file_name(&self.label);
        let saved = if self.file.entries.is_empty() {
            state.remove(Area::Ledger, &name)
        } else {
            let bytes = serde_json::to_vec_pretty(&self.file).map_err(std::io::Error::other)?;
            state.write(Area::Ledger, &name, &bytes).map(drop)
        };
        saved.map_err(std::io::Error::from)
    }
}

/// A ledger file's contents, or what makes it no ledger of the job.
/// Why a ledger of `format` is not one this ari runs, if it is not.
fn other_format(format: u32) -> Option<String> {
    match format {
        OLDEST_FORMAT..=FORMAT => None,
        0 => Some(
            "an older ari wrote it (it has no `format`), whose `lvremove` entries carry no proof that \
             their target is a snapshot ari made, so this ari runs none of its entries"
                .into(),
        ),
        other => Some(format!(
            "it is of format {other}, from another ari; this one runs formats {OLDEST_FORMAT} to {FORMAT}"
        )),
    }
}

fn parse(label: &str, bytes: &[u8]) -> Result<LedgerFile, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(if bytes.is_empty() { "it is empty".into() } else { "it holds only white space".into() });
    }
    let file: LedgerFile = serde_json::from_slice(bytes).map_err(|err| match err.classify() {
        serde_json::error::Category::Eof => format!("it ends in the middle, as if cut short: {err}"),
        serde_json::error::Category::Syntax => format!("it is not JSON: {err}"),
        _ => err.to_string(),
    })?;
    if file.job != label {
        return Err(format!("it is the ledger of job `{}`, not of `{label}`", file.job.escape_debug()));
    }
    let mut ids = std::collections::BTreeSet::new();
    if let Some(entry) = file.entries.iter().find(|entry| !ids.insert(entry.id)) {
        return Err(format!("two entries have the id {}", entry.id));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn ssh() -> Ssh {
        Ssh { port: Some(22), user: Some("root".into()), ..Ssh::new("/usr/bin/ssh") }
    }

    fn undo(name: &str) -> Step {
        Step::run(Phase::Cleanup, name, Command::argv(Host::named("db"), ["umount", "/tmp/x y"]))
            .retry(Retry { max_retries: 3, interval: std::time::Duration::from_secs(5) })
            .removes("mount at /tmp/x y on db")
            .present_while(Command::argv(Host::named("db"), ["mountpoint", "-q", "/tmp/x y"]))
    }

    #[test]
    fn entries_survive_a_reopen_and_an_empty_ledger_is_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path(), "db", &ssh()).unwrap();
        let first = ledger.record(&undo("umount /tmp/x y")).unwrap();
        let second = ledger.record(&undo("other")).unwrap();
        assert_ne!(first, second);
        let path = Ledger::path(dir.path(), "db");
        assert!(path.exists());
        assert_eq!(Ledger::pending(dir.path()).unwrap(), ["db"]);
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        let reopened = Ledger::open(dir.path(), "db", &ssh()).unwrap();
        assert_eq!(reopened.entries().len(), 2);
        let step = reopened.entries()[0].step();
        assert_eq!(step.action.command(), undo("x").action.command());
        assert_eq!(step.present, undo("x").present);
        assert_eq!(step.retry, undo("x").retry);
        assert_eq!(step.removes.as_deref(), Some("mount at /tmp/x y on db"));

        ledger.remove(first).unwrap();
        ledger.remove(second).unwrap();
        assert!(!path.exists(), "an empty ledger leaves no file");
        assert!(Ledger::pending(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn repairs_keep_their_process_and_tolerated_status_and_run_in_the_order_given() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path(), "db", &ssh()).unwrap();
        let first = undo("umount /tmp/x y");
        let repair = |name: &str| {
            Step::run(Phase::Cleanup, name, Command::argv(Host::Local, ["rdiff-backup", "regress", "/s"]))
                .present_while(Command::shell(Host::Local, "test -e /s/x"))
                .tolerating(2, "regressing destination now")
        };
        let snapshot = ledger.record(&first).unwrap();
        let process = ProcessRecord {
            pid: 4242,
            start_ticks: 77,
            boot_id: "0f8fad5b-d9cb-469f-a165-70867728950e".into(),
        };
        let ids = ledger.record_repairs(&[repair("regress"), repair("unlock")], &process).unwrap();
        assert_eq!(ids.len(), 2);
        let reopened = Ledger::open(dir.path(), "db", &ssh()).unwrap();
        // Newest first, as recovery runs them: the order given.
        let names: Vec<&str> = reopened.entries().iter().rev().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["regress", "unlock", "umount /tmp/x y"]);
        let entry = reopened.entry(ids[1]).unwrap();
        assert_eq!(entry.after.as_ref(), Some(&process));
        let step = entry.step();
        assert!(step.tolerated.iter().any(|t| t.accepts(2, "WARNING: regressing destination now")));
        assert_eq!(step.present, repair("x").present);
        assert_eq!(reopened.entry(snapshot).unwrap().after, None);
        ledger.remove_all(&ids).unwrap();
        assert_eq!(Ledger::open(dir.path(), "db", &ssh()).unwrap().entries().len(), 1);
    }

    #[test]
    fn a_disabled_ledger_writes_nothing() {
        let mut ledger = Ledger::disabled();
        ledger.record(&undo("x")).unwrap();
        assert!(ledger.is_empty());
    }

    /// A ledger file of job `db` whose one entry's command is `command`.
    fn with_command(command: &str) -> String {
        format!(
            r#"{{"format": 2, "job": "db", "ssh": {{"path": "ssh", "port": 22, "user": "", "options": [], "defaults": []}},
"entries": [{{"id": 1, "name": "undo", "command": {command}, "max_retries": 0, "retry_interval_seconds": 0}}]}}"#
        )
    }

    #[test]
    fn a_corrupt_ledger_is_an_error_that_says_why() {
        let check = |contents: &str, expected: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = Ledger::path(dir.path(), "db");
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, contents).unwrap();
            let err = Ledger::open(dir.path(), "db", &ssh()).unwrap_err();
            assert!(err.needs_the_admin(), "{contents:?}: {err:?}");
            let message = err.to_string();
            let prefix = format!("the ledger {} is corrupt: ", path.display());
            assert!(message.starts_with(&prefix), "{contents:?}: {message}");
            assert_eq!(&message[prefix.len()..], expected, "{contents:?}");
            let shown = Ledger::show(dir.path(), "db").unwrap().unwrap();
            assert_eq!(shown.bytes, contents.as_bytes());
            assert_eq!(shown.entries.unwrap_err(), expected);
        };
        check("", "it is empty");
        check("\n \n", "it holds only white space");
        let full = with_command(r#"{"host": "db", "argv": ["umount", "/tmp/db"]}"#);
        check(
            &full[..60],
            "it ends in the middle, as if cut short: EOF while parsing an object at line 1 column 60",
        );
        check("nonsense", "it is not JSON: expected ident at line 1 column 2");
        check(
            &with_command(r#"{"host": "db"}"#),
            "a command has neither `argv` nor `shell` at line 2 column 63",
        );
        check(
            &with_command(r#"{"host": "db", "argv": []}"#),
            "a command has an empty argv at line 2 column 75",
        );
        check(
            &with_command(r#"{"host": "db", "argv": ["x"], "shell": "y"}"#),
            "a command has both `argv` and `shell` at line 2 column 92",
        );
        check(
            &with_command(r#"{"host": "db;reboot", "shell": "y"}"#),
            "a command's host `db;reboot` holds `;`, which is not allowed in a host name at line 2 column 84",
        );
        check(
            &with_command(r#"{"host": "-oProxyCommand=x", "shell": "y"}"#),
            "a command's host `-oProxyCommand=x` must not start with `-` (ssh would read it as an option) at line 2 column 91",
        );
        check(
            &with_command(r#"{"host": "db", "argv": ["x"]}"#).replace(r#""job": "db""#, r#""job": "web""#),
            "it is the ledger of job `web`, not of `db`",
        );
        check(&with_command(r#"{"argv": ["x"]}"#), "missing field `host` at line 2 column 64");
        let with_entry_field = |field: &str| {
            with_command(r#"{"host": "localhost", "argv": ["x"]}"#)
                .replace(r#""max_retries""#, &format!("{field}, \"max_retries\""))
        };
        check(
            &with_entry_field(
                r#""after": {"pid": 1, "start_ticks": 5, "boot_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}"#,
            ),
            "a process record names pid 1, which no command of ari's has at line 2 column 175",
        );
        check(
            &with_entry_field(r#""tolerated": [{"code": 2, "output": " "}]"#),
            "a tolerated exit status 2 without the words that make it one at line 2 column 128",
        );
    }

    #[test]
    fn a_ledger_of_another_format_runs_nothing_and_is_still_shown() {
        let dir = tempfile::tempdir().unwrap();
        let path = Ledger::path(dir.path(), "db");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let current = with_command(r#"{"host": "db", "argv": ["lvremove", "-f", "vg0/root"]}"#);
        let check = |contents: &str, expected: &str| {
            std::fs::write(&path, contents).unwrap();
            let err = Ledger::open(dir.path(), "db", &ssh()).unwrap_err();
            assert!(matches!(err, LedgerError::OtherFormat { .. }) && err.needs_the_admin(), "{err:?}");
            assert_eq!(err.to_string(), format!("the ledger {} cannot be run: {expected}", path.display()));
            assert!(err.advice("db").contains("`ari recover db --forget`"), "{}", err.advice("db"));
            let shown = Ledger::show(dir.path(), "db").unwrap().unwrap();
            assert_eq!(shown.entries.unwrap().len(), 1, "shown, though not run");
        };
        // An older ari's lvremove has no proof that vg0/root is a snapshot: it must not run.
        check(
            &current.replace(r#""format": 2, "#, ""),
            "an older ari wrote it (it has no `format`), whose `lvremove` entries carry no proof that \
             their target is a snapshot ari made, so this ari runs none of its entries",
        );
        check(
            &current.replace(r#""format": 2"#, r#""format": 4"#),
            "it is of format 4, from another ari; this one runs formats 2 to 3",
        );
        std::fs::write(&path, &current).unwrap();
        assert_eq!(Ledger::open(dir.path(), "db", &ssh()).unwrap().entries().len(), 1);
    }

    #[test]
    fn entries_are_written_with_the_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path(), "db", &ssh()).unwrap();
        ledger.record(&undo("x")).unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(Ledger::path(dir.path(), "db")).unwrap()).unwrap();
        assert_eq!(written["format"], FORMAT);
    }

    #[test]
    fn a_ledger_others_can_write_is_refused_and_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = Ledger::path(dir.path(), "db");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, with_command(r#"{"host": "localhost", "argv": ["touch", "/tmp/x"]}"#)).unwrap();
        assert_eq!(Ledger::open(dir.path(), "db", &ssh()).unwrap().entries().len(), 1, "0644 is fine");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = Ledger::open(dir.path(), "db", &ssh()).unwrap_err();
        assert!(matches!(err, LedgerError::Refused { .. }) && err.needs_the_admin(), "{err:?}");
        let shown = Ledger::show(dir.path(), "db").unwrap().unwrap();
        assert_eq!(shown.entries.unwrap().len(), 1, "shown, though not trusted");
        let aside = Ledger::forget(dir.path(), "db").unwrap();
        assert!(!Ledger::exists(dir.path(), "db"));
        assert_eq!(Ledger::pending(dir.path()).unwrap(), Vec::<String>::new());
        assert!(aside.file_name().unwrap().to_string_lossy().starts_with("db.json.forgotten-"));
        assert!(Ledger::open(dir.path(), "db", &ssh()).unwrap().is_empty());
    }
}
