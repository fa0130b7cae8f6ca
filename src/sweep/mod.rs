//! Experiment → trials. The sweep lives in the file's `sweep:` section or on the command
//! line (Hydra style): each key path maps to a list of values; keys vary as a grid
//! product, except those grouped under `zip:`, which vary together.
//!
//! Precedence, lowest first: the plugins' defaults < the file < the file's `sweep:` < the
//! command-line values < the command-line sweeps (and `seeds: N`). A command-line value or
//! sweep on a key replaces every axis of the file's sweep at or below that key (a plugin
//! slot's `kind` counts as the slot: `network=oracle` replaces the file's sweeps of
//! `network.kind` and `network.hidden`). Resolution does not depend on the order of the
//! arguments: within a layer, a table is applied before the keys below it, and a plugin
//! name given to a slot (`sampler=heun`) is its `kind` (`sampler.kind=heun`). The same key
//! given twice is the one exception: the last wins, as in Hydra. See [`precedence`].

mod file;
mod plugins;
mod precedence;
mod tree;

use std::path::PathBuf;

use figment::value::{Dict, Value};
use figment::Figment;

use crate::config::ConfigError;
use tree::Tree;

pub use crate::config::overrides::{MAX_KEY_PARTS, MAX_TRIALS};
pub use file::MAX_SEEDS;
pub use plugins::slot_kind;

/// The source index of the experiment file's own values.
const FILE: usize = 0;
/// The source index of the values of the file's `sweep:` section.
const FILE_SWEEP: usize = 1;

/// Where an axis sits in the precedence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The file's `sweep:` section: above the file, below the command-line values.
    File,
    /// A command-line sweep (or `seeds: N`): above everything else.
    CommandLine,
}

/// One axis of the grid: a single key, or several zipped keys that move together.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub keys: Vec<String>,
    /// One entry per position along the axis, holding a value for each key (`null`: the
    /// default).
    pub values: Vec<Vec<Value>>,
    pub layer: Layer,
    /// Which source its values are attributed to in errors.
    source: usize,
}

impl Axis {
    fn single(key: String, values: Vec<Value>, layer: Layer, source: usize) -> Self {
        Axis {
            keys: vec![key],
            values: values.into_iter().map(|v| vec![v]).collect(),
            layer,
            source,
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// A command-line value: its key path, value (`null`: back to the default) and source.
#[derive(Debug, Clone)]
struct Setting {
    key: String,
    value: Value,
    source: usize,
}

/// An experiment file with its overrides applied and its sweep parsed, not yet resolved.
pub struct Experiment {
    pub file: PathBuf,
    /// The file's stem, used as the results folder name unless `name:` is set.
    pub stem: String,
    /// Names of the sources values come from (index 0: the file).
    sources: Vec<String>,
    /// The file's values after `~key` removals, plugin names given as `{kind: NAME}`.
    file_tree: Tree,
    /// The file's values as the slots read them: also without the keys an override or
    /// sweep value resets to the default (`null`).
    file_root: Dict,
    /// Command-line values, a table before the keys below it.
    fixed: Vec<Setting>,
    pub axes: Vec<Axis>,
    base: Figment,
}

/// One point of the sweep: the base experiment plus these key-value assignments.
pub struct TrialSpec {
    pub index: usize,
    pub assignments: Vec<(String, Value)>,
    pub figment: Figment,
}

/// Parts in a key path: a table's keys are applied before the keys below it.
fn depth(key: &str) -> usize {
    key.split('.').count()
}

fn is_null(value: &Value) -> bool {
    matches!(value, Value::Empty(..))
}

impl Experiment {
    /// The command-line override that reset `key` (or a table above it, e.g. `weighting=null`
    /// for `weighting.kind`) to its default, as typed; `None` when no override did.
    pub fn reset_by(&self, key: &str) -> Option<&str> {
        self.fixed
            .iter()
            .filter(|s| is_null(&s.value))
            .find(|s| key == s.key || key.starts_with(&format!("{}.", s.key)))
            .and_then(|s| self.sources.get(s.source))
            .map(String::as_str)
    }

    /// The plugin name the file itself gives a slot, if any (`{kind: NAME}` or `NAME`).
    pub fn file_kind(&self, slot: &str) -> Option<String> {
        match self.file_root.get(slot)? {
            Value::String(_, name) => Some(name.clone()),
            Value::Dict(_, dict) => dict
                .get("kind")
                .and_then(|k| k.as_str())
                .map(str::to_string),
            _ => None,
        }
    }

    /// The keys of `slot` that the command line or the sweep sets for one trial (its
    /// `assignments`), as opposed to the file's own section for the slot.
    pub fn keys_set_outside_the_file(
        &self,
        slot: &str,
        assignments: &[(String, Value)],
    ) -> Vec<String> {
        let fixed = self.fixed.iter().map(|s| (&s.key, &s.value));
        let mut keys = Vec::new();
        for (path, value) in fixed.chain(assignments.iter().map(|(k, v)| (k, v))) {
            if path == slot {
                if let Value::Dict(_, dict) = value {
                    keys.extend(dict.keys().cloned());
                }
            } else if let Some(rest) = path.strip_prefix(&format!("{slot}.")) {
                keys.push(rest.split('.').next().unwrap_or(rest).to_string());
            }
        }
        keys
    }

    /// The parameters the file itself gives a slot (without `kind`, and without those an
    /// override or sweep value resets to the default).
    pub fn file_params(&self, slot: &str) -> Dict {
        match self.file_root.get(slot) {
            Some(Value::Dict(_, dict)) => dict
                .iter()
                .filter(|(k, _)| k.as_str() != "kind")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => Dict::new(),
        }
    }

    /// The file with the command-line values applied (no sweep values).
    pub fn base_figment(&self) -> Figment {
        self.base.clone()
    }

    pub fn num_trials(&self) -> usize {
        self.axes.iter().map(Axis::len).product()
    }

    /// The assignments of trial `index` (the first axis varying slowest), each with the
    /// layer and source it belongs to.
    fn assignments(&self, index: usize) -> Vec<(String, Value, Layer, usize)> {
        let mut rest = index;
        let mut positions = vec![0; self.axes.len()];
        for (a, axis) in self.axes.iter().enumerate().rev() {
            positions[a] = rest % axis.len();
            rest /= axis.len();
        }
        let mut assignments = Vec::new();
        for (axis, &pos) in self.axes.iter().zip(&positions) {
            for (key, value) in axis.keys.iter().zip(&axis.values[pos]) {
                assignments.push((key.clone(), value.clone(), axis.layer, axis.source));
            }
        }
        assignments
    }

    /// The config of one trial, layer by layer: the file, the file's sweep values, the
    /// command-line values, the command-line sweep values. Within a layer, tables come
    /// before the keys below them; `null` removes a key so that its default applies.
    fn build(&self, assignments: &[(String, Value, Layer, usize)]) -> Result<Tree, ConfigError> {
        let mut tree = self.file_tree.clone();
        let layer = |wanted: Layer| {
            let mut entries: Vec<(&str, &Value, usize)> = assignments
                .iter()
                .filter(|a| a.2 == wanted)
                .map(|a| (a.0.as_str(), &a.1, a.3))
                .collect();
            entries.sort_by_key(|e| depth(e.0));
            entries
        };
        let fixed = self
            .fixed
            .iter()
            .map(|s| (s.key.as_str(), &s.value, s.source));
        let ordered = layer(Layer::File)
            .into_iter()
            .chain(fixed)
            .chain(layer(Layer::CommandLine));
        for (key, value, source) in ordered {
            let outcome = if is_null(value) {
                tree.remove(key).map(|_| ())
            } else {
                tree.set(key, value.clone(), source)
            };
            outcome.map_err(|message| ConfigError::Key {
                origin: format!("{} ({})", self.file.display(), self.sources[source]),
                key: key.to_string(),
                message,
                fix: "use an index within the list, or set the whole list (e.g. data.weights=[0.5, 0.5])"
                    .into(),
            })?;
        }
        Ok(tree)
    }

    fn spec(&self, index: usize) -> Result<TrialSpec, ConfigError> {
        let assignments = self.assignments(index);
        let tree = self.build(&assignments)?;
        Ok(TrialSpec {
            index,
            assignments: assignments.into_iter().map(|(k, v, _, _)| (k, v)).collect(),
            figment: tree.figment(&self.file, &self.sources),
        })
    }

    /// For each axis of the file's own `sweep:` over a key whose base value in the file it
    /// replaces in every trial (and that is none of the sweep's values): the first trial with
    /// that axis left out, so the base value stands. `--no-sweep` runs those values, so they
    /// are checked like any other; the keys are returned with the trial.
    pub fn trials_with_replaced_base_values(
        &self,
    ) -> Result<Vec<(Vec<String>, TrialSpec)>, ConfigError> {
        let mut specs = Vec::new();
        for axis in self.axes.iter().filter(|a| a.layer == Layer::File) {
            let replaced: Vec<String> = axis
                .keys
                .iter()
                .enumerate()
                .filter(|(i, key)| {
                    self.file_tree
                        .get(key)
                        .is_some_and(|base| axis.values.iter().all(|row| row[*i] != base))
                })
                .map(|(_, key)| key.clone())
                .collect();
            if replaced.is_empty() {
                continue;
            }
            let mut assignments = self.assignments(0);
            assignments
                .retain(|(key, _, layer, _)| !(*layer == Layer::File && axis.keys.contains(key)));
            let tree = self.build(&assignments)?;
            let spec = TrialSpec {
                index: 0,
                assignments: assignments.into_iter().map(|(k, v, _, _)| (k, v)).collect(),
                figment: tree.figment(&self.file, &self.sources),
            };
            specs.push((replaced, spec));
        }
        Ok(specs)
    }

    /// Every trial, the first axis varying slowest.
    pub fn trials(&self) -> Vec<TrialSpec> {
        (0..self.num_trials())
            .map(|index| {
                // Every trial was built once when the experiment was loaded.
                self.spec(index)
                    .expect("checked when the experiment was loaded")
            })
            .collect()
    }
}
