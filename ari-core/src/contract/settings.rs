//! The settings registry: every knob of ari, registered by the crate that owns it, and the
//! layering of values (default < global config < job file < command line).
//!
//! A crate declares a setting as a typed static ([`Setting`]) and registers it with
//! [`register_settings!`](crate::register_settings); the registry is collected at link time by
//! `inventory`. Values are checked against the setting's [`SettingKind`] when they are parsed, so
//! reading a resolved value ([`Settings::get`]) cannot fail.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};

use crate::contract::error::ConfigError;
use crate::contract::kinds::{check_no_nul, ListKind, TextKind};

/// The type of a setting's value, which decides how YAML and command-line values are parsed.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum SettingKind {
    /// `true` or `false`.
    Bool,
    /// A whole number within the bounds.
    Integer {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// Text. YAML numbers are accepted and kept as written (`snapshot_size: 10`).
    String,
    /// A list of strings (`ssh_options: [-F, /etc/ari-backup/ssh_config]`).
    List,
    /// Command-line words: a string split as a shell would (`"--archive --acls"`), or a list.
    Words,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// A positive length of time, written as a person would: `90s`, `30m`, `2h`, `1h 30m`.
    Duration,
    /// A [`SettingKind::Duration`] of at most this many seconds.
    DurationAtMost(u64),
    /// Text of a kind that says what it is (a host, a path, a time spec) and checks it.
    Text(&'static TextKind),
    /// A list of strings checked as a whole (ssh options).
    Checked(&'static ListKind),
    /// Command-line words, as [`SettingKind::Words`] reads them, checked as a whole by their
    /// kind (rdiff-backup's options).
    CheckedWords(&'static ListKind),
    /// A count for each of some of these names (`zfs_keep: {daily: 14, weekly: 8}`); on the
    /// command line `daily=14,weekly=8`. Each count is a whole number from 1 to
    /// [`Counts::MAX`]. An empty list of names is the base kind of [`Counts`].
    Counts(&'static [&'static str]),
}

impl SettingKind {
    /// How the kind reads in help and error messages.
    #[doc(hidden)]
    pub fn describe(&self) -> String {
        match self {
            SettingKind::Bool => "boolean".into(),
            SettingKind::Integer { .. } => "integer".into(),
            SettingKind::String => "string".into(),
            SettingKind::List => "list".into(),
            SettingKind::Words => "words".into(),
            SettingKind::Choice(choices) => choices.join("|"),
            SettingKind::Duration => "duration".into(),
            SettingKind::DurationAtMost(max) => format!("duration, at most {}", seconds_shown(*max)),
            SettingKind::Text(kind) => kind.name.into(),
            SettingKind::Checked(kind) | SettingKind::CheckedWords(kind) => kind.name.into(),
            SettingKind::Counts(_) => "counts".into(),
        }
    }

    /// What values the kind accepts, for the settings reference.
    #[doc(hidden)]
    pub fn accepts(&self) -> String {
        match self {
            SettingKind::Bool => "`true` or `false`".into(),
            SettingKind::Integer { min, max } => format!("a whole number from {min} to {max}"),
            SettingKind::String => "any text".into(),
            SettingKind::List => "a list of strings".into(),
            SettingKind::Words => "a string split into words as a shell would, or a list".into(),
            SettingKind::Choice(choices) => format!("one of {}", choices.join(", ")),
            SettingKind::Duration | SettingKind::DurationAtMost(_) => {
                "a positive duration like `90s`, `30m`, `2h`, `1h 30m`".into()
            }
            SettingKind::Text(kind) => kind.accepts.into(),
            SettingKind::Checked(kind) => kind.accepts.into(),
            SettingKind::CheckedWords(kind) => {
                format!("{}; a string split into words as a shell would, or a list", kind.accepts)
            }
            SettingKind::Counts(_) => format!(
                "a count from 1 to {} for each of some names (the setting's help says which): a map like `{{daily: 14, weekly: 8}}`, or `daily=14,weekly=8`",
                Counts::MAX
            ),
        }
    }
}

/// The description of one setting, as registered.
#[derive(Debug)]
#[doc(hidden)]
pub struct SettingDef {
    /// snake_case name, as in the config and job files.
    pub name: &'static str,
    /// The plugin that owns it (`core`, `rdiff`, `lvm`, `zfs`, ...).
    pub owner: &'static str,
    /// The type of its value.
    pub kind: SettingKind,
    /// The default, written as on the command line; `None` when the setting has no default.
    pub default: Option<&'static str>,
    /// One-line help.
    pub help: &'static str,
    /// Whether reading the setting gives an `Option` (it may be unset).
    pub optional: bool,
    /// Where it may be set: for every job, or once for the whole `ari` process.
    pub scope: Scope,
}

/// Where a setting may be set.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scope {
    /// A job's: at every level, the job file included (ssh, timeouts, backend settings).
    Job,
    /// The process's: it takes effect once per `ari` process (where state lives, logging,
    /// run-all's limits), so it may be set in the global config and on the command line, and in
    /// a job file it is an error.
    Process,
}

#[doc(hidden)]
impl SettingDef {
    /// The default as a value, if the setting has one.
    pub fn default_value(&self) -> Option<Value> {
        let text = self.default?;
        Some(
            parse_text(self, text)
                .unwrap_or_else(|err| panic!("default of setting {} does not parse: {err}", self.name)),
        )
    }

    /// A value of this setting as ari shows it to people (`ari settings`): a URL, which may hold
    /// a secret (a monitoring service's check id, a password), by its scheme and host only.
    pub fn shown(&self, value: &Value) -> String {
        match (self.kind, value) {
            (SettingKind::Text(kind), Value::String(url))
                if std::ptr::eq(kind, &crate::contract::kinds::URL) =>
            {
                crate::contract::kinds::shown_url(url)
            }
            _ => value.to_string(),
        }
    }
}

/// A Rust type that a setting's value converts to.
pub trait SettingType: Sized {
    /// The kind of value the setting holds.
    #[doc(hidden)]
    const KIND: SettingKind;
    /// Whether the setting may be unset (`Option<T>`).
    #[doc(hidden)]
    const OPTIONAL: bool = false;
    /// Converts a value already checked against [`Self::KIND`].
    #[doc(hidden)]
    fn from_value(value: Option<&Value>) -> Option<Self>;
}

impl SettingType for bool {
    const KIND: SettingKind = SettingKind::Bool;
    fn from_value(value: Option<&Value>) -> Option<Self> {
        match value? {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

macro_rules! integer_setting_type {
    ($($t:ty),*) => {$(
        impl SettingType for $t {
            const KIND: SettingKind = SettingKind::Integer {
                min: <$t>::MIN as i64,
                max: if (<$t>::MAX as u64) > i64::MAX as u64 { i64::MAX } else { <$t>::MAX as i64 },
            };
            fn from_value(value: Option<&Value>) -> Option<Self> {
                match value? {
                    Value::Integer(i) => <$t>::try_from(*i).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
integer_setting_type!(u16, u32, u64, i64);

impl SettingType for String {
    const KIND: SettingKind = SettingKind::String;
    fn from_value(value: Option<&Value>) -> Option<Self> {
        match value? {
            Value::String(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl SettingType for Vec<String> {
    const KIND: SettingKind = SettingKind::List;
    fn from_value(value: Option<&Value>) -> Option<Self> {
        match value? {
            Value::List(l) => Some(l.clone()),
            _ => None,
        }
    }
}

/// A [`SettingKind::Counts`] value: each name set, in the kind's order of names, with its count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts(pub Vec<(String, u32)>);

impl Counts {
    /// The largest count.
    pub const MAX: u32 = 1_000_000;
}

impl SettingType for Counts {
    const KIND: SettingKind = SettingKind::Counts(&[]);
    fn from_value(value: Option<&Value>) -> Option<Self> {
        match value? {
            Value::List(items) => items
                .iter()
                .map(|item| {
                    let (name, count) = item.split_once('=')?;
                    Some((name.to_string(), count.parse().ok()?))
                })
                .collect::<Option<Vec<_>>>()
                .map(Counts),
            _ => None,
        }
    }
}

impl SettingType for std::time::Duration {
    const KIND: SettingKind = SettingKind::Duration;
    fn from_value(value: Option<&Value>) -> Option<Self> {
        match value? {
            Value::String(text) => parse_duration(text).ok(),
            _ => None,
        }
    }
}

impl SettingType for crate::contract::kinds::SampleSize {
    const KIND: SettingKind = SettingKind::Text(&crate::contract::kinds::SAMPLE);
    fn from_value(value: Option<&Value>) -> Option<Self> {
        match value? {
            Value::String(text) => crate::contract::kinds::sample(text).ok(),
            _ => None,
        }
    }
}

impl SettingType for crate::contract::kinds::FreeSpace {
    const KIND: SettingKind = SettingKind::Text(&crate::contract::kinds::FREE_SPACE);
    fn from_value(value: Option<&Value>) -> Option<Self> {
        match value? {
            Value::String(text) => crate::contract::kinds::free_space(text).ok(),
            _ => None,
        }
    }
}

impl SettingType for crate::contract::kinds::ByteCount {
    const KIND: SettingKind = SettingKind::Text(&crate::contract::kinds::BYTES);
    fn from_value(value: Option<&Value>) -> Option<Self> {
        match value? {
            Value::String(text) => {
                crate::contract::kinds::bytes(text).ok().map(crate::contract::kinds::ByteCount)
            }
            _ => None,
        }
    }
}

/// Parses a positive duration (`90s`, `2h`, `1h 30m`, `7d`, or ISO 8601 `PT2H`); a day is 24
/// hours, and weeks (`2w`) are seven of them; months and years, whose length varies, are refused.
pub(crate) fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let refused =
        || format!("`{}` is not a duration like 90s, 30m, 2h or 7d", crate::contract::kinds::shown(text));
    let parsed: jiff::SignedDuration = match text.trim().parse() {
        Ok(duration) => duration,
        Err(_) => {
            let span: jiff::Span = text.trim().parse().map_err(|_| refused())?;
            if span.get_months() != 0 || span.get_years() != 0 {
                return Err(refused());
            }
            let days = jiff::SpanRelativeTo::days_are_24_hours();
            span.to_duration(days).map_err(|_| refused())?
        }
    };
    std::time::Duration::try_from(parsed)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("`{}` is not a positive duration", crate::contract::kinds::shown(text)))
}

impl<T: SettingType> SettingType for Option<T> {
    const KIND: SettingKind = T::KIND;
    const OPTIONAL: bool = true;
    fn from_value(value: Option<&Value>) -> Option<Self> {
        Some(T::from_value(value))
    }
}

/// A typed setting: declare one as a `pub static` and register it with
/// [`register_settings!`](crate::register_settings).
///
/// ```
/// use ari_core::settings::Setting;
/// pub static RSYNC_PATH: Setting<String> =
///     Setting::new("rsync_path", "zfs", Some("/usr/bin/rsync"), "rsync binary");
/// ari_core::register_settings!(RSYNC_PATH);
/// ```
pub struct Setting<T> {
    /// What the registry knows of this setting (`register_settings!` names it).
    #[doc(hidden)]
    pub def: SettingDef,
    marker: PhantomData<fn() -> T>,
}

impl<T: SettingType> Setting<T> {
    /// A setting of type `T`; `default` is written as on the command line.
    pub const fn new(
        name: &'static str,
        owner: &'static str,
        default: Option<&'static str>,
        help: &'static str,
    ) -> Setting<T> {
        Setting::with_kind(name, owner, T::KIND, default, help)
    }

    /// A setting whose kind refines `T`'s (a [`SettingKind::Choice`], [`SettingKind::Words`], a
    /// [`SettingKind::Text`] kind, an integer range). A kind that `T` cannot hold does not
    /// compile:
    ///
    /// ```compile_fail
    /// use ari_core::settings::{Setting, SettingKind};
    /// // 70000 does not fit a u16.
    /// static PORT: Setting<u16> =
    ///     Setting::with_kind("port", "x", SettingKind::Integer { min: 1, max: 70000 }, Some("22"), "a port");
    /// ```
    ///
    /// nor does a setting that is neither optional nor defaulted:
    ///
    /// ```compile_fail
    /// use ari_core::settings::{Setting, SettingKind};
    /// static USER: Setting<String> = Setting::with_kind("user", "x", SettingKind::String, None, "a user");
    /// ```
    pub const fn with_kind(
        name: &'static str,
        owner: &'static str,
        kind: SettingKind,
        default: Option<&'static str>,
        help: &'static str,
    ) -> Setting<T> {
        // Checked when the static is compiled: a kind that `T` cannot hold, or a setting that
        // is neither optional nor defaulted, is a build error, never a panic at run time.
        assert!(fits(kind, T::KIND), "a setting's kind must be one its Rust type can hold");
        assert!(T::OPTIONAL || default.is_some(), "a setting that is not an Option needs a default");
        Setting {
            def: SettingDef { name, owner, kind, default, help, optional: T::OPTIONAL, scope: Scope::Job },
            marker: PhantomData,
        }
    }

    /// The same setting, of the process rather than of a job: set once for the whole `ari`
    /// process, in the global config or on the command line, never in a job file.
    pub(crate) const fn for_the_process(mut self) -> Setting<T> {
        self.def.scope = Scope::Process;
        self
    }
}

/// Whether values of `kind` convert to a type whose own kind is `base`: the same value shape,
/// and integers within the type's range.
const fn fits(kind: SettingKind, base: SettingKind) -> bool {
    match (kind, base) {
        (SettingKind::Integer { min, max }, SettingKind::Integer { min: lowest, max: highest }) => {
            min >= lowest && max <= highest && min <= max
        }
        (SettingKind::Bool, SettingKind::Bool)
        | (SettingKind::Counts(_), SettingKind::Counts(_))
        | (SettingKind::Duration | SettingKind::DurationAtMost(_), SettingKind::Duration) => true,
        (
            SettingKind::String | SettingKind::Choice(_) | SettingKind::Text(_),
            SettingKind::String | SettingKind::Choice(_) | SettingKind::Text(_),
        ) => true,
        (
            SettingKind::List | SettingKind::Words | SettingKind::Checked(_) | SettingKind::CheckedWords(_),
            SettingKind::List | SettingKind::Words | SettingKind::Checked(_) | SettingKind::CheckedWords(_),
        ) => true,
        _ => false,
    }
}

/// One registered setting, as collected by `inventory`.
#[doc(hidden)]
pub struct Registered(pub &'static SettingDef);

inventory::collect!(Registered);

/// Registers settings declared as [`Setting`] statics.
#[macro_export]
macro_rules! register_settings {
    ($($setting:path),+ $(,)?) => {
        $( $crate::inventory::submit! { $crate::settings::Registered(&$setting.def) } )+
    };
}

/// Every registered setting, sorted by name.
#[doc(hidden)]
pub fn registry() -> &'static BTreeMap<&'static str, &'static SettingDef> {
    static REGISTRY: OnceLock<BTreeMap<&'static str, &'static SettingDef>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut map = BTreeMap::new();
        for Registered(def) in inventory::iter::<Registered> {
            if let Some(previous) = map.insert(def.name, *def) {
                panic!("setting {} is registered twice (by {} and {})", def.name, previous.owner, def.owner);
            }
        }
        map
    })
}

/// Every registered default, parsed once.
fn defaults() -> &'static BTreeMap<&'static str, Value> {
    static DEFAULTS: OnceLock<BTreeMap<&'static str, Value>> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        registry().iter().filter_map(|(name, def)| Some((*name, def.default_value()?))).collect()
    })
}

/// Looks a setting up by name, snake_case or kebab-case.
#[doc(hidden)]
pub fn find(name: &str) -> Option<&'static SettingDef> {
    registry().get(name.replace('-', "_").as_str()).copied()
}

/// A setting's value.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// A whole number.
    Integer(i64),
    /// Text, or one of a choice.
    String(String),
    /// A list of strings, or words.
    List(Vec<String>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::String(s) => write!(f, "{s}"),
            Value::List(l) => write!(f, "[{}]", l.join(", ")),
        }
    }
}

impl Value {
    /// The value as JSON, for machine-readable output.
    #[doc(hidden)]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Bool(b) => (*b).into(),
            Value::Integer(i) => (*i).into(),
            Value::String(s) => s.clone().into(),
            Value::List(l) => l.clone().into(),
        }
    }
}

/// Where a value came from.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The registered default.
    Default,
    /// The global config file.
    Config(PathBuf),
    /// A job file.
    Job(PathBuf),
    /// `--set NAME=VALUE` or `--NAME VALUE`.
    CommandLine,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::Config(path) => write!(f, "config {}", path.display()),
            Source::Job(path) => write!(f, "job {}", path.display()),
            Source::CommandLine => write!(f, "command line"),
        }
    }
}

/// The values one source sets, each already checked against its setting's kind.
#[derive(Debug, Clone)]
#[doc(hidden)]
pub struct Layer {
    /// Where these values come from.
    #[doc(hidden)]
    pub source: Source,
    /// Values by setting name.
    #[doc(hidden)]
    pub values: BTreeMap<&'static str, Value>,
    /// The text of the file they were read from, where an error about one of them finds its line.
    document: Option<Arc<str>>,
}

impl Layer {
    /// An empty layer.
    #[doc(hidden)]
    pub fn new(source: Source) -> Layer {
        Layer { source, values: BTreeMap::new(), document: None }
    }

    /// The same layer, read from `text`: errors about its values name their line and column.
    #[doc(hidden)]
    pub fn with_document(mut self, text: Arc<str>) -> Layer {
        self.document = Some(text);
        self
    }

    /// Parses `NAME=VALUE` or a `--NAME VALUE` pair from the command line into this layer; the
    /// error says why, for the caller to put after the option it came from.
    #[doc(hidden)]
    pub fn set_from_text(&mut self, name: &str, text: &str) -> Result<(), String> {
        let def = find(name).ok_or_else(|| {
            format!(
                "unknown setting `{name}`{}",
                crate::contract::error::did_you_mean(name, registry().keys().copied())
            )
        })?;
        let value = parse_text(def, text)?;
        self.values.insert(def.name, value);
        Ok(())
    }
}

/// The effective settings of one job: every registered setting's value and where it came from.
/// A plugin reads them through its context (`JobContext::get`).
#[derive(Debug, Clone)]
#[doc(hidden)]
pub struct Settings {
    values: BTreeMap<&'static str, (Value, Source)>,
    /// The text of each file a value came from, shared with its layer.
    documents: Vec<(Source, Arc<str>)>,
}

impl Settings {
    /// Layers values over the defaults; later layers win.
    #[doc(hidden)]
    pub fn resolve<'a>(layers: impl IntoIterator<Item = &'a Layer>) -> Settings {
        // Only what the layers set is kept per job; defaults are parsed once and shared
        // (a fleet of a thousand jobs holds a thousand of these).
        let mut values = BTreeMap::new();
        let mut documents = Vec::new();
        for layer in layers {
            for (name, value) in &layer.values {
                values.insert(*name, (value.clone(), layer.source.clone()));
            }
            if let Some(text) = &layer.document {
                documents.push((layer.source.clone(), Arc::clone(text)));
            }
        }
        Settings { values, documents }
    }

    /// An error about the value of `key` (a setting's name, or a path into its value such as
    /// `ssh_options[1]`), naming where that value was set: its file, line and column, or the
    /// command line. `None` when the value is the setting's default.
    #[doc(hidden)]
    pub fn error_at(&self, key: &str, message: &str) -> Option<ConfigError> {
        let name = key.split(['.', '[']).next().unwrap_or(key);
        let (_, source) = self.values.get(name)?;
        let file = match source {
            Source::Config(path) | Source::Job(path) => path,
            Source::CommandLine => return Some(ConfigError::command_line(format!("--{key}: {message}"))),
            Source::Default => return None,
        };
        let position = self
            .documents
            .iter()
            .find(|(s, _)| s == source)
            .and_then(|(_, text)| crate::contract::yaml::locate(text, key));
        Some(ConfigError {
            file: Some(file.clone()),
            position,
            message: format!("{key}: {message}"),
            others: Vec::new(),
        })
    }

    /// The value of a typed setting: as set, or its default, even when the setting is not
    /// registered (a plugin that reads its own setting before, or without, linking in).
    ///
    /// A setting's kind fits its type and a non-optional one has a default, both checked when
    /// the static compiles; what is left is a default that its own kind refuses, which the
    /// registry's tests catch for every linked plugin.
    #[doc(hidden)]
    pub fn get<T: SettingType>(&self, setting: &Setting<T>) -> T {
        let own_default;
        let value = match self.value(setting.def.name) {
            Some(value) => Some(value),
            None => {
                own_default = setting.def.default_value();
                own_default.as_ref()
            }
        };
        T::from_value(value).unwrap_or_else(|| {
            panic!(
                "setting {}: its default `{:?}` does not fit its type",
                setting.def.name, setting.def.default
            )
        })
    }

    /// The raw value of a setting, if it has one.
    #[doc(hidden)]
    pub fn value(&self, name: &str) -> Option<&Value> {
        match self.values.get(name) {
            Some((value, _)) => Some(value),
            None => defaults().get(name),
        }
    }

    /// Where a setting's value came from; `None` when it has neither a default nor a value.
    #[doc(hidden)]
    pub fn source(&self, name: &str) -> Option<&Source> {
        match self.values.get(name) {
            Some((_, source)) => Some(source),
            None => defaults().get(name).map(|_| &Source::Default),
        }
    }
}

/// Parses a value written as text (a default, or the command line).
#[doc(hidden)]
pub fn parse_text(def: &SettingDef, text: &str) -> Result<Value, String> {
    match def.kind {
        SettingKind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "off" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("expected true or false, found `{}`", crate::contract::kinds::shown(text))),
        },
        SettingKind::Integer { min, max } => {
            let number: i64 = text.trim().parse().map_err(|_| {
                format!("expected an integer, found `{}`", crate::contract::kinds::shown(text))
            })?;
            check_range(number, min, max)
        }
        SettingKind::Choice(choices) => check_choice(text, choices),
        SettingKind::Duration | SettingKind::DurationAtMost(_) => check_duration(def.kind, text),
        SettingKind::String | SettingKind::Text(_) => check_string(def.kind, text),
        SettingKind::Counts(names) if text.trim_start().starts_with('{') => {
            crate::contract::yaml::value_text(text)?;
            let map: BTreeMap<String, serde_yaml::Value> = serde_yaml::from_str(text)
                .map_err(|err| format!("expected counts like {{daily: 14, weekly: 8}}: {err}"))?;
            check_counts(names, map.into_iter().map(|(name, count)| (name, count_text(count))))
        }
        SettingKind::Counts(names) => {
            let pairs = text
                .split([',', ' '])
                .filter(|item| !item.is_empty())
                .map(|item| match item.split_once('=') {
                    Some((name, count)) => Ok((name.to_string(), count.to_string())),
                    None => Err(format!(
                        "`{}` is not NAME=COUNT, as in daily=14,weekly=8",
                        crate::contract::kinds::shown(item)
                    )),
                })
                .collect::<Result<Vec<_>, String>>()?;
            check_counts(names, pairs)
        }
        SettingKind::List | SettingKind::Checked(_) if text.trim_start().starts_with('[') => {
            crate::contract::yaml::value_text(text)?;
            let list: Vec<String> =
                serde_yaml::from_str(text).map_err(|err| format!("expected a list like [a, b]: {err}"))?;
            check_list(def.kind, list)
        }
        SettingKind::List | SettingKind::Words | SettingKind::Checked(_) | SettingKind::CheckedWords(_) => {
            let words = shell_words::split(text).map_err(|err| {
                format!("cannot split `{}` into words: {err}", crate::contract::kinds::shown(text))
            })?;
            check_list(def.kind, words)
        }
    }
}

/// A text value checked against its kind: no NUL in any, and a text kind's own check. A URL
/// that is refused is shown by its scheme and host, as `SettingDef::shown` shows one.
fn check_string(kind: SettingKind, text: &str) -> Result<Value, String> {
    let checked = match kind {
        SettingKind::Text(kind) => (kind.check)(text),
        _ => check_no_nul(text),
    };
    let shown = match kind {
        SettingKind::Text(kind) if std::ptr::eq(kind, &crate::contract::kinds::URL) => {
            crate::contract::kinds::shown_url(text)
        }
        _ => crate::contract::kinds::shown(text),
    };
    checked.map_err(|why| format!("`{shown}` {why}"))?;
    Ok(Value::String(text.to_string()))
}

/// A list value checked against its kind: no NUL in any item, and a list kind's own check.
fn check_list(kind: SettingKind, items: Vec<String>) -> Result<Value, String> {
    for item in &items {
        check_no_nul(item).map_err(|why| format!("`{}` {why}", crate::contract::kinds::shown(item)))?;
    }
    if let SettingKind::Checked(kind) | SettingKind::CheckedWords(kind) = kind {
        (kind.check)(&items)?;
    }
    Ok(Value::List(items))
}

/// Counts checked against their kind: each name one of the kind's, at most once, each count a
/// whole number from 1 to [`Counts::MAX`], at least one; kept as `NAME=COUNT` items in the
/// kind's order of names.
fn check_counts(names: &[&str], pairs: impl IntoIterator<Item = (String, String)>) -> Result<Value, String> {
    let mut counts: BTreeMap<usize, u32> = BTreeMap::new();
    for (name, count) in pairs {
        let shown = crate::contract::kinds::shown(&name);
        let Some(index) = names.iter().position(|known| *known == name) else {
            return Err(format!(
                "`{shown}` is none of {}{}",
                names.join(", "),
                crate::contract::error::did_you_mean(&name, names.iter().copied())
            ));
        };
        let count =
            count.trim().parse::<u32>().ok().filter(|count| (1..=Counts::MAX).contains(count)).ok_or_else(
                || {
                    format!(
                        "{shown}: `{}` is not a count from 1 to {}",
                        crate::contract::kinds::shown(&count),
                        Counts::MAX
                    )
                },
            )?;
        if counts.insert(index, count).is_some() {
            return Err(format!("`{shown}` is given twice"));
        }
    }
    if counts.is_empty() {
        return Err(format!("no count: give at least one of {}", names.join(", ")));
    }
    Ok(Value::List(counts.into_iter().map(|(index, count)| format!("{}={count}", names[index])).collect()))
}

/// A count as YAML wrote it, as text for [`check_counts`] to read.
fn count_text(count: serde_yaml::Value) -> String {
    match count {
        serde_yaml::Value::Number(number) => number.to_string(),
        serde_yaml::Value::String(text) => text,
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Null => String::new(),
        _ => "a list or map".to_string(),
    }
}

/// A duration checked against its kind's bound.
fn check_duration(kind: SettingKind, text: &str) -> Result<Value, String> {
    let duration = parse_duration(text)?;
    if let SettingKind::DurationAtMost(max) = kind {
        if duration > std::time::Duration::from_secs(max) {
            return Err(format!(
                "`{}` is longer than {}, the most this setting takes",
                crate::contract::kinds::shown(text.trim()),
                seconds_shown(max)
            ));
        }
    }
    Ok(Value::String(text.trim().to_string()))
}

/// Seconds as a person writes them: `1h`, `30m`, `90s`.
fn seconds_shown(seconds: u64) -> String {
    match seconds {
        s if s >= 3600 && s % 3600 == 0 => format!("{}h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn check_range(number: i64, min: i64, max: i64) -> Result<Value, String> {
    if (min..=max).contains(&number) {
        Ok(Value::Integer(number))
    } else {
        Err(format!("{number} is out of range ({min} to {max})"))
    }
}

fn check_choice(text: &str, choices: &[&str]) -> Result<Value, String> {
    if choices.contains(&text) {
        Ok(Value::String(text.to_string()))
    } else {
        Err(format!(
            "expected one of {}, found `{}`{}",
            choices.join(", "),
            crate::contract::kinds::shown(text),
            crate::contract::error::did_you_mean(text, choices.iter().copied())
        ))
    }
}

/// Deserializes a YAML value checked against a setting's kind; errors carry the YAML position.
pub(crate) struct ValueSeed(pub &'static SettingDef);

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor(self.0))
    }
}

struct ValueVisitor(&'static SettingDef);

impl ValueVisitor {
    fn number<E: de::Error>(&self, number: i64, text: String) -> Result<Value, E> {
        match self.0.kind {
            SettingKind::Integer { min, max } => check_range(number, min, max).map_err(E::custom),
            SettingKind::String | SettingKind::Text(_) => check_string(self.0.kind, &text).map_err(E::custom),
            SettingKind::Choice(choices) => check_choice(&text, choices).map_err(E::custom),
            SettingKind::Duration | SettingKind::DurationAtMost(_) => Err(E::custom(format!(
                "`{number}` has no unit: write a duration like {number}s or {number}m"
            ))),
            _ => Err(E::invalid_type(de::Unexpected::Signed(number), self)),
        }
    }
}

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.kind {
            SettingKind::Bool => write!(f, "true or false"),
            SettingKind::Integer { .. } => write!(f, "an integer"),
            SettingKind::String => write!(f, "a string"),
            SettingKind::List => write!(f, "a list of strings"),
            SettingKind::Words => write!(f, "a string of words or a list of strings"),
            SettingKind::Choice(choices) => write!(f, "one of {}", choices.join(", ")),
            SettingKind::Duration => write!(f, "a duration like 90s, 30m, 2h or 7d (a day is 24 hours)"),
            SettingKind::DurationAtMost(max) => {
                write!(f, "a duration like 90s, 30m or 2h, at most {}", seconds_shown(max))
            }
            SettingKind::Text(kind) => write!(f, "a {}", kind.name),
            SettingKind::Checked(kind) => write!(f, "a list of {}", kind.name),
            SettingKind::CheckedWords(kind) => {
                write!(f, "{} as a string of words or a list of strings", kind.name)
            }
            SettingKind::Counts(names) => write!(f, "counts like {{daily: 14}}, by {}", names.join(", ")),
        }
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.0.kind {
            SettingKind::Bool => Ok(Value::Bool(v)),
            _ => Err(E::invalid_type(de::Unexpected::Bool(v), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.number(v, v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        let number = i64::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))?;
        self.number(number, v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.0.kind {
            SettingKind::String | SettingKind::Text(_) => {
                check_string(self.0.kind, &v.to_string()).map_err(E::custom)
            }
            _ => Err(E::invalid_type(de::Unexpected::Float(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        match self.0.kind {
            SettingKind::String | SettingKind::Text(_) => check_string(self.0.kind, v).map_err(E::custom),
            SettingKind::Choice(choices) => check_choice(v, choices).map_err(E::custom),
            SettingKind::Words | SettingKind::CheckedWords(_) => {
                let words = shell_words::split(v).map_err(|err| {
                    E::custom(format!(
                        "cannot split `{}` into words: {err}",
                        crate::contract::kinds::shown(v)
                    ))
                })?;
                check_list(self.0.kind, words).map_err(E::custom)
            }
            SettingKind::Duration | SettingKind::DurationAtMost(_) => {
                check_duration(self.0.kind, v).map_err(E::custom)
            }
            SettingKind::Counts(_) => parse_text(self.0, v).map_err(E::custom),
            _ => Err(E::invalid_type(de::Unexpected::Str(v), &self)),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        match self.0.kind {
            SettingKind::List
            | SettingKind::Words
            | SettingKind::Checked(_)
            | SettingKind::CheckedWords(_) => {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                check_list(self.0.kind, items).map_err(de::Error::custom)
            }
            _ => Err(de::Error::invalid_type(de::Unexpected::Seq, &self)),
        }
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let SettingKind::Counts(names) = self.0.kind else {
            return Err(de::Error::invalid_type(de::Unexpected::Map, &self));
        };
        let mut pairs = Vec::new();
        while let Some((name, count)) = map.next_entry::<String, serde_yaml::Value>()? {
            pairs.push((name, count_text(count)));
        }
        check_counts(names, pairs).map_err(de::Error::custom)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Err(E::custom(format!("empty value: expected {}", ExpectingOf(&self))))
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
}

struct ExpectingOf<'a>(&'a ValueVisitor);

impl fmt::Display for ExpectingOf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BOOL: SettingDef = SettingDef {
        name: "b",
        owner: "test",
        kind: SettingKind::Bool,
        default: None,
        help: "",
        optional: true,
        scope: Scope::Job,
    };
    static PORT: SettingDef = SettingDef {
        name: "p",
        owner: "test",
        kind: <u16 as SettingType>::KIND,
        default: None,
        help: "",
        optional: true,
        scope: Scope::Job,
    };
    static WORDS: SettingDef = SettingDef {
        name: "w",
        owner: "test",
        kind: SettingKind::Words,
        default: None,
        help: "",
        optional: true,
        scope: Scope::Job,
    };
    static LIST: SettingDef = SettingDef {
        name: "l",
        owner: "test",
        kind: SettingKind::List,
        default: None,
        help: "",
        optional: true,
        scope: Scope::Job,
    };
    static CHOICE: SettingDef = SettingDef {
        name: "c",
        owner: "test",
        kind: SettingKind::Choice(&["auto", "new", "legacy"]),
        default: None,
        help: "",
        optional: true,
        scope: Scope::Job,
    };

    static DURATION: SettingDef = SettingDef {
        name: "d",
        owner: "test",
        kind: SettingKind::Duration,
        default: None,
        help: "",
        optional: true,
        scope: Scope::Job,
    };

    static SHORT: SettingDef = SettingDef {
        name: "sd",
        owner: "test",
        kind: SettingKind::DurationAtMost(3600),
        default: None,
        help: "",
        optional: true,
        scope: Scope::Job,
    };

    static SECRET_URL: SettingDef = SettingDef {
        name: "u",
        owner: "test",
        kind: SettingKind::Text(&crate::contract::kinds::URL),
        default: None,
        help: "",
        optional: true,
        scope: Scope::Job,
    };

    #[test]
    fn a_url_is_shown_and_refused_by_its_scheme_and_host() {
        let url = Value::String("https://hc-ping.com/0f6c-secret".into());
        assert_eq!(SECRET_URL.shown(&url), "https://hc-ping.com/…");
        assert_eq!(WORDS.shown(&words(&["a", "b"])), "[a, b]");
        let err = parse_text(&SECRET_URL, "ftp://hc-ping.com/0f6c-secret").unwrap_err();
        assert!(err.starts_with("`ftp://hc-ping.com/…` must start with http"), "{err}");
        let err = yaml(&SECRET_URL, "'https://hc-ping.com/0f6c secret'").unwrap_err();
        assert!(!err.contains("secret") && err.contains("hc-ping.com/…"), "{err}");
    }

    #[test]
    fn bounded_durations() {
        assert_eq!(parse_text(&SHORT, "1h"), Ok(Value::String("1h".into())));
        assert_eq!(parse_text(&SHORT, "59m 60s"), Ok(Value::String("59m 60s".into())));
        assert_eq!(
            parse_text(&SHORT, "3601s"),
            Err("`3601s` is longer than 1h, the most this setting takes".into())
        );
        assert!(yaml(&SHORT, "100000000h").unwrap_err().contains("longer than 1h"));
        assert!(yaml(&SHORT, "0s").unwrap_err().contains("not a positive duration"));
        assert!(yaml(&SHORT, "90").unwrap_err().contains("has no unit"));
        assert_eq!(SHORT.kind.describe(), "duration, at most 1h");
        assert_eq!(seconds_shown(90), "90s");
        assert_eq!(seconds_shown(1800), "30m");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Ok(std::time::Duration::from_secs(7200)));
        assert_eq!(parse_duration("1m 30s"), Ok(std::time::Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(std::time::Duration::from_millis(500)));
        assert!(parse_duration("-5s").is_err());
        assert!(yaml(&DURATION, "90")
            .unwrap_err()
            .contains("`90` has no unit: write a duration like 90s or 90m"));
        assert_eq!(yaml(&DURATION, "2h"), Ok(Value::String("2h".into())));
    }

    fn words(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn text_values() {
        let check = |def: &SettingDef, text: &str, expected: Result<Value, &str>| {
            assert_eq!(parse_text(def, text), expected.map_err(str::to_string), "{text}")
        };
        check(&BOOL, "yes", Ok(Value::Bool(true)));
        check(&BOOL, "False", Ok(Value::Bool(false)));
        check(&BOOL, "maybe", Err("expected true or false, found `maybe`"));
        check(&PORT, "2222", Ok(Value::Integer(2222)));
        check(&PORT, "70000", Err("70000 is out of range (0 to 65535)"));
        check(&PORT, "ssh", Err("expected an integer, found `ssh`"));
        check(&WORDS, "--a 'b c'", Ok(words(&["--a", "b c"])));
        check(&LIST, "[-F, /x y]", Ok(words(&["-F", "/x y"])));
        check(&LIST, "-F /x", Ok(words(&["-F", "/x"])));
        check(&CHOICE, "new", Ok(Value::String("new".into())));
        check(&DURATION, "90s", Ok(Value::String("90s".into())));
        check(&DURATION, "1h 30m", Ok(Value::String("1h 30m".into())));
        check(&DURATION, "soon", Err("`soon` is not a duration like 90s, 30m, 2h or 7d"));
        check(&DURATION, "7d", Ok(Value::String("7d".into())));
        check(&DURATION, "2w 1d", Ok(Value::String("2w 1d".into())));
        check(&DURATION, "1 month", Err("`1 month` is not a duration like 90s, 30m, 2h or 7d"));
        assert_eq!(parse_duration("7d"), Ok(std::time::Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("1w 12h"), Ok(std::time::Duration::from_secs(7 * 86400 + 12 * 3600)));
        check(&DURATION, "0s", Err("`0s` is not a positive duration"));
        check(
            &CHOICE,
            "legasy",
            Err("expected one of auto, new, legacy, found `legasy` (did you mean `legacy`?)"),
        );
    }

    fn yaml(def: &'static SettingDef, text: &str) -> Result<Value, String> {
        ValueSeed(def).deserialize(serde_yaml::Deserializer::from_str(text)).map_err(|err| err.to_string())
    }

    #[test]
    fn yaml_values() {
        assert_eq!(yaml(&BOOL, "true"), Ok(Value::Bool(true)));
        assert_eq!(yaml(&PORT, "22"), Ok(Value::Integer(22)));
        assert_eq!(yaml(&WORDS, "--a --b"), Ok(words(&["--a", "--b"])));
        assert_eq!(yaml(&WORDS, "[--a, --b c]"), Ok(words(&["--a", "--b c"])));
        assert!(yaml(&PORT, "abc").unwrap_err().contains("expected an integer"));
        assert!(yaml(&BOOL, "1").unwrap_err().contains("expected true or false"));
        assert!(yaml(&LIST, "x").unwrap_err().contains("expected a list of strings"));
        assert!(yaml(&PORT, "~").unwrap_err().contains("empty value: expected an integer"));
    }

    /// Words with no `-x` among them, for the checked-words kind below.
    static NO_X: crate::contract::kinds::ListKind = crate::contract::kinds::ListKind {
        name: "words without -x",
        accepts: "",
        check: |words| match words.iter().any(|w| w == "-x") {
            true => Err("`-x` is refused".into()),
            false => Ok(()),
        },
    };
    static CHECKED_WORDS: SettingDef = SettingDef {
        name: "cw",
        owner: "test",
        kind: SettingKind::CheckedWords(&NO_X),
        default: None,
        help: "",
        optional: true,
        scope: Scope::Job,
    };

    #[test]
    fn checked_words_are_read_as_words_and_checked_as_a_whole() {
        assert_eq!(yaml(&CHECKED_WORDS, "--a 'b c'"), Ok(words(&["--a", "b c"])));
        assert_eq!(yaml(&CHECKED_WORDS, "[--a, b c]"), Ok(words(&["--a", "b c"])));
        assert_eq!(parse_text(&CHECKED_WORDS, "--a 'b c'"), Ok(words(&["--a", "b c"])));
        assert!(yaml(&CHECKED_WORDS, "--a -x").unwrap_err().contains("`-x` is refused"));
        assert!(yaml(&CHECKED_WORDS, "[--a, -x]").unwrap_err().contains("`-x` is refused"));
        assert_eq!(parse_text(&CHECKED_WORDS, "-x"), Err("`-x` is refused".into()));
        assert!(yaml(&CHECKED_WORDS, "1").unwrap_err().contains("words without -x as a string of words"));
    }

    static COUNTS: SettingDef = SettingDef {
        name: "k",
        owner: "test",
        kind: SettingKind::Counts(&["daily", "weekly", "monthly"]),
        default: None,
        help: "",
        optional: true,
        scope: Scope::Job,
    };

    #[test]
    fn counts_are_read_from_a_map_or_the_command_line_and_kept_in_the_kinds_order() {
        let kept = Ok(words(&["daily=14", "monthly=12"]));
        assert_eq!(yaml(&COUNTS, "{monthly: 12, daily: 14}"), kept);
        assert_eq!(yaml(&COUNTS, "monthly: 12\ndaily: '14'"), kept);
        assert_eq!(parse_text(&COUNTS, "monthly=12,daily=14"), kept);
        assert_eq!(parse_text(&COUNTS, "daily=14 monthly=12"), kept);
        assert_eq!(parse_text(&COUNTS, "{daily: 14, monthly: 12}"), kept);
        let typed = Counts::from_value(kept.as_ref().ok()).unwrap();
        assert_eq!(typed, Counts(vec![("daily".into(), 14), ("monthly".into(), 12)]));
        let refused = |text: &str, why: &str| {
            let yaml_error = yaml(&COUNTS, text).unwrap_err();
            assert!(yaml_error.contains(why), "{text}: {yaml_error}");
        };
        refused("{dialy: 3}", "`dialy` is none of daily, weekly, monthly (did you mean `daily`?)");
        refused("{daily: 0}", "daily: `0` is not a count from 1 to 1000000");
        refused("{daily: -1}", "daily: `-1` is not a count");
        refused("{daily: 1.5}", "daily: `1.5` is not a count");
        refused("{daily: 1000001}", "not a count from 1 to 1000000");
        refused("{daily: [1]}", "daily: `a list or map` is not a count");
        refused("{daily: ~}", "daily: `` is not a count");
        refused("{}", "no count: give at least one of daily, weekly, monthly");
        refused("[daily]", "expected counts like {daily: 14}");
        refused(
            "7",
            "invalid type: integer `7`, expected counts like {daily: 14}, by daily, weekly, monthly",
        );
        assert_eq!(parse_text(&COUNTS, "daily=2,daily=3"), Err("`daily` is given twice".into()));
        assert_eq!(
            parse_text(&COUNTS, "daily"),
            Err("`daily` is not NAME=COUNT, as in daily=14,weekly=8".into())
        );
        assert!(parse_text(&COUNTS, "").unwrap_err().starts_with("no count"));
    }

    #[test]
    fn every_registered_default_parses_and_required_settings_have_one() {
        for def in registry().values() {
            match def.default_value() {
                Some(_) => {}
                None => assert!(def.optional, "setting {} has no default but is not optional", def.name),
            }
            assert!(!def.help.is_empty(), "setting {} has no help", def.name);
            assert!(!def.help.ends_with('.'), "help of {} ends with a period", def.name);
        }
    }
}
