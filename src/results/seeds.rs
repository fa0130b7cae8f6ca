//! Seeds as a sweep axis: the trials of one configuration that differ only in `seed` are
//! summarised by the mean, sample standard deviation, count and a 95% Student-t confidence
//! interval of each metric, written as `summary.csv` and `summary.parquet` beside the
//! per-seed `metrics.csv`.

use std::collections::BTreeMap;

use polars::prelude::*;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::table::{write_csv_and_parquet, TrialRow};
use crate::trial::{display_value, short_key};

/// The swept key that is summarised over.
pub const SEED_KEY: &str = "seed";

/// One metric over the seeds of a configuration (failed seeds and NaN values left out).
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator); NaN below two values.
    pub std: f64,
    /// mean -/+ t(0.975, n - 1) * std / sqrt(n); NaN below two values.
    pub low: f64,
    pub high: f64,
}

impl Interval {
    pub fn of(values: &[f64]) -> Interval {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let n = finite.len();
        let mean = if n == 0 {
            f64::NAN
        } else {
            finite.iter().sum::<f64>() / n as f64
        };
        if n < 2 {
            return Interval {
                n,
                mean,
                std: f64::NAN,
                low: f64::NAN,
                high: f64::NAN,
            };
        }
        let variance = finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let std = variance.sqrt();
        let half = t_quantile(0.975, n - 1) * std / (n as f64).sqrt();
        Interval {
            n,
            mean,
            std,
            low: mean - half,
            high: mean + half,
        }
    }
}

/// The `p` quantile of Student's t with `degrees` degrees of freedom.
pub fn t_quantile(p: f64, degrees: usize) -> f64 {
    StudentsT::new(0.0, 1.0, degrees as f64)
        .map(|t| t.inverse_cdf(p))
        .unwrap_or(f64::NAN)
}

/// The trials of one configuration.
#[derive(Debug, Clone)]
pub struct Configuration {
    /// The label without the seed, e.g. `num_levels=10`.
    pub label: String,
    /// The swept keys other than the seed, and their values.
    pub axes: Vec<(String, serde_json::Value)>,
    /// Seeds that ran, and how many of them failed.
    pub seeds: usize,
    pub failed: usize,
    pub metrics: BTreeMap<String, Interval>,
}

/// Swept keys and their values.
type SweptValues = Vec<(String, serde_json::Value)>;

/// Groups `rows` by their swept values other than the seed, in first-seen order.
pub fn summarise(rows: &[TrialRow]) -> Vec<Configuration> {
    let mut groups: Vec<(SweptValues, Vec<&TrialRow>)> = Vec::new();
    for row in rows {
        let axes: SweptValues = row
            .axes
            .iter()
            .filter(|(key, _)| key != SEED_KEY)
            .cloned()
            .collect();
        match groups.iter_mut().find(|(a, _)| *a == axes) {
            Some((_, members)) => members.push(row),
            None => groups.push((axes, vec![row])),
        }
    }
    groups
        .into_iter()
        .map(|(axes, members)| {
            let mut names: Vec<&String> = members.iter().flat_map(|r| r.metrics.keys()).collect();
            names.sort();
            names.dedup();
            let metrics = names
                .into_iter()
                .map(|name| {
                    let values: Vec<f64> = members
                        .iter()
                        .filter(|r| !r.failed())
                        .map(|r| r.metrics.get(name).copied().unwrap_or(f64::NAN))
                        .collect();
                    (name.clone(), Interval::of(&values))
                })
                .collect();
            let label = if axes.is_empty() {
                "base".to_string()
            } else {
                axes.iter()
                    .map(|(k, v)| format!("{}={}", short_key(k), display_value(v)))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            Configuration {
                label,
                axes,
                seeds: members.len(),
                failed: members.iter().filter(|r| r.failed()).count(),
                metrics,
            }
        })
        .collect()
}

/// One row per configuration: its swept values, the seed counts, and per metric
/// `<m>_mean`, `<m>_std`, `<m>_n`, `<m>_ci95_low`, `<m>_ci95_high`.
pub fn to_dataframe(configurations: &[Configuration]) -> PolarsResult<DataFrame> {
    let mut columns: Vec<Column> = vec![Column::new(
        "configuration".into(),
        configurations
            .iter()
            .map(|c| c.label.clone())
            .collect::<Vec<_>>(),
    )];
    let mut keys: Vec<&String> = configurations
        .iter()
        .flat_map(|c| c.axes.iter().map(|(k, _)| k))
        .collect();
    keys.dedup();
    let mut seen = Vec::new();
    for key in keys {
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let values: Vec<String> = configurations
            .iter()
            .map(|c| {
                c.axes
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| display_value(v))
                    .unwrap_or_default()
            })
            .collect();
        columns.push(Column::new(key.as_str().into(), values));
    }
    columns.push(Column::new(
        "seeds".into(),
        configurations
            .iter()
            .map(|c| c.seeds as u64)
            .collect::<Vec<_>>(),
    ));
    columns.push(Column::new(
        "failed".into(),
        configurations
            .iter()
            .map(|c| c.failed as u64)
            .collect::<Vec<_>>(),
    ));
    let mut names: Vec<&String> = configurations
        .iter()
        .flat_map(|c| c.metrics.keys())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let get = |f: fn(&Interval) -> f64| -> Vec<f64> {
            configurations
                .iter()
                .map(|c| c.metrics.get(name).map_or(f64::NAN, f))
                .collect()
        };
        columns.push(Column::new(format!("{name}_mean").into(), get(|i| i.mean)));
        columns.push(Column::new(format!("{name}_std").into(), get(|i| i.std)));
        columns.push(Column::new(
            format!("{name}_n").into(),
            configurations
                .iter()
                .map(|c| c.metrics.get(name).map_or(0, |i| i.n as u64))
                .collect::<Vec<_>>(),
        ));
        columns.push(Column::new(
            format!("{name}_ci95_low").into(),
            get(|i| i.low),
        ));
        columns.push(Column::new(
            format!("{name}_ci95_high").into(),
            get(|i| i.high),
        ));
    }
    DataFrame::new(configurations.len(), columns)
}

/// Writes `summary.csv` and `summary.parquet`.
pub fn write_summary(
    configurations: &[Configuration],
    csv: &std::path::Path,
    parquet: &std::path::Path,
) -> Result<(), String> {
    let frame =
        to_dataframe(configurations).map_err(|e| format!("building the seed summary: {e}"))?;
    write_csv_and_parquet(frame, csv, parquet)
}

/// The console view: per configuration, each metric as mean ± half the interval (n).
pub fn console_table(configurations: &[Configuration]) -> String {
    let mut names: Vec<&String> = configurations
        .iter()
        .flat_map(|c| c.metrics.keys())
        .collect();
    names.sort();
    names.dedup();
    let mut lines = vec!["over seeds (mean ± 95% CI half-width, n):".to_string()];
    for c in configurations {
        let cells: Vec<String> = names
            .iter()
            .filter_map(|name| {
                let i = c.metrics.get(*name)?;
                Some(if i.n >= 2 {
                    format!(
                        "{name}={:.4}±{:.4} ({})",
                        i.mean,
                        (i.high - i.low) / 2.0,
                        i.n
                    )
                } else {
                    format!("{name}={:.4} ({})", i.mean, i.n)
                })
            })
            .collect();
        lines.push(format!("  {}: {}", c.label, cells.join("  ")));
    }
    lines.join("\n")
}
