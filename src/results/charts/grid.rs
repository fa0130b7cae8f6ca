//! Heatmaps for sweeps over two or more keys: the two keys with the most values span the
//! grid (the one with more values down the rows), and every combination of the other keys
//! gets its own heatmap (noise_scales: num_levels × sigma_max, one per network). With seeds
//! swept a cell is the mean over its seeds.

use std::path::{Path, PathBuf};

use super::swept::{file_safe, Swept};
use crate::results::plots::{self, Heatmap, PlotError, Scale};

/// More heatmaps than this per metric (many values of the other keys) are not drawn.
const MAX_FACETS: usize = 12;

/// The grid's keys, rows first: the two with the most distinct values, earlier keys first
/// among equals. `None` below two keys.
pub(super) fn grid_keys(swept: &Swept) -> Option<(usize, usize)> {
    let mut keys: Vec<(usize, usize)> = (0..swept.keys.len())
        .map(|k| (k, swept.categories(k).len()))
        .collect();
    keys.sort_by_key(|&(k, count)| (std::cmp::Reverse(count), k));
    match keys.as_slice() {
        [(a, _), (b, _), ..] => Some((*a, *b)),
        _ => None,
    }
}

/// Writes `<metric>_heatmap[_<other keys' values>]` for every metric; returns the PNGs.
pub(super) fn write(
    dir: &Path,
    swept: &Swept,
    metrics: &[String],
) -> Result<Vec<PathBuf>, PlotError> {
    let Some((row_key, column_key)) = grid_keys(swept) else {
        return Ok(Vec::new());
    };
    let rest: Vec<usize> = (0..swept.keys.len())
        .filter(|&k| k != row_key && k != column_key)
        .collect();
    let facets = swept.groups(&rest);
    if facets.len() > MAX_FACETS {
        return Ok(Vec::new());
    }
    let (rows, columns) = (swept.categories(row_key), swept.categories(column_key));
    let mut written = Vec::new();
    for metric in metrics {
        for (facet, members) in &facets {
            let cell = |r: &str, c: &str| {
                let values: Vec<f64> = members
                    .iter()
                    .filter(|&&m| {
                        swept.label(m, row_key) == Some(r) && swept.label(m, column_key) == Some(c)
                    })
                    .map(|&m| swept.value(m, metric))
                    .filter(|v| v.is_finite())
                    .collect();
                (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
            };
            let values = rows
                .iter()
                .map(|r| columns.iter().map(|c| cell(r, c)).collect())
                .collect();
            let (row_name, column_name) = (&swept.keys[row_key], &swept.keys[column_key]);
            let mut title = format!("{metric} by {row_name} and {column_name}");
            if !facet.is_empty() {
                title.push_str(&format!(" ({facet})"));
            }
            if swept.seeded {
                title.push_str(", mean over seeds");
            }
            let stem = match facet.is_empty() {
                true => format!("{metric}_heatmap"),
                false => format!("{metric}_heatmap_{}", file_safe(facet)),
            };
            let chart = Heatmap {
                title: &title,
                row_label: row_name,
                column_label: column_name,
                rows: rows.clone(),
                columns: columns.clone(),
                values,
                scale: Scale::Auto,
            };
            let paths = plots::heatmap(&dir.join(stem), &chart)?;
            written.extend(
                paths
                    .into_iter()
                    .filter(|p| p.extension().is_some_and(|e| e == "png")),
            );
        }
    }
    Ok(written)
}
