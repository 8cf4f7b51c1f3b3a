//! `cargo xtask dist`: the files a package installs beside the binary that are generated from
//! ari itself, so that they cannot fall out of step with it: man pages (`man/man1/ari*.1`,
//! `man/man5/ari-job.5`, `man/man5/ari-settings.5`) and shell completions (`completions/ari.bash`,
//! `_ari`, `ari.fish`), under `target/dist`.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::shell;

/// Writes the generated files and returns the directory that holds them.
pub fn write() -> Result<PathBuf> {
    let dir = shell::target_dir().join("dist");
    for page in ari_cli::manual::pages() {
        let section = page.name.rsplit('.').next().unwrap_or("1");
        write_file(&dir.join(format!("man/man{section}")), &page.name, &page.text)?;
    }
    for completion in ari_cli::manual::completions() {
        write_file(&dir.join("completions"), &completion.name, &completion.text)?;
    }
    Ok(dir)
}

fn write_file(dir: &std::path::Path, name: &str, text: &str) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join(name);
    fs::write(&path, text).with_context(|| format!("write {}", path.display()))
}
