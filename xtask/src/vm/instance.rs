//! A guest's instance: its directory under the cache (`dev` for `up`/`ssh`/`down`, `test` for
//! `vm test`), the state file that records a running guest (qemu's PID, the port, the key, the
//! ssh master's PID and socket) and the lock that lets one command at a time use it. Stopping a
//! recorded guest is by PID only (SIGTERM, then SIGKILL), after checking that the PID is still
//! a process of this instance, since a PID can be reused. The image asks here which guests run
//! on it before a rebuild (`running_guests`).

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cache::{self, CACHE_DIR};

/// A guest's directory and state file. `dev` is the guest of `up`/`ssh`/`down`; `test` the one
/// of `vm test`, so a test run never stops a guest someone is using by hand. The paths in the
/// directory are fixed (the disks, the state file, the ssh master's socket), so only one
/// command may use an instance at a time: `vm test` holds `lock` for its whole run.
#[derive(Debug, Clone)]
pub struct Instance {
    pub(super) dir: PathBuf,
    /// Whether qemu outlives this command (`up`): then it gets its own process group, so that a
    /// Ctrl-C in the terminal that ran `up` does not reach it later.
    pub(super) detached: bool,
}

/// What the state file records about a running guest.
#[derive(Debug, Clone)]
pub struct State {
    pub pid: u32,
    pub port: u16,
    pub key: PathBuf,
    pub dir: PathBuf,
    pub control: PathBuf,
    pub master_pid: Option<u32>,
}

impl Instance {
    pub fn dev() -> Instance {
        Instance { dir: Path::new(CACHE_DIR).join("instances/dev"), detached: true }
    }

    pub fn test() -> Instance {
        Instance { dir: Path::new(CACHE_DIR).join("instances/test"), detached: false }
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Takes the instance's lock, held while the returned file is open, waiting while another
    /// command holds it. Without it, a second `vm test` started while a first one runs (two
    /// runs that both waited for the image build start together) wipes the directory under
    /// the first one's guest and starts its own ssh master at the same socket, so the first
    /// run's next ssh lands in the second run's guest, which nobody has prepared yet. The lock
    /// file sits beside the directory, since the directory is removed and made afresh.
    pub fn lock(&self) -> Result<File> {
        let parent = self.dir.parent().context("an instance directory has a parent")?;
        fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
        cache::lock(
            &self.dir.with_extension("lock"),
            &format!("another command using the guest in {} (one `vm test` at a time)", self.dir.display()),
        )
    }

    pub fn read_state(&self) -> Result<State> {
        let path = self.state_path();
        let text = fs::read_to_string(&path).with_context(|| {
            format!("no guest running (no {}); start one with `cargo xtask vm up`", path.display())
        })?;
        let value: Value =
            serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
        let text_of =
            |key: &str| value[key].as_str().map(PathBuf::from).with_context(|| format!("{key} missing"));
        Ok(State {
            pid: value["pid"].as_u64().context("pid missing")? as u32,
            port: value["port"].as_u64().context("port missing")? as u16,
            key: text_of("key")?,
            dir: text_of("dir")?,
            control: text_of("control")?,
            master_pid: value["master_pid"].as_u64().map(|p| p as u32),
        })
    }

    pub(super) fn write_state(&self, state: &State) -> Result<()> {
        let value = json!({
            "pid": state.pid,
            "port": state.port,
            "key": state.key,
            "dir": state.dir,
            "control": state.control,
            "master_pid": state.master_pid,
        });
        fs::write(self.state_path(), format!("{value:#}\n")).context("write the state file")
    }

    /// Whether the recorded qemu is still running.
    pub fn is_running(&self) -> Result<bool> {
        if !self.state_path().exists() {
            return Ok(false);
        }
        let state = self.read_state()?;
        Ok(is_ours(state.pid, &self.dir))
    }

    /// Stops what the state file records (the ssh master, then qemu), each by its PID and only
    /// if it is still ours, and removes the instance's directory with its overlays. Returns
    /// whether a guest was running.
    pub fn stop_recorded(&self) -> Result<bool> {
        if !self.state_path().exists() {
            // Overlays of a guest that never wrote its state (a boot that failed) go too.
            remove_dir(&self.dir)?;
            return Ok(false);
        }
        let state = self.read_state()?;
        if let Some(master) = state.master_pid {
            stop_pid(master, &self.dir)?;
        }
        let was_running = stop_pid(state.pid, &self.dir)?;
        remove_dir(&self.dir)?;
        Ok(was_running)
    }
}

/// The state files of guests still running from this cache (any instance), so that the image
/// is never rebuilt under a guest whose overlay reads it.
pub fn running_guests() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(Path::new(CACHE_DIR).join("instances")) else { return Vec::new() };
    entries
        .flatten()
        // The instances' lock files sit beside their directories.
        .filter(|e| e.path().is_dir())
        .map(|e| Instance { dir: e.path(), detached: false })
        .filter(|instance| instance.is_running().unwrap_or(false))
        .map(|instance| instance.state_path())
        .collect()
}

/// Stops a process recorded by an earlier command, by PID: only if it is still alive and its
/// command line names `dir` (a PID can be reused by an unrelated process). Returns whether it
/// was running.
fn stop_pid(pid: u32, dir: &Path) -> Result<bool> {
    if !is_ours(pid, dir) {
        return Ok(false);
    }
    // It is not our child any more, so it cannot be waited for: poll /proc instead.
    for (sig, grace) in [("TERM", Duration::from_secs(15)), ("KILL", Duration::from_secs(5))] {
        signal(pid, sig);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !is_alive(pid) {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    bail!("process {pid} did not exit after SIGKILL")
}

pub(super) fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).stderr(Stdio::null()).status();
}

/// Alive and not a zombie: in this sandbox an orphaned process that exited can stay a zombie
/// for a while, and `kill -0` still succeeds on it.
fn is_alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses, which may itself hold spaces.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Alive, and its command line names `dir`: qemu names its disks there, the ssh master its
/// control socket.
pub(super) fn is_ours(pid: u32, dir: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let cmdline = String::from_utf8_lossy(&cmdline);
    is_alive(pid) && cmdline.contains(&*dir.to_string_lossy())
}

pub(super) fn remove_dir(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("remove {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_a_missing_one_is_not() {
        assert!(is_alive(std::process::id()));
        assert!(!is_alive(u32::MAX - 1));
        assert!(!is_ours(std::process::id(), Path::new("/nonexistent/ari-vm-instance")));
    }

    #[test]
    fn an_instance_is_locked_by_one_holder_at_a_time_and_the_lock_sits_beside_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let instance = Instance { dir: dir.path().join("instances/test"), detached: false };
        let held = instance.lock().unwrap();
        let lock_path = dir.path().join("instances/test.lock");
        let other = File::options().write(true).open(&lock_path).unwrap();
        assert!(other.try_lock().is_err(), "a second holder got the lock");
        drop(held);
        assert!(other.try_lock().is_ok(), "the lock outlived its holder");
        assert!(!instance.dir.exists(), "locking made the instance's directory");
    }

    #[test]
    fn the_state_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let instance = Instance { dir: dir.path().to_path_buf(), detached: false };
        let state = State {
            pid: 42,
            port: 2222,
            key: "/k".into(),
            dir: dir.path().to_path_buf(),
            control: "/c".into(),
            master_pid: Some(43),
        };
        instance.write_state(&state).unwrap();
        let read = instance.read_state().unwrap();
        assert_eq!((read.pid, read.port, read.master_pid), (42, 2222, Some(43)));
        assert_eq!(read.control, PathBuf::from("/c"));
    }
}
