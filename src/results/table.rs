//! The sweep table: one row per trial (swept keys, metrics, NFE, times), written as
//! `metrics.csv` and `metrics.parquet` with polars.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::store::write_atomic;

/// What one trial reports; saved as `trials/<id>/metrics.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrialRow {
    pub trial: String,
    pub label: String,
    pub train_id: String,
    /// The invocations of the sweep folder that asked for this trial (`1`, `1,3`): set when
    /// the folder's table is written, never saved with the trial.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub invocation: String,
    /// `ok`, or `failed` when training, sampling or a metric failed (see `message`). Rows
    /// written before this field existed read as `ok`. A rerun retries failed trials.
    #[serde(default = "ok_status")]
    pub status: String,
    /// Why the trial failed: the step, the value and the likely cause (empty when ok).
    #[serde(default)]
    pub message: String,
    /// Swept key paths and their values in this trial.
    pub axes: Vec<(String, serde_json::Value)>,
    /// Metric name → value (NaN when a metric could not be computed). Non-finite values are
    /// stored as the strings `"NaN"`, `"inf"` and `"-inf"` (JSON has no such numbers), and
    /// `null` reads back as NaN.
    #[serde(with = "finite_or_text")]
    pub metrics: BTreeMap<String, f64>,
    /// Score-network evaluations the sampler used.
    pub nfe: u64,
    pub train_seconds: f64,
    pub sample_seconds: f64,
    pub metric_seconds: f64,
    /// The schedule's resolved extremes (`auto` made concrete).
    pub sigma_max: f64,
    pub sigma_min: f64,
    /// The feature space of the feature metrics (extractor name and hash), where used.
    #[serde(default)]
    pub features: Option<String>,
    /// How each metric was measured (sample count, reference set and size, NFE, features).
    #[serde(default)]
    pub protocols: BTreeMap<String, crate::evaluate::Protocol>,
}

/// The status of a trial that ran to the end.
pub const OK: &str = "ok";
/// The status of a trial that failed (training, sampling or a metric).
pub const FAILED: &str = "failed";

fn ok_status() -> String {
    OK.to_string()
}

impl TrialRow {
    /// Whether the trial failed (its `message` says why).
    pub fn failed(&self) -> bool {
        self.status == FAILED
    }
}

/// Metric values in JSON: finite numbers as numbers, NaN and infinities as text.
mod finite_or_text {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(f64),
        Text(String),
        Null(()),
    }

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let values: BTreeMap<&String, Value> = map
            .iter()
            .map(|(k, v)| {
                let value = if v.is_finite() {
                    Value::Number(*v)
                } else if v.is_nan() {
                    Value::Text("NaN".to_string())
                } else if *v > 0.0 {
                    Value::Text("inf".to_string())
                } else {
                    Value::Text("-inf".to_string())
                };
                (k, value)
            })
            .collect();
        values.serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<String, f64>, D::Error> {
        let values = BTreeMap::<String, Value>::deserialize(deserializer)?;
        values
            .into_iter()
            .map(|(k, v)| {
                let number = match v {
                    Value::Number(x) => x,
                    Value::Null(()) => f64::NAN,
                    Value::Text(text) => match text.to_ascii_lowercase().as_str() {
                        "nan" => f64::NAN,
                        "inf" | "+inf" | "infinity" => f64::INFINITY,
                        "-inf" | "-infinity" => f64::NEG_INFINITY,
                        _ => {
                            return Err(serde::de::Error::custom(format!(
                                "metric `{k}`: `{text}` is not a number"
                            )))
                        }
                    },
                };
                Ok((k, number))
            })
            .collect()
    }
}

/// The metric names of `rows`, sorted, leaving out those with one value in every row when
/// there are several rows (a protocol figure or a floor repeated per trial is not a result
/// to chart).
pub fn varying_metrics(rows: &[TrialRow]) -> Vec<String> {
    let mut names: Vec<String> = rows
        .iter()
        .flat_map(|r| r.metrics.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names.retain(|name| {
        let mut values = rows
            .iter()
            .map(|r| r.metrics.get(name).copied().unwrap_or(f64::NAN).to_bits());
        let first = values.next();
        rows.len() < 2 || values.any(|v| Some(v) != first)
    });
    names
}

/// Builds the table. Swept keys become columns named by their key path, a plugin table
/// opened into its kind and parameters (`sampler.kind`, `sampler.steps`), each typed by its
/// values (see [`axis_column`]).
pub fn to_dataframe(rows: &[TrialRow]) -> PolarsResult<DataFrame> {
    let mut columns: Vec<Column> = Vec::new();
    columns.push(Column::new(
        "trial".into(),
        rows.iter().map(|r| r.trial.clone()).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "label".into(),
        rows.iter().map(|r| r.label.clone()).collect::<Vec<_>>(),
    ));
    if rows.iter().any(|r| !r.invocation.is_empty()) {
        columns.push(Column::new(
            "invocation".into(),
            rows.iter()
                .map(|r| r.invocation.clone())
                .collect::<Vec<_>>(),
        ));
    }
    columns.extend(axis_columns(rows));
    let mut metric_names: Vec<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    metric_names.sort();
    metric_names.dedup();
    for name in metric_names {
        let values: Vec<Option<f64>> = rows.iter().map(|r| r.metrics.get(name).copied()).collect();
        columns.push(Column::new(name.as_str().into(), values));
    }
    columns.push(Column::new(
        "nfe".into(),
        rows.iter().map(|r| r.nfe).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "train_seconds".into(),
        rows.iter().map(|r| r.train_seconds).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "sample_seconds".into(),
        rows.iter().map(|r| r.sample_seconds).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "metric_seconds".into(),
        rows.iter().map(|r| r.metric_seconds).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "sigma_max".into(),
        rows.iter().map(|r| r.sigma_max).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "sigma_min".into(),
        rows.iter().map(|r| r.sigma_min).collect::<Vec<_>>(),
    ));
    if rows.iter().any(|r| r.features.is_some()) {
        columns.push(Column::new(
            "features".into(),
            rows.iter().map(|r| r.features.clone()).collect::<Vec<_>>(),
        ));
    }
    columns.push(Column::new(
        "train_id".into(),
        rows.iter().map(|r| r.train_id.clone()).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "status".into(),
        rows.iter().map(|r| r.status.clone()).collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "message".into(),
        rows.iter().map(|r| r.message.clone()).collect::<Vec<_>>(),
    ));
    DataFrame::new(rows.len(), columns)
}

/// The swept keys' columns, plugin tables opened (`results::opened`).
fn axis_columns(rows: &[TrialRow]) -> Vec<Column> {
    let axes: Vec<&[(String, serde_json::Value)]> =
        rows.iter().map(|r| r.axes.as_slice()).collect();
    let opened = super::opened::open_rows(&axes);
    let mut keys: Vec<&String> = Vec::new();
    for (key, _) in opened.iter().flatten() {
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|key| {
            let values: Vec<Option<&serde_json::Value>> = opened
                .iter()
                .map(|row| row.iter().find(|(k, _)| k == key).map(|(_, v)| v))
                .collect();
            axis_column(key, &values)
        })
        .collect()
}

/// One swept key's column, typed for pandas and polars: integer axes (seed, num_levels) as
/// integers, switches as booleans, other numbers as floats, the rest as text.
fn axis_column(key: &str, values: &[Option<&serde_json::Value>]) -> Column {
    let all = |test: fn(&serde_json::Value) -> bool| values.iter().all(|v| v.is_none_or(test));
    if all(|v| v.is_i64() || v.is_u64()) {
        let integers: Vec<Option<i64>> =
            values.iter().map(|v| v.and_then(|v| v.as_i64())).collect();
        Column::new(key.into(), integers)
    } else if all(serde_json::Value::is_boolean) {
        let switches: Vec<Option<bool>> =
            values.iter().map(|v| v.and_then(|v| v.as_bool())).collect();
        Column::new(key.into(), switches)
    } else if all(serde_json::Value::is_number) {
        let numbers: Vec<Option<f64>> = values.iter().map(|v| v.and_then(|v| v.as_f64())).collect();
        Column::new(key.into(), numbers)
    } else {
        let text: Vec<Option<String>> = values
            .iter()
            .map(|v| v.map(crate::trial::display_value))
            .collect();
        Column::new(key.into(), text)
    }
}

/// Writes `metrics.csv` and `metrics.parquet` atomically.
pub fn write_tables(rows: &[TrialRow], csv: &Path, parquet: &Path) -> Result<(), String> {
    let frame = to_dataframe(rows).map_err(|e| format!("building the metrics table: {e}"))?;
    write_csv_and_parquet(frame, csv, parquet)
}

/// Writes one table as CSV and as Parquet.
pub fn write_csv_and_parquet(
    mut frame: DataFrame,
    csv: &Path,
    parquet: &Path,
) -> Result<(), String> {
    let mut csv_bytes = Vec::new();
    CsvWriter::new(&mut csv_bytes)
        .finish(&mut frame)
        .map_err(|e| format!("writing {}: {e}", csv.display()))?;
    write_atomic(csv, &csv_bytes).map_err(|e| format!("writing {}: {e}", csv.display()))?;
    let mut parquet_bytes = Vec::new();
    ParquetWriter::new(&mut parquet_bytes)
        .finish(&mut frame)
        .map_err(|e| format!("writing {}: {e}", parquet.display()))?;
    write_atomic(parquet, &parquet_bytes)
        .map_err(|e| format!("writing {}: {e}", parquet.display()))?;
    Ok(())
}

/// Reads a `metrics.parquet` back.
pub fn read_parquet(path: &Path) -> Result<DataFrame, String> {
    let file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Writes points as CSV, one column per coordinate (`x0`, `x1`, ...).
pub fn write_points_csv(points: &crate::dataset::Samples, path: &Path) -> Result<(), String> {
    let columns: Vec<Column> = (0..points.dim())
        .map(|d| {
            Column::new(
                format!("x{d}").into(),
                points.rows().map(|r| r[d]).collect::<Vec<_>>(),
            )
        })
        .collect();
    write_csv(DataFrame::new(points.len(), columns), path)
}

/// Writes the loss history: step, loss, and the per-level loss per level.
pub fn write_loss_table(history: &crate::train::History, path: &Path) -> Result<(), String> {
    let n = history.steps.len();
    let mut columns = vec![
        Column::new(
            "step".into(),
            history.steps.iter().map(|s| *s as u64).collect::<Vec<_>>(),
        ),
        Column::new("loss".into(), history.loss.clone()),
    ];
    for (level, sigma) in history.levels.iter().enumerate() {
        let values: Vec<f64> = history
            .level_loss
            .iter()
            .map(|l| l.get(level).copied().unwrap_or(f64::NAN))
            .collect();
        columns.push(Column::new(
            format!("level_{level}_sigma_{sigma:.5}").into(),
            values,
        ));
    }
    write_csv(DataFrame::new(n, columns), path)
}

/// Writes a table as CSV, atomically.
pub fn write_csv(frame: PolarsResult<DataFrame>, path: &Path) -> Result<(), String> {
    let mut frame = frame.map_err(|e| format!("building {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    CsvWriter::new(&mut bytes)
        .finish(&mut frame)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    write_atomic(path, &bytes).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// `protocols.csv`: how every value was measured, one row per trial and metric (samples,
/// reference set and size, NFE, feature space, and the metric's own estimator and settings).
pub fn write_protocols(rows: &[TrialRow], path: &Path) -> Result<(), String> {
    let mut columns: [Vec<String>; 9] = Default::default();
    for row in rows {
        for (metric, protocol) in &row.protocols {
            let settings: Vec<String> = protocol
                .settings
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            for (column, value) in columns.iter_mut().zip([
                row.trial.clone(),
                row.label.clone(),
                metric.clone(),
                protocol.samples.to_string(),
                protocol.reference.clone(),
                protocol.reference_size.to_string(),
                protocol.nfe.to_string(),
                protocol.features.clone().unwrap_or_default(),
                settings.join("; "),
            ]) {
                column.push(value);
            }
        }
    }
    let names = [
        "trial",
        "label",
        "metric",
        "samples",
        "reference",
        "reference_size",
        "nfe",
        "features",
        "settings",
    ];
    let height = columns[0].len();
    let frame = DataFrame::new(
        height,
        names
            .iter()
            .zip(columns)
            .map(|(name, values)| Column::new((*name).into(), values))
            .collect(),
    );
    write_csv(frame, path)
}
