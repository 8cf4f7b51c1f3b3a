//! Mount paths that no other user can redirect: the queries that prove, on the source host and
//! over the job's own connection, that a path ari makes a directory in, mounts on, or removes
//! leads where its text says.
//!
//! ari runs its LVM steps as root, and a path is resolved again by every command that takes it.
//! A directory that another user may change (one they own, or one they may write to) lets them
//! put a symlink or a directory of their own on the path between ari's check and its `mkdir`,
//! `mount`, `umount` or `rmdir`, which then act elsewhere. A path is safe when no one but root
//! can change where it leads, now or later:
//!
//! - every directory on it is a directory (`find -P` looks at a symlink itself: a symlink at any
//!   component is not one), owned by root;
//! - every directory on it is writable by root only, or is sticky (`/tmp`): there, others may
//!   add entries, but only root may rename or remove root's, so the next component, being
//!   root's, stays what it is;
//! - a mount point itself may be anyone's (`/var/lib/mysql` inside the root volume's snapshot
//!   is mysql's): its owner can change what it holds, which the mount covers, but not where its
//!   path leads, which its parent decides. It must still be a directory.
//!
//! The host evaluates the rules itself (`find -P DIR... -maxdepth 0 TESTS -print -o -ls`) and
//! prints each directory that passes as its path and each one that fails as an `ls -dils` line,
//! so the proof is the exact list of paths (hostile output cannot pass unless it is exactly
//! that), and a refusal shows who owns what, with which mode. A path that is not there at all
//! makes `find` fail: in the snapshot phase the step fails with `find`'s message, in recovery it
//! tells that the thing is gone.

use ari_core::step::{Command, Host};

/// Every directory above `path`, from `/` down to its parent: `/`, `/run`, `/run/ari-backup` for
/// `/run/ari-backup/db`; nothing for `/`. `path` is absolute and normalised.
pub(crate) fn ancestors(path: &str) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut dir = path;
    while let Some((parent, _)) = dir.rsplit_once('/') {
        if dir == "/" {
            break;
        }
        let parent = if parent.is_empty() { "/" } else { parent };
        dirs.push(parent.to_string());
        dir = parent;
    }
    dirs.reverse();
    dirs
}

/// [`ancestors`] of `path`, then `path`.
pub(crate) fn chain(path: &str) -> Vec<String> {
    let mut dirs = ancestors(path);
    dirs.push(path.to_string());
    dirs
}

/// The query that shows every directory of `dirs` (a [`chain`]) to be safe, and the exact words
/// it prints when they are: the paths, in order. With `mount_point`, that directory (the last of
/// `dirs`) need only be a directory, whoever owns it.
pub(crate) fn proof(host: &Host, dirs: &[String], mount_point: Option<&str>) -> (Command, Vec<String>) {
    let mut argv: Vec<String> = vec!["find".into(), "-P".into()];
    argv.extend(dirs.iter().cloned());
    argv.extend(words(&["-maxdepth", "0"]));
    // Root's and sticky: others may add entries, not replace root's.
    argv.extend(words(&["-type", "d", "-uid", "0", "-perm", "-1000", "-print", "-o"]));
    // Root's, and writable by root only.
    argv.extend(words(&["-type", "d", "-uid", "0", "-not", "-perm", "/022", "-print", "-o"]));
    if let Some(point) = mount_point {
        argv.extend(words(&["-path", &glob_literal(point), "-type", "d", "-print", "-o"]));
    }
    argv.push("-ls".into());
    (Command::argv(host.clone(), argv), dirs.to_vec())
}

/// `path` as a pattern of `find -path` that matches only itself: fnmatch's special characters
/// behind a backslash.
fn glob_literal(path: &str) -> String {
    let mut pattern = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern
}

/// The query that shows `device` mounted exactly once, at `target`, and the words it prints
/// then: `umount DEVICE` after it cannot unmount anything else, whatever a path now leads to.
/// It fails (the mount is gone) when `device` is mounted nowhere.
pub(crate) fn mounted_at(host: &Host, device: &str, target: &str) -> (Command, Vec<String>) {
    let query = Command::argv(host.clone(), words(&["findmnt", "-n", "-o", "TARGET", "--source", device]));
    (query, vec![target.to_string()])
}

fn words(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_run_from_the_root_to_the_parent() {
        assert_eq!(ancestors("/run/ari-backup/db"), ["/", "/run", "/run/ari-backup"]);
        assert_eq!(ancestors("/tmp"), ["/"]);
        assert!(ancestors("/").is_empty());
        assert_eq!(chain("/tmp/db"), ["/", "/tmp", "/tmp/db"]);
        assert_eq!(chain("/"), ["/"]);
    }

    #[test]
    fn a_proof_expects_exactly_the_paths_it_was_given() {
        let dirs = chain("/run/ari-backup/db");
        let (query, expect) = proof(&Host::Local, &dirs, None);
        assert_eq!(expect, dirs);
        assert_eq!(
            query.program(),
            &ari_core::step::Program::Argv(words(&[
                "find",
                "-P",
                "/",
                "/run",
                "/run/ari-backup",
                "/run/ari-backup/db",
                "-maxdepth",
                "0",
                "-type",
                "d",
                "-uid",
                "0",
                "-perm",
                "-1000",
                "-print",
                "-o",
                "-type",
                "d",
                "-uid",
                "0",
                "-not",
                "-perm",
                "/022",
                "-print",
                "-o",
                "-ls",
            ]))
        );
    }

    #[test]
    fn a_mount_point_is_matched_as_itself() {
        let (query, _) = proof(&Host::Local, &chain("/m/a*b"), Some("/m/a*b"));
        let ari_core::step::Program::Argv(argv) = query.program() else { panic!("an argv") };
        let at = argv.iter().position(|w| w == "-path").expect("a -path test");
        assert_eq!(argv[at + 1], "/m/a\\*b");
        assert_eq!(glob_literal("/a[1]?\\"), "/a\\[1\\]\\?\\\\");
    }
}
