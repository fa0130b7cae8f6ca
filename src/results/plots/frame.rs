//! A chart's frame: the wrapped title across the top, the body (axes and data) below it on
//! the left and a side panel (legend or colour key) on the right, the picture sized to hold
//! all three, so nothing is clipped and no legend covers data.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::text::{Title, TITLE_SIZE};

/// The body's and the side panel's drawing areas.
pub(super) type Areas<DB> = (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>);

/// Where a chart's parts go.
#[derive(Clone, Debug)]
pub(super) struct Frame {
    pub title: Title,
    body: (u32, u32),
    panel: (u32, u32),
}

impl Frame {
    /// `body` is the size the axes and data need, `panel` the side panel's ((0, 0) for none).
    pub fn new(title: &str, body: (u32, u32), panel: (u32, u32)) -> Self {
        Self::with_title(Title::new(title, TITLE_SIZE, body.0 + panel.0), body, panel)
    }

    pub fn with_title(title: Title, body: (u32, u32), panel: (u32, u32)) -> Self {
        Frame { title, body, panel }
    }

    /// The picture's width and height.
    pub fn size(&self) -> (u32, u32) {
        (
            self.body.0 + self.panel.0,
            self.title.height() + self.body.1.max(self.panel.1),
        )
    }

    /// Paints the background and the title, and returns the body's and the panel's areas.
    pub fn split<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> Result<Areas<DB>, DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let (top, rest) = root.split_vertically(self.title.height());
        self.title.draw(&top)?;
        Ok(rest.split_horizontally(self.body.0))
    }
}
