//! The swept values as charts see them: each row's value of each swept key (the seed aside)
//! as a label, plugin tables opened into their kind and settings (`heun grid=karras
//! steps=10`, through `results::opened`), and the rows grouped by the values of some keys.

use serde_json::Value;

use crate::results::opened::open_rows;
use crate::results::seeds::SEED_KEY;
use crate::results::TrialRow;
use crate::trial::{display_value, short_key};

/// The swept keys and every row's label for each.
pub(super) struct Swept<'a> {
    pub rows: &'a [TrialRow],
    /// The swept keys other than the seed, in the sweep's order.
    pub keys: Vec<String>,
    /// Whether the seed is swept: rows that differ only in it are one configuration.
    pub seeded: bool,
    /// `labels[row][key]`: the row's value of the key as text (`None` where it has none).
    labels: Vec<Vec<Option<String>>>,
    /// `numbers[row][key]`: the value where it is a number.
    numbers: Vec<Vec<Option<f64>>>,
}

impl<'a> Swept<'a> {
    pub fn new(axis_keys: &[String], rows: &'a [TrialRow]) -> Self {
        let keys: Vec<String> = axis_keys
            .iter()
            .filter(|k| *k != SEED_KEY)
            .cloned()
            .collect();
        let axes: Vec<&[(String, Value)]> = rows.iter().map(|r| r.axes.as_slice()).collect();
        let opened = open_rows(&axes);
        let value =
            |r: usize, key: &str| rows[r].axes.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let labels = (0..rows.len())
            .map(|r| {
                keys.iter()
                    .map(|k| value(r, k).map(|_| label(k, &opened[r])))
                    .collect()
            })
            .collect();
        let numbers = (0..rows.len())
            .map(|r| {
                keys.iter()
                    .map(|k| value(r, k).and_then(Value::as_f64))
                    .collect()
            })
            .collect();
        Swept {
            rows,
            seeded: axis_keys.iter().any(|k| k == SEED_KEY),
            keys,
            labels,
            numbers,
        }
    }

    pub fn label(&self, row: usize, key: usize) -> Option<&str> {
        self.labels[row][key].as_deref()
    }

    pub fn number(&self, row: usize, key: usize) -> Option<f64> {
        self.numbers[row][key]
    }

    /// Whether every row with a value of `key` has a number there.
    pub fn numeric(&self, key: usize) -> bool {
        (0..self.rows.len()).all(|r| self.label(r, key).is_none() || self.number(r, key).is_some())
    }

    /// The distinct labels of `key`, in first-seen order.
    pub fn categories(&self, key: usize) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for r in 0..self.rows.len() {
            if let Some(l) = self.label(r, key) {
                if !seen.iter().any(|s| s == l) {
                    seen.push(l.to_owned());
                }
            }
        }
        seen
    }

    /// `short=label, …` for the row's values of `keys` (empty when there are none).
    pub fn describe(&self, row: usize, keys: &[usize]) -> String {
        keys.iter()
            .filter_map(|&k| {
                let l = self.label(row, k)?;
                Some(format!("{}={l}", short_key(&self.keys[k])))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rows grouped by their description over `keys`, groups and members in first-seen order.
    pub fn groups(&self, keys: &[usize]) -> Vec<(String, Vec<usize>)> {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for r in 0..self.rows.len() {
            let name = self.describe(r, keys);
            match groups.iter_mut().find(|(n, _)| *n == name) {
                Some((_, members)) => members.push(r),
                None => groups.push((name, vec![r])),
            }
        }
        groups
    }

    /// A row's value of `metric` (`nfe` is the row's count of network evaluations).
    pub fn value(&self, row: usize, metric: &str) -> f64 {
        let row = &self.rows[row];
        if metric == "nfe" {
            row.nfe as f64
        } else {
            row.metrics.get(metric).copied().unwrap_or(f64::NAN)
        }
    }
}

/// A key's value in one opened row: the plain value, or a plugin table as its kind followed
/// by its settings (`heun grid=karras steps=10`), nested tables' settings by their path.
fn label(key: &str, opened: &[(String, Value)]) -> String {
    let prefix = format!("{key}.");
    let mut kind = None;
    let mut settings = Vec::new();
    for (column, value) in opened {
        if column == key {
            return display_value(value);
        }
        let Some(setting) = column.strip_prefix(&prefix) else {
            continue;
        };
        if setting == "kind" {
            kind = Some(display_value(value));
        } else {
            // A nested plugin's kind is named by its slot: `corrector=none`.
            let name = setting.strip_suffix(".kind").unwrap_or(setting);
            settings.push(format!("{name}={}", display_value(value)));
        }
    }
    kind.into_iter()
        .chain(settings)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Swept values as a file name part: `network=mlp` → `network-mlp`; past 100 characters, its
/// first 89 and a hash of the whole.
pub(crate) fn file_safe(text: &str) -> String {
    let safe: String = text
        .chars()
        .filter(|c| *c != ' ')
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    // File names are limited to 255 bytes: a long one keeps its start and a hash of the whole.
    if safe.len() <= 100 {
        return safe;
    }
    let hash = crate::trial::stable_hash(&serde_json::Value::from(text));
    format!("{}-{hash}", &safe[..89])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plugin_tables_are_labelled_by_kind_then_settings() {
        let opened = vec![
            ("network.kind".to_string(), json!("mlp")),
            ("sampler.kind".to_string(), json!("pc")),
            ("sampler.corrector.kind".to_string(), json!("none")),
            ("sampler.steps".to_string(), json!(100)),
        ];
        assert_eq!(label("sampler", &opened), "pc corrector=none steps=100");
        assert_eq!(label("network.kind", &opened), "mlp");
    }
}
