//! Experiment files: loading (YAML or TOML through figment), command-line overrides, and the
//! provenance that lets every error name the file and key path a bad value came from.

pub mod params;

use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml, Yaml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

pub use params::{NoParams, NumberOrAuto, ParamDoc, Params, RawParams};

/// A problem with the experiment: what is wrong, where, and how to fix it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}. Fix: {fix}")]
    File {
        file: String,
        message: String,
        fix: String,
    },
    #[error("in {origin}, key `{key}`: {message}. Fix: {fix}")]
    Key {
        origin: String,
        key: String,
        message: String,
        fix: String,
    },
}

impl ConfigError {
    pub fn file(file: &Path, message: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError::File {
            file: file.display().to_string(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Where the values of one resolved trial came from: the file, an override or the sweep.
pub struct Provenance {
    file: PathBuf,
    figment: Figment,
}

impl Provenance {
    pub fn new(file: &Path, figment: Figment) -> Self {
        Provenance {
            file: file.to_path_buf(),
            figment,
        }
    }

    /// Names the source of one value as a user would recognise it.
    pub fn origin_of(&self, value: &Value) -> String {
        let file = self.file.display().to_string();
        match self.figment.get_metadata(value.tag()) {
            Some(meta) if !matches!(meta.source, Some(figment::Source::File(_))) => {
                format!("{file} ({})", meta.name)
            }
            _ => file,
        }
    }

    pub fn key_error(&self, value: &Value, key: &str, message: String, fix: String) -> ConfigError {
        ConfigError::Key {
            origin: self.origin_of(value),
            key: key.to_string(),
            message,
            fix,
        }
    }

    /// An error about a key that was not written (its default is what is wrong).
    pub fn default_error(&self, key: &str, message: String, fix: String) -> ConfigError {
        ConfigError::Key {
            origin: format!("{} (default value)", self.file.display()),
            key: key.to_string(),
            message,
            fix,
        }
    }
}

/// Reads an experiment file into a figment, with clear errors for a missing file, an unknown
/// extension or malformed content.
pub fn load_file(file: &Path) -> Result<Figment, ConfigError> {
    if !file.is_file() {
        return Err(ConfigError::file(
            file,
            "experiment file not found",
            "check the path (experiment files live in experiments/, e.g. experiments/quickstart.yaml)",
        ));
    }
    let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let figment = match extension {
        "yaml" | "yml" => Figment::from(Yaml::file_exact(file)),
        "toml" => Figment::from(Toml::file_exact(file)),
        _ => {
            return Err(ConfigError::file(
                file,
                format!("unsupported file extension `{extension}`"),
                "name the experiment file *.yaml, *.yml or *.toml",
            ))
        }
    };
    // Parse now so a malformed file fails here, with the parser's line and column.
    figment.data().map_err(|e| {
        ConfigError::file(
            file,
            format!("cannot be parsed: {}", e.kind),
            "fix the syntax at the position given",
        )
    })?;
    Ok(figment)
}

/// Key-value pairs merged over a figment, e.g. command-line overrides or one trial's sweep
/// values. Dotted keys become nested tables.
pub struct KeyValues {
    pub name: String,
    pub entries: Vec<(String, Value)>,
}

impl Provider for KeyValues {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (path, value) in &self.entries {
            set_path(&mut root, path, value.clone());
        }
        Ok(Map::from([(Profile::Default, root)]))
    }
}

/// Sets `a.b.c` in a nested dict, creating tables on the way (and replacing non-tables).
pub fn set_path(root: &mut Dict, path: &str, value: Value) {
    let mut parts = path.split('.').peekable();
    let mut dict = root;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            dict.insert(part.to_string(), value);
            return;
        }
        let entry = dict
            .entry(part.to_string())
            .or_insert_with(|| Value::from(Dict::new()));
        match entry {
            Value::Dict(..) => {}
            // A plugin named by its shorthand (`sampler=NAME`) keeps its name when a
            // parameter is set below it (`sampler.steps_per_level=10`).
            Value::String(_, name) => {
                let kind = Value::from(name.clone());
                *entry = Value::from(Dict::from([("kind".to_string(), kind)]));
            }
            _ => *entry = Value::from(Dict::new()),
        }
        dict = match entry {
            Value::Dict(_, inner) => inner,
            _ => unreachable!("just made a table"),
        };
    }
}

/// Parses one command-line value the way YAML would (`10` is a number, `auto` a string,
/// `[1, 2]` a list).
pub fn parse_scalar(text: &str) -> Value {
    match serde_yaml::from_str::<serde_yaml::Value>(text) {
        Ok(yaml) => Value::serialize(&yaml).unwrap_or_else(|_| Value::from(text.to_string())),
        Err(_) => Value::from(text.to_string()),
    }
}

/// Figment values as JSON (for resolved configs, hashing and tables).
pub fn to_json(value: &Value) -> serde_json::Value {
    value
        .deserialize::<serde_json::Value>()
        .unwrap_or(serde_json::Value::Null)
}

/// The root table of a figment's default profile.
pub fn root_dict(figment: &Figment, file: &Path) -> Result<Dict, ConfigError> {
    let mut data = figment.data().map_err(|e| {
        ConfigError::file(
            file,
            format!("cannot be read: {}", e.kind),
            "fix the file or the override",
        )
    })?;
    Ok(data.remove(&Profile::Default).unwrap_or_default())
}
