//! The sweep in TensorBoard's HParams tab: every swept key becomes a column, with one type
//! for all its values (a key swept over numbers and `auto` is shown as text throughout), and
//! each trial's log starts a session with its values, grouped with its other seeds.

use std::path::Path;

use crate::results::seeds::SEED_KEY;
use crate::results::tensorboard::{write_hparams_experiment, HParam, HParamValue};
use crate::results::TrialRow;
use crate::trial::Trial;

/// The swept keys with their values in sweep order, typed alike per key, from each trial's
/// swept values (`Trial::assignments`, or a row's `axes`).
pub(super) fn swept<'a>(
    trials: impl IntoIterator<Item = &'a [(String, serde_json::Value)]>,
) -> Vec<HParam> {
    let mut keys: Vec<HParam> = Vec::new();
    for assignments in trials {
        for (key, value) in assignments {
            let value = HParamValue::from_json(value);
            match keys.iter_mut().find(|h| h.name == *key) {
                Some(h) if !h.values.contains(&value) => h.values.push(value),
                Some(_) => {}
                None => keys.push(HParam {
                    name: key.clone(),
                    values: vec![value],
                }),
            }
        }
    }
    for key in &mut keys {
        if !same_kind(&key.values) {
            key.values = key.values.iter().map(as_text).collect();
            key.values.dedup();
        }
    }
    keys
}

fn same_kind(values: &[HParamValue]) -> bool {
    values
        .iter()
        .all(|v| std::mem::discriminant(v) == std::mem::discriminant(&values[0]))
}

fn as_text(value: &HParamValue) -> HParamValue {
    match value {
        HParamValue::Number(x) => HParamValue::Text(crate::config::number(*x)),
        HParamValue::Bool(b) => HParamValue::Text(b.to_string()),
        text => text.clone(),
    }
}

/// The trial's session: its values of the swept keys (typed like the key), and its group,
/// the label of its configuration without the seed.
pub(super) fn session(trial: &Trial, swept: &[HParam]) -> (Vec<(String, HParamValue)>, String) {
    let values = trial
        .assignments
        .iter()
        .map(|(key, value)| {
            let value = HParamValue::from_json(value);
            let text = swept
                .iter()
                .find(|h| h.name == *key)
                .is_some_and(|h| h.values.iter().all(|v| matches!(v, HParamValue::Text(_))));
            let value = if text { as_text(&value) } else { value };
            (key.clone(), value)
        })
        .collect();
    let group = trial
        .assignments
        .iter()
        .filter(|(key, _)| key != SEED_KEY)
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",");
    (values, group)
}

/// Writes the experiment summary at the top of the sweep's log folder: the swept keys and
/// every metric the trials report, as `metrics/<name>` scalars.
pub(super) fn write_experiment(
    tb: &Path,
    description: &str,
    swept: &[HParam],
    rows: &[TrialRow],
) -> Result<(), String> {
    let mut tags: Vec<String> = rows
        .iter()
        .flat_map(|r| r.metrics.keys().map(|m| format!("metrics/{m}")))
        .collect();
    tags.push("metrics/nfe".to_string());
    tags.sort();
    tags.dedup();
    // One experiment summary: an earlier run's, directly in the log folder, is replaced.
    if let Ok(entries) = std::fs::read_dir(tb) {
        for entry in entries.flatten() {
            let path = entry.path();
            let ours = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("events.out.tfevents.") && n.contains(".scorelab"));
            if ours && path.is_file() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    write_hparams_experiment(tb, description, swept, &tags).map_err(|e| e.to_string())
}
