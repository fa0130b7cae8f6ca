//! The long ("tidy") table beside the wide one: one row per trial and figure — every metric,
//! the NFE and the timings — with its unit and how it was measured, the shape pandas'
//! `pivot` and polars' `group_by` start from. It joins the wide table on `trial`.

use polars::prelude::{Column, DataFrame, PolarsResult};

use super::table::TrialRow;

/// One row of the long table.
struct Figure {
    trial: String,
    metric: String,
    value: f64,
    unit: String,
    protocol: String,
}

/// A metric's protocol as one line: the samples and reference it was measured on, the NFE,
/// the feature space and the metric's own settings (`unit` is its own column).
fn protocol_text(row: &TrialRow, metric: &str) -> (String, String) {
    let Some(protocol) = row.protocols.get(metric) else {
        return (String::new(), String::new());
    };
    let mut parts = vec![
        format!("samples={}", protocol.samples),
        format!("reference={}", protocol.reference),
        format!("reference_size={}", protocol.reference_size),
        format!("nfe={}", protocol.nfe),
    ];
    if let Some(features) = &protocol.features {
        parts.push(format!("features={features}"));
    }
    let mut unit = String::new();
    for (key, value) in &protocol.settings {
        match key.as_str() {
            "unit" => unit = value.clone(),
            _ => parts.push(format!("{key}={value}")),
        }
    }
    (unit, parts.join("; "))
}

fn figures(rows: &[TrialRow]) -> Vec<Figure> {
    let mut figures = Vec::new();
    for row in rows {
        for (metric, value) in &row.metrics {
            let (unit, protocol) = protocol_text(row, metric);
            figures.push(Figure {
                trial: row.trial.clone(),
                metric: metric.clone(),
                value: *value,
                unit,
                protocol,
            });
        }
        for (metric, value, unit) in [
            ("nfe", row.nfe as f64, "evaluations"),
            ("train_seconds", row.train_seconds, "s"),
            ("sample_seconds", row.sample_seconds, "s"),
            ("metric_seconds", row.metric_seconds, "s"),
        ] {
            figures.push(Figure {
                trial: row.trial.clone(),
                metric: metric.to_string(),
                value,
                unit: unit.to_string(),
                protocol: String::new(),
            });
        }
    }
    figures
}

/// The long table: `trial, metric, value, unit, protocol`.
pub fn long_dataframe(rows: &[TrialRow]) -> PolarsResult<DataFrame> {
    let figures = figures(rows);
    let text = |f: fn(&Figure) -> &String| -> Vec<String> {
        figures.iter().map(|x| f(x).clone()).collect()
    };
    let columns = vec![
        Column::new("trial".into(), text(|f| &f.trial)),
        Column::new("metric".into(), text(|f| &f.metric)),
        Column::new(
            "value".into(),
            figures.iter().map(|f| f.value).collect::<Vec<_>>(),
        ),
        Column::new("unit".into(), text(|f| &f.unit)),
        Column::new("protocol".into(), text(|f| &f.protocol)),
    ];
    DataFrame::new(figures.len(), columns)
}
