//! Command-line overrides (`key.path=value`, `key=a,b,c`, `key=range(a,b)`) parsed into a key
//! path and one value or a list to sweep, with errors naming the experiment file and the
//! override as typed.

use std::path::Path;

use figment::value::Value;

use super::{parse_scalar, ConfigError};

pub const OVERRIDE_SOURCE: &str = "command-line override";

/// What an override sets: one value, or a list of values to sweep.
pub enum OverrideValue {
    One(Value),
    Sweep(Vec<Value>),
}

/// Most trials one sweep may have: each is resolved (its data drawn) before the first runs.
pub const MAX_TRIALS: usize = 100_000;
/// Most parts of a key path (`sweep.zip.sampler.eps` has 4): deeper paths build tables
/// nested that deep, and no experiment key is more than a few levels down.
pub const MAX_KEY_PARTS: usize = 16;

/// An error in one command-line override, naming the experiment file it applies to and the
/// override as typed.
fn override_error(file: &Path, text: &str, message: &str, fix: &str) -> ConfigError {
    let text = super::text::shorten(text, 120);
    ConfigError::Key {
        origin: format!("{} ({OVERRIDE_SOURCE} `{text}`)", file.display()),
        key: text
            .split('=')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
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

pub fn parse_override(file: &Path, text: &str) -> Result<(String, OverrideValue), ConfigError> {
    let override_error =
        |text: &str, message: &str, fix: &str| override_error(file, text, message, fix);
    let Some((key, raw)) = text.split_once('=') else {
        return Err(override_error(
            text,
            "an override needs `=`",
            "write key.path=value, e.g. sampler.steps_per_level=50",
        ));
    };
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(override_error(
            text,
            "the key path is empty or has an empty part",
            "write key.path=value",
        ));
    }
    if key == "sweep" || key.starts_with("sweep.") {
        return Err(override_error(
            text,
            "the `sweep` section is read from the file only; an override of it would be ignored",
            "sweep a key on the command line as key=a,b,c or key=range(a,b), e.g. seed=0,1,2",
        ));
    }
    if let Err(message) = check_key_depth(key) {
        return Err(override_error(
            text,
            &message,
            "write the key path of a setting, e.g. sampler.steps_per_level=50",
        ));
    }
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(override_error(
            text,
            "the value is empty",
            "give a value after `=`, or a,b,c to sweep",
        ));
    }
    if let Some(values) = parse_range(raw) {
        let values = values.map_err(|m| {
            override_error(
                text,
                &m,
                "write range(start,stop) or range(start,stop,step) with integers, stop exclusive",
            )
        })?;
        if values.is_empty() {
            return Err(override_error(
                text,
                "the range is empty",
                "make stop larger than start",
            ));
        }
        return Ok((key.to_string(), OverrideValue::Sweep(values)));
    }
    let parts = split_top_level(raw);
    if parts.len() > 1 {
        if parts.iter().any(|p| p.trim().is_empty()) {
            return Err(override_error(
                text,
                "the sweep list has an empty value",
                "write key=a,b,c with no empty entries",
            ));
        }
        let values = parts.iter().map(|p| parse_scalar(p.trim())).collect();
        return Ok((key.to_string(), OverrideValue::Sweep(values)));
    }
    Ok((key.to_string(), OverrideValue::One(parse_scalar(raw))))
}

/// `range(a,b)` or `range(a,b,step)`, stop exclusive as in Python and Hydra; at most
/// [`MAX_TRIALS`] values (counted before any is made).
fn parse_range(raw: &str) -> Option<Result<Vec<Value>, String>> {
    let inner = raw.strip_prefix("range(")?.strip_suffix(')')?;
    let numbers: Result<Vec<i64>, _> = inner.split(',').map(|p| p.trim().parse::<i64>()).collect();
    let (start, stop, step) = match numbers.as_deref() {
        Ok([start, stop]) => (*start, *stop, 1),
        Ok([_, _, 0]) => return Some(Err("range step is 0".into())),
        Ok([start, stop, step]) => (*start, *stop, *step),
        _ => return Some(Err(format!("cannot read `{raw}` as a range"))),
    };
    // In i128, so that no bound or step overflows.
    let (start, stop, step) = (start as i128, stop as i128, step as i128);
    let count = if step > 0 {
        (stop - start + step - 1).div_euclid(step).max(0)
    } else {
        (start - stop - step - 1).div_euclid(-step).max(0)
    };
    if count > MAX_TRIALS as i128 {
        return Some(Err(format!(
            "`{raw}` has {count} values, more than the {MAX_TRIALS} trials a sweep may have"
        )));
    }
    Some(Ok((0..count)
        .map(|i| Value::from((start + i * step) as i64))
        .collect()))
}

/// Splits on commas that are not inside brackets, braces or quotes.
fn split_top_level(raw: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut current = String::new();
    for c in raw.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{' | '(') => depth += 1,
            (None, ']' | '}' | ')') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}
