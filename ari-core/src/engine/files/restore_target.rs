//! Where `ari restore` writes, and the only way it writes there, so that a restore never writes
//! or removes anything outside DIR/PATH, whatever another local user prepared on the way.
//!
//! rdiff-backup and rsync resolve the paths they are given themselves, following every symlink,
//! so ari cannot bound them with its own `openat`. Instead (SECURITY.md, "Restoring"):
//!
//! - DIR's path is walked from `/` one directory at a time, each held open (`O_PATH`) and judged
//!   by `fstat` of what was opened: it must be owned by root or by ari's user, and writable by
//!   no other user unless it is sticky (`/tmp`), where no other user can move or replace the
//!   entry below it, which is judged in turn. A symlink on the way is followed only when root
//!   or ari's user owns it. A missing directory is made 0700 with `mkdirat` on the held parent.
//! - The copy goes into a fresh 0700 staging directory that ari makes in DIR and holds open; the
//!   tool is handed `/proc/PID/fd/N/copy/NAME`, a path through ari's own descriptor, so whatever
//!   happens to DIR's path meanwhile, the tool writes where ari holds, on DIR's filesystem.
//! - The result moves into DIR/PATH by descriptors: each directory below DIR is opened with
//!   `O_NOFOLLOW` (a symlink there is an error, never followed) and judged as above, a missing
//!   one is made 0700 with `mkdirat`, then one `renameat2`: `RENAME_NOREPLACE`, or with
//!   `--force` `RENAME_EXCHANGE`, which puts the old DIR/PATH into the staging directory in the
//!   same step. The staging directory is then removed by descriptors, never following a
//!   symlink and never entering another filesystem.
//! - DIR/PATH and the store are compared by device and inode, not by their names.
//!
//! Until the move, DIR is as it was after a failure: the staging directory, and every directory
//! ari made for the restore, are removed again.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, Stat, CWD};
use rustix::io::Errno;

use super::guard::{effective_uid, user_text, DIR_MODE, WRITE_BITS};
use crate::contract::plugin::Directory;

/// How many symlinks DIR's path may pass through: the kernel's own limit.
const MAX_LINKS: usize = 40;
/// How deep a tree ari removes (the old DIR/PATH with `--force`, a discarded copy) before it
/// leaves the rest and says so; each level holds a descriptor.
const MAX_DEPTH: usize = 256;
/// The staging directory's name in DIR, before `PID-N`.
const STAGING_PREFIX: &str = ".ari-restore-";
/// The directory in the staging directory that the tool writes into. rdiff-backup looks for a
/// temp name next to its target with `lstat` of the target's parent, which for a descriptor's
/// `/proc` entry is a symlink; a real directory below it is what the tool is given.
const COPY: &str = "copy";
/// The sticky bit: in such a directory only an entry's owner (and the directory's, and root)
/// may rename or remove it.
const STICKY: u32 = 0o1000;

/// Why a restore target was refused, or could not be prepared or filled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// A symlink on DIR's path that another user owns.
    #[error(
        "{} is a symlink owned by {}: ari follows no symlink another user could have made or \
         changed; give --to as a path of directories of root or of {}",
        path.display(),
        user_text(*owner),
        user_text(effective_uid())
    )]
    ForeignSymlink {
        /// The symlink.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
    },
    /// A symlink below DIR, on the way to DIR/PATH.
    #[error(
        "{} is a symlink (to {}): below --to ari follows no symlink, so that nothing of the \
         restore goes elsewhere; remove it or choose another --to",
        path.display(),
        target.display()
    )]
    SymlinkBelow {
        /// The symlink.
        path: PathBuf,
        /// What it points to.
        target: PathBuf,
    },
    /// A directory on the way that another user owns.
    #[error(
        "{} is owned by {} (mode {mode:04o}): that user could move or replace what ari writes \
         there; restore into directories of root or of {}",
        path.display(),
        user_text(*owner),
        user_text(effective_uid())
    )]
    ForeignOwner {
        /// The directory.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// A directory on the way that other users may write, without the sticky bit.
    #[error(
        "{} has mode {mode:04o}: {who} may rename or replace what it holds, so nothing is \
         restored through it; use a directory only its owner may write (or a sticky one, like \
         /tmp)",
        path.display()
    )]
    OpenToOthers {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// `its group`, `other users`, or both.
        who: &'static str,
    },
    /// Something else than a directory where the way to DIR/PATH needs one.
    #[error("{} is {found}, not a directory", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
        /// What is there.
        found: &'static str,
    },
    /// DIR's path passes through too many symlinks.
    #[error("{}: more than {MAX_LINKS} symlinks on the way", path.display())]
    TooManyLinks {
        /// Where the walk was.
        path: PathBuf,
    },
    /// DIR/PATH would be inside one of the backend's directories, or hold one.
    #[error("{} would be inside {setting} ({}) or hold it; restore outside the store", target.display(), store.display())]
    InStore {
        /// DIR/PATH.
        target: PathBuf,
        /// The setting that names the store's directory.
        setting: &'static str,
        /// The store's directory.
        store: PathBuf,
    },
    /// DIR/PATH exists, and `--force` was not given.
    #[error(
        "{} exists, and ari never overwrites: choose another --to, or give --force to replace it",
        path.display()
    )]
    Exists {
        /// DIR/PATH.
        path: PathBuf,
    },
    /// PATH `/` with `--to /`: the restore would replace `/`.
    #[error("PATH / is restored as --to itself, so --to cannot be /")]
    RootIntoRoot,
    /// A tree ari removes holds another filesystem, or is deeper than ari goes.
    #[error("{} {why}, so ari left it", path.display())]
    Left {
        /// What was left.
        path: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// A write in a process that promised to write nothing.
    #[error("not writing {}: this command writes nothing", path.display())]
    WritesForbidden {
        /// What would have been written.
        path: PathBuf,
    },
    /// The filesystem said no.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// `open`, `create`, `move`, ...
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn failed<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(Errno) -> TargetError + 'a {
    move |errno| TargetError::Io { action, path: path.to_path_buf(), source: errno.into() }
}

/// A directory that a walk which makes what is missing did not find (it never stops there).
fn missing(path: &Path) -> TargetError {
    TargetError::Io { action: "reach", path: path.to_path_buf(), source: io::ErrorKind::NotFound.into() }
}

/// Where a restore goes: DIR joined with PATH, split where ari's checks change.
#[derive(Debug, Clone)]
pub struct RestoreTarget {
    /// The directory that holds the staging directory, and below which the target is reached
    /// without symlinks: DIR, or DIR's parent when PATH is `/` (then the target is DIR).
    anchor: PathBuf,
    /// The names from `anchor` to the target, the last one the target's own.
    below: Vec<OsString>,
}

impl RestoreTarget {
    /// The target `dir` (absolute, without `..`) joined with `path` (absolute, normalised).
    pub fn new(dir: &Path, path: &str) -> Result<RestoreTarget, TargetError> {
        let names = |p: &Path| -> Vec<OsString> {
            p.components()
                .filter_map(|c| match c {
                    Component::Normal(name) => Some(name.to_os_string()),
                    _ => None,
                })
                .collect()
        };
        let below = names(Path::new(path));
        if !below.is_empty() {
            return Ok(RestoreTarget { anchor: dir.to_path_buf(), below });
        }
        let mut dir_names = names(dir);
        let Some(last) = dir_names.pop() else { return Err(TargetError::RootIntoRoot) };
        let anchor = dir_names.iter().fold(PathBuf::from("/"), |path, name| path.join(name));
        Ok(RestoreTarget { anchor, below: vec![last] })
    }

    /// DIR/PATH.
    pub fn path(&self) -> PathBuf {
        self.below.iter().fold(self.anchor.clone(), |path, name| path.join(name))
    }

    /// The directory the staging directory is made in: DIR, or DIR's parent when PATH is `/`.
    pub fn staged_in(&self) -> &Path {
        &self.anchor
    }

    /// Where the copy would go before it moves to DIR/PATH, as a path through DIR's name, for a
    /// dry run to show (a real run hands the tool a path through its descriptor).
    pub fn staging_preview(&self) -> String {
        let staging = self.anchor.join(format!("{STAGING_PREFIX}{}", std::process::id()));
        staging.join(COPY).join(self.name()).to_string_lossy().into_owned()
    }

    fn name(&self) -> &OsStr {
        self.below.last().map(OsString::as_os_str).unwrap_or_default()
    }

    fn parents(&self) -> &[OsString] {
        &self.below[..self.below.len().saturating_sub(1)]
    }

    /// Checks the target as it is now, writing nothing: every directory on the way (those that
    /// exist) as [`RestoreTarget::stage`] will judge it, the store apart from it, and DIR/PATH
    /// absent unless `force`.
    pub fn check(&self, directories: &[Directory], force: bool) -> Result<(), TargetError> {
        let stores = Stores::find(directories);
        let mut walk = Walk { make: false, stores: &stores, target: self.path(), made: Vec::new() };
        let Some(anchor) = walk.open_dir(&self.anchor)? else { return Ok(()) };
        let Some(parent) = walk.open_below(&anchor, self.parents())? else { return Ok(()) };
        walk.check_target(&parent, self.name(), force).map(|_| ())
    }

    /// Makes what the copy needs: DIR (and the directories above it that are missing), then a
    /// fresh staging directory in it, each checked as [`RestoreTarget::check`] does. On an
    /// error, what it made is removed again.
    pub fn stage(&self, directories: &[Directory], force: bool) -> Result<Staging, TargetError> {
        super::guard::guard_write(&self.anchor)
            .map_err(|_| TargetError::WritesForbidden { path: self.anchor.clone() })?;
        let stores = Stores::find(directories);
        let mut walk = Walk { make: true, stores: &stores, target: self.path(), made: Vec::new() };
        let staged = walk.open_dir(&self.anchor).and_then(|anchor| {
            let anchor = anchor.ok_or_else(|| missing(&self.anchor))?;
            // Refused now rather than after the copy: the directories below DIR are only
            // looked at (they are made when the copy is moved into place).
            let mut look = Walk { make: false, stores: &stores, target: self.path(), made: Vec::new() };
            if let Some(parent) = look.open_below(&anchor, self.parents())? {
                look.check_target(&parent, self.name(), force)?;
            }
            let (name, dir, copy) = make_staging(&anchor)?;
            Ok((anchor, name, dir, copy))
        });
        let made = std::mem::take(&mut walk.made);
        match staged {
            Ok((anchor, name, dir, copy)) => {
                Ok(Staging { target: self.clone(), stores, anchor, made, name, dir, copy })
            }
            Err(err) => {
                undo(made);
                Err(err)
            }
        }
    }
}

/// The fresh staging directory of one restore, in DIR, held open; made by
/// [`RestoreTarget::stage`], ended by [`Staging::place`] or [`Staging::discard`] (never by
/// `Drop`, which could not report a failure).
#[derive(Debug)]
pub struct Staging {
    target: RestoreTarget,
    stores: Stores,
    /// DIR (or DIR's parent when PATH is `/`).
    anchor: Held,
    /// The directories on DIR's path that ari made, in the order made.
    made: Vec<Made>,
    /// The staging directory's name in `anchor`.
    name: OsString,
    /// The staging directory.
    dir: OwnedFd,
    /// Its `copy` directory, where the tool writes.
    copy: OwnedFd,
}

/// How a placed restore ended.
#[derive(Debug)]
#[non_exhaustive]
pub struct Placed {
    /// Whether DIR/PATH is now a directory.
    pub is_dir: bool,
    /// What of the staging directory (with `--force`, the old DIR/PATH) could not be removed.
    pub leftover: Option<TargetError>,
}

impl Staging {
    /// The path the tool creates: `/proc/PID/fd/N/copy/NAME`, through ari's descriptor of the
    /// staging directory, NAME being DIR/PATH's last part.
    pub fn copy_path(&self) -> String {
        format!(
            "/proc/{}/fd/{}/{COPY}/{}",
            std::process::id(),
            self.dir.as_raw_fd(),
            self.target.name().to_string_lossy()
        )
    }

    /// The staging directory, as a path through DIR's name, for messages.
    pub fn path(&self) -> PathBuf {
        self.anchor.path.join(&self.name)
    }

    /// Whether the tool made NAME in the staging directory.
    pub fn holds_copy(&self) -> Result<bool, TargetError> {
        match rustix::fs::statat(&self.copy, self.target.name(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(errno) => Err(failed("inspect", &self.path().join(COPY).join(self.target.name()))(errno)),
        }
    }

    /// Whether the copy at NAME is a regular file (a link there is not followed).
    pub fn holds_file(&self) -> Result<bool, TargetError> {
        match rustix::fs::statat(&self.copy, self.target.name(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile),
            Err(Errno::NOENT) => Ok(false),
            Err(errno) => Err(failed("inspect", &self.path().join(COPY).join(self.target.name()))(errno)),
        }
    }

    /// Moves the copy to DIR/PATH (with `force`, in one exchange with what was there) and
    /// removes the staging directory. On an error DIR/PATH is as it was, and the staging
    /// directory and the directories ari made are removed (a failure to remove them is logged).
    pub fn place(self, force: bool) -> Result<Placed, TargetError> {
        let mut walk =
            Walk { make: true, stores: &self.stores, target: self.target.path(), made: Vec::new() };
        let moved = self.move_into_place(&mut walk, force);
        let made_below = std::mem::take(&mut walk.made);
        match moved {
            Ok(is_dir) => {
                let leftover = remove_tree(self.anchor.fd.as_fd(), &self.name, &self.path(), None, 0).err();
                Ok(Placed { is_dir, leftover })
            }
            Err(err) => {
                undo(made_below);
                self.discard();
                Err(err)
            }
        }
    }

    fn move_into_place(&self, walk: &mut Walk, force: bool) -> Result<bool, TargetError> {
        let name = self.target.name();
        let target = self.target.path();
        let copy = rustix::fs::statat(&self.copy, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(failed("inspect", &self.path().join(COPY).join(name)))?;
        let is_dir = FileType::from_raw_mode(copy.st_mode) == FileType::Directory;
        let parent = walk.open_below(&self.anchor, self.target.parents())?.ok_or_else(|| missing(&target))?;
        // Twice at most: DIR/PATH may appear or go between the look and the move (only root or
        // ari's user can do that in a directory that passed the walk).
        let mut tries = 2;
        loop {
            tries -= 1;
            let exists = walk.check_target(&parent, name, force)?;
            let flags = if exists { RenameFlags::EXCHANGE } else { RenameFlags::NOREPLACE };
            return match rustix::fs::renameat_with(&self.copy, name, &parent.fd, name, flags) {
                Ok(()) => Ok(is_dir),
                Err(Errno::EXIST | Errno::NOENT) if tries > 0 => continue,
                Err(Errno::EXIST) => Err(TargetError::Exists { path: target }),
                // A filesystem without renameat2's flags (some network filesystems).
                Err(Errno::INVAL) => self.move_without_flags(&parent, exists, &target).map(|()| is_dir),
                Err(errno) => Err(failed("move the copy to", &target)(errno)),
            };
        }
    }

    /// The move in two renames, where the filesystem has no exchange: the old DIR/PATH into the
    /// staging directory first, and back if the copy cannot take its place.
    fn move_without_flags(&self, parent: &Held, exists: bool, target: &Path) -> Result<(), TargetError> {
        let name = self.target.name();
        let old = OsStr::new("old");
        if exists {
            rustix::fs::renameat(&parent.fd, name, &self.dir, old).map_err(failed("move aside", target))?;
        } else if rustix::fs::statat(&parent.fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
            return Err(TargetError::Exists { path: target.to_path_buf() });
        }
        if let Err(errno) = rustix::fs::renameat(&self.copy, name, &parent.fd, name) {
            if exists {
                if let Err(back) = rustix::fs::renameat(&self.dir, old, &parent.fd, name) {
                    log::error!(
                        "cannot move {} back to {}: {back}",
                        self.path().join(old).display(),
                        target.display()
                    );
                }
            }
            return Err(failed("move the copy to", target)(errno));
        }
        Ok(())
    }

    /// Removes the staging directory with the copy in it, and the directories ari made on
    /// DIR's path; DIR is then as it was. What cannot be removed is logged.
    pub fn discard(self) {
        if let Err(err) = remove_tree(self.anchor.fd.as_fd(), &self.name, &self.path(), None, 0) {
            log::warn!("{}", crate::contract::error::chain(&err));
        }
        drop(self.copy);
        drop(self.dir);
        undo(self.made);
    }
}

/// A directory the walk holds open, what `fstat` said of it, and its path as walked.
#[derive(Debug)]
struct Held {
    fd: OwnedFd,
    stat: Stat,
    path: PathBuf,
}

impl Held {
    fn dup(&self) -> Result<Held, TargetError> {
        let fd = self.fd.try_clone().map_err(|source| TargetError::Io {
            action: "hold",
            path: self.path.clone(),
            source,
        })?;
        Ok(Held { fd, stat: self.stat, path: self.path.clone() })
    }
}

/// A directory that a restore made, to be removed again if the restore does not finish.
#[derive(Debug)]
struct Made {
    parent: OwnedFd,
    name: OsString,
    path: PathBuf,
}

/// Removes the directories ari made, newest first; only empty ones go (`unlinkat` with
/// `AT_REMOVEDIR`), and what stays is logged.
fn undo(made: Vec<Made>) {
    for made in made.into_iter().rev() {
        if let Err(errno) = rustix::fs::unlinkat(&made.parent, &made.name, AtFlags::REMOVEDIR) {
            log::warn!("cannot remove {}, which ari made for the restore: {errno}", made.path.display());
        }
    }
}

/// The store's directories by identity (device, inode), with the setting and path that name them.
#[derive(Debug, Default)]
struct Stores {
    /// Each store directory itself.
    stores: Vec<(u64, u64, &'static str, PathBuf)>,
    /// Each store directory and every directory above it.
    and_above: Vec<(u64, u64, &'static str, PathBuf)>,
}

impl Stores {
    /// The backend's directories as they are now; one that does not exist holds nothing yet. Its
    /// path is the admin's setting, so it is followed as written; the directories above it are
    /// found by `..` from the store itself, so they are the real ones.
    fn find(directories: &[Directory]) -> Stores {
        let mut stores = Stores::default();
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        for directory in directories {
            let Ok(mut fd) = rustix::fs::openat(CWD, directory.path.as_str(), flags, Mode::empty()) else {
                continue;
            };
            let Ok(mut stat) = rustix::fs::fstat(&fd) else { continue };
            let entry =
                |stat: &Stat| (stat.st_dev, stat.st_ino, directory.setting, PathBuf::from(&directory.path));
            stores.stores.push(entry(&stat));
            loop {
                stores.and_above.push(entry(&stat));
                let Ok(up) = rustix::fs::openat(&fd, "..", flags, Mode::empty()) else { break };
                let Ok(up_stat) = rustix::fs::fstat(&up) else { break };
                if (up_stat.st_dev, up_stat.st_ino) == (stat.st_dev, stat.st_ino) {
                    break;
                }
                (fd, stat) = (up, up_stat);
            }
        }
        stores
    }

    fn find_in(list: &[(u64, u64, &'static str, PathBuf)], stat: &Stat) -> Option<(&'static str, PathBuf)> {
        list.iter()
            .find(|(dev, ino, _, _)| (*dev, *ino) == (stat.st_dev, stat.st_ino))
            .map(|(_, _, setting, path)| (*setting, path.clone()))
    }
}

/// One walk towards the target, holding each directory it passes.
struct Walk<'a> {
    /// Whether missing directories are made (else the walk stops there).
    make: bool,
    stores: &'a Stores,
    /// DIR/PATH, for messages.
    target: PathBuf,
    /// What this walk made.
    made: Vec<Made>,
}

/// What one step of a walk found.
enum Next {
    Dir(Held),
    Link(PathBuf),
    Missing,
}

impl Walk<'_> {
    /// Opens `dir` from `/`, following symlinks that root or ari's user owns; `None` when only
    /// looking and a part of it is missing (ari would make it, and everything below).
    fn open_dir(&mut self, dir: &Path) -> Result<Option<Held>, TargetError> {
        let root =
            rustix::fs::openat(CWD, "/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(failed("open", Path::new("/")))?;
        let stat = rustix::fs::fstat(&root).map_err(failed("inspect", Path::new("/")))?;
        let root = Held { fd: root, stat, path: PathBuf::from("/") };
        self.judge(&root)?;
        let mut stack = vec![root];
        let mut todo: VecDeque<OsString> = names(dir).collect();
        let mut links = 0;
        while let Some(name) = todo.pop_front() {
            if name == ".." {
                if stack.len() > 1 {
                    stack.pop();
                }
                continue;
            }
            let parent = stack.last().expect("the walk holds / at least");
            match self.step(parent, &name, true)? {
                Next::Dir(held) => stack.push(held),
                Next::Missing => return Ok(None),
                Next::Link(target) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(TargetError::TooManyLinks { path: parent.path.join(&name) });
                    }
                    if target.is_absolute() {
                        stack.truncate(1);
                    }
                    for name in names(&target).collect::<Vec<_>>().into_iter().rev() {
                        todo.push_front(name);
                    }
                }
            }
        }
        Ok(stack.pop())
    }

    /// Opens `parents` below `anchor` one at a time, following no symlink; `None` when only
    /// looking and one is missing.
    fn open_below(&mut self, anchor: &Held, parents: &[OsString]) -> Result<Option<Held>, TargetError> {
        let mut here = anchor.dup()?;
        for name in parents {
            match self.step(&here, name, false)? {
                Next::Dir(held) => here = held,
                Next::Missing => return Ok(None),
                Next::Link(_) => unreachable!("a step that follows no symlink returns none"),
            }
        }
        Ok(Some(here))
    }

    /// Whether DIR/PATH (`name` in `parent`) exists: an error when it does without `force`, or
    /// when it holds the store.
    fn check_target(&self, parent: &Held, name: &OsStr, force: bool) -> Result<bool, TargetError> {
        let stat = match rustix::fs::statat(&parent.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(false),
            Err(errno) => return Err(failed("inspect", &self.target)(errno)),
        };
        if !force {
            return Err(TargetError::Exists { path: self.target.clone() });
        }
        if let Some((setting, store)) = Stores::find_in(&self.stores.and_above, &stat) {
            return Err(TargetError::InStore { target: self.target.clone(), setting, store });
        }
        Ok(true)
    }

    /// Opens `name` in `parent` without following it, making it when missing and making.
    fn step(&mut self, parent: &Held, name: &OsStr, follow: bool) -> Result<Next, TargetError> {
        let path = parent.path.join(name);
        let fd = match rustix::fs::openat(
            &parent.fd,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) if self.make => return self.make_dir(parent, name, path),
            Err(Errno::NOENT) => return Ok(Next::Missing),
            Err(errno) => return Err(failed("open", &path)(errno)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(failed("inspect", &path))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                let held = Held { fd, stat, path };
                self.judge(&held)?;
                Ok(Next::Dir(held))
            }
            FileType::Symlink => {
                let target =
                    rustix::fs::readlinkat(&fd, "", Vec::new()).map_err(failed("read the symlink", &path))?;
                let target = PathBuf::from(OsStr::from_bytes(target.as_bytes()));
                if !follow {
                    return Err(TargetError::SymlinkBelow { path, target });
                }
                if !trusted(stat.st_uid) {
                    return Err(TargetError::ForeignSymlink { path, owner: stat.st_uid });
                }
                Ok(Next::Link(target))
            }
            other => Err(TargetError::NotADirectory { path, found: kind(other) }),
        }
    }

    /// Makes `name` in `parent`, 0700 whatever the umask, and remembers it for [`undo`]; one
    /// that appeared meanwhile is opened and judged instead.
    fn make_dir(&mut self, parent: &Held, name: &OsStr, path: PathBuf) -> Result<Next, TargetError> {
        super::guard::guard_write(&path).map_err(|_| TargetError::WritesForbidden { path: path.clone() })?;
        match rustix::fs::mkdirat(&parent.fd, name, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) => {}
            Err(Errno::EXIST) => {
                let mut again =
                    Walk { make: false, stores: self.stores, target: self.target.clone(), made: Vec::new() };
                return again.step(parent, name, false);
            }
            Err(errno) => return Err(failed("create", &path)(errno)),
        }
        let parent_fd = parent.fd.try_clone().map_err(|source| TargetError::Io {
            action: "hold",
            path: parent.path.clone(),
            source,
        })?;
        self.made.push(Made { parent: parent_fd, name: name.to_os_string(), path: path.clone() });
        let (fd, stat) = open_private(parent.fd.as_fd(), name, &path)?;
        let held = Held { fd, stat, path };
        self.judge(&held)?;
        Ok(Next::Dir(held))
    }

    /// A directory the restore may pass: root's or ari's user's, writable by no one else unless
    /// sticky, and not the store.
    fn judge(&self, held: &Held) -> Result<(), TargetError> {
        let (owner, mode) = (held.stat.st_uid, held.stat.st_mode & 0o7777);
        if !trusted(owner) {
            return Err(TargetError::ForeignOwner { path: held.path.clone(), owner, mode });
        }
        if mode & WRITE_BITS != 0 && mode & STICKY == 0 {
            let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
                (true, true) => "its group and other users",
                (true, false) => "its group",
                _ => "other users",
            };
            return Err(TargetError::OpenToOthers { path: held.path.clone(), mode, who });
        }
        if let Some((setting, store)) = Stores::find_in(&self.stores.stores, &held.stat) {
            return Err(TargetError::InStore { target: self.target.clone(), setting, store });
        }
        Ok(())
    }
}

/// Whether a directory or symlink of `uid` can be trusted not to change under ari: root's, or
/// ari's own user's.
fn trusted(uid: u32) -> bool {
    uid == 0 || uid == effective_uid()
}

/// The plain names of `path`, `..` included (a symlink's target may go up).
fn names(path: &Path) -> impl Iterator<Item = OsString> + '_ {
    path.components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_os_string()),
        Component::ParentDir => Some(OsString::from("..")),
        _ => None,
    })
}

/// Opens the directory `name` that ari has just made in `dir` and makes it exactly 0700.
fn open_private(dir: BorrowedFd, name: &OsStr, path: &Path) -> Result<(OwnedFd, Stat), TargetError> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty()).map_err(failed("open", path))?;
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(DIR_MODE)).map_err(failed("change the mode of", path))?;
    let stat = rustix::fs::fstat(&fd).map_err(failed("inspect", path))?;
    Ok((fd, stat))
}

/// A fresh staging directory `.ari-restore-PID-N` in `anchor` with its `copy` directory, each
/// 0700: its name, and both held open.
fn make_staging(anchor: &Held) -> Result<(OsString, OwnedFd, OwnedFd), TargetError> {
    for n in 0.. {
        let name = OsString::from(format!("{STAGING_PREFIX}{}-{n}", std::process::id()));
        let path = anchor.path.join(&name);
        match rustix::fs::mkdirat(&anchor.fd, &name, Mode::from_raw_mode(DIR_MODE)) {
            Ok(()) => {}
            // Left by a crashed ari of the same pid: try the next name.
            Err(Errno::EXIST) => continue,
            Err(errno) => return Err(failed("create", &path)(errno)),
        }
        let made = (|| {
            let (dir, _) = open_private(anchor.fd.as_fd(), &name, &path)?;
            let copy_path = path.join(COPY);
            rustix::fs::mkdirat(&dir, COPY, Mode::from_raw_mode(DIR_MODE))
                .map_err(failed("create", &copy_path))?;
            let (copy, _) = open_private(dir.as_fd(), OsStr::new(COPY), &copy_path)?;
            Ok((dir, copy))
        })();
        return match made {
            Ok((dir, copy)) => Ok((name, dir, copy)),
            Err(err) => {
                if let Err(left) = remove_tree(anchor.fd.as_fd(), &name, &path, None, 0) {
                    log::warn!("{}", crate::contract::error::chain(&left));
                }
                Err(err)
            }
        };
    }
    unreachable!("the names run out only after u64::MAX tries")
}

/// Removes `name` in `parent` and, if it is a directory, everything in it, by descriptors:
/// never following a symlink (one is removed as itself), never entering another filesystem
/// (`dev`, that of the top) and never deeper than [`MAX_DEPTH`].
fn remove_tree(
    parent: BorrowedFd,
    name: &OsStr,
    path: &Path,
    dev: Option<u64>,
    depth: usize,
) -> Result<(), TargetError> {
    let fd =
        rustix::fs::openat(parent, name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
            .map_err(failed("open", path))?;
    let stat = rustix::fs::fstat(&fd).map_err(failed("inspect", path))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
        return rustix::fs::unlinkat(parent, name, AtFlags::empty()).map_err(failed("remove", path));
    }
    if dev.is_some_and(|dev| dev != stat.st_dev) {
        return Err(TargetError::Left {
            path: path.to_path_buf(),
            why: "is another filesystem's mount point",
        });
    }
    if depth >= MAX_DEPTH {
        return Err(TargetError::Left { path: path.to_path_buf(), why: "is too deep" });
    }
    if stat.st_uid == effective_uid() && stat.st_mode & 0o700 != 0o700 {
        // A directory of ari's user that it may not list or change (a read-only directory of
        // the copy): the magic link reaches exactly the directory held.
        let held = format!("/proc/self/fd/{}", fd.as_raw_fd());
        rustix::fs::chmod(held.as_str(), Mode::from_raw_mode(DIR_MODE))
            .map_err(failed("change the mode of", path))?;
    }
    let dir =
        rustix::fs::openat(&fd, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(failed("open", path))?;
    let mut entries = Vec::new();
    for entry in rustix::fs::Dir::read_from(&dir).map_err(failed("read", path))? {
        let entry = entry.map_err(failed("read", path))?;
        let child = OsStr::from_bytes(entry.file_name().to_bytes());
        if child != "." && child != ".." {
            entries.push(child.to_os_string());
        }
    }
    for child in entries {
        remove_tree(dir.as_fd(), &child, &path.join(&child), Some(stat.st_dev), depth + 1)?;
    }
    rustix::fs::unlinkat(parent, name, AtFlags::REMOVEDIR).map_err(failed("remove", path))
}

fn kind(file_type: FileType) -> &'static str {
    match file_type {
        FileType::RegularFile => "a regular file",
        FileType::Symlink => "a symlink",
        FileType::Fifo => "a FIFO",
        FileType::Socket => "a socket",
        FileType::CharacterDevice | FileType::BlockDevice => "a device",
        _ => "something else",
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

    use super::*;

    /// A temp dir with `outside/secret` (what no restore may touch) and `store/`.
    struct Scene {
        dir: tempfile::TempDir,
    }

    impl Scene {
        fn new() -> Scene {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("outside/sub")).unwrap();
            fs::write(dir.path().join("outside/secret"), "keep").unwrap();
            fs::write(dir.path().join("outside/sub/deep"), "keep too").unwrap();
            fs::create_dir_all(dir.path().join("store/web")).unwrap();
            Scene { dir }
        }

        fn path(&self, relative: &str) -> PathBuf {
            self.dir.path().join(relative)
        }

        fn stores(&self) -> Vec<Directory> {
            vec![Directory::new("backup_store_path", self.path("store").to_string_lossy())]
        }

        fn target(&self, dir: &str, path: &str) -> RestoreTarget {
            RestoreTarget::new(&self.path(dir), path).unwrap()
        }

        /// Stages `path` into `dir`, lets `copy` write the copy through the path the tool gets,
        /// and places it.
        fn restore(
            &self,
            dir: &str,
            path: &str,
            force: bool,
            copy: impl FnOnce(&Path),
        ) -> Result<Placed, String> {
            let target = self.target(dir, path);
            target.check(&self.stores(), force).map_err(|e| e.to_string())?;
            let staging = target.stage(&self.stores(), force).map_err(|e| e.to_string())?;
            copy(Path::new(&staging.copy_path()));
            if !staging.holds_copy().unwrap() {
                staging.discard();
                return Err("nothing copied".into());
            }
            staging.place(force).map_err(|e| e.to_string())
        }

        /// `outside/` is as [`Scene::new`] made it.
        #[track_caller]
        fn assert_outside_untouched(&self) {
            assert_eq!(fs::read_to_string(self.path("outside/secret")).unwrap(), "keep");
            assert_eq!(fs::read_to_string(self.path("outside/sub/deep")).unwrap(), "keep too");
            let entries = |p: &str| fs::read_dir(self.path(p)).unwrap().count();
            assert_eq!((entries("outside"), entries("outside/sub")), (2, 1));
        }

        /// No staging directory is left in `dir`.
        #[track_caller]
        fn assert_no_staging(&self, dir: &str) {
            let Ok(entries) = fs::read_dir(self.path(dir)) else { return };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                assert!(!name.starts_with(STAGING_PREFIX), "{name} left in {dir}");
            }
        }
    }

    fn write_file(at: &Path) {
        fs::write(at, "restored").unwrap();
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn dir_and_path_split_where_the_checks_change() {
        let check = |dir: &str, path: &str, anchor: &str, below: &[&str]| {
            let target = RestoreTarget::new(Path::new(dir), path).unwrap();
            assert_eq!(target.anchor, Path::new(anchor), "{dir} {path}");
            assert_eq!(target.below, below.iter().map(OsString::from).collect::<Vec<_>>(), "{dir} {path}");
        };
        check("/r", "/etc/hosts", "/r", &["etc", "hosts"]);
        check("/r", "/etc", "/r", &["etc"]);
        check("/", "/etc", "/", &["etc"]);
        check("/srv/r", "/", "/srv", &["r"]);
        check("/r", "/", "/", &["r"]);
        assert!(matches!(RestoreTarget::new(Path::new("/"), "/"), Err(TargetError::RootIntoRoot)));
    }

    #[test]
    fn a_restore_makes_its_directories_0700_and_leaves_only_the_copy() {
        let scene = Scene::new();
        let placed = scene.restore("r/new", "/etc/hosts", false, write_file).unwrap();
        assert!(!placed.is_dir && placed.leftover.is_none());
        assert_eq!(fs::read_to_string(scene.path("r/new/etc/hosts")).unwrap(), "restored");
        for dir in ["r", "r/new", "r/new/etc"] {
            assert_eq!(mode(&scene.path(dir)), 0o700, "{dir}");
        }
        scene.assert_no_staging("r/new");
        // Into an existing DIR, and PATH `/` as DIR itself.
        let placed = scene.restore("r/new", "/var", false, |at| fs::create_dir(at).unwrap()).unwrap();
        assert!(placed.is_dir);
        scene.restore("r/whole", "/", false, |at| fs::create_dir(at).unwrap()).unwrap();
        assert!(scene.path("r/whole").is_dir());
        scene.assert_no_staging("r");
    }

    #[test]
    fn a_copy_that_makes_nothing_or_a_refusal_leaves_dir_as_it_was() {
        let scene = Scene::new();
        let err = scene.restore("r/new/deeper", "/etc/hosts", false, |_| {}).unwrap_err();
        assert_eq!(err, "nothing copied");
        assert!(!scene.path("r").exists(), "the directories ari made are gone again");
        fs::create_dir(scene.path("r")).unwrap();
        scene.restore("r", "/etc/hosts", false, write_file).unwrap();
        let err = scene.restore("r", "/etc/hosts", false, write_file).unwrap_err();
        assert!(err.contains("exists, and ari never overwrites"), "{err}");
        // Exists when the copy is done (made meanwhile): refused then, and nothing changed.
        let target = scene.target("r", "/etc/passwd");
        let staging = target.stage(&scene.stores(), false).unwrap();
        write_file(Path::new(&staging.copy_path()));
        fs::write(scene.path("r/etc/passwd"), "meanwhile").unwrap();
        let err = staging.place(false).unwrap_err();
        assert!(matches!(err, TargetError::Exists { .. }), "{err}");
        assert_eq!(fs::read_to_string(scene.path("r/etc/passwd")).unwrap(), "meanwhile");
        scene.assert_no_staging("r");
    }

    #[test]
    fn no_symlink_below_dir_is_followed_and_force_removes_only_inside_dir_path() {
        let scene = Scene::new();
        fs::create_dir_all(scene.path("r")).unwrap();
        symlink(scene.path("outside"), scene.path("r/etc")).unwrap();
        let err = scene.restore("r", "/etc/secret", true, write_file).unwrap_err();
        assert!(
            err.contains("r/etc is a symlink") && err.contains("below --to ari follows no symlink"),
            "{err}"
        );
        scene.assert_no_staging("r");

        // DIR/PATH itself a symlink: replaced as itself with --force, never written through.
        fs::remove_file(scene.path("r/etc")).unwrap();
        fs::create_dir(scene.path("r/etc")).unwrap();
        symlink(scene.path("outside/secret"), scene.path("r/etc/secret")).unwrap();
        let err = scene.restore("r", "/etc/secret", false, write_file).unwrap_err();
        assert!(err.contains("exists"), "{err}");
        scene.restore("r", "/etc/secret", true, write_file).unwrap();
        assert_eq!(fs::read_to_string(scene.path("r/etc/secret")).unwrap(), "restored");
        assert!(!fs::symlink_metadata(scene.path("r/etc/secret")).unwrap().is_symlink());

        // A directory replaced with --force: its symlinks out are removed as links.
        fs::create_dir_all(scene.path("r/d/inner")).unwrap();
        symlink(scene.path("outside"), scene.path("r/d/link")).unwrap();
        symlink(scene.path("outside/secret"), scene.path("r/d/inner/file")).unwrap();
        fs::write(scene.path("r/d/inner/own"), "old").unwrap();
        fs::set_permissions(scene.path("r/d/inner"), fs::Permissions::from_mode(0o500)).unwrap();
        let placed = scene.restore("r", "/d", true, |at| {
            fs::create_dir(at).unwrap();
            fs::write(at.join("new"), "new").unwrap();
        });
        assert!(placed.unwrap().leftover.is_none());
        assert_eq!(fs::read_dir(scene.path("r/d")).unwrap().count(), 1, "only the copy");
        scene.assert_outside_untouched();
        scene.assert_no_staging("r");
    }

    #[test]
    fn what_force_cannot_remove_is_left_and_said_with_the_copy_in_place() {
        let scene = Scene::new();
        let mut deep = scene.path("r/d");
        for _ in 0..=MAX_DEPTH {
            deep.push("n");
        }
        fs::create_dir_all(&deep).unwrap();
        let placed = scene.restore("r", "/d", true, write_file).unwrap();
        let left = placed.leftover.expect("a tree deeper than ari goes is left");
        assert!(left.to_string().contains("is too deep, so ari left it"), "{left}");
        assert_eq!(fs::read_to_string(scene.path("r/d")).unwrap(), "restored");
    }

    #[test]
    fn dir_s_own_path_follows_only_trusted_symlinks_through_private_or_sticky_directories() {
        let scene = Scene::new();
        fs::create_dir(scene.path("real")).unwrap();
        symlink(scene.path("real"), scene.path("link")).unwrap();
        symlink("real", scene.path("relative")).unwrap();
        scene.restore("link/r", "/etc/hosts", false, write_file).unwrap();
        scene.restore("relative/../real/s", "/etc/hosts", false, write_file).unwrap();
        assert_eq!(fs::read_to_string(scene.path("real/r/etc/hosts")).unwrap(), "restored");
        assert_eq!(fs::read_to_string(scene.path("real/s/etc/hosts")).unwrap(), "restored");

        let check = |mode: u32, ok: bool| {
            fs::create_dir_all(scene.path("shared")).unwrap();
            fs::set_permissions(scene.path("shared"), fs::Permissions::from_mode(mode)).unwrap();
            let err = scene.target("shared/r", "/x").check(&scene.stores(), false);
            assert_eq!(err.is_ok(), ok, "mode {mode:o}: {err:?}");
            if let Err(err) = err {
                assert!(err.to_string().contains("may rename or replace what it holds"), "{err}");
            }
        };
        check(0o777, false);
        check(0o775, false);
        check(0o757, false);
        check(0o1777, true);
        check(0o755, true);
        let loop_path = scene.path("loop");
        symlink(&loop_path, &loop_path).unwrap();
        let err = scene.target("loop", "/x").check(&scene.stores(), false).unwrap_err();
        assert!(matches!(err, TargetError::TooManyLinks { .. }), "{err}");
    }

    #[test]
    fn the_store_is_told_apart_by_device_and_inode_not_by_name() {
        let scene = Scene::new();
        symlink(scene.path("store/web"), scene.path("into-store")).unwrap();
        let refused = |dir: &str, path: &str, force: bool| {
            let err = scene.target(dir, path).check(&scene.stores(), force).unwrap_err();
            assert!(err.to_string().contains("restore outside the store"), "{dir} {path}: {err}");
            let err = scene.target(dir, path).stage(&scene.stores(), force).unwrap_err();
            assert!(matches!(err, TargetError::InStore { .. }), "{dir} {path}: {err}");
        };
        refused("into-store", "/etc/hosts", false);
        refused("into-store/deeper", "/etc/hosts", false);
        refused("store", "/etc", false);
        refused(".", "/store/web", true);
        refused("outside/..", "/store", true);
        // A name like the store's is no store.
        scene.restore("store-copy", "/etc/hosts", false, write_file).unwrap();
        assert_eq!(fs::read_dir(scene.path("store/web")).unwrap().count(), 0, "the store is as it was");
    }

    #[test]
    fn the_tool_writes_through_the_held_descriptor_whatever_happens_to_dir_s_name() {
        let scene = Scene::new();
        fs::create_dir(scene.path("r")).unwrap();
        let target = scene.target("r", "/etc/hosts");
        let staging = target.stage(&scene.stores(), false).unwrap();
        assert!(staging.copy_path().starts_with(&format!("/proc/{}/fd/", std::process::id())));
        // DIR is moved away and a symlink out put in its place while the copy runs.
        fs::rename(scene.path("r"), scene.path("moved")).unwrap();
        symlink(scene.path("outside"), scene.path("r")).unwrap();
        write_file(Path::new(&staging.copy_path()));
        staging.place(false).unwrap();
        assert_eq!(fs::read_to_string(scene.path("moved/etc/hosts")).unwrap(), "restored");
        scene.assert_outside_untouched();
        scene.assert_no_staging("moved");
    }
}
