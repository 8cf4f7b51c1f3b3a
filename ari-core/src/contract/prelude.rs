//! What a backend or snapshot source usually needs: `use ari_core::prelude::*;`.

pub use crate::error::ConfigError;
pub use crate::kinds::{self, ListKind, TextKind};
pub use crate::plugin::{join_path, BackupBackend, Directory, Facts, JobContext, SnapshotSource, Tool};
pub use crate::settings::{Scope, Setting, SettingKind};
pub use crate::step::{Command, Host, Phase, Program, Retry, Step, When};
pub use crate::{register_backend, register_settings, register_source};
