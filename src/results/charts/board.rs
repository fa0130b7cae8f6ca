//! The sweep's charts in TensorBoard: the same PNG files the report shows, as images of one
//! run, `tb/charts`, each tagged by its file's name (`fd_heatmap_network-mlp`), so the Images
//! tab and report.html show the same pictures.

use std::fs;
use std::path::{Path, PathBuf};

use crate::results::tensorboard::EventWriter;

/// The run that holds the charts, beside the trials' runs in `tb/`.
pub const CHARTS_RUN: &str = "charts";

/// Replaces the charts run in `tb` with `pictures` (PNG files). An earlier sweep's event
/// file there is removed first, so the run shows the charts of the folder as it is now.
pub fn write_tensorboard(tb: &Path, pictures: &[PathBuf]) -> Result<(), String> {
    let dir = tb.join(CHARTS_RUN);
    if let Ok(entries) = fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("events.out.tfevents.") {
                fs::remove_file(entry.path()).map_err(|e| format!("{name}: {e}"))?;
            }
        }
    }
    if pictures.is_empty() {
        return Ok(());
    }
    let mut events = EventWriter::create(&dir).map_err(|e| e.to_string())?;
    for path in pictures {
        let png = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let Some((width, height)) = png_size(&png) else {
            continue;
        };
        let tag = path.file_stem().unwrap_or_default().to_string_lossy();
        events.add_png(&tag, &png, width, height, 0);
    }
    events.flush().map_err(|e| e.to_string())
}

/// Width and height from a PNG's header, `None` for anything else.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    let word = |at: usize| Some(u32::from_be_bytes(png.get(at..at + 4)?.try_into().ok()?));
    (png.starts_with(b"\x89PNG\r\n\x1a\n") && png.get(12..16) == Some(b"IHDR"))
        .then(|| Some((word(16)?, word(20)?)))
        .flatten()
}
