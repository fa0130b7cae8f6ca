//! Swept values with every plugin table opened: a sweep over whole tables (`sampler: {kind:
//! euler, steps: 10}`) becomes the columns `sampler.kind` and `sampler.steps`, nested tables
//! (`sampler.corrector: {kind: langevin, snr: 0.16}`) the columns `sampler.corrector.kind`
//! and `sampler.corrector.snr`. Tables, HParams sessions and charts all read the same
//! columns, so a researcher filters `sampler.kind == "heun"` instead of matching text.

use serde_json::{Map, Value};

/// One column: its dotted key and each row's value (`None` where the row has none, as
/// `rk45` has no `steps`).
type Column = (String, Vec<Option<Value>>);

/// Each row's swept values with plugin tables opened, the keys in the same order in every
/// row (a key's table columns where the key was, `kind` first, then its parameters in
/// alphabetical order); a row lacks the columns it has no value for. Where any row names a
/// plugin by its table, another row's bare name (`corrector: none`) is its `kind`.
pub fn open_rows(rows: &[&[(String, Value)]]) -> Vec<Vec<(String, Value)>> {
    let mut keys: Vec<&String> = Vec::new();
    for row in rows {
        for (key, _) in row.iter() {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    let columns: Vec<Column> = keys
        .into_iter()
        .flat_map(|key| {
            let values = rows
                .iter()
                .map(|row| row.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()))
                .collect();
            open(key, values)
        })
        .collect();
    (0..rows.len())
        .map(|r| {
            columns
                .iter()
                .filter_map(|(key, values)| Some((key.clone(), values[r].clone()?)))
                .collect()
        })
        .collect()
}

/// The opened columns of one key, keeping every row's place.
fn open(key: &str, values: Vec<Option<Value>>) -> Vec<Column> {
    let names_plugin = values
        .iter()
        .any(|v| matches!(v, Some(Value::Object(table)) if table.contains_key("kind")));
    let any_table = values.iter().any(|v| matches!(v, Some(Value::Object(_))));
    if !any_table {
        return vec![(key.to_string(), values)];
    }
    // Rows whose value is not a table: a plugin's bare name becomes its kind; anything else
    // (a list, a number beside tables) keeps the key itself as its column.
    let mut plain: Vec<Option<Value>> = vec![None; values.len()];
    let tables: Vec<Option<Map<String, Value>>> = values
        .into_iter()
        .enumerate()
        .map(|(r, value)| match value {
            Some(Value::Object(table)) => Some(table),
            Some(Value::String(name)) if names_plugin => {
                Some(Map::from_iter([("kind".to_string(), Value::String(name))]))
            }
            other => {
                plain[r] = other;
                None
            }
        })
        .collect();
    let mut fields: Vec<&String> = tables.iter().flatten().flat_map(|t| t.keys()).collect();
    fields.sort_by_key(|field| (field.as_str() != "kind", field.as_str()));
    fields.dedup();
    let mut columns = Vec::new();
    if plain.iter().any(Option::is_some) {
        columns.push((key.to_string(), plain));
    }
    for field in fields {
        let values = tables
            .iter()
            .map(|t| t.as_ref().and_then(|t| t.get(field).cloned()))
            .collect();
        columns.extend(open(&format!("{key}.{field}"), values));
    }
    columns
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(pairs: &[(&str, Value)]) -> Vec<(String, Value)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn plugin_tables_open_into_kind_and_parameters_in_one_order() {
        let a = row(&[
            ("network.kind", json!("mlp")),
            ("sampler", json!({"kind": "euler", "steps": 10})),
        ]);
        let b = row(&[
            ("network.kind", json!("oracle")),
            (
                "sampler",
                json!({"kind": "rk45", "rtol": 0.01, "atol": 0.01}),
            ),
        ]);
        let opened = open_rows(&[&a, &b]);
        assert_eq!(
            opened[0],
            row(&[
                ("network.kind", json!("mlp")),
                ("sampler.kind", json!("euler")),
                ("sampler.steps", json!(10)),
            ])
        );
        assert_eq!(
            opened[1],
            row(&[
                ("network.kind", json!("oracle")),
                ("sampler.kind", json!("rk45")),
                ("sampler.atol", json!(0.01)),
                ("sampler.rtol", json!(0.01)),
            ])
        );
    }

    #[test]
    fn a_bare_plugin_name_beside_tables_is_its_kind_at_any_depth() {
        let a = row(&[("sampler", json!({"kind": "pc", "corrector": "none"}))]);
        let b = row(&[(
            "sampler",
            json!({"kind": "pc", "corrector": {"kind": "langevin", "snr": 0.16}}),
        )]);
        let opened = open_rows(&[&a, &b]);
        assert_eq!(
            opened[0],
            row(&[
                ("sampler.kind", json!("pc")),
                ("sampler.corrector.kind", json!("none")),
            ])
        );
        assert_eq!(
            opened[1],
            row(&[
                ("sampler.kind", json!("pc")),
                ("sampler.corrector.kind", json!("langevin")),
                ("sampler.corrector.snr", json!(0.16)),
            ])
        );
    }

    #[test]
    fn plain_values_and_lists_stay_as_they_are() {
        let a = row(&[("seed", json!(1)), ("data.means", json!([[0.0, 1.0]]))]);
        let b = row(&[("seed", json!(2)), ("data.means", json!([[2.0, 1.0]]))]);
        assert_eq!(open_rows(&[&a, &b]), vec![a.clone(), b.clone()]);
        // Names alone, with no table among them, are a plain text column.
        let c = row(&[("weighting", json!("sigma_squared"))]);
        assert_eq!(open_rows(&[&c]), vec![c.clone()]);
    }
}
