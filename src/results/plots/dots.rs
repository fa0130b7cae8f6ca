//! Dot charts (Cleveland's dot plot): one row per category, the value along the horizontal
//! axis, a marker per series and no line between rows, for swept values that have no order
//! (a weighting, a sampler table). Category labels sit left of their rows in full, wrapped
//! where long, so 45 sampler tables stay readable; the picture grows with the rows.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::axis::{drawable, Axis, Scale};
use super::frame::Frame;
use super::legend::Legend;
use super::line::Series;
use super::output::{draw_both, DrawResult, Drawing, PlotError};
use super::style::SeriesStyle;
use super::text::{line_height, text_size, wrap, AXIS_SIZE, LABEL_SIZE};

/// Width of the plotting body; its height follows the rows.
const BODY_WIDTH: u32 = 800;
/// Widest a category label may be before it is wrapped.
const MAX_LABEL_WIDTH: u32 = 300;
/// Room below the rows for the value axis' ticks and description.
const BOTTOM: u32 = 60;
const MARGIN: u32 = 15;

/// Everything a dot chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct DotChart<'a> {
    pub title: &'a str,
    /// What the rows are (the swept key).
    pub category_label: &'a str,
    /// What the horizontal axis measures.
    pub value_label: &'a str,
    pub value_scale: Scale,
    /// The rows, top to bottom.
    pub categories: Vec<String>,
    /// Each series' points are (category index, value), its intervals (category index,
    /// low, high) and its observations (category index, value).
    pub series: Vec<Series>,
}

/// Draws `<stem>.png` and `<stem>.svg` and returns both paths.
pub fn dot_chart(stem: &Path, chart: &DotChart) -> Result<Vec<PathBuf>, PlotError> {
    super::output::ensure_font(stem)?;
    draw_both(stem, &DotPlan::new(chart))
}

/// A dot chart laid out.
struct DotPlan<'a> {
    chart: &'a DotChart<'a>,
    value_axis: Axis,
    /// Each category's label lines.
    labels: Vec<Vec<String>>,
    label_width: u32,
    row_height: u32,
    frame: Frame,
    legend: Option<Legend>,
}

impl<'a> DotPlan<'a> {
    fn new(chart: &'a DotChart<'a>) -> Self {
        let values = || {
            chart.series.iter().flat_map(|s| {
                let bars = s.intervals.iter().flat_map(|&(_, low, high)| [low, high]);
                s.points
                    .iter()
                    .chain(&s.observations)
                    .map(|p| p.1)
                    .chain(bars)
            })
        };
        let scale = chart.value_scale.resolve(
            chart
                .series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| p.1)),
        );
        let value_axis = Axis::fit(scale, values().filter(|v| drawable(*v, scale)));
        let labels: Vec<Vec<String>> = chart
            .categories
            .iter()
            .map(|c| wrap(c, LABEL_SIZE, MAX_LABEL_WIDTH))
            .collect();
        let label_width = labels
            .iter()
            .flatten()
            .map(|l| text_size(l, LABEL_SIZE).0)
            .chain([text_size(chart.category_label, AXIS_SIZE).0])
            .max()
            .unwrap_or(0)
            + 12;
        let most_lines = labels.iter().map(Vec::len).max().unwrap_or(1) as u32;
        let row_height = (most_lines * line_height(LABEL_SIZE) + 8).max(24);
        let rows = chart.categories.len().max(1) as u32;
        let body_height = (rows * row_height + BOTTOM + 2 * MARGIN + 20).max(260);
        let names: Vec<String> = chart.series.iter().map(|s| s.label.clone()).collect();
        let legend = Legend::new(&names, false);
        let panel = legend.as_ref().map_or((0, 0), Legend::size);
        DotPlan {
            chart,
            value_axis,
            labels,
            label_width,
            row_height,
            frame: Frame::new(chart.title, (BODY_WIDTH, body_height), panel),
            legend,
        }
    }

    /// The row's axis coordinate of category `index`, series `series`: rows are 1 apart with
    /// the first at the top, series spread a little around their row's centre.
    fn row(&self, index: usize, series: usize) -> f64 {
        let count = self.chart.series.len().max(1) as f64;
        let spread = (0.6 / count).min(0.15);
        let offset = (series as f64 - (count - 1.0) / 2.0) * spread;
        (self.chart.categories.len() as f64 - 1.0 - index as f64) - offset
    }
}

impl Drawing for DotPlan<'_> {
    fn size(&self) -> (u32, u32) {
        self.frame.size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (body, panel) = self.frame.split(root)?;
        let rows = self.chart.categories.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&body)
            .margin(MARGIN)
            .margin_top(MARGIN + 20)
            .x_label_area_size(BOTTOM)
            .y_label_area_size(self.label_width)
            .build_cartesian_2d(self.value_axis.clone(), Axis::Linear(-0.5..rows - 0.5))?;
        chart
            .configure_mesh()
            .x_desc(self.chart.value_label)
            .x_labels(10)
            .y_labels(0)
            .disable_y_mesh()
            .label_style(("sans-serif", LABEL_SIZE))
            .axis_desc_style(("sans-serif", AXIS_SIZE))
            .max_light_lines(1)
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;
        self.draw_labels(&body, &chart)?;
        let area = chart.plotting_area();
        let (lo, hi) = (self.value_axis.range().start, self.value_axis.range().end);
        for i in 0..self.chart.categories.len() {
            // A hairline guide across the row (a rectangle: lines are for ordered values).
            let (y, half) = (self.row(i, 0).round(), 0.5 / f64::from(self.row_height));
            area.draw(&Rectangle::new(
                [(lo, y - half), (hi, y + half)],
                RGBColor(225, 225, 225).filled(),
            ))?;
        }
        let scale = self.value_axis.scale();
        for (s, series) in self.chart.series.iter().enumerate() {
            let style = SeriesStyle::nth(s);
            for &(category, low, high) in &series.intervals {
                let mid = series.points.iter().find(|p| p.0 == category).map(|p| p.1);
                if let (Some(mid), true) = (mid, drawable(low, scale) && drawable(high, scale)) {
                    let y = self.row(category as usize, s);
                    let bar = style.colour.stroke_width(2);
                    area.draw(&ErrorBar::new_horizontal(y, low, mid, high, bar, 8))?;
                }
            }
            for &(category, value) in &series.observations {
                if drawable(value, scale) {
                    let at = (value, self.row(category as usize, s));
                    style.draw_marker(area, at, (0, 7), 3, false)?;
                }
            }
            for &(category, value) in &series.points {
                if drawable(value, scale) {
                    let at = (value, self.row(category as usize, s));
                    style.draw_marker(area, at, (0, 0), 5, true)?;
                }
            }
        }
        if let Some(legend) = &self.legend {
            legend.draw(&panel)?;
        }
        Ok(())
    }
}

impl DotPlan<'_> {
    /// The category labels, right-aligned left of their rows, and the rows' name above them.
    fn draw_labels<DB: DrawingBackend>(
        &self,
        body: &DrawingArea<DB, Shift>,
        chart: &ChartContext<DB, Cartesian2d<Axis, Axis>>,
    ) -> DrawResult<DB> {
        let (body_x, body_y) = (body.get_base_pixel().0, body.get_base_pixel().1);
        let left = self.value_axis.range().start;
        let style = ("sans-serif", LABEL_SIZE)
            .into_text_style(body)
            .pos(Pos::new(HPos::Right, VPos::Center));
        let line = line_height(LABEL_SIZE) as i32;
        for (i, lines) in self.labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(left, self.row(i, 0).round()));
            let first = y - body_y - (lines.len() as i32 - 1) * line / 2;
            for (k, text) in lines.iter().enumerate() {
                body.draw_text(text, &style, (x - body_x - 8, first + k as i32 * line))?;
            }
        }
        let heading = ("sans-serif", AXIS_SIZE)
            .into_text_style(body)
            .pos(Pos::new(HPos::Left, VPos::Top));
        body.draw_text(self.chart.category_label, &heading, (MARGIN as i32, 8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::plots::output::png_size;

    #[test]
    fn forty_five_long_categories_get_a_row_each() {
        let categories: Vec<String> = (0..45)
            .map(|i| format!("sampler {i} steps={i} predictor=ancestral corrector=langevin"))
            .collect();
        let series = Series {
            label: "network=mlp".into(),
            points: (0..45)
                .map(|i| (f64::from(i), 10f64.powi(i % 5 - 2)))
                .collect(),
            ..Series::default()
        };
        let chart = DotChart {
            title: "fd by sampler",
            category_label: "sampler",
            value_label: "fd",
            value_scale: Scale::Auto,
            categories,
            series: vec![series],
        };
        let plan = DotPlan::new(&chart);
        assert_eq!(plan.value_axis.scale(), Scale::Log, "four decades");
        let (_, height) = plan.frame.size();
        assert!(height >= 45 * plan.row_height, "every row has its height");
        let dir = tempfile::tempdir().unwrap();
        let paths = dot_chart(&dir.path().join("dots"), &chart).unwrap();
        let png = std::fs::read(&paths[0]).unwrap();
        assert_eq!(png_size(&png), plan.frame.size());
        let svg = std::fs::read_to_string(&paths[1]).unwrap();
        assert!(
            svg.contains("sampler 44 steps=44"),
            "labels are drawn in full"
        );
        // Lines in the series' colour would join the categories: only axes and ticks are lines.
        let first = crate::results::plots::style::SeriesStyle::nth(0).colour;
        let colour = format!("stroke=\"#{:02X}{:02X}{:02X}\"", first.0, first.1, first.2);
        assert!(
            svg.lines()
                .all(|l| !(l.contains("<polyline") && l.contains(&colour))),
            "no line joins the categories"
        );
    }
}
