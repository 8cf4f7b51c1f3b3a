//! The job model: what a job file says (`Job`, its volumes and hook commands) and the errors
//! that point into it. Reading it from a file, strictly (unknown keys, wrong types, a setting of
//! another backend, a bad label or host are errors that name the file, line, key and the nearest
//! known name), is `file.rs`.
//!
//! The job's own keys (`label`, `backend`, `include`, `pre`, ...) and any registered setting share
//! the top level of the file. Parsing is a pass of a serde `DeserializeSeed` that checks every
//! key as it is read, so that its errors carry the position serde_yaml attaches; a pass that
//! fails in a key's value is made again without that key, so that one run reports the first
//! error of every key. What depends on several keys (a setting's owner against `backend` and
//! `snapshot`, which may come later in the file) is checked after that, and points at the key's
//! line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde::Deserialize;

use crate::contract::error::ConfigError;
use crate::contract::kinds::{self, TextKind};
use crate::contract::settings::{self, Layer};
use crate::contract::step::{Program, When};

pub(crate) use crate::contract::kinds::{check_host, check_label};

pub mod dump;
pub(crate) mod file;
mod program;

/// The job's own keys, beside which any registered setting may appear.
#[doc(hidden)]
pub const JOB_KEYS: &[&str] = &[
    "label",
    "backend",
    "source_hostname",
    "include",
    "exclude",
    "snapshot",
    "volumes",
    "pre",
    "after_snapshot",
    "post",
    "dumps",
];

/// One backup job, parsed and checked.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job file.
    #[doc(hidden)]
    pub path: PathBuf,
    /// The job's name, in logs and in the backup's path.
    pub label: String,
    /// The registered backend that runs the main step, as the file names it; without one, the
    /// `ari` binary's default (rdiff for ari's own).
    #[doc(hidden)]
    pub backend: Option<String>,
    /// The host whose files are backed up; `localhost` is the backup server.
    pub source_hostname: String,
    /// Paths to back up, as seen on the source host.
    pub include: Vec<String>,
    /// Paths or patterns not to back up.
    pub exclude: Vec<String>,
    /// The registered snapshot source, if any.
    #[doc(hidden)]
    pub snapshot: Option<String>,
    /// Volumes for the snapshot source.
    pub volumes: Vec<Volume>,
    /// Commands before any snapshot; the first failure stops the job.
    #[doc(hidden)]
    pub pre: Vec<HookCommand>,
    /// Commands once the snapshots are mounted, before the main step.
    #[doc(hidden)]
    pub after_snapshot: Vec<HookCommand>,
    /// Commands after everything else; each runs even if one before it failed.
    #[doc(hidden)]
    pub post: Vec<HookCommand>,
    /// Database dumps (or commands' output) streamed into the store before any snapshot.
    #[doc(hidden)]
    pub dumps: Vec<dump::Dump>,
    /// The settings the job file sets.
    #[doc(hidden)]
    pub settings: Layer,
    /// The file's text, where an error about one of its keys finds its line.
    document: Arc<str>,
    /// Its top-level keys, in file order.
    keys: Vec<String>,
}

/// A logical volume to snapshot, and where it is normally mounted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a volume: {name: vg/lv, mount_point: /path}")]
pub struct Volume {
    /// `vg/lv`.
    #[serde(deserialize_with = "volume_name")]
    pub name: String,
    /// Where the volume is mounted on the source host (`/`, `/var/lib/mysql`).
    #[serde(deserialize_with = "mount_point")]
    pub mount_point: String,
    /// Options for mounting the snapshot (`-o`).
    #[serde(default, deserialize_with = "mount_options")]
    pub mount_options: Option<String>,
}

fn volume_name<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Checked(&kinds::VOLUME).deserialize(deserializer)
}

fn mount_point<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Checked(&kinds::PATH).deserialize(deserializer)
}

fn mount_options<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Checked(&kinds::MOUNT_OPTIONS).deserialize(deserializer).map(Some)
}

/// A command of a job's `pre`, `after_snapshot` or `post` list (the engine's: a plugin never
/// sees hooks).
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookCommand {
    /// What to run.
    pub program: Program,
    /// Where (`localhost` by default).
    pub host: String,
    /// When (post commands only; `always` elsewhere).
    pub when: When,
}

impl Job {
    /// The job's effective settings under the global config and the command line: the one way
    /// every command resolves them (defaults < config < job file < command line).
    #[doc(hidden)]
    pub fn settings_under(
        &self,
        config: &Layer,
        command_line: &Layer,
    ) -> crate::contract::settings::Settings {
        crate::contract::settings::Settings::resolve([config, &self.settings, command_line])
    }

    /// The line and column of a key of the job file (`include[1]`, `volumes[0].mount_point`).
    #[doc(hidden)]
    pub fn position(&self, key: &str) -> Option<(usize, usize)> {
        crate::contract::yaml::locate(&self.document, key)
    }

    /// Refuses every setting of a plugin the job does not use (its `backend`, or its snapshot
    /// source), each at the setting's line.
    pub(crate) fn check_owners(&self, backend: &str) -> Result<(), ConfigError> {
        let errors = foreign_settings(&self.keys, backend, self.snapshot.as_deref())
            .map(|(key, message)| self.error_at(key, message));
        ConfigError::any(errors)
    }

    /// An error about a key of the job file, at its line and column.
    #[doc(hidden)]
    pub fn error_at(&self, key: &str, message: impl fmt::Display) -> ConfigError {
        key_error(&self.path, &self.document, key, message)
    }
}

/// An error about a key of the job file at `path`, whose text is `document`, at the key's line
/// and column.
pub(crate) fn key_error(path: &Path, document: &str, key: &str, message: impl fmt::Display) -> ConfigError {
    ConfigError {
        file: Some(path.to_path_buf()),
        position: crate::contract::yaml::locate(document, key),
        message: format!("{key}: {message}"),
        others: Vec::new(),
    }
}

/// The settings among `keys` of a plugin the job does not use (neither `backend` nor
/// `snapshot`), each with why it is refused.
pub(crate) fn foreign_settings<'a>(
    keys: &'a [String],
    backend: &'a str,
    snapshot: Option<&'a str>,
) -> impl Iterator<Item = (&'a str, String)> + 'a {
    keys.iter().filter_map(move |key| {
        let def = settings::registry().get(key.as_str())?;
        // A backend named `OWNER-NAME` is of OWNER's family, and may set its settings
        // (`zfs-send` reads zfs's `dataset_name` and retention); its check refuses those it
        // does not read.
        let family = backend.strip_prefix(def.owner).is_some_and(|rest| rest.starts_with('-'));
        let allowed = def.owner == "core" || def.owner == backend || family || Some(def.owner) == snapshot;
        (!allowed).then(|| {
            let message = format!(
                "`{key}` is a setting of `{}`, which this job does not use (backend: {backend}{})",
                def.owner,
                snapshot.map(|s| format!(", snapshot: {s}")).unwrap_or_default(),
            );
            (key.as_str(), message)
        })
    })
}

/// The label a job file without `label:` gets: its name without `.yaml` or `.yml`.
#[doc(hidden)]
pub fn default_label(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.strip_suffix(".yaml").or_else(|| name.strip_suffix(".yml")).unwrap_or(&name).to_string()
}

/// A string checked against its kind.
pub(crate) struct Checked(pub(crate) &'static TextKind);

impl<'de> DeserializeSeed<'de> for Checked {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Checked {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {}", self.0.name)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        (self.0.check)(v)
            .map_err(|err| E::custom(format!("`{}` {err}", crate::contract::kinds::shown(v))))?;
        Ok(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Job, String> {
        Job::parse(Path::new("/etc/ari-backup/jobs.d/web.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_full_job() {
        let job = parse(
            "#!/usr/bin/env -S ari run\n\
             label: db-server\n\
             source_hostname: db.example.com\n\
             include: [/etc, /var/lib/mysql]\n\
             exclude: [/var/lib/mysql/tmp, '**/*.tmp']\n\
             remote_user: backup\n\
             ssh_port: 2222\n\
             pre:\n\
             \x20 - command: mysqldump --all-databases > /var/backups/mysql.sql\n\
             \x20   host: db.example.com\n\
             post:\n\
             \x20 - command: [rm, -f, /var/backups/mysql.sql]\n\
             \x20   host: db.example.com\n\
             \x20   when: success\n",
        )
        .unwrap();
        assert_eq!(job.label, "db-server");
        assert_eq!(job.backend, None, "the binary chooses the default");
        assert_eq!(job.include, ["/etc", "/var/lib/mysql"]);
        assert_eq!(job.exclude, ["/var/lib/mysql/tmp", "**/*.tmp"]);
        assert_eq!(
            job.pre[0].program,
            Program::Shell("mysqldump --all-databases > /var/backups/mysql.sql".into())
        );
        assert_eq!(
            job.post[0].program,
            Program::Argv(vec!["rm".into(), "-f".into(), "/var/backups/mysql.sql".into()])
        );
        assert_eq!(job.post[0].when, When::Success);
        assert_eq!(job.settings.values["remote_user"], settings::Value::String("backup".into()));
        assert_eq!(job.settings.values["ssh_port"], settings::Value::Integer(2222));
    }

    #[test]
    fn label_defaults_to_the_file_name() {
        let job = Job::parse(Path::new("/jobs/web-1.yml"), "include: [/etc]").unwrap();
        assert_eq!(job.label, "web-1");
        let job = Job::parse(Path::new("/jobs/web_2"), "include: [/etc]").unwrap();
        assert_eq!(job.label, "web_2");
        let err = Job::parse(Path::new("/jobs/.hidden.yaml"), "include: [/etc]").unwrap_err();
        assert!(err.to_string().contains("the file name gives the label `.hidden`"), "{err}");
    }

    #[test]
    fn bad_input_names_file_line_and_key() {
        let check = |text: &str, expected: &str| {
            let err = parse(text).unwrap_err();
            assert_eq!(err, expected, "for {text:?}");
        };
        check(
            "include: [/etc]\nbakend: rdiff\n",
            "/etc/ari-backup/jobs.d/web.yaml:2:9: bakend: unknown key `bakend` (did you mean `backend`?)",
        );
        check(
            "ssh_port: twenty-two\n",
            "/etc/ari-backup/jobs.d/web.yaml:1:11: ssh_port: invalid type: string \"twenty-two\", expected an integer",
        );
        check(
            "label: ../etc\n",
            "/etc/ari-backup/jobs.d/web.yaml:1:8: label: `../etc` must start with a letter or digit and hold only letters, digits, `.`, `_` and `-`",
        );
        check(
            "label: a/b\n",
            "/etc/ari-backup/jobs.d/web.yaml:1:8: label: `a/b` must start with a letter or digit and hold only letters, digits, `.`, `_` and `-`",
        );
        check("label: a..b\n", "/etc/ari-backup/jobs.d/web.yaml:1:8: label: `a..b` must not contain `..`");
        check(
            "source_hostname: -oProxyCommand=x\n",
            "/etc/ari-backup/jobs.d/web.yaml:1:18: source_hostname: `-oProxyCommand=x` must not start with `-` (ssh would read it as an option)",
        );
        check(
            "include: [/etc]\npre:\n  - comand: [true]\n",
            "/etc/ari-backup/jobs.d/web.yaml:3:5: pre[0]: unknown field `comand`, expected `command` or `host` (did you mean `command`?)",
        );
        check("", "/etc/ari-backup/jobs.d/web.yaml: the job file is empty; a job needs at least `include:` (see docs/jobs.md)");
        check("# only a comment\n", "/etc/ari-backup/jobs.d/web.yaml: the job file is empty; a job needs at least `include:` (see docs/jobs.md)");
        check(
            "include: [/etc\n",
            "/etc/ari-backup/jobs.d/web.yaml:2:1: did not find expected ',' or ']' at line 2 column 1, while parsing a flow sequence at line 1 column 10",
        );
        check("- a\n- b\n", "/etc/ari-backup/jobs.d/web.yaml: a job file must be a mapping of keys (label, backend, include, ...)");
        check(
            "include: [\"/etc\\u001b[31m\"]\n",
            "/etc/ari-backup/jobs.d/web.yaml:1:11: include[0]: `/etc\\u{1b}[31m` holds the control character \\u{1b}",
        );
        check(
            "include: [/etc]\nafter_snapshot:\n  - command: [true]\n",
            "/etc/ari-backup/jobs.d/web.yaml:3:3: after_snapshot: only a job with `snapshot:` has after_snapshot commands (use `pre` instead)",
        );
        check(
            "include: [/etc]\npre:\n  - command: []\n",
            "/etc/ari-backup/jobs.d/web.yaml:3:14: pre[0].command: the command is empty",
        );
        check(
            "include: [/etc]\nlabel: a\nlabel: b\n",
            "/etc/ari-backup/jobs.d/web.yaml:3:8: label: `label` appears twice",
        );
    }

    #[test]
    fn every_error_of_a_file_at_once() {
        let check = |text: &str, expected: &[&str]| {
            let err = Job::parse(Path::new("/etc/ari-backup/jobs.d/web.yaml"), text).unwrap_err();
            let shown = err.to_string();
            let lines: Vec<&str> = shown.lines().collect();
            assert_eq!(lines, expected, "for {text:?}");
            assert_eq!(err.others.len() + 1, expected.len(), "one error each: {err:?}");
        };
        let file = "/etc/ari-backup/jobs.d/web.yaml";
        check(
            "include: [/etc]\nincldue: [/srv]\nsource_hostnme: db\n",
            &[
                &format!("{file}:2:10: incldue: unknown key `incldue` (did you mean `include`?)"),
                &format!("{file}:3:17: source_hostnme: unknown key `source_hostnme` (did you mean `source_hostname`?)"),
            ],
        );
        // A wrong type, a typo inside a hook (one error a value: serde stops inside it), a typo.
        check(
            "ssh_port: twenty-two\npre:\n  - comand: [true]\n  - comand: [false]\nlabl: x\n",
            &[
                &format!("{file}:1:11: ssh_port: invalid type: string \"twenty-two\", expected an integer"),
                &format!("{file}:3:5: pre[0]: unknown field `comand`, expected `command` or `host` (did you mean `command`?)"),
                &format!("{file}:5:7: labl: unknown key `labl` (did you mean `label`?)"),
            ],
        );
        // No backend is registered in ari-core's own tests.
        check(
            "backend: rdif\ninclude: [/etc]\nexlcude: [/tmp]\n",
            &[
                &format!("{file}:1:10: backend: unknown backend `rdif` (known: none)"),
                &format!("{file}:3:10: exlcude: unknown key `exlcude` (did you mean `exclude`?)"),
            ],
        );
        let slash =
            "label: `a/b` must start with a letter or digit and hold only letters, digits, `.`, `_` and `-`";
        // The checks across keys add theirs, in file order, but not about a key that failed:
        // `volumes` of a job whose `snapshot` is unknown, a bad value checked again.
        check(
            "volumes: [{name: vg0/root, mount_point: /}]\ninclude: [/etc]\nlabel: a/b\n",
            &[
                &format!("{file}:1:10: volumes: only a job with `snapshot:` has volumes"),
                &format!("{file}:3:8: {slash}"),
            ],
        );
        check(
            "snapshot: lvn\nvolumes: [{name: vg0/root, mount_point: /}]\ninclude: [/etc]\n",
            &[&format!("{file}:1:11: snapshot: unknown snapshot source `lvn` (known: none)")],
        );
        check(
            "include: [/etc]\nvolumes: 5\n",
            &[&format!("{file}:2:10: volumes: invalid type: integer `5`, expected a sequence")],
        );
        // A key twice, the first time with a bad value: both are errors.
        check(
            "label: a/b\ninclude: [/etc]\nlabel: b\n",
            &[&format!("{file}:1:8: {slash}"), &format!("{file}:3:8: label: `label` appears twice")],
        );
        // A file YAML cannot read reports its first error alone, as it always did.
        check(
            "incldue: [/etc]\ninclude: [/etc\n",
            &[&format!("{file}:1:10: incldue: unknown key `incldue` (did you mean `include`?)")],
        );
        check(
            "include: [/etc\nincldue: [/etc]\n",
            &[&format!("{file}:2:8: did not find expected ',' or ']' at line 2 column 8, while parsing a flow sequence at line 1 column 10")],
        );
        check(
            "include: [/etc]\nincldue: [/etc]\n---\nlabel: x\n",
            &[&format!("{file}:2:10: incldue: unknown key `incldue` (did you mean `include`?)")],
        );
        // A file of typos stops after MAX_ERRORS, each a pass over the file.
        let typos: String = (0..30).map(|i| format!("key{i}: x\n")).collect();
        let err = Job::parse(Path::new(file), &typos).unwrap_err();
        assert_eq!(err.others.len(), file::MAX_ERRORS, "{err}");
        assert_eq!(
            err.others[file::MAX_ERRORS - 2].to_string(),
            format!("{file}:20:8: key19: unknown key `key19`")
        );
        assert_eq!(
            err.others[file::MAX_ERRORS - 1].to_string(),
            format!("{file}: stopped after 20 errors: fix these, and the next run reports what is left")
        );
        // One error is shown as it always was, alone.
        let err = Job::parse(Path::new(file), "include: [/etc]\nbakend: rdiff\n").unwrap_err();
        assert!(err.others.is_empty());
        assert_eq!(
            err.to_string(),
            format!("{file}:2:9: bakend: unknown key `bakend` (did you mean `backend`?)")
        );
    }
}
