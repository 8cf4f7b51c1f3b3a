//! Architecture invariants that code can check, as tests (ARCHITECTURE.md names them):
//! plugin crates depend on ari-core only, only ari-core's `process` module spawns processes,
//! only ari-core's `fsutil` makes, writes, moves or removes files, library crates never print,
//! every source file opens with a `//!` paragraph, and ARCHITECTURE.md mentions every crate.

#![cfg(test)]

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace root").to_path_buf()
}

/// Every crate folder of the workspace (a folder at the top level with a Cargo.toml).
fn crates() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(root())
        .expect("read workspace root")
        .flatten()
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Plugin crates: everything named `ari-*` except the core and the command.
fn plugin_crates() -> Vec<String> {
    crates().into_iter().filter(|c| c.starts_with("ari-") && c != "ari-core" && c != "ari-cli").collect()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The code of a file before its `#[cfg(test)]` module: what ships.
fn production_code(path: &Path) -> String {
    let text = fs::read_to_string(path).expect("read source");
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[test]
fn plugin_crates_depend_on_ari_core_only() {
    let plugins = plugin_crates();
    assert!(plugins.contains(&"ari-rdiff".to_string()), "found plugins: {plugins:?}");
    for plugin in plugins {
        let manifest = fs::read_to_string(root().join(&plugin).join("Cargo.toml")).expect("manifest");
        for other in crates().iter().filter(|c| c.starts_with("ari-") && *c != "ari-core") {
            let depends = manifest.lines().any(|l| {
                l.trim_start().starts_with(&format!("{other} "))
                    || l.trim_start().starts_with(&format!("{other}."))
            });
            assert!(!depends, "{plugin} depends on {other}: plugin crates depend on ari-core only");
        }
    }
}

#[test]
fn only_the_process_module_spawns_processes() {
    for krate in crates().iter().filter(|c| c.starts_with("ari-")) {
        for file in rust_files(&root().join(krate).join("src")) {
            if file.ends_with("ari-core/src/process.rs") {
                continue;
            }
            let code = production_code(&file);
            // clap has a `Command` too: look for the std and duct ones by path.
            let grouped_std_command = code
                .split("std::process::{")
                .skip(1)
                .any(|group| group.split('}').next().is_some_and(|names| names.contains("Command")));
            for spawn in ["process::Command", "duct::", "cmd!("] {
                assert!(
                    !code.contains(spawn),
                    "{} uses {spawn}: spawn through ari_core::process",
                    file.display()
                );
            }
            assert!(!grouped_std_command, "{} imports std::process::Command", file.display());
        }
    }
}

/// Every file ari writes is state, and state goes through `fsutil::StateDir` (private modes, no
/// symlinks followed, no stranger's file trusted): no other code opens a file for writing, makes
/// a directory, or moves, removes or chmods a file.
#[test]
fn only_fsutil_writes_files() {
    for krate in crates().iter().filter(|c| c.starts_with("ari-")) {
        for file in rust_files(&root().join(krate).join("src")) {
            if file.ends_with("ari-core/src/fsutil.rs") {
                continue;
            }
            let code = production_code(&file);
            for write in [
                "OpenOptions",
                "DirBuilder",
                "create_dir",
                "File::create",
                "fs::write",
                "fs::rename",
                "remove_file",
                "remove_dir",
                "set_permissions",
                "tempfile",
            ] {
                assert!(
                    !code.contains(write),
                    "{} uses {write}: write state through ari_core::fsutil::StateDir",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn library_crates_never_print() {
    for krate in crates().iter().filter(|c| c.starts_with("ari-") && *c != "ari-cli") {
        for file in rust_files(&root().join(krate).join("src")) {
            let code = production_code(&file);
            for print in
                ["println!", "eprintln!", "print!(", "eprint!(", "std::io::stdout", "std::io::stderr"]
            {
                assert!(!code.contains(print), "{} uses {print}: only ari-cli prints", file.display());
            }
        }
    }
}

#[test]
fn every_source_file_opens_with_a_doc_paragraph() {
    for krate in crates() {
        for file in rust_files(&root().join(&krate)) {
            if file.components().any(|c| c.as_os_str() == "target") {
                continue;
            }
            let text = fs::read_to_string(&file).expect("read source");
            assert!(text.starts_with("//!"), "{} does not open with a `//!` paragraph", file.display());
        }
    }
}

#[test]
fn architecture_md_mentions_every_crate() {
    let architecture = fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    for krate in crates() {
        assert!(architecture.contains(&format!("`{krate}`")), "ARCHITECTURE.md does not mention `{krate}`");
    }
}
