//! The per-job lock: a kernel file lock on `state_dir/locks/LABEL.lock`, so that two runs of one
//! job never overlap. The kernel releases it when its holder exits, however it exits, so a lock
//! can never go stale; the file only says who holds it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds it.
    #[error("{what} is already running ({holder}); wait for it, or use --wait")]
    Held {
        /// What the lock guards (`job db`).
        what: String,
        /// Who holds it: pid, host, start time.
        holder: String,
    },
    /// The lock file could not be opened or locked.
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
    /// Takes the lock `state_dir/locks/NAME.lock` for `what`; with `wait`, waits for its holder.
    pub fn acquire(state_dir: &Path, name: &str, what: &str, wait: bool) -> Result<Lock, LockError> {
        let path = state_dir.join("locks").join(format!("{name}.lock"));
        let io_error = |source| LockError::Io { path: path.clone(), source };
        fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(io_error)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) if wait => {
                log::info!("{what} is already running ({}); waiting for it", holder(&mut file));
                file.lock().map_err(io_error)?;
            }
            Err(fs::TryLockError::WouldBlock) => {
                return Err(LockError::Held { what: what.to_string(), holder: holder(&mut file) })
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

fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    if text.trim().is_empty() {
        "holder unknown".to_string()
    } else {
        text.trim().to_string()
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
        drop(first);
        Lock::acquire(dir.path(), "db", "job db", false).unwrap();
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
        // While the first holds the lock the waiter stays blocked; a waiter that did not wait
        // would have answered (with an error) long before.
        assert!(
            finished.recv_timeout(std::time::Duration::from_millis(300)).is_err(),
            "the waiter did not wait for the holder"
        );
        drop(first);
        let result =
            finished.recv_timeout(std::time::Duration::from_secs(30)).expect("the waiter got the lock");
        assert_eq!(result, Ok(()));
        waiter.join().unwrap();
    }
}
