//! The settings that ari-core owns: logging, retries, ssh and where ari keeps its files.
//!
//! Names and defaults are the original ari-backup's, so an existing `ari-backup.conf.yaml` works
//! unchanged; `ssh_options`, `jobs_dir` and `state_dir` are new.

use crate::settings::Setting;

/// Log everything, with file and line, to stderr.
pub static DEBUG: Setting<bool> =
    Setting::new("debug", "core", Some("false"), "log everything to stderr, with file:line");
/// Log each command and run none.
pub static DRY_RUN: Setting<bool> =
    Setting::new("dry_run", "core", Some("false"), "log each command and run none");
/// How often a retried step (a cleanup step) is tried again before it counts as failed.
pub static MAX_RETRIES: Setting<u32> = Setting::new(
    "max_retries",
    "core",
    Some("3"),
    "retries of a step that is retried (cleanup) before it counts as failed",
);
/// Seconds between retries.
pub static RETRY_INTERVAL: Setting<u32> =
    Setting::new("retry_interval", "core", Some("5"), "seconds between retries");
/// The user ari logs in as on remote hosts.
pub static REMOTE_USER: Setting<String> =
    Setting::new("remote_user", "core", Some("root"), "ssh user on remote hosts");
/// The ssh binary.
pub static SSH_PATH: Setting<String> = Setting::new("ssh_path", "core", Some("/usr/bin/ssh"), "ssh binary");
/// The ssh port of remote hosts.
pub static SSH_PORT: Setting<u16> = Setting::new("ssh_port", "core", Some("22"), "ssh port of remote hosts");
/// Extra ssh options, passed to every ssh that ari starts (its own, rdiff-backup's, rsync's).
pub static SSH_OPTIONS: Setting<Vec<String>> = Setting::new(
    "ssh_options",
    "core",
    Some("[]"),
    "extra ssh options for every ssh ari starts, e.g. [-F, /etc/ari-backup/ssh_config]",
);
/// Log errors to stderr.
pub static STDERR_LOGGING: Setting<bool> =
    Setting::new("stderr_logging", "core", Some("true"), "log errors to stderr");
/// Where job files live.
pub static JOBS_DIR: Setting<String> =
    Setting::new("jobs_dir", "core", Some("/etc/ari-backup/jobs.d"), "directory of the job files");
/// Where ari keeps locks, ledgers, reports and caches.
pub static STATE_DIR: Setting<String> = Setting::new(
    "state_dir",
    "core",
    Some("/var/lib/ari-backup"),
    "directory of ari's own state: locks, ledgers, reports, caches",
);

crate::register_settings!(
    DEBUG,
    DRY_RUN,
    MAX_RETRIES,
    RETRY_INTERVAL,
    REMOTE_USER,
    SSH_PATH,
    SSH_PORT,
    SSH_OPTIONS,
    STDERR_LOGGING,
    JOBS_DIR,
    STATE_DIR,
);
