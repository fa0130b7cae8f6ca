//! Experiment files: loading (YAML or TOML through figment), command-line overrides, and the
//! provenance that lets every error name the file and key path a bad value came from.

pub mod bounds;
pub mod choices;
mod error;
pub mod limits;
pub mod overrides;
pub mod params;
pub mod text;

use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml, Yaml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

pub use choices::{CountOrAuto, NumberOrAuto, SubPlugin};
pub use error::ConfigError;
pub use params::{NoParams, ParamDoc, Params, RawParams};

/// Longest key path and message shown in an error (characters).
const MAX_KEY_CHARS: usize = 120;
const MAX_MESSAGE_CHARS: usize = 600;

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

    /// An error about one value. Very long keys and messages (a 60 kB key pasted by mistake,
    /// a value echoed by the parser) are shortened so the error stays readable.
    pub fn key_error(&self, value: &Value, key: &str, message: String, fix: String) -> ConfigError {
        ConfigError::Key {
            origin: self.origin_of(value),
            key: text::shorten(key, MAX_KEY_CHARS),
            message: text::shorten(&message, MAX_MESSAGE_CHARS),
            fix,
        }
    }

    /// An error about a key that was not written (its default is what is wrong).
    pub fn default_error(&self, key: &str, message: String, fix: String) -> ConfigError {
        ConfigError::Key {
            origin: format!("{} (default value)", self.file.display()),
            key: text::shorten(key, MAX_KEY_CHARS),
            message: text::shorten(&message, MAX_MESSAGE_CHARS),
            fix,
        }
    }
}

/// Reads an experiment file into a figment, with an accurate error for each way the path can
/// fail to be one: missing, a directory, a FIFO or other special file, a symlink loop or a
/// dangling link, unreadable, empty, binary or not UTF-8, an unknown extension, or malformed
/// content (with the parser's line and column).
pub fn load_file(file: &Path) -> Result<Figment, ConfigError> {
    check_experiment_path(file)?;
    let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    let syntax = match extension {
        "yaml" | "yml" => text::Syntax::Yaml,
        "toml" => text::Syntax::Toml,
        _ => {
            return Err(ConfigError::file(
                file,
                format!("unsupported file extension `{extension}`"),
                "name the experiment file *.yaml, *.yml or *.toml",
            ))
        }
    };
    let contents = check_experiment_text(file)?;
    text::check_text(file, &contents, syntax)?;
    // Values keep the file as their source (errors name it).
    let figment = match syntax {
        text::Syntax::Yaml => Figment::from(Yaml::file_exact(file)),
        text::Syntax::Toml => Figment::from(Toml::file_exact(file)),
    };
    // Parse now so a malformed file fails here, with the parser's line and column.
    figment
        .data()
        .map_err(|e| text::parse_error(file, &e.kind.to_string()))?;
    Ok(figment)
}

const EXAMPLE_FILE: &str = "experiments/quickstart.yaml";

/// ELOOP on Linux and the BSDs/macOS: too many levels of symbolic links.
fn is_symlink_loop(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(40) | Some(62))
}

/// The path exists and is a regular file (following symlinks), checked from its metadata
/// before anything opens it (opening a FIFO would block).
fn check_experiment_path(file: &Path) -> Result<(), ConfigError> {
    let metadata = match std::fs::metadata(file) {
        Ok(metadata) => metadata,
        Err(e) if is_symlink_loop(&e) => {
            return Err(ConfigError::file(
                file,
                "is a symbolic link loop (too many levels of symbolic links), not an experiment file",
                "point the link at a real .yaml, .yml or .toml file, or give that file's path",
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Ok(link) = std::fs::symlink_metadata(file) {
                if link.file_type().is_symlink() {
                    let target = std::fs::read_link(file)
                        .map(|t| t.display().to_string())
                        .unwrap_or_else(|_| "?".into());
                    return Err(ConfigError::file(
                        file,
                        format!("is a symbolic link to `{target}`, which does not exist"),
                        "fix the link, or give the experiment file's own path",
                    ));
                }
            }
            return Err(ConfigError::file(
                file,
                "experiment file not found",
                format!("check the path (experiment files live in experiments/, e.g. {EXAMPLE_FILE})"),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(ConfigError::file(
                file,
                "cannot be read: permission denied (on the file or a folder above it)",
                "check the permissions of the file and its folders (e.g. `ls -l`), or copy the file somewhere readable",
            ))
        }
        Err(e) => {
            return Err(ConfigError::file(
                file,
                format!("cannot be read: {e}"),
                "check the path",
            ))
        }
    };
    let kind = metadata.file_type();
    if kind.is_dir() {
        let mut inside: Vec<String> = std::fs::read_dir(file)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_file()
                            && matches!(
                                p.extension().and_then(|e| e.to_str()),
                                Some("yaml" | "yml" | "toml")
                            )
                    })
                    .map(|p| p.display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        inside.sort();
        let fix = if inside.is_empty() {
            format!("give the path of a .yaml, .yml or .toml file, e.g. {EXAMPLE_FILE}")
        } else {
            let shown = inside.len().min(5);
            format!(
                "give the path of a file inside it, e.g. {}",
                inside[..shown].join(", ")
            )
        };
        return Err(ConfigError::file(
            file,
            "is a directory, not an experiment file",
            fix,
        ));
    }
    if !kind.is_file() {
        return Err(ConfigError::file(
            file,
            format!(
                "is {}, not a regular file (it is not read, so nothing waits on it)",
                special_file_kind(&kind)
            ),
            format!(
                "save the experiment to a regular .yaml, .yml or .toml file, e.g. {EXAMPLE_FILE}"
            ),
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn special_file_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_file_kind(_kind: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// The file can be read and holds text: not empty, not binary, valid UTF-8. Returns the text.
fn check_experiment_text(file: &Path) -> Result<String, ConfigError> {
    let bytes = std::fs::read(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => ConfigError::file(
            file,
            "cannot be read: permission denied",
            "make it readable (e.g. `chmod u+r` on it), or copy it somewhere readable",
        ),
        _ => ConfigError::file(file, format!("cannot be read: {e}"), "check the file"),
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ConfigError::file(
            file,
            "is empty",
            format!("write the experiment into it (see {EXAMPLE_FILE} for a complete one)"),
        ));
    }
    if let Some(position) = bytes.iter().position(|b| *b == 0) {
        return Err(ConfigError::file(
            file,
            format!("looks like a binary file (byte {position} is NUL), not an experiment file"),
            "give the path of the YAML or TOML text file",
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        ConfigError::file(
            file,
            format!("is not UTF-8 text (invalid byte at offset {at}, line {line})"),
            "save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
        )
    })
}

/// A number as messages show it: compact for very large or very small magnitudes
/// (`1e308`, not 309 digits), plain otherwise.
pub fn number(x: f64) -> String {
    if x.is_nan() {
        "NaN".to_string()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if x != 0.0 && (x.abs() >= 1e6 || x.abs() < 1e-4) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
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
            format!(
                "cannot be read: {}",
                text::shorten(&e.kind.to_string(), 400)
            ),
            "fix the file or the override",
        )
    })?;
    Ok(data.remove(&Profile::Default).unwrap_or_default())
}

/// The known name closest to `wanted` (a plugin, a key), if any is reasonably close: the
/// "did you mean" of every unknown-name error.
pub fn nearest<'a>(wanted: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|name| (strsim::normalized_damerau_levenshtein(wanted, name), name))
        .filter(|(score, _)| *score >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}
