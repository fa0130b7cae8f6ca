//! Command-line overrides, Hydra's grammar: `key.path=value`, `+key=value` (add),
//! `++key=value` (add or override), `~key` / `~key=value` (remove from the file), and on the
//! value side lists, quoted strings, `\,` escapes, `a,b,c`, `range(...)`, `choice(...)` and
//! `glob(...)` (see [`values`]). Each override is parsed into its form, key path and value,
//! with errors naming the experiment file, the override as typed and what to write instead.
//! What an override does to the experiment (precedence) is `crate::sweep`'s business.

mod range;
mod values;

use std::path::Path;

use figment::value::Value;

use super::ConfigError;
pub use values::{glob_matches, Refusal};

pub const OVERRIDE_SOURCE: &str = "command-line override";

/// Most trials one sweep may have: each is resolved (its data drawn) before the first runs.
pub const MAX_TRIALS: usize = 100_000;
/// Most parts of a key path (`sweep.zip.sampler.eps` has 4): deeper paths build tables
/// nested that deep, and no experiment key is more than a few levels down.
pub const MAX_KEY_PARTS: usize = 16;

/// The prefix of an override, as in Hydra.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `key=value`: set (or sweep) a key, whether or not the file sets it.
    Set,
    /// `+key=value`: add a key the file does not set (an error if it does).
    Add,
    /// `++key=value`: add or override; the same as `key=value` here.
    AddOrSet,
    /// `~key` or `~key=value`: remove the key from the file, so its default applies.
    Remove,
}

/// What an override gives its key.
#[derive(Debug, Clone, PartialEq)]
pub enum OverrideValue {
    /// One value; `null` (`Value::Empty`) means "back to the default".
    One(Value),
    /// Values to sweep: `a,b,c`, `range(...)`, `choice(...)`.
    Sweep(Vec<Value>),
    /// `glob(include, exclude=...)`: the registered plugins of a slot whose names match.
    Glob {
        include: Vec<String>,
        exclude: Vec<String>,
    },
    /// `~key` without a value.
    Nothing,
}

/// One parsed override.
#[derive(Debug, Clone)]
pub struct Override {
    /// As typed (for messages and provenance).
    pub text: String,
    pub form: Form,
    pub key: String,
    pub value: OverrideValue,
}

/// An error in one command-line override, naming the experiment file it applies to and the
/// override as typed.
pub fn override_error(file: &Path, text: &str, message: &str, fix: &str) -> ConfigError {
    let text = super::text::shorten(text, 120);
    let key = text
        .split('=')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    ConfigError::Key {
        origin: format!("{} ({OVERRIDE_SOURCE} `{text}`)", file.display()),
        key,
        message: message.to_string(),
        fix: fix.to_string(),
    }
}

/// A key path has at most [`MAX_KEY_PARTS`] parts.
pub fn check_key_depth(key: &str) -> Result<(), String> {
    let parts = key.split('.').count();
    if parts > MAX_KEY_PARTS {
        Err(format!(
            "the key path has {parts} parts; experiment keys are at most {MAX_KEY_PARTS} levels deep"
        ))
    } else {
        Ok(())
    }
}

/// `-m` / `--multirun`: Hydra's switch into sweep mode. Every run of the runner may sweep,
/// so the flag changes nothing; it is accepted (and skipped) for muscle memory.
pub fn is_multirun_flag(text: &str) -> bool {
    matches!(text.trim(), "-m" | "--multirun")
}

pub fn parse_override(file: &Path, text: &str) -> Result<Override, ConfigError> {
    let error = |message: &str, fix: &str| override_error(file, text, message, fix);
    let trimmed = text.trim();
    let (form, rest) = if let Some(rest) = trimmed.strip_prefix("++") {
        (Form::AddOrSet, rest)
    } else if let Some(rest) = trimmed.strip_prefix('+') {
        (Form::Add, rest)
    } else if let Some(rest) = trimmed.strip_prefix('~') {
        (Form::Remove, rest)
    } else {
        (Form::Set, trimmed)
    };
    let (key, raw) = match rest.split_once('=') {
        Some((key, raw)) => (key.trim(), Some(raw.trim())),
        None => (rest.trim(), None),
    };
    if raw.is_none() && form != Form::Remove {
        return Err(match form {
            Form::Add | Form::AddOrSet => error(
                "`+key` / `++key` needs a value",
                &format!("write {}{key}=VALUE", if form == Form::Add { "+" } else { "++" }),
            ),
            _ if trimmed.starts_with('-') => error(
                "this is not an override (a flag the runner does not know?)",
                "give overrides as key.path=value; see `runner sweep --help` for the flags",
            ),
            _ => error(
                "an override needs `=`",
                "write key.path=value, e.g. sampler.steps_per_level=50; `~key` removes a key from the file",
            ),
        });
    }
    check_key(key).map_err(|r| error(&r.message, &r.fix))?;
    let value = match raw {
        None => OverrideValue::Nothing,
        Some("") if form == Form::Remove => {
            return Err(error(
                "`~key=` has no value to compare with",
                &format!("write ~{key} to remove the key whatever its value, or ~{key}=VALUE"),
            ))
        }
        Some("") => {
            return Err(error(
                "the value is empty",
                "give a value after `=` ('' for an empty string, null for the default), or a,b,c to sweep",
            ))
        }
        Some(raw) => values::parse_value(raw).map_err(|r| error(&r.message, &r.fix))?,
    };
    match (&form, &value) {
        (Form::Remove, OverrideValue::Sweep(_) | OverrideValue::Glob { .. }) => Err(error(
            "`~key=value` removes the key when the file has that value; it cannot sweep",
            &format!("write ~{key} to remove the key, or {key}=a,b to sweep it"),
        )),
        _ => Ok(Override {
            text: text.trim().to_string(),
            form,
            key: key.to_string(),
            value,
        }),
    }
}

/// A key path: dotted names (list elements by index, `data.weights.0`), not the `sweep`
/// section, at most [`MAX_KEY_PARTS`] deep; Hydra's config-group and package forms get a
/// message saying what to write instead.
fn check_key(key: &str) -> Result<(), Refusal> {
    let refuse = |message: String, fix: &str| Err(Refusal::new(message, fix));
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return refuse(
            "the key path is empty or has an empty part".into(),
            "write key.path=value",
        );
    }
    if key.starts_with('+') || key.starts_with('~') {
        return refuse(
            format!("`{key}` has more than one prefix"),
            "use one of key=value, +key=value (add), ++key=value (add or override), ~key (remove)",
        );
    }
    if key.contains('/') {
        return refuse(
            format!("`{key}` is a config-group path; the runner has no config groups"),
            "choose a plugin with its slot's key, e.g. sampler=heun, and set a parameter with a dotted path, e.g. sampler.steps=18",
        );
    }
    if key.contains('@') {
        return refuse(
            format!("`{key}` names a package (`@`), which the runner does not have"),
            "write the key path where the value goes, e.g. sampler.steps=18",
        );
    }
    if key == "hydra" || key.starts_with("hydra.") {
        return refuse(
            format!("`{key}` is a Hydra setting; the runner is not Hydra"),
            "use the runner's flags instead (`runner sweep --help`: --results, --dry-run, --launcher)",
        );
    }
    if key == "sweep" || key.starts_with("sweep.") {
        return refuse(
            "the `sweep` section is read from the file only; an override of it would be ignored"
                .into(),
            "sweep a key on the command line as key=a,b,c or key=range(a,b), e.g. seed=0,1,2; \
             `~sweep` (or --no-sweep) runs the base config without the file's sweep",
        );
    }
    if let Err(message) = check_key_depth(key) {
        return refuse(
            message,
            "write the key path of a setting, e.g. sampler.steps_per_level=50",
        );
    }
    Ok(())
}
