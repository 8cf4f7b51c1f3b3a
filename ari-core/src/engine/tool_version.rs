//! A tool's version, asked once and cached in `state_dir` for as long as the binary is unchanged.
//!
//! Asking rdiff-backup its version starts a Python interpreter (about 0.1 s), which would cost
//! every run of every job; the cache key is the binary's inode, size, mtime and ctime, so an
//! upgrade (which replaces the file) asks again.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::engine::files::{Area, StateDir};
use crate::engine::process::{self, ProcessError};

const CACHE_FILE: &str = "tool-versions.json";

/// The first line that `program args...` prints, from the cache in `state_dir` when the binary
/// is unchanged since it was asked.
pub(crate) fn tool_version(program: &Path, args: &[&str], state_dir: &Path) -> Result<String, ProcessError> {
    let key = cache_key(program, args);
    let state = StateDir::new(state_dir);
    let mut cache: BTreeMap<String, String> = match state.read(Area::Cache, CACHE_FILE) {
        Ok(bytes) => bytes.and_then(|bytes| serde_json::from_slice(&bytes).ok()).unwrap_or_default(),
        Err(err) => {
            log::debug!("not using the tool-version cache: {err}");
            BTreeMap::new()
        }
    };
    if let Some(version) = key.as_ref().and_then(|key| cache.get(key)) {
        return Ok(version.clone());
    }
    let mut argv = vec![program.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let output = process::query(&argv)?;
    let stdout = output.shown_stdout();
    let text = if stdout.trim().is_empty() { output.stderr() } else { stdout };
    let version = text.lines().next().unwrap_or_default().trim().to_string();
    if let Some(key) = key {
        cache.insert(key, version.clone());
        let bytes = serde_json::to_vec_pretty(&cache).unwrap_or_default();
        if let Err(err) = state.write(Area::Cache, CACHE_FILE, &bytes) {
            log::debug!("cannot cache tool versions: {err}");
        }
    }
    Ok(version)
}

fn cache_key(program: &Path, args: &[&str]) -> Option<String> {
    let resolved = std::fs::canonicalize(program).ok()?;
    let meta = resolved.metadata().ok()?;
    Some(format!(
        "{} {} ino={} size={} mtime={}.{} ctime={}.{}",
        resolved.display(),
        args.join(" "),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_cached_until_the_binary_changes() {
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\necho 'tool 1.0'\n").unwrap();
        std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let state = dir.path().join("state");
        assert_eq!(tool_version(&tool, &["--version"], &state).unwrap(), "tool 1.0");
        assert!(state.join("cache").join(CACHE_FILE).exists());

        // Replaced as a package upgrade does: a new file renamed over the old one.
        let new = dir.path().join("tool.new");
        std::fs::write(&new, "#!/bin/sh\necho 'tool 2.0'\n").unwrap();
        std::fs::set_permissions(&new, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::rename(&new, &tool).unwrap();
        assert_eq!(tool_version(&tool, &["--version"], &state).unwrap(), "tool 2.0");
    }
}
