//! What a sweep shows a person: the per-trial progress line, the summary table, and the
//! comparison plots (each metric against each swept key, loss curves, per-level loss).

use std::path::Path;

use super::plots::{self, LineChart, PlotError, Scale, Series};
use super::TrialRow;
use crate::train::History;
use crate::trial::{display_value, short_key};

pub fn progress_line(row: &TrialRow) -> String {
    let metrics: Vec<String> = row
        .metrics
        .iter()
        .map(|(k, v)| format!("{k}={v:.4}"))
        .collect();
    format!(
        "{}  {}  nfe={}  train {:.1}s  sample {:.1}s",
        row.label,
        metrics.join(" "),
        row.nfe,
        row.train_seconds,
        row.sample_seconds
    )
}

/// The rows as an aligned text table with each trial's status; failed trials are listed
/// below it with their messages.
pub fn summary_table(rows: &[TrialRow]) -> String {
    let table = aligned_table(rows);
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.failed())
        .map(|r| format!("  {}: {}", r.label, r.message))
        .collect();
    if failed.is_empty() {
        table
    } else {
        format!("{table}\n\nfailed trials:\n{}", failed.join("\n"))
    }
}

fn aligned_table(rows: &[TrialRow]) -> String {
    let mut metric_names: Vec<&String> = rows.iter().flat_map(|r| r.metrics.keys()).collect();
    metric_names.sort();
    metric_names.dedup();
    // Trials of several invocations: say which asked for each.
    let invocations = rows.iter().any(|r| r.invocation != rows[0].invocation);
    let mut header = vec!["trial".to_string()];
    if invocations {
        header.push("invocation".to_string());
    }
    header.extend(metric_names.iter().map(|m| m.to_string()));
    header.extend(["nfe", "train_s", "sample_s", "status"].map(String::from));
    let mut lines = vec![header];
    for row in rows {
        let mut line = vec![row.label.clone()];
        if invocations {
            line.push(row.invocation.clone());
        }
        for name in &metric_names {
            line.push(
                row.metrics
                    .get(*name)
                    .map_or("-".into(), |v| format!("{v:.4}")),
            );
        }
        line.push(row.nfe.to_string());
        line.push(format!("{:.1}", row.train_seconds));
        line.push(format!("{:.1}", row.sample_seconds));
        line.push(row.status.clone());
        lines.push(line);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| lines.iter().map(|l| l[c].len()).max().unwrap_or(0))
        .collect();
    lines
        .iter()
        .map(|line| {
            line.iter()
                .enumerate()
                .map(|(c, cell)| {
                    if c == 0 {
                        format!("{cell:<w$}", w = widths[c])
                    } else {
                        format!("{cell:>w$}", w = widths[c])
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each metric against each swept key (one line per combination of the other swept keys),
/// the loss curves and the per-level loss of every trained model.
pub fn write_plots(
    dir: &Path,
    axis_keys: &[String],
    rows: &[TrialRow],
    histories: &[(String, History)],
) -> Result<(), PlotError> {
    let mut metric_names = super::table::varying_metrics(rows);
    // NFE is charted only where it varies: a flat NFE line (a weighting sweep) says nothing.
    if rows.iter().any(|r| r.nfe != rows[0].nfe) {
        metric_names.push("nfe".into());
    }
    // With seeds swept, each line is a configuration: its mean over seeds with the 95%
    // interval as error bars (a chart against the seed itself would show only noise).
    let seeded = axis_keys.iter().any(|k| k == super::seeds::SEED_KEY);
    for key in axis_keys
        .iter()
        .filter(|k| !(seeded && *k == super::seeds::SEED_KEY))
    {
        let values_of =
            |r: &TrialRow, k: &str| r.axes.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
        let mut categories: Vec<serde_json::Value> = Vec::new();
        for row in rows {
            if let Some(v) = values_of(row, key) {
                if !categories.contains(&v) {
                    categories.push(v);
                }
            }
        }
        let numeric = categories.iter().all(|v| v.is_number());
        let positive = numeric
            && categories
                .iter()
                .all(|v| v.as_f64().is_some_and(|x| x > 0.0));
        let spread = categories
            .iter()
            .filter_map(|v| v.as_f64())
            .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
        let x_scale = if positive && spread.1 / spread.0 > 20.0 {
            Scale::Log
        } else {
            Scale::Linear
        };
        for metric in &metric_names {
            let mut series: Vec<Series> = Vec::new();
            for row in rows {
                let Some(value) = values_of(row, key) else {
                    continue;
                };
                let y = if metric == "nfe" {
                    row.nfe as f64
                } else {
                    row.metrics.get(metric).copied().unwrap_or(f64::NAN)
                };
                let x = if numeric {
                    value.as_f64().unwrap_or(f64::NAN)
                } else {
                    categories.iter().position(|c| *c == value).unwrap_or(0) as f64
                };
                let others: Vec<String> = row
                    .axes
                    .iter()
                    .filter(|(k, _)| k != key && !(seeded && k == super::seeds::SEED_KEY))
                    .map(|(k, v)| format!("{}={}", short_key(k), display_value(v)))
                    .collect();
                let label = if others.is_empty() {
                    metric.clone()
                } else {
                    others.join(",")
                };
                match series.iter_mut().find(|s| s.label == label) {
                    Some(s) => s.points.push((x, y)),
                    None => series.push(Series {
                        intervals: Vec::new(),
                        label,
                        points: vec![(x, y)],
                    }),
                }
            }
            for s in &mut series {
                s.points.sort_by(|a, b| a.0.total_cmp(&b.0));
                if seeded {
                    over_seeds(s);
                }
            }
            let short = short_key(key);
            let chart = LineChart {
                title: &format!("{metric} vs {key}"),
                x_label: key,
                y_label: metric,
                x_scale,
                y_scale: Scale::Linear,
                x_categories: (!numeric).then(|| categories.iter().map(display_value).collect()),
                series,
            };
            plots::line_chart(&dir.join(format!("{metric}_vs_{short}")), &chart)?;
        }
    }
    if !histories.is_empty() {
        let loss = LineChart {
            title: "training loss (weighted DSM objective)",
            x_label: "step",
            y_label: "loss",
            x_scale: Scale::Linear,
            y_scale: Scale::Log,
            x_categories: None,
            series: history_series(histories, |h| {
                h.steps
                    .iter()
                    .zip(&h.loss)
                    .map(|(s, l)| (*s as f64, *l))
                    .collect()
            }),
        };
        plots::line_chart(&dir.join("loss_curves"), &loss)?;
        let levels = LineChart {
            title: "per-level loss, last quarter of training: 0.5 ||sigma s + z||^2",
            x_label: "sigma",
            y_label: "normalised loss",
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
            x_categories: None,
            series: history_series(histories, |h| {
                h.levels
                    .iter()
                    .copied()
                    .zip(h.final_level_loss.iter().copied())
                    .collect()
            }),
        };
        plots::line_chart(&dir.join("level_loss"), &levels)?;
    }
    Ok(())
}

/// One chart line per trained model.
fn history_series(
    histories: &[(String, History)],
    points: impl Fn(&History) -> Vec<(f64, f64)>,
) -> Vec<Series> {
    histories
        .iter()
        .map(|(label, h)| Series {
            intervals: Vec::new(),
            label: label.clone(),
            points: points(h),
        })
        .collect()
}

/// Replaces a line's per-seed points by one point per x, the mean, with the 95% Student-t
/// interval as its error bar (where at least two seeds have a value). Expects sorted points.
fn over_seeds(series: &mut Series) {
    let mut points = Vec::new();
    let mut intervals = Vec::new();
    for group in series.points.chunk_by(|a, b| a.0 == b.0) {
        let x = group[0].0;
        let values: Vec<f64> = group.iter().map(|p| p.1).collect();
        let interval = super::seeds::Interval::of(&values);
        points.push((x, interval.mean));
        if interval.n >= 2 {
            intervals.push((x, interval.low, interval.high));
        }
    }
    series.points = points;
    series.intervals = intervals;
}
