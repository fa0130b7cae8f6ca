//! Writing pictures to disk: the bundled font, PNG rendering to bytes in memory, atomic
//! writes (a temporary file beside the target, renamed into place) and the
//! errors these produce.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ColorType, ImageEncoder};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use tempfile::NamedTempFile;

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

/// What plotters' drawing calls return for a backend.
pub(super) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A whole bitmap picture to draw on.
pub(super) type BitMapArea<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// Makes sure plotters can find a font: with the `ab_glyph` feature it knows
/// only registered ones, and drawing text fails with FontUnavailable otherwise.
pub(super) fn ensure_font(path: &Path) -> Result<(), PlotError> {
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

/// Renders a PNG in memory and returns its bytes.
///
/// The picture is drawn into an RGB buffer and encoded with fast compression and one filter
/// (`Up`) for every row. plotters' own PNG output goes through a file, and the image crate's
/// default adaptive filter tries all five filters on every row: together two thirds of a
/// sweep's summary time for charts of flat colours that compress as well either way.
pub(super) fn draw_png(
    path: &Path,
    size: (u32, u32),
    draw: impl for<'b> FnOnce(&BitMapArea<'b>) -> DrawResult<BitMapBackend<'b>>,
) -> Result<Vec<u8>, PlotError> {
    let (width, height) = size;
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
        draw(&root).map_err(|err| draw_error(path, err))?;
        root.present().map_err(|err| draw_error(path, err))?;
    }
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Fast, FilterType::Up)
        .write_image(&pixels, width, height, ColorType::Rgb8)
        .map_err(|err| draw_error(path, err))?;
    Ok(png)
}

/// A chart that can be drawn on any backend: what `draw_both` needs.
pub(super) trait Drawing {
    /// The picture's width and height in pixels.
    fn size(&self) -> (u32, u32);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Draws `chart` as `<stem>.png` and `<stem>.svg` (the same layout: the browser check
/// measures the SVG's text) and returns both paths.
pub(super) fn draw_both(stem: &Path, chart: &impl Drawing) -> Result<Vec<PathBuf>, PlotError> {
    let png_path = with_suffix(stem, "png");
    let svg_path = with_suffix(stem, "svg");
    ensure_font(&png_path)?;
    let size = chart.size();
    let png = draw_png(&png_path, size, |root| chart.draw(root))?;
    write_atomically(&png_path, &png)?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        chart
            .draw(&root)
            .and_then(|()| root.present())
            .map_err(|err| draw_error(&svg_path, err))?;
    }
    write_atomically(&svg_path, svg.as_bytes())?;
    Ok(vec![png_path, svg_path])
}

/// Writes `bytes` to a temporary file next to `path` and renames it over `path`, so that
/// a killed run never leaves half a picture. Not synced to disk: pictures are drawn from
/// results that are (the tables, the samples), and a sweep's end redraws them; a power cut
/// can cost the newest picture, never a result. (Syncing each was a third of a quickstart
/// sweep's summary time.)
pub(super) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    let mut temp = temp_file_beside(path, ".tmp")?;
    temp.write_all(bytes)
        .map_err(|source| io_error(temp.path(), source))?;
    crate::crash::point("plot.write");
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
pub(super) fn with_suffix(stem: &Path, extension: &str) -> PathBuf {
    let mut name = OsString::from(stem.as_os_str());
    name.push(".");
    name.push(extension);
    PathBuf::from(name)
}

pub(super) fn draw_error(path: &Path, err: impl std::fmt::Display) -> PlotError {
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

/// The eight bytes every PNG file starts with.
#[cfg(test)]
pub(super) const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Width and height from a PNG's IHDR chunk, which always comes first.
#[cfg(test)]
pub(super) fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], PNG_SIGNATURE);
    assert_eq!(&png[12..16], b"IHDR");
    let word = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    (word(16), word(20))
}
