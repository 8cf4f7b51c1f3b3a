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
    SettingKind::Text(&kinds::LV_SUFFIX),
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
pub static SIZE: TextKind = TextKind {
    name: "size",
    accepts: "a positive size as lvcreate -L takes it: a number with an optional unit b, s, k, m, g, t, p, e (`1G`, `500M`, `2.5g`; megabytes without one)",
    check: check_size,
};

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
    fn sizes() {
        for ok in ["1G", "500M", "2.5g", "100", "1t", "0.5G"] {
            assert_eq!(check_size(ok), Ok(()), "{ok}");
        }
        for bad in ["", "G", "1GB", "1.2.3G", "-1G", "10%ORIGIN", "0", "0G", "0.0", ".5G", "5.G", "1 G"] {
            assert!(check_size(bad).is_err(), "{bad}");
        }
    }
}
