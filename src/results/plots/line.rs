//! Line charts: the public `LineChart` and `Series`, and `line_chart`, which
//! cleans the data, fits the axes, picks the legend's corner and draws the
//! chart as PNG and SVG.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{drawable, Axis, Scale};
use super::output::{
    draw_error, draw_png, ensure_font, with_suffix, write_atomically, DrawResult, PlotError,
};
use super::style::PALETTE;

/// Pixel size of line charts.
const LINE_CHART_SIZE: (u32, u32) = (800, 500);

/// Series with more points than this are drawn as plain lines: markers on a
/// long training curve merge into a smear that hides the line.
const MAX_MARKED_POINTS: usize = 100;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    /// Error bars (x, low, high), e.g. a 95% interval over seeds; drawn at the point of the
    /// same x.
    pub intervals: Vec<(f64, f64, f64)>,
}

/// Everything a line chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    /// Ignored when `x_categories` is set.
    pub x_scale: Scale,
    pub y_scale: Scale,
    /// When set, x values are category indices 0..n and these are the tick labels
    /// (for swept values like 0.5, auto, 30).
    pub x_categories: Option<Vec<String>>,
    pub series: Vec<Series>,
}

/// Draws the chart twice: `<stem>.png` (800x500) and `<stem>.svg`; returns both paths.
///
/// Each series is drawn in its own colour as a line with a marker at every
/// point (just the line past 100 points), with a legend in the emptiest
/// corner when there is more than one series. Samples that are not finite, or
/// not positive on a log axis, are left out and their neighbours joined.
pub fn line_chart(stem: &Path, chart: &LineChart) -> Result<Vec<PathBuf>, PlotError> {
    let plan = LinePlan::new(chart);
    let png_path = with_suffix(stem, "png");
    let svg_path = with_suffix(stem, "svg");
    ensure_font(&png_path)?;

    let png = draw_png(&png_path, LINE_CHART_SIZE, |root| plan.draw(root))?;
    write_atomically(&png_path, &png)?;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, LINE_CHART_SIZE).into_drawing_area();
        plan.draw(&root)
            .and_then(|()| root.present())
            .map_err(|err| draw_error(&svg_path, err))?;
    }
    write_atomically(&svg_path, svg.as_bytes())?;

    Ok(vec![png_path, svg_path])
}

/// A line chart with its data cleaned and its axes decided, ready to draw on any backend.
struct LinePlan<'a> {
    chart: &'a LineChart<'a>,
    x_axis: Axis,
    y_axis: Axis,
    /// Each series' drawable points, in the order of `chart.series`.
    points: Vec<Vec<(f64, f64)>>,
}

impl<'a> LinePlan<'a> {
    fn new(chart: &'a LineChart<'a>) -> Self {
        let x_scale = match chart.x_categories {
            Some(_) => Scale::Linear,
            None => chart.x_scale,
        };
        let points: Vec<Vec<(f64, f64)>> = chart
            .series
            .iter()
            .map(|series| {
                series
                    .points
                    .iter()
                    .copied()
                    .filter(|&(x, y)| drawable(x, x_scale) && drawable(y, chart.y_scale))
                    .collect()
            })
            .collect();
        let xs = points.iter().flatten().map(|p| p.0);
        // The axis covers the error bars as well as the points.
        let bar_ends: Vec<f64> = chart
            .series
            .iter()
            .flat_map(|s| s.intervals.iter())
            .filter(|(x, _, _)| drawable(*x, x_scale))
            .flat_map(|&(_, low, high)| [low, high])
            .filter(|&y| drawable(y, chart.y_scale))
            .collect();
        let ys = points.iter().flatten().map(|p| p.1).chain(bar_ends);
        let x_axis = match &chart.x_categories {
            Some(labels) => Axis::categories(labels.clone(), xs),
            None => Axis::fit(x_scale, xs),
        };
        let y_axis = Axis::fit(chart.y_scale, ys);
        Self {
            chart,
            x_axis,
            y_axis,
            points,
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(root)
            .caption(self.chart.title, ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(50)
            .y_label_area_size(75)
            .build_cartesian_2d(self.x_axis.clone(), self.y_axis.clone())?;
        let x_labels = match &self.chart.x_categories {
            Some(labels) => labels.len().max(1),
            None => 10,
        };
        chart
            .configure_mesh()
            .x_desc(self.chart.x_label)
            .y_desc(self.chart.y_label)
            .x_labels(x_labels)
            .y_labels(8)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .max_light_lines(1)
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()?;

        for (index, (series, points)) in self.chart.series.iter().zip(&self.points).enumerate() {
            let colour = PALETTE[index % PALETTE.len()];
            let line = colour.stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), line))?
                .label(series.label.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));
            let (y_scale, centre) = (self.chart.y_scale, |x: f64| {
                points.iter().find(|p| p.0 == x).map(|p| p.1)
            });
            chart.draw_series(series.intervals.iter().filter_map(|&(x, low, high)| {
                let mid = centre(x)?;
                (drawable(low, y_scale) && drawable(high, y_scale))
                    .then(|| ErrorBar::new_vertical(x, low, mid, high, colour.stroke_width(2), 8))
            }))?;
            if points.len() <= MAX_MARKED_POINTS {
                chart.draw_series(
                    points
                        .iter()
                        .map(|&point| Circle::new(point, 4, colour.filled())),
                )?;
            }
        }
        if self.chart.series.len() > 1 {
            chart
                .configure_series_labels()
                .position(self.legend_corner())
                .label_font(("sans-serif", 14))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(160, 160, 160))
                .draw()?;
        }
        root.present()
    }

    /// The corner where the legend covers the least of the data, judged by
    /// how many points (and points along the lines between them) fall in a
    /// legend-sized box at each corner.
    fn legend_corner(&self) -> SeriesLabelPosition {
        const SCALE: i32 = 1000;
        let box_width = 0.35 * f64::from(SCALE);
        let box_height = (0.06 * self.points.len() as f64 + 0.04) * f64::from(SCALE);
        let normalised: Vec<(f64, f64)> = self
            .points
            .iter()
            .flat_map(|points| {
                let pixels: Vec<(f64, f64)> = points
                    .iter()
                    .map(|(x, y)| {
                        let px = self.x_axis.map(x, (0, SCALE));
                        let py = self.y_axis.map(y, (0, SCALE));
                        (f64::from(px), f64::from(py))
                    })
                    .collect();
                let along_lines: Vec<(f64, f64)> = pixels
                    .windows(2)
                    .flat_map(|pair| {
                        let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
                        (1..10).map(move |i| {
                            let t = f64::from(i) / 10.0;
                            (x0 + t * (x1 - x0), y0 + t * (y1 - y0))
                        })
                    })
                    .collect();
                pixels.into_iter().chain(along_lines)
            })
            .collect();
        let far = f64::from(SCALE);
        let covered = |right: bool, upper: bool| {
            normalised
                .iter()
                .filter(|&&(x, y)| {
                    let in_x = if right {
                        x >= far - box_width
                    } else {
                        x <= box_width
                    };
                    let in_y = if upper {
                        y >= far - box_height
                    } else {
                        y <= box_height
                    };
                    in_x && in_y
                })
                .count()
        };
        [
            (SeriesLabelPosition::UpperRight, covered(true, true)),
            (SeriesLabelPosition::UpperLeft, covered(false, true)),
            (SeriesLabelPosition::LowerRight, covered(true, false)),
            (SeriesLabelPosition::LowerLeft, covered(false, false)),
        ]
        .into_iter()
        .min_by_key(|&(_, count)| count)
        .map_or(SeriesLabelPosition::UpperRight, |(corner, _)| corner)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::results::plots::output::{png_size, PNG_SIGNATURE};

    fn sweep_chart() -> LineChart<'static> {
        LineChart {
            title: "Sample quality across noise schedules",
            x_label: "sigma_max",
            y_label: "MMD",
            x_scale: Scale::Linear,
            y_scale: Scale::Log,
            x_categories: Some(vec!["0.5".into(), "auto".into(), "30".into()]),
            series: vec![
                Series {
                    intervals: Vec::new(),
                    label: "euler".into(),
                    points: vec![(0.0, 0.2), (1.0, 0.03), (2.0, 0.004)],
                },
                Series {
                    intervals: Vec::new(),
                    label: "heun".into(),
                    points: vec![(0.0, 0.1), (1.0, 0.0), (2.0, 0.002)],
                },
                Series {
                    intervals: Vec::new(),
                    label: "empty".into(),
                    points: vec![],
                },
            ],
        }
    }

    #[test]
    fn categorical_log_chart_writes_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("sweep_0.5");
        let paths = line_chart(&stem, &sweep_chart()).unwrap();
        assert_eq!(
            paths,
            vec![
                dir.path().join("sweep_0.5.png"),
                dir.path().join("sweep_0.5.svg")
            ]
        );
        let png = fs::read(&paths[0]).unwrap();
        assert!(png.starts_with(PNG_SIGNATURE));
        assert_eq!(png_size(&png), (800, 500));
        let svg = fs::read_to_string(&paths[1]).unwrap();
        assert!(svg.contains("<svg"));
        assert!(svg.contains("auto"), "category labels are drawn");
        // Only the two outputs remain: no temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
