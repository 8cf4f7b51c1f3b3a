//! What every writer of files shares: the modes ari makes things with, the switch that forbids
//! writing for a whole process, the error of a refused or failed write (`StateError`), and
//! who may swap a directory's entries (root, ari's user, or someone else).

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The mode of every directory ari makes in `state_dir`.
pub(crate) const DIR_MODE: u32 = 0o700;
/// The mode of every file ari makes in `state_dir`.
pub(crate) const FILE_MODE: u32 = 0o600;
/// The bits that let another user in.
pub(crate) const OPEN_BITS: u32 = 0o077;
/// The bits that let another user write.
pub(crate) const WRITE_BITS: u32 = 0o022;

pub(crate) static WRITES_FORBIDDEN: AtomicBool = AtomicBool::new(false);

/// Makes every later write to a state directory in this process an error: commands that promise
/// to write nothing (`ari check`, `ari plan`, `ari recover --show`) call it first.
pub fn forbid_writes() {
    WRITES_FORBIDDEN.store(true, Ordering::SeqCst);
}

/// Why a state directory or file was refused, or could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A symlink where ari keeps its own directory or file.
    #[error(
        "{} is a symlink (to {}); ari never follows a symlink inside state_dir: remove it",
        path.display(),
        target.display()
    )]
    Symlink {
        /// The symlink.
        path: PathBuf,
        /// What it points to.
        target: PathBuf,
    },
    /// `state_dir` is, or leads through, a symlink that another user could change.
    #[error(
        "state_dir {} is a symlink (to {}) that {who} could point anywhere ({why}): ari keeps its \
         ledger, the commands it runs as root, only where no other user can redirect it; make the \
         link and its directory root's, or set state_dir to the real directory",
        path.display(),
        target.display()
    )]
    UntrustedSymlink {
        /// The symlink.
        path: PathBuf,
        /// What it points to.
        target: PathBuf,
        /// `uid 65534 (nobody)`, `other users`.
        who: String,
        /// `it is theirs`, `/srv has mode 0777 and is not sticky`.
        why: String,
    },
    /// Something else than a directory or a regular file where ari keeps one.
    #[error("{} is {found}, not {expected}: move it out of the way", path.display())]
    WrongType {
        /// The path.
        path: PathBuf,
        /// What is there (`a regular file`, `a FIFO`).
        found: &'static str,
        /// What ari keeps there (`a directory`).
        expected: &'static str,
    },
    /// A directory or file of another user.
    #[error(
        "{} is owned by {} with mode {mode:04o}, not by {}, the user ari runs as: ari trusts nothing \
         another user could have written; check it, then `chown {}` it or remove it",
        path.display(),
        user_text(*owner),
        user_text(effective_uid()),
        user_name(effective_uid()).unwrap_or_else(|| effective_uid().to_string())
    )]
    ForeignOwner {
        /// The path.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// Its permission bits.
        mode: u32,
    },
    /// A file of commands that other users may write.
    #[error(
        "{} has mode {mode:04o}: {who} can write it, and ari runs no command from a file another user \
         could have written",
        path.display()
    )]
    Writable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// `its group`, `other users`, or both.
        who: &'static str,
    },
    /// A name that is not a plain file name.
    #[error("`{name}` is not a plain file name, so ari keeps no state under it")]
    BadName {
        /// The name.
        name: String,
    },
    /// `state_dir` (or where it would be made) cannot be written.
    #[error("state_dir {}{} cannot be written by {}", root.display(), match at {
        Some(at) => format!(" does not exist, and {}, where ari would make it,", at.display()),
        None => String::new(),
    }, user_text(effective_uid()))]
    NotWritable {
        /// `state_dir`.
        root: PathBuf,
        /// Its nearest existing ancestor, when it does not exist.
        at: Option<PathBuf>,
        /// What `access(2)` said.
        #[source]
        source: io::Error,
    },
    /// A write in a process that promised to write nothing.
    #[error("not writing {}: this command changes nothing in state_dir", path.display())]
    WritesForbidden {
        /// What would have been written.
        path: PathBuf,
    },
    /// The filesystem said no.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// `read`, `create`, `write`, ...
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl StateError {
    /// Whether ari refused what it found (a symlink, another user's file, a file others can
    /// write, a non-directory), as opposed to the filesystem failing.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StateError::Symlink { .. }
                | StateError::UntrustedSymlink { .. }
                | StateError::WrongType { .. }
                | StateError::ForeignOwner { .. }
                | StateError::Writable { .. }
        )
    }

    pub(crate) fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StateError + 'a {
        move |source| StateError::Io { action, path: path.to_path_buf(), source }
    }
}

impl From<StateError> for io::Error {
    /// For callers that speak `io::Error` (the pipeline's ledger updates): the same message,
    /// and the kind of the underlying error.
    fn from(err: StateError) -> io::Error {
        let kind = match &err {
            StateError::Io { source, .. } | StateError::NotWritable { source, .. } => source.kind(),
            other if other.is_refusal() => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, err)
    }
}

pub(crate) fn guard_write(path: &Path) -> Result<(), StateError> {
    if WRITES_FORBIDDEN.load(Ordering::SeqCst) {
        Err(StateError::WritesForbidden { path: path.to_path_buf() })
    } else {
        Ok(())
    }
}

/// Who, besides root and ari's user, could replace an entry of a directory.
pub(crate) enum Swapper {
    /// The directory's owner, another user.
    Owner(u32),
    /// Those its mode lets write in it, when it is not sticky (`+t` keeps others from renaming
    /// or removing an entry they do not own).
    Writers {
        /// Its permission bits.
        mode: u32,
        /// `its group`, `other users`, or both.
        who: &'static str,
    },
}

pub(crate) fn swapper(dir: &fs::Metadata) -> Option<Swapper> {
    if dir.uid() != 0 && dir.uid() != effective_uid() {
        return Some(Swapper::Owner(dir.uid()));
    }
    let mode = dir.mode() & 0o7777;
    if mode & WRITE_BITS == 0 || mode & libc::S_ISVTX != 0 {
        return None;
    }
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "its group and other users",
        (true, false) => "its group",
        _ => "other users",
    };
    Some(Swapper::Writers { mode, who })
}

/// The user ari runs as, for ownership checks.
#[allow(unsafe_code)]
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes nothing, always succeeds and touches no memory.
    unsafe { libc::geteuid() }
}

/// `uid 0 (root)`, or `uid 1234` for a uid without a name in `/etc/passwd`.
pub(crate) fn user_text(uid: u32) -> String {
    match user_name(uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}
