//! The kind of a volume's `mount_options`: only options that restrict the snapshot's mount.
//!
//! `mount -o` takes far more than file system options: `loop` and `offset=` make it read a file
//! or another device, `helper=` and `X-mount.*` make it run a program or make directories and
//! change owners, `bind`, `move` and `remount` make it do something else than mount the
//! snapshot, `context=` and `uid=` relabel or re-own what it shows, and `exec`, `suid` and
//! `dev` widen it. ari runs `mount` as root on the source host, so it passes only the options,
//! from mount(8), ext4(5) and xfs(5), that take something away: the few a snapshot mount needs.

use ari_core::kinds::{self, TextKind};

/// The options ari passes to a snapshot's `mount -o`, with what each does.
pub const ALLOWED: &[(&str, &str)] = &[
    ("ro", "read-only"),
    ("rw", "read-write, mount's default"),
    ("noatime", "no access times written"),
    ("nodiratime", "no access times written for directories"),
    ("relatime", "access times written only when older than the change time"),
    ("nodev", "device files not opened as devices"),
    ("nosuid", "set-user-ID and set-group-ID bits ignored"),
    ("noexec", "nothing executed from the mount"),
    ("nosymfollow", "symlinks not followed in path lookups on the mount"),
    ("norecovery", "ext4 and XFS: the journal not replayed"),
    ("noload", "ext4: the journal not loaded"),
    ("nouuid", "XFS: the snapshot mounted although its UUID is its origin's"),
];

/// `mount -o` options of a snapshot: only [`ALLOWED`] ones.
pub static MOUNT_OPTIONS: TextKind = TextKind::new(
    "snapshot mount options",
    "comma-separated options that only restrict the mount: ro, rw, noatime, nodiratime, relatime, nodev, nosuid, noexec, nosymfollow, norecovery, noload (ext4), nouuid (XFS)",
    check_mount_options,
);

/// Checks a snapshot's `mount -o` options: well formed, as the job model reads a volume's
/// (`kinds::MOUNT_OPTIONS`), and each one of [`ALLOWED`].
pub fn check_mount_options(options: &str) -> Result<(), String> {
    kinds::MOUNT_OPTIONS.check(options)?;
    for option in options.split(',') {
        let name = option.split_once('=').map_or(option, |(name, _)| name);
        if ALLOWED.iter().any(|(allowed, _)| *allowed == option) {
            continue;
        }
        let why = if ALLOWED.iter().any(|(allowed, _)| *allowed == name) {
            "takes no value".to_string()
        } else {
            refusal(name).to_string()
        };
        let names: Vec<&str> = ALLOWED.iter().map(|(name, _)| *name).collect();
        return Err(format!(
            "holds `{}`, which {why}: ari passes only options that restrict a snapshot's mount ({}){}",
            kinds::shown(option),
            names.join(", "),
            ari_core::error::did_you_mean(name, names.iter().copied())
        ));
    }
    Ok(())
}

/// Why mount option `name` is refused, by what it would make mount do.
fn refusal(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "loop" | "offset" | "sizelimit" | "encryption" | "hash" | "sb" => {
            "makes mount read a file or another place than the snapshot"
        }
        "helper" => "makes mount run a helper program",
        "context" | "fscontext" | "defcontext" | "rootcontext" | "seclabel" => {
            "sets security contexts on what the mount shows"
        }
        "uid" | "gid" | "umask" | "fmask" | "dmask" | "mode" | "owner" | "group" | "user" | "users"
        | "nouser" | "resuid" | "resgid" | "grpid" | "bsdgroups" => "changes who owns the files or who may mount",
        "bind" | "rbind" | "move" | "remount" | "shared" | "rshared" | "private" | "rprivate" | "slave"
        | "rslave" | "unbindable" | "runbindable" | "propagation" => "makes mount do something else than mount the snapshot",
        "exec" | "suid" | "dev" | "defaults" | "symfollow" | "strictatime" | "atime" | "diratime" => {
            "widens what the mount allows"
        }
        _ if lower.starts_with("make-") => "makes mount do something else than mount the snapshot",
        _ if lower.starts_with("x-") => {
            "is read by mount's helpers and other programs, not by the file system (`X-mount.mkdir` makes directories, `X-mount.owner` changes owners)"
        }
        _ => "is none ari knows to only restrict a mount",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricting_options_pass() {
        for ok in
            ["ro", "ro,noatime", "noatime,ro", "ro,norecovery,nouuid", "ro,noload,nodev,nosuid,noexec", "rw"]
        {
            assert_eq!(check_mount_options(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn options_that_redirect_run_or_widen_are_refused_by_what_they_do() {
        let check = |options: &str, why: &str| {
            let err = check_mount_options(options).unwrap_err();
            assert!(err.contains(why), "{options}: {err}");
        };
        check("loop", "holds `loop`, which makes mount read a file or another place than the snapshot");
        check("ro,offset=512", "holds `offset=512`, which makes mount read a file");
        check("helper=udisks2", "run a helper program");
        check("ro,x-gvfs-show", "mount's helpers and other programs");
        check("X-mount.mkdir", "`X-mount.mkdir` makes directories");
        check("X-mount.owner=alice", "mount's helpers");
        check("context=system_u:object_r:tmp_t:s0", "security contexts");
        check("uid=1000", "who owns the files");
        check("bind", "something else than mount the snapshot");
        check("ro,remount", "something else than mount the snapshot");
        check("make-shared", "something else than mount the snapshot");
        check("exec", "widens what the mount allows");
        check("ro,suid", "widens");
        check("defaults", "widens");
        check("ro=1", "holds `ro=1`, which takes no value");
        check("noatim", "(did you mean `noatime`?)");
        check("errors=panic", "none ari knows to only restrict a mount");
        check("ro,,x", "empty option");
        check("-o", "must not start with `-`");
    }

    #[test]
    fn a_refusal_lists_what_is_allowed() {
        let err = check_mount_options("bogus").unwrap_err();
        assert!(err.contains("(ro, rw, noatime, nodiratime, relatime, nodev, nosuid, noexec, nosymfollow, norecovery, noload, nouuid)"), "{err}");
    }
}
