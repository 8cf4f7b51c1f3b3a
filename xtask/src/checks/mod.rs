//! The checks that are tests: the architecture's invariants (`invariants.rs`), the plugin API's
//! listing compared with `ari-core/api.txt` (`api.rs`; `ARI_UPDATE_API=1 cargo test -p xtask
//! api` rewrites it), the walk-through of the example backend compared with its crate
//! (`docs_examples.rs`), no import circles between the files of a crate (`circles.rs`), and
//! ari-core's two rooms: the contract never names the engine, a backend only the contract
//! (`rooms.rs`).
//! They read the workspace's files and run nothing; `cargo test -p xtask` runs them, as every
//! test run does.

#![cfg(test)]

mod api;
mod circles;
mod docs_examples;
mod invariants;
mod rooms;

use std::path::{Path, PathBuf};

/// The workspace's root folder.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask sits in the workspace root").to_path_buf()
}
