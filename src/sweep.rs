//! Experiment → trials. The sweep lives in the file's `sweep:` section or on the command
//! line (Hydra style): each key path maps to a list of values; keys vary as a grid
//! product, except those grouped under `zip:`, which vary together.

use std::path::{Path, PathBuf};

use figment::value::{Dict, Value};
use figment::Figment;

use crate::config::overrides::{check_key_depth, parse_override, OverrideValue, OVERRIDE_SOURCE};
use crate::config::{self, ConfigError, KeyValues};

pub use crate::config::overrides::{MAX_KEY_PARTS, MAX_TRIALS};

/// One axis of the grid: a single key, or several zipped keys that move together.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub keys: Vec<String>,
    /// One entry per position along the axis, holding a value for each key.
    pub values: Vec<Vec<Value>>,
}

impl Axis {
    fn single(key: String, values: Vec<Value>) -> Self {
        Axis {
            keys: vec![key],
            values: values.into_iter().map(|v| vec![v]).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// An experiment file with its overrides applied and its sweep parsed, not yet resolved.
pub struct Experiment {
    pub file: PathBuf,
    /// The file's stem, used as the results folder name unless `name:` is set.
    pub stem: String,
    base: Figment,
    /// The file's own values, before overrides.
    file_root: Dict,
    /// Command-line overrides that set one value (not sweeps).
    fixed: Vec<(String, Value)>,
    pub axes: Vec<Axis>,
}

/// One point of the sweep: the base experiment plus these key-value assignments.
pub struct TrialSpec {
    pub index: usize,
    pub assignments: Vec<(String, Value)>,
    pub figment: Figment,
}

const SWEEP_SOURCE: &str = "sweep value";

impl Experiment {
    /// Loads `file` and applies `overrides` (`key.path=value`, or `key=a,b,c` and
    /// `key=range(1,5)` to sweep), which win over the file.
    pub fn load(file: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let figment = config::load_file(file)?;
        let root = config::root_dict(&figment, file)?;
        let mut axes = match root.get("sweep") {
            Some(sweep) => parse_sweep_section(file, sweep)?,
            None => Vec::new(),
        };

        let mut fixed = Vec::new();
        for text in overrides {
            let (key, values) = parse_override(file, text)?;
            for axis in &mut axes {
                if let Some(pos) = axis.keys.iter().position(|k| *k == key) {
                    axis.keys.remove(pos);
                    for row in &mut axis.values {
                        row.remove(pos);
                    }
                }
            }
            axes.retain(|a| !a.keys.is_empty());
            match values {
                OverrideValue::One(value) => fixed.push((key, value)),
                OverrideValue::Sweep(values) => {
                    axes.retain(|a| a.keys != [key.clone()]);
                    axes.push(Axis::single(key, values));
                }
            }
        }

        if let Some(axis) = seeds_axis(file, &root, &fixed, &axes)? {
            axes.push(axis);
        }
        check_trial_count(file, &axes)?;
        let base = figment.merge(KeyValues {
            name: OVERRIDE_SOURCE.into(),
            entries: fixed.clone(),
        });
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("experiment")
            .to_string();
        Ok(Experiment {
            file: file.to_path_buf(),
            stem,
            base,
            file_root: root,
            fixed,
            axes,
        })
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
        let mut keys = Vec::new();
        for (path, value) in self.fixed.iter().chain(assignments) {
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

    /// The parameters the file itself gives a slot (without `kind`).
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

    /// The file with the command-line overrides applied (no sweep values).
    pub fn base_figment(&self) -> Figment {
        self.base.clone()
    }

    pub fn num_trials(&self) -> usize {
        self.axes.iter().map(Axis::len).product()
    }

    /// The assignments, preceded by `slot.kind = NAME` wherever one sets a parameter under a
    /// slot that the file or an override names by shorthand (`schedule=edm` with a sweep of
    /// `schedule.rho`): merged over a plain name, the table would otherwise lose it.
    fn with_shorthand_kinds(&self, assignments: &[(String, Value)]) -> Vec<(String, Value)> {
        let root = config::root_dict(&self.base, &self.file).unwrap_or_default();
        let mut entries = Vec::new();
        for (key, value) in assignments {
            if let Some((slot, _)) = key.split_once('.') {
                let kind_key = format!("{slot}.kind");
                let named = assignments.iter().any(|(k, _)| *k == kind_key || k == slot);
                if let (Some(Value::String(_, name)), false) = (root.get(slot), named) {
                    if !entries
                        .iter()
                        .any(|(k, _): &(String, Value)| *k == kind_key)
                    {
                        entries.push((kind_key, Value::from(name.clone())));
                    }
                }
            }
            entries.push((key.clone(), value.clone()));
        }
        entries
    }

    /// Every trial, the first axis varying slowest.
    pub fn trials(&self) -> Vec<TrialSpec> {
        let mut specs = Vec::with_capacity(self.num_trials());
        for index in 0..self.num_trials() {
            let mut rest = index;
            let mut positions = vec![0; self.axes.len()];
            for (a, axis) in self.axes.iter().enumerate().rev() {
                positions[a] = rest % axis.len();
                rest /= axis.len();
            }
            let mut assignments = Vec::new();
            for (axis, &pos) in self.axes.iter().zip(&positions) {
                for (key, value) in axis.keys.iter().zip(&axis.values[pos]) {
                    assignments.push((key.clone(), value.clone()));
                }
            }
            let figment = self.base.clone().merge(KeyValues {
                name: SWEEP_SOURCE.into(),
                entries: self.with_shorthand_kinds(&assignments),
            });
            specs.push(TrialSpec {
                index,
                assignments,
                figment,
            });
        }
        specs
    }
}

/// The grid has at most [`MAX_TRIALS`] points (counted without overflow).
fn check_trial_count(file: &Path, axes: &[Axis]) -> Result<(), ConfigError> {
    let mut count: usize = 1;
    for axis in axes {
        count = count.saturating_mul(axis.len());
        if count > MAX_TRIALS {
            let sizes: Vec<String> = axes
                .iter()
                .map(|a| format!("{} ({})", a.keys.join("+"), a.len()))
                .collect();
            return Err(ConfigError::Key {
                origin: file.display().to_string(),
                key: "sweep".into(),
                message: format!(
                    "the sweep has more than {MAX_TRIALS} trials (the limit; each is resolved before the first runs): {}",
                    config::text::shorten(&sizes.join(" x "), 300)
                ),
                fix: "sweep fewer values, or split the sweep into several runs".into(),
            });
        }
    }
    Ok(())
}

/// Most seeds one configuration may be repeated with.
pub const MAX_SEEDS: u64 = 1000;

/// `seeds: N` (N > 1) repeats every configuration with the seeds `seed`, `seed` + 1, …,
/// `seed` + N - 1: a `seed` axis, last so that each configuration's seeds run together (and
/// share nothing: the seed is part of every model's identity).
fn seeds_axis(
    file: &Path,
    root: &Dict,
    fixed: &[(String, Value)],
    axes: &[Axis],
) -> Result<Option<Axis>, ConfigError> {
    let setting = |key: &str| {
        fixed
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .or_else(|| root.get(key).cloned())
    };
    let Some(value) = setting("seeds") else {
        return Ok(None);
    };
    let fix = "set e.g. `seeds: 5` (each configuration runs with 5 seeds)";
    let count = match value.to_u128() {
        Some(n) if (1..=MAX_SEEDS as u128).contains(&n) => n as u64,
        _ => {
            return Err(sweep_error(
                file,
                "seeds",
                format!("must be a whole number from 1 to {MAX_SEEDS}"),
                fix,
            ))
        }
    };
    if count == 1 {
        return Ok(None);
    }
    if axes.iter().any(|a| a.keys.iter().any(|k| k == "seed")) {
        return Err(sweep_error(
            file,
            "seeds",
            "repeats every configuration with several seeds, and `seed` is swept too".into(),
            "sweep `seed` (e.g. `seed=range(0,5)`) or set `seeds: N`, not both",
        ));
    }
    let first = match setting("seed") {
        None => 0,
        Some(v) => match v.to_u128() {
            Some(n) if n + count as u128 <= u64::MAX as u128 => n as u64,
            // The trial's own validation names a bad `seed`.
            _ => return Ok(None),
        },
    };
    let values = (first..first + count).map(Value::from).collect();
    Ok(Some(Axis::single("seed".to_string(), values)))
}

fn sweep_error(file: &Path, key: &str, message: String, fix: &str) -> ConfigError {
    ConfigError::Key {
        origin: file.display().to_string(),
        key: key.to_string(),
        message,
        fix: fix.to_string(),
    }
}

/// Reads `sweep:`: key paths (dotted, or nested tables as TOML writes them) to value lists,
/// and `zip:` (one table, or a list of tables) for keys that vary together.
fn parse_sweep_section(file: &Path, sweep: &Value) -> Result<Vec<Axis>, ConfigError> {
    let Some(dict) = sweep.as_dict() else {
        return Err(sweep_error(
            file,
            "sweep",
            "must be a table of key paths to value lists".into(),
            "write e.g. `sweep: {schedule.num_levels: [1, 3, 10]}`",
        ));
    };
    let mut axes = Vec::new();
    let mut singles = Vec::new();
    flatten_lists(file, "sweep", "", dict, &mut singles, true)?;
    for (key, values) in singles {
        axes.push(Axis::single(key, values));
    }
    if let Some(zip) = dict.get("zip") {
        let groups: Vec<&Value> = match zip {
            Value::Array(_, items) => items.iter().collect(),
            other => vec![other],
        };
        for (g, group) in groups.into_iter().enumerate() {
            let Some(group_dict) = group.as_dict() else {
                return Err(sweep_error(
                    file,
                    "sweep.zip",
                    "must be a table (or a list of tables) of key paths to value lists".into(),
                    "write e.g. `zip: {sampler.steps_per_level: [10, 100], sampler.eps: [1e-4, 1e-5]}`",
                ));
            };
            let mut lists = Vec::new();
            flatten_lists(
                file,
                &format!("sweep.zip[{g}]"),
                "",
                group_dict,
                &mut lists,
                false,
            )?;
            let Some(len) = lists.first().map(|(_, v)| v.len()) else {
                return Err(sweep_error(
                    file,
                    "sweep.zip",
                    "the zip group is empty".into(),
                    "list at least one key, or remove `zip`",
                ));
            };
            if let Some((key, values)) = lists.iter().find(|(_, v)| v.len() != len) {
                return Err(sweep_error(
                    file,
                    &format!("sweep.zip.{key}"),
                    format!(
                        "has {} values but `{}` has {len}; zipped keys vary together",
                        values.len(),
                        lists[0].0
                    ),
                    "give every key of a zip group the same number of values",
                ));
            }
            let keys = lists.iter().map(|(k, _)| k.clone()).collect();
            let values = (0..len)
                .map(|i| lists.iter().map(|(_, v)| v[i].clone()).collect())
                .collect();
            axes.push(Axis { keys, values });
        }
    }
    Ok(axes)
}

fn flatten_lists(
    file: &Path,
    section: &str,
    prefix: &str,
    dict: &Dict,
    out: &mut Vec<(String, Vec<Value>)>,
    top: bool,
) -> Result<(), ConfigError> {
    for (key, value) in dict {
        if top && prefix.is_empty() && key == "zip" {
            continue;
        }
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if let Err(message) = check_key_depth(&path) {
            return Err(sweep_error(
                file,
                &config::text::shorten(&format!("{section}.{path}"), 120),
                message,
                "sweep the key path of a setting, e.g. `sweep: {schedule.num_levels: [1, 3, 10]}`",
            ));
        }
        match value {
            Value::Array(_, items) if items.is_empty() => {
                return Err(sweep_error(
                    file,
                    &format!("{section}.{path}"),
                    "the sweep list is empty".into(),
                    "give at least one value, or remove the key from the sweep",
                ))
            }
            Value::Array(_, items) => out.push((path, items.clone())),
            Value::Dict(_, inner) => flatten_lists(file, section, &path, inner, out, false)?,
            _ => {
                return Err(sweep_error(
                    file,
                    &format!("{section}.{path}"),
                    "a swept key needs a list of values".into(),
                    "write the values as a list, e.g. [1, 3, 10]; to fix one value, set it outside `sweep`",
                ))
            }
        }
    }
    Ok(())
}
