//! Charts of experiment results, drawn with plotters.
//!
//! Every picture is drawn with the DejaVu Sans font bundled into the binary,
//! so no system fonts are needed, and every file is written to a temporary
//! file in the target folder and renamed into place, so a reader never sees a
//! half-drawn chart. Bad data (NaN, infinities, non-positive values on a log
//! axis) is skipped rather than reported: a chart with a gap is more useful
//! than no chart.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use tempfile::NamedTempFile;

/// Pixel size of line charts.
const LINE_CHART_SIZE: (u32, u32) = (800, 500);

/// Pixel size of scatter plots (square, so both axes get the same scale).
const SCATTER_SIZE: (u32, u32) = (500, 500);

/// Tableau 10: distinct, colour-blind-aware, and all readable on white.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Series with more points than this are drawn as plain lines: markers on a
/// long training curve merge into a smear that hides the line.
const MAX_MARKED_POINTS: usize = 100;

/// Light enough that samples drawn on top stay visible.
const REFERENCE_GREY: RGBColor = RGBColor(190, 190, 190);

/// Why a chart could not be produced.
///
/// Messages include their cause's text, because callers often keep only
/// `to_string()`; the cause is still available through `source()`.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed while drawing or encoding the picture.
    #[error("cannot draw {}: {message}", .path.display())]
    Draw { path: PathBuf, message: String },
    /// The picture was drawn but could not be written.
    #[error("cannot write {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// How an axis is drawn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scale {
    Linear,
    Log,
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
/// corner when there is more than one series. Points that are not finite, or
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

/// Scatter of generated samples (coloured, small dots) over reference data (light grey
/// dots) in 2D, equal-ish axes covering both sets (clip to the reference's range padded by
/// 50%, so a few outliers do not shrink the picture). Both sets are (x, y) pairs.
/// Writes `<stem>.png` (500x500) and returns the PNG file's bytes too, with width and
/// height (for TensorBoard).
///
/// The view is the reference's bounding square grown by half its size (a
/// quarter on each side), or the samples' when there is no reference; samples
/// outside it are left out and counted in the title.
pub fn scatter_png(
    stem: &Path,
    title: &str,
    reference: &[(f64, f64)],
    samples: &[(f64, f64)],
) -> Result<(PathBuf, Vec<u8>, u32, u32), PlotError> {
    let plan = ScatterPlan::new(title, reference, samples);
    let path = with_suffix(stem, "png");
    ensure_font(&path)?;
    let png = draw_png(&path, SCATTER_SIZE, |root| plan.draw(root))?;
    write_atomically(&path, &png)?;
    Ok((path, png, SCATTER_SIZE.0, SCATTER_SIZE.1))
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
        let ys = points.iter().flatten().map(|p| p.1);
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

/// A scatter plot with its view decided, ready to draw.
struct ScatterPlan {
    title: String,
    view: (Range<f64>, Range<f64>),
    reference: Vec<(f64, f64)>,
    samples: Vec<(f64, f64)>,
}

impl ScatterPlan {
    fn new(title: &str, reference: &[(f64, f64)], samples: &[(f64, f64)]) -> Self {
        let finite = |points: &[(f64, f64)]| -> Vec<(f64, f64)> {
            points
                .iter()
                .copied()
                .filter(|&(x, y)| x.is_finite() && y.is_finite())
                .collect()
        };
        let reference = finite(reference);
        let samples = finite(samples);
        // Fall back to the samples' extent only when there is no reference to show.
        let basis = if reference.is_empty() {
            &samples
        } else {
            &reference
        };
        let view = square_view(basis);
        let inside = |&(x, y): &(f64, f64)| view.0.contains(&x) && view.1.contains(&y);
        let (samples, outside): (Vec<_>, Vec<_>) = samples.into_iter().partition(inside);
        let reference = reference.into_iter().filter(inside).collect();
        let title = match outside.len() {
            0 => title.to_owned(),
            1 => format!("{title} (1 sample outside view)"),
            n => format!("{title} ({n} samples outside view)"),
        };
        Self {
            title,
            view,
            reference,
            samples,
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&WHITE)?;
        let (x_range, y_range) = self.view.clone();
        // The label areas are sized so the plotting area comes out close to square.
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(Axis::Linear(x_range), Axis::Linear(y_range))?;
        chart
            .configure_mesh()
            .x_labels(6)
            .y_labels(6)
            .label_style(("sans-serif", 13))
            .light_line_style(WHITE)
            .bold_line_style(RGBColor(230, 230, 230))
            .draw()?;

        let grey = REFERENCE_GREY.filled();
        chart
            .draw_series(self.reference.iter().map(|&p| Circle::new(p, 2, grey)))?
            .label("reference")
            .legend(move |p| Circle::new(p, 4, grey));
        let colour = PALETTE[0].mix(0.7).filled();
        chart
            .draw_series(self.samples.iter().map(|&p| Circle::new(p, 2, colour)))?
            .label("samples")
            .legend(move |p| Circle::new(p, 4, colour));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()?;
        root.present()
    }
}

/// What plotters' drawing calls return for a backend.
type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A whole bitmap picture to draw on.
type BitMapArea<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// One axis of a chart.
///
/// plotters has a different coordinate type per scale, which would make the
/// drawing code generic over every x/y combination; one small type that maps
/// values and picks ticks itself keeps the drawing code plain.
#[derive(Clone, Debug)]
enum Axis {
    Linear(Range<f64>),
    /// Both ends positive.
    Log(Range<f64>),
    /// Index `i` is drawn at `i` and labelled `labels[i]`.
    Categories {
        range: Range<f64>,
        labels: Vec<String>,
    },
}

impl Axis {
    /// A range that covers `values` with a small margin; an empty or
    /// single-valued set gets a range around it instead of a zero-width one.
    fn fit(scale: Scale, values: impl Iterator<Item = f64>) -> Self {
        let bounds = min_max(values);
        match scale {
            Scale::Linear => {
                let (lo, hi) = bounds.unwrap_or((0.0, 1.0));
                // Halves first, so that values near f64::MAX do not overflow.
                let half_span = 0.5 * hi - 0.5 * lo;
                let pad = if half_span > f64::EPSILON * hi.abs().max(lo.abs()).max(1.0) {
                    0.1 * half_span
                } else {
                    0.1 * lo.abs().max(1.0)
                };
                Axis::Linear(clamp_finite(lo - pad)..clamp_finite(hi + pad))
            }
            Scale::Log => {
                let (lo, hi) = bounds.unwrap_or((1.0, 10.0));
                let (lo_log, hi_log) = (lo.log10(), hi.log10());
                let span = hi_log - lo_log;
                let pad = if span > 1e-9 { 0.05 * span } else { 0.5 };
                let end = |log: f64| clamp_finite(10f64.powf(log)).max(f64::MIN_POSITIVE);
                Axis::Log(end(lo_log - pad)..end(hi_log + pad))
            }
        }
    }

    /// Half a slot either side of the category indices (and of any stray x values).
    fn categories(labels: Vec<String>, values: impl Iterator<Item = f64>) -> Self {
        let last = labels.len().saturating_sub(1) as f64;
        let (lo, hi) = match min_max(values) {
            Some((lo, hi)) => (lo.min(0.0), hi.max(last)),
            None => (0.0, last),
        };
        Axis::Categories {
            range: lo - 0.5..hi + 0.5,
            labels,
        }
    }

    fn bounds(&self) -> &Range<f64> {
        match self {
            Axis::Linear(range) | Axis::Log(range) => range,
            Axis::Categories { range, .. } => range,
        }
    }
}

impl Ranged for Axis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let range = self.bounds();
        let (v, lo, hi) = match self {
            Axis::Log(_) => (value.ln(), range.start.ln(), range.end.ln()),
            _ => (*value, range.start, range.end),
        };
        // Halves, so that a range spanning most of f64 does not overflow.
        let fraction = (0.5 * v - 0.5 * lo) / (0.5 * hi - 0.5 * lo);
        let pixel = f64::from(limit.0) + fraction * f64::from(limit.1 - limit.0);
        // `as` saturates, so far-off values land at the edge instead of wrapping.
        pixel.round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        match self {
            Axis::Linear(range) => linear_ticks(range, hint.max_num_points()),
            Axis::Log(range) => log_ticks(range, hint.max_num_points()),
            Axis::Categories { range, labels } => {
                let count = labels.len();
                let step = count.div_ceil(hint.max_num_points().max(1)).max(1);
                (0..count)
                    .step_by(step)
                    .map(|i| i as f64)
                    .filter(|i| range.contains(i))
                    .collect()
            }
        }
    }

    fn range(&self) -> Range<f64> {
        self.bounds().clone()
    }
}

impl ValueFormatter<f64> for Axis {
    fn format(value: &f64) -> String {
        tick_label(*value)
    }

    fn format_ext(&self, value: &f64) -> String {
        if let Axis::Categories { labels, .. } = self {
            let index = value.round();
            if (value - index).abs() < 1e-9 && index >= 0.0 {
                if let Some(label) = labels.get(index as usize) {
                    return label.clone();
                }
            }
        }
        tick_label(*value)
    }
}

/// Ticks for a log axis: powers of ten, filled in with 2x and 5x when the
/// range spans too few decades to read, and plain linear ticks when even
/// that gives fewer than two.
fn log_ticks(range: &Range<f64>, max_points: usize) -> Vec<f64> {
    let max_points = max_points.max(2);
    let first = range.start.log10().ceil() as i32;
    let last = range.end.log10().floor() as i32;
    let decades: Vec<i32> = (first..=last).collect();
    if decades.len() >= 3 {
        let step = decades.len().div_ceil(max_points).max(1);
        return decades
            .into_iter()
            .step_by(step)
            .map(|e| 10f64.powi(e))
            .collect();
    }
    let ticks: Vec<f64> = (first - 1..=last)
        .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
        .filter(|v| range.contains(v))
        .collect();
    if ticks.len() >= 2 && ticks.len() <= max_points {
        ticks
    } else {
        linear_ticks(range, max_points)
    }
}

/// At most `max_points` ticks a round step apart (1, 2 or 5 times a power of
/// ten). Written here rather than borrowed from plotters, whose version
/// panics on NaN and can loop forever on extreme ranges.
fn linear_ticks(range: &Range<f64>, max_points: usize) -> Vec<f64> {
    let (lo, hi) = (range.start, range.end);
    let span = hi - lo;
    if max_points == 0 || span.is_nan() || span <= 0.0 {
        return vec![lo];
    }
    if span.is_infinite() {
        return vec![lo, hi];
    }
    let rough = span / max_points as f64;
    let magnitude = 10f64.powf(rough.log10().floor());
    let Some(step) = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|step| span / step < max_points as f64)
    else {
        return vec![lo, hi];
    };
    let (first, last) = ((lo / step).ceil(), (hi / step).floor());
    if !(step > 0.0 && first.is_finite() && last.is_finite() && first <= last) {
        return vec![lo, hi];
    }
    let count = ((last - first) as usize + 1).min(max_points);
    (0..count).map(|i| (first + i as f64) * step).collect()
}

/// Keeps an axis end finite when padding pushed it past f64's range.
fn clamp_finite(value: f64) -> f64 {
    value.clamp(f64::MIN, f64::MAX)
}

/// A compact tick label: plain decimals for everyday magnitudes, scientific
/// notation for very large or small ones, with floating-point noise rounded off.
fn tick_label(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    if !(1e-3..1e5).contains(&magnitude) {
        let text = format!("{value:.4e}");
        return match text.split_once('e') {
            Some((mantissa, exponent)) => format!("{}e{exponent}", trim_zeros(mantissa)),
            None => text,
        };
    }
    let decimals = (5 - magnitude.log10().floor() as i32).max(0) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_owned()
}

/// Drops trailing zeros after a decimal point, and the point itself if bare.
fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// Whether a value can be placed on an axis of this scale (subnormal numbers
/// are left off log axes: their logarithms lose all precision).
fn drawable(value: f64, scale: Scale) -> bool {
    value.is_finite() && (scale == Scale::Linear || value >= f64::MIN_POSITIVE)
}

fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// The square view around `points`: their bounding box made square (so both
/// axes share one scale) and grown by half, a quarter on each side.
fn square_view(points: &[(f64, f64)]) -> (Range<f64>, Range<f64>) {
    let xs = min_max(points.iter().map(|p| p.0)).unwrap_or((-1.0, 1.0));
    let ys = min_max(points.iter().map(|p| p.1)).unwrap_or((-1.0, 1.0));
    let size = (xs.1 - xs.0).max(ys.1 - ys.0);
    let size = if size.is_nan() || size <= 0.0 {
        2.0
    } else {
        size.min(f64::MAX)
    };
    let half = 0.75 * size;
    let around = |(lo, hi): (f64, f64)| {
        let centre = 0.5 * lo + 0.5 * hi;
        clamp_finite(centre - half)..clamp_finite(centre + half)
    };
    (around(xs), around(ys))
}

/// Makes sure plotters can find a font: with the `ab_glyph` feature it knows
/// only registered ones, and drawing text fails with FontUnavailable otherwise.
fn ensure_font(path: &Path) -> Result<(), PlotError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED.get_or_init(|| {
        register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular()).is_ok()
    });
    if registered {
        Ok(())
    } else {
        Err(PlotError::Draw {
            path: path.to_owned(),
            message: "the bundled DejaVu Sans font could not be loaded".to_owned(),
        })
    }
}

/// Renders a PNG and returns its bytes, leaving nothing behind on disk.
///
/// plotters encodes PNGs only when saving to a path, so the picture goes to a
/// temporary `.png` file next to `path` (the extension picks the encoder) and
/// is read back; the caller writes the final file.
fn draw_png(
    path: &Path,
    size: (u32, u32),
    draw: impl for<'b> FnOnce(&BitMapArea<'b>) -> DrawResult<BitMapBackend<'b>>,
) -> Result<Vec<u8>, PlotError> {
    let temp = temp_file_beside(path, ".png")?;
    {
        let root = BitMapBackend::new(temp.path(), size).into_drawing_area();
        draw(&root).map_err(|err| draw_error(path, err))?;
    }
    fs::read(temp.path()).map_err(|source| io_error(temp.path(), source))
}

/// Writes `bytes` to a temporary file next to `path` and renames it over `path`.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    let mut temp = temp_file_beside(path, ".tmp")?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|source| io_error(temp.path(), source))?;
    temp.persist(path)
        .map_err(|err| io_error(path, err.error))?;
    Ok(())
}

/// A hidden temporary file in `path`'s folder (created if missing).
///
/// It is created with the permissions an ordinary new file would get (0o666
/// less the umask) rather than tempfile's private 0o600, so that renamed into
/// place it is readable like any other output.
fn temp_file_beside(path: &Path, suffix: &str) -> Result<NamedTempFile, PlotError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".plot-").suffix(suffix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder
        .tempfile_in(dir)
        .map_err(|source| io_error(dir, source))
}

/// `stem` with `.extension` appended (not replacing any dot already in the name,
/// so `sweep_0.5` becomes `sweep_0.5.png`).
fn with_suffix(stem: &Path, extension: &str) -> PathBuf {
    let mut name = OsString::from(stem.as_os_str());
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

fn draw_error(path: &Path, err: impl std::fmt::Display) -> PlotError {
    PlotError::Draw {
        path: path.to_owned(),
        message: err.to_string(),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> PlotError {
    PlotError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

    /// Width and height from a PNG's IHDR chunk, which always comes first.
    fn png_size(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], PNG_SIGNATURE);
        assert_eq!(&png[12..16], b"IHDR");
        let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        (word(16), word(20))
    }

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
                    label: "euler".into(),
                    points: vec![(0.0, 0.2), (1.0, 0.03), (2.0, 0.004)],
                },
                Series {
                    label: "heun".into(),
                    points: vec![(0.0, 0.1), (1.0, 0.0), (2.0, 0.002)],
                },
                Series {
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

    #[test]
    fn scatter_returns_500_square_png() {
        let dir = tempfile::tempdir().unwrap();
        let reference: Vec<(f64, f64)> = (0..200)
            .map(|i| {
                let t = f64::from(i) * 0.1;
                (t.cos(), t.sin())
            })
            .collect();
        let samples = vec![(0.5, 0.5), (100.0, -100.0), (-0.9, 0.1)];
        let (path, png, width, height) =
            scatter_png(&dir.path().join("samples"), "step 10", &reference, &samples).unwrap();
        assert_eq!(path, dir.path().join("samples.png"));
        assert_eq!((width, height), (500, 500));
        assert_eq!(png_size(&png), (500, 500));
        assert_eq!(fs::read(&path).unwrap(), png);
    }

    #[test]
    fn bad_and_empty_data_do_not_fail() {
        let dir = tempfile::tempdir().unwrap();
        let chart = LineChart {
            title: "nan",
            x_label: "x",
            y_label: "y",
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
            x_categories: None,
            series: vec![Series {
                label: "bad".into(),
                points: vec![
                    (f64::NAN, 1.0),
                    (1.0, f64::INFINITY),
                    (-1.0, 2.0),
                    (2.0, 2.0),
                ],
            }],
        };
        line_chart(&dir.path().join("nan"), &chart).unwrap();
        let empty = LineChart {
            series: vec![],
            ..chart
        };
        line_chart(&dir.path().join("empty"), &empty).unwrap();
        let extreme = LineChart {
            y_scale: Scale::Log,
            series: vec![Series {
                label: "extreme".into(),
                points: vec![(1.0, f64::MAX), (2.0, 5e-324), (3.0, 1e-300)],
            }],
            ..empty.clone()
        };
        line_chart(&dir.path().join("extreme_log"), &extreme).unwrap();
        let extreme = LineChart {
            y_scale: Scale::Linear,
            series: vec![Series {
                label: "extreme".into(),
                points: vec![(1.0, f64::MAX), (2.0, -f64::MAX)],
            }],
            ..extreme
        };
        line_chart(&dir.path().join("extreme_linear"), &extreme).unwrap();

        let nan = [(f64::NAN, 0.0), (0.0, f64::NEG_INFINITY)];
        scatter_png(&dir.path().join("s1"), "nan", &nan, &nan).unwrap();
        scatter_png(&dir.path().join("s2"), "empty", &[], &[]).unwrap();
        scatter_png(&dir.path().join("s3"), "one", &[(3.0, 3.0)], &[(3.0, 3.0)]).unwrap();
        let huge = [(f64::MAX, -f64::MAX), (-f64::MAX, f64::MAX)];
        scatter_png(&dir.path().join("s4"), "huge", &huge, &huge).unwrap();
    }

    #[test]
    fn unwritable_destination_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("blocker");
        fs::write(&blocker, b"").unwrap();
        let err = scatter_png(&blocker.join("plot"), "t", &[], &[]).unwrap_err();
        assert!(err.to_string().contains("blocker"), "{err}");
    }

    #[test]
    fn axes_cope_with_degenerate_ranges() {
        let Axis::Linear(range) = Axis::fit(Scale::Linear, [2.0, 2.0].into_iter()) else {
            panic!("linear axis expected");
        };
        assert!(range.start < 2.0 && range.end > 2.0);
        let Axis::Log(range) = Axis::fit(Scale::Log, [5.0].into_iter()) else {
            panic!("log axis expected");
        };
        assert!(range.start > 0.0 && range.start < 5.0 && range.end > 5.0);
        assert_eq!(log_ticks(&(1e-4..1e2), 10).len(), 7);
    }

    #[test]
    fn linear_ticks_are_round_and_bounded() {
        assert_eq!(
            linear_ticks(&(0.0..10.0), 11),
            (0..=10).map(f64::from).collect::<Vec<_>>()
        );
        assert_eq!(linear_ticks(&(-0.05..1.05), 5), vec![0.0, 0.5, 1.0]);
        assert!(linear_ticks(&(0.0..10.0), 10).len() <= 10);
        assert_eq!(linear_ticks(&(1.0..1.0), 5), vec![1.0]);
        assert_eq!(linear_ticks(&(-f64::MAX..f64::MAX), 5).len(), 2);
    }

    #[test]
    fn tick_labels_are_compact() {
        assert_eq!(tick_label(0.30000000000000004), "0.3");
        assert_eq!(tick_label(1e-4), "1e-4");
        assert_eq!(tick_label(2.5e6), "2.5e6");
        assert_eq!(tick_label(30.0), "30");
        assert_eq!(tick_label(-0.125), "-0.125");
    }
}
