//! Seeds as a sweep axis: the trials of one configuration that differ only in `seed` are
//! summarised by the mean, sample standard deviation, count and a 95% bootstrap percentile
//! interval of the mean of each metric, written as `summary.csv` and `summary.parquet`
//! beside the per-seed `metrics.csv`.
//!
//! Why a bootstrap percentile interval and not Student's t: with three seeds, t(0.975, 2) =
//! 4.30 stretches one outlier into an interval far below zero for a metric that cannot be
//! negative (fd 65.8 ± 255.0). The percentile interval of resampled means stays within the
//! observed values, so it respects every bound the metric has; it is narrow for very few
//! seeds, which the charts make plain by drawing every seed beside it.

use std::collections::BTreeMap;

use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

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
    /// The 2.5% and 97.5% percentiles of the means of resampled seeds (the bootstrap
    /// percentile interval); NaN below two values.
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
        let (low, high) = bootstrap_percentile(&finite);
        Interval {
            n,
            mean,
            std: variance.sqrt(),
            low,
            high,
        }
    }
}

/// Resamples of the seeds behind a bootstrap interval.
pub const BOOTSTRAP_RESAMPLES: usize = 4000;

/// The 95% bootstrap percentile interval of the mean of `values` (at least one): the 2.5%
/// and 97.5% percentiles of the means of `BOOTSTRAP_RESAMPLES` resamples drawn with
/// replacement by a fixed-seed generator, so the same values give the same interval. Each
/// mean is kept within the values' range, which the rounding of a sum and a division can
/// leave by an ulp (three copies of 419.8987833779446 average to 419.89878337794454).
pub fn bootstrap_percentile(values: &[f64]) -> (f64, f64) {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_b007);
    let n = values.len();
    let (low, high) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let mut means: Vec<f64> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            let sum = (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>();
            (sum / n as f64).max(low).min(high)
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |p: f64| means[((p * (means.len() - 1) as f64).round() as usize).min(means.len() - 1)];
    (at(0.025), at(0.975))
}

/// How the interval is named in tables' headers.
pub const INTERVAL_NAME: &str = "95% bootstrap percentile interval of the mean";

/// A metric over seeds as text: `mean [low, high] (n)`, or `mean (n)` below two seeds.
pub fn interval_text(i: &Interval) -> String {
    if i.n >= 2 {
        format!("{:.4} [{:.4}, {:.4}] ({})", i.mean, i.low, i.high, i.n)
    } else {
        format!("{:.4} ({})", i.mean, i.n)
    }
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

/// The console view: per configuration, each metric as mean [interval] (n).
pub fn console_table(configurations: &[Configuration]) -> String {
    let mut names: Vec<&String> = configurations
        .iter()
        .flat_map(|c| c.metrics.keys())
        .collect();
    names.sort();
    names.dedup();
    let mut lines = vec![format!("over seeds (mean [{INTERVAL_NAME}] (n)):")];
    for c in configurations {
        let cells: Vec<String> = names
            .iter()
            .filter_map(|name| {
                let i = c.metrics.get(*name)?;
                Some(format!("{name}={}", interval_text(i)))
            })
            .collect();
        lines.push(format!("  {}: {}", c.label, cells.join("  ")));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_of_a_non_negative_metric_stays_non_negative() {
        // Three seeds of fd with one outlier: Student's t gave 65.8 ± 255.0.
        let fd = [0.12, 0.31, 197.0];
        let i = Interval::of(&fd);
        assert!((i.mean - 65.81).abs() < 0.01);
        assert!(i.low >= 0.12 && i.high <= 197.0 && i.low <= i.mean && i.mean <= i.high);
        assert_eq!(
            Interval::of(&fd),
            i,
            "the same values give the same interval"
        );
        let two = Interval::of(&[1.0, 3.0]);
        assert_eq!((two.low, two.high), (1.0, 3.0));
    }
}
