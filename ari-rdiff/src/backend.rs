//! The rdiff backend: checks, tools, the backup step and the retention step.

use ari_core::dump_store::DumpStore;
use ari_core::job::dump::DUMPS_DIR;
use ari_core::kinds;
use ari_core::plugin::{
    join_path, relative_to, BackupBackend, Directory, Facts, HistoryQuery, JobContext, Restore,
    RestoreRequest, StoredBackup, Tool,
};
use ari_core::sample::{Sample, StoreCheck};
use ari_core::step::{Command, CommandPattern, Host, Phase, Step};
use ari_core::ConfigError;

use crate::argv::{self, Backup, Cli, Source};
use crate::confine::{self, Confinement};
use crate::settings::*;

/// The rdiff-backup backend, registered as `rdiff`.
pub struct RdiffBackend;

ari_core::register_backend!(RdiffBackend);

impl RdiffBackend {
    fn destination(job: &JobContext) -> Result<String, ConfigError> {
        Ok(join_path(&job.require(&BACKUP_STORE_PATH)?, &job.job().label))
    }

    /// Where the job's dumps land, and the store rdiff-backup versions them into.
    fn dump_stores(job: &JobContext) -> Result<(String, String), ConfigError> {
        let dumps = join_path(&job.require(&BACKUP_STORE_PATH)?, DUMPS_DIR);
        let label = &job.job().label;
        Ok((join_path(&join_path(&dumps, ".incoming"), label), join_path(&dumps, label)))
    }

    /// The source root as rdiff-backup reads it: the snapshot's mount base, or top_level_src_dir.
    fn root(job: &JobContext) -> String {
        job.snapshot_root().unwrap_or_else(|| job.get(&TOP_LEVEL_SRC_DIR))
    }

    fn confinement(job: &JobContext) -> Confinement {
        Confinement::from_setting(&job.get(&RDIFF_BACKUP_SERVER_CONFINEMENT))
    }

    /// The command line to use: as set, or as the probe found from rdiff-backup's version.
    fn cli(job: &JobContext) -> Cli {
        match job.get(&RDIFF_BACKUP_CLI).as_str() {
            "legacy" => Cli::Legacy,
            "auto" if job.facts().get(CLI_FACT) == Some("legacy") => Cli::Legacy,
            _ => Cli::New,
        }
    }
}

/// The fact the probe records: the command line rdiff-backup's version calls for.
const CLI_FACT: &str = "rdiff_backup_cli";

impl BackupBackend for RdiffBackend {
    fn name(&self) -> &'static str {
        "rdiff"
    }

    fn summary(&self) -> &'static str {
        "rdiff-backup from the source host into BACKUP_STORE_PATH/LABEL, with reverse increments"
    }

    /// An increment is named by its second, and rdiff-backup refuses a second backup within it.
    fn names_backups_by_the_second(&self) -> bool {
        true
    }

    /// rdiff-backup fails with a Python traceback: each is cut to its exception line.
    fn error_lines<'a>(&self, lines: Vec<&'a str>) -> Vec<&'a str> {
        crate::tracebacks::without_tracebacks(lines)
    }

    /// Which command line the installed rdiff-backup takes, when `rdiff_backup_cli` is `auto`.
    fn probed_versions(&self, job: &JobContext) -> Vec<String> {
        if job.get(&RDIFF_BACKUP_CLI) == "auto" {
            vec![job.get(&RDIFF_BACKUP_PATH)]
        } else {
            Vec::new()
        }
    }

    fn probe(&self, job: &JobContext) -> Result<Facts, ConfigError> {
        let mut facts = Facts::new();
        if job.get(&RDIFF_BACKUP_CLI) != "auto" {
            return Ok(facts);
        }
        let program = job.get(&RDIFF_BACKUP_PATH);
        // A missing binary is reported with every other missing tool; until then assume new.
        let Some(version) = job.tool_version(&program).map_err(|err| {
            job.error_at("rdiff_backup_path", format!("cannot ask `{program}` its version: {err}"))
        })?
        else {
            return Ok(facts);
        };
        let cli = argv::cli_for_version(&version).ok_or_else(|| {
            job.error_at(
                "rdiff_backup_path",
                format!("`{program} --version` printed `{version}`, which is no version; set rdiff_backup_cli to new or legacy"),
            )
        })?;
        facts.insert(CLI_FACT, if cli == Cli::Legacy { "legacy" } else { "new" });
        Ok(facts)
    }

    fn check(&self, job: &JobContext) -> Result<(), ConfigError> {
        RdiffBackend::destination(job)?;
        if job.job().include.is_empty() {
            return Err(job.error_at("include", "the rdiff backend needs at least one path to back up"));
        }
        // rdiff-backup's selection: absolute paths, or globs starting with `/` (`**` in an
        // exclude), naming no `.` or `..` (which, with a snapshot, could leave it). An include
        // that matches the whole tree is written `/`; an exclude of the whole tree is refused,
        // since the excludes come first and it would leave nothing to back up.
        let entry_error = |key: &str, i: usize, entry: &str, why: &str| {
            job.error_at(&format!("{key}[{i}]"), format!("`{}` {why}", kinds::shown(entry)))
        };
        for (i, entry) in job.job().include.iter().enumerate() {
            crate::selection::check_include(entry).map_err(|why| entry_error("include", i, entry, &why))?;
        }
        for (i, entry) in job.job().exclude.iter().enumerate() {
            crate::selection::check_pattern(entry).map_err(|why| entry_error("exclude", i, entry, &why))?;
            if kinds::is_whole_tree_glob(entry) || entry.trim_end_matches('/').is_empty() {
                return Err(entry_error(
                    "exclude",
                    i,
                    entry,
                    "excludes the whole tree, and the excludes come before the includes: nothing would be backed up",
                ));
            }
        }
        // A backup at a time of its own is one run's: in a file, every later run would be
        // refused by rdiff-backup (a backup older than the last).
        if job.set_in_a_file(&RDIFF_BACKUP_OPTIONS)
            && crate::options::sets_the_time(&job.get(&RDIFF_BACKUP_OPTIONS))
        {
            return Err(job.error_at(
                "rdiff_backup_options",
                "`--current-time` gives one run's backup a time of its own; set in a file, every run after the first fails (rdiff-backup takes no backup older than the last): pass it with --set for that run",
            ));
        }
        if let Host::Remote(host) = job.source_host() {
            // rdiff-backup splits HOST::PATH at `::`, and fills in its remote schema (which
            // names the job's ssh wrapper, under state_dir) with Python's format.
            if host.contains(':') {
                return Err(job.error_at(
                    "source_hostname",
                    format!("`{host}`: rdiff-backup cannot reach an IPv6 address (it splits HOST::PATH at `::`); give the host a name in /etc/hosts or a Host alias in an ssh_config"),
                ));
            }
            let confinement = RdiffBackend::confinement(job);
            let root = RdiffBackend::root(job);
            if let Some(why) = confine::unfit_root(confinement, &root) {
                let key = if job.snapshot_root().is_some() { "snapshot" } else { "top_level_src_dir" };
                return Err(job.error_at(key, format!("`{}`: {why}", kinds::shown(&root))));
            }
            // A system unit needs root on the host: through sudo, or as root itself.
            let user = job.get(&ari_core::core_settings::REMOTE_USER);
            if confinement == Confinement::Systemd
                && !job.get(&ari_core::core_settings::REMOTE_SUDO)
                && user.as_deref().is_some_and(|user| user != "root")
            {
                return Err(job.error_at(
                    "remote_user",
                    format!(
                        "`{}`: rdiff-backup's server runs in a systemd unit (rdiff_backup_server_confinement: systemd), which only root may start: set remote_sudo: true, or rdiff_backup_server_confinement: none, with which ari's key runs any code there as that user (SECURITY.md)",
                        user.unwrap_or_default()
                    ),
                ));
            }
            let state_dir = job.get(&ari_core::core_settings::STATE_DIR);
            if state_dir.contains(['{', '}', '%']) {
                return Err(job.error_at(
                    "state_dir",
                    format!("`{}`: rdiff-backup reaches a remote source through ari's ssh wrapper under state_dir, and its --remote-schema cannot name a path with `{{`, `}}` or `%`", kinds::shown(&state_dir)),
                ));
            }
        }
        Ok(())
    }

    fn tools(&self, job: &JobContext) -> Vec<Tool> {
        // `stat` reads the store's capacity before the job's hooks.
        vec![
            Tool::new("rdiff_backup_path", job.get(&RDIFF_BACKUP_PATH)),
            Tool::new("backup_store_path", "stat"),
        ]
    }

    /// The filesystem of the job's store, as `stat --file-system` reads it.
    fn capacity(&self, job: &JobContext) -> Result<Option<ari_core::capacity::CapacityQuery>, ConfigError> {
        crate::capacity::query(job)
    }

    fn directories(&self, job: &JobContext) -> Vec<Directory> {
        job.get(&BACKUP_STORE_PATH)
            .map(|path| Directory::new("backup_store_path", path))
            .into_iter()
            .collect()
    }

    fn main_steps(&self, job: &JobContext) -> Result<Vec<Step>, ConfigError> {
        let cli = RdiffBackend::cli(job);
        let program = job.get(&RDIFF_BACKUP_PATH);
        let options = job.get(&RDIFF_BACKUP_OPTIONS);
        let ssh = job.ssh();
        let ssh_wrapper = job.ssh_wrapper();
        // With a snapshot, paths in the job are written as on the host and read from the
        // snapshot's mount base instead.
        let snapshot_root = job.snapshot_root();
        let rewrite = |paths: &[String]| -> Vec<String> {
            match &snapshot_root {
                Some(base) => paths.iter().map(|p| rewrite_into(base, p)).collect(),
                None => paths.to_vec(),
            }
        };
        let include = rewrite(&job.job().include);
        let exclude = rewrite(&job.job().exclude);
        let root = RdiffBackend::root(job);
        let confinement = RdiffBackend::confinement(job);
        let server = confine::server_line(cli, confinement, &root);
        let source = match job.source_host() {
            Host::Local => Source::Local { root },
            Host::Remote(host) => Source::Remote { host, root },
        };
        let destination = RdiffBackend::destination(job)?;
        let argv = Backup {
            program: &program,
            cli,
            options: &options,
            ssh_compression: job.get(&SSH_COMPRESSION),
            ssh: &ssh,
            ssh_wrapper: &ssh_wrapper,
            server: &server,
            include: &include,
            exclude: &exclude,
            source,
            destination: &destination,
        }
        .argv();
        let mut step = Step::run(Phase::Main, "rdiff-backup", Command::argv(Host::Local, argv))
            .reporting(argv::statistics);
        // A session that does not end normally leaves the store to regress: deliberately, once
        // the engine has proven the session's process gone.
        for repair in crate::repair::repairs(&program, cli, &destination) {
            step = step.repaired_by(repair);
        }
        if let Host::Remote(host) = job.source_host() {
            // What rdiff-backup starts on the source host through the job's ssh wrapper.
            step = step.may_run(
                CommandPattern::exact(Host::Remote(host), server).noting(confine::note(confinement)),
            );
        }
        Ok(vec![step])
    }

    fn history(&self, job: &JobContext) -> Result<Option<HistoryQuery>, ConfigError> {
        let destination = RdiffBackend::destination(job)?;
        let argv = argv::list_increments(&job.get(&RDIFF_BACKUP_PATH), RdiffBackend::cli(job), &destination);
        // Before its first backup the store has no rdiff-backup-data, which rdiff-backup's
        // listing calls an error ("couldn't be identified as being within an existing backup
        // repository").
        let data = format!("{}/rdiff-backup-data", destination.trim_end_matches('/'));
        Ok(Some(HistoryQuery::new(Command::argv(Host::Local, argv), argv::increments).marked_by(data)))
    }

    /// The mirror holds the root's files at their paths, beside `rdiff-backup-data`.
    fn sample(&self, job: &JobContext) -> Result<Option<Sample>, ConfigError> {
        let options = job.get(&RDIFF_BACKUP_OPTIONS);
        if let Some(option) = crate::options::changes_the_selection(&options) {
            return Err(job.error_at(
                "rdiff_backup_options",
                format!("`{option}` changes which files rdiff-backup stores beyond include and exclude, which the spot check (verify_sample) lists by: it would call what it leaves out missing, every run; drop it or verify_sample"),
            ));
        }
        let root = if job.snapshot_root().is_some() { "/".to_string() } else { job.get(&TOP_LEVEL_SRC_DIR) };
        let mut sample = Sample::new(root.clone(), Host::Local, RdiffBackend::destination(job)?)
            .beside_the_backup(Sample::literal("/rdiff-backup-data"));
        for entry in &job.job().include {
            if let Some((base, rule)) = crate::selection::sample_rule(entry, &root) {
                sample = sample.including(base, rule);
            }
        }
        for entry in &job.job().exclude {
            if let Some((_, rule)) = crate::selection::sample_rule(entry, &root) {
                sample = sample.excluding(rule);
            }
        }
        // rdiff-backup maps owners by name unless told to keep their numbers; on one host the
        // names are the same users.
        if job.source_host().is_local() || crate::options::keeps_numeric_owners(&options) {
            sample = sample.comparing_owners();
        }
        Ok(Some(sample))
    }

    /// rdiff-backup's own `verify` of the mirror (the newest backup) and of the oldest backup,
    /// whose files it rebuilds through every increment in between: a damaged mirror file or a
    /// damaged increment on the way fails one of them (exit 2, naming the file).
    fn store_checks(
        &self,
        job: &JobContext,
        backups: &[StoredBackup],
    ) -> Result<Vec<StoreCheck>, ConfigError> {
        let (program, cli, store) =
            (job.get(&RDIFF_BACKUP_PATH), RdiffBackend::cli(job), RdiffBackend::destination(job)?);
        let mut checks = vec![StoreCheck::new(
            "rdiff-backup verify of the mirror",
            Command::argv(Host::Local, argv::verify(&program, cli, None, &store)),
        )];
        if let [oldest, _, ..] = backups {
            let time = oldest.time().to_string();
            checks.push(StoreCheck::new(
                format!("rdiff-backup verify of the oldest backup ({})", oldest.name()),
                Command::argv(Host::Local, argv::verify(&program, cli, Some(&time), &store)),
            ));
        }
        // The dumps' own store (`ari restore --dump` restores out of it).
        if !job.job().dumps.is_empty() {
            let (_, versioned) = RdiffBackend::dump_stores(job)?;
            checks.push(StoreCheck::new(
                "rdiff-backup verify of the dump store's mirror",
                Command::argv(Host::Local, argv::verify(&program, cli, None, &versioned)),
            ));
        }
        Ok(checks)
    }

    fn restore(&self, job: &JobContext, request: &RestoreRequest) -> Result<Option<Restore>, ConfigError> {
        // The repository mirrors the source root: with a snapshot, the host's `/` as the
        // snapshot's mount base shows it; without, top_level_src_dir.
        let root = match job.snapshot_root() {
            Some(_) => "/".to_string(),
            None => job.get(&TOP_LEVEL_SRC_DIR),
        };
        let relative = relative_to(request.path(), &root).ok_or_else(|| {
            job.error_at(
                "top_level_src_dir",
                format!(
                    "`{}` is not under the job's source root {root}, which the store mirrors",
                    request.path()
                ),
            )
        })?;
        let source = join_path(&RdiffBackend::destination(job)?, relative);
        let argv = argv::restore(
            &job.get(&RDIFF_BACKUP_PATH),
            RdiffBackend::cli(job),
            request.backup().name(),
            &source,
            request.target(),
        );
        // The target never exists (ari replaces an old one itself, after the copy), so
        // rdiff-backup needs no --force; a path the backup does not hold makes nothing.
        Ok(Some(Restore::new(Command::argv(Host::Local, argv))))
    }

    fn post_steps(&self, job: &JobContext) -> Result<Vec<Step>, ConfigError> {
        let Some(timespec) = job.get(&REMOVE_OLDER_THAN_TIMESPEC) else { return Ok(Vec::new()) };
        let mut stores = vec![("remove increments", RdiffBackend::destination(job)?)];
        if !job.job().dumps.is_empty() {
            stores.push(("remove dump increments", RdiffBackend::dump_stores(job)?.1));
        }
        // Exit status 2 is rdiff-backup's "warnings only", which retention gives when no
        // increment is old enough to remove: a normal night, not a failure. It is also
        // argparse's usage error, so only the warning's own words make it a success.
        Ok(stores
            .into_iter()
            .map(|(name, store)| {
                let argv =
                    argv::retention(&job.get(&RDIFF_BACKUP_PATH), RdiffBackend::cli(job), &timespec, &store);
                Step::run(Phase::Post, name, Command::argv(Host::Local, argv))
                    .tolerating(2, "No increment is older than")
            })
            .collect())
    }

    /// Dumps land beside the job stores, in `BACKUP_STORE_PATH/.ari-dumps/.incoming/LABEL`, and
    /// rdiff-backup versions that directory into `BACKUP_STORE_PATH/.ari-dumps/LABEL` (a store of
    /// its own, with the job's retention): no label starts with a dot, so neither can collide
    /// with a job's store.
    fn dump_store(&self, job: &JobContext) -> Result<Option<DumpStore>, ConfigError> {
        let (incoming, versioned) = RdiffBackend::dump_stores(job)?;
        let program = job.get(&RDIFF_BACKUP_PATH);
        let cli = RdiffBackend::cli(job);
        let argv = match cli {
            Cli::New => vec![program.clone(), "backup".to_string(), incoming.clone(), versioned.clone()],
            Cli::Legacy => vec![program.clone(), incoming.clone(), versioned.clone()],
        };
        let mut version = Step::run(Phase::Main, "version dumps", Command::argv(Host::Local, argv));
        // A session that does not end normally leaves the dump store to regress, as the job's.
        for repair in crate::repair::repairs(&program, cli, &versioned) {
            version = version.repaired_by(repair);
        }
        // `ari restore --dump`: the dump store's increments, and a dump out of one of them.
        let list = argv::list_increments(&program, cli, &versioned);
        let data = format!("{}/rdiff-backup-data", versioned.trim_end_matches('/'));
        let history = HistoryQuery::new(Command::argv(Host::Local, list), argv::increments).marked_by(data);
        let restore = move |request: &RestoreRequest| {
            let source = join_path(&versioned, request.path());
            let argv = argv::restore(&program, cli, request.backup().name(), &source, request.target());
            Ok(Restore::new(Command::argv(Host::Local, argv)))
        };
        Ok(Some(DumpStore::new(Host::Local, incoming).then(version).kept_apart(history, restore)))
    }
}

/// A path of the job moved into the snapshot's mount base; a pattern starting with `**` matches
/// anywhere already and stays as it is.
fn rewrite_into(base: &str, path: &str) -> String {
    if path.starts_with("**") {
        path.to_string()
    } else {
        join_path(base, path)
    }
}
