//! The plugin traits, [`BackupBackend`] and [`SnapshotSource`], and their link-time registry.
//!
//! A plugin is a unit struct implementing one trait, registered with [`register_backend!`] or
//! [`register_source!`]; the `ari` binary (or a third party's) links it in with
//! `use my_backend as _;`. Plugins build steps as data from a [`JobContext`]; they never run
//! anything themselves.
//!
//! [`register_backend!`]: crate::register_backend
//! [`register_source!`]: crate::register_source

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::contract::core_settings::{MAX_RETRIES, RETRY_INTERVAL};
use crate::contract::error::ConfigError;
use crate::contract::job::Job;
use crate::contract::sample::{Sample, StoreCheck};
use crate::contract::settings::{Setting, SettingType, Settings, Source};
use crate::contract::ssh::Ssh;
use crate::contract::step::{Host, Retry, Step};

pub(crate) mod error;
pub(crate) mod retention;
pub(crate) mod store;

pub use error::PluginError;
pub use retention::CLOCK_SLACK;
pub use retention::{Retention, Verdict};
pub use store::{HistoryQuery, Restore, RestoreRequest, StoredBackup};

/// What a plugin learned in its probe phase (a tool's version), handed back to it in the
/// context it builds its steps from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts(BTreeMap<String, String>);

impl Facts {
    /// No facts.
    pub fn new() -> Facts {
        Facts::default()
    }

    /// Records a fact.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.0.insert(key.into(), value.into());
    }

    /// A fact, if the probe recorded it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Adds another plugin's facts.
    pub(crate) fn extend(&mut self, other: Facts) {
        self.0.extend(other.0);
    }
}

/// What the engine hands every context of a job, found before any plugin is asked: where the
/// job's ssh wrapper is, and the version of each program a backend's `probed_versions` named
/// (`None`: not found; an error: it did not answer).
#[derive(Debug, Clone, Default)]
pub(crate) struct Provided {
    pub(crate) ssh_wrapper: String,
    pub(crate) versions: BTreeMap<String, Result<Option<String>, PluginError>>,
}

/// Everything a plugin may look at to build a job's steps: the job, its effective settings,
/// its snapshot source, and what the probe phase found.
#[derive(Clone, Copy)]
pub struct JobContext<'a> {
    job: &'a Job,
    settings: &'a Settings,
    snapshot: Option<&'a dyn SnapshotSource>,
    facts: &'a Facts,
    provided: &'a Provided,
}

impl<'a> JobContext<'a> {
    /// A context (the engine makes them; so does `testkit`).
    pub(crate) fn new(
        job: &'a Job,
        settings: &'a Settings,
        snapshot: Option<&'a dyn SnapshotSource>,
        facts: &'a Facts,
        provided: &'a Provided,
    ) -> JobContext<'a> {
        JobContext { job, settings, snapshot, facts, provided }
    }

    /// The job.
    pub fn job(&self) -> &'a Job {
        self.job
    }

    /// What the probe phase found (empty while probing).
    pub fn facts(&self) -> &'a Facts {
        self.facts
    }

    /// For a probe: the first line that `program --version` prints, for a program that the
    /// backend's [`BackupBackend::probed_versions`] named. The engine asked it before the probe,
    /// once, and caches it in `state_dir` while the binary is unchanged (`ari plan` and `ari
    /// check` write nothing, so they do not fill the cache). `None` when the program is not
    /// found (it is reported with every other missing tool); an error when it did not answer,
    /// or when `probed_versions` did not name it.
    pub fn tool_version(&self, program: &str) -> Result<Option<String>, PluginError> {
        match self.provided.versions.get(program) {
            Some(version) => version.clone(),
            None => Err(PluginError::new(format!(
                "`{program}` is not among the programs the backend's probed_versions names"
            ))),
        }
    }

    /// The value of a setting for this job.
    pub fn get<T: SettingType>(&self, setting: &Setting<T>) -> T {
        self.settings.get(setting)
    }

    /// Whether the job's value of `setting` comes from a file, the global config or the job
    /// file, rather than from the command line or the setting's default: a value that holds for
    /// one run only (rdiff-backup's `--current-time`) belongs on the command line.
    pub fn set_in_a_file<T: SettingType>(&self, setting: &Setting<T>) -> bool {
        matches!(self.settings.source(setting.def.name), Some(Source::Config(_) | Source::Job(_)))
    }

    /// Whether the job file itself sets `setting` (not the global config, the command line or
    /// the default): what a backend that shares another's settings refuses of those it does
    /// not read (a backend named `OWNER-NAME` may set OWNER's settings: `zfs-send` zfs's).
    pub fn set_in_the_job_file<T: SettingType>(&self, setting: &Setting<T>) -> bool {
        matches!(self.settings.source(setting.def.name), Some(Source::Job(_)))
    }

    /// The host whose files are backed up.
    pub fn source_host(&self) -> Host {
        Host::named(&self.job.source_hostname)
    }

    /// How to reach remote hosts.
    pub fn ssh(&self) -> Ssh {
        Ssh::from_settings(self.settings)
    }

    /// The job's ssh wrapper: the program a tool on the backup server must use as its ssh
    /// (`--remote-schema`, `rsync -e`) to reach the job's hosts. It runs as `WRAPPER [-C] [-l USER]
    /// [USER@]HOST COMMAND...`, holds the job's ssh settings as exact words, uses the job's
    /// shared connection, and runs COMMAND under ari's remote wrapper, so that it stops when ari
    /// stops it. ari writes it when a run starts and removes it when the run ends.
    pub fn ssh_wrapper(&self) -> String {
        self.provided.ssh_wrapper.clone()
    }

    /// Where the snapshot source makes the source's files visible on the source host, if the job
    /// has one (the mount base of LVM snapshots); the backend reads the files there instead.
    pub fn snapshot_root(&self) -> Option<String> {
        self.snapshot.map(|source| source.root(self))
    }

    /// The retry policy of cleanup steps: `max_retries` tries more, `retry_interval` apart.
    pub(crate) fn cleanup_retry(&self) -> Retry {
        Retry {
            max_retries: self.get(&MAX_RETRIES),
            interval: std::time::Duration::from_secs(u64::from(self.get(&RETRY_INTERVAL))),
        }
    }

    /// An error about this job as a whole, naming its file.
    fn error(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::in_file(&self.job.path, message)
    }

    /// The value of a setting without a default that the plugin cannot do without
    /// (`backup_store_path`), or the error that names the job file and says where to set it:
    /// `NAME: required by the OWNER backend; set it in the job file or the global config`.
    pub fn require<T: SettingType>(&self, setting: &Setting<Option<T>>) -> Result<T, ConfigError> {
        self.get(setting).ok_or_else(|| {
            let (name, owner) = (setting.def.name, setting.def.owner);
            let plugin = if source(owner).is_some() { "snapshot source" } else { "backend" };
            self.error(format!(
                "{name}: required by the {owner} {plugin}; set it in the job file or the global config"
            ))
        })
    }

    /// An error about `key`, a job key (`volumes[1].mount_point`) or a setting, at the line and
    /// column of its value in the file that set it: the job file, the global config, or the
    /// command line. A setting left at its default is blamed on the job file.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ConfigError {
        let message = message.into();
        let name = key.split(['.', '[']).next().unwrap_or(key);
        if crate::contract::settings::find(name).is_some() {
            match self.settings.error_at(key, &message) {
                Some(error) => return error,
                None => return self.job.error_at(key, format!("{message} (this is its default)")),
            }
        }
        self.job.error_at(key, message)
    }
}

/// A local program a plugin needs, with the setting that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    /// The setting that names the program (`rdiff_backup_path`).
    pub(crate) setting: &'static str,
    /// The program: a path, or a name looked up on PATH.
    pub(crate) program: String,
}

/// A local directory a plugin needs to exist (the backup store), with the setting that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    /// The setting that names the directory (`backup_store_path`).
    pub(crate) setting: &'static str,
    /// The directory, an absolute path.
    pub(crate) path: String,
}

impl Tool {
    /// The program `program` (a path, or a name looked up on PATH), named by `setting`.
    pub fn new(setting: &'static str, program: impl Into<String>) -> Tool {
        Tool { setting, program: program.into() }
    }
}

impl Directory {
    /// The directory `path`, named by `setting`.
    pub fn new(setting: &'static str, path: impl Into<String>) -> Directory {
        Directory { setting, path: path.into() }
    }
}

/// A backup backend: it runs the main step of a job, and its own post steps after success.
pub trait BackupBackend: Send + Sync + 'static {
    /// The name jobs use (`backend: rdiff`).
    fn name(&self) -> &'static str;

    /// One line for `ari backends`.
    fn summary(&self) -> &'static str;

    /// Whether the store tells its backups apart by the second (rdiff-backup names an increment
    /// by it and refuses a second one within it; ZFS records a snapshot's creation by it, which
    /// orders `ari history` and `--at`): the engine then starts a run no earlier than the second
    /// after the job's last run ended. False by default: no wait.
    fn names_backups_by_the_second(&self) -> bool {
        false
    }

    /// The local programs whose version the probe reads (`job.tool_version`): the engine runs
    /// `PROGRAM --version` for each before the probe, and never runs anything a plugin did not
    /// name here. None by default.
    fn probed_versions(&self, _job: &JobContext) -> Vec<String> {
        Vec::new()
    }

    /// Gathers what building the steps needs to know about the system (a tool's version),
    /// before the plan is built; the facts come back in the context (`job.facts()`). It may
    /// only ask (`job.tool_version`): `ari plan` and `ari check` run it too.
    fn probe(&self, _job: &JobContext) -> Result<Facts, ConfigError> {
        Ok(Facts::new())
    }

    /// Checks the job and its settings (required settings, combinations) before anything runs.
    fn check(&self, job: &JobContext) -> Result<(), ConfigError>;

    /// The local programs the job needs; all are looked up before the first job starts.
    fn tools(&self, job: &JobContext) -> Vec<Tool>;

    /// The local directories that must exist before the job starts (the backup store); checked
    /// with the tools.
    fn directories(&self, _job: &JobContext) -> Vec<Directory> {
        Vec::new()
    }

    /// The main step or steps: the backup itself.
    fn main_steps(&self, job: &JobContext) -> Result<Vec<Step>, ConfigError>;

    /// Steps after the snapshot is gone (retention, expiry); none by default. The pipeline runs
    /// them as a chain, whatever `when` they carry: each only after a successful backup and
    /// after every one before it succeeded.
    fn post_steps(&self, _job: &JobContext) -> Result<Vec<Step>, ConfigError> {
        Ok(Vec::new())
    }

    /// How the store's retention lists, judges and destroys its backups; none by default (a
    /// backend whose retention is one command of its tool's, as rdiff-backup's `remove
    /// increments`, runs it as a post step). The engine adds the step after the post steps and
    /// runs it only after a successful backup, unless the stale guard holds; `ari plan
    /// --preview`, `ari history` and `ari prune` show and apply the same judgement.
    fn retention(&self, _job: &JobContext) -> Result<Option<Retention>, ConfigError> {
        Ok(None)
    }

    /// How `ari history` lists the backups the job's store holds; none by default (the backend
    /// keeps no history ari can read).
    fn history(&self, _job: &JobContext) -> Result<Option<HistoryQuery>, ConfigError> {
        Ok(None)
    }

    /// How `ari restore` copies `request.path` out of the store; none by default (`ari restore`
    /// then says that the backend cannot restore). The copy runs on the backup server, as root
    /// when ari is; the engine resolved the request's time, checked its path, and made the
    /// private directory the copy goes into (see [`RestoreRequest`]).
    fn restore(&self, _job: &JobContext, _request: &RestoreRequest) -> Result<Option<Restore>, ConfigError> {
        Ok(None)
    }

    /// What a spot check of the job's backup compares (`verify_sample`): the files the job backs
    /// up, by the backend's own include and exclude rules, and where the store holds them; none
    /// by default (a job that sets `verify_sample` is then refused). The engine builds, runs and
    /// judges the check: see [`Sample`].
    fn sample(&self, _job: &JobContext) -> Result<Option<Sample>, ConfigError> {
        Ok(None)
    }

    /// Where the job's database dumps (`dumps:`) land; none by default (a job with dumps is
    /// then refused). Asked only of a job that has dumps. The engine streams each dump into the
    /// directory and checks it; the backend keeps the directory with its backup: inside what
    /// it backs up and snapshots (zfs), or versioned by a step of its own (rdiff).
    fn dump_store(
        &self,
        _job: &JobContext,
    ) -> Result<Option<crate::contract::dump_store::DumpStore>, ConfigError> {
        Ok(None)
    }

    /// The checks of the whole store that `ari verify --full` runs after its spot check, given
    /// the backups `history` listed (oldest first): the tool's own verification of what it
    /// stored, the health of the disks under it; none by default.
    fn store_checks(
        &self,
        _job: &JobContext,
        _backups: &[StoredBackup],
    ) -> Result<Vec<StoreCheck>, ConfigError> {
        Ok(Vec::new())
    }

    /// How to read the capacity of the job's store (its size and free space) and the health of
    /// the pool under it, which the engine checks before the job's `pre` commands against
    /// `min_free_space` and the pool's state (see [`CapacityQuery`]); none by default (nothing is
    /// checked).
    ///
    /// [`CapacityQuery`]: crate::capacity::CapacityQuery
    fn capacity(
        &self,
        _job: &JobContext,
    ) -> Result<Option<crate::contract::capacity::CapacityQuery>, ConfigError> {
        Ok(None)
    }

    /// The lines of a failed command's output that an error about it shows (its last ten), from
    /// the output's non-empty lines: all of them by default. A backend whose tool buries its
    /// cause under lines that say little cuts them here (rdiff-backup's Python tracebacks, down
    /// to their exception line), so that what came before (ssh's `Connection refused`) stays
    /// among the lines shown. A tool's output reaches other commands' errors too (through ssh,
    /// from a hook that runs it), so the engine gives every failed command's lines to every
    /// linked backend in turn: a backend keeps, as they are, the lines it does not know.
    fn error_lines<'a>(&self, lines: Vec<&'a str>) -> Vec<&'a str> {
        lines
    }
}

/// A snapshot source: it makes a frozen view of the source host's files before the backup and
/// removes it after, whatever happened.
pub trait SnapshotSource: Send + Sync + 'static {
    /// The name jobs use (`snapshot: lvm`).
    fn name(&self) -> &'static str;

    /// One line for `ari backends`.
    fn summary(&self) -> &'static str;

    /// Checks the job (volumes, settings) before anything runs.
    fn check(&self, job: &JobContext) -> Result<(), ConfigError>;

    /// The local programs the job needs.
    fn tools(&self, job: &JobContext) -> Vec<Tool>;

    /// Where the frozen view is visible on the source host, as an absolute path.
    fn root(&self, job: &JobContext) -> String;

    /// The steps that make the view, in order; each carries the step that undoes it, which the
    /// pipeline runs in reverse order once the step succeeded.
    fn steps(&self, job: &JobContext) -> Result<Vec<Step>, ConfigError>;
}

#[doc(hidden)]
pub struct BackendRegistration(pub &'static dyn BackupBackend);
#[doc(hidden)]
pub struct SourceRegistration(pub &'static dyn SnapshotSource);

inventory::collect!(BackendRegistration);
inventory::collect!(SourceRegistration);

/// Registers a [`BackupBackend`]: `ari_core::register_backend!(RdiffBackend);`
#[macro_export]
macro_rules! register_backend {
    ($backend:expr) => {
        $crate::inventory::submit! { $crate::plugin::BackendRegistration(&$backend) }
    };
}

/// Registers a [`SnapshotSource`]: `ari_core::register_source!(LvmSource);`
#[macro_export]
macro_rules! register_source {
    ($source:expr) => {
        $crate::inventory::submit! { $crate::plugin::SourceRegistration(&$source) }
    };
}

/// Every registered backend.
#[doc(hidden)]
pub fn backends() -> impl Iterator<Item = &'static dyn BackupBackend> {
    inventory::iter::<BackendRegistration>.into_iter().map(|r| r.0)
}

/// Every registered snapshot source.
#[doc(hidden)]
pub fn sources() -> impl Iterator<Item = &'static dyn SnapshotSource> {
    inventory::iter::<SourceRegistration>.into_iter().map(|r| r.0)
}

/// The backend of that name.
#[doc(hidden)]
pub fn backend(name: &str) -> Option<&'static dyn BackupBackend> {
    backends().find(|b| b.name() == name)
}

/// The snapshot source of that name.
#[doc(hidden)]
pub fn source(name: &str) -> Option<&'static dyn SnapshotSource> {
    sources().find(|s| s.name() == name)
}

/// Joins paths as paths: `join("/tmp/label", "/var/lib")` is `/tmp/label/var/lib`, never with
/// `//`, and `join("/tmp/label", "/")` is `/tmp/label`.
pub fn join_path(base: &str, path: &str) -> String {
    let mut joined: PathBuf = std::path::Path::new(base).components().collect();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        joined.push(part);
    }
    joined.to_string_lossy().into_owned()
}

/// `path` relative to `root` (both absolute paths), if it is `root` or below it: `/srv/www` in
/// `/srv` is `www`, `/srv` in `/srv` is empty, `/srvx` is not in `/srv`.
pub fn relative_to<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    let root = root.trim_end_matches('/');
    let rest = path.strip_prefix(root)?;
    (rest.is_empty() || rest.starts_with('/') || root.is_empty()).then(|| rest.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_relative_to_a_root_is_below_it_or_nothing() {
        assert_eq!(relative_to("/srv/www/x", "/srv"), Some("www/x"));
        assert_eq!(relative_to("/srv", "/srv/"), Some(""));
        assert_eq!(relative_to("/etc/hosts", "/"), Some("etc/hosts"));
        assert_eq!(relative_to("/srvx", "/srv"), None);
        assert_eq!(relative_to("/etc", "/srv"), None);
    }

    #[test]
    fn a_required_setting_is_its_value_or_an_error_that_says_where_to_set_it() {
        use crate::contract::testkit::TestJob;
        static STORE: Setting<Option<String>> = Setting::new("store_path", "tester", None, "a store");
        let job = TestJob::parse("include: [/etc]\nremote_user: backup\n");
        assert_eq!(job.context().require(&crate::contract::core_settings::REMOTE_USER), Ok("backup".into()));
        assert_eq!(
            job.context().require(&STORE).unwrap_err().to_string(),
            "/etc/ari-backup/jobs.d/test.yaml: store_path: required by the tester backend; set it in the job file or the global config"
        );
    }

    #[test]
    fn paths_join_without_double_slashes() {
        let check = |base: &str, path: &str, expected: &str| assert_eq!(join_path(base, path), expected);
        check("/tmp/label", "/var/lib", "/tmp/label/var/lib");
        check("/tmp/label/", "var/lib/", "/tmp/label/var/lib");
        check("/tmp/label", "/", "/tmp/label");
        check("/", "/etc", "/etc");
        check("/tmp//x", "//etc", "/tmp/x/etc");
    }
}
