//! Completing an override as it is typed (`runner __complete WORDS...`, which the scripts
//! call): the words of `runner sweep|show FILE ...` are read like the command line itself
//! (flags, their values, the file, the overrides), and a plugin slot's parameters are those
//! of the plugin chosen for it on the command line (`sampler=heun`) or in the file
//! (`sampler: {kind: heun}`, or swept in its `sweep:`), so `sampler.` offers what that plugin
//! takes. With no plugin known for a slot, every plugin's parameters are offered.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use clap::Command;
use figment::providers::{Format, Toml, Yaml};
use figment::value::Value;
use figment::Figment;

use crate::config::Params;
use crate::registry::{self, Kind};
use crate::trial::Settings;

/// The candidates for the last of `words` (the command line after `runner`, the word being
/// typed last, maybe empty), or `None` where the word is no override (a flag, a flag's value,
/// the file, another subcommand): the script then completes it as before.
pub fn complete(command: &Command, words: &[String]) -> Option<Vec<String>> {
    let (current, before) = words.split_last()?;
    let (sub, rest) = before.split_first()?;
    if !matches!(sub.as_str(), "sweep" | "show") || current.starts_with('-') {
        return None;
    }
    let sub = command.find_subcommand(sub)?;
    let mut positionals = Vec::new();
    let mut skip_value = false;
    for word in rest {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if let Some(flag) = word.strip_prefix("--") {
            skip_value = !flag.contains('=') && takes_value(sub, flag);
        } else if !word.starts_with('-') || word == "-" {
            positionals.push(word.as_str());
        }
    }
    // The value of a flag, or the file itself.
    let (file, overrides) = positionals.split_first().filter(|_| !skip_value)?;
    let chosen = chosen_plugins(Some(Path::new(file)), overrides);
    Some(
        candidates(&chosen)
            .into_iter()
            .filter(|w| w.starts_with(current.as_str()))
            .collect(),
    )
}

/// Whether the long flag `--name` of `command` takes a value.
fn takes_value(command: &Command, name: &str) -> bool {
    command
        .get_arguments()
        .find(|a| a.get_long() == Some(name))
        .is_some_and(|a| a.get_action().takes_values())
}

/// Every plugin slot an override may name, with its kind.
fn slots() -> impl Iterator<Item = (&'static str, Kind)> {
    crate::trial::PLUGIN_SLOTS
        .into_iter()
        .chain([("features", Kind::Features)])
}

/// The plugins chosen for each slot: the command line's choice, or else the file's (its
/// value and every value its `sweep:` gives the slot). Slots with no known choice are absent.
pub fn chosen_plugins(file: Option<&Path>, overrides: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut chosen = file.map(file_choices).unwrap_or_default();
    for word in overrides {
        let Some((key, value)) = word.split_once('=') else {
            continue;
        };
        let key = key.trim_start_matches('+');
        let slot = key.strip_suffix(".kind").unwrap_or(key);
        let Some((slot, kind)) = slots().find(|(s, _)| *s == slot) else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix("choice(")
            .and_then(|v| v.strip_suffix(')'))
            .unwrap_or(value);
        let names: Vec<String> = value.split(',').map(|n| n.trim().to_string()).collect();
        if names
            .iter()
            .all(|n| registry::names(kind).contains(&n.as_str()))
        {
            chosen.insert(slot.to_string(), names);
        } else {
            // A table, a glob or a typo: the choice is not known.
            chosen.remove(slot);
        }
    }
    chosen
}

/// The plugins the experiment file picks per slot (nothing when it cannot be read).
fn file_choices(path: &Path) -> BTreeMap<String, Vec<String>> {
    let figment = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => Figment::from(Toml::file_exact(path)),
        _ => Figment::from(Yaml::file_exact(path)),
    };
    let Ok(root) = figment.extract::<BTreeMap<String, Value>>() else {
        return BTreeMap::new();
    };
    let swept: BTreeMap<String, Value> = root
        .get("sweep")
        .and_then(|s| s.clone().into_dict())
        .map(|d| d.into_iter().collect())
        .unwrap_or_default();
    let mut chosen = BTreeMap::new();
    for (slot, kind) in slots() {
        let mut names = BTreeSet::new();
        if let Some(value) = root.get(slot) {
            names.extend(plugin_name(value));
        }
        for key in [slot.to_string(), format!("{slot}.kind")] {
            if let Some(values) = swept.get(&key).and_then(Value::as_array) {
                names.extend(values.iter().filter_map(plugin_name));
            }
        }
        let known = names
            .iter()
            .all(|n| registry::names(kind).contains(&n.as_str()));
        if !names.is_empty() && known {
            chosen.insert(slot.to_string(), names.into_iter().collect());
        }
    }
    chosen
}

/// `heun` or `{kind: heun, ...}`.
fn plugin_name(value: &Value) -> Option<String> {
    match value {
        Value::String(_, name) => Some(name.clone()),
        Value::Dict(_, dict) => dict.get("kind").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// The settings' words: `seed=`, `train.lr=`, `distill.rounds=`, ...
fn setting_words() -> Vec<String> {
    Settings::docs()
        .iter()
        .map(|p| format!("{}=", p.name))
        .chain(
            crate::train::TrainSettings::docs()
                .iter()
                .map(|p| format!("train.{}=", p.name)),
        )
        .chain(
            crate::trial::DistillSettings::docs()
                .iter()
                .map(|p| format!("distill.{}=", p.name)),
        )
        .collect()
}

/// Every override word (as [`super::override_words`]), each slot's parameters only those of
/// its chosen plugins.
pub fn candidates(chosen: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut words = setting_words();
    for (slot, kind) in slots() {
        let picked = chosen.get(slot);
        for plugin in registry::plugins(kind) {
            words.push(format!("{slot}={}", plugin.name));
            if picked.is_some_and(|names| !names.iter().any(|n| n == plugin.name)) {
                continue;
            }
            let params = (plugin.params)();
            words.extend(params.iter().map(|p| format!("{slot}.{}=", p.name)));
        }
    }
    words.push("eval=".to_string());
    words.sort();
    words.dedup();
    words
}
