//! The zfs backend: checks, tools, the rsync step, the ZFS snapshot and expiry steps.

use ari_core::dump_store::DumpStore;
use ari_core::job::dump::DUMPS_DIR;
use ari_core::kinds;
use ari_core::plugin::{
    join_path, relative_to, BackupBackend, HistoryQuery, JobContext, PluginError, Restore, RestoreRequest,
    Retention, StoredBackup, Tool, Verdict,
};
use ari_core::sample::{Sample, StoreCheck};
use ari_core::step::{Command, CommandPattern, Handover, Host, Phase, Step};
use ari_core::ConfigError;

use crate::calendar::{Period, Policy};
use crate::expiry::{judge, Rules};
use crate::names::{
    is_zfs_name, rsync_destination_host, rsync_destination_path, timestamp, timestamp_width, FREE_SUFFIX_MAX,
    SNAPSHOT_NAME_MAX, ZFS_NAME,
};
use crate::settings::*;

/// The rsync-to-ZFS backend, registered as `zfs`.
pub struct ZfsBackend;

ari_core::register_backend!(ZfsBackend);

/// The required settings, checked.
struct Target {
    rsync_dst: String,
    zfs_host: Host,
    dataset: String,
}

fn target(job: &JobContext) -> Result<Target, ConfigError> {
    Ok(Target {
        rsync_dst: job.require(&RSYNC_DST)?,
        zfs_host: Host::named(&job.require(&ZFS_HOSTNAME)?),
        dataset: job.require(&DATASET_NAME)?,
    })
}

/// What keeps a snapshot: `snapshot_expiration_days`, `zfs_keep` (one of them is required) and
/// `zfs_keep_min`.
pub(crate) fn rules(job: &JobContext) -> Result<Rules, ConfigError> {
    let expiration_days = job.get(&SNAPSHOT_EXPIRATION_DAYS);
    let counts = job.get(&ZFS_KEEP).unwrap_or_default();
    // The setting's kind allows only the periods' names.
    let calendar = Policy {
        rules: counts.0.iter().filter_map(|(name, count)| Some((Period::named(name)?, *count))).collect(),
    };
    if expiration_days.is_none() && calendar.rules.is_empty() {
        return Err(ConfigError::in_file(
            &job.job().path,
            "snapshot_expiration_days or zfs_keep: the zfs backend needs one (or both) to know which snapshots to keep; set it in the job file or the global config",
        ));
    }
    let named = Some(job.get(&ZFS_SNAPSHOT_TIMESTAMP_FORMAT));
    Ok(Rules { expiration_days, calendar, keep_min: job.get(&ZFS_KEEP_MIN), named })
}

/// `wanted`, or the first of `wanted-2`, `wanted-3`, ... that the listing (of `zfs list -H -o
/// name,...`) does not hold.
fn free_name(listing: &str, wanted: &str) -> String {
    let taken: std::collections::BTreeSet<&str> =
        listing.lines().filter_map(|line| line.split('\t').next()).collect();
    std::iter::once(wanted.to_string())
        .chain((2..).map(|n| format!("{wanted}-{n}")))
        .find(|name| !taken.contains(name.as_str()))
        .unwrap_or_else(|| wanted.to_string())
}

impl BackupBackend for ZfsBackend {
    fn name(&self) -> &'static str {
        "zfs"
    }

    fn summary(&self) -> &'static str {
        "rsync from the source host into a ZFS dataset, then a ZFS snapshot, then expiry"
    }

    /// ZFS records a snapshot's creation by the second, which orders `ari history` and `--at`:
    /// two snapshots of one second could not be told apart.
    fn names_backups_by_the_second(&self) -> bool {
        true
    }

    fn check(&self, job: &JobContext) -> Result<(), ConfigError> {
        // Each value was checked for what it is when it was read (crate::names).
        let target = target(job)?;
        rules(job)?;
        // The snapshot name as it can be at its longest, whatever the time and time zone.
        let prefix = job.get(&ZFS_SNAPSHOT_PREFIX);
        let stamp = timestamp_width(&job.get(&ZFS_SNAPSHOT_TIMESTAMP_FORMAT))
            .map_err(|why| job.error_at("zfs_snapshot_timestamp_format", why))?;
        let longest = target.dataset.len() + 1 + prefix.len() + stamp + FREE_SUFFIX_MAX;
        if longest > SNAPSHOT_NAME_MAX {
            return Err(job.error_at(
                "zfs_snapshot_timestamp_format",
                format!(
                    "snapshot names `{}@{prefix}` and a timestamp of up to {stamp} characters (and a `-N` when the name is taken) can be {longest} characters long, more than the {SNAPSHOT_NAME_MAX} ZFS takes: shorten the format or zfs_snapshot_prefix",
                    target.dataset
                ),
            ));
        }
        // rsync sends the includes (`--relative`): absolute, normalised paths, which rsync
        // takes as they are written (it expands no `*` in a local path: `/home/*` would be a
        // file named `*`), `/` for everything. Excludes are rsync patterns, relative ones
        // included (`*.tmp`), never naming `..`, and none of the whole tree.
        for (i, path) in job.job().include.iter().enumerate() {
            let glob = || {
                path.contains(['*', '?']).then(|| {
                    "is a glob, which rsync does not expand in the paths it sends: name the paths, or `/` for everything".to_string()
                })
            };
            let whole = || {
                kinds::is_whole_tree_glob(path)
                    .then(|| "is a glob of the whole tree: write `/` to send everything".to_string())
            };
            if let Some(why) = whole().or_else(|| kinds::PATH.check(path).err()).or_else(glob) {
                return Err(job.error_at(&format!("include[{i}]"), format!("`{}` {why}", kinds::shown(path))));
            }
        }
        for (i, pattern) in job.job().exclude.iter().enumerate() {
            let why = if pattern.split('/').any(|part| part == "..") || pattern.starts_with('-') {
                "is no rsync exclude pattern ari takes (`..` parts, or a leading `-`)"
            } else if kinds::is_whole_tree_glob(pattern) {
                "excludes the whole tree: nothing would be sent"
            } else {
                continue;
            };
            return Err(job.error_at(&format!("exclude[{i}]"), format!("`{}` {why}", kinds::shown(pattern))));
        }
        // A remote source host pushes into rsync_dst itself, so it can replace what is there
        // before the ZFS snapshot: a dump of another host (or of the backup server) would be
        // only as true as this host. Its own dumps it could forge anyway.
        if !job.source_host().is_local() {
            for (i, dump) in job.job().dumps.iter().enumerate() {
                let host = dump.host.as_deref().unwrap_or(&job.job().source_hostname);
                if Host::named(host) != job.source_host() {
                    return Err(job.error_at(
                        &format!("dumps[{i}].host"),
                        format!(
                            "`{host}` is not the source host: {} writes rsync_dst itself, and could replace this dump before the ZFS snapshot; dump it in a job of its own host",
                            job.job().source_hostname
                        ),
                    ));
                }
            }
        }
        crate::rrsync::check_rsync_options(&job.get(&RSYNC_OPTIONS))
            .map_err(|why| job.error_at("rsync_options", why))?;
        if job.snapshot_root().is_none() && job.job().include.is_empty() {
            return Err(job.error_at(
                "include",
                "without a snapshot source, the zfs backend sends only what include lists",
            ));
        }
        Ok(())
    }

    fn tools(&self, job: &JobContext) -> Vec<Tool> {
        let mut tools = Vec::new();
        if job.source_host().is_local() {
            tools.push(Tool::new("rsync_path", job.get(&RSYNC_PATH)));
        }
        if job.get(&ZFS_HOSTNAME).is_some_and(|host| Host::named(&host).is_local()) {
            tools.push(Tool::new("zfs_hostname", "zfs".to_string()));
            // `zpool status` reads the pool's health before the job's hooks.
            tools.push(Tool::new("zfs_hostname", "zpool".to_string()));
        }
        tools
    }

    /// The dataset's available and used bytes, and its pool's health.
    fn capacity(&self, job: &JobContext) -> Result<Option<ari_core::capacity::CapacityQuery>, ConfigError> {
        let target = target(job)?;
        Ok(Some(crate::capacity::query(target.zfs_host, &target.dataset)))
    }

    fn main_steps(&self, job: &JobContext) -> Result<Vec<Step>, ConfigError> {
        let target = target(job)?;
        let mut argv = vec![job.get(&RSYNC_PATH)];
        if job.source_host().is_local() {
            // rsync on the backup server reaches the ZFS host through the job's ssh wrapper:
            // the job's ssh settings as exact words, its shared connection, ari's remote wrapper.
            argv.extend(["-e".to_string(), ari_core::quote::rsync_rsh_join([job.ssh_wrapper()])]);
        } else {
            // rsync on the source host reaches the ZFS host with the job's ssh settings (rsync
            // splits -e on spaces and honours quotes, as a shell would for these words), and the
            // rsync it starts there stops once that connection is gone.
            let ssh = job.ssh();
            let mut e = ssh.base_argv();
            if let Some(user) = ssh.remote_user() {
                e.extend(["-l".to_string(), user.to_string()]);
            }
            argv.extend(["-e".to_string(), ari_core::quote::rsync_rsh_join(&e)]);
            argv.push(format!("--rsync-path={}", ari_core::ssh::watched(&ssh.remote_program("rsync"))));
        }
        // The transfer's statistics on stdout, for the job's metrics.
        argv.push("--stats".to_string());
        // The admin's options come after ari's: rsync keeps the last of an option.
        argv.extend(job.get(&RSYNC_OPTIONS));
        argv.extend(["--exclude".to_string(), "/.zfs".to_string()]);
        if !job.job().dumps.is_empty() {
            // The dumps ari wrote into the destination before rsync: never deleted there
            // (`P`, which only the receiving side reads), never sent from the host.
            argv.extend([
                format!("--filter=P /{DUMPS_DIR}/"),
                "--exclude".to_string(),
                format!("/{DUMPS_DIR}"),
            ]);
        }
        for path in &job.job().exclude {
            argv.extend(["--exclude".to_string(), path.clone()]);
        }
        match (job.snapshot_root(), job.job().include.is_empty()) {
            (Some(base), true) => argv.push(format!("{}/", join_path(&base, "/"))),
            (Some(base), false) => {
                // `BASE/./etc` with --relative sends `etc` as if BASE were the root.
                argv.push("--relative".to_string());
                argv.extend(
                    job.job()
                        .include
                        .iter()
                        .map(|p| format!("{}/.{}", join_path(&base, "/"), join_path("/", p))),
                );
            }
            (None, _) => {
                argv.push("--relative".to_string());
                argv.extend(job.job().include.iter().cloned());
            }
        }
        // What rsync starts on the destination's host, through ssh: its server, receiving into
        // the destination's path, with the options it derives from rsync_options and then
        // ` . ` (its stand-in for the sending side) as the variable part. The host's filter
        // hands that to rsync's own restricted server, `rrsync -wo PATH`, as `rsync --server
        // OPTIONS . .`: rrsync checks every option against its tables, keeps every path it
        // takes inside PATH, and refuses to send (docs/hardening.md).
        let server = rsync_destination_host(&target.rsync_dst).map(|host| {
            let path = rsync_destination_path(&target.rsync_dst);
            CommandPattern::with_variable(
                Host::named(host),
                format!("rsync --server {{}}{path}"),
                crate::rrsync::RSYNC_SERVER_OPTIONS,
            )
            .handed_to(
                Handover::new(["rrsync", "-wo", path], "SSH_ORIGINAL_COMMAND", "rsync --server {}.")
                    .probed_by(["rrsync", "-help"]),
            )
        });
        argv.push(target.rsync_dst.clone());
        let mut step = Step::run(Phase::Main, "rsync", Command::argv(job.source_host(), argv))
            .reporting(rsync_statistics);
        if let Some(server) = server {
            step = step.may_run(server);
        }
        // The snapshot is part of the backup: taken right after rsync, while the source's
        // snapshot is still mounted, so that a spot check compares it with what rsync read.
        Ok(vec![step, snapshot_step(job, target.zfs_host.clone(), &target.dataset)])
    }

    fn history(&self, job: &JobContext) -> Result<Option<HistoryQuery>, ConfigError> {
        let target = target(job)?;
        Ok(Some(history_query(target.zfs_host, &target.dataset)))
    }

    /// The dataset's newest snapshot holds, at rsync_dst's place in it, what rsync sent from the
    /// root: found on the ZFS host by the listing itself (the snapshot's name is the run's).
    fn sample(&self, job: &JobContext) -> Result<Option<Sample>, ConfigError> {
        let target = target(job)?;
        let options = job.get(&RSYNC_OPTIONS);
        if let Some(option) = crate::rrsync::changes_the_selection(&options) {
            return Err(job.error_at(
                "rsync_options",
                format!("`{option}` changes which of the host's files the dataset holds beyond include and exclude (or keeps what the host deleted), which the spot check (verify_sample) lists by: it would fail every run; drop it (keep --delete) or verify_sample"),
            ));
        }
        let prefix = job.get(&ZFS_SNAPSHOT_PREFIX);
        let finder =
            on_newest_snapshot(&target, &prefix, SNAPSHOT_DIR, rsync_destination_path(&target.rsync_dst));
        // The snapshot the run compared gets its verdict as a user property.
        let mark = |verdict: &str| {
            let script = format!("zfs set {VERIFY_PROPERTY}=\"$3\" \"$snap\"");
            Command::argv(target.zfs_host.clone(), on_newest_snapshot(&target, &prefix, &script, verdict))
        };
        let mut sample = Sample::new("/", target.zfs_host.clone(), "/")
            .in_store_found_by(finder)
            .marked_by(mark("passed"), mark("failed"));
        let include = &job.job().include;
        if include.is_empty() {
            sample = sample.including("/", "");
        }
        for path in include {
            let path = join_path("/", path);
            sample = if path == "/" {
                sample.including("/", "")
            } else {
                sample.including(path.clone(), Sample::literal(&path))
            };
        }
        // rsync's own `--exclude /.zfs` (and the dumps' directory, checked by their formats
        // instead), then the job's.
        sample = sample.excluding(Sample::literal("/.zfs"));
        if !job.job().dumps.is_empty() {
            sample = sample.excluding(Sample::literal(&format!("/{DUMPS_DIR}")));
        }
        for pattern in &job.job().exclude {
            let rule = crate::selection::exclude_rule(pattern);
            sample = if rule.directories_only {
                sample.excluding_directories(rule.rule)
            } else {
                sample.excluding(rule.rule)
            };
        }
        if options.iter().any(|option| option == "--numeric-ids") {
            sample = sample.comparing_owners();
        }
        Ok(Some(sample))
    }

    /// Dumps land in `.ari-dumps` inside rsync_dst on the ZFS host, before rsync and the ZFS
    /// snapshot: one snapshot holds the files and the dumps of a run, and expiry treats them
    /// alike.
    fn dump_store(&self, job: &JobContext) -> Result<Option<DumpStore>, ConfigError> {
        let target = target(job)?;
        let directory = join_path(rsync_destination_path(&target.rsync_dst), DUMPS_DIR);
        // The dataset holds what rsync sent from the host's root at rsync_dst: a dump is the
        // path `/.ari-dumps/FILE` of every snapshot, restored as any path is.
        Ok(Some(DumpStore::new(target.zfs_host, directory).kept_in_backups(format!("/{DUMPS_DIR}"))))
    }

    /// The health of the dataset's pool and the age of its last scrub (`zpool status`).
    fn store_checks(
        &self,
        job: &JobContext,
        _backups: &[StoredBackup],
    ) -> Result<Vec<StoreCheck>, ConfigError> {
        let target = target(job)?;
        Ok(vec![pool_check(job, target.zfs_host, &target.dataset)])
    }

    fn restore(&self, job: &JobContext, request: &RestoreRequest) -> Result<Option<Restore>, ConfigError> {
        let target = target(job)?;
        let query = Command::argv(
            target.zfs_host.clone(),
            ["zfs", "get", "-H", "-p", "-o", "value", "mountpoint", &target.dataset],
        );
        // The dataset holds what rsync wrote to rsync_dst, a path inside its mount point; each
        // snapshot shows the dataset as it was under MOUNTPOINT/.zfs/snapshot/NAME.
        let written_to = rsync_destination_path(&target.rsync_dst).to_string();
        let options: Vec<String> = job.get(&RSYNC_OPTIONS);
        let keeps = |long: &str, short: char| {
            options
                .iter()
                .any(|o| o == long || (!o.starts_with("--") && o.starts_with('-') && o.contains(short)))
        };
        let mut argv = vec!["rsync".to_string(), "--archive".to_string(), "--numeric-ids".to_string()];
        argv.push("--hard-links".to_string());
        for (long, short) in [("--acls", 'A'), ("--xattrs", 'X')] {
            if keeps(long, short) {
                argv.push(long.to_string());
            }
        }
        let host = target.zfs_host;
        if let Host::Remote(_) = &host {
            argv.extend(["-e".to_string(), ari_core::quote::rsync_rsh_join([job.ssh_wrapper()])]);
        }
        let (request, dataset) = (request.clone(), target.dataset);
        // rsync's sender says so, and exits 23, when the snapshot has nothing at the path.
        let restore = Restore::after(query, move |printed: &str| {
            let mountpoint = printed.trim();
            if kinds::PATH.check(mountpoint).is_err() {
                return Err(PluginError::new(format!(
                    "the dataset {dataset} has the mountpoint `{}`; ari reads a snapshot under MOUNTPOINT/.zfs/snapshot, so the dataset must be mounted",
                    kinds::shown(mountpoint)
                )));
            }
            let inside = relative_to(&written_to, mountpoint).ok_or_else(|| {
                PluginError::new(format!(
                    "rsync_dst's path {written_to} is not inside the mount point {mountpoint} of {dataset}"
                ))
            })?;
            let snapshot = join_path(mountpoint, &format!(".zfs/snapshot/{}", request.backup().name()));
            let source = join_path(&join_path(&snapshot, inside), request.path());
            // rsync copies a path into a directory under its own name; the root's content into
            // the target itself.
            let (source, into) = if request.path().trim_matches('/').is_empty() {
                (format!("{source}/"), format!("{}/", request.target()))
            } else {
                let parent = std::path::Path::new(request.target())
                    .parent()
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "/".into());
                (source, format!("{}/", parent.trim_end_matches('/')))
            };
            let source = match &host {
                Host::Local => source,
                Host::Remote(name) if name.contains(':') => format!("[{name}]:{source}"),
                Host::Remote(name) => format!("{name}:{source}"),
            };
            let mut argv = argv.clone();
            argv.extend(["--".to_string(), source, into]);
            Ok(Command::argv(Host::Local, argv))
        });
        Ok(Some(restore.absent_when(23, "failed: No such file or directory (2)")))
    }

    fn retention(&self, job: &JobContext) -> Result<Option<Retention>, ConfigError> {
        let target = target(job)?;
        retention_of(job, target.zfs_host, &target.dataset).map(Some)
    }
}

/// The `zfs list` of `dataset`'s snapshots on `host` that `ari history` reads.
pub(crate) fn history_query(host: Host, dataset: &str) -> HistoryQuery {
    let query = Command::argv(
        host,
        ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name,creation,used", "-d", "1", dataset],
    );
    HistoryQuery::new(query, snapshot_listing)
}

/// `ari verify --full`'s check of the health of `dataset`'s pool and the age of its last scrub.
pub(crate) fn pool_check(job: &JobContext, host: Host, dataset: &str) -> StoreCheck {
    let pool = crate::capacity::pool_of(dataset).to_string();
    let max = job.get(&VERIFY_MAX_SCRUB_AGE).map(|age| age.as_secs());
    StoreCheck::new(format!("the health of pool {pool}"), crate::pool::status_command(host, &pool)).judged_by(
        move |printed: &str| {
            let status = crate::pool::read_status(printed)?;
            crate::pool::judge(&status, max, jiff::Timestamp::now().as_second()).map_err(PluginError::new)
        },
    )
}

/// Expiry of `dataset`'s own prefixed snapshots on `host`, by the job's rules: what the engine's
/// retention step judges and destroys.
pub(crate) fn retention_of(job: &JobContext, host: Host, dataset: &str) -> Result<Retention, ConfigError> {
    let listing = retention_listing(host.clone(), dataset);
    retention_listed_by(job, host, dataset, listing, |printed, _| Ok(printed.to_string()))
}

/// [`retention_of`], listed by `listing`, whose output `read` (given it and the dataset) turns
/// into [`retention_listing`]'s lines.
pub(crate) fn retention_listed_by(
    job: &JobContext,
    host: Host,
    dataset: &str,
    listing: Command,
    read: impl Fn(&str, &str) -> Result<String, String> + Send + Sync + 'static,
) -> Result<Retention, ConfigError> {
    let rules = rules(job)?;
    let target_dataset = dataset.to_string();
    let (dataset, prefix) = (dataset.to_string(), job.get(&ZFS_SNAPSHOT_PREFIX));
    let own = format!("{dataset}@{prefix}");
    let destroys = CommandPattern::argv_then(host.clone(), ["zfs", "destroy", &own], ZFS_NAME);
    // Periods are the backup server's local ones (TZ, or /etc/localtime).
    let tz = jiff::tz::TimeZone::system();
    let judge = move |listing: &str, now: i64| -> Result<Vec<Verdict>, PluginError> {
        let listing = read(listing, &dataset)?;
        let judged = judge(&listing, &dataset, &prefix, &rules, now, &tz)?;
        // zfs destroy only DATASET@PREFIX... of the job's own dataset, whatever the listing
        // held: never the dataset itself, a child, or another's snapshot.
        let own = format!("{dataset}@{prefix}");
        if let Some(other) = judged.iter().find(|j| !j.name.strip_prefix(&own).is_some_and(is_zfs_name)) {
            return Err(PluginError::new(format!(
                "refusing to judge `{}`: it is not a snapshot `{own}...`",
                other.name
            )));
        }
        // Named as the history names them: the snapshot's name after `@`.
        Ok(judged
            .into_iter()
            .map(|j| {
                let name = j.name[dataset.len() + 1..].to_string();
                let verdict =
                    Verdict::new(name, j.creation, j.kept_by.into_iter().map(String::from).collect());
                match j.store_dated {
                    Some(creation) => verdict.dated_by_store(creation),
                    None => verdict,
                }
            })
            .collect())
    };
    let destroy = move |name: &str| {
        Command::argv(host.clone(), ["zfs", "destroy", &format!("{target_dataset}@{name}")])
    };
    Ok(Retention::new("zfs expiry", listing, judge, destroy, destroys))
}

/// `zfs list` of the dataset's snapshots with their creation times and holds: what expiry
/// reads (a held snapshot is kept, `held`).
fn retention_listing(host: Host, dataset: &str) -> Command {
    Command::argv(
        host,
        ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name,creation,userrefs", "-d", "1", dataset],
    )
}

/// Sets `snap` to the newest of ari's snapshots of the dataset `$1` (`$1@$2...`) by creation
/// (`zfs list`, the listing the snapshot and expiry steps use, its order kept among equal
/// seconds; another tool's newer snapshots are passed over), and fails unless there is one
/// whose name is a name.
const NEWEST_SNAPSHOT: &str = "snap=$(zfs list -H -p -t snapshot -o name,creation -d 1 \"$1\" | sort -s -n -k2,2 | cut -f1 | \
{ last=; while IFS= read -r name; do case $name in \"$1@$2\"?*) last=$name ;; esac; done; printf '%s' \"$last\"; }); \
case ${snap#*@} in '' | */* | . | ..) echo \"ari-verify: $1 has no snapshot $1@$2... to compare\" >&2; exit 3 ;; esac; ";

/// After [`NEWEST_SNAPSHOT`], prints where that snapshot shows `$3` (rsync_dst's path, inside
/// the dataset's mount point): `MOUNTPOINT/.zfs/snapshot/NAME/...`, each directory below the
/// snapshot's root walked without a symlink; fails otherwise. It only reads (`zfs get
/// mountpoint`).
const SNAPSHOT_DIR: &str = "mp=$(zfs get -H -p -o value mountpoint \"$1\") || exit 3; \
case $3 in \"$mp\" | \"$mp\"/*) ;; *) echo \"ari-verify: $3 is not inside the mount point $mp of $1\" >&2; exit 3 ;; esac; \
dir=$mp/.zfs/snapshot/${snap#*@}; rest=${3#\"$mp\"}; rest=${rest#/}; \
while [ -n \"$rest\" ]; do dir=$dir/${rest%%/*}; { [ -d \"$dir\" ] && [ ! -L \"$dir\" ]; } || exit 3; \
case $rest in */*) rest=${rest#*/} ;; *) rest= ;; esac; done; \
printf '%s\\n' \"$dir\"";

/// The user property a run's spot check leaves on the snapshot it compared: `passed` or `failed`.
pub const VERIFY_PROPERTY: &str = "ari:verify";

/// The argv that runs `script` after [`NEWEST_SNAPSHOT`] with the dataset, the prefix and
/// `last` as `$1`, `$2` and `$3`.
fn on_newest_snapshot(target: &Target, prefix: &str, script: &str, last: &str) -> Vec<String> {
    vec![
        "sh".to_string(),
        "-c".to_string(),
        format!("{NEWEST_SNAPSHOT}{script}"),
        "ari-store".to_string(),
        target.dataset.clone(),
        prefix.to_string(),
        last.to_string(),
    ]
}

/// `zfs list` of the dataset's snapshots with their creation times: what names a new snapshot.
fn listing_query(host: Host, dataset: &str) -> Command {
    Command::argv(
        host,
        ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name,creation", "-d", "1", dataset],
    )
}

/// The `zfs snapshot` step of `dataset` on `host`: a dynamic step that names the snapshot when
/// it runs.
pub(crate) fn snapshot_step(job: &JobContext, host: Host, dataset: &str) -> Step {
    let query = listing_query(host.clone(), dataset);
    let (dataset, prefix) = (dataset.to_string(), job.get(&ZFS_SNAPSHOT_PREFIX));
    let format = job.get(&ZFS_SNAPSHOT_TIMESTAMP_FORMAT);
    // The snapshot is named when the step runs (a run-all job may start hours after it was
    // planned), and never as one the dataset already has: a second run within the
    // timestamp's minute gets `-2`.
    let pattern = format!("zfs snapshot {dataset}@{prefix}{format}");
    let name = {
        let (dataset, prefix, host) = (dataset.clone(), prefix.clone(), host.clone());
        move |listing: &str| -> Result<Vec<Command>, PluginError> {
            let stamp = timestamp(&format)?;
            let name = free_name(listing, &format!("{dataset}@{prefix}{stamp}"));
            // check() bounds what the format can give; this holds whatever a clock or a
            // listing says.
            if name.len() > SNAPSHOT_NAME_MAX {
                return Err(PluginError::new(format!(
                    "the snapshot name `{name}` is longer than the {SNAPSHOT_NAME_MAX} characters ZFS takes"
                )));
            }
            Ok(vec![Command::argv(host.clone(), ["zfs", "snapshot", &name])])
        }
    };
    let own = format!("{dataset}@{prefix}");
    Step::dynamic(Phase::Main, "zfs snapshot", query, name)
        .showing(pattern)
        .may_run(CommandPattern::argv_then(host.clone(), ["zfs", "snapshot", &own], ZFS_NAME))
}

/// The dataset's snapshots from `zfs list -H -p -o name,creation,used`: each snapshot's name
/// (after `@`), creation time and the space it holds.
fn snapshot_listing(stdout: &str) -> Result<Vec<StoredBackup>, PluginError> {
    stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [name, creation, used] = fields[..] else {
                return Err(format!("a zfs list line that is not name, creation and used: `{line}`").into());
            };
            let (_, snapshot) = name.split_once('@').ok_or_else(|| format!("`{name}` is no snapshot"))?;
            // The name goes into the path `ari restore` reads (`.zfs/snapshot/NAME`).
            if !is_zfs_name(snapshot) {
                return Err(format!("`{}` is no snapshot name ZFS makes", kinds::shown(snapshot)).into());
            }
            let time = creation
                .parse::<i64>()
                .map_err(|_| format!("a creation time that is no number: `{line}`"))?;
            Ok(StoredBackup::new(time, snapshot, used.parse::<u64>().ok()))
        })
        .collect()
}

/// What rsync transferred, from its `--stats`: regular files transferred, and their size.
fn rsync_statistics(stdout: &str) -> ari_core::step::Transfer {
    let number = |label: &str| {
        stdout.lines().find_map(|line| {
            let rest = line.trim().strip_prefix(label)?;
            let digits: String = rest
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ',')
                .filter(char::is_ascii_digit)
                .collect();
            digits.parse::<u64>().ok()
        })
    };
    ari_core::step::Transfer::new(
        number("Number of regular files transferred:"),
        number("Total transferred file size:"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_listings_are_read_or_refused() {
        let listing = "pool/x@ari-backup-1\t1800000000\t4096\npool/x@manual\t1800000100\t0\n";
        assert_eq!(
            snapshot_listing(listing).unwrap(),
            [
                StoredBackup::new(1800000000, "ari-backup-1", Some(4096)),
                StoredBackup::new(1800000100, "manual", Some(0))
            ]
        );
        assert!(snapshot_listing("pool/x\t1\t2\n").is_err());
        assert!(
            snapshot_listing("pool/x@../../etc\t1\t2\n").is_err(),
            "a name that would leave .zfs/snapshot"
        );
        assert!(snapshot_listing("pool/x@a\tsoon\t2\n").is_err());
    }

    #[test]
    fn rsync_statistics_are_read_from_its_stats() {
        let stdout = "Number of files: 2 (reg: 1, dir: 1)\nNumber of regular files transferred: 1,234\nTotal file size: 9 bytes\nTotal transferred file size: 6,000,001 bytes\n";
        assert_eq!(rsync_statistics(stdout), ari_core::step::Transfer::new(Some(1234), Some(6_000_001)));
        assert_eq!(rsync_statistics(""), ari_core::step::Transfer::new(None, None));
    }

    #[test]
    fn a_name_the_dataset_has_gets_the_next_free_suffix() {
        let listing = "pool/x@ari-backup-1200\t1\npool/x@ari-backup-1200-2\t2\npool/x@other\t3\n";
        assert_eq!(free_name(listing, "pool/x@ari-backup-1200"), "pool/x@ari-backup-1200-3");
        assert_eq!(free_name(listing, "pool/x@ari-backup-1201"), "pool/x@ari-backup-1201");
        assert_eq!(free_name("", "pool/x@a"), "pool/x@a");
    }
}
