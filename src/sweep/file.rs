//! The file's side of a sweep: its `sweep:` section (grid keys and `zip:` groups), `seeds:`
//! as a seed axis, and the cap on the number of trials.

use std::path::Path;

use figment::value::{Dict, Value};

use super::{Axis, Layer, FILE_SWEEP, MAX_TRIALS};
use crate::config::overrides::check_key_depth;
use crate::config::{self, ConfigError};

/// The grid has at most [`MAX_TRIALS`] points (counted without overflow).
pub(super) fn check_trial_count(file: &Path, axes: &[Axis]) -> Result<(), ConfigError> {
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
pub(super) fn seeds_axis(
    file: &Path,
    root: &Dict,
    fixed: &[(String, Value)],
    axes: &[Axis],
    source: usize,
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
    Ok(Some(Axis::single(
        "seed".to_string(),
        values,
        Layer::CommandLine,
        source,
    )))
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
pub(super) fn parse_sweep_section(file: &Path, sweep: &Value) -> Result<Vec<Axis>, ConfigError> {
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
        axes.push(Axis::single(key, values, Layer::File, FILE_SWEEP));
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
            axes.push(Axis {
                keys,
                values,
                layer: Layer::File,
                source: FILE_SWEEP,
            });
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
