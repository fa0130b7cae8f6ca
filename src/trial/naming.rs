//! How trials are named: stable hashes of resolved configs, readable labels of swept
//! values, and folder-safe names.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::config::{ConfigError, RawParams};

/// The longest sweep folder name accepted, in bytes (filesystems allow 255 per name).
pub const MAX_NAME_BYTES: usize = 100;

/// The longest label part of a trial folder name, in characters (all ASCII after
/// [`sanitize`]); the folder name adds `-` and a 10-digit hash.
pub const MAX_LABEL_CHARS: usize = 80;

/// Hex prefix of the SHA-256 of the canonical (key-sorted, compact) JSON.
pub fn stable_hash(value: &serde_json::Value) -> String {
    let digest = Sha256::digest(canonical_json(value).as_bytes());
    digest.iter().take(5).map(|b| format!("{b:02x}")).collect()
}

fn canonical_json(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical_json(v))).collect();
            let fields: Vec<String> = sorted
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(k.as_str())))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

/// A value as people write it: strings without quotes.
/// A plugin table reads as `kind(key=value,...)`, e.g. `heun(steps=18)`.
pub fn display_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(map) if map.get("kind").is_some_and(|k| k.is_string()) => {
            let settings: Vec<String> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "kind")
                .map(|(k, v)| format!("{k}={}", display_value(v)))
                .collect();
            let kind = display_value(&map["kind"]);
            if settings.is_empty() {
                kind
            } else {
                format!("{kind}({})", settings.join(","))
            }
        }
        other => other.to_string(),
    }
}

/// The last part of a key path; a slot's `kind` is named by its slot (`weighting.kind` →
/// `weighting`).
pub fn short_key(key: &str) -> String {
    let mut parts = key.rsplit('.');
    match (parts.next(), parts.next()) {
        (Some("kind"), Some(slot)) => slot.to_string(),
        (Some(last), _) => last.to_string(),
        _ => key.to_string(),
    }
}

/// `num_levels=10,sigma_max=auto`: the last part of each swept key, or the whole path when
/// two swept keys end alike.
pub fn label_of(assignments: &[(String, serde_json::Value)]) -> String {
    // A null in a sweep list is the key's default: left out, so a row added to a file's sweep
    // with a zip (the other rows' new key null) keeps every other row's label, and so its id.
    let assignments: Vec<&(String, serde_json::Value)> = assignments
        .iter()
        .filter(|(_, value)| !value.is_null())
        .collect();
    if assignments.is_empty() {
        return "base".to_string();
    }
    let shorts: Vec<String> = assignments.iter().map(|(k, _)| short_key(k)).collect();
    assignments
        .iter()
        .zip(&shorts)
        .map(|((key, value), s)| {
            let name = if shorts.iter().filter(|o| *o == s).count() > 1 {
                key.clone()
            } else {
                s.clone()
            };
            format!("{name}={}", display_value(value))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A label as a folder name: characters other than ASCII letters, digits and `._=-,` become
/// `_` (so no path separator or control character survives), a leading `.` becomes `_` (no
/// hidden folder, no `..`), and it is cut to [`MAX_LABEL_CHARS`]. The trial id appends the
/// config's hash, which keeps cut labels apart.
pub(super) fn sanitize(label: &str) -> String {
    label
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if (c.is_ascii_alphanumeric() || "._=-,".contains(c)) && !(i == 0 && c == '.') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_LABEL_CHARS)
        .collect()
}

/// Checks the name of the sweep's folder, `results/<name>/`: the `name` setting when set,
/// else the experiment file's stem. Either must be one plain folder name, so that nothing
/// the sweep writes can land outside the results folder.
pub(super) fn check_sweep_name(
    name: Option<&str>,
    stem: &str,
    raw: &RawParams,
) -> Result<(), ConfigError> {
    match name {
        Some(name) => match name_problem(name, true) {
            None => Ok(()),
            Some(problem) => Err(raw.invalid(
                "name",
                format!("`{}` is not a plain folder name: {problem}", shown(name)),
                format!(
                    "use 1 to {MAX_NAME_BYTES} letters, digits, `.`, `_` and `-`, not starting \
                     with `.` or `-` (it names a folder under the results folder)"
                ),
            )),
        },
        // The stem obeys `name:`'s rules: it names the same folder, and shell-special
        // characters (`$(…)`, spaces, a leading `-`) make it unsafe to paste into commands.
        None => match name_problem(stem, true) {
            None => Ok(()),
            Some(problem) => Err(raw.invalid(
                "name",
                format!(
                    "the results folder is named after the experiment file, but `{}` is not \
                     a plain folder name: {problem}",
                    shown(stem)
                ),
                "set `name:` to a plain folder name (letters, digits, `.`, `_` and `-`), or \
                 rename the experiment file",
            )),
        },
    }
}

/// `name` for a message: escaped (control characters visible) and at most 60 characters.
fn shown(name: &str) -> String {
    let escaped: String = name.escape_debug().collect();
    if escaped.chars().count() > 60 {
        format!("{}…", escaped.chars().take(60).collect::<String>())
    } else {
        escaped
    }
}

/// Why `name` cannot be the sweep's folder name, if it cannot. `strict` (a `name:` someone
/// typed) also allows only ASCII letters, digits, `.`, `_` and `-`, and no leading `.` or
/// `-`; a file's stem need only be one folder name inside the results folder.
fn name_problem(name: &str, strict: bool) -> Option<String> {
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if name == "." {
        return Some("`.` is the results folder itself".into());
    }
    if name == ".." {
        return Some("`..` is the folder above the results folder".into());
    }
    if let Some(c) = name.chars().find(|c| *c == '/' || *c == '\\') {
        return Some(format!(
            "it contains `{c}`, so it is a path, and could lead outside the results folder"
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Some(format!(
            "it contains the control character {}",
            c.escape_unicode()
        ));
    }
    if name.len() > MAX_NAME_BYTES {
        return Some(format!(
            "it is {} bytes long, more than {MAX_NAME_BYTES}",
            name.len()
        ));
    }
    if !strict {
        return None;
    }
    if name.starts_with('.') {
        return Some("it starts with `.`, which would hide the folder".into());
    }
    if name.starts_with('-') {
        return Some("it starts with `-`, which command-line tools take for an option".into());
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    name.chars()
        .find(|c| !plain(*c))
        .map(|c| format!("it contains `{}`", c.escape_debug()))
}
