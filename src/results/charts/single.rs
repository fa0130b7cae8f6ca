//! Each metric against each swept key: a line chart where the key's values are numbers (one
//! line per combination of the other keys), a dot chart where they are not (no line joins
//! unordered values). With seeds swept a point is the mean over seeds, drawn with its 95%
//! bootstrap percentile interval and every seed's own value beside it.

use std::path::{Path, PathBuf};

use super::swept::Swept;
use crate::results::plots::{self, DotChart, LineChart, PlotError, Scale, Series};
use crate::results::seeds::Interval;
use crate::trial::short_key;

/// More lines than this in one chart are left to the heatmap (when there is one): a legend
/// of 48 entries is a table nobody reads.
pub(super) const MAX_SERIES: usize = 20;

/// Writes `<metric>_vs_<key>` for every metric and swept key; returns the PNGs written.
pub(super) fn write(
    dir: &Path,
    swept: &Swept,
    metrics: &[String],
) -> Result<Vec<PathBuf>, PlotError> {
    let mut written = Vec::new();
    for key in 0..swept.keys.len() {
        let others: Vec<usize> = (0..swept.keys.len()).filter(|&k| k != key).collect();
        let groups = swept.groups(&others);
        if groups.len() > MAX_SERIES && swept.keys.len() >= 2 {
            continue;
        }
        let numeric = swept.numeric(key);
        let categories = swept.categories(key);
        let x_of = |row: usize| match numeric {
            true => swept.number(row, key),
            false => {
                let label = swept.label(row, key)?;
                categories.iter().position(|c| c == label).map(|i| i as f64)
            }
        };
        let nfe_varies = groups.iter().any(|(_, members)| {
            let mut nfe = members.iter().map(|&r| swept.rows[r].nfe);
            let first = nfe.next();
            nfe.any(|n| Some(n) != first)
        });
        let nfe = nfe_varies.then(|| "nfe".to_string());
        for metric in metrics.iter().chain(&nfe) {
            let series: Vec<Series> = groups
                .iter()
                .map(|(name, members)| {
                    let label = if name.is_empty() {
                        metric.clone()
                    } else {
                        name.clone()
                    };
                    let points = members
                        .iter()
                        .filter_map(|&r| Some((x_of(r)?, swept.value(r, metric))))
                        .collect();
                    summarised(label, points)
                })
                .collect();
            let key_name = &swept.keys[key];
            let title = title(metric, key_name, swept.seeded);
            let stem = dir.join(format!("{metric}_vs_{}", short_key(key_name)));
            let paths = if numeric {
                let chart = LineChart {
                    title: &title,
                    x_label: key_name,
                    y_label: metric,
                    x_scale: key_scale(swept, key),
                    y_scale: Scale::Auto,
                    series,
                };
                plots::line_chart(&stem, &chart)?
            } else {
                let chart = DotChart {
                    title: &title,
                    category_label: key_name,
                    value_label: metric,
                    value_scale: Scale::Auto,
                    categories: categories.clone(),
                    series,
                };
                plots::dot_chart(&stem, &chart)?
            };
            written.extend(
                paths
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "png")),
            );
        }
    }
    Ok(written)
}

fn title(metric: &str, key: &str, seeded: bool) -> String {
    if seeded {
        format!("{metric} vs {key}: mean over seeds, 95% bootstrap interval, each seed in outline")
    } else {
        format!("{metric} vs {key}")
    }
}

/// A log axis for positive swept values more than 20 times apart (1, 10, 100 levels), else
/// linear.
fn key_scale(swept: &Swept, key: usize) -> Scale {
    let values = (0..swept.rows.len()).filter_map(|r| swept.number(r, key));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > 0.0 && hi / lo > 20.0 {
        Scale::Log
    } else {
        Scale::Linear
    }
}

/// One series from its (x, value) points: sorted by x, and where several rows share an x
/// (the seeds of one configuration), their mean with its interval and each value beside it.
pub(super) fn summarised(label: String, mut points: Vec<(f64, f64)>) -> Series {
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut series = Series {
        label,
        ..Series::default()
    };
    for group in points.chunk_by(|a, b| a.0 == b.0) {
        let x = group[0].0;
        if group.len() == 1 {
            series.points.push(group[0]);
            continue;
        }
        let values: Vec<f64> = group.iter().map(|p| p.1).collect();
        let interval = Interval::of(&values);
        series.points.push((x, interval.mean));
        if interval.n >= 2 {
            series.intervals.push((x, interval.low, interval.high));
        }
        series.observations.extend_from_slice(group);
    }
    series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_become_a_mean_with_a_non_negative_interval_and_every_seed_beside_it() {
        let points = vec![(2.0, 0.12), (1.0, 5.0), (2.0, 0.31), (2.0, 197.0)];
        let series = summarised("fd".into(), points);
        assert_eq!(series.points[0], (1.0, 5.0));
        assert_eq!(series.points[1].0, 2.0);
        assert!((series.points[1].1 - 65.81).abs() < 0.01);
        let (_, low, high) = series.intervals[0];
        assert!(low >= 0.0 && high <= 197.0);
        assert_eq!(series.observations.len(), 3, "each seed is drawn");
    }
}
