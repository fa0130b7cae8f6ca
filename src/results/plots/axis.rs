//! Axes: the linear and log scales a chart can use, how each maps
//! values to pixels, where its ticks go and how tick values are labelled.

use std::ops::Range;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

/// How an axis is drawn.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scale {
    Linear,
    Log,
    /// Log where the values are all positive and span more than two decades, else linear.
    Auto,
}

impl Scale {
    /// `Auto` decided for `values` (non-finite ones ignored); other scales as they are.
    pub fn resolve(self, values: impl Iterator<Item = f64>) -> Scale {
        if self != Scale::Auto {
            return self;
        }
        match min_max(values.filter(|v| v.is_finite())) {
            Some((lo, hi)) if lo > 0.0 && hi / lo > 100.0 => Scale::Log,
            _ => Scale::Linear,
        }
    }
}

/// One axis of a chart.
///
/// plotters has a different coordinate type per scale, which would make the
/// drawing code generic over every x/y combination; one small type that maps
/// values and picks ticks itself keeps the drawing code plain.
#[derive(Clone, Debug)]
pub(super) enum Axis {
    Linear(Range<f64>),
    /// Both ends positive.
    Log(Range<f64>),
}

impl Axis {
    /// A range that covers `values` with a small margin; an empty or
    /// single-valued set gets a range around it instead of a zero-width one.
    pub(super) fn fit(scale: Scale, values: impl Iterator<Item = f64>) -> Self {
        let bounds = min_max(values);
        match scale {
            Scale::Linear | Scale::Auto => {
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

    /// The scale values are drawn on (categories are linear in their indices).
    pub(super) fn scale(&self) -> Scale {
        match self {
            Axis::Log(_) => Scale::Log,
            Axis::Linear(_) => Scale::Linear,
        }
    }

    fn bounds(&self) -> &Range<f64> {
        match self {
            Axis::Linear(range) | Axis::Log(range) => range,
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
    if max_points == 0 {
        return Vec::new();
    }
    if span.is_nan() || span <= 0.0 {
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
pub(super) fn clamp_finite(value: f64) -> f64 {
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
pub(super) fn drawable(value: f64, scale: Scale) -> bool {
    value.is_finite() && (scale != Scale::Log || value >= f64::MIN_POSITIVE)
}

/// The smallest and largest of `values`, or `None` when there are none.
pub(super) fn min_max(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn auto_is_log_past_two_decades_of_positive_values() {
        // noise_scales' FD: 0.003 to 6348, six decades.
        let fd = [0.003, 1.2, 48.0, 6348.0];
        assert_eq!(Scale::Auto.resolve(fd.into_iter()), Scale::Log);
        assert_eq!(Scale::Auto.resolve([1.0, 99.0].into_iter()), Scale::Linear);
        assert_eq!(Scale::Auto.resolve([0.0, 1e4].into_iter()), Scale::Linear);
        assert_eq!(
            Scale::Auto.resolve([f64::NAN, 1.0, 1e3].into_iter()),
            Scale::Log
        );
        assert_eq!(Scale::Linear.resolve(fd.into_iter()), Scale::Linear);
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
