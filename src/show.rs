//! `runner show FILE [overrides]`: what a sweep would run, and why. The base config (the
//! first trial's, every default filled in) with the source of each value: a plugin's
//! default, the experiment file, its `sweep:` or a command-line override; then one line
//! per trial with only the keys that vary. `--dry-run` still prints every trial in full.

use std::collections::BTreeMap;
use std::fmt::Write;

use figment::Figment;
use serde_json::Value;

use crate::sweep::{Experiment, Layer};
use crate::trial::{display_value, Trial};

/// Where a value of the resolved config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provenance {
    /// No source set it: the plugin's or the setting's default.
    Default,
    /// A source named by the experiment: `experiment file`, a command-line override as typed,
    /// or a sweep value.
    Source(String),
}

/// Every leaf of `value` as (dotted key path, value); lists of tables by index
/// (`eval.0.kind`), other lists whole.
pub fn leaves(value: &Value) -> Vec<(String, Value)> {
    fn walk(prefix: &str, value: &Value, out: &mut Vec<(String, Value)>) {
        let join = |key: &str| {
            if prefix.is_empty() {
                key.to_string()
            } else {
                format!("{prefix}.{key}")
            }
        };
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, inner) in map {
                    walk(&join(key), inner, out);
                }
            }
            Value::Array(items) if items.iter().any(Value::is_object) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(&join(&i.to_string()), inner, out);
                }
            }
            other => out.push((prefix.to_string(), other.clone())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

/// The source of `key` in a trial's figment: the source that set it, or that set the plugin
/// name it stands for (`schedule: edm` sets `schedule.kind`; `eval: [fd, {kind: mmd, ...}]`
/// sets `eval.0.kind` and what the table gives `eval.1`); else the default.
pub fn provenance(figment: &Figment, key: &str) -> Provenance {
    let source = |path: &str| {
        figment
            .find_metadata(path)
            .filter(|_| figment.find_value(path).is_ok())
            .map(|m| Provenance::Source(m.name.to_string()))
    };
    if let Some(found) = source(key) {
        return found;
    }
    let parts: Vec<&str> = key.split('.').collect();
    // A plugin slot named by a string, e.g. `schedule: edm`, for `schedule.kind`.
    if parts.len() == 2 && parts[1] == "kind" {
        if let Ok(figment::value::Value::String(..)) = figment.find_value(parts[0]) {
            return source(parts[0]).unwrap_or(Provenance::Default);
        }
    }
    // An element of a list of plugins (`eval`): a name sets its `kind`, a table its keys.
    if let (3, Ok(index)) = (
        parts.len(),
        parts.get(1).map_or(Ok(0), |i| i.parse::<usize>()),
    ) {
        if let Ok(figment::value::Value::Array(_, items)) = figment.find_value(parts[0]) {
            let set = match items.get(index) {
                Some(figment::value::Value::String(..)) => parts[2] == "kind",
                Some(figment::value::Value::Dict(_, dict)) => dict.contains_key(parts[2]),
                _ => false,
            };
            if set {
                return source(parts[0]).unwrap_or(Provenance::Default);
            }
        }
    }
    Provenance::Default
}

/// The report `runner show` prints.
pub fn describe(experiment: &Experiment, trials: &[Trial]) -> String {
    let mut text = String::new();
    let Some(first) = trials.first() else {
        return "no trials\n".to_string();
    };
    let specs = experiment.trials();
    let figment = &specs[first.index].figment;
    let swept: BTreeMap<&str, String> = experiment
        .axes
        .iter()
        .flat_map(|axis| {
            axis.keys.iter().enumerate().map(move |(k, key)| {
                let values: Vec<String> = axis
                    .values
                    .iter()
                    .map(|row| display_value(&crate::config::to_json(&row[k])))
                    .collect();
                let place = match axis.layer {
                    Layer::File => "in the file",
                    Layer::CommandLine => "on the command line",
                };
                (
                    key.as_str(),
                    format!("swept {place}: {}", values.join(", ")),
                )
            })
        })
        .collect();
    let _ = writeln!(
        text,
        "{}: {} trial(s); the base config (trial 1, every default filled in) and where each value comes from:",
        experiment.file.display(),
        trials.len()
    );
    let rows: Vec<(String, String, String)> = leaves(&first.resolved)
        .into_iter()
        .map(|(key, value)| {
            let source = match swept.get(key.as_str()) {
                Some(swept) => swept.clone(),
                None => match (provenance(figment, &key), experiment.reset_by(&key)) {
                    (Provenance::Default, Some(reset)) => format!("default ({reset})"),
                    (Provenance::Default, None) => "default".to_string(),
                    (Provenance::Source(name), _) => name,
                },
            };
            (key, display_value(&value), source)
        })
        .collect();
    let key_width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let value_width = rows
        .iter()
        .map(|r| r.1.chars().count().min(40))
        .max()
        .unwrap_or(0);
    for (key, value, source) in &rows {
        let _ = writeln!(text, "  {key:<key_width$}  {value:<value_width$}  {source}");
    }
    let _ = writeln!(text, "trials (the keys that vary):");
    let index_width = trials.len().to_string().len();
    for trial in trials {
        let label = if trial.label.is_empty() {
            "(the base config)"
        } else {
            &trial.label
        };
        let _ = writeln!(text, "  {:>index_width$}  {label}", trial.index + 1);
    }
    text
}
