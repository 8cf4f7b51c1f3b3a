//! The JSON Schemas of job files and of the global config (draft-07, which editors' YAML
//! language servers read), generated from the registered settings and plugins: each setting's
//! kind, default, help and choices, the job's own keys (`volumes`, `pre`, `after_snapshot`,
//! `post`), and which settings a job may set for its backend and snapshot source. `ari schema
//! [job|config]` prints one; `dist/schema/` ships both, and a test keeps them up to date.
//!
//! The schema is a help for editors, not ari's check: ari checks every value by its kind
//! (a host, a path, a dataset) when it reads a file, which a schema's types cannot express.

use ari_core::settings::{self, Scope, SettingDef, SettingKind};
use serde_json::{json, Map, Value};

use crate::job_keys::JOB_KEY_HELP;

/// Which file a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// A job file in jobs_dir.
    Job,
    /// The global config.
    Config,
}

/// Where the package installs the schemas; the modeline of a job file names it.
pub const INSTALLED_DIR: &str = "/usr/share/ari-backup/schema";

/// The schema of `which`.
pub fn schema(which: Which) -> Value {
    match which {
        Which::Job => job_schema(),
        Which::Config => config_schema(),
    }
}

/// The file name of the schema of `which`.
pub fn file_name(which: Which) -> &'static str {
    match which {
        Which::Job => "ari-job.schema.json",
        Which::Config => "ari-config.schema.json",
    }
}

/// A setting's value as a schema: its type from its kind, its help, default and choices.
fn setting_schema(def: &SettingDef) -> Value {
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let mut schema = match def.kind {
        SettingKind::Bool => json!({"type": "boolean"}),
        SettingKind::Integer { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
        // YAML numbers are accepted and kept as written (`snapshot_size: 10`).
        SettingKind::String | SettingKind::Text(_) => json!({"type": ["string", "number"]}),
        SettingKind::List | SettingKind::Checked(_) => strings,
        SettingKind::Words | SettingKind::CheckedWords(_) => {
            json!({"type": ["string", "array"], "items": {"type": "string"}})
        }
        SettingKind::Choice(choices) => json!({"enum": choices}),
        SettingKind::Counts(names) => {
            let count = json!({"type": "integer", "minimum": 1, "maximum": ari_core::settings::Counts::MAX});
            let properties: serde_json::Map<String, Value> =
                names.iter().map(|name| (name.to_string(), count.clone())).collect();
            json!({
                "oneOf": [
                    {"type": "object", "properties": properties, "additionalProperties": false, "minProperties": 1},
                    {"type": "string"},
                ]
            })
        }
        SettingKind::Duration | SettingKind::DurationAtMost(_) => {
            json!({"type": "string", "pattern": "^\\s*[0-9]"})
        }
        // A kind added later: any value, until the schema learns it.
        _ => json!({}),
    };
    let kind = match def.kind {
        SettingKind::Integer { min, max } => format!("integer, {min} to {max}"),
        kind => kind.describe(),
    };
    let scope =
        if def.scope == Scope::Process { "; a setting of the process: not in a job file" } else { "" };
    schema["description"] = format!("{} ({kind}; owner {}{scope})", def.help, def.owner).into();
    if let Some(default) = def.default {
        schema["default"] = typed_default(def.kind, default);
    }
    schema
}

/// A default, written as on the command line, as the JSON value a file would hold.
fn typed_default(kind: SettingKind, text: &str) -> Value {
    match kind {
        SettingKind::Bool => text.parse::<bool>().map(Value::from).unwrap_or_else(|_| text.into()),
        SettingKind::Integer { .. } => text.parse::<i64>().map(Value::from).unwrap_or_else(|_| text.into()),
        SettingKind::List | SettingKind::Checked(_) => {
            shell_words::split(text).map(Value::from).unwrap_or_else(|_| text.into())
        }
        _ => text.into(),
    }
}

fn hook_schema(with_when: bool) -> Value {
    let mut properties = json!({
        "command": {
            "description": "a string runs through a shell; a list runs without one, every element one argument (on a remote host too)",
            "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
        },
        "host": {"type": "string", "description": "where it runs", "default": "localhost"},
    });
    if with_when {
        properties["when"] = json!({
            "enum": ["always", "success", "failure"],
            "description": "after which outcome it runs",
            "default": "always",
        });
    }
    json!({
        "type": "array",
        "items": {"type": "object", "additionalProperties": false, "required": ["command"], "properties": properties},
    })
}

/// A `dumps:` list: each entry a `type` with its keys, or a `command`.
fn dump_schema() -> Value {
    let word = json!({"type": "string"});
    let command = json!({"anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]});
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "oneOf": [{"required": ["type"]}, {"required": ["command"]}],
            "properties": {
                "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$", "maxLength": 128, "description": "the dump's label: its file's name in the store"},
                "type": {"enum": ["postgresql", "mysql", "mongodb", "sqlite"]},
                "command": command,
                "database": {"type": "string", "pattern": "^[A-Za-z0-9_$][A-Za-z0-9_$.-]*$", "maxLength": 63},
                "globals": {"type": "boolean", "description": "postgresql: pg_dumpall --globals-only instead of a database"},
                "path": {"type": "string", "pattern": "^/", "description": "sqlite: the database file on the host"},
                "host": {"type": "string", "description": "where the dump runs; default: source_hostname"},
                "container": {"type": "string", "description": "a container on the host to run the dump in"},
                "container_engine": {"enum": ["docker", "podman"], "default": "docker"},
                "run_as": {"type": "string", "description": "the user the dump runs as (runuser, or the container's --user)"},
                "options": {"type": "array", "items": word, "description": "extra options of the dump tool, from its allow-list; valued ones as --name=VALUE"},
                "compress": {"enum": ["none", "zstd"], "default": "none"},
                "timeout": {"type": "string", "pattern": "^\\s*[0-9]", "description": "default: dump_timeout"},
            },
        },
    })
}

fn job_schema() -> Value {
    let backends: Vec<&str> = ari_core::plugin::backends().map(|b| b.name()).collect();
    let sources: Vec<&str> = ari_core::plugin::sources().map(|s| s.name()).collect();
    let paths = json!({"type": "array", "items": {"type": "string"}});
    let mut properties = Map::new();
    let help: std::collections::BTreeMap<&str, &str> = JOB_KEY_HELP.iter().copied().collect();
    let own = |key: &str, mut schema: Value| {
        schema["description"] = help.get(key).copied().unwrap_or_default().into();
        (key.to_string(), schema)
    };
    // The LVM source's allow-list, as a pattern an editor checks: `ro`, `ro,noatime`, ...
    let allowed: Vec<&str> = ari_lvm::ALLOWED_MOUNT_OPTIONS.iter().map(|(name, _)| *name).collect();
    let mount_options = format!("^({0})(,({0}))*$", allowed.join("|"));
    properties.extend([
        own("label", json!({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]*$", "maxLength": 128})),
        own("backend", json!({"enum": backends, "default": crate::DEFAULT_BACKEND})),
        own("source_hostname", json!({"type": "string", "default": "localhost"})),
        own("include", paths.clone()),
        own("exclude", paths),
        own("snapshot", json!({"enum": sources})),
        own(
            "volumes",
            json!({"type": "array", "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["name", "mount_point"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[^/\\s]+/[^/\\s]+$", "description": "the logical volume, vg/lv"},
                    "mount_point": {"type": "string", "pattern": "^/", "description": "where it is mounted on the source host"},
                    "mount_options": {"type": "string", "pattern": mount_options, "description": "mount options of its snapshot: only options that restrict the mount (ro, noatime, nouuid, ...)"},
                },
            }}),
        ),
        own("pre", hook_schema(false)),
        own("after_snapshot", hook_schema(false)),
        own("post", hook_schema(true)),
        own("dumps", dump_schema()),
    ]);
    for def in settings::registry().values().filter(|d| d.scope == Scope::Job) {
        properties.insert(def.name.to_string(), setting_schema(def));
    }
    // A job sets only the settings of core, of its backend and of its snapshot source.
    let mut rules = Vec::new();
    for backend in &backends {
        // A backend named `OWNER-NAME` may set OWNER's settings (zfs-send zfs's).
        let family = |owner: &str| backend.strip_prefix(owner).is_some_and(|rest| rest.starts_with('-'));
        let others = owned_by(|owner| owner != *backend && backends.contains(&owner) && !family(owner));
        let mut condition = json!({"properties": {"backend": {"const": backend}}, "required": ["backend"]});
        if *backend == crate::DEFAULT_BACKEND {
            condition = json!({"anyOf": [condition, {"not": {"required": ["backend"]}}]});
        }
        rules.push(json!({"if": condition, "then": {"properties": others}}));
    }
    for source in &sources {
        let mine = owned_by(|owner| owner == *source);
        rules.push(json!({
            "if": {"not": {"properties": {"snapshot": {"const": source}}, "required": ["snapshot"]}},
            "then": {"properties": mine},
        }));
    }
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "ari job file",
        "description": "A job of ari (jobs_dir/NAME.yaml): its own keys and the settings of core, its backend and its snapshot source. See ari-job(5).",
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
        "allOf": rules,
    })
}

/// `{"NAME": false, ...}` for the job-scope settings whose owner `matches`: keys a job may not set.
fn owned_by(matches: impl Fn(&str) -> bool) -> Value {
    settings::registry()
        .values()
        .filter(|d| d.scope == Scope::Job && matches(d.owner))
        .map(|d| (d.name.to_string(), Value::Bool(false)))
        .collect::<Map<_, _>>()
        .into()
}

fn config_schema() -> Value {
    let properties: Map<String, Value> =
        settings::registry().values().map(|def| (def.name.to_string(), setting_schema(def))).collect();
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "ari global config",
        "description": "The global config of ari (/etc/ari-backup/ari-backup.conf.yaml): any setting, of any plugin. See ari-settings(5).",
        "type": "object",
        "additionalProperties": false,
        "properties": properties,
    })
}

/// The schema as the file `dist/schema/` holds.
pub fn rendered(which: Which) -> String {
    serde_json::to_string_pretty(&schema(which)).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// Validates each `(name, instance)` against the schema of `which` with python3-jsonschema
    /// (checking the schema itself first); the errors of each, by name.
    fn validate(which: Which, instances: &[(String, Value)]) -> Vec<(String, Vec<String>)> {
        const SCRIPT: &str = "import json, sys, jsonschema\n\
            data = json.load(sys.stdin)\n\
            jsonschema.Draft7Validator.check_schema(data['schema'])\n\
            validator = jsonschema.Draft7Validator(data['schema'])\n\
            for name, instance in data['instances']:\n\
            \x20   print(json.dumps([name, [e.message for e in validator.iter_errors(instance)]]))\n";
        let input = json!({"schema": schema(which), "instances": instances}).to_string();
        let out = crate::manual::run_with_stdin(
            "/usr/bin/python3",
            &["-c", SCRIPT],
            input.as_bytes(),
            "python3-jsonschema",
        );
        assert!(
            out.status.success(),
            "python3's jsonschema failed (apt-get install -y python3-jsonschema):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).expect("a result line"))
            .collect()
    }

    fn yaml_to_json(text: &str) -> Option<Value> {
        serde_yaml::from_str::<Value>(text).ok()
    }

    /// The YAML code blocks of a Markdown file that carry a schema modeline: (which, text).
    fn marked_blocks(markdown: &str) -> Vec<(Which, String)> {
        let mut blocks = Vec::new();
        let mut lines = markdown.lines();
        while let Some(line) = lines.next() {
            if line.trim_start() != "```yaml" {
                continue;
            }
            let block: Vec<&str> = lines.by_ref().take_while(|l| l.trim_start() != "```").collect();
            let text = block.join("\n");
            if text.contains(&format!("$schema={INSTALLED_DIR}/{}", file_name(Which::Job))) {
                blocks.push((Which::Job, text));
            } else if text.contains(&format!("$schema={INSTALLED_DIR}/{}", file_name(Which::Config))) {
                blocks.push((Which::Config, text));
            }
        }
        blocks
    }

    #[test]
    fn the_shipped_schemas_are_up_to_date() {
        for which in [Which::Job, Which::Config] {
            let path = root().join("dist/schema").join(file_name(which));
            let expected = rendered(which);
            if std::env::var_os("ARI_UPDATE_DOCS").is_some() {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &expected).unwrap();
            }
            let actual = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                actual == expected,
                "{} is out of date: run `ARI_UPDATE_DOCS=1 cargo test -p ari-cli schema`",
                path.display()
            );
        }
    }

    #[test]
    fn every_marked_job_and_config_of_the_docs_validates() {
        let mut found = [Vec::new(), Vec::new()];
        for doc in ["README.md", "docs/jobs.md", "docs/command-backend.md", "docs/writing-a-backend.md"] {
            let text = std::fs::read_to_string(root().join(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"));
            for (i, (which, block)) in marked_blocks(&text).into_iter().enumerate() {
                let value = yaml_to_json(&block).unwrap_or_else(|| panic!("{doc}: block {i} is no YAML"));
                found[which as usize].push((format!("{doc} block {i}"), value));
            }
        }
        assert!(found[0].len() >= 3, "the docs' job files carry the schema line: {}", found[0].len());
        for (which, instances) in [(Which::Job, &found[0]), (Which::Config, &found[1])] {
            for (name, errors) in validate(which, instances) {
                assert!(errors.is_empty(), "{name} does not validate: {errors:?}");
            }
        }
    }

    #[test]
    fn a_sample_of_the_bad_inputs_is_rejected_by_the_schema() {
        let corpus = std::fs::read_to_string(root().join("tests/corpus/bad-input.txt")).expect("the corpus");
        let mut sample = Vec::new();
        for entry in corpus.split("\n### ").skip(1) {
            let mut lines = entry.lines();
            let name = lines.next().unwrap_or_default().to_string();
            let expect = lines.next().unwrap_or_default();
            // Errors a schema can say: unknown keys, wrong types, misspelled choices, settings
            // of another backend.
            let schema_kind = ["unknown key", "invalid type", "expected one of", "is a setting of"]
                .iter()
                .any(|words| expect.contains(words));
            if !expect.starts_with("expect:") || !schema_kind || name.contains("config") {
                continue;
            }
            let text: Vec<&str> = lines.collect();
            if let Some(value) = yaml_to_json(&text.join("\n")).filter(Value::is_object) {
                sample.push((name, value));
            }
        }
        assert!(sample.len() >= 10, "a sample of the corpus: {}", sample.len());
        for (name, errors) in validate(Which::Job, &sample) {
            assert!(!errors.is_empty(), "the schema accepts the bad input `{name}`");
        }
        let good = vec![
            ("minimal".to_string(), json!({"include": ["/etc"]})),
            (
                "zfs".to_string(),
                json!({"backend": "zfs", "rsync_dst": "h:/x", "dataset_name": "p/x", "zfs_hostname": "h", "snapshot": "lvm", "volumes": [{"name": "vg0/root", "mount_point": "/"}]}),
            ),
        ];
        for (name, errors) in validate(Which::Job, &good) {
            assert!(errors.is_empty(), "{name} is refused: {errors:?}");
        }
    }
}
