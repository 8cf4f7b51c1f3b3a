//! The settings of the LVM snapshot source, with the original ari-backup's names and defaults.

use ari_core::kinds::{self, TextKind};
use ari_core::settings::{Setting, SettingKind};

/// Snapshots are mounted under `snapshot_mount_root/label`. The original's `/tmp` let any local
/// user plant the mount directory; ari's default is a directory only root may enter, which ari
/// makes (0700) when it is missing.
pub static SNAPSHOT_MOUNT_ROOT: Setting<String> = Setting::with_kind(
    "snapshot_mount_root",
    "lvm",
    SettingKind::Text(&kinds::PATH),
    Some("/run/ari-backup"),
    "snapshots are mounted under SNAPSHOT_MOUNT_ROOT/LABEL on the source host (made 0700 when missing; every directory on the path must be root's and writable by root only, or sticky)",
);
/// A snapshot's LV name is the volume's name plus this suffix.
pub static SNAPSHOT_SUFFIX: Setting<String> = Setting::with_kind(
    "snapshot_suffix",
    "lvm",
    SettingKind::Text(&LV_SUFFIX),
    Some("-ari_backup"),
    "a snapshot's LV name is the volume's LV name plus this suffix",
);
/// The size of each snapshot, as `lvcreate -L` takes it.
pub static SNAPSHOT_SIZE: Setting<String> = Setting::with_kind(
    "snapshot_size",
    "lvm",
    SettingKind::Text(&SIZE),
    Some("1G"),
    "size of each snapshot (lvcreate -L), e.g. 1G or 500M",
);

/// A size as `lvcreate -L` takes it.
pub static SIZE: TextKind = TextKind::new(
    "size",
    "a positive size as lvcreate -L takes it: a number with an optional unit b, s, k, m, g, t, p, e (`1G`, `500M`, `2.5g`; megabytes without one)",
    check_size,
);

/// The suffix that makes a snapshot's LV name from its origin's.
pub static LV_SUFFIX: TextKind = TextKind::new(
    "lv suffix",
    "a non-empty suffix of LVM name characters (letters, digits, `+`, `_`, `.`, `-`)",
    check_lv_suffix,
);

/// Checks a snapshot suffix: never empty, so that a snapshot can never be named as its origin.
/// Whether the name it makes is one LVM takes, the source checks with each volume's name.
pub fn check_lv_suffix(suffix: &str) -> Result<(), String> {
    if suffix.is_empty() {
        return Err("is empty, which would give the snapshot its origin's name".into());
    }
    match suffix.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '_' | '.' | '-'))) {
        Some(c) => Err(format!(
            "holds `{}` (LVM names hold letters, digits, `+`, `_`, `.`, `-`)",
            c.escape_default()
        )),
        None => Ok(()),
    }
}

/// Checks an `lvcreate -L` size: a positive number with an optional unit.
pub fn check_size(size: &str) -> Result<(), String> {
    let number = size.strip_suffix(|c: char| "bBsSkKmMgGtTpPeE".contains(c)).unwrap_or(size);
    let well_formed = !number.is_empty()
        && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        && number.chars().filter(|c| *c == '.').count() <= 1
        && !number.starts_with('.')
        && !number.ends_with('.');
    if !well_formed {
        return Err("is not a size like 1G or 500M".into());
    }
    if !number.chars().any(|c| c.is_ascii_digit() && c != '0') {
        return Err("is zero: a snapshot needs room for the changes made while it exists".into());
    }
    Ok(())
}

ari_core::register_settings!(SNAPSHOT_MOUNT_ROOT, SNAPSHOT_SUFFIX, SNAPSHOT_SIZE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes() {
        for ok in ["-ari_backup", "_snap", ".1"] {
            assert_eq!(check_lv_suffix(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [("", "its origin's name"), ("/x", "`/`"), ("a b", "` `")] {
            let err = check_lv_suffix(bad).unwrap_err();
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn sizes() {
        for ok in ["1G", "500M", "2.5g", "100", "1t", "0.5G"] {
            assert_eq!(check_size(ok), Ok(()), "{ok}");
        }
        for bad in ["", "G", "1GB", "1.2.3G", "-1G", "10%ORIGIN", "0", "0G", "0.0", ".5G", "5.G", "1 G"] {
            assert!(check_size(bad).is_err(), "{bad}");
        }
    }
}
