//! The global config file: a YAML mapping of settings, the layer between defaults and job files.
//!
//! `/etc/ari-backup/ari-backup.conf.yaml` by default; missing is fine there (defaults apply). A
//! file named by `--config` or `ARI_CONFIG` must exist. Any registered setting may appear, of any
//! plugin: the global config serves every job.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::contract::error::{did_you_mean, ConfigError};
use crate::contract::job::file::{every_key, Pass};
use crate::contract::settings::{self, Layer, Source, ValueSeed};

/// Where the global config lives unless `--config` or `ARI_CONFIG` says otherwise.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/ari-backup/ari-backup.conf.yaml";

/// The global config as loaded.
#[derive(Debug, Clone)]
pub struct GlobalConfig {
    /// The path it was read from (or would have been).
    pub path: PathBuf,
    /// Whether the file existed.
    pub found: bool,
    /// The values it sets.
    pub layer: Layer,
}

impl GlobalConfig {
    /// Loads the config at `path`; `explicit` says whether the user named it (then it must exist).
    pub fn load(path: &Path, explicit: bool) -> Result<GlobalConfig, ConfigError> {
        let text = match crate::contract::yaml::read_file(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(GlobalConfig {
                    path: path.to_path_buf(),
                    found: false,
                    layer: Layer::new(Source::Config(path.to_path_buf())),
                })
            }
            Err(err) if err.kind() == std::io::ErrorKind::FileTooLarge => {
                return Err(ConfigError::in_file(path, err.to_string()))
            }
            Err(err) => {
                return Err(ConfigError::in_file(path, format!("cannot read the config file: {err}")))
            }
        };
        let layer = GlobalConfig::parse(path, &text)?;
        Ok(GlobalConfig { path: path.to_path_buf(), found: true, layer })
    }

    /// Parses the text of a config file; the error names every error of the file, in file
    /// order, as a job file's does.
    pub fn parse(path: &Path, text: &str) -> Result<Layer, ConfigError> {
        let text = crate::contract::yaml::document(path, text)?;
        let (layer, errors) = every_key(path, text, |pass| {
            ConfigSeed(path, pass).deserialize(serde_yaml::Deserializer::from_str(text))
        })?;
        ConfigError::any(errors)?;
        let Some(layer) = layer else {
            return Err(ConfigError::in_file(path, "the config file must be a mapping of settings"));
        };
        Ok(layer.with_document(Arc::from(text)))
    }
}

struct ConfigSeed<'a>(&'a Path, &'a Pass);

/// Reads a config file: a layer, or `None` when the file is not a mapping.
impl<'de> DeserializeSeed<'de> for ConfigSeed<'_> {
    type Value = Option<Layer>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Layer>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ConfigSeed<'_> {
    type Value = Option<Layer>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a mapping of settings")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Layer>, E> {
        Ok(Some(Layer::new(Source::Config(self.0.to_path_buf()))))
    }
    fn visit_none<E: de::Error>(self) -> Result<Option<Layer>, E> {
        self.visit_unit()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<Layer>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<Layer>, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<Layer>, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<Layer>, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<Layer>, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Layer>, A::Error> {
        while seq.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Layer>, A::Error> {
        let mut layer = Layer::new(Source::Config(self.0.to_path_buf()));
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            // A key skipped still counts as seen, so that a second one is still an error.
            let first = seen.insert(key.clone());
            if self.1.skipped(&mut map)? {
                continue;
            }
            let Some(def) = settings::registry().get(key.as_str()).copied() else {
                let hint = did_you_mean(&key, settings::registry().keys().copied());
                let job_key = crate::contract::job::JOB_KEYS.contains(&key.as_str());
                let message = if job_key {
                    format!("`{key}` belongs in a job file, not in the global config")
                } else {
                    format!("unknown setting `{key}`{hint}")
                };
                return crate::contract::job::file::fail_at_value(&mut map, message);
            };
            if !first {
                return crate::contract::job::file::fail_at_value(&mut map, format!("`{key}` appears twice"));
            }
            let value = map.next_value_seed(ValueSeed(def))?;
            layer.values.insert(def.name, value);
            self.1.done();
        }
        Ok(Some(layer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_files() {
        let path = Path::new("/etc/ari-backup/ari-backup.conf.yaml");
        let layer = GlobalConfig::parse(path, "remote_user: backup\nssh_port: 2222\n").unwrap();
        assert_eq!(layer.values["ssh_port"], settings::Value::Integer(2222));
        assert!(GlobalConfig::parse(path, "").unwrap().values.is_empty());
        let err = GlobalConfig::parse(path, "ssh_prot: 22\n").unwrap_err().to_string();
        assert_eq!(err, "/etc/ari-backup/ari-backup.conf.yaml:1:11: ssh_prot: unknown setting `ssh_prot` (did you mean `ssh_port`?)");
        let err = GlobalConfig::parse(path, "include: [/etc]\n").unwrap_err().to_string();
        assert!(err.contains("`include` belongs in a job file"), "{err}");
        // Every error at once, in file order; a key twice, the first time with a bad value.
        let err = GlobalConfig::parse(path, "ssh_prot: 22\nssh_port: x\nremote_user: a\nssh_port: 2\n");
        assert_eq!(
            err.unwrap_err().to_string(),
            "/etc/ari-backup/ari-backup.conf.yaml:1:11: ssh_prot: unknown setting `ssh_prot` (did you mean `ssh_port`?)\n\
             /etc/ari-backup/ari-backup.conf.yaml:2:11: ssh_port: invalid type: string \"x\", expected an integer\n\
             /etc/ari-backup/ari-backup.conf.yaml:4:11: ssh_port: `ssh_port` appears twice"
        );
    }

    #[test]
    fn a_missing_default_config_is_fine_but_a_named_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        assert!(!GlobalConfig::load(&missing, false).unwrap().found);
        let err = GlobalConfig::load(&missing, true).unwrap_err().to_string();
        assert!(err.contains("cannot read the config file"), "{err}");
    }
}
