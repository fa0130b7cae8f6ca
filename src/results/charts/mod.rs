//! The sweep's comparison charts, drawn from its rows: each metric against each swept key
//! (`single`: lines over numbers, dots over unordered values), a heatmap over two swept keys
//! (`grid`), and the training curves of every trained model. Swept plugin tables are shown
//! as their kind and settings (`swept`). Every axis that holds a metric is logarithmic where
//! the metric is positive and spans more than two decades. `board` puts the same pictures in
//! TensorBoard.

mod board;
mod grid;
mod single;
mod swept;

use std::path::{Path, PathBuf};

use super::plots::{self, LineChart, PlotError, Scale, Series};
use super::TrialRow;
use crate::train::History;
pub use board::{write_tensorboard, CHARTS_RUN};
pub(super) use swept::file_safe;
use swept::Swept;

/// Draws every chart of the rows into `dir` and returns the PNG files written, in the order
/// drawn (the report and TensorBoard show the same files).
///
/// NFE is charted against a key only where it varies along that key (the steps of a sampler,
/// the levels of a schedule), never as a flat line.
pub fn write_plots(
    dir: &Path,
    axis_keys: &[String],
    rows: &[TrialRow],
    histories: &[(String, History)],
) -> Result<Vec<PathBuf>, PlotError> {
    let metrics = super::table::varying_metrics(rows);
    let swept = Swept::new(axis_keys, rows);
    let mut written = grid::write(dir, &swept, &metrics)?;
    written.extend(single::write(dir, &swept, &metrics)?);
    written.extend(training_charts(dir, histories)?);
    Ok(written)
}

/// Removes the charts in `dir` that `drawn` (this drawing's PNGs) does not hold: an earlier
/// drawing's charts that no longer apply (a chart is a PNG with an SVG beside it; pictures
/// without one, like the real-data grid, stay), so the report shows what TensorBoard shows.
pub fn remove_stale(dir: &Path, drawn: &[PathBuf]) -> std::io::Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let png = entry.path();
        let svg = png.with_extension("svg");
        let chart = png.extension().is_some_and(|e| e == "png") && svg.is_file();
        if chart && !drawn.contains(&png) {
            std::fs::remove_file(&png)?;
            std::fs::remove_file(&svg)?;
        }
    }
    Ok(())
}

/// The loss curves and the per-level loss of every trained model.
fn training_charts(dir: &Path, histories: &[(String, History)]) -> Result<Vec<PathBuf>, PlotError> {
    if histories.is_empty() {
        return Ok(Vec::new());
    }
    let loss = LineChart {
        title: "training loss (weighted DSM objective)",
        x_label: "step",
        y_label: "loss",
        x_scale: Scale::Linear,
        y_scale: Scale::Log,
        series: history_series(histories, |h| {
            h.steps
                .iter()
                .zip(&h.loss)
                .map(|(s, l)| (*s as f64, *l))
                .collect()
        }),
    };
    let mut written = plots::line_chart(&dir.join("loss_curves"), &loss)?;
    let levels = LineChart {
        title: "per-level loss, last quarter of training: 0.5 ||sigma s + z||^2",
        x_label: "sigma",
        y_label: "normalised loss",
        x_scale: Scale::Log,
        y_scale: Scale::Auto,
        series: history_series(histories, |h| {
            h.levels
                .iter()
                .copied()
                .zip(h.final_level_loss.iter().copied())
                .collect()
        }),
    };
    written.extend(plots::line_chart(&dir.join("level_loss"), &levels)?);
    written.retain(|p| p.extension().is_some_and(|e| e == "png"));
    Ok(written)
}

/// One chart line per trained model.
fn history_series(
    histories: &[(String, History)],
    points: impl Fn(&History) -> Vec<(f64, f64)>,
) -> Vec<Series> {
    histories
        .iter()
        .map(|(label, h)| Series {
            label: label.clone(),
            points: points(h),
            ..Series::default()
        })
        .collect()
}
