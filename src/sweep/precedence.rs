//! Loading an experiment with its overrides: the precedence rule, applied once.
//!
//! 1. `~key` / `~key=value` remove a key from the file (and the file's sweeps of it).
//! 2. A plugin name given to a key that holds a table (`sampler=heun` where the file has
//!    `sampler: {kind: ..., ...}` or another override sets `sampler.eps`) is that table's
//!    `kind`, in the file, its sweep and on the command line alike; so switching a slot's
//!    plugin and setting its parameters commute.
//! 3. `+key=value` must add a key the file does not set; `++key=value` is `key=value`.
//! 4. A command-line value or sweep on a key replaces the file's sweep axes at or below it
//!    (`x.kind` counting as `x`); the same key given twice: the last wins (as in Hydra).
//! 5. Each trial is then built as file < file's sweep < command-line values < command-line
//!    sweeps (see `Experiment::build`).

use std::collections::BTreeSet;
use std::path::Path;

use figment::value::{Dict, Value};

use super::file::{check_trial_count, parse_sweep_section, seeds_axis};
use super::plugins::{expand_glob, slot_kind};
use super::tree::{Node, Tree};
use super::{depth, is_null, Axis, Experiment, Layer, Setting, FILE};
use crate::config::overrides::{
    is_multirun_flag, override_error, parse_override, Form, Override, OverrideValue,
    OVERRIDE_SOURCE,
};
use crate::config::{self, text::shorten, ConfigError};

/// `x.kind` stands for its slot `x`: both choose the plugin.
fn canonical(key: &str) -> &str {
    match key.strip_suffix(".kind") {
        Some(slot) if !slot.contains('.') => slot,
        _ => key,
    }
}

/// `key` is `at` or below it.
fn at_or_below(key: &str, at: &str) -> bool {
    key == at || key.starts_with(&format!("{at}."))
}

/// Top-level keys whose plugin is named by a `kind`: the plugin slots, tables of the file
/// that have a `kind`, and keys whose `kind` the sweep or an override sets. A name given to
/// one of them (`sampler=heun`) is its `kind` (`sampler.kind=heun`).
fn kinded_keys(tree: &Tree, axes: &[Axis], overrides: &[Override]) -> BTreeSet<String> {
    let mut kinded: BTreeSet<String> = tree
        .root
        .iter()
        .filter(|(key, node)| {
            slot_kind(key).is_some()
                || matches!(node, Node::Table { entries, .. } if entries.contains_key("kind"))
        })
        .map(|(k, _)| k.clone())
        .collect();
    let keys = axes
        .iter()
        .flat_map(|a| a.keys.iter())
        .chain(overrides.iter().map(|o| &o.key));
    for key in keys {
        let top = key.split('.').next().unwrap_or(key);
        if slot_kind(top).is_some() || key.strip_suffix(".kind") == Some(top) {
            kinded.insert(top.to_string());
        }
    }
    kinded
}

/// A plugin name given to a kinded key is its `kind`: the key and values to use.
fn as_kind(kinded: &BTreeSet<String>, key: &str, values: Vec<Value>) -> (String, Vec<Value>) {
    if !kinded.contains(key) {
        return (key.to_string(), values);
    }
    if values.iter().all(|v| matches!(v, Value::String(..))) {
        return (format!("{key}.kind"), values);
    }
    let values = values
        .into_iter()
        .map(|v| match v {
            Value::String(..) => Value::from(Dict::from([("kind".to_string(), v)])),
            other => other,
        })
        .collect();
    (key.to_string(), values)
}

/// Removes `keys` from the file's sweep axes (zipped keys leave their group; a group left
/// with repeated rows keeps one of each; an axis left with no key goes).
fn drop_file_axes(axes: &mut Vec<Axis>, dropped: impl Fn(&str) -> bool) {
    for axis in axes.iter_mut().filter(|a| a.layer == Layer::File) {
        let keep: Vec<bool> = axis.keys.iter().map(|k| !dropped(k)).collect();
        if keep.iter().all(|k| *k) {
            continue;
        }
        let mut i = 0;
        axis.keys.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        let mut rows: Vec<Vec<Value>> = Vec::new();
        for row in std::mem::take(&mut axis.values) {
            let row: Vec<Value> = row
                .into_iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| v)
                .collect();
            if !rows.contains(&row) {
                rows.push(row);
            }
        }
        axis.values = rows;
    }
    axes.retain(|a| !a.keys.is_empty());
}

/// A value as messages show it.
fn shown(value: &Value) -> String {
    shorten(&config::to_json(value).to_string(), 80)
}

/// `~key` / `~key=value`: removes the key from the file and from the file's sweep.
fn remove_from_file(
    file: &Path,
    o: &Override,
    tree: &mut Tree,
    axes: &mut Vec<Axis>,
) -> Result<(), ConfigError> {
    let error = |message: &str, fix: &str| override_error(file, &o.text, message, fix);
    let key = o.key.as_str();
    let swept = axes
        .iter()
        .any(|a| a.keys.iter().any(|k| at_or_below(k, key)));
    let current = tree.get(key);
    if let (OverrideValue::One(expected), Some(current)) = (&o.value, &current) {
        if config::to_json(expected) != config::to_json(current) {
            return Err(error(
                &format!(
                    "the file sets `{key}` to {}, not {}",
                    shown(current),
                    shown(expected)
                ),
                &format!("write ~{key} to remove it whatever its value"),
            ));
        }
    }
    if current.is_none() && !swept {
        return Err(error(
            &format!("the file does not set `{key}`, so there is nothing to remove (its default already applies)"),
            &format!("drop the override, or write {key}=VALUE to set it"),
        ));
    }
    tree.remove(key).map_err(|m| {
        error(
            &m,
            "give an index within the list, or remove the whole list",
        )
    })?;
    drop_file_axes(axes, |k| at_or_below(k, key));
    Ok(())
}

impl Experiment {
    /// Loads `file` and applies `overrides` (Hydra's grammar: `key.path=value`, `key=a,b,c`,
    /// `key=range(...)`, `choice(...)`, `glob(...)`, `key=null`, `~key`, `+key=value`,
    /// `++key=value`; `-m` / `--multirun` are accepted and change nothing), which win over
    /// the file and its sweep.
    pub fn load(file: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let figment = config::load_file(file)?;
        let root = config::root_dict(&figment, file)?;
        // `~sweep` (`--no-sweep`): the file's base config, without its sweep section.
        let no_sweep = overrides.iter().any(|t| t == "~sweep");
        let mut axes = match root.get("sweep") {
            Some(sweep) if !no_sweep => parse_sweep_section(file, sweep)?,
            _ => Vec::new(),
        };
        let file_values: Dict = root
            .iter()
            .filter(|(k, _)| k.as_str() != "sweep")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut tree = Tree::from_dict(&file_values, FILE);
        let mut sources = vec![
            "experiment file".to_string(),
            "sweep value in the file's `sweep:`".to_string(),
        ];

        let mut parsed = Vec::new();
        for text in overrides
            .iter()
            .filter(|t| !is_multirun_flag(t) && t.as_str() != "~sweep")
        {
            parsed.push(parse_override(file, text)?);
        }
        for o in parsed.iter().filter(|o| o.form == Form::Remove) {
            remove_from_file(file, o, &mut tree, &mut axes)?;
        }

        // Plugin names given to kinded keys are their `kind`, in the file and its sweep too.
        let kinded = kinded_keys(&tree, &axes, &parsed);
        for key in &kinded {
            if let Some(name @ Value::String(..)) = tree.get(key) {
                tree.remove(key).ok();
                tree.set(&format!("{key}.kind"), name, FILE).ok();
            }
        }
        for axis in axes.iter_mut() {
            if let [key] = axis.keys.as_slice() {
                let values = axis.values.iter().map(|row| row[0].clone()).collect();
                let (key, values) = as_kind(&kinded, key, values);
                axis.keys = vec![key];
                axis.values = values.into_iter().map(|v| vec![v]).collect();
            } else {
                for (i, key) in axis.keys.iter_mut().enumerate() {
                    let values = axis.values.iter().map(|row| row[i].clone()).collect();
                    let (new_key, values) = as_kind(&kinded, key, values);
                    *key = new_key;
                    for (row, value) in axis.values.iter_mut().zip(values) {
                        row[i] = value;
                    }
                }
            }
        }

        // The command line: values and sweeps, each its own source.
        let mut entries: Vec<(String, OverrideValue, usize)> = Vec::new();
        for o in parsed.iter().filter(|o| o.form != Form::Remove) {
            let text = shorten(&o.text, 120);
            let (key, value) = match &o.value {
                OverrideValue::One(v) => {
                    let (key, mut values) = as_kind(&kinded, &o.key, vec![v.clone()]);
                    (key, OverrideValue::One(values.remove(0)))
                }
                OverrideValue::Sweep(values) => {
                    let (key, values) = as_kind(&kinded, &o.key, values.clone());
                    (key, OverrideValue::Sweep(values))
                }
                OverrideValue::Glob { include, exclude } => {
                    let (key, values) = expand_glob(file, &o.text, &o.key, include, exclude)?;
                    (key, OverrideValue::Sweep(values))
                }
                OverrideValue::Nothing => continue,
            };
            if o.form == Form::Add {
                let in_sweep = axes
                    .iter()
                    .flat_map(|a| a.keys.iter())
                    .any(|k| at_or_below(k, &key) || at_or_below(&key, k));
                if let Some(current) = tree.get(&key) {
                    return Err(override_error(
                        file,
                        &o.text,
                        &format!(
                            "`+` adds a key the file does not set, but the file sets `{}` (to {})",
                            o.key,
                            shown(&current)
                        ),
                        &format!(
                            "write {0}=... to override it, or ++{0}=... to add or override",
                            o.key
                        ),
                    ));
                }
                if in_sweep {
                    return Err(override_error(
                        file,
                        &o.text,
                        &format!("`+` adds a key the file does not set, but the file's `sweep:` varies `{}`", o.key),
                        &format!("write {0}=... to override the sweep, or ++{0}=...", o.key),
                    ));
                }
            }
            let name = match &value {
                OverrideValue::Sweep(_) => format!("sweep value of {OVERRIDE_SOURCE} `{text}`"),
                _ => format!("{OVERRIDE_SOURCE} `{text}`"),
            };
            // The same key twice: the last wins (as in Hydra).
            entries.retain(|(k, _, _)| *k != key);
            entries.push((key, value, sources.len()));
            sources.push(name);
        }
        for (key, _, _) in &entries {
            let key = canonical(key);
            drop_file_axes(&mut axes, |k| at_or_below(canonical(k), key));
        }

        let mut fixed = Vec::new();
        for (key, value, source) in entries {
            match value {
                OverrideValue::One(value) => fixed.push(Setting { key, value, source }),
                OverrideValue::Sweep(values) => {
                    axes.push(Axis::single(key, values, Layer::CommandLine, source))
                }
                _ => {}
            }
        }
        fixed.sort_by_key(|s| depth(&s.key));

        // What the slots read as the file's own: without the keys reset to their default.
        let mut file_root_tree = tree.clone();
        let reset = fixed
            .iter()
            .filter(|s| is_null(&s.value))
            .map(|s| &s.key)
            .chain(axes.iter().flat_map(|a| {
                a.keys
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| a.values.iter().any(|row| is_null(&row[*i])))
                    .map(|(_, k)| k)
            }));
        for key in reset {
            file_root_tree.remove(key).ok();
        }
        let file_root = file_root_tree.to_dict();

        let pairs: Vec<(String, Value)> = fixed
            .iter()
            .filter(|s| !is_null(&s.value))
            .map(|s| (s.key.clone(), s.value.clone()))
            .collect();
        if let Some(axis) = seeds_axis(file, &file_root, &pairs, &axes, sources.len())? {
            sources.push("sweep value of `seeds`".to_string());
            axes.push(axis);
        }
        check_trial_count(file, &axes)?;

        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("experiment")
            .to_string();
        let mut experiment = Experiment {
            file: file.to_path_buf(),
            stem,
            sources,
            file_tree: tree,
            file_root,
            fixed,
            axes,
            base: figment::Figment::new(),
        };
        let base = experiment.build(&[])?;
        experiment.base = base.figment(&experiment.file, &experiment.sources);
        // Every trial builds (a list index can be out of range in one of them only).
        for index in 0..experiment.num_trials() {
            experiment.build(&experiment.assignments(index))?;
        }
        Ok(experiment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_counts_as_its_slot() {
        assert_eq!(canonical("network.kind"), "network");
        assert_eq!(canonical("network.hidden"), "network.hidden");
        assert_eq!(canonical("a.b.kind"), "a.b.kind");
        assert!(at_or_below("network.kind", "network"));
        assert!(!at_or_below("networks", "network"));
    }
}
