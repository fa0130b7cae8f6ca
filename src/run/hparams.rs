//! The sweep folder in TensorBoard's HParams tab, written with its tables so that both show
//! the same configurations: the hparams are the keys whose values differ between the
//! folder's trials (the tables' axes), each plugin table opened into its kind and
//! parameters; every key has one type for all its values (a key swept over numbers and
//! `auto` is text throughout). Each trial's run holds one session with its values, its
//! group (its configuration without the seed) and its status, a failed one with its cause.

use std::path::Path;

use serde_json::Value;

use crate::results::opened::open_rows;
use crate::results::seeds::SEED_KEY;
use crate::results::tensorboard::{
    write_hparams_experiment, write_hparams_session, HParam, HParamValue,
};
use crate::results::TrialRow;

/// The keys with their values in order of first appearance, typed alike per key.
fn hparams_of(rows: &[Vec<(String, Value)>]) -> Vec<HParam> {
    let mut keys: Vec<HParam> = Vec::new();
    for (key, value) in rows.iter().flatten() {
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

/// A trial's session: its values of the hparams (typed like the key), and its group, the
/// label of its configuration without the seed.
fn session(axes: &[(String, Value)], hparams: &[HParam]) -> (Vec<(String, HParamValue)>, String) {
    let values = axes
        .iter()
        .map(|(key, value)| {
            let value = HParamValue::from_json(value);
            let text = hparams
                .iter()
                .find(|h| h.name == *key)
                .is_some_and(|h| h.values.iter().all(|v| matches!(v, HParamValue::Text(_))));
            let value = if text { as_text(&value) } else { value };
            (key.clone(), value)
        })
        .collect();
    let group = axes
        .iter()
        .filter(|(key, _)| key != SEED_KEY)
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",");
    (values, group)
}

/// Writes the HParams experiment at the top of the sweep's log folder `tb` (the hparams and
/// every metric the rows report, as `metrics/<name>` scalars) and each row's session in its
/// trial's run.
pub(super) fn write_experiment(
    tb: &Path,
    description: &str,
    rows: &[TrialRow],
) -> Result<(), String> {
    let axes: Vec<&[(String, Value)]> = rows.iter().map(|r| r.axes.as_slice()).collect();
    let opened = open_rows(&axes);
    let hparams = hparams_of(&opened);
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
    write_hparams_experiment(tb, description, &hparams, &tags).map_err(|e| e.to_string())?;
    for (row, axes) in rows.iter().zip(&opened) {
        let (values, group) = session(axes, &hparams);
        let failure = row.failed().then_some(row.message.as_str());
        write_hparams_session(&tb.join(&row.trial), (&values, &group), failure)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Writes a trial's session as soon as it is saved, from its own swept values, so that the
/// HParams tab shows a long sweep's finished trials; the folder's tables replace it with
/// the session of the folder's hparams.
pub(super) fn write_own_session(run: &Path, row: &TrialRow) -> Result<(), String> {
    let opened = open_rows(&[row.axes.as_slice()]);
    let hparams = hparams_of(&opened);
    let (values, group) = session(&opened[0], &hparams);
    let failure = row.failed().then_some(row.message.as_str());
    write_hparams_session(run, (&values, &group), failure).map_err(|e| e.to_string())
}
