//! Quality against cost. Whenever a sweep varies the sampler or its settings, every metric
//! is drawn against NFE (log scale), one chart per combination of the other swept values
//! (e.g. one for the trained network, one for the oracle) with one line per sampler
//! configuration, the points of a line being its cost settings (sampler settings named
//! `*steps*`, `levels`, `rtol` or `atol`, swept on their own or inside swept sampler tables);
//! `quality_vs_nfe.csv` holds the same numbers. Where trials report their sampling time per
//! item (sweeps with latent trials), every metric is also drawn against it.

use std::path::{Path, PathBuf};

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

/// Settings that trade cost for accuracy: step and level counts and an adaptive solver's
/// tolerances.
fn sets_cost(name: &str) -> bool {
    name.contains("steps") || name == "levels" || name == "rtol" || name == "atol"
}

/// `key=value` for each swept value of a row that `keep` accepts; sampler tables lose their
/// cost settings.
fn describe(row: &TrialRow, keep: impl Fn(&str) -> bool) -> Vec<String> {
    row.axes
        .iter()
        .filter(|(k, _)| keep(k) && !(is_sampler_key(k) && sets_cost(short_key(k).as_str())))
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
        .collect()
}

/// The chart a trial is drawn in (its swept values outside the sampler, e.g. the network)
/// and its line there (the sampler's swept values other than cost settings).
fn placement(row: &TrialRow) -> (String, String) {
    let context = describe(row, |k| !is_sampler_key(k)).join(",");
    let line = describe(row, is_sampler_key).join(",");
    let line = if line.is_empty() {
        "sampler".to_string()
    } else {
        line
    };
    (context, line)
}

/// (chart, line, nfe, row) in first-seen order of chart and line, by NFE within a line.
fn points(rows: &[TrialRow]) -> Vec<(String, String, u64, &TrialRow)> {
    let mut order: Vec<(String, String)> = Vec::new();
    let mut out: Vec<(String, String, u64, &TrialRow)> = rows
        .iter()
        .map(|row| {
            let (context, line) = placement(row);
            if !order.contains(&(context.clone(), line.clone())) {
                order.push((context.clone(), line.clone()));
            }
            (context, line, row.nfe, row)
        })
        .collect();
    out.sort_by_key(|(context, line, nfe, _)| {
        (
            order.iter().position(|(c, l)| c == context && l == line),
            *nfe,
        )
    });
    out
}

/// `quality_vs_nfe_<metric>[_<chart>].png/.svg`: one chart per metric and per combination
/// of swept values outside the sampler, NFE on a log axis, the metric on a log axis when it
/// is positive and spans more than two decades.
pub fn write_charts(dir: &Path, rows: &[TrialRow]) -> Result<Vec<PathBuf>, PlotError> {
    let mut written = Vec::new();
    let points = points(rows);
    // Each chart once, in order of first appearance (its points need not be adjacent).
    let mut charts: Vec<&String> = Vec::new();
    for (chart, _, _, _) in &points {
        if !charts.contains(&chart) {
            charts.push(chart);
        }
    }
    let metric_names = super::table::varying_metrics(rows);
    for chart in charts {
        for metric in &metric_names {
            let mut series: Vec<Series> = Vec::new();
            for (_, line, nfe, row) in points.iter().filter(|(c, _, _, _)| c == chart) {
                let point = (
                    *nfe as f64,
                    row.metrics.get(metric).copied().unwrap_or(f64::NAN),
                );
                match series.iter_mut().find(|s| s.label == *line) {
                    Some(s) => s.points.push(point),
                    None => series.push(Series {
                        label: line.clone(),
                        points: vec![point],
                        ..Series::default()
                    }),
                }
            }
            let (title, stem) = if chart.is_empty() {
                (
                    format!("{metric} against network evaluations"),
                    format!("quality_vs_nfe_{metric}"),
                )
            } else {
                (
                    format!("{metric} against network evaluations ({chart})"),
                    format!(
                        "quality_vs_nfe_{metric}_{}",
                        super::charts::file_safe(chart)
                    ),
                )
            };
            let drawn = LineChart {
                title: &title,
                x_label: "NFE",
                y_label: metric,
                x_scale: Scale::Log,
                y_scale: Scale::Auto,
                series,
            };
            written.extend(plots::line_chart(&dir.join(stem), &drawn)?);
        }
    }
    written.retain(|p| p.extension().is_some_and(|e| e == "png"));
    Ok(written)
}

/// The metric that holds a trial's sampling cost per item in milliseconds (sampling plus
/// decoding), reported where a sweep compares spaces of different cost (latent diffusion).
pub const TIME_PER_ITEM: &str = "sample_ms_per_image";

/// `quality_vs_time_<metric>.png/.svg`, where the rows report [`TIME_PER_ITEM`]: every
/// metric against sampling time per item (log), one line per configuration apart from the
/// sampler's cost settings, so that pixel and latent models meet in one chart.
pub fn write_time_charts(dir: &Path, rows: &[TrialRow]) -> Result<Vec<PathBuf>, PlotError> {
    let mut written = Vec::new();
    if !rows.iter().any(|r| r.metrics.contains_key(TIME_PER_ITEM)) {
        return Ok(written);
    }
    let points = points(rows);
    // Timings are the x axis or bookkeeping, not quality.
    let metric_names: Vec<String> = super::table::varying_metrics(rows)
        .into_iter()
        .filter(|m| m != TIME_PER_ITEM && !m.ends_with("_s"))
        .collect();
    for metric in &metric_names {
        let mut series: Vec<Series> = Vec::new();
        for (context, line, _, row) in &points {
            let label = [context.as_str(), line.as_str()]
                .iter()
                .filter(|part| !part.is_empty() && **part != "sampler")
                .copied()
                .collect::<Vec<_>>()
                .join(",");
            let point = (
                row.metrics.get(TIME_PER_ITEM).copied().unwrap_or(f64::NAN),
                row.metrics.get(metric).copied().unwrap_or(f64::NAN),
            );
            match series.iter_mut().find(|s| s.label == label) {
                Some(s) => s.points.push(point),
                None => series.push(Series {
                    label,
                    points: vec![point],
                    ..Series::default()
                }),
            }
        }
        for s in &mut series {
            s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        let title = format!("{metric} against sampling time per item");
        let drawn = LineChart {
            title: &title,
            x_label: "sampling ms per item (log)",
            y_label: metric,
            x_scale: Scale::Log,
            y_scale: Scale::Auto,
            series,
        };
        let stem = dir.join(format!("quality_vs_time_{metric}"));
        written.extend(plots::line_chart(&stem, &drawn)?);
    }
    written.retain(|p| p.extension().is_some_and(|e| e == "png"));
    Ok(written)
}

/// The table behind the charts: one row per trial with its line, NFE and metrics.
pub fn table(rows: &[TrialRow]) -> PolarsResult<DataFrame> {
    let points = points(rows);
    let mut columns = vec![
        Column::new(
            "chart".into(),
            points
                .iter()
                .map(|(c, _, _, _)| c.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "line".into(),
            points
                .iter()
                .map(|(_, l, _, _)| l.clone())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "nfe".into(),
            points.iter().map(|(_, _, n, _)| *n).collect::<Vec<_>>(),
        ),
    ];
    let mut metric_names: Vec<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    metric_names.sort();
    metric_names.dedup();
    for name in metric_names {
        let values: Vec<Option<f64>> = points
            .iter()
            .map(|(_, _, _, r)| r.metrics.get(name).copied())
            .collect();
        columns.push(Column::new(name.as_str().into(), values));
    }
    columns.push(Column::new(
        "sample_seconds".into(),
        points
            .iter()
            .map(|(_, _, _, r)| r.sample_seconds)
            .collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "trial".into(),
        points
            .iter()
            .map(|(_, _, _, r)| r.trial.clone())
            .collect::<Vec<_>>(),
    ));
    DataFrame::new(points.len(), columns)
}
