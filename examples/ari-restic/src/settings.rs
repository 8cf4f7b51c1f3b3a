//! The settings of the restic backend and the kind of a restic repository.

use ari_core::prelude::*;

/// A restic repository as `-r` takes it: a local directory, or `BACKEND:LOCATION`.
pub static REPOSITORY: TextKind = TextKind::new(
    "restic repository",
    "an absolute path, or BACKEND:LOCATION with a restic backend (local:, sftp:, rest:, s3:, b2:, azure:, gs:, swift:, rclone:)",
    check_repository,
);

/// restic's repository backends, as `-r` spells them.
const BACKENDS: &[&str] = &["local", "sftp", "rest", "s3", "b2", "azure", "gs", "swift", "rclone"];

/// Checks a repository: an absolute normalised path, or a known backend and a location.
pub fn check_repository(text: &str) -> Result<(), String> {
    if text.starts_with('/') {
        return kinds::PATH.check(text);
    }
    kinds::check_no_control(text)?;
    match text.split_once(':') {
        Some(("local", path)) => kinds::PATH.check(path),
        Some((backend, location)) if BACKENDS.contains(&backend) && !location.is_empty() => Ok(()),
        _ => Err(format!(
            "is neither an absolute path nor BACKEND:LOCATION with a restic backend ({})",
            BACKENDS.join(", ")
        )),
    }
}

/// The repository; required.
pub static RESTIC_REPOSITORY: Setting<Option<String>> = Setting::with_kind(
    "restic_repository",
    "restic",
    SettingKind::Text(&REPOSITORY),
    None,
    "restic repository, as the source host reaches it: a directory or BACKEND:LOCATION (required)",
);

/// The file that holds the repository's password; required, as restic never prompts under ari.
pub static RESTIC_PASSWORD_FILE: Setting<Option<String>> = Setting::with_kind(
    "restic_password_file",
    "restic",
    SettingKind::Text(&kinds::PATH),
    None,
    "file on the source host holding the repository's password (required)",
);

/// The restic binary.
pub static RESTIC_PATH: Setting<String> = Setting::with_kind(
    "restic_path",
    "restic",
    SettingKind::Text(&kinds::PROGRAM),
    Some("restic"),
    "restic binary on the source host",
);

/// How many snapshots of each kind `restic forget` keeps (0: none of that kind).
const KEEP: SettingKind = SettingKind::Integer { min: 0, max: 100_000 };

/// `--keep-last`.
pub static RESTIC_KEEP_LAST: Setting<u32> = Setting::with_kind(
    "restic_keep_last",
    "restic",
    KEEP,
    Some("0"),
    "restic forget --keep-last: keep the newest this many snapshots of the job (0: not by count)",
);

/// `--keep-daily`.
pub static RESTIC_KEEP_DAILY: Setting<u32> = Setting::with_kind(
    "restic_keep_daily",
    "restic",
    KEEP,
    Some("7"),
    "restic forget --keep-daily: keep the newest snapshot of each of this many days (0: none by day)",
);

/// `--keep-weekly`.
pub static RESTIC_KEEP_WEEKLY: Setting<u32> = Setting::with_kind(
    "restic_keep_weekly",
    "restic",
    KEEP,
    Some("4"),
    "restic forget --keep-weekly: keep the newest snapshot of each of this many weeks (0: none by week)",
);

/// `--keep-monthly`.
pub static RESTIC_KEEP_MONTHLY: Setting<u32> = Setting::with_kind(
    "restic_keep_monthly",
    "restic",
    KEEP,
    Some("12"),
    "restic forget --keep-monthly: keep the newest snapshot of each of this many months (0: none by month)",
);

register_settings!(
    RESTIC_REPOSITORY,
    RESTIC_PASSWORD_FILE,
    RESTIC_PATH,
    RESTIC_KEEP_LAST,
    RESTIC_KEEP_DAILY,
    RESTIC_KEEP_WEEKLY,
    RESTIC_KEEP_MONTHLY,
);
