//! Unit tests of the restic backend with ari-core's test kit: job files as text, parsed and
//! layered as ari reads them, and the steps the backend builds from them, as data.

use ari_core::prelude::*;
use ari_core::testkit::TestJob;

use crate::{check_repository, ResticBackend};

/// The global config of the tests: the repository and its password, set once for every job.
const CONFIG: &str = "restic_repository: /srv/restic\nrestic_password_file: /etc/ari-backup/restic.pw\n";

/// A snapshot source for the tests, showing the frozen files under `/snap/LABEL`.
struct Frozen;

impl SnapshotSource for Frozen {
    fn name(&self) -> &'static str {
        "frozen"
    }
    fn summary(&self) -> &'static str {
        "test snapshots"
    }
    fn check(&self, _job: &JobContext) -> Result<(), ConfigError> {
        Ok(())
    }
    fn tools(&self, _job: &JobContext) -> Vec<Tool> {
        Vec::new()
    }
    fn root(&self, job: &JobContext) -> String {
        format!("/snap/{}", job.job().label)
    }
    fn steps(&self, _job: &JobContext) -> Result<Vec<Step>, ConfigError> {
        Ok(Vec::new())
    }
}

/// The job file `/jobs/web.yaml` of the restic backend (`backend: restic` is added) under
/// `CONFIG`, with the test snapshot source when `frozen` is true.
fn job(yaml: &str, frozen: bool) -> Result<TestJob, String> {
    let text = format!("backend: restic\n{yaml}");
    let job = TestJob::try_parse_at("/jobs/web.yaml", &text).map_err(|e| e.to_string())?.with_config(CONFIG);
    Ok(if frozen { job.with_snapshot_source(&Frozen) } else { job })
}

/// What the backend makes of a job, in the engine's order: its check, then one line per main
/// and post step (`phase name: command`), or the first error.
fn steps(yaml: &str, frozen: bool) -> Result<Vec<String>, String> {
    let job = job(yaml, frozen)?;
    let job = job.context();
    ResticBackend.check(&job).map_err(|e| e.to_string())?;
    let main = ResticBackend.main_steps(&job).map_err(|e| e.to_string())?;
    let post = ResticBackend.post_steps(&job).map_err(|e| e.to_string())?;
    Ok(main
        .iter()
        .chain(&post)
        .map(|s| format!("{} {}: {}", s.phase().as_str(), s.name(), s.command()))
        .collect())
}

#[track_caller]
fn check(yaml: &str, frozen: bool, expected: &[&str]) {
    assert_eq!(steps(yaml, frozen), Ok(expected.iter().map(|s| s.to_string()).collect()), "{yaml}");
}

#[track_caller]
fn check_error(yaml: &str, expected: &str) {
    assert_eq!(steps(yaml, false), Err(expected.to_string()), "{yaml}");
}

const RESTIC: &str = "restic -r /srv/restic --password-file /etc/ari-backup/restic.pw";

#[test]
fn backup_then_forget() {
    check(
        "include: [/etc, /var/www]\nexclude: [/var/www/cache, '*.tmp']\n",
        false,
        &[
            "main restic include exists: `test '!' -e /etc` on localhost",
            "main restic include exists: `test '!' -e /var/www` on localhost",
            &format!("main restic backup: `{RESTIC} backup --tag ari:web --exclude=/var/www/cache '--exclude=*.tmp' -- /etc /var/www` on localhost"),
            &format!("post restic forget: `{RESTIC} forget --prune --tag ari:web --keep-daily 7 --keep-weekly 4 --keep-monthly 12` on localhost"),
        ],
    );
    check(
        "source_hostname: db-server\ninclude: [/var/lib/postgresql]\nrestic_path: /opt/restic/restic\nrestic_keep_last: 3\nrestic_keep_weekly: 0\n",
        false,
        &[
            "main restic include exists: `test '!' -e /var/lib/postgresql` on db-server",
            "main restic backup: `/opt/restic/restic -r /srv/restic --password-file /etc/ari-backup/restic.pw backup --tag ari:web -- /var/lib/postgresql` on db-server",
            "post restic forget: `/opt/restic/restic -r /srv/restic --password-file /etc/ari-backup/restic.pw forget --prune --tag ari:web --keep-last 3 --keep-daily 7 --keep-monthly 12` on db-server",
        ],
    );
}

#[test]
fn with_a_snapshot_source_restic_reads_the_frozen_view() {
    check(
        "include: [/etc, /]\nexclude: [/etc/ssl/private, '*.tmp']\nrestic_keep_daily: 1\n",
        true,
        &[
            "main restic include exists: `test '!' -e /snap/web/etc` on localhost",
            "main restic include exists: `test '!' -e /snap/web` on localhost",
            &format!("main restic backup: `{RESTIC} backup --tag ari:web --exclude=/snap/web/etc/ssl/private '--exclude=*.tmp' -- /snap/web/etc /snap/web` on localhost"),
            &format!("post restic forget: `{RESTIC} forget --prune --tag ari:web --keep-daily 1 --keep-weekly 4 --keep-monthly 12` on localhost"),
        ],
    );
    let whole_view = steps("label: all\n", true).expect("a job without include, with a snapshot source");
    assert!(whole_view[1].ends_with(" -- /snap/all` on localhost"), "{whole_view:?}");
}

#[test]
fn errors_name_the_file_line_and_key() {
    check_error(
        "include: [etc]\n",
        "/jobs/web.yaml:2:11: include[0]: `etc` is not an absolute path (it must start with `/`)",
    );
    check_error(
        "include: [/etc]\nexclude: ['/etc/../root']\n",
        "/jobs/web.yaml:3:11: exclude[0]: `/etc/../root`: restic patterns have no `.` or `..` parts",
    );
    check_error(
        "exclude: ['*.tmp']\n",
        "/jobs/web.yaml: include: the restic backend needs at least one path to back up",
    );
    check_error(
        "include: [/etc]\nrestic_keep_daily: 0\nrestic_keep_weekly: 0\nrestic_keep_monthly: 0\n",
        "/jobs/web.yaml:3:20: restic_keep_daily: restic_keep_last, _daily, _weekly and _monthly are all 0, which leaves restic forget no policy; keep at least one",
    );
    // Each value is checked by its kind when ari reads it, before the backend sees it.
    check_error(
        "include: [/etc]\nrestic_keep_daily: -1\n",
        "/jobs/web.yaml:3:20: restic_keep_daily: -1 is out of range (0 to 100000)",
    );
    check_error("include: [/etc]\nrestic_repository: ftp://host/x\n", "/jobs/web.yaml:3:20: restic_repository: `ftp://host/x` is neither an absolute path nor BACKEND:LOCATION with a restic backend (local, sftp, rest, s3, b2, azure, gs, swift, rclone)");
    check_error("include: [/etc]\nrestic_password_file: restic.pw\n", "/jobs/web.yaml:3:23: restic_password_file: `restic.pw` is not an absolute path (it must start with `/`)");
    check_error(
        "include: [/etc]\nrestic_path: -restic\n",
        "/jobs/web.yaml:3:14: restic_path: `-restic` must not start with `-`",
    );
}

#[test]
fn a_missing_repository_or_password_file_is_an_error() {
    let without_config = |yaml: &str| {
        let job =
            TestJob::try_parse_at("/jobs/web.yaml", &format!("backend: restic\ninclude: [/etc]\n{yaml}"))
                .unwrap();
        ResticBackend.check(&job.context()).map_err(|e| e.to_string())
    };
    assert_eq!(without_config(""), Err("/jobs/web.yaml: restic_repository: required by the restic backend; set it in the job file or the global config".into()));
    assert_eq!(without_config("restic_repository: sftp:backup@vault:/srv/restic\n"), Err("/jobs/web.yaml: restic_password_file: required by the restic backend; set it in the job file or the global config".into()));
    assert_eq!(
        without_config("restic_repository: /srv/restic\nrestic_password_file: /root/restic.pw\n"),
        Ok(())
    );
}

#[test]
fn repositories() {
    let check = |text: &str, ok: bool| assert_eq!(check_repository(text).is_ok(), ok, "{text}");
    check("/srv/restic", true);
    check("local:/srv/restic", true);
    check("sftp:backup@vault:/srv/restic", true);
    check("rest:https://vault:8000/web", true);
    check("s3:s3.amazonaws.com/bucket/web", true);
    check("srv/restic", false);
    check("/srv/../restic", false);
    check("local:srv", false);
    check("sftp:", false);
    check("-r", false);
    check("--option=x", false);
    check("ftp:host/x", false);
    check("sftp:host:/x\n", false);
}

#[test]
fn local_tools_only_for_a_local_source() {
    let tools = |yaml: &str| ResticBackend.tools(&job(yaml, false).unwrap().context());
    assert_eq!(
        tools("include: [/etc]\n"),
        [Tool::new("restic_path", "restic"), Tool::new("include", "test")]
    );
    assert_eq!(tools("include: [/etc]\nsource_hostname: db-server\n"), []);
}

#[test]
fn ari_plans_forget_after_the_backup_and_only_after_its_success() {
    let job = job("include: [/etc]\n", false).unwrap();
    let steps = job.steps().unwrap_or_else(|e| panic!("{e}"));
    let plan: Vec<String> = steps
        .iter()
        .map(|s| format!("{} {} {}", s.phase().as_str(), s.name(), s.runs_when().as_str()))
        .collect();
    assert_eq!(
        plan,
        ["main restic include exists always", "main restic backup always", "post restic forget success"]
    );
}

#[test]
fn every_default_is_a_valid_value_of_its_kind() {
    // A setting the job leaves unset reads its default, parsed by the setting's kind: a default
    // its kind refuses panics here.
    let job = job("include: [/etc]\n", false).unwrap();
    let job = job.context();
    assert_eq!(job.get(&crate::RESTIC_PATH), "restic");
    let keeps = [
        &crate::RESTIC_KEEP_LAST,
        &crate::RESTIC_KEEP_DAILY,
        &crate::RESTIC_KEEP_WEEKLY,
        &crate::RESTIC_KEEP_MONTHLY,
    ];
    assert_eq!(keeps.map(|keep| job.get(keep)), [0, 7, 4, 12]);
}
