//! Scatter plots of 2D samples over reference data: `scatter_png` and the
//! square view it fits around the reference, under a title wrapped to the picture's width.

use std::ops::Range;
use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::axis::{clamp_finite, min_max, Axis};
use super::frame::Frame;
use super::output::{draw_png, ensure_font, with_suffix, write_atomically, DrawResult, PlotError};
use super::style::PALETTE;
use super::text::{Title, SMALL_TITLE_SIZE};

/// Pixel size of a scatter plot below its title: 500x500 in all with a one-line title (near
/// square, so both axes get the same scale); a longer title is wrapped above it, taller.
const SCATTER_BODY: (u32, u32) = (500, 464);

/// Light enough that samples drawn on top stay visible.
const REFERENCE_GREY: RGBColor = RGBColor(190, 190, 190);

/// Scatter of generated samples (coloured, small dots) over reference data (light grey
/// dots) in 2D, equal-ish axes covering both sets (clip to the reference's range padded by
/// 50%, so a few outliers do not shrink the picture). Both sets are (x, y) pairs.
/// Writes `<stem>.png` (500x500, taller where the title takes several lines)
/// and returns the PNG file's bytes too, with width and height (for TensorBoard, which then
/// shows the same picture as the report).
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
    let size = plan.frame.size();
    let png = draw_png(&path, size, |root| plan.draw(root))?;
    write_atomically(&path, &png)?;
    Ok((path, png, size.0, size.1))
}

/// A scatter plot with its view decided, ready to draw.
struct ScatterPlan {
    frame: Frame,
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
            frame: Frame::with_title(
                Title::new(&title, SMALL_TITLE_SIZE, SCATTER_BODY.0),
                SCATTER_BODY,
                (0, 0),
            ),
            view,
            reference,
            samples,
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (body, _) = self.frame.split(root)?;
        let (x_range, y_range) = self.view.clone();
        // The label areas are sized so the plotting area comes out close to square.
        let mut chart = ChartBuilder::on(&body)
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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::results::plots::output::png_size;
    use crate::results::plots::text::text_size;

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
        assert_eq!(png_size(&png), (width, height));
        assert_eq!(fs::read(&path).unwrap(), png);
        // A title of a long trial label takes more lines, each inside the picture.
        let long = "network=mlp,num_levels=10,sigma_max=auto,weighting=sigma_squared \
                    (samples over held-out data)";
        let plan = ScatterPlan::new(long, &reference, &samples);
        assert!(plan.frame.title.lines.len() >= 2);
        for line in &plan.frame.title.lines {
            assert!(text_size(line, SMALL_TITLE_SIZE).0 + 20 <= 500, "{line}");
        }
        let (_, png, _, tall) =
            scatter_png(&dir.path().join("long"), long, &reference, &samples).unwrap();
        assert!(tall > height && png_size(&png) == (500, tall));
    }

    #[test]
    fn unwritable_destination_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("blocker");
        fs::write(&blocker, b"").unwrap();
        let err = scatter_png(&blocker.join("plot"), "t", &[], &[]).unwrap_err();
        assert!(err.to_string().contains("blocker"), "{err}");
    }
}
