//! Line charts: the public `LineChart` and `Series`, and `line_chart`, which
//! cleans the data, fits the axes, lays out title and legend and draws the
//! chart as PNG and SVG.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{drawable, Axis, Scale};
use super::frame::Frame;
use super::legend::Legend;
use super::output::{draw_both, ensure_font, with_suffix, DrawResult, Drawing, PlotError};
use super::style::SeriesStyle;
use super::text::{AXIS_SIZE, LABEL_SIZE};

/// Pixel size of line charts.
const LINE_CHART_SIZE: (u32, u32) = (800, 500);

/// Series with more points than this are drawn as plain lines: markers on a
/// long training curve merge into a smear that hides the line.
const MAX_MARKED_POINTS: usize = 100;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Error bars (x, low, high), e.g. a 95% interval over seeds; drawn at the point of the
    /// same x.
    pub intervals: Vec<(f64, f64, f64)>,
    /// The single observations behind the points (each seed's value), drawn as small
    /// outlines beside the line.
    pub observations: Vec<(f64, f64)>,
}

/// Everything a line chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub x_scale: Scale,
    pub y_scale: Scale,
    pub series: Vec<Series>,
}

/// Draws the chart twice: `<stem>.png` and `<stem>.svg`; returns both paths.
///
/// The plotting area is 800x500 pixels; the title is wrapped above it and, with more than
/// one series, the legend stands to its right, the picture growing to hold them. Each series
/// has its own colour, marker and dash (style.rs) and a marker at every point (just the line
/// past 100 points). Samples that are not finite, or not positive on a log axis, are left
/// out and their neighbours joined.
pub fn line_chart(stem: &Path, chart: &LineChart) -> Result<Vec<PathBuf>, PlotError> {
    ensure_font(&with_suffix(stem, "png"))?;
    draw_both(stem, &LinePlan::new(chart))
}

/// A line chart with its data cleaned and its axes decided, ready to draw on any backend.
struct LinePlan<'a> {
    chart: &'a LineChart<'a>,
    x_axis: Axis,
    y_axis: Axis,
    /// Each series' drawable points, in the order of `chart.series`.
    points: Vec<Vec<(f64, f64)>>,
    frame: Frame,
    legend: Option<Legend>,
}

impl<'a> LinePlan<'a> {
    fn new(chart: &'a LineChart<'a>) -> Self {
        let all = || chart.series.iter().flat_map(|s| s.points.iter());
        let x_scale = chart.x_scale.resolve(all().map(|p| p.0));
        let y_scale = chart.y_scale.resolve(all().map(|p| p.1));
        let keep = |&(x, y): &(f64, f64)| drawable(x, x_scale) && drawable(y, y_scale);
        let points: Vec<Vec<(f64, f64)>> = chart
            .series
            .iter()
            .map(|series| series.points.iter().copied().filter(keep).collect())
            .collect();
        let xs = points.iter().flatten().map(|p| p.0);
        // The axis covers the error bars and the observations as well as the points.
        let bar_ends = chart
            .series
            .iter()
            .flat_map(|s| s.intervals.iter())
            .filter(|(x, _, _)| drawable(*x, x_scale))
            .flat_map(|&(_, low, high)| [low, high]);
        let observed = chart.series.iter().flat_map(|s| s.observations.iter());
        let ys: Vec<f64> = points
            .iter()
            .flatten()
            .map(|p| p.1)
            .chain(bar_ends)
            .chain(observed.filter(|p| keep(p)).map(|p| p.1))
            .filter(|&y| drawable(y, y_scale))
            .collect();
        let labels: Vec<String> = chart.series.iter().map(|s| s.label.clone()).collect();
        let legend = Legend::new(&labels, true);
        let panel = legend.as_ref().map_or((0, 0), Legend::size);
        Self {
            chart,
            x_axis: Axis::fit(x_scale, xs),
            y_axis: Axis::fit(y_scale, ys.into_iter()),
            points,
            frame: Frame::new(chart.title, LINE_CHART_SIZE, panel),
            legend,
        }
    }
}

impl Drawing for LinePlan<'_> {
    fn size(&self) -> (u32, u32) {
        self.frame.size()
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (body, panel) = self.frame.split(root)?;
        let mut chart = ChartBuilder::on(&body)
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(75)
            .build_cartesian_2d(self.x_axis.clone(), self.y_axis.clone())?;
        chart
            .configure_mesh()
            .x_desc(self.chart.x_label)
            .y_desc(self.chart.y_label)
            .x_labels(10)
            .y_labels(8)
            .label_style(("sans-serif", LABEL_SIZE))
            .axis_desc_style(("sans-serif", AXIS_SIZE))
            .max_light_lines(1)
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;
        let y_scale = self.y_axis.scale();
        for (index, (series, points)) in self.chart.series.iter().zip(&self.points).enumerate() {
            let style = SeriesStyle::nth(index);
            let area = chart.plotting_area();
            style.draw_line(area, points.clone(), 2)?;
            let centre = |x: f64| points.iter().find(|p| p.0 == x).map(|p| p.1);
            chart.draw_series(series.intervals.iter().filter_map(|&(x, low, high)| {
                let mid = centre(x)?;
                (drawable(low, y_scale) && drawable(high, y_scale)).then(|| {
                    ErrorBar::new_vertical(x, low, mid, high, style.colour.stroke_width(2), 8)
                })
            }))?;
            let area = chart.plotting_area();
            let x_scale = self.x_axis.scale();
            for &(x, y) in &series.observations {
                if drawable(x, x_scale) && drawable(y, y_scale) {
                    // Beside the interval bar, not on it.
                    style.draw_marker(area, (x, y), (9, 0), 3, false)?;
                }
            }
            if points.len() <= MAX_MARKED_POINTS {
                for &point in points {
                    style.draw_marker(area, point, (0, 0), 4, true)?;
                }
            }
        }
        if let Some(legend) = &self.legend {
            legend.draw(&panel)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::results::plots::output::{png_size, PNG_SIGNATURE};
    use crate::results::plots::text::{text_size, TITLE_SIZE};

    fn series(label: &str, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            points,
            ..Series::default()
        }
    }

    #[test]
    fn a_chart_writes_png_and_svg_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let chart = LineChart {
            title: "fd vs sigma_max",
            x_label: "sigma_max",
            y_label: "fd",
            x_scale: Scale::Log,
            y_scale: Scale::Auto,
            series: vec![series("one", vec![(1.0, 0.2), (10.0, 0.03), (50.0, 0.004)])],
        };
        let paths = line_chart(&dir.path().join("sweep_0.5"), &chart).unwrap();
        assert_eq!(
            paths,
            vec![
                dir.path().join("sweep_0.5.png"),
                dir.path().join("sweep_0.5.svg")
            ]
        );
        let png = fs::read(&paths[0]).unwrap();
        assert!(png.starts_with(PNG_SIGNATURE));
        let (width, _) = png_size(&png);
        assert_eq!(width, 800, "one series: no legend beside the data");
        assert!(fs::read_to_string(&paths[1]).unwrap().contains("<svg"));
        // Only the two outputs remain: no temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn long_titles_wrap_inside_and_legends_stand_beside_the_data() {
        let title = "fd against network evaluations (network=mlp,schedule.kind=vp,\
                     weighting.kind=sigma_squared,train.lr=0.002,data.kind=gmm)";
        let chart = LineChart {
            title,
            x_label: "NFE",
            y_label: "fd",
            x_scale: Scale::Log,
            y_scale: Scale::Auto,
            series: (0..20)
                .map(|i| series(&format!("line {i}"), vec![(1.0, 1.0 + f64::from(i))]))
                .collect(),
        };
        let plan = LinePlan::new(&chart);
        let (width, height) = plan.frame.size();
        assert!(width > 800 && height >= 500, "{width}x{height}");
        assert!(plan.frame.title.lines.len() > 1);
        for line in &plan.frame.title.lines {
            assert!(text_size(line, TITLE_SIZE).0 + 20 <= width, "{line}");
        }
        let dir = tempfile::tempdir().unwrap();
        let paths = line_chart(&dir.path().join("many"), &chart).unwrap();
        assert_eq!(png_size(&fs::read(&paths[0]).unwrap()), (width, height));
        let svg = fs::read_to_string(&paths[1]).unwrap();
        assert!((0..20).all(|i| svg.contains(&format!("line {i}"))));
    }
}
