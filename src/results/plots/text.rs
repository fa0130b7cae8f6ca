//! Text that fits: measuring a string in the bundled font, wrapping it into lines no wider
//! than a width, and drawing a chart's (possibly several-line) title.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::output::{ensure_font, DrawResult};

/// Title font size, in plotters' units (the same in PNG and SVG).
pub(super) const TITLE_SIZE: f64 = 22.0;
/// Titles of the smaller scatter plots.
pub(super) const SMALL_TITLE_SIZE: f64 = 18.0;
/// Tick labels, legend entries and category labels.
pub(super) const LABEL_SIZE: f64 = 14.0;
/// Axis descriptions.
pub(super) const AXIS_SIZE: f64 = 16.0;

/// Width and height in pixels of `text` drawn at `size`.
pub(super) fn text_size(text: &str, size: f64) -> (u32, u32) {
    // Registers the bundled font on first use; an error shows again when drawing.
    let _ = ensure_font(std::path::Path::new(""));
    ("sans-serif", size)
        .into_font()
        .box_size(text)
        // Only when no font could be registered, and then nothing is drawn anyway.
        .unwrap_or((
            (text.chars().count() as f64 * size * 0.6) as u32,
            size as u32,
        ))
}

/// Height of one line of text at `size`, with its leading.
pub(super) fn line_height(size: f64) -> u32 {
    (size * 1.3).ceil() as u32
}

/// `text` in lines at most `width` pixels wide at `size`: broken after spaces and commas
/// where it can, inside a word only where a word alone is too wide.
pub(super) fn wrap(text: &str, size: f64, width: u32) -> Vec<String> {
    let fits = |line: &str| text_size(line, size).0 <= width;
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for token in tokens(text) {
        let joined = format!("{line}{token}");
        if fits(joined.trim_end()) || line.is_empty() && fits(token.trim_end()) {
            line = joined;
            continue;
        }
        if !line.trim().is_empty() {
            lines.push(line.trim_end().to_owned());
        }
        line = String::new();
        // A token too wide alone is cut where it stops fitting.
        for c in token.chars() {
            let longer = format!("{line}{c}");
            if !line.is_empty() && !fits(longer.trim_end()) {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    if !line.trim().is_empty() || lines.is_empty() {
        lines.push(line.trim_end().to_owned());
    }
    lines
}

/// Pieces of `text` that end where a line may break: after a space or a comma.
fn tokens(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ' ' || c == ',' {
            pieces.push(&text[start..i + c.len_utf8()]);
            start = i + c.len_utf8();
        }
    }
    if start < text.len() {
        pieces.push(&text[start..]);
    }
    pieces
}

/// A title wrapped to a chart's width, and the height it needs.
#[derive(Clone, Debug)]
pub(super) struct Title {
    pub lines: Vec<String>,
    size: f64,
}

impl Title {
    /// Side margin kept free on both sides of every title line.
    const MARGIN: u32 = 10;

    /// `text` at `size` wrapped to fit `image_width`.
    pub fn new(text: &str, size: f64, image_width: u32) -> Self {
        Title {
            lines: wrap(text, size, image_width.saturating_sub(2 * Self::MARGIN)),
            size,
        }
    }

    pub fn height(&self) -> u32 {
        line_height(self.size) * self.lines.len() as u32 + 12
    }

    /// Draws the lines centred at the top of `area`.
    pub fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let (width, _) = area.dim_in_pixel();
        let style = ("sans-serif", self.size)
            .into_text_style(area)
            .pos(Pos::new(HPos::Center, VPos::Top));
        for (i, line) in self.lines.iter().enumerate() {
            let y = 8 + line_height(self.size) * i as u32;
            area.draw_text(line, &style, ((width / 2) as i32, y as i32))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_fit_their_width_and_keep_every_character() {
        let title = "fd against network evaluations (network=mlp,schedule.sigma_max=auto,\
                     weighting.kind=sigma_squared) with a verylongwordthatcannotbreakanywhere";
        for width in [120, 300, 500] {
            let lines = wrap(title, TITLE_SIZE, width);
            assert!(lines.len() > 1);
            for line in &lines {
                assert!(
                    text_size(line, TITLE_SIZE).0 <= width,
                    "{line:?} wider than {width}"
                );
            }
            let rejoined: String = lines.concat().chars().filter(|c| *c != ' ').collect();
            let original: String = title.chars().filter(|c| *c != ' ').collect();
            assert_eq!(rejoined, original);
        }
        assert_eq!(wrap("short", TITLE_SIZE, 500), vec!["short".to_string()]);
        assert_eq!(wrap("", TITLE_SIZE, 500), vec![String::new()]);
    }
}
