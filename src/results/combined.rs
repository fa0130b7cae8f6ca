//! One table for a sweep folder that several invocations wrote into: the trials of all of
//! them, labelled by every key that differs between them (so that no two trials are told
//! apart only by their hashes), each with the invocations that asked for it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::table::TrialRow;
use crate::trial::label_of;

/// A trial of the folder, as the table shows it.
#[derive(Debug, Clone)]
pub struct FolderTrial {
    pub id: String,
    /// The model it sampled (its `train_id`).
    pub model: String,
    /// Its resolved config.
    pub config: Value,
    /// Its label and swept values as the invocation that ran it named them.
    pub label: String,
    pub own_axes: Vec<(String, Value)>,
    /// The invocations that asked for it, in order.
    pub invocations: Vec<usize>,
    /// Its result, when it has one.
    pub row: Option<TrialRow>,
}

impl FolderTrial {
    /// `1` or `1,3`: the invocations that asked for it.
    pub fn invocation_text(&self) -> String {
        self.invocations
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Every leaf of a config as `a.b.c` → value (lists are leaves).
pub fn flatten(value: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(inner, &path, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// The value at a dotted key path (`train.lr`, `eval.0.bandwidth`), if the config has one.
pub fn lookup<'a>(config: &'a Value, key: &str) -> Option<&'a Value> {
    key.split('.').try_fold(config, |value, part| match value {
        Value::Object(map) => map.get(part),
        Value::Array(items) => items.get(part.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Leaf keys whose value is not the same in every config (or missing from some).
fn differing_leaves(configs: &[&Value]) -> Vec<String> {
    let flat: Vec<BTreeMap<String, Value>> = configs
        .iter()
        .map(|c| {
            let mut out = BTreeMap::new();
            flatten(c, "", &mut out);
            out
        })
        .collect();
    let mut keys: Vec<&String> = flat.iter().flat_map(|f| f.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| {
            let first = flat[0].get(*key);
            flat.iter().any(|f| f.get(*key) != first)
        })
        .cloned()
        .collect()
}

/// Whether a difference at `leaf` is already shown by the axis `key`: the key itself, a
/// table above it (`sampler` shows `sampler.steps`), or the slot's plugin (`sampler.kind`
/// shows every parameter of `sampler`, which come with the plugin).
fn covers(key: &str, leaf: &str) -> bool {
    let slot = key.strip_suffix(".kind");
    leaf == key
        || leaf.starts_with(&format!("{key}."))
        || slot.is_some_and(|slot| leaf.starts_with(&format!("{slot}.")))
}

/// The table's axes: the keys the invocations swept (those of `first`, the current
/// invocation, in its order, then any other trial's), then every other key whose value
/// differs between the trials, a switched plugin standing for its parameters.
pub fn axis_keys(trials: &[FolderTrial], first: &[String]) -> Vec<String> {
    let mut keys: Vec<String> = first.to_vec();
    for trial in trials {
        for (key, _) in &trial.own_axes {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
    }
    let configs: Vec<&Value> = trials.iter().map(|t| &t.config).collect();
    if configs.is_empty() {
        return keys;
    }
    let leaves = differing_leaves(&configs);
    for leaf in &leaves {
        let shown_by_plugin = leaves
            .iter()
            .any(|other| other != leaf && other.ends_with(".kind") && covers(other, leaf));
        // A section only some trials have (`distill` when an axis switches it on) differs by
        // its presence, which that axis shows, when the trials that have it agree.
        let section = leaf.split('.').next().unwrap_or_default();
        let present: Vec<&Value> = configs.iter().filter_map(|c| lookup(c, leaf)).collect();
        let shown_by_section = present.len() < configs.len()
            && present.windows(2).all(|w| w[0] == w[1])
            && configs.iter().any(|c| c.get(section).is_none())
            && keys.iter().any(|k| k.split('.').next() == Some(section));
        if !shown_by_plugin && !shown_by_section && !keys.iter().any(|k| covers(k, leaf)) {
            keys.push(leaf.clone());
        }
    }
    keys
}

/// The trial's values of the axes: its own swept values where it has them (as written in its
/// sweep), else the value in its config; keys its config lacks are left out.
fn values_of(trial: &FolderTrial, keys: &[String]) -> Vec<(String, Value)> {
    keys.iter()
        .filter_map(|key| {
            let own = trial.own_axes.iter().find(|(k, _)| k == key);
            let value = own
                .map(|(_, v)| v.clone())
                .or_else(|| lookup(&trial.config, key).cloned())?;
            Some((key.clone(), value))
        })
        .collect()
}

/// Gives each trial its values of `keys` and a label naming them (a trial whose values are
/// the ones its own sweep named keeps its label), and puts them, with the invocations, on
/// its row.
pub fn relabel(trials: &mut [FolderTrial], keys: &[String]) {
    for trial in trials.iter_mut() {
        let axes = values_of(trial, keys);
        if axes != trial.own_axes {
            trial.label = label_of(&axes);
        }
        let invocation = trial.invocation_text();
        if let Some(row) = trial.row.as_mut() {
            row.axes = axes;
            row.label = trial.label.clone();
            row.invocation = invocation;
        }
    }
}
