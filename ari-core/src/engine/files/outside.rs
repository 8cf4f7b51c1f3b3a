//! Files ari writes outside `state_dir` for other programs to read: the metrics file today (for
//! node_exporter's textfile collector), any status page later. One helper writes them all,
//! [`write_outside_file`], and `ari check` asks [`outside_file_problem`] the same questions
//! without writing.
//!
//! ari runs as root, and such a file's path is only a setting: whatever is at it when ari writes
//! must be what the admin meant. So ari writes only where nothing is, or over a regular file of
//! its own user; it refuses, and leaves as it is, a symlink (never followed, never replaced), a
//! device (`/dev/full` used to become a regular file), a FIFO, a socket, a directory, and a file
//! of another user. The directory it writes in must be owned by root or by ari's user, and
//! writable by no one else unless it is sticky (`+t`, as `/tmp` is): another user who can write
//! in it could otherwise replace the file after ari wrote it, or plant something in its place.
//!
//! Every step goes through one open descriptor of that directory (`openat`, `fstatat`,
//! `linkat`, `renameat`), so that the directory checked is the directory written, whatever its
//! path's components are swapped for meanwhile. The write is atomic and durable: a temp file in
//! the directory, fsynced, then moved over the old file (`renameat`, which another user cannot
//! race in a directory that passed the checks) or, where nothing was, linked into place
//! (`linkat`, which fails rather than replace what someone planted meanwhile in a sticky
//! directory); then the directory is fsynced.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::guard::{effective_uid, guard_write, swapper, user_text, Swapper};

/// Why a file outside `state_dir` was not written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutsideError {
    /// A symlink at the path.
    #[error(
        "{} is a symlink (to {}): ari neither follows nor replaces one there; remove it, or set the path of the real file",
        path.display(),
        target.display()
    )]
    Symlink {
        /// The path.
        path: PathBuf,
        /// What the symlink points to.
        target: PathBuf,
    },
    /// Something other than a regular file at the path.
    #[error("{} is {found}, not a regular file: ari writes only where nothing is or over a file of its own; choose another path", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What is there (`a device`, `a FIFO`, `a directory`).
        found: &'static str,
    },
    /// Another user's file at the path.
    #[error(
        "{} is owned by {}, not by {}, the user ari runs as: ari does not replace another user's file; remove it if it is stale",
        path.display(),
        user_text(*owner),
        user_text(effective_uid())
    )]
    ForeignFile {
        /// The path.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
    },
    /// A directory whose owner is neither root nor ari's user.
    #[error(
        "{} is owned by {}: its owner could replace what ari writes in it; use a directory owned by root or by {}",
        dir.display(),
        user_text(*owner),
        user_text(effective_uid())
    )]
    ForeignDirectory {
        /// The directory.
        dir: PathBuf,
        /// Its owner's uid.
        owner: u32,
    },
    /// A directory that other users may write in, without the sticky bit.
    #[error(
        "{} has mode {mode:04o}: {who} can write in it and it is not sticky (+t), so they could replace what ari writes there; use a directory only root (or ari's user) can write",
        dir.display()
    )]
    OpenDirectory {
        /// The directory.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// `its group`, `other users`, or both.
        who: &'static str,
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
        /// `open`, `write`, ...
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn io_error<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> OutsideError + 'a {
    move |source| OutsideError::Io { action, path: path.to_path_buf(), source }
}

/// Writes `bytes` to `path`, a file outside `state_dir` that other programs read, with `mode`
/// (0644 for the metrics file), atomically and durably: only where nothing is or over a regular
/// file of ari's user, in a directory no other user can swap it in (see the module's doc).
pub(crate) fn write_outside_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), OutsideError> {
    if guard_write(path).is_err() {
        return Err(OutsideError::WritesForbidden { path: path.to_path_buf() });
    }
    let (dir, name) = split(path)?;
    let dir_fd = open_dir(&dir)?;
    check_dir(&dir, &dir_fd)?;
    let existing = check_entry(path, &dir_fd, &name)?;
    let (temp, mut file) = create_temp(&dir, &dir_fd, &name)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(mode)))
        .and_then(|()| file.sync_all())
        .map_err(io_error("write", path))
        .and_then(|()| match existing {
            // Ours, in a directory no one else can write or swap files of ours in: replaced.
            true => renameat(&dir_fd, &temp, &name).map_err(io_error("replace", path)),
            // Nothing there: linked into place, failing rather than replace what someone
            // planted since (in a sticky directory, anyone may create the name).
            false => linkat(&dir_fd, &temp, &name)
                .map_err(|err| match err.kind() {
                    io::ErrorKind::AlreadyExists => match check_entry(path, &dir_fd, &name) {
                        Err(refused) => refused,
                        Ok(_) => OutsideError::Io { action: "create", path: path.to_path_buf(), source: err },
                    },
                    _ => OutsideError::Io { action: "create", path: path.to_path_buf(), source: err },
                })
                .and_then(|()| unlinkat(&dir_fd, &temp).map_err(io_error("remove the temp file of", path))),
        });
    if let Err(err) = written {
        let _ = unlinkat(&dir_fd, &temp);
        return Err(err);
    }
    File::from(dir_fd).sync_all().map_err(io_error("sync", &dir))
}

/// What would stop `write_outside_file` from writing `path`, found without writing: for
/// `ari check`. A missing directory is a problem; a missing file is not.
pub fn outside_file_problem(path: &Path) -> Option<OutsideError> {
    let check = || {
        let (dir, name) = split(path)?;
        let dir_fd = open_dir(&dir)?;
        check_dir(&dir, &dir_fd)?;
        check_entry(path, &dir_fd, &name).map(drop)
    };
    check().err()
}

/// The directory and the file name of `path`; a path without a file name (`/`, `x/..`) is no
/// file.
fn split(path: &Path) -> Result<(PathBuf, CString), OutsideError> {
    let not_a_file = || OutsideError::NotAFile { path: path.to_path_buf(), found: "no file name" };
    let name = match path.file_name() {
        Some(name) if name != ".." => name,
        _ => return Err(not_a_file()),
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = CString::new(name.as_bytes()).map_err(|_| not_a_file())?;
    Ok((dir.to_path_buf(), name))
}

/// The directory, opened: its path's symlinks are the admin's, and what it resolves to is
/// checked through the descriptor itself.
fn open_dir(dir: &Path) -> Result<OwnedFd, OutsideError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .map_err(io_error("open the directory", dir))?;
    Ok(OwnedFd::from(file))
}

/// The directory is root's or ari's user's, and no one else can write in it unless it is sticky.
fn check_dir(dir: &Path, fd: &OwnedFd) -> Result<(), OutsideError> {
    let meta = File::from(fd.try_clone().map_err(io_error("inspect", dir))?)
        .metadata()
        .map_err(io_error("inspect", dir))?;
    match swapper(&meta) {
        None => Ok(()),
        Some(Swapper::Owner(owner)) => Err(OutsideError::ForeignDirectory { dir: dir.to_path_buf(), owner }),
        Some(Swapper::Writers { mode, who }) => {
            Err(OutsideError::OpenDirectory { dir: dir.to_path_buf(), mode, who })
        }
    }
}

/// What is at `name` in the directory, without following a symlink: `false` for nothing,
/// `true` for a regular file of ari's user, and a refusal for anything else.
fn check_entry(path: &Path, dir: &OwnedFd, name: &CStr) -> Result<bool, OutsideError> {
    let stat = match fstatat(dir, name) {
        Ok(stat) => stat,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => {
            return Err(OutsideError::Io { action: "inspect", path: path.to_path_buf(), source: err })
        }
    };
    let found = match stat.st_mode & libc::S_IFMT {
        libc::S_IFREG => None,
        libc::S_IFLNK => {
            let target = std::fs::read_link(path).unwrap_or_else(|_| PathBuf::from("?"));
            return Err(OutsideError::Symlink { path: path.to_path_buf(), target });
        }
        libc::S_IFDIR => Some("a directory"),
        libc::S_IFIFO => Some("a FIFO"),
        libc::S_IFSOCK => Some("a socket"),
        _ => Some("a device"),
    };
    if let Some(found) = found {
        return Err(OutsideError::NotAFile { path: path.to_path_buf(), found });
    }
    if stat.st_uid != effective_uid() {
        return Err(OutsideError::ForeignFile { path: path.to_path_buf(), owner: stat.st_uid });
    }
    Ok(true)
}

/// A new, empty file `.NAME.tmp-PID-N` in the directory, 0600, made with `O_EXCL | O_NOFOLLOW`
/// (so never through anything already there). Its name does not end like `NAME`, so a reader
/// that picks files by their suffix (`*.prom`) never reads it half written.
fn create_temp(dir: &Path, dir_fd: &OwnedFd, name: &CStr) -> Result<(CString, File), OutsideError> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut temp = b".".to_vec();
        temp.extend_from_slice(name.to_bytes());
        temp.extend_from_slice(format!(".tmp-{}-{n}", std::process::id()).as_bytes());
        let temp = CString::new(temp)
            .map_err(|_| io_error("create a temp file in", dir)(io::ErrorKind::InvalidInput.into()))?;
        match openat_new(dir_fd, &temp) {
            Ok(file) => return Ok((temp, file)),
            // Left by a crashed ari of the same pid: try the next name.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(io_error("create a temp file in", dir)(err)),
        }
    }
}

/// The result of a libc call that returns -1 on failure, as an `io::Result`.
fn cvt(result: libc::c_int) -> io::Result<libc::c_int> {
    if result == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

#[allow(unsafe_code)]
fn fstatat(dir: &OwnedFd, name: &CStr) -> io::Result<libc::stat> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `dir` is an open descriptor and `name` a NUL-terminated string, both alive for the
    // call; fstatat writes a whole `stat` into the buffer when it returns 0, and only then is it
    // read.
    unsafe {
        cvt(libc::fstatat(dir.as_raw_fd(), name.as_ptr(), stat.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW))?;
        Ok(stat.assume_init())
    }
}

#[allow(unsafe_code)]
fn openat_new(dir: &OwnedFd, name: &CStr) -> io::Result<File> {
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `dir` is an open descriptor and `name` a NUL-terminated string, both alive for the
    // call. On success openat returns a new descriptor that nothing else owns, which the File
    // takes.
    unsafe {
        let fd = cvt(libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, 0o600 as libc::c_uint))?;
        Ok(File::from_raw_fd(fd))
    }
}

#[allow(unsafe_code)]
fn renameat(dir: &OwnedFd, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: an open descriptor and two NUL-terminated strings, alive for the call.
    cvt(unsafe { libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr()) }).map(drop)
}

#[allow(unsafe_code)]
fn linkat(dir: &OwnedFd, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: as renameat; flags 0 links the name itself, never a symlink's target.
    cvt(unsafe { libc::linkat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr(), 0) }).map(drop)
}

#[allow(unsafe_code)]
fn unlinkat(dir: &OwnedFd, name: &CStr) -> io::Result<()> {
    // SAFETY: an open descriptor and a NUL-terminated string, alive for the call.
    cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::MetadataExt;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[allow(unsafe_code)]
    fn mkfifo(path: &Path) {
        let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path, alive for the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0, "mkfifo {}", path.display());
    }

    #[test]
    fn writes_where_nothing_is_and_over_its_own_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ari.prom");
        write_outside_file(&path, b"one\n", 0o644).unwrap();
        assert_eq!((fs::read(&path).unwrap(), mode(&path)), (b"one\n".to_vec(), 0o644));
        write_outside_file(&path, b"two\n", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two\n");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["ari.prom"], "no temp file left");
        assert!(outside_file_problem(&path).is_none());
        assert!(outside_file_problem(&dir.path().join("not-yet.prom")).is_none());
    }

    #[test]
    fn anything_but_a_regular_file_of_its_own_is_refused_and_left_as_it_is() {
        let check = |setup: &dyn Fn(&Path), expected: &str| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ari.prom");
            setup(&path);
            let before = fs::symlink_metadata(&path).unwrap();
            let err = write_outside_file(&path, b"metrics\n", 0o644).unwrap_err().to_string();
            assert!(err.contains(expected), "`{expected}` not in `{err}`");
            let problem = outside_file_problem(&path).map(|e| e.to_string());
            assert_eq!(problem.as_deref(), Some(err.as_str()), "check says what a run would");
            let after = fs::symlink_metadata(&path).unwrap();
            assert_eq!((after.ino(), after.mode()), (before.ino(), before.mode()), "left as it was");
            assert_eq!(
                fs::read_dir(dir.path()).unwrap().count(),
                1 + usize::from(expected.contains("symlink"))
            );
        };
        check(
            &|path| {
                fs::write(path.with_file_name("precious"), b"precious").unwrap();
                std::os::unix::fs::symlink(path.with_file_name("precious"), path).unwrap();
            },
            "/ari.prom is a symlink (to ",
        );
        check(
            &|path| mkfifo(path),
            "/ari.prom is a FIFO, not a regular file: ari writes only where nothing is",
        );
        check(&|path| fs::create_dir(path).unwrap(), "/ari.prom is a directory, not a regular file");
    }

    #[test]
    fn a_directory_others_can_write_is_refused_unless_it_is_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ari.prom");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let err = write_outside_file(&path, b"x\n", 0o644).unwrap_err().to_string();
        assert!(
            err.ends_with("has mode 0777: its group and other users can write in it and it is not sticky (+t), so they could replace what ari writes there; use a directory only root (or ari's user) can write"),
            "{err}"
        );
        assert!(!path.exists());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o757)).unwrap();
        let err = write_outside_file(&path, b"x\n", 0o644).unwrap_err().to_string();
        assert!(err.contains("has mode 0757: other users can write in it"), "{err}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        write_outside_file(&path, b"x\n", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"x\n");
        let err = write_outside_file(&dir.path().join("missing/ari.prom"), b"x\n", 0o644).unwrap_err();
        assert!(err.to_string().starts_with("cannot open the directory "), "{err}");
        let err = write_outside_file(Path::new("/"), b"x\n", 0o644).unwrap_err();
        assert!(err.to_string().contains("is no file name"), "{err}");
    }
}
