//! The per-job lock: a kernel file lock (`flock`) on `state_dir/locks/LABEL.lock`, so that two
//! runs of one job never overlap. The kernel releases it when its holder exits, however it
//! exits, so a lock can never go stale.
//!
//! The file is 0600 in a 0700 directory (through [`StateDir`]), so no other user can open it,
//! let alone hold it. Who holds a lock comes from the kernel (`/proc/locks`), not from the file:
//! the file's own words (host, start time) are added only when they were written by that holder.

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::engine::files::{Area, StateDir, StateError};

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds it.
    #[error("{what} is already running ({holder}); {advice}")]
    Held {
        /// What the lock guards (`job db`).
        what: String,
        /// Who holds it: pid, and host and start time when the file says so.
        holder: String,
        /// What to do: wait, or use the command's `--wait`.
        advice: &'static str,
    },
    /// The lock file was refused or could not be opened.
    #[error("cannot take the lock of {what}")]
    State {
        /// What the lock guards.
        what: String,
        /// Why.
        #[source]
        source: StateError,
    },
    /// The lock file could not be locked.
    #[error("cannot lock {}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// A held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock `state_dir/locks/NAME.lock` for `what`; with `wait`, waits for its holder
    /// (without, the error points to the command's `--wait`).
    pub fn acquire(state_dir: &Path, name: &str, what: &str, wait: bool) -> Result<Lock, LockError> {
        Lock::take(state_dir, name, what, wait, "wait for it, or use --wait")
    }

    /// Takes the lock `state_dir/locks/NAME.lock` for `what`, for a command that has no
    /// `--wait`: refused while another process holds it.
    pub fn try_acquire(state_dir: &Path, name: &str, what: &str) -> Result<Lock, LockError> {
        Lock::take(state_dir, name, what, false, "try again once it has ended")
    }

    fn take(
        state_dir: &Path,
        name: &str,
        what: &str,
        wait: bool,
        advice: &'static str,
    ) -> Result<Lock, LockError> {
        let state = StateDir::new(state_dir);
        let file_name = format!("{name}.lock");
        let path = state.dir(Area::Locks).join(&file_name);
        let mut file = state
            .open_lock(Area::Locks, &file_name)
            .map_err(|source| LockError::State { what: what.to_string(), source })?;
        let io_error = |source| LockError::Io { path: path.clone(), source };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) if wait => {
                log::info!("{what} is already running ({}); waiting for it", holder(&mut file));
                file.lock().map_err(io_error)?;
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held { what: what.to_string(), holder: holder(&mut file), advice })
            }
            Err(fs::TryLockError::Error(source)) => return Err(io_error(source)),
        }
        let me = format!(
            "pid {} on {} since {}",
            std::process::id(),
            hostname(),
            jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC")
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(me.as_bytes()))
            .map_err(io_error)?;
        Ok(Lock { _file: file })
    }
}

/// Who holds the lock on `file`: the pid the kernel names, with the host and start time the file
/// records when the file was written by that pid.
fn holder(file: &mut File) -> String {
    let Ok(meta) = file.metadata() else { return "holder unknown".into() };
    // The table is read again when it names no holder: a lock this process just found held
    // is in it unless the holder let go meanwhile, and a table longer than one read of it
    // can skip a line when other locks come and go between reads.
    let found = (0..LOCK_TABLE_READS)
        .find_map(|_| flock_holder(&lock_table().unwrap_or_default(), meta.dev(), meta.ino()));
    let Some(pid) = found else {
        return "holder unknown: /proc/locks names none".into();
    };
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.take(4096).read_to_string(&mut text));
    let recorded: String = text.trim().chars().filter(|c| !c.is_control()).collect();
    let recorded_pid =
        recorded.strip_prefix("pid ").and_then(|rest| rest.split(' ').next()?.parse::<u32>().ok());
    if recorded_pid == Some(pid) {
        recorded
    } else {
        format!("pid {pid}")
    }
}

/// How many times [`holder`] reads the kernel's lock table before it gives up.
const LOCK_TABLE_READS: usize = 5;

/// The text of `/proc/locks`, read in as few reads as the kernel allows. It is a `seq_file`:
/// each `read(2)` is one consistent pass over the locks (up to a page of lines), and the next
/// read goes on by line number, so a lock released between two reads shifts the lines after
/// it and one of them is never shown. `read_to_string` starts with a 32-byte probe read, which
/// makes every table at least two passes; one large buffer makes a table of up to a page one.
fn lock_table() -> io::Result<String> {
    let mut file = File::open("/proc/locks")?;
    let mut bytes = Vec::new();
    let mut chunk = vec![0; 1 << 16];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The pid that holds a `flock` on the file `(dev, ino)`, from the text of `/proc/locks`:
/// `1: FLOCK  ADVISORY  WRITE 31895 fe:00:10011149 0 EOF` (the device's major and minor in hex;
/// lines with `->` are waiters, not holders).
fn flock_holder(table: &str, dev: u64, ino: u64) -> Option<u32> {
    let wanted = (u64::from(libc::major(dev)), u64::from(libc::minor(dev)));
    let mut same_inode = Vec::new();
    for line in table.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let [_, kind, _, _, pid, id, ..] = words[..] else { continue };
        if kind != "FLOCK" {
            continue;
        }
        let mut parts = id.split(':');
        let (Some(major), Some(minor), Some(inode), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (Ok(major), Ok(minor), Ok(inode), Ok(pid)) = (
            u64::from_str_radix(major, 16),
            u64::from_str_radix(minor, 16),
            inode.parse::<u64>(),
            pid.parse::<u32>(),
        ) else {
            continue;
        };
        if inode != ino || pid == 0 {
            continue;
        }
        if (major, minor) == wanted {
            return Some(pid);
        }
        same_inode.push(pid);
    }
    // Some filesystems (btrfs subvolumes, some overlays) show `stat` another device than the
    // kernel's lock table does. The file is locked, so its line is in the table: when only one
    // flock is on a file with its inode number, that one is it.
    same_inode.dedup();
    match same_inode[..] {
        [pid] => Some(pid),
        _ => None,
    }
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_named_and_a_dropped_lock_is_free() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lock::acquire(dir.path(), "db", "job db", false).unwrap();
        let err = Lock::acquire(dir.path(), "db", "job db", false).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("job db is already running (pid {} on ", std::process::id())),
            "{message}"
        );
        assert!(
            message.contains(" since ") && message.ends_with("; wait for it, or use --wait"),
            "{message}"
        );
        Lock::acquire(dir.path(), "other", "job other", false).unwrap();
        let message = Lock::try_acquire(dir.path(), "db", "job db").unwrap_err().to_string();
        assert!(message.ends_with("; try again once it has ended"), "a command without --wait: {message}");
        drop(first);
        Lock::acquire(dir.path(), "db", "job db", false).unwrap();
    }

    #[test]
    fn the_holder_is_the_pid_the_kernel_names_not_what_the_file_says() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Lock::acquire(dir.path(), "db", "job db", false).unwrap();
        // A file that lies (or is left from an old run): its words are not repeated.
        std::fs::write(dir.path().join("locks/db.lock"), "pid 999999 on elsewhere since 1999").unwrap();
        let message = Lock::acquire(dir.path(), "db", "job db", false).unwrap_err().to_string();
        assert_eq!(
            message,
            format!("job db is already running (pid {}); wait for it, or use --wait", std::process::id())
        );
    }

    #[test]
    fn the_holder_is_found_while_other_locks_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Lock::acquire(dir.path(), "db", "job db", false).unwrap();
        let mut file = File::open(dir.path().join("locks/db.lock")).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churners: Vec<_> = (0..4)
            .map(|i| {
                let (stop, path) = (stop.clone(), dir.path().join(format!("churn{i}")));
                std::thread::spawn(move || {
                    let files: Vec<File> =
                        (0..8).map(|n| File::create(path.with_extension(n.to_string())).unwrap()).collect();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        files.iter().for_each(|f| f.lock().unwrap());
                        files.iter().for_each(|f| f.unlock().unwrap());
                    }
                })
            })
            .collect();
        let misses = (0..500).filter(|_| !holder(&mut file).starts_with("pid ")).count();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        churners.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(misses, 0, "the holder went unnamed {misses} times in 500");
    }

    #[test]
    fn proc_locks_lines() {
        let dev = libc::makedev(0xfe, 0x01);
        let check = |table: &str, expected: Option<u32>| {
            assert_eq!(flock_holder(table, dev, 77), expected, "{table}")
        };
        check("1: FLOCK  ADVISORY  WRITE 31895 fe:01:77 0 EOF", Some(31895));
        check("1: FLOCK  ADVISORY  WRITE 31895 fe:01:78 0 EOF", None);
        check("1: POSIX  ADVISORY  WRITE 31895 fe:01:77 0 EOF", None);
        check("1: FLOCK  ADVISORY  WRITE 31895 fe:01:77 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 4242 fe:01:77 0 EOF", Some(31895));
        check("1: -> FLOCK  ADVISORY  WRITE 4242 fe:01:77 0 EOF", None);
        check(
            "2: FLOCK  ADVISORY  WRITE 11 08:02:77 0 EOF\n3: FLOCK  ADVISORY  WRITE 31895 fe:01:77 0 EOF",
            Some(31895),
        );
        // Another device in the table than stat shows: one flock on that inode is the one.
        check("2: FLOCK  ADVISORY  WRITE 11 00:2d:77 0 EOF", Some(11));
        check(
            "2: FLOCK  ADVISORY  WRITE 11 00:2d:77 0 EOF\n3: FLOCK  ADVISORY  WRITE 12 00:2e:77 0 EOF",
            None,
        );
        check("garbage\n\n1: FLOCK ADVISORY WRITE x fe:01:77 0 EOF", None);
    }

    #[test]
    fn a_lock_file_is_private_and_a_symlink_there_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        drop(Lock::acquire(dir.path(), "db", "job db", false).unwrap());
        let mode = |p: &str| std::fs::metadata(dir.path().join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode("locks"), mode("locks/db.lock")), (0o700, 0o600));
        let target = dir.path().join("target");
        std::fs::write(&target, "precious").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("locks/web.lock")).unwrap();
        let err = Lock::acquire(dir.path(), "web", "job web", false).unwrap_err();
        let message = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(message.starts_with("cannot take the lock of job web: "), "{message}");
        assert!(message.contains("/locks/web.lock is a symlink (to "), "{message}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    }

    /// Whether `/proc/locks` shows this process waiting for a `flock` on `path` (a `->` line:
    /// `1: -> FLOCK  ADVISORY  WRITE 4242 fe:01:77 0 EOF`), which it does only while a thread
    /// of it is blocked in `flock(2)` on that file.
    fn waiting_for(path: &Path) -> bool {
        let inode = fs::metadata(path).unwrap().ino().to_string();
        let pid = std::process::id().to_string();
        lock_table().unwrap().lines().any(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            matches!(words[..], [_, "->", "FLOCK", _, _, p, id, ..]
                if p == pid && id.rsplit(':').next() == Some(inode.as_str()))
        })
    }

    #[test]
    fn wait_takes_the_lock_once_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lock::acquire(dir.path(), "db", "job db", false).unwrap();
        let path = dir.path().to_path_buf();
        let (done, finished) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let result = Lock::acquire(&path, "db", "job db", true).map(drop).map_err(|e| e.to_string());
            done.send(result).unwrap();
        });
        // The kernel shows the waiter blocked on the lock before the holder lets go; a waiter
        // that did not wait answers instead, and the test fails on its answer.
        let lock_file = dir.path().join("locks/db.lock");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !waiting_for(&lock_file) {
            if let Ok(result) = finished.try_recv() {
                panic!("the waiter did not wait for the holder: {result:?}");
            }
            assert!(std::time::Instant::now() < deadline, "the waiter never blocked on the lock");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        drop(first);
        let result =
            finished.recv_timeout(std::time::Duration::from_secs(30)).expect("the waiter got the lock");
        assert_eq!(result, Ok(()));
        waiter.join().unwrap();
        assert!(!waiting_for(&lock_file), "nobody waits once the waiter has the lock");
    }
}
