//! `ari restore`'s engine part, the same for every backend: which stored backup a `--at TIME`
//! names, whether a path is one the job backs up, and the copy, run under the job's lock with
//! its connections into a private staging directory in DIR, then moved to DIR/PATH
//! (`files::restore_target` says how that stays inside DIR). The backend only says how to copy
//! (`BackupBackend::restore`).

use std::path::Path;
use std::sync::Arc;

use crate::contract::kinds;
use crate::contract::plugin::{join_path, relative_to, Restore, RestoreRequest, StoredBackup};
use crate::engine::files::restore_target::{Placed, RestoreTarget, TargetError};
use crate::engine::files::StateError;
use crate::engine::job_run::StopFlags;
use crate::engine::lock::{Lock, LockError};
use crate::engine::plan::JobPlan;
use crate::engine::process::{Output, ProcessError};
use crate::engine::remote::Session;
use crate::engine::runner::Runner;

/// Decompresses the staged dump `$1` in place, in ari's private staging directory: into a new
/// name beside it, then over it.
const DECOMPRESS: &str = r#"zstd -d -q -o "$1.plain" -- "$1" && mv -f -- "$1.plain" "$1""#;

/// What `--at` accepts, for error messages and `--help`.
pub const TIME_FORMS: &str = "a backup's name as `ari history` lists it; `now`; `NB` for the Nth backup before the newest (`0B` is the newest); an interval back from now (`3D`, `2W3D`, `12h`: s, m, h, D, W, M = 30 days, Y = 365 days); seconds since the epoch; a date `2026-11-30` (its midnight, local time); a local time `2026-11-30 03:00` or `2026-11-30T03:00:00`; or a time with its offset `2026-11-30T03:00:00+01:00`";

/// Checks `--at TIME` for what no backup name or time can be, before anything runs.
pub fn check_time(time: &str) -> Result<(), String> {
    if time.is_empty() {
        return Err("--at: the time is empty".into());
    }
    kinds::check_no_control(time).map_err(|why| format!("--at `{}` {why}", kinds::shown(time)))?;
    if time.starts_with('-') {
        return Err(format!("--at `{}`: no backup name or time starts with `-`", kinds::shown(time)));
    }
    Ok(())
}

/// The backup `time` names among `backups` (any order), `now` being `now` (seconds since the
/// epoch); the newest without a time. The error says what the store holds.
pub fn select(backups: &[StoredBackup], time: Option<&str>, now: i64) -> Result<StoredBackup, String> {
    let mut newest_first = backups.to_vec();
    newest_first.sort_by_key(|b| std::cmp::Reverse(b.time));
    let Some(newest) = newest_first.first() else {
        return Err("the store holds no backup of the job yet".into());
    };
    let Some(time) = time else { return Ok(newest.clone()) };
    if let Some(backup) = newest_first.iter().find(|b| b.name == time) {
        return Ok(backup.clone());
    }
    if time == "now" {
        return Ok(newest.clone());
    }
    if let Some(n) = time.strip_suffix('B').filter(|n| is_number(n)) {
        let n: usize = n.parse().map_err(|_| format!("--at `{time}`: too many backups back"))?;
        return newest_first.get(n).cloned().ok_or_else(|| {
            format!(
                "--at `{time}`: the store holds {} backups, `0B` (the newest) to `{}B`",
                newest_first.len(),
                newest_first.len() - 1
            )
        });
    }
    let moment = moment(time, now).ok_or_else(|| {
        format!(
            "--at `{}` is no backup's name and no time ari reads; it takes {TIME_FORMS}",
            kinds::shown(time)
        )
    })?;
    newest_first.iter().find(|b| b.time <= moment).cloned().ok_or_else(|| {
        let oldest = newest_first.last().unwrap_or(newest);
        format!(
            "--at `{time}` ({}): the store holds no backup that old; the oldest is `{}` from {}",
            shown_time(moment),
            oldest.name,
            shown_time(oldest.time)
        )
    })
}

/// `time` as local time, as `ari history` shows it.
pub fn shown_time(time: i64) -> String {
    jiff::Timestamp::from_second(time)
        .map(|t| t.to_zoned(jiff::tz::TimeZone::system()).strftime("%Y-%m-%d %H:%M:%S %Z").to_string())
        .unwrap_or_else(|_| time.to_string())
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// The moment `time` names, seconds since the epoch: an interval back from `now`, epoch
/// seconds, or a date or time.
fn moment(time: &str, now: i64) -> Option<i64> {
    if is_number(time) {
        return time.parse().ok();
    }
    if let Some(seconds) = kinds::interval_seconds(time) {
        return Some(now.saturating_sub(seconds));
    }
    if let Ok(timestamp) = time.parse::<jiff::Timestamp>() {
        return Some(timestamp.as_second());
    }
    let tz = jiff::tz::TimeZone::system();
    let civil = time
        .parse::<jiff::civil::DateTime>()
        .ok()
        .or_else(|| jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", time).ok())
        .or_else(|| jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M", time).ok())
        .or_else(|| {
            ["%Y/%m/%d", "%m/%d/%Y"]
                .iter()
                .find_map(|format| jiff::civil::Date::strptime(format, time).ok())
                .map(|date| date.to_datetime(jiff::civil::Time::midnight()))
        })?;
    civil.to_zoned(tz).ok().map(|zoned| zoned.timestamp().as_second())
}

/// Checks that `path` (absolute, normalised) is one the job backs up, as far as its include
/// and exclude lists tell: within or above an included path (any, when one is a pattern or
/// there are none), and not within an excluded one.
pub fn check_path(path: &str, include: &[String], exclude: &[String]) -> Result<(), String> {
    kinds::check_path(path).map_err(|why| format!("PATH `{}` {why}", kinds::shown(path)))?;
    let path = join_path("/", path);
    let is_pattern = |entry: &str| entry.contains(['*', '?', '[']);
    let within = |inner: &str, outer: &str| relative_to(inner, &join_path("/", outer)).is_some();
    let included = include.is_empty()
        || include.iter().any(|entry| is_pattern(entry) || within(&path, entry) || within(entry, &path));
    if !included {
        return Err(format!(
            "PATH `{path}` is not in what the job backs up (include: {}); give a path as the job names it on its host",
            include.join(", ")
        ));
    }
    if let Some((i, entry)) =
        exclude.iter().enumerate().find(|(_, entry)| !is_pattern(entry) && within(&path, entry))
    {
        return Err(format!(
            "PATH `{path}` is excluded by the job (exclude[{i}]: {entry}), so no backup holds it"
        ));
    }
    Ok(())
}

/// What `ari restore` copies, out of which backup, to where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Wanted {
    /// PATH, absolute and normalised, as the job names it on its host.
    pub path: String,
    /// The backup it comes out of.
    pub backup: StoredBackup,
    /// DIR/PATH.
    pub target: RestoreTarget,
    /// Whether DIR/PATH may be replaced (`--force`).
    pub force: bool,
    /// Whether it is a dump, from where the job's dumps are kept (`ari restore --dump`).
    dump: bool,
    /// Whether the dump is decompressed (`zstd -d`) in the private staging directory, before it
    /// is placed: never in DIR, where another user of a shared sticky directory could race it.
    decompress: bool,
}

impl Wanted {
    /// `path` as `backup` holds it, to `target`, replacing what is there only with `force`.
    pub fn new(path: impl Into<String>, backup: StoredBackup, target: RestoreTarget, force: bool) -> Wanted {
        Wanted { path: path.into(), backup, target, force, dump: false, decompress: false }
    }

    /// The dump `source` names, as `backup` holds it, to `target` (DIR/FILE, or DIR/FILE
    /// without `.zst` when `decompress`).
    pub fn dump(
        source: &DumpSource,
        backup: StoredBackup,
        target: RestoreTarget,
        force: bool,
        decompress: bool,
    ) -> Wanted {
        Wanted { path: source.path.clone(), backup, target, force, dump: true, decompress }
    }
}

/// Where `ari restore --dump NAME` finds a dump: its file, the path a backup holds it at, and
/// how the backups that hold it are listed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DumpSource {
    /// The dump's file (`app.pgdump.zst`).
    pub file: String,
    /// Where a backup holds it (`/.ari-dumps/app.pgdump.zst` in a zfs job's snapshots, `/FILE`
    /// in an rdiff job's dump store).
    pub path: String,
    /// Lists the backups that hold it.
    pub history: crate::contract::plugin::HistoryQuery,
    /// How to load the restored file, as a command to show (FILE standing for its path).
    pub load: String,
}

/// Where the job's dump `name` is kept, or why it cannot be restored.
pub fn dump_source(plan: &JobPlan, name: &str) -> Result<DumpSource, String> {
    let Some(dump) = plan.job.dumps.iter().find(|dump| dump.name == name) else {
        let names: Vec<&str> = plan.job.dumps.iter().map(|dump| dump.name.as_str()).collect();
        return Err(match names.is_empty() {
            true => format!("--dump {name}: job {} has no dumps", plan.label()),
            false => format!(
                "--dump {name}: job {} has no dump of that name; its dumps: {}",
                plan.label(),
                names.join(", ")
            ),
        });
    };
    let file = crate::engine::dumps::file_name(dump);
    let load = crate::engine::dumps::load_hint(dump);
    use crate::contract::dump_store::Kept;
    match &plan.dumps_kept {
        Some(Kept::InBackups(directory)) => {
            let history = plan
                .history
                .clone()
                .ok_or_else(|| format!("the {} backend lists no backups", plan.backend))?;
            Ok(DumpSource { path: join_path(directory, &file), file, history, load })
        }
        Some(Kept::Apart { history, .. }) => {
            Ok(DumpSource { path: format!("/{file}"), file, history: history.clone(), load })
        }
        None => Err(format!("the {} backend cannot restore dumps", plan.backend)),
    }
}

/// Why a restore did not copy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A run of the job holds its lock.
    #[error(transparent)]
    Locked(LockError),
    /// The job's private run directory (its ssh wrapper) could not be made.
    #[error("the job's run directory: {0}")]
    NoRunDirectory(StateError),
    /// DIR/PATH was refused, or what the copy goes into could not be made: nothing changed.
    #[error("--to")]
    Target(#[source] TargetError),
    /// The backend gave no copy for the request.
    #[error("{0}")]
    Backend(String),
    /// The backend's query failed.
    #[error("asking `{command}` failed")]
    Query {
        /// The query, as shown.
        command: String,
        /// Why.
        #[source]
        source: ProcessError,
    },
    /// The query printed what the backend cannot read.
    #[error("{0}")]
    Unreadable(String),
    /// The copy failed, or was stopped.
    #[error("the copy failed")]
    Copy(#[source] ProcessError),
    /// The copy made nothing, or its tool said that the path is not there: the backup does not
    /// hold it.
    #[error("backup {backup} holds nothing at {path}")]
    NotInBackup {
        /// PATH.
        path: String,
        /// The backup's name.
        backup: String,
    },
    /// The copy could not be moved to DIR/PATH, which is as it was.
    #[error("moving the copy into place failed")]
    Place(#[source] TargetError),
}

/// What a dry run of `wanted` would do, logged: the backend's query runs (it only asks), the
/// copy is shown, and nothing is written.
pub fn preview(plan: &JobPlan, wanted: &Wanted, stop: &StopFlags) -> Result<(), RestoreError> {
    let staged = wanted.target.staging_preview();
    let restore =
        wanted_restore(plan, wanted, &RestoreRequest::new(&wanted.path, wanted.backup.clone(), &staged))?;
    let runner = Runner::new(plan.ssh.clone(), false).with_cancel(stop.interrupted.clone());
    let command = copy_command(&runner, &restore)?;
    log::info!("dry run: would restore with: {command}");
    log::info!(
        "dry run: then would move the copy to {} (the copy goes into a new private directory in {}, handed to the tool through ari's descriptor of it)",
        wanted.target.path().display(),
        wanted.target.staged_in().display()
    );
    Ok(())
}

/// Runs `wanted` for `plan`'s job under its lock (a backup of the job waits for it, or is
/// refused, as another run would be), through its connections; `stop`'s flags stop the copy.
/// The copy goes into a private staging directory in DIR (made, with DIR's missing directories,
/// once the lock is held, so a restore refused for a running job leaves nothing behind) and
/// then moves to DIR/PATH; an error before that move leaves DIR as it was.
pub fn run(plan: &JobPlan, wanted: &Wanted, stop: &StopFlags) -> Result<Placed, RestoreError> {
    let state_dir = plan.state_dir();
    let state_dir = Path::new(&state_dir);
    let label = plan.label();
    let _lock = Lock::try_acquire(state_dir, label, &format!("job {label}")).map_err(RestoreError::Locked)?;
    let session =
        Session::open(plan.connections.clone(), state_dir, crate::engine::job_run::master_timeout(plan))
            .map_err(RestoreError::NoRunDirectory)?;
    let session = Arc::new(session);
    let staging = match wanted.target.stage(&plan.directories, wanted.force) {
        Ok(staging) => staging,
        Err(err) => {
            close(&session);
            return Err(RestoreError::Target(err));
        }
    };
    let runner = Runner::new(plan.ssh.clone(), false)
        .with_cancel(stop.interrupted.clone())
        .with_abort(stop.abort.clone())
        .with_session(Arc::clone(&session));
    let request = RestoreRequest::new(&wanted.path, wanted.backup.clone(), staging.copy_path());
    let copied = wanted_restore(plan, wanted, &request).and_then(|restore| copy(&runner, &restore));
    close(&session);
    let absent = match copied {
        Ok(absent) => absent,
        Err(err) => {
            staging.discard();
            return Err(err);
        }
    };
    let not_held =
        || RestoreError::NotInBackup { path: wanted.path.clone(), backup: wanted.backup.name.clone() };
    match staging.holds_copy() {
        Ok(true) if !absent && wanted.dump => {
            // What a backup holds as a dump must be a file (a host that writes its store can
            // leave a link there), and is decompressed where no one else can reach it.
            match staging.holds_file() {
                Ok(true) => {}
                Ok(false) => {
                    staging.discard();
                    return Err(RestoreError::Backend(format!(
                        "backup {} holds {} as something other than a file (a symbolic link?): nothing was written",
                        wanted.backup.name, wanted.path
                    )));
                }
                Err(err) => {
                    staging.discard();
                    return Err(RestoreError::Place(err));
                }
            }
            if wanted.decompress {
                let staged = staging.copy_path();
                let argv = ["sh", "-c", DECOMPRESS, "ari-restore", staged.as_str()];
                let command = crate::contract::step::Command::argv(crate::contract::step::Host::Local, argv);
                if let Err(err) = runner.run(&command) {
                    staging.discard();
                    return Err(RestoreError::Copy(err));
                }
            }
            staging.place(wanted.force).map_err(RestoreError::Place)
        }
        Ok(true) if !absent => staging.place(wanted.force).map_err(RestoreError::Place),
        Ok(true) => {
            let shown = staging.path();
            staging.discard();
            Err(RestoreError::Backend(format!(
                "the copy said that backup {} does not hold {}, yet made something in {}",
                wanted.backup.name,
                wanted.path,
                shown.display()
            )))
        }
        Ok(false) => {
            staging.discard();
            Err(not_held())
        }
        Err(err) => {
            staging.discard();
            Err(RestoreError::Place(err))
        }
    }
}

fn close(session: &Session) {
    for warning in session.close() {
        log::warn!("{warning}");
    }
}

/// The restore of `request`: from the dumps' own store for a dump kept apart, else the
/// backend's.
fn wanted_restore(
    plan: &JobPlan,
    wanted: &Wanted,
    request: &RestoreRequest,
) -> Result<Restore, RestoreError> {
    match &plan.dumps_kept {
        Some(crate::contract::dump_store::Kept::Apart { restore, .. }) if wanted.dump => {
            restore(request).map_err(|err| RestoreError::Backend(err.to_string()))
        }
        _ => backend_restore(plan, request),
    }
}

/// The backend's restore for `request`.
fn backend_restore(plan: &JobPlan, request: &RestoreRequest) -> Result<Restore, RestoreError> {
    match plan.restore(request) {
        Ok(Some(restore)) => Ok(restore),
        Ok(None) => Err(RestoreError::Backend(format!("the {} backend cannot restore", plan.backend))),
        Err(err) => Err(RestoreError::Backend(err.to_string())),
    }
}

/// The copy's command, from what the restore's query printed.
fn copy_command(runner: &Runner, restore: &Restore) -> Result<crate::contract::step::Command, RestoreError> {
    let printed = match &restore.query {
        Some(query) => {
            runner.run(query).map_err(|source| RestoreError::Query { command: query.to_string(), source })?
        }
        None => Output::default(),
    };
    let printed = printed.stdout().map_err(|too_long| RestoreError::Unreadable(too_long.to_string()))?;
    (restore.copy)(printed).map_err(|err| RestoreError::Unreadable(err.to_string()))
}

/// Runs the copy; true when its exit says that the backup does not hold the path.
fn copy(runner: &Runner, restore: &Restore) -> Result<bool, RestoreError> {
    let command = copy_command(runner, restore)?;
    log::info!("restoring: {command}");
    match runner.run(&command) {
        Ok(_) => Ok(false),
        Err(ProcessError::Exited { code, ref stderr, .. })
            if restore.absent.iter().any(|absent| absent.accepts(code, stderr)) =>
        {
            Ok(true)
        }
        Err(err) => Err(RestoreError::Copy(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backups() -> Vec<StoredBackup> {
        [(1_000, "a"), (3_000, "c"), (2_000, "b")]
            .into_iter()
            .map(|(t, n)| StoredBackup::new(t, n, None))
            .collect()
    }

    fn name(time: Option<&str>, now: i64) -> Result<String, String> {
        select(&backups(), time, now).map(|b| b.name)
    }

    #[test]
    fn a_time_names_the_newest_backup_at_or_before_it() {
        assert_eq!(name(None, 5_000).unwrap(), "c");
        assert_eq!(name(Some("now"), 5_000).unwrap(), "c");
        assert_eq!(name(Some("b"), 5_000).unwrap(), "b", "a name, exactly");
        assert_eq!(name(Some("0B"), 5_000).unwrap(), "c");
        assert_eq!(name(Some("2B"), 5_000).unwrap(), "a");
        assert_eq!(name(Some("2999"), 5_000).unwrap(), "b");
        assert_eq!(name(Some("3000"), 5_000).unwrap(), "c", "at the time itself");
        assert_eq!(name(Some("50m"), 5_000).unwrap(), "b", "5000 - 3000 s");
        assert_eq!(name(Some("1h"), 5_000).unwrap(), "a");
        assert_eq!(name(Some("1970-01-01T00:40:00Z"), 5_000).unwrap(), "b");
    }

    #[test]
    fn a_time_before_every_backup_or_past_the_count_says_what_the_store_holds() {
        let err = name(Some("999"), 5_000).unwrap_err();
        assert!(err.contains("no backup that old; the oldest is `a`"), "{err}");
        let err = name(Some("3B"), 5_000).unwrap_err();
        assert!(err.contains("holds 3 backups, `0B` (the newest) to `2B`"), "{err}");
        let err = name(Some("3X"), 5_000).unwrap_err();
        assert!(err.contains("no backup's name and no time"), "{err}");
        let err = select(&[], None, 5_000).unwrap_err();
        assert!(err.contains("no backup of the job yet"), "{err}");
    }

    #[test]
    fn dates_and_local_times_are_read() {
        for time in ["2026-11-30", "2026/11/30", "11/30/2026", "2026-11-30 03:00", "2026-11-30T03:00:00"] {
            assert!(moment(time, 0).is_some(), "{time}");
        }
        assert_eq!(moment("2026-11-30T03:00:00+01:00", 0), Some(1_796_004_000));
    }

    #[test]
    fn a_path_must_be_absolute_included_and_not_excluded() {
        let include = ["/etc".to_string(), "/home/*/mail".to_string()];
        let exclude = ["/etc/ssl/private".to_string(), "**/cache".to_string()];
        let plain = ["/etc".to_string()];
        assert!(check_path("/etc/hosts", &plain, &exclude).is_ok());
        assert!(check_path("/etc", &plain, &exclude).is_ok());
        assert!(check_path("/", &plain, &exclude).is_ok(), "above an included path");
        assert!(check_path("/var/x", &include, &exclude).is_ok(), "a pattern may match anything");
        let err = check_path("/var/x", &plain, &exclude).unwrap_err();
        assert!(err.contains("not in what the job backs up (include: /etc)"), "{err}");
        assert!(check_path("/etcetera", &plain, &[]).is_err(), "a prefix is no parent");
        let err = check_path("/etc/ssl/private/key", &plain, &exclude).unwrap_err();
        assert!(err.contains("excluded by the job (exclude[0]"), "{err}");
        for bad in ["etc/hosts", "/etc/../root", "/etc/./x", "", "/etc/\nx"] {
            assert!(check_path(bad, &plain, &[]).is_err(), "{bad:?}");
        }
        assert!(check_path("/etc//hosts/", &plain, &[]).is_ok(), "doubled and trailing `/`");
    }

    #[test]
    fn errors_name_their_cause_once() {
        let check =
            |err: RestoreError, expected: &str| assert_eq!(crate::contract::error::chain(&err), expected);
        check(
            RestoreError::Target(TargetError::RootIntoRoot),
            "--to: PATH / is restored as --to itself, so --to cannot be /",
        );
        check(
            RestoreError::Place(TargetError::Exists { path: "/r/etc".into() }),
            "moving the copy into place failed: /r/etc exists, and ari never overwrites: choose another --to, or give --force to replace it",
        );
        check(
            RestoreError::NotInBackup { path: "/etc/x".into(), backup: "b".into() },
            "backup b holds nothing at /etc/x",
        );
    }

    #[test]
    fn times_that_are_options_or_garbled_are_refused_first() {
        assert!(check_time("3D").is_ok());
        for bad in ["", "-3D", "--force", "3D\n"] {
            assert!(check_time(bad).is_err(), "{bad:?}");
        }
    }
}
