//! Legends, drawn in a panel beside the data (never over it): one entry per series with a
//! sample of its line, dash and marker, long labels wrapped.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::output::DrawResult;
use super::style::SeriesStyle;
use super::text::{line_height, text_size, wrap, LABEL_SIZE};

/// Widest a label may be before it is wrapped.
const MAX_LABEL_WIDTH: u32 = 260;
/// Room for the sample of line and marker left of each label.
const SAMPLE_WIDTH: u32 = 40;
const PADDING: u32 = 10;
const ENTRY_GAP: u32 = 4;

/// A legend laid out: each entry's style and its label's lines.
#[derive(Clone, Debug)]
pub(super) struct Legend {
    entries: Vec<(SeriesStyle, Vec<String>)>,
    /// Whether entries show a line (line charts) or only a marker (dot charts).
    lines: bool,
}

impl Legend {
    /// `None` when there is nothing to tell apart (fewer than two series).
    pub fn new(labels: &[String], lines: bool) -> Option<Self> {
        (labels.len() > 1).then(|| Legend {
            entries: labels
                .iter()
                .enumerate()
                .map(|(i, label)| {
                    (
                        SeriesStyle::nth(i),
                        wrap(label, LABEL_SIZE, MAX_LABEL_WIDTH),
                    )
                })
                .collect(),
            lines,
        })
    }

    /// The panel's width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        let widest = self
            .entries
            .iter()
            .flat_map(|(_, lines)| lines.iter())
            .map(|line| text_size(line, LABEL_SIZE).0)
            .max()
            .unwrap_or(0);
        let rows: u32 = self.entries.iter().map(|(_, l)| l.len() as u32).sum();
        let height = rows * line_height(LABEL_SIZE) + self.entries.len() as u32 * ENTRY_GAP;
        (
            widest + SAMPLE_WIDTH + 3 * PADDING,
            height + 2 * PADDING + 30,
        )
    }

    /// Draws the entries from the top of `area`, below a gap that lines them up with the
    /// top of the plotting area.
    pub fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let style = ("sans-serif", LABEL_SIZE)
            .into_text_style(area)
            .pos(Pos::new(HPos::Left, VPos::Top));
        let row = line_height(LABEL_SIZE) as i32;
        let (width, _) = area.dim_in_pixel();
        let mut y = 30 + PADDING as i32;
        let top = y - PADDING as i32 / 2;
        for (series, lines) in &self.entries {
            let middle = y + row / 2 - 2;
            let (left, right) = (PADDING as i32 + 2, (PADDING + SAMPLE_WIDTH) as i32 - 6);
            if self.lines {
                series.draw_line(area, vec![(left, middle), (right, middle)], 2)?;
            }
            series.draw_marker(area, ((left + right) / 2, middle), (0, 0), 4, true)?;
            for (i, line) in lines.iter().enumerate() {
                let at = ((PADDING + SAMPLE_WIDTH) as i32, y + i as i32 * row);
                area.draw_text(line, &style, at)?;
            }
            y += lines.len() as i32 * row + ENTRY_GAP as i32;
        }
        area.draw(&Rectangle::new(
            [
                (2, top),
                (width as i32 - PADDING as i32, y + PADDING as i32 / 2),
            ],
            RGBColor(160, 160, 160).stroke_width(1),
        ))
    }
}
