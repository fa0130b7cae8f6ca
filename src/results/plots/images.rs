//! Pictures of image data: a grid of items (samples or real data) and a denoising strip
//! (one sample at several noise levels along its sampling run). Pixels in [-1, 1] map to
//! 0..255; values outside are clipped (samplers overshoot a little). Encoded as PNG with the
//! `image` crate and written atomically.

use std::path::Path;

use image::{ImageBuffer, ImageOutputFormat, Rgb};

use crate::dataset::Samples;
use crate::results::store::write_atomic;

/// Blank pixels between tiles.
const GAP: u32 = 2;
const GAP_GREY: u8 = 40;

/// A PNG picture: its bytes and size (what TensorBoard's image summary takes).
pub struct Picture {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Tiles (each a (C, H, W) item with C = 1 or 3) in rows of `columns`, every pixel scaled up
/// `zoom` times. Non-finite values are drawn red.
fn tile(items: &[&[f64]], shape: (usize, usize, usize), columns: usize, zoom: u32) -> Picture {
    let (channels, h, w) = shape;
    let columns = columns.clamp(1, items.len().max(1));
    let rows = items.len().div_ceil(columns).max(1);
    let (tile_w, tile_h) = (w as u32 * zoom, h as u32 * zoom);
    let width = columns as u32 * (tile_w + GAP) + GAP;
    let height = rows as u32 * (tile_h + GAP) + GAP;
    let mut canvas = ImageBuffer::from_pixel(width, height, Rgb([GAP_GREY; 3]));
    let level = |v: f64| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
    for (index, item) in items.iter().enumerate() {
        let (left, top) = (
            GAP + (index % columns) as u32 * (tile_w + GAP),
            GAP + (index / columns) as u32 * (tile_h + GAP),
        );
        for y in 0..h {
            for x in 0..w {
                let value = |c: usize| item[(c.min(channels - 1) * h + y) * w + x];
                let pixel = if (0..channels).all(|c| value(c).is_finite()) {
                    Rgb([level(value(0)), level(value(1)), level(value(2))])
                } else {
                    Rgb([255, 0, 0])
                };
                for dy in 0..zoom {
                    for dx in 0..zoom {
                        let (px, py) = (left + x as u32 * zoom + dx, top + y as u32 * zoom + dy);
                        canvas.put_pixel(px, py, pixel);
                    }
                }
            }
        }
    }
    let mut png = Vec::new();
    canvas
        .write_to(&mut std::io::Cursor::new(&mut png), ImageOutputFormat::Png)
        .expect("encoding a PNG in memory cannot fail");
    Picture { png, width, height }
}

/// Enough zoom that a tile is at least 64 pixels across.
fn zoom_for(width: usize) -> u32 {
    (64 / width.max(1)).max(1) as u32
}

/// Writes the first `count` items of image data as a grid PNG at `path` (8 per row). `None`
/// when the items are not images of 1 or 3 channels.
pub fn image_grid_png(
    path: &Path,
    items: &Samples,
    count: usize,
) -> std::io::Result<Option<Picture>> {
    let Some(shape @ (channels, _, w)) = items.image_shape() else {
        return Ok(None);
    };
    if channels != 1 && channels != 3 {
        return Ok(None);
    }
    let rows: Vec<&[f64]> = items.rows().take(count).collect();
    let picture = tile(&rows, shape, 8, zoom_for(w));
    write_atomic(path, &picture.png)?;
    Ok(Some(picture))
}

/// Writes a strip of `frames` states of one sample along its sampling run, from noise to
/// data, picked at noise levels evenly spaced in log sigma from `trace` (sigma, x^ in sigma
/// space). Each state is shown as x^ / sqrt(1 + sigma^2), the variance-preserving view, so
/// noise and data share one brightness scale.
pub fn denoising_strip_png(
    path: &Path,
    shape: &[usize],
    trace: &[(f64, Vec<f64>)],
    frames: usize,
) -> std::io::Result<Option<Picture>> {
    let ([channels, h, w], Some(last)) = (shape, trace.last()) else {
        return Ok(None);
    };
    if (*channels != 1 && *channels != 3) || trace.len() < 2 || frames < 2 {
        return Ok(None);
    }
    let positive: Vec<f64> = trace.iter().map(|(s, _)| *s).filter(|s| *s > 0.0).collect();
    let (Some(high), Some(low)) = (
        positive.iter().copied().reduce(f64::max),
        positive.iter().copied().reduce(f64::min),
    ) else {
        return Ok(None);
    };
    let mut picks: Vec<usize> = (0..frames - 1)
        .map(|k| {
            let target = high.ln() + (low.ln() - high.ln()) * k as f64 / (frames - 2).max(1) as f64;
            (0..trace.len())
                .filter(|&i| trace[i].0 > 0.0)
                .min_by(|&a, &b| {
                    let gap = |i: usize| (trace[i].0.ln() - target).abs();
                    gap(a).total_cmp(&gap(b))
                })
                .unwrap_or(0)
        })
        .collect();
    picks.dedup();
    let mut states: Vec<Vec<f64>> = picks
        .iter()
        .map(|&i| {
            let (sigma, x) = &trace[i];
            let scale = 1.0 / (1.0 + sigma * sigma).sqrt();
            x.iter().map(|v| v * scale).collect()
        })
        .collect();
    // The last model input is the final state but one; the run's end is the sample itself,
    // which the grid shows, so the strip ends at the lowest traced level.
    if states.is_empty() {
        states.push(last.1.clone());
    }
    let rows: Vec<&[f64]> = states.iter().map(Vec::as_slice).collect();
    let picture = tile(&rows, (*channels, *h, *w), rows.len(), zoom_for(*w));
    write_atomic(path, &picture.png)?;
    Ok(Some(picture))
}
