//! The settings reference, `docs/settings.md`, generated from the registry; a test fails when
//! the committed file differs, so the docs cannot drift from the code.

use ari_core::settings::{self, SettingKind};

/// The settings reference as Markdown.
pub fn settings_reference() -> String {
    let mut out = String::from(
        "# Settings reference\n\n\
         <!-- Generated from the settings registry: run `ARI_UPDATE_DOCS=1 cargo test -p ari-cli docs` after changing a setting. A test fails while this file is out of date. -->\n\n\
         Every setting may be set, lowest precedence first: by its default; in the global config\n\
         (`/etc/ari-backup/ari-backup.conf.yaml`, `--config PATH` or `ARI_CONFIG`); in a job file (settings\n\
         owned by `core`, by the job's backend or by its snapshot source); on the command line with\n\
         `--set NAME=VALUE` or `--NAME VALUE` (snake_case or kebab-case; booleans as `--NAME` or `--NAME=false`).\n\
         `ari settings [JOB]` shows each effective value and where it came from.\n\n\
         A setting of scope `process` takes effect once for the whole `ari` process (where its state\n\
         lives, logging, run-all's limits): it may be set in the global config and on the command line,\n\
         and in a job file it is an error. Every other setting may be set at every level.\n\n\
         Every value is checked for what it is (its kind, below) when it is read, at every level, before\n\
         anything runs: a bad value is an error naming the file, line, column and setting.\n\
         On the command line a list is `[a, b]` or words split like a shell.\n\n\
         | setting | kind | default | owner | scope | what it does |\n\
         |---|---|---|---|---|---|\n",
    );
    for def in settings::registry().values() {
        let default = match def.default {
            Some("") => "(empty)".to_string(),
            Some(default) => format!("`{default}`"),
            None => "(none)".to_string(),
        };
        let kind = match def.kind {
            SettingKind::Integer { min, max } => format!("integer, {min} to {max}"),
            kind => kind.describe(),
        };
        let scope = match def.scope {
            settings::Scope::Process => "process",
            _ => "job",
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {scope} | {} |\n",
            def.name,
            kind.replace('|', "\\|"),
            default,
            def.owner,
            def.help.replace('|', "\\|")
        ));
    }
    out.push_str("\n## Kinds\n\nWhat each kind of value accepts.\n\n| kind | accepts |\n|---|---|\n");
    let mut kinds: Vec<(String, String)> = settings::registry()
        .values()
        .filter(|def| !matches!(def.kind, SettingKind::Choice(_)))
        .map(|def| match def.kind {
            SettingKind::Integer { .. } => {
                ("integer".into(), "a whole number, in the range shown beside the setting".into())
            }
            // Its bound is shown beside the setting.
            SettingKind::DurationAtMost(_) => (SettingKind::Duration.describe(), def.kind.accepts()),
            kind => (kind.describe(), kind.accepts()),
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    for (kind, accepts) in kinds {
        out.push_str(&format!("| {} | {} |\n", kind.replace('|', "\\|"), accepts.replace('|', "\\|")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_settings_md_is_up_to_date() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/settings.md");
        let expected = settings_reference();
        if std::env::var_os("ARI_UPDATE_DOCS").is_some() {
            std::fs::write(&path, &expected).expect("write docs/settings.md");
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "docs/settings.md is out of date with the settings registry: run `ARI_UPDATE_DOCS=1 cargo test -p ari-cli docs`"
        );
    }
}
