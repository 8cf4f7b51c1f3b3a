//! Reading a job file into the [`Job`] model: a strict pass of a serde `DeserializeSeed` that
//! checks every key as it reads it (by its kind, against the registered settings and plugins),
//! so that every error carries the position serde_yaml attaches; then what spans several keys.
//!
//! serde cannot go on inside a value once it has failed there, so a pass that fails in the value
//! of a top-level key is made again with that key skipped ([`every_key`]), until a pass gets
//! through: one run reports the first error of every key, in file order, and what spans several
//! keys adds its own, about the keys that were read.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::{
    check_label, default_label, foreign_settings, key_error, Checked, HookCommand, Job, Volume, JOB_KEYS,
};
use crate::contract::error::{did_you_mean, ConfigError};
use crate::contract::kinds;
use crate::contract::plugin;
use crate::contract::settings::{self, Layer, Source, ValueSeed};
use crate::contract::step::When;

use super::dump::Dump;
use super::program::ProgramSpec;

impl Job {
    /// Reads and parses a job file.
    #[doc(hidden)]
    pub fn load(path: &Path) -> Result<Job, ConfigError> {
        let text = crate::contract::yaml::read_file(path).map_err(|err| match err.kind() {
            std::io::ErrorKind::FileTooLarge => ConfigError::in_file(path, err.to_string()),
            _ => ConfigError::in_file(path, format!("cannot read the job file: {err}")),
        })?;
        Job::parse(path, &text)
    }

    /// Parses the text of a job file; the error names every error of the file, in file order.
    #[doc(hidden)]
    pub fn parse(path: &Path, text: &str) -> Result<Job, ConfigError> {
        let text = crate::contract::yaml::document(path, text)?;
        let (shape, mut errors) = every_key(path, text, |pass| {
            JobSeed { path, pass }.deserialize(serde_yaml::Deserializer::from_str(text))
        })?;
        let raw = match shape {
            Shape::Job(raw) => raw,
            // Only a mapping has keys that can fail, so these come alone.
            Shape::Empty => {
                return Err(ConfigError::in_file(
                    path,
                    "the job file is empty; a job needs at least `include:` (see docs/jobs.md)",
                ))
            }
            Shape::Other => {
                return Err(ConfigError::in_file(
                    path,
                    "a job file must be a mapping of keys (label, backend, include, ...)",
                ))
            }
        };
        errors.extend(check_combinations(path, text, &raw));
        errors.sort_by_key(|error| error.position.unwrap_or((usize::MAX, usize::MAX)));
        ConfigError::any(errors)?;
        let label = match raw.label {
            Some(label) => label,
            None => {
                let label = default_label(path);
                check_label(&label).map_err(|err| {
                    ConfigError::in_file(
                        path,
                        format!("label: the file name gives the label `{label}`, which {err}; set `label:` in the file"),
                    )
                })?;
                label
            }
        };
        let document: Arc<str> = Arc::from(text);
        Ok(Job {
            path: path.to_path_buf(),
            label,
            backend: raw.backend,
            source_hostname: raw.source_hostname.unwrap_or_else(|| "localhost".to_string()),
            include: raw.include,
            exclude: raw.exclude,
            snapshot: raw.snapshot,
            volumes: raw.volumes,
            pre: raw.pre,
            after_snapshot: raw.after_snapshot,
            post: raw.post,
            dumps: raw.dumps,
            settings: raw.settings.with_document(Arc::clone(&document)),
            document,
            keys: raw.keys,
        })
    }
}

/// What a job file holds: a job, nothing, or something else than a mapping.
enum Shape {
    Job(Box<RawJob>),
    Empty,
    Other,
}

/// The most errors a file reports: each costs a pass over the file.
pub(crate) const MAX_ERRORS: usize = 20;

/// A pass over a document: which top-level keys it skips (by their place in the file, as a key
/// may appear twice), and which key's value it is reading, so that a failed pass says which.
#[derive(Default)]
pub(crate) struct Pass {
    skip: BTreeSet<usize>,
    /// The place of the next top-level key.
    next: Cell<usize>,
    reading: Cell<Option<usize>>,
}

impl Pass {
    /// For the top-level key just read from `map`: skips its value, and says so, when an earlier
    /// pass failed in it; otherwise notes that its value is being read, until [`Pass::done`].
    pub(crate) fn skipped<'de, A: MapAccess<'de>>(&self, map: &mut A) -> Result<bool, A::Error> {
        let index = self.next.replace(self.next.get() + 1);
        if self.skip.contains(&index) {
            map.next_value::<de::IgnoredAny>()?;
            return Ok(true);
        }
        self.reading.set(Some(index));
        Ok(false)
    }

    /// The value of the key being read was read without error.
    pub(crate) fn done(&self) {
        self.reading.set(None);
    }
}

/// Runs `run` over the document `text` of `path` until a pass gets through: a pass that fails in
/// the value of a top-level key is run again with that key skipped. The value of the pass that
/// got through, with the error of each key skipped on the way (in file order). The errors found,
/// as one, when it stops first: after [`MAX_ERRORS`] errors, or at an error that is not in a
/// key's value. A document that YAML cannot read (a syntax error, more than one document)
/// reports its first error alone.
pub(crate) fn every_key<T>(
    path: &Path,
    text: &str,
    run: impl Fn(&Pass) -> Result<T, serde_yaml::Error>,
) -> Result<(T, Vec<ConfigError>), ConfigError> {
    let mut pass = Pass::default();
    let mut errors = Vec::new();
    loop {
        pass.next.set(0);
        pass.reading.set(None);
        let err = match run(&pass) {
            Ok(value) => return Ok((value, errors)),
            Err(err) => err,
        };
        let error = ConfigError::from_yaml(path, &err);
        let Some(index) = pass.reading.get() else {
            return Err(stopped(errors, error));
        };
        // In a document YAML cannot read, every pass would fail again at the fault, whichever
        // value reaches it: such a file reports its first error only, as ari always did.
        if errors.is_empty() && de::IgnoredAny::deserialize(serde_yaml::Deserializer::from_str(text)).is_err()
        {
            return Err(error);
        }
        errors.push(error);
        pass.skip.insert(index);
        if errors.len() == MAX_ERRORS {
            let last = ConfigError::in_file(
                path,
                format!(
                    "stopped after {MAX_ERRORS} errors: fix these, and the next run reports what is left"
                ),
            );
            return Err(stopped(errors, last));
        }
    }
}

/// The errors found before `last`, then `last`, as one.
fn stopped(errors: Vec<ConfigError>, last: ConfigError) -> ConfigError {
    let mut errors = errors.into_iter();
    match errors.next() {
        Some(first) => ConfigError::together(first, errors.chain([last])),
        None => last,
    }
}

/// Checks what depends on several keys (a setting's owner against the job's backend and snapshot
/// source, when the file names both), after the keys were read; each error points at its key's
/// line. Keys whose value failed were not read, and are left out: checking them again, or
/// checking others against them, would report one error twice.
fn check_combinations(path: &Path, text: &str, raw: &RawJob) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let at = |key: &str, message: String| key_error(path, text, key, message);
    if raw.snapshot.is_none() && raw.failed.iter().any(|k| k == "snapshot") {
        return errors;
    }
    if raw.snapshot.is_none() {
        if raw.keys.iter().any(|k| k == "volumes") {
            errors.push(at("volumes", "only a job with `snapshot:` has volumes".into()));
        }
        if raw.keys.iter().any(|k| k == "after_snapshot") {
            errors.push(at(
                "after_snapshot",
                "only a job with `snapshot:` has after_snapshot commands (use `pre` instead)".into(),
            ));
        }
    }
    if let Err((i, why)) = super::dump::check_names(&raw.dumps) {
        errors.push(at(&format!("dumps[{i}].name"), why));
    }
    // Without `backend:`, the binary's default backend decides, which only planning knows.
    if let Some(backend) = raw.backend.as_deref() {
        for (key, message) in foreign_settings(&raw.keys, backend, raw.snapshot.as_deref()) {
            errors.push(at(key, message));
        }
    }
    errors
}

/// What the strict pass reads, before defaults.
#[derive(Default)]
struct RawJob {
    /// Every top-level key that was read, in file order.
    keys: Vec<String>,
    /// The top-level keys skipped because an earlier pass failed in their value.
    failed: Vec<String>,
    label: Option<String>,
    backend: Option<String>,
    source_hostname: Option<String>,
    include: Vec<String>,
    exclude: Vec<String>,
    snapshot: Option<String>,
    volumes: Vec<Volume>,
    pre: Vec<HookCommand>,
    after_snapshot: Vec<HookCommand>,
    post: Vec<HookCommand>,
    dumps: Vec<Dump>,
    settings: Layer,
}

impl Default for Layer {
    fn default() -> Layer {
        Layer::new(Source::Default)
    }
}

struct JobSeed<'a> {
    path: &'a Path,
    pass: &'a Pass,
}

impl<'de> DeserializeSeed<'de> for JobSeed<'_> {
    type Value = Shape;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Shape, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for JobSeed<'_> {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a mapping of job keys and settings")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Empty)
    }
    fn visit_none<E: de::Error>(self) -> Result<Shape, E> {
        Ok(Shape::Empty)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Shape::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut job =
            RawJob { settings: Layer::new(Source::Job(self.path.to_path_buf())), ..RawJob::default() };
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            // A key skipped still counts as seen, so that a second one is still an error.
            let first = seen.insert(key.clone());
            if self.pass.skipped(&mut map)? {
                job.failed.push(key);
                continue;
            }
            if !first {
                return fail_at_value(&mut map, format!("`{key}` appears twice"));
            }
            job.keys.push(key.clone());
            match key.as_str() {
                "label" => job.label = Some(map.next_value_seed(Checked(&kinds::LABEL))?),
                "backend" => job.backend = Some(map.next_value_seed(PluginName::Backend)?),
                "source_hostname" => job.source_hostname = Some(map.next_value_seed(Checked(&kinds::HOST))?),
                "include" => job.include = map.next_value_seed(Paths)?,
                "exclude" => job.exclude = map.next_value_seed(Paths)?,
                "snapshot" => job.snapshot = Some(map.next_value_seed(PluginName::Source)?),
                "volumes" => job.volumes = map.next_value()?,
                "pre" => job.pre = hooks(map.next_value::<Vec<RawHook>>()?),
                "after_snapshot" => job.after_snapshot = hooks(map.next_value::<Vec<RawHook>>()?),
                "post" => job.post = posts(map.next_value::<Vec<RawPost>>()?),
                "dumps" => job.dumps = map.next_value::<Vec<Dump>>()?,
                name => {
                    let def = match settings::registry().get(name) {
                        Some(def) => *def,
                        None => {
                            let known = JOB_KEYS.iter().copied().chain(settings::registry().keys().copied());
                            return fail_at_value(
                                &mut map,
                                format!("unknown key `{name}`{}", did_you_mean(name, known)),
                            );
                        }
                    };
                    if def.scope == settings::Scope::Process {
                        return fail_at_value(
                            &mut map,
                            format!(
                                "`{name}` is a setting of the whole ari process, which every command must see alike: set it in the global config or on the command line, not in a job file"
                            ),
                        );
                    }
                    let value = map.next_value_seed(ValueSeed(def))?;
                    job.settings.values.insert(def.name, value);
                }
            }
            self.pass.done();
        }
        Ok(Shape::Job(Box::new(job)))
    }
}

/// Fails on whatever value it meets, so that the error carries that value's position.
struct Reject(String);

/// Fails with `message` at the position of the map's next value, so the error names its line.
pub(crate) fn fail_at_value<'de, A: MapAccess<'de>, T>(map: &mut A, message: String) -> Result<T, A::Error> {
    match map.next_value_seed(Reject(message))? {}
}

impl<'de> DeserializeSeed<'de> for Reject {
    type Value = std::convert::Infallible;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reject {
    type Value = std::convert::Infallible;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "nothing")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(E::custom(self.0))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(E::custom(self.0))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(E::custom(self.0))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(E::custom(self.0))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(E::custom(self.0))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Err(E::custom(self.0))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(self.0))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom(self.0))
    }
}

/// The name of a registered plugin.
enum PluginName {
    Backend,
    Source,
}

impl<'de> DeserializeSeed<'de> for PluginName {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for PluginName {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginName::Backend => write!(f, "the name of a backend"),
            PluginName::Source => write!(f, "the name of a snapshot source"),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        let (what, mut known): (&str, Vec<&str>) = match self {
            PluginName::Backend => ("backend", plugin::backends().map(|b| b.name()).collect()),
            PluginName::Source => ("snapshot source", plugin::sources().map(|s| s.name()).collect()),
        };
        known.sort_unstable();
        if known.contains(&v) {
            Ok(v.to_string())
        } else {
            Err(E::custom(format!(
                "unknown {what} `{v}`{} (known: {})",
                did_you_mean(v, known.iter().copied()),
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )))
        }
    }
}

/// A list of paths or rdiff-backup patterns.
struct Paths;

impl<'de> DeserializeSeed<'de> for Paths {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<String>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Paths {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of paths or patterns")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut paths = Vec::new();
        // What a path or pattern may be is the backend's to say (rdiff-backup globs, rsync
        // patterns), in its check; here only what no command line can carry is refused.
        while let Some(path) = seq.next_element_seed(Checked(&kinds::ENTRY))? {
            paths.push(path);
        }
        Ok(paths)
    }
}

/// `pre` and `after_snapshot` entries: `when` is for post commands only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a command: {command: ..., host: ...}")]
struct RawHook {
    command: ProgramSpec,
    #[serde(default)]
    host: Option<HostName>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a command: {command: ..., host: ..., when: ...}")]
struct RawPost {
    command: ProgramSpec,
    #[serde(default)]
    host: Option<HostName>,
    #[serde(default)]
    when: When,
}

fn hooks(raw: Vec<RawHook>) -> Vec<HookCommand> {
    raw.into_iter().map(|h| hook(h.command, h.host, When::Always)).collect()
}

fn posts(raw: Vec<RawPost>) -> Vec<HookCommand> {
    raw.into_iter().map(|h| hook(h.command, h.host, h.when)).collect()
}

fn hook(command: ProgramSpec, host: Option<HostName>, when: When) -> HookCommand {
    HookCommand {
        program: command.0,
        host: host.map(|h| h.0).unwrap_or_else(|| "localhost".to_string()),
        when,
    }
}

struct HostName(String);

impl<'de> Deserialize<'de> for HostName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HostName, D::Error> {
        Checked(&kinds::HOST).deserialize(deserializer).map(HostName)
    }
}
