//! The benchmarks' input files: pseudo-random bytes that are the same on every machine, and
//! paths as YAML.

use anyhow::{Context, Result};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::xorshift::XorShift;

/// Writes `size` pseudo-random bytes seeded by `seed`.
pub(super) fn write_pseudo_random(path: &Path, size: u64, seed: u64) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 16, file);
    let mut rng = XorShift::new(seed);
    let mut left = size;
    while left > 0 {
        let bytes = rng.next().to_le_bytes();
        let n = left.min(8) as usize;
        out.write_all(&bytes[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

/// A path as a YAML double-quoted scalar (JSON string syntax is valid YAML).
pub(super) fn yaml_path(path: &Path) -> Result<String> {
    let text = path.to_str().with_context(|| format!("{} is not valid UTF-8", path.display()))?;
    Ok(serde_json::to_string(text)?)
}
