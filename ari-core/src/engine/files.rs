//! Every file ari writes, and nothing else in ari writes one: its state directory
//! (`state_dir.rs`, the one way to read and write locks, ledgers, history, reports and caches),
//! files outside it for other programs (`outside.rs`, the metrics file), and what `ari restore`
//! places (`restore_target.rs`); `guard.rs` is what they share.

mod guard;
mod outside;
pub(crate) mod restore_target;
mod state_dir;

pub use guard::{forbid_writes, StateError};
pub use outside::outside_file_problem;
pub(crate) use outside::write_outside_file;
pub(crate) use state_dir::Area;
pub use state_dir::StateDir;
