//! What a backend or snapshot source usually needs: `use ari_core::prelude::*;`.

pub use crate::contract::error::ConfigError;
pub use crate::contract::kinds::{self, ListKind, TextKind};
pub use crate::contract::plugin::{
    join_path, BackupBackend, Directory, Facts, JobContext, PluginError, SnapshotSource, Tool,
};
pub use crate::contract::settings::{Setting, SettingKind};
pub use crate::contract::step::{Command, Host, Phase, Program, Step, When};
pub use crate::{register_backend, register_settings, register_source};
