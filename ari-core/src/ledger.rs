//! The crash ledger: before ari makes anything outside itself (a snapshot, a mount directory, a
//! mount), it records the step that undoes it in the job's ledger, `state_dir/ledger/LABEL.json`,
//! written atomically and fsynced; once the undo has run, the entry goes. A run killed by SIGKILL
//! or a power cut leaves the ledger behind, and `ari recover` (or the job's next run) undoes
//! what it records, in reverse order, each only while what it removes is still there.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::process::Ssh;
use crate::step::{Command, Host, Phase, Program, Retry, Step};

/// A command as the ledger stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// `localhost` or the remote host.
    pub host: String,
    /// The argv, for a command without a shell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// The script, for a shell command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
}

impl CommandRecord {
    fn of(command: &Command) -> CommandRecord {
        let (argv, shell) = match &command.program {
            Program::Argv(argv) => (Some(argv.clone()), None),
            Program::Shell(script) => (None, Some(script.clone())),
        };
        CommandRecord { host: command.host.to_string(), argv, shell }
    }

    fn command(&self) -> Command {
        let host = Host::named(&self.host);
        match (&self.argv, &self.shell) {
            (Some(argv), _) => Command::argv(host, argv.iter().cloned()),
            (None, Some(script)) => Command::shell(host, script.clone()),
            (None, None) => Command::argv(host, ["true"]),
        }
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
}

impl Entry {
    /// The undo step again, as the pipeline runs it.
    pub fn step(&self) -> Step {
        let mut step = Step::run(Phase::Cleanup, self.name.clone(), self.command.command()).retry(Retry {
            max_retries: self.max_retries,
            interval: std::time::Duration::from_secs(self.retry_interval_seconds),
        });
        step.removes = self.removes.clone();
        step.present = self
            .present
            .as_ref()
            .map(|query| crate::step::Probe { query: query.command(), expect: self.present_expect.clone() });
        step
    }
}

/// The file's contents.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LedgerFile {
    job: String,
    ssh: Ssh,
    entries: Vec<Entry>,
}

/// A job's ledger.
#[derive(Debug)]
pub struct Ledger {
    path: Option<PathBuf>,
    file: LedgerFile,
}

impl Ledger {
    /// Where a job's ledger lives.
    pub fn path(state_dir: &Path, label: &str) -> PathBuf {
        state_dir.join("ledger").join(format!("{label}.json"))
    }

    /// Opens a job's ledger (empty when there is no file); `ssh` is how its hosts are reached,
    /// kept with the entries so that recovery needs no job file.
    pub fn open(state_dir: &Path, label: &str, ssh: &Ssh) -> io::Result<Ledger> {
        let path = Ledger::path(state_dir, label);
        let file = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{} is no ledger: {err}", path.display()))
            })?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                LedgerFile { job: label.to_string(), ssh: ssh.clone(), entries: Vec::new() }
            }
            Err(err) => return Err(err),
        };
        Ok(Ledger { path: Some(path), file })
    }

    /// A ledger that records nothing, for dry runs, which make nothing.
    pub fn disabled() -> Ledger {
        Ledger {
            path: None,
            file: LedgerFile {
                job: String::new(),
                ssh: Ssh {
                    path: String::new(),
                    port: 0,
                    user: String::new(),
                    options: Vec::new(),
                    defaults: Vec::new(),
                },
                entries: Vec::new(),
            },
        }
    }

    /// The labels of every job with a non-empty ledger in `state_dir`.
    pub fn pending(state_dir: &Path) -> Vec<String> {
        let Ok(entries) = fs::read_dir(state_dir.join("ledger")) else { return Vec::new() };
        let mut labels: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_string))
            .collect();
        labels.sort();
        labels
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

    /// Records the undo of something about to be made; returns the entry's id.
    pub fn record(&mut self, undo: &Step) -> io::Result<u64> {
        let id = self.file.entries.iter().map(|e| e.id).max().map_or(1, |max| max + 1);
        if self.path.is_none() {
            return Ok(id);
        }
        self.file.entries.push(Entry {
            id,
            name: undo.name.clone(),
            removes: undo.removes.clone(),
            command: CommandRecord::of(undo.action.command()),
            present: undo.present.as_ref().map(|probe| CommandRecord::of(&probe.query)),
            present_expect: undo.present.as_ref().and_then(|probe| probe.expect.clone()),
            max_retries: undo.retry.max_retries,
            retry_interval_seconds: undo.retry.interval.as_secs(),
        });
        self.save()?;
        Ok(id)
    }

    /// Removes an entry once its undo has run (or the thing was never made).
    pub fn remove(&mut self, id: u64) -> io::Result<()> {
        let before = self.file.entries.len();
        self.file.entries.retain(|e| e.id != id);
        if self.file.entries.len() == before || self.path.is_none() {
            return Ok(());
        }
        self.save()
    }

    /// Writes the ledger atomically (a temp file renamed over it), fsyncing the file and its
    /// directory, so that a crash leaves either the old or the new ledger; an empty ledger is
    /// no file at all.
    fn save(&self) -> io::Result<()> {
        let Some(path) = &self.path else { return Ok(()) };
        if self.file.entries.is_empty() {
            crate::fsutil::remove_durably(path)
        } else {
            crate::fsutil::write_atomic(
                path,
                &serde_json::to_vec_pretty(&self.file).map_err(io::Error::other)?,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ssh() -> Ssh {
        Ssh { path: "/usr/bin/ssh".into(), port: 22, user: "root".into(), options: vec![], defaults: vec![] }
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
        assert_eq!(Ledger::pending(dir.path()), ["db"]);

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
        assert!(Ledger::pending(dir.path()).is_empty());
    }

    #[test]
    fn a_disabled_ledger_writes_nothing() {
        let mut ledger = Ledger::disabled();
        ledger.record(&undo("x")).unwrap();
        assert!(ledger.is_empty());
    }
}
