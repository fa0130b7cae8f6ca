//! Quality against cost. Whenever a sweep varies the sampler or its settings, every metric
//! is drawn against NFE (log scale) with one line per sampler configuration, the points of
//! a line being its cost settings (sampler settings named `*steps*`, `rtol` or `atol`, swept
//! on their own or inside swept sampler tables); `quality_vs_nfe.csv` holds the same numbers.

use std::path::Path;

use polars::prelude::*;

use super::plots::{self, LineChart, PlotError, Scale, Series};
use super::TrialRow;
use crate::trial::{display_value, short_key};

/// Whether the sweep varies anything about the sampler.
pub fn applies(axis_keys: &[String]) -> bool {
    axis_keys.iter().any(|k| is_sampler_key(k))
}

fn is_sampler_key(key: &str) -> bool {
    key == "sampler" || key.starts_with("sampler.")
}

/// Settings that trade cost for accuracy: step counts and an adaptive solver's tolerances.
fn sets_cost(name: &str) -> bool {
    name.contains("steps") || name == "rtol" || name == "atol"
}

/// The line a trial belongs to: its swept values other than cost settings.
fn line_of(row: &TrialRow) -> String {
    let parts: Vec<String> = row
        .axes
        .iter()
        .filter(|(k, _)| !(is_sampler_key(k) && sets_cost(short_key(k).as_str())))
        .map(|(k, v)| {
            let shown = match v {
                serde_json::Value::Object(map) if is_sampler_key(k) => serde_json::Value::Object(
                    map.iter()
                        .filter(|(name, _)| !sets_cost(name))
                        .map(|(name, value)| (name.clone(), value.clone()))
                        .collect(),
                ),
                other => other.clone(),
            };
            format!("{}={}", short_key(k), display_value(&shown))
        })
        .collect();
    if parts.is_empty() {
        "sampler".to_string()
    } else {
        parts.join(",")
    }
}

/// (line, nfe, row) in line order, by NFE within a line.
fn points(rows: &[TrialRow]) -> Vec<(String, u64, &TrialRow)> {
    let mut lines: Vec<String> = Vec::new();
    let mut out: Vec<(String, u64, &TrialRow)> = rows
        .iter()
        .map(|row| {
            let line = line_of(row);
            if !lines.contains(&line) {
                lines.push(line.clone());
            }
            (line, row.nfe, row)
        })
        .collect();
    out.sort_by_key(|(line, nfe, _)| (lines.iter().position(|l| l == line), *nfe));
    out
}

/// `quality_vs_nfe_<metric>.png/.svg` for every metric.
pub fn write_charts(dir: &Path, rows: &[TrialRow]) -> Result<(), PlotError> {
    let points = points(rows);
    let mut metric_names: Vec<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    metric_names.sort();
    metric_names.dedup();
    for metric in metric_names {
        let mut series: Vec<Series> = Vec::new();
        for (line, nfe, row) in &points {
            let point = (
                *nfe as f64,
                row.metrics.get(metric).copied().unwrap_or(f64::NAN),
            );
            match series.iter_mut().find(|s| s.label == *line) {
                Some(s) => s.points.push(point),
                None => series.push(Series {
                    label: line.clone(),
                    points: vec![point],
                }),
            }
        }
        let chart = LineChart {
            title: &format!("{metric} against network evaluations"),
            x_label: "NFE",
            y_label: metric,
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
            x_categories: None,
            series,
        };
        plots::line_chart(&dir.join(format!("quality_vs_nfe_{metric}")), &chart)?;
    }
    Ok(())
}

/// The table behind the charts: one row per trial with its line, NFE and metrics.
pub fn table(rows: &[TrialRow]) -> PolarsResult<DataFrame> {
    let points = points(rows);
    let mut columns = vec![
        Column::new(
            "line".into(),
            points.iter().map(|(l, _, _)| l.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "nfe".into(),
            points.iter().map(|(_, n, _)| *n).collect::<Vec<_>>(),
        ),
    ];
    let mut metric_names: Vec<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    metric_names.sort();
    metric_names.dedup();
    for name in metric_names {
        let values: Vec<Option<f64>> = points
            .iter()
            .map(|(_, _, r)| r.metrics.get(name).copied())
            .collect();
        columns.push(Column::new(name.as_str().into(), values));
    }
    columns.push(Column::new(
        "sample_seconds".into(),
        points
            .iter()
            .map(|(_, _, r)| r.sample_seconds)
            .collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "trial".into(),
        points
            .iter()
            .map(|(_, _, r)| r.trial.clone())
            .collect::<Vec<_>>(),
    ));
    DataFrame::new(points.len(), columns)
}
