//! The colours, markers and dashes every chart shares, and how a series' style is drawn.
//!
//! A series is told apart by three things at once: its colour (Tableau 10), its marker
//! (five shapes) and its line's dash (three patterns). Series `i` takes colour `i % 10`,
//! marker `(i / 10) % 5` and dash `(i / 10) % 3`, so the first ten differ in colour, the
//! next ten repeat the colours with other markers and dashes, and no two of the first 150
//! series look alike.

use plotters::coord::CoordTranslate;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::output::DrawResult;

/// Tableau 10: distinct, colour-blind-aware, and all readable on white.
pub(super) const PALETTE: [RGBColor; 10] = [
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

/// The shape drawn at a series' points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Marker {
    Circle,
    Square,
    Triangle,
    Diamond,
    Cross,
}

const MARKERS: [Marker; 5] = [
    Marker::Circle,
    Marker::Square,
    Marker::Triangle,
    Marker::Diamond,
    Marker::Cross,
];

/// How a series' line is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Dash {
    Solid,
    Dashed,
    Dotted,
}

const DASHES: [Dash; 3] = [Dash::Solid, Dash::Dashed, Dash::Dotted];

/// Everything that tells one series from another.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SeriesStyle {
    pub colour: RGBColor,
    pub marker: Marker,
    pub dash: Dash,
}

impl SeriesStyle {
    /// The style of the series at `index` (see the module's note).
    pub fn nth(index: usize) -> Self {
        let round = index / PALETTE.len();
        SeriesStyle {
            colour: PALETTE[index % PALETTE.len()],
            marker: MARKERS[round % MARKERS.len()],
            dash: DASHES[round % DASHES.len()],
        }
    }

    /// Draws the series' marker at `at` moved by `shift` pixels, `radius` pixels from its
    /// centre to its edge; `filled` false draws an outline (a single seed beside the mean).
    pub fn draw_marker<DB: DrawingBackend, CT: CoordTranslate>(
        &self,
        area: &DrawingArea<DB, CT>,
        at: CT::From,
        shift: (i32, i32),
        radius: i32,
        filled: bool,
    ) -> DrawResult<DB>
    where
        CT::From: Clone + 'static,
    {
        let style = if filled {
            self.colour.filled()
        } else {
            self.colour.stroke_width(1)
        };
        let r = radius;
        let p = |x: i32, y: i32| (x + shift.0, y + shift.1);
        let corners = match self.marker {
            Marker::Circle => {
                return area.draw(&(EmptyElement::at(at) + Circle::new(shift, r, style)));
            }
            Marker::Cross => {
                let stroke = self.colour.stroke_width(if filled { 2 } else { 1 });
                return area.draw(
                    &(EmptyElement::at(at)
                        + PathElement::new(vec![p(-r, -r), p(r, r)], stroke)
                        + PathElement::new(vec![p(-r, r), p(r, -r)], stroke)),
                );
            }
            Marker::Square => vec![p(-r, -r), p(r, -r), p(r, r), p(-r, r)],
            Marker::Triangle => vec![p(0, -r - 1), p(r + 1, r), p(-r - 1, r)],
            Marker::Diamond => vec![p(0, -r - 1), p(r + 1, 0), p(0, r + 1), p(-r - 1, 0)],
        };
        if filled {
            area.draw(&(EmptyElement::at(at) + Polygon::new(corners, style)))
        } else {
            let mut closed = corners.clone();
            closed.push(corners[0]);
            area.draw(&(EmptyElement::at(at) + PathElement::new(closed, style)))
        }
    }

    /// Draws the series' line through `points` (in drawing order), `width` pixels wide.
    pub fn draw_line<DB: DrawingBackend, CT: CoordTranslate>(
        &self,
        area: &DrawingArea<DB, CT>,
        points: Vec<CT::From>,
        width: u32,
    ) -> DrawResult<DB>
    where
        CT::From: Clone + 'static,
    {
        let stroke = self.colour.stroke_width(width);
        match self.dash {
            Dash::Solid => area.draw(&PathElement::new(points, stroke)),
            Dash::Dashed => area.draw(&DashedPathElement::new(points, 9, 5, stroke)),
            Dash::Dotted => area.draw(&DashedPathElement::new(points, 2, 4, stroke)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_150_series_all_look_different() {
        let key = |s: SeriesStyle| (s.colour.rgb(), s.marker, s.dash);
        let mut seen = std::collections::HashSet::new();
        for i in 0..150 {
            assert!(
                seen.insert(key(SeriesStyle::nth(i))),
                "series {i} repeats a style"
            );
        }
        // Series 0 and 10 share a colour and differ in marker and dash.
        let (a, b) = (SeriesStyle::nth(0), SeriesStyle::nth(10));
        assert_eq!(a.colour, b.colour);
        assert!(a.marker != b.marker && a.dash != b.dash);
    }
}
