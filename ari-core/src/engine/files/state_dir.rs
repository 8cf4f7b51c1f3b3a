//! ari's state directory, and the one place that reads and writes it.
//!
//! ari runs as root and executes what its ledger says, so nothing under `state_dir` is taken on
//! trust. Every lock, ledger, history, report and cache goes through [`StateDir`]:
//!
//! - its directories are made 0700 and its files 0600, whatever the umask; a directory of ari's
//!   own that is more open is tightened to 0700 (with a log line);
//! - it never follows a symlink inside `state_dir`: files are opened with `O_NOFOLLOW`,
//!   directories are checked with `symlink_metadata`. `state_dir` itself may be a symlink that
//!   the admin made: one owned by root or ari's user, in a directory that no other user can
//!   replace it in (owned by root or ari's user, and writable by no one else unless sticky);
//!   each symlink it leads through is held to that, since whoever can change one decides where
//!   ari keeps its ledger, the commands it runs as root;
//! - a directory or file that is not owned by ari's effective user is refused, and so is a file
//!   of commands (the ledger) that others could write, each with an error that names the path,
//!   its owner and mode, and what to do;
//! - writes are atomic and durable: a temp file in the same directory, fsynced, renamed over the
//!   target, then the directory fsynced, so that a crash leaves the old or the new version.
//!
//! Reading changes nothing (it neither creates nor tightens), so that `ari check` and
//! `ari recover --show` can read; `forbid_writes` makes that a guarantee for a whole process.
//!
//! Files ari writes outside `state_dir` for other programs (the metrics file) go through
//! `write_outside_file` (`files/outside.rs`): only where nothing is or over a regular file of
//! ari's user, in a directory no other user can swap it in.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::guard::{
    effective_uid, guard_write, swapper, user_text, StateError, Swapper, DIR_MODE, FILE_MODE, OPEN_BITS,
    WRITE_BITS,
};

/// A subdirectory of `state_dir`, each holding one kind of state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Area {
    /// `locks/`: the per-job lock files.
    Locks,
    /// `ledger/`: the crash ledgers.
    Ledger,
    /// `history/`: each job's recent runs.
    History,
    /// `reports/`: the run reports.
    Reports,
    /// `cache/`: the tool-version cache.
    Cache,
    /// `run/`: each running job's private directory (ssh control sockets, its ssh wrapper).
    Run,
}

impl Area {
    /// Every area, in the order `ari check` inspects them.
    pub const ALL: [Area; 6] =
        [Area::Locks, Area::Ledger, Area::History, Area::Reports, Area::Cache, Area::Run];

    /// The directory's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Locks => "locks",
            Area::Ledger => "ledger",
            Area::History => "history",
            Area::Reports => "reports",
            Area::Cache => "cache",
            Area::Run => "run",
        }
    }
}

/// What a file's contents are used for, which decides how far ari trusts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Data (history, reports, caches): the file must be ari's own.
    Data,
    /// Commands that ari runs (the ledger): ari's own, and writable by nobody else.
    Commands,
    /// Only shown to the admin, never used: any regular file, never through a symlink.
    Shown,
}

/// ari's state directory, `state_dir`: every state file is read and written through it.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// The state directory at `root` (the `state_dir` setting); nothing is checked or made yet.
    pub fn new(root: impl Into<PathBuf>) -> StateDir {
        StateDir { root: root.into() }
    }

    /// `state_dir` itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where an area's directory is.
    pub fn dir(&self, area: Area) -> PathBuf {
        self.root.join(area.as_str())
    }

    /// Where a file of an area is; `name` must be a plain file name.
    pub fn file(&self, area: Area, name: &str) -> Result<PathBuf, StateError> {
        let plain = !name.is_empty()
            && name != "."
            && name != ".."
            && !name.contains('/')
            && !name.contains('\0')
            && name.len() <= 255;
        if !plain {
            return Err(StateError::BadName { name: name.to_string() });
        }
        Ok(self.dir(area).join(name))
    }

    /// Whether anything (a file, a symlink, ...) is at an area's `name`; never follows a symlink.
    pub fn exists(&self, area: Area, name: &str) -> bool {
        self.file(area, name).is_ok_and(|path| fs::symlink_metadata(path).is_ok())
    }

    /// Makes sure `state_dir` and the area's directory exist, are directories of ari's user and
    /// are 0700 (tightening them if they are more open); returns the area's directory.
    pub fn prepare(&self, area: Area) -> Result<PathBuf, StateError> {
        self.prepare_root()?;
        let dir = self.dir(area);
        guard_write(&dir)?;
        let mut created = false;
        if let Err(err) = fs::symlink_metadata(&dir) {
            if err.kind() != io::ErrorKind::NotFound {
                return Err(StateError::io("inspect", &dir)(err));
            }
            match DirBuilder::new().mode(DIR_MODE).create(&dir) {
                Ok(()) => created = true,
                // Another ari made it meanwhile: it is checked below like any other.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(StateError::io("create", &dir)(err)),
            }
        }
        let meta = fs::symlink_metadata(&dir).map_err(StateError::io("inspect", &dir))?;
        check_dir(&dir, &meta)?;
        make_private(&dir, &meta, created)?;
        Ok(dir)
    }

    /// `state_dir` itself: made when missing; it may be a symlink the admin made.
    fn prepare_root(&self) -> Result<(), StateError> {
        guard_write(&self.root)?;
        self.check_root_links()?;
        let mut created = false;
        if let Err(err) = fs::metadata(&self.root) {
            if err.kind() != io::ErrorKind::NotFound {
                return Err(StateError::io("inspect", &self.root)(err));
            }
            DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(&self.root)
                .map_err(StateError::io("create", &self.root))?;
            created = true;
        }
        let meta = fs::metadata(&self.root).map_err(StateError::io("inspect", &self.root))?;
        check_dir(&self.root, &meta)?;
        make_private(&self.root, &meta, created)
    }

    /// `state_dir` when it is a symlink, and every symlink it leads through: each must be owned
    /// by root or ari's user, in a directory that no other user can replace it in. A missing
    /// `state_dir` (or link target) is fine here: it is made, or found missing, later.
    fn check_root_links(&self) -> Result<(), StateError> {
        let mut path = self.root.clone();
        // As the kernel, which gives up after 40 links.
        for _ in 0..40 {
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(err) => return Err(StateError::io("inspect", &path)(err)),
            };
            if !meta.file_type().is_symlink() {
                return Ok(());
            }
            let target = fs::read_link(&path).map_err(StateError::io("read the symlink", &path))?;
            let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let untrusted = |who: String, why: String| StateError::UntrustedSymlink {
                path: path.clone(),
                target: target.clone(),
                who,
                why,
            };
            if meta.uid() != 0 && meta.uid() != effective_uid() {
                return Err(untrusted(user_text(meta.uid()), "it is theirs".into()));
            }
            let dir_meta = fs::metadata(dir).map_err(StateError::io("inspect", dir))?;
            match swapper(&dir_meta) {
                Some(Swapper::Owner(owner)) => {
                    return Err(untrusted(user_text(owner), format!("they own {}", dir.display())))
                }
                Some(Swapper::Writers { mode, who }) => {
                    return Err(untrusted(
                        who.to_string(),
                        format!("{} has mode {mode:04o} and is not sticky", dir.display()),
                    ))
                }
                None => {}
            }
            path = dir.join(target);
        }
        Err(StateError::io("follow", &self.root)(io::Error::from_raw_os_error(libc::ELOOP)))
    }

    /// An existing area's directory, checked but not changed; `None` when it (or `state_dir`)
    /// does not exist.
    fn existing(&self, area: Area) -> Result<Option<PathBuf>, StateError> {
        self.check_root_links()?;
        match fs::metadata(&self.root) {
            Ok(meta) => check_dir(&self.root, &meta)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(StateError::io("inspect", &self.root)(err)),
        }
        let dir = self.dir(area);
        match fs::symlink_metadata(&dir) {
            Ok(meta) => check_dir(&dir, &meta)?,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(StateError::io("inspect", &dir)(err)),
        }
        Ok(Some(dir))
    }

    /// A data file's contents (`None` when there is none); it must be a regular file of ari's
    /// user, reached without a symlink.
    pub fn read(&self, area: Area, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.read_as(area, name, Trust::Data)
    }

    /// A file of commands that ari will run (the ledger): as [`StateDir::read`], and writable by
    /// ari's user only.
    pub fn read_commands(&self, area: Area, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.read_as(area, name, Trust::Commands)
    }

    /// A file's contents for showing to the admin, whoever owns it: never through a symlink, and
    /// never to be acted on.
    pub fn read_for_display(&self, area: Area, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        self.read_as(area, name, Trust::Shown)
    }

    fn read_as(&self, area: Area, name: &str, trust: Trust) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.file(area, name)?;
        if self.existing(area)?.is_none() {
            return Ok(None);
        }
        // O_NONBLOCK: a FIFO planted here must not hang ari; it is refused below.
        let opened =
            OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&path);
        let mut file = match opened {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(open_error(&path, "read", err)),
        };
        let meta = file.metadata().map_err(StateError::io("inspect", &path))?;
        check_file(&path, &meta, trust)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(StateError::io("read", &path))?;
        Ok(Some(bytes))
    }

    /// Writes a file of an area atomically and durably (0600), making its directory if needed;
    /// returns its path.
    pub fn write(&self, area: Area, name: &str, bytes: &[u8]) -> Result<PathBuf, StateError> {
        let path = self.file(area, name)?;
        guard_write(&path)?;
        let dir = self.prepare(area)?;
        let (temp, mut file) = create_temp(&dir)?;
        let written = file
            .write_all(bytes)
            .and_then(|()| file.sync_all())
            // A rename replaces whatever is at `path`, a symlink included, and never follows it.
            .and_then(|()| fs::rename(&temp, &path));
        if let Err(err) = written {
            let _ = fs::remove_file(&temp);
            return Err(StateError::io("write", &path)(err));
        }
        sync_dir(&dir)?;
        Ok(path)
    }

    /// Removes a file of an area durably; a missing file is fine. A symlink is removed itself.
    pub fn remove(&self, area: Area, name: &str) -> Result<(), StateError> {
        let path = self.file(area, name)?;
        guard_write(&path)?;
        let Some(dir) = self.existing(area)? else { return Ok(()) };
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&dir),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(StateError::io("remove", &path)(err)),
        }
    }

    /// Moves a file of an area aside, to `NAME.WHY-TIMESTAMP` in the same directory (0600 when
    /// it is ari's own), so that nothing reads it again but the admin can; returns the new path.
    pub fn move_aside(&self, area: Area, name: &str, why: &str) -> Result<PathBuf, StateError> {
        let path = self.file(area, name)?;
        guard_write(&path)?;
        let dir = self.prepare(area)?;
        let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ").to_string();
        let mut aside = dir.join(format!("{name}.{why}-{stamp}"));
        // The directory is ari's own, so only another ari could race for the name.
        let mut n = 1;
        while fs::symlink_metadata(&aside).is_ok() {
            n += 1;
            aside = dir.join(format!("{name}.{why}-{stamp}-{n}"));
        }
        // Through the file itself, never a symlink: a file of ari's own becomes 0600; one of
        // another user (or a symlink) is moved as it is.
        if let Ok(file) =
            OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(&path)
        {
            if let Ok(meta) = file.metadata() {
                if meta.is_file() && meta.uid() == effective_uid() && meta.mode() & 0o777 != FILE_MODE {
                    file.set_permissions(Permissions::from_mode(FILE_MODE))
                        .map_err(StateError::io("change the mode of", &path))?;
                }
            }
        }
        fs::rename(&path, &aside).map_err(StateError::io("move aside", &path))?;
        sync_dir(&dir)?;
        Ok(aside)
    }

    /// The names in an area that end with `suffix`, sorted; none when the area does not exist.
    pub fn list(&self, area: Area, suffix: &str) -> Result<Vec<String>, StateError> {
        let Some(dir) = self.existing(area)? else { return Ok(Vec::new()) };
        let entries = fs::read_dir(&dir).map_err(StateError::io("read", &dir))?;
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.ends_with(suffix) && !name.starts_with(".tmp-"))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Opens (making it if needed) a lock file of an area for reading and writing: 0600, of
    /// ari's user, never through a symlink.
    pub fn open_lock(&self, area: Area, name: &str) -> Result<File, StateError> {
        let path = self.file(area, name)?;
        guard_write(&path)?;
        self.prepare(area)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|err| open_error(&path, "open", err))?;
        let meta = file.metadata().map_err(StateError::io("inspect", &path))?;
        check_file(&path, &meta, Trust::Data)?;
        if meta.mode() & OPEN_BITS != 0 {
            file.set_permissions(Permissions::from_mode(FILE_MODE))
                .map_err(StateError::io("change the mode of", &path))?;
            log::warn!(
                "{} had mode {:04o}, open to other users: tightened it to {FILE_MODE:04o}",
                path.display(),
                meta.mode() & 0o7777
            );
        }
        Ok(file)
    }

    /// A private directory `name` of an area (a job's run directory), 0700 and of ari's user,
    /// made when missing; returns it with what it already holds (left by a crashed run), sorted.
    pub fn private_dir(&self, area: Area, name: &str) -> Result<(PathBuf, Vec<PathBuf>), StateError> {
        let path = self.file(area, name)?;
        guard_write(&path)?;
        self.prepare(area)?;
        let mut created = false;
        match DirBuilder::new().mode(DIR_MODE).create(&path) {
            Ok(()) => created = true,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(StateError::io("create", &path)(err)),
        }
        let meta = fs::symlink_metadata(&path).map_err(StateError::io("inspect", &path))?;
        check_dir(&path, &meta)?;
        make_private(&path, &meta, created)?;
        let entries = fs::read_dir(&path).map_err(StateError::io("read", &path))?;
        let mut stale: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        stale.sort();
        Ok((path, stale))
    }

    /// Writes `bytes` to `name` in a private directory of an area (see [`StateDir::private_dir`])
    /// atomically, as an executable of ari's user only (0700).
    pub fn write_executable(
        &self,
        area: Area,
        dir: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, StateError> {
        let dir = self.file(area, dir)?;
        let path = dir.join(name);
        guard_write(&path)?;
        let (temp, mut file) = create_temp(&dir)?;
        let written = file
            .write_all(bytes)
            .and_then(|()| file.set_permissions(Permissions::from_mode(DIR_MODE)))
            .and_then(|()| file.sync_all())
            .and_then(|()| fs::rename(&temp, &path));
        if let Err(err) = written {
            let _ = fs::remove_file(&temp);
            return Err(StateError::io("write", &path)(err));
        }
        Ok(path)
    }

    /// Removes one entry of a private directory of an area (a file, a socket, a symlink itself;
    /// never a directory's contents); a missing entry is fine.
    pub fn remove_private_entry(&self, area: Area, dir: &str, entry: &Path) -> Result<(), StateError> {
        let dir = self.file(area, dir)?;
        guard_write(&dir)?;
        if entry.parent() != Some(dir.as_path()) {
            return Err(StateError::BadName { name: entry.display().to_string() });
        }
        match fs::remove_file(entry) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(StateError::io("remove", entry)(err)),
        }
    }

    /// Removes a private directory of an area with its entries (files and sockets only); a
    /// missing directory is fine.
    pub fn remove_private_dir(&self, area: Area, name: &str) -> Result<(), StateError> {
        let path = self.file(area, name)?;
        guard_write(&path)?;
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(err) => return Err(StateError::io("inspect", &path)(err)),
        };
        check_dir(&path, &meta)?;
        for entry in fs::read_dir(&path).map_err(StateError::io("read", &path))?.flatten() {
            self.remove_private_entry(area, name, &entry.path())?;
        }
        match fs::remove_dir(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(StateError::io("remove", &path)(err)),
        }
    }

    /// Everything that would stop ari from using this state directory, found without writing:
    /// `state_dir` (or, when it does not exist, its nearest existing ancestor) must be writable,
    /// and each existing area a writable directory of ari's user.
    pub fn problems(&self) -> Vec<StateError> {
        if let Err(err) = self.check_root_links() {
            return vec![err];
        }
        let mut problems = Vec::new();
        match fs::metadata(&self.root) {
            Ok(meta) => {
                if let Err(err) = check_dir(&self.root, &meta) {
                    return vec![err];
                }
                if let Err(source) = access_writable(&self.root) {
                    problems.push(StateError::NotWritable { root: self.root.clone(), at: None, source });
                }
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let ancestor = self
                    .root
                    .ancestors()
                    .skip(1)
                    .find(|dir| fs::metadata(dir).is_ok())
                    .unwrap_or(Path::new("/"));
                let result = match fs::metadata(ancestor) {
                    Ok(meta) if !meta.is_dir() => Err(io::Error::from_raw_os_error(libc::ENOTDIR)),
                    _ => access_writable(ancestor),
                };
                if let Err(source) = result {
                    problems.push(StateError::NotWritable {
                        root: self.root.clone(),
                        at: Some(ancestor.to_path_buf()),
                        source,
                    });
                }
                return problems;
            }
            Err(err) => return vec![StateError::io("inspect", &self.root)(err)],
        }
        for area in Area::ALL {
            let dir = self.dir(area);
            match fs::symlink_metadata(&dir) {
                Ok(meta) => {
                    if let Err(err) = check_dir(&dir, &meta) {
                        problems.push(err);
                    } else if let Err(source) = access_writable(&dir) {
                        problems.push(StateError::Io { action: "write in", path: dir, source });
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => problems.push(StateError::io("inspect", &dir)(err)),
            }
        }
        problems
    }
}

/// A new, empty file `.tmp-PID-N` in `dir`, 0600, made with `O_EXCL` (so never through
/// anything already there).
fn create_temp(dir: &Path) -> Result<(PathBuf, File), StateError> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".tmp-{}-{n}", std::process::id()));
        let created = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp);
        match created {
            Ok(file) => return Ok((temp, file)),
            // Left by a crashed ari of the same pid: try the next name.
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(StateError::io("create a temp file in", dir)(err)),
        }
    }
}

/// An error opening a file with `O_NOFOLLOW`: `ELOOP` means a symlink was there.
fn open_error(path: &Path, action: &'static str, err: io::Error) -> StateError {
    if err.raw_os_error() == Some(libc::ELOOP) {
        let target = fs::read_link(path).unwrap_or_else(|_| PathBuf::from("?"));
        StateError::Symlink { path: path.to_path_buf(), target }
    } else {
        StateError::io(action, path)(err)
    }
}

/// A directory of ari's: a directory (not a symlink, which `symlink_metadata` shows), owned by
/// ari's effective user.
fn check_dir(path: &Path, meta: &fs::Metadata) -> Result<(), StateError> {
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path).unwrap_or_else(|_| PathBuf::from("?"));
        return Err(StateError::Symlink { path: path.to_path_buf(), target });
    }
    if !meta.is_dir() {
        return Err(StateError::WrongType {
            path: path.to_path_buf(),
            found: kind(meta),
            expected: "a directory",
        });
    }
    check_owner(path, meta)
}

/// A file of ari's: a regular file of ari's effective user; a file of commands is also writable
/// by that user only.
fn check_file(path: &Path, meta: &fs::Metadata, trust: Trust) -> Result<(), StateError> {
    if !meta.is_file() {
        return Err(StateError::WrongType {
            path: path.to_path_buf(),
            found: kind(meta),
            expected: "a regular file",
        });
    }
    if trust == Trust::Shown {
        return Ok(());
    }
    check_owner(path, meta)?;
    let mode = meta.mode() & 0o7777;
    if trust == Trust::Commands && mode & WRITE_BITS != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and other users",
            (true, false) => "its group",
            _ => "other users",
        };
        return Err(StateError::Writable { path: path.to_path_buf(), mode, who });
    }
    Ok(())
}

fn check_owner(path: &Path, meta: &fs::Metadata) -> Result<(), StateError> {
    let me = effective_uid();
    if meta.uid() == me {
        return Ok(());
    }
    Err(StateError::ForeignOwner { path: path.to_path_buf(), owner: meta.uid(), mode: meta.mode() & 0o7777 })
}

/// Tightens a directory of ari's own that others may enter to its owner's bits only (0700 as
/// ari makes them), saying so; a directory ari has just made gets exactly 0700, whatever the
/// umask took away.
fn make_private(path: &Path, meta: &fs::Metadata, created: bool) -> Result<(), StateError> {
    let mode = meta.mode() & 0o7777;
    let wanted = if created { DIR_MODE } else { mode & 0o700 };
    if mode == wanted {
        return Ok(());
    }
    fs::set_permissions(path, Permissions::from_mode(wanted))
        .map_err(StateError::io("change the mode of", path))?;
    if !created {
        log::warn!(
            "{} had mode {mode:04o}, open to other users: tightened it to {wanted:04o}",
            path.display()
        );
    }
    Ok(())
}

fn kind(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_dir() {
        "a directory"
    } else if kind.is_file() {
        "a regular file"
    } else if kind.is_symlink() {
        "a symlink"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a device"
    }
}

fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(StateError::io("sync", dir))
}

/// Whether the calling user may write in `path`, as `access(2)` says (with the real uid, which
/// is ari's effective one: ari is never setuid).
#[allow(unsafe_code)]
fn access_writable(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "the path holds a NUL byte"))?;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call; access(2) only
    // reads it.
    if unsafe { libc::access(c_path.as_ptr(), libc::W_OK) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn writes_make_private_dirs_and_files_replace_and_removes_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        let path = state.write(Area::History, "db.json", b"one").unwrap();
        state.write(Area::History, "db.json", b"two").unwrap();
        assert_eq!(state.read(Area::History, "db.json").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!((mode(state.root()), mode(&state.dir(Area::History)), mode(&path)), (0o700, 0o700, 0o600));
        assert_eq!(state.list(Area::History, ".json").unwrap(), ["db.json"], "no temp file left");
        state.remove(Area::History, "db.json").unwrap();
        state.remove(Area::History, "db.json").unwrap();
        assert!(!path.exists());
        assert_eq!(state.read(Area::History, "db.json").unwrap(), None);
    }

    #[test]
    fn reading_makes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("state"));
        assert_eq!(state.read(Area::Ledger, "db.json").unwrap(), None);
        assert_eq!(state.list(Area::Ledger, ".json").unwrap(), Vec::<String>::new());
        assert!(!state.root().exists());
    }

    #[test]
    fn too_open_dirs_of_ari_are_tightened_and_the_admins_symlink_to_state_dir_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir_all(real.join("history")).unwrap();
        fs::set_permissions(&real, Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(real.join("history"), Permissions::from_mode(0o777)).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let state = StateDir::new(dir.path().join("link"));
        state.write(Area::History, "db.json", b"{}").unwrap();
        assert_eq!((mode(&real), mode(&real.join("history"))), (0o700, 0o700));
        assert_eq!(mode(&real.join("history/db.json")), 0o600);
    }

    #[test]
    fn symlinks_and_non_directories_inside_state_dir_are_refused_and_never_followed() {
        let check = |setup: &dyn Fn(&Path), expected: &str| {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("state");
            fs::create_dir_all(&root).unwrap();
            let target = dir.path().join("target");
            fs::write(&target, b"precious").unwrap();
            setup(&root);
            let state = StateDir::new(&root);
            let results = [
                state.write(Area::History, "db.json", b"new").map(drop),
                state.read(Area::History, "db.json").map(drop),
                state.open_lock(Area::History, "db.json").map(drop),
            ];
            for result in results {
                let err = result.expect_err(expected).to_string();
                assert!(err.contains(expected), "`{expected}` not in `{err}`");
            }
            assert_eq!(fs::read(&target).unwrap(), b"precious", "the target is unchanged");
        };
        let target = |root: &Path| root.parent().unwrap().join("target");
        check(
            &|root| std::os::unix::fs::symlink(root.parent().unwrap(), root.join("history")).unwrap(),
            "/state/history is a symlink (to ",
        );
        check(
            &|root| fs::write(root.join("history"), b"").unwrap(),
            "/state/history is a regular file, not a directory: move it out of the way",
        );
        // A symlink file: a write replaces the link itself, reads and lock opens refuse it.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        fs::create_dir_all(root.join("locks")).unwrap();
        fs::write(target(&root), b"precious").unwrap();
        std::os::unix::fs::symlink(target(&root), root.join("locks/db.lock")).unwrap();
        let state = StateDir::new(&root);
        let err = state.open_lock(Area::Locks, "db.lock").unwrap_err().to_string();
        assert!(err.contains("/state/locks/db.lock is a symlink (to "), "{err}");
        assert!(err.ends_with("); ari never follows a symlink inside state_dir: remove it"), "{err}");
        let err = state.read(Area::Locks, "db.lock").unwrap_err().to_string();
        assert!(err.contains("is a symlink"), "{err}");
        assert_eq!(fs::read(target(&root)).unwrap(), b"precious");
    }

    #[test]
    fn files_of_commands_that_others_can_write_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let path = state.write(Area::Ledger, "db.json", b"{}").unwrap();
        let check = |mode: u32, expected: Option<&str>| {
            fs::set_permissions(&path, Permissions::from_mode(mode)).unwrap();
            let got = state.read_commands(Area::Ledger, "db.json").err().map(|e| e.to_string());
            match (expected, got) {
                (None, None) => {}
                (Some(expected), Some(got)) => assert!(got.ends_with(expected), "{mode:o}: {got}"),
                (expected, got) => panic!("{mode:o}: expected {expected:?}, got {got:?}"),
            }
            assert!(state.read(Area::Ledger, "db.json").is_ok(), "as data it is fine");
        };
        check(0o600, None);
        check(0o644, None);
        check(
            0o666,
            Some("has mode 0666: its group and other users can write it, and ari runs no command from a file another user could have written"),
        );
        check(0o620, Some("has mode 0620: its group can write it, and ari runs no command from a file another user could have written"));
        check(0o602, Some("has mode 0602: other users can write it, and ari runs no command from a file another user could have written"));
    }

    #[test]
    fn names_must_be_plain() {
        let state = StateDir::new("/nonexistent");
        for name in ["", ".", "..", "../x.json", "a/b", "a\0b"] {
            assert!(matches!(state.file(Area::Ledger, name), Err(StateError::BadName { .. })), "{name:?}");
        }
        assert!(state.file(Area::Ledger, "db.json").is_ok());
    }

    #[test]
    fn moving_aside_keeps_the_file_0600_under_a_new_name_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        let path = state.write(Area::History, "db.json", b"one").unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        let first = state.move_aside(Area::History, "db.json", "corrupt").unwrap();
        state.write(Area::History, "db.json", b"two").unwrap();
        let second = state.move_aside(Area::History, "db.json", "corrupt").unwrap();
        assert_ne!(first, second);
        assert_eq!(
            (fs::read(&first).unwrap(), fs::read(&second).unwrap()),
            (b"one".to_vec(), b"two".to_vec())
        );
        assert_eq!(mode(&first), 0o600);
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("db.json.corrupt-2") && name.ends_with('Z'), "{name}");
        assert!(!path.exists());
        assert_eq!(state.list(Area::History, ".json").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_lock_file_is_0600_and_an_open_one_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path());
        drop(state.open_lock(Area::Locks, "db.lock").unwrap());
        let path = state.file(Area::Locks, "db.lock").unwrap();
        assert_eq!(mode(&path), 0o600);
        fs::set_permissions(&path, Permissions::from_mode(0o666)).unwrap();
        drop(state.open_lock(Area::Locks, "db.lock").unwrap());
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn the_problems_of_a_usable_state_dir_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::new(dir.path().join("not/yet"));
        assert!(state.problems().is_empty(), "a missing state_dir under a writable dir is fine");
        state.write(Area::Reports, "r.json", b"{}").unwrap();
        assert!(state.problems().is_empty());
        fs::remove_file(state.dir(Area::Reports).join("r.json")).unwrap();
        fs::remove_dir(state.dir(Area::Reports)).unwrap();
        std::os::unix::fs::symlink("/tmp", state.dir(Area::Reports)).unwrap();
        let problems: Vec<String> = state.problems().iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("/not/yet/reports is a symlink (to /tmp)"), "{problems:?}");
    }
}
