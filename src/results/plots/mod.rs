//! Charts of experiment results, drawn with plotters.
//!
//! Every picture is drawn with the DejaVu Sans font bundled into the binary,
//! so no system fonts are needed, and every file is written to a temporary
//! file in the target folder and renamed into place, so a reader never sees a
//! half-drawn chart. Bad data (NaN, infinities, non-positive values on a log
//! axis) is skipped rather than reported: a chart with a gap is more useful
//! than no chart.
//!
//! `line` draws line charts, `dots` dot charts over unordered categories, `heatmap`
//! heatmaps over two swept keys and `scatter` scatter plots; they build on `axis` (scales,
//! ticks, tick labels), `style` (colour × marker × dash of each series), `text` (measuring
//! and wrapping), `frame` (title above, legend or colour key beside the data, the picture
//! sized to hold them), `legend` and `output` (font, PNG and SVG rendering, atomic writes,
//! `PlotError`). `images` tiles image data (sample grids and
//! denoising strips) with the `image` crate.

mod axis;
mod dots;
mod frame;
mod heatmap;
mod images;
mod legend;
mod line;
mod output;
mod scatter;
mod style;
mod text;

pub use axis::Scale;
pub use dots::{dot_chart, DotChart};
pub use heatmap::{cell_text, heatmap, Heatmap};
pub use images::{denoising_strip_png, image_grid_png, Picture};
pub use line::{line_chart, LineChart, Series};
pub use output::PlotError;
pub use scatter::scatter_png;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_and_empty_data_do_not_fail() {
        let dir = tempfile::tempdir().unwrap();
        let chart = LineChart {
            title: "nan",
            x_label: "x",
            y_label: "y",
            x_scale: Scale::Log,
            y_scale: Scale::Linear,
            series: vec![Series {
                label: "bad".into(),
                points: vec![
                    (f64::NAN, 1.0),
                    (1.0, f64::INFINITY),
                    (-1.0, 2.0),
                    (2.0, 2.0),
                ],
                ..Series::default()
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
                ..Series::default()
            }],
            ..empty.clone()
        };
        line_chart(&dir.path().join("extreme_log"), &extreme).unwrap();
        let extreme = LineChart {
            y_scale: Scale::Linear,
            series: vec![Series {
                label: "extreme".into(),
                points: vec![(1.0, f64::MAX), (2.0, -f64::MAX)],
                ..Series::default()
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
}
