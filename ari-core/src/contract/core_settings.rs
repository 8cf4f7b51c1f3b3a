//! The settings that ari-core owns: logging, retries, ssh and where ari keeps its files.
//!
//! Names and defaults are the original ari-backup's, so an existing `ari-backup.conf.yaml` works
//! unchanged; `ssh_options`, `jobs_dir` and `state_dir` are new.
//!
//! A plugin reads the few it needs here (`remote_user`, `remote_sudo`, `state_dir`); the rest
//! are the engine's, and reach a plugin through the context (`JobContext::ssh`), if at all.

use crate::contract::kinds;
use crate::contract::settings::{Setting, SettingKind};

/// Log everything, with file and line, to stderr.
#[doc(hidden)]
pub static DEBUG: Setting<bool> =
    Setting::new("debug", "core", Some("false"), "log everything to stderr, with file:line")
        .for_the_process();
/// Log each command and run none.
#[doc(hidden)]
pub static DRY_RUN: Setting<bool> =
    Setting::new("dry_run", "core", Some("false"), "log each command and run none").for_the_process();
/// How often a retried step (a cleanup step) is tried again before it counts as failed.
pub(crate) static MAX_RETRIES: Setting<u32> = Setting::with_kind(
    "max_retries",
    "core",
    SettingKind::Integer { min: 0, max: 100 },
    Some("3"),
    "retries of a step that is retried (cleanup) before it counts as failed",
);
/// Seconds between retries.
pub(crate) static RETRY_INTERVAL: Setting<u32> = Setting::with_kind(
    "retry_interval",
    "core",
    SettingKind::Integer { min: 0, max: 3600 },
    Some("5"),
    "seconds between retries",
);
/// The user ari logs in as on remote hosts; unset, ssh's own configuration decides.
pub static REMOTE_USER: Setting<Option<String>> = Setting::with_kind(
    "remote_user",
    "core",
    SettingKind::Text(&kinds::USER),
    None,
    "ssh user on remote hosts; unset: ssh's own configuration decides (User in ~/.ssh/config, else the local user)",
);
/// The ssh binary.
pub(crate) static SSH_PATH: Setting<String> = Setting::with_kind(
    "ssh_path",
    "core",
    SettingKind::Text(&kinds::PROGRAM),
    Some("/usr/bin/ssh"),
    "ssh binary",
);
/// The ssh port of remote hosts; unset, ssh's own configuration decides.
pub(crate) static SSH_PORT: Setting<Option<u16>> = Setting::with_kind(
    "ssh_port",
    "core",
    SettingKind::Integer { min: 1, max: 65535 },
    None,
    "ssh port of remote hosts; unset: ssh's own configuration decides (Port in ~/.ssh/config, else 22)",
);
/// Extra ssh options, passed to every ssh that ari starts (its own, rdiff-backup's, rsync's).
pub(crate) static SSH_OPTIONS: Setting<Vec<String>> = Setting::with_kind(
    "ssh_options",
    "core",
    SettingKind::Checked(&kinds::SSH_OPTIONS),
    Some("[]"),
    "extra ssh options for every ssh ari starts, e.g. [-F, /etc/ari-backup/ssh_config]",
);
/// Log errors to stderr.
#[doc(hidden)]
pub static STDERR_LOGGING: Setting<bool> =
    Setting::new("stderr_logging", "core", Some("true"), "log errors to stderr").for_the_process();
/// Where job files live.
#[doc(hidden)]
pub static JOBS_DIR: Setting<String> = Setting::with_kind(
    "jobs_dir",
    "core",
    SettingKind::Text(&kinds::PATH),
    Some("/etc/ari-backup/jobs.d"),
    "directory of the job files",
)
.for_the_process();
/// Where ari keeps locks, ledgers, reports and caches.
pub static STATE_DIR: Setting<String> = Setting::with_kind(
    "state_dir",
    "core",
    SettingKind::Text(&kinds::PATH),
    Some("/var/lib/ari-backup"),
    "directory of ari's own state: locks, ledgers, reports, caches",
)
.for_the_process();

/// Kill a command that runs longer than this.
#[doc(hidden)]
pub static COMMAND_TIMEOUT: Setting<Option<std::time::Duration>> = Setting::new(
    "command_timeout",
    "core",
    None,
    "kill a command (its whole process group) that runs longer than this, e.g. 2h; none by default, when a read-only query outside a run (ari check, ari plan --preview) stops after 30s",
);
/// Stop a job that runs longer than this; its cleanup still runs.
pub(crate) static JOB_TIMEOUT: Setting<Option<std::time::Duration>> = Setting::new(
    "job_timeout",
    "core",
    None,
    "stop a job that runs longer than this, e.g. 6h (its cleanup still runs); none by default",
);
/// The share or count of the job's files a run's spot check compares.
pub(crate) static VERIFY_SAMPLE: Setting<Option<kinds::SampleSize>> = Setting::new(
    "verify_sample",
    "core",
    None,
    "after the backup, compare this share (1%) or count (500) of the job's files on the host with the store, inside the snapshot when there is one; none by default",
);
/// The most bytes a spot check hashes on each side.
pub(crate) static VERIFY_MAX_BYTES: Setting<Option<kinds::ByteCount>> = Setting::new(
    "verify_max_bytes",
    "core",
    None,
    "the most bytes a spot check hashes on each side, e.g. 1G (files past it are compared by size and metadata only); no limit by default",
);
/// The longest each side of a spot check may run.
pub(crate) static VERIFY_TIMEOUT: Setting<std::time::Duration> = Setting::new(
    "verify_timeout",
    "core",
    Some("2h"),
    "stop a spot check (each side's listing and hashing) that runs longer than this, and fail it; command_timeout, when shorter, wins",
);
/// The longest a database dump (`dumps:`) may run, unless its entry sets `timeout`.
pub(crate) static DUMP_TIMEOUT: Setting<std::time::Duration> = Setting::new(
    "dump_timeout",
    "core",
    Some("6h"),
    "stop a database dump (`dumps:`) that runs longer than this, and fail the job; an entry's `timeout` sets its own, and command_timeout, when shorter, wins",
);
/// How old the last success may be before a run expires nothing (the stale guard).
pub(crate) static KEEP_WHEN_STALE: Setting<Option<std::time::Duration>> = Setting::new(
    "keep_when_stale",
    "core",
    None,
    "expire nothing (no retention, no ZFS expiry) in a run when the job's previous success ended longer ago than this, e.g. 7d, or is unknown, or the last run's spot check failed: a host that was down keeps its history; off by default",
);
/// How often a run includes the spot check.
pub(crate) static VERIFY_EVERY: Setting<Option<std::time::Duration>> = Setting::new(
    "verify_every",
    "core",
    None,
    "run the spot check only when the last one is older than this, e.g. 7d; every run by default",
);
/// Retry a failed backup step like a cleanup step.
pub(crate) static RETRY_BACKUP: Setting<bool> = Setting::new(
    "retry_backup",
    "core",
    Some("false"),
    "retry a failed main (backup) step max_retries times, as cleanup steps are",
);
/// ssh never prompts.
pub(crate) static SSH_BATCH_MODE: Setting<bool> = Setting::new(
    "ssh_batch_mode",
    "core",
    Some("true"),
    "pass -o BatchMode=yes to every ssh, so that it fails instead of prompting",
);
/// Seconds ssh waits for a connection.
pub(crate) static SSH_CONNECT_TIMEOUT: Setting<u32> = Setting::with_kind(
    "ssh_connect_timeout",
    "core",
    SettingKind::Integer { min: 0, max: 3600 },
    Some("10"),
    "seconds every ssh waits to connect (-o ConnectTimeout); 0 leaves ssh's own default",
);
/// Seconds between ssh keepalives.
pub(crate) static SSH_SERVER_ALIVE_INTERVAL: Setting<u32> = Setting::with_kind(
    "ssh_server_alive_interval",
    "core",
    SettingKind::Integer { min: 0, max: 3600 },
    Some("15"),
    "seconds between ssh keepalives (-o ServerAliveInterval); 0 turns them off",
);
/// Keepalives without an answer before ssh gives up.
pub(crate) static SSH_SERVER_ALIVE_COUNT_MAX: Setting<u32> = Setting::with_kind(
    "ssh_server_alive_count_max",
    "core",
    SettingKind::Integer { min: 0, max: 100 },
    Some("4"),
    "unanswered keepalives before ssh gives up on a dead host (-o ServerAliveCountMax)",
);
/// Whether a job's commands to a host share one ssh connection.
pub(crate) static SSH_CONNECTION_SHARING: Setting<bool> = Setting::new(
    "ssh_connection_sharing",
    "core",
    Some("true"),
    "one ssh connection per host for all of a job's commands, rdiff-backup's and rsync's included (a master with its control socket in state_dir/run, private to the job)",
);

/// How many jobs `ari run-all` runs at once.
#[doc(hidden)]
pub static MAX_CONCURRENT_JOBS: Setting<u32> = Setting::with_kind(
    "max_concurrent_jobs",
    "core",
    SettingKind::Integer { min: 1, max: 4096 },
    Some("1"),
    "how many jobs ari run-all runs at once (the original's CONCURRENT_JOBS)",
)
.for_the_process();
/// How many jobs touching one host run at once.
#[doc(hidden)]
pub static MAX_JOBS_PER_HOST: Setting<u32> = Setting::with_kind(
    "max_jobs_per_host",
    "core",
    SettingKind::Integer { min: 1, max: 4096 },
    Some("1"),
    "how many jobs that touch one host (source host, ZFS host, hook hosts) ari run-all runs at once",
)
.for_the_process();
/// `ari status` flags a job whose last success is older than this.
#[doc(hidden)]
pub static MAX_AGE: Setting<Option<std::time::Duration>> = Setting::new(
    "max_age",
    "core",
    None,
    "ari status fails when a job's last success is older than this, e.g. 26h",
)
.for_the_process();
/// When `ari run-all` prints its summary table.
#[doc(hidden)]
pub static SUMMARY: Setting<String> = Setting::with_kind(
    "summary",
    "core",
    SettingKind::Choice(&["always", "failures", "never"]),
    Some("failures"),
    "when ari run-all prints its summary table: always, failures (so cron mails only then), never",
)
.for_the_process();

/// The monitoring URL a job pings (healthchecks.io conventions).
#[doc(hidden)]
pub static PING_URL: Setting<Option<String>> = Setting::with_kind(
    "ping_url",
    "core",
    SettingKind::Text(&kinds::URL),
    None,
    "ping this URL when the job starts (URL/start), succeeds (URL) and fails (URL/fail), with the log's last lines as the body (healthchecks.io conventions); unset: none",
);
/// How long one ping may take.
#[doc(hidden)]
pub static PING_TIMEOUT: Setting<std::time::Duration> = Setting::with_kind(
    "ping_timeout",
    "core",
    SettingKind::DurationAtMost(3600),
    Some("10s"),
    "how long one try of a ping may take, connecting included, at most 1h; a ping never fails a backup",
);
/// How often a failed ping is tried again.
#[doc(hidden)]
pub static PING_RETRIES: Setting<u32> = Setting::with_kind(
    "ping_retries",
    "core",
    SettingKind::Integer { min: 0, max: 10 },
    Some("2"),
    "tries more for a ping that failed (no answer, an error status), a second apart",
);
/// Whether a failure is pinged with its exit code.
#[doc(hidden)]
pub static PING_EXIT_CODE: Setting<bool> = Setting::new(
    "ping_exit_code",
    "core",
    Some("false"),
    "ping a failure as URL/EXIT_CODE (healthchecks.io's exit-status endpoint) instead of URL/fail",
);

/// Where ari writes Prometheus metrics after every real run.
#[doc(hidden)]
pub static METRICS_FILE: Setting<Option<String>> = Setting::with_kind(
    "metrics_file",
    "core",
    SettingKind::Text(&kinds::PATH),
    None,
    "write Prometheus metrics of every job to this file after every real run, for node_exporter's textfile collector (e.g. /var/lib/prometheus/node-exporter/ari.prom); written only where nothing is or over a regular file of ari's user (never through a symlink, over a device or another user's file), in a directory owned by root or ari's user that no one else may write unless it is sticky; unset: none",
)
.for_the_process();

crate::register_settings!(MAX_CONCURRENT_JOBS, MAX_JOBS_PER_HOST, MAX_AGE, SUMMARY, METRICS_FILE,);
crate::register_settings!(PING_URL, PING_TIMEOUT, PING_RETRIES, PING_EXIT_CODE,);

/// Where a host keeps the ssh filter that `ari authorize` generates for ari's key.
pub(crate) static SSH_FILTER_PATH: Setting<String> = Setting::with_kind(
    "ssh_filter_path",
    "core",
    SettingKind::Text(&kinds::PLAIN_PATH),
    Some("/usr/local/lib/ari-backup/ssh-filter"),
    "path on each remote host of the ssh filter that ari authorize generates (the forced command of ari's key there)",
);

/// Options of ari's key on its hosts beside `restrict` and the filter (`from="192.0.2.10"`).
pub(crate) static SSH_KEY_OPTIONS: Setting<Option<String>> = Setting::with_kind(
    "ssh_key_options",
    "core",
    SettingKind::Text(&kinds::KEY_OPTIONS),
    None,
    "more authorized_keys options for ari's key on its hosts, after restrict and the filter, e.g. from=\"192.0.2.10\" (ari authorize); unset: none",
);

/// The authorized_keys file of the remote user that `ari authorize --install` writes.
pub(crate) static AUTHORIZED_KEYS_FILE: Setting<Option<String>> = Setting::with_kind(
    "authorized_keys_file",
    "core",
    SettingKind::Text(&kinds::PATH),
    None,
    "the authorized_keys file on remote hosts that ari authorize --install writes ari's key line into; unset: ~/.ssh/authorized_keys of remote_user",
);

/// Whether every remote command runs as root through `sudo -n`.
pub static REMOTE_SUDO: Setting<bool> = Setting::with_kind(
    "remote_sudo",
    "core",
    SettingKind::Bool,
    Some("false"),
    "run every command on remote hosts (ari's own, and the servers rdiff-backup and rsync start) through sudo -n, for a remote_user that is not root",
);

crate::register_settings!(SSH_FILTER_PATH, SSH_KEY_OPTIONS, AUTHORIZED_KEYS_FILE, REMOTE_SUDO,);

crate::register_settings!(
    VERIFY_SAMPLE,
    VERIFY_MAX_BYTES,
    VERIFY_EVERY,
    VERIFY_TIMEOUT,
    DUMP_TIMEOUT,
    KEEP_WHEN_STALE,
);

crate::register_settings!(
    COMMAND_TIMEOUT,
    JOB_TIMEOUT,
    RETRY_BACKUP,
    SSH_BATCH_MODE,
    SSH_CONNECT_TIMEOUT,
    SSH_SERVER_ALIVE_INTERVAL,
    SSH_SERVER_ALIVE_COUNT_MAX,
    SSH_CONNECTION_SHARING,
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

/// How much of the job's store must be free for a run to start (checked before `pre`).
pub(crate) static MIN_FREE_SPACE: Setting<Option<kinds::FreeSpace>> = Setting::new(
    "min_free_space",
    "core",
    None,
    "refuse to start a run (before any hook or snapshot) while the job's store has less free than this: bytes, e.g. 50G, or a share of the store's size, e.g. 10%; unset: no limit (the figures still go to the metrics)",
);
/// Whether a DEGRADED pool under the job's store refuses a run, rather than warning.
pub(crate) static REFUSE_DEGRADED_POOL: Setting<bool> = Setting::new(
    "refuse_degraded_pool",
    "core",
    Some("false"),
    "refuse to start a run while the pool under the job's store is DEGRADED (a FAULTED, UNAVAIL or SUSPENDED pool always refuses); by default a DEGRADED pool is a warning, so that a disk replacement does not stop backups",
);

crate::register_settings!(MIN_FREE_SPACE, REFUSE_DEGRADED_POOL);

/// How fast a job's transfers may move data, in bytes per second, applied on the backup server
/// (`pv -L` in a stream: a `zfs-send` job's).
pub static BWLIMIT: Setting<Option<kinds::ByteCount>> = Setting::new(
    "bwlimit",
    "core",
    None,
    "the most bytes per second a job's stream moves through the backup server, e.g. 20M (powers of 1024), with pv -L, which must be installed there; used by zfs-send; unset: no limit",
);

crate::register_settings!(BWLIMIT);
