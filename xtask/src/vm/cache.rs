//! The fixed cache directory `/var/cache/ari-vm`, shared by every checkout, session and CI
//! run on a machine: the image, the saved VM state and the guests' instances live there. Its
//! locks are kernel file locks, released when their file is closed, so also when the process
//! that held one dies.

use anyhow::{Context, Result};
use std::fs::{self, File};
use std::path::Path;

/// Where the image, the saved VM state and the instances live. Fixed on purpose: every checkout
/// and CI run on a machine reuses one image instead of spending a quarter of an hour on its own.
pub const CACHE_DIR: &str = "/var/cache/ari-vm";

/// Takes the cache directory's lock, so that two commands never build the image or save the VM
/// state at the same time.
pub fn lock_cache() -> Result<File> {
    fs::create_dir_all(CACHE_DIR).with_context(|| format!("create {CACHE_DIR}"))?;
    lock(&Path::new(CACHE_DIR).join("lock"), &format!("another xtask using {CACHE_DIR}"))
}

/// Takes an exclusive kernel file lock on `path` (created when missing), saying that it waits
/// for `holder` while another process holds it. The lock is released when the returned file is
/// closed, and so also when its process dies, however it dies.
pub fn lock(path: &Path, holder: &str) -> Result<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    if file.try_lock().is_err() {
        println!("waiting for {holder}...");
        file.lock().with_context(|| format!("lock {}", path.display()))?;
    }
    Ok(file)
}
