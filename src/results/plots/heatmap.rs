//! Heatmaps: a metric over two swept keys, one cell per pair of values with the value
//! written in it, coloured on a viridis scale (logarithmic where the values are positive and
//! span more than two decades) with a colour key beside the grid.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{min_max, Scale};
use super::frame::Frame;
use super::output::{draw_both, DrawResult, Drawing, PlotError};
use super::text::{line_height, text_size, wrap, AXIS_SIZE, LABEL_SIZE};

/// Widest a row label may be before it is wrapped.
const MAX_ROW_LABEL: u32 = 280;
const MARGIN: i32 = 15;
/// The colour key's width with its labels, and its bar's width and least height.
const KEY_WIDTH: u32 = 130;
const KEY_BAR: (i32, i32) = (20, 100);
/// Cells without a value.
const MISSING: RGBColor = RGBColor(235, 235, 235);

/// Everything a heatmap shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap<'a> {
    pub title: &'a str,
    /// What the rows and the columns are (the two swept keys).
    pub row_label: &'a str,
    pub column_label: &'a str,
    pub rows: Vec<String>,
    pub columns: Vec<String>,
    /// `values[row][column]`; `None` (or a non-finite value) is a blank cell.
    pub values: Vec<Vec<Option<f64>>>,
    pub scale: Scale,
}

/// Draws `<stem>.png` and `<stem>.svg` and returns both paths.
pub fn heatmap(stem: &Path, chart: &Heatmap) -> Result<Vec<PathBuf>, PlotError> {
    super::output::ensure_font(stem)?;
    draw_both(stem, &HeatPlan::new(chart))
}

/// A heatmap laid out: cell sizes, wrapped labels and the colour scale's ends.
struct HeatPlan<'a> {
    chart: &'a Heatmap<'a>,
    row_lines: Vec<Vec<String>>,
    column_lines: Vec<Vec<String>>,
    label_width: u32,
    cell: (u32, u32),
    header: u32,
    scale: Scale,
    /// The smallest and largest value (on the scale: their log10 on a log scale).
    ends: (f64, f64),
    frame: Frame,
}

impl<'a> HeatPlan<'a> {
    fn new(chart: &'a Heatmap<'a>) -> Self {
        let finite = || {
            chart
                .values
                .iter()
                .flatten()
                .flatten()
                .copied()
                .filter(|v| v.is_finite())
        };
        let scale = chart.scale.resolve(finite());
        let on_scale = |v: f64| if scale == Scale::Log { v.log10() } else { v };
        let ends = min_max(
            finite()
                .filter(|v| scale != Scale::Log || *v > 0.0)
                .map(on_scale),
        )
        .unwrap_or((0.0, 1.0));
        let widest_value = finite()
            .map(|v| text_size(&cell_text(v), LABEL_SIZE).0)
            .max();
        let row_lines: Vec<Vec<String>> = chart
            .rows
            .iter()
            .map(|r| wrap(r, LABEL_SIZE, MAX_ROW_LABEL))
            .collect();
        let label_width = row_lines
            .iter()
            .flatten()
            .map(|l| text_size(l, LABEL_SIZE).0)
            .chain([text_size(chart.row_label, AXIS_SIZE).0])
            .max()
            .unwrap_or(0)
            + 16;
        let cell_width = (widest_value.unwrap_or(0) + 16).clamp(70, 160);
        let column_lines: Vec<Vec<String>> = chart
            .columns
            .iter()
            .map(|c| wrap(c, LABEL_SIZE, cell_width - 6))
            .collect();
        let lines = |all: &[Vec<String>]| all.iter().map(Vec::len).max().unwrap_or(1) as u32;
        let cell_height = (lines(&row_lines) * line_height(LABEL_SIZE) + 12).max(34);
        let header = line_height(AXIS_SIZE) + lines(&column_lines) * line_height(LABEL_SIZE) + 14;
        let body = (
            label_width + cell_width * chart.columns.len().max(1) as u32 + 2 * MARGIN as u32,
            header + cell_height * chart.rows.len().max(1) as u32 + 2 * MARGIN as u32,
        );
        let panel = (
            KEY_WIDTH,
            header + key_height(chart.rows.len(), cell_height) + 60,
        );
        HeatPlan {
            chart,
            row_lines,
            column_lines,
            label_width,
            cell: (cell_width, cell_height),
            header,
            scale,
            ends,
            frame: Frame::new(chart.title, body, panel),
        }
    }

    /// Where a value falls between the smallest (0) and the largest (1).
    fn position(&self, value: f64) -> Option<f64> {
        let v = match self.scale {
            Scale::Log if value > 0.0 => value.log10(),
            Scale::Log => return None,
            _ => value,
        };
        let (lo, hi) = self.ends;
        value.is_finite().then(|| {
            if hi > lo {
                ((v - lo) / (hi - lo)).clamp(0.0, 1.0)
            } else {
                0.5
            }
        })
    }
}

/// The colour key's bar as tall as the grid, at least `KEY_BAR.1`.
fn key_height(rows: usize, cell_height: u32) -> u32 {
    (rows as u32 * cell_height).max(KEY_BAR.1 as u32)
}

/// A cell's text: three significant digits, scientific past 1e5 and below 1e-3.
pub fn cell_text(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 {
        return "0".into();
    }
    if !(1e-3..1e5).contains(&magnitude) {
        return format!("{value:.2e}");
    }
    let decimals = (2 - magnitude.log10().floor() as i32).max(0) as usize;
    format!("{value:.decimals$}")
}

/// Viridis at `t` in [0, 1], and whether text on it should be white.
fn colour(t: f64) -> (RGBColor, bool) {
    let c = ViridisRGB::get_color(t as f32);
    let luminance = 0.299 * f64::from(c.0) + 0.587 * f64::from(c.1) + 0.114 * f64::from(c.2);
    (c, luminance < 140.0)
}

impl Drawing for HeatPlan<'_> {
    fn size(&self) -> (u32, u32) {
        self.frame.size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (body, panel) = self.frame.split(root)?;
        let text = |anchor: (HPos, VPos)| {
            ("sans-serif", LABEL_SIZE)
                .into_text_style(&body)
                .pos(Pos::new(anchor.0, anchor.1))
        };
        let heading = ("sans-serif", AXIS_SIZE)
            .into_text_style(&body)
            .pos(Pos::new(HPos::Left, VPos::Top));
        let (left, top) = (
            MARGIN + self.label_width as i32,
            MARGIN + self.header as i32,
        );
        let (cw, ch) = (self.cell.0 as i32, self.cell.1 as i32);
        let line = line_height(LABEL_SIZE) as i32;
        body.draw_text(self.chart.row_label, &heading, (MARGIN, MARGIN))?;
        body.draw_text(self.chart.column_label, &heading, (left + 4, MARGIN))?;
        for (c, lines) in self.column_lines.iter().enumerate() {
            let x = left + c as i32 * cw + cw / 2;
            for (k, l) in lines.iter().rev().enumerate() {
                body.draw_text(
                    l,
                    &text((HPos::Center, VPos::Bottom)),
                    (x, top - 6 - k as i32 * line),
                )?;
            }
        }
        for (r, lines) in self.row_lines.iter().enumerate() {
            let y = top + r as i32 * ch + ch / 2 - (lines.len() as i32 - 1) * line / 2;
            for (k, l) in lines.iter().enumerate() {
                body.draw_text(
                    l,
                    &text((HPos::Right, VPos::Center)),
                    (left - 8, y + k as i32 * line),
                )?;
            }
            for c in 0..self.chart.columns.len() {
                let value = self
                    .chart
                    .values
                    .get(r)
                    .and_then(|row| row.get(c))
                    .copied()
                    .flatten();
                let (x0, y0) = (left + c as i32 * cw, top + r as i32 * ch);
                let (fill, white) = value
                    .and_then(|v| self.position(v))
                    .map_or((MISSING, false), colour);
                body.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cw, y0 + ch)],
                    fill.filled(),
                ))?;
                body.draw(&Rectangle::new(
                    [(x0, y0), (x0 + cw, y0 + ch)],
                    WHITE.stroke_width(1),
                ))?;
                let shown = value
                    .filter(|v| v.is_finite())
                    .map_or("–".into(), cell_text);
                let ink = if white { WHITE } else { BLACK };
                let style = text((HPos::Center, VPos::Center)).color(&ink);
                body.draw_text(&shown, &style, (x0 + cw / 2, y0 + ch / 2))?;
            }
        }
        self.draw_key(&panel)
    }
}

impl HeatPlan<'_> {
    /// The colour key: a vertical bar from the largest value (top) to the smallest, with
    /// both ends and the middle labelled and the scale named.
    fn draw_key<DB: DrawingBackend>(&self, panel: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (x, top) = (10, MARGIN + self.header as i32);
        let width = KEY_BAR.0;
        let height = key_height(self.chart.rows.len(), self.cell.1) as i32;
        for step in 0..height {
            let t = 1.0 - f64::from(step) / f64::from(height - 1);
            let (fill, _) = colour(t);
            panel.draw(&Rectangle::new(
                [(x, top + step), (x + width, top + step + 1)],
                fill.filled(),
            ))?;
        }
        let style = ("sans-serif", LABEL_SIZE)
            .into_text_style(panel)
            .pos(Pos::new(HPos::Left, VPos::Center));
        let (lo, hi) = self.ends;
        let value_at = |t: f64| {
            let v = lo + t * (hi - lo);
            if self.scale == Scale::Log {
                10f64.powf(v)
            } else {
                v
            }
        };
        for t in [0.0, 0.5, 1.0] {
            let y = top + ((1.0 - t) * f64::from(height - 1)).round() as i32;
            panel.draw_text(&cell_text(value_at(t)), &style, (x + width + 6, y))?;
        }
        let name = if self.scale == Scale::Log {
            "log scale"
        } else {
            "linear scale"
        };
        panel.draw_text(name, &style, (x, top + height + 18))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::plots::output::png_size;

    #[test]
    fn a_heatmap_writes_every_value_and_colours_six_decades_on_a_log_scale() {
        let values = vec![
            vec![Some(4119.1), Some(663.4), Some(39.6)],
            vec![Some(2338.0), Some(224.2), Some(14.8)],
            vec![Some(1.64), Some(0.0992), None],
        ];
        let chart = Heatmap {
            title: "fd (network=mlp)",
            row_label: "schedule.num_levels",
            column_label: "schedule.sigma_max",
            rows: vec!["1".into(), "3".into(), "10".into()],
            columns: vec!["50.0".into(), "auto".into(), "1.0".into()],
            values,
            scale: Scale::Auto,
        };
        let plan = HeatPlan::new(&chart);
        assert_eq!(plan.scale, Scale::Log);
        // The best cell is at the bottom of the scale, the worst at its top.
        assert_eq!(plan.position(0.0992), Some(0.0));
        assert_eq!(plan.position(4119.1), Some(1.0));
        let dir = tempfile::tempdir().unwrap();
        let paths = heatmap(&dir.path().join("fd_heatmap"), &chart).unwrap();
        assert_eq!(
            png_size(&std::fs::read(&paths[0]).unwrap()),
            plan.frame.size()
        );
        let svg = std::fs::read_to_string(&paths[1]).unwrap();
        for text in ["4119", "0.0992", "1.64", "–", "log scale"] {
            assert!(svg.contains(text), "{text} missing");
        }
    }

    #[test]
    fn cell_text_keeps_three_significant_digits() {
        assert_eq!(cell_text(0.099_24), "0.0992");
        assert_eq!(cell_text(1.6374), "1.64");
        assert_eq!(cell_text(663.43), "663");
        assert_eq!(cell_text(4119.13), "4119");
        assert_eq!(cell_text(2.5e-5), "2.50e-5");
    }
}
