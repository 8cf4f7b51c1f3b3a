//! The settings of the command backend: the command itself, and where it runs.

use ari_core::settings::{Setting, SettingKind};

/// The main step's program and arguments, run without a shell.
pub static COMMAND: Setting<Option<Vec<String>>> = Setting::with_kind(
    "command",
    "command",
    SettingKind::Words,
    None,
    "the backup command, run without a shell: a list, or a string split like a shell; {snapshot_root} and {label} are filled in (required)",
);

/// Where the command runs: the job's source host, or the backup server.
pub static COMMAND_HOST: Setting<String> = Setting::with_kind(
    "command_host",
    "command",
    SettingKind::Choice(&["source", "local"]),
    Some("source"),
    "where the command runs: source (the job's source_hostname, over ssh when remote) or local (the backup server)",
);

ari_core::register_settings!(COMMAND, COMMAND_HOST);
