//! [`EventWriter`]: buffers scalars and images in memory and writes them out as one event
//! file, atomically, so a reader never sees a half-written record.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use super::error::{io_error, TensorBoardError};
use super::event::{Event, Payload, Summary, SummaryImage, SummaryValue, What, FILE_VERSION};
use super::record::frame_record;

/// How many numbered variants of the file name `create` tries before giving up.
const MAX_NAME_ATTEMPTS: u32 = 1000;

/// `Summary.Image.colorspace` for RGB, the fallback when a PNG header is unreadable.
const COLORSPACE_RGB: i32 = 3;

/// Buffers events in memory and writes them out as one TensorBoard event file.
///
/// Values reach the disk only at [`EventWriter::flush`], which rewrites the
/// whole file atomically, so a reader never sees a half-written record.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    /// Framed records, starting with the file-version record.
    records: Vec<u8>,
}

impl EventWriter {
    /// Checks the folder can be created and written to (creates it) and names the file
    /// `events.out.tfevents.<unix seconds>.scorelab`.
    ///
    /// The file itself is written, holding only the version record, so that a
    /// folder we cannot write to fails here rather than at the end of a run.
    /// It never replaces an existing file: should another writer have taken
    /// the name within the same second, `.1`, `.2`, ... is appended.
    pub fn create(dir: &Path) -> Result<Self, TensorBoardError> {
        Self::create_as(dir, "scorelab")
    }

    /// As [`EventWriter::create`], the file named `events.out.tfevents.<unix seconds>.<what>`
    /// (a run's parts: `scorelab-session` is its HParams session).
    pub fn create_as(dir: &Path, what: &str) -> Result<Self, TensorBoardError> {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut writer = Self {
            path: PathBuf::new(),
            records: Vec::new(),
        };
        writer.push(Event {
            wall_time: now.as_secs_f64(),
            step: 0,
            what: Some(What::FileVersion(FILE_VERSION.to_owned())),
        });

        let name = format!("events.out.tfevents.{}.{what}", now.as_secs());
        // The file claims its name; `flush` rewrites it whole (synced), so it is not synced.
        let mut temp = writer.write_temp(dir, false)?;
        let mut attempt = 0;
        loop {
            let path = match attempt {
                0 => dir.join(&name),
                n => dir.join(format!("{name}.{n}")),
            };
            match temp.persist_noclobber(&path) {
                Ok(_) => {
                    writer.path = path;
                    return Ok(writer);
                }
                Err(err)
                    if err.error.kind() == std::io::ErrorKind::AlreadyExists
                        && attempt < MAX_NAME_ATTEMPTS =>
                {
                    temp = err.file;
                    attempt += 1;
                }
                Err(err) => return Err(io_error(&path, err.error)),
            }
        }
    }

    /// Records a scalar; TensorBoard stores it as a 32-bit float.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: i64) {
        self.push_value(tag, Payload::SimpleValue(value as f32), step);
    }

    /// `png` is an encoded PNG file; width/height are its pixel size.
    pub fn add_png(&mut self, tag: &str, png: &[u8], width: u32, height: u32, step: i64) {
        let image = SummaryImage {
            height: saturating_i32(height),
            width: saturating_i32(width),
            colorspace: png_colorspace(png),
            encoded_image_string: png.to_vec(),
        };
        self.push_value(tag, Payload::Image(image), step);
    }

    /// Writes everything buffered atomically: write to a temp file in the same folder,
    /// then rename over the event file. Can be called more than once (rewrites the whole
    /// file each time).
    pub fn flush(&mut self) -> Result<(), TensorBoardError> {
        let dir = self.path.parent().unwrap_or_else(|| Path::new("."));
        let temp = self.write_temp(dir, true)?;
        temp.persist(&self.path)
            .map_err(|err| io_error(&self.path, err.error))?;
        Ok(())
    }

    /// Where the event file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Everything buffered, in a temporary file in `dir` (synced if `sync`) ready to be
    /// renamed.
    fn write_temp(
        &self,
        dir: &Path,
        sync: bool,
    ) -> Result<tempfile::NamedTempFile, TensorBoardError> {
        let mut temp = temp_file_in(dir).map_err(|source| io_error(dir, source))?;
        temp.write_all(&self.records)
            .and_then(|()| {
                if sync {
                    temp.as_file().sync_all()
                } else {
                    Ok(())
                }
            })
            .map_err(|source| io_error(temp.path(), source))?;
        Ok(temp)
    }

    fn push_value(&mut self, tag: &str, payload: Payload, step: i64) {
        self.push(value_event(tag, payload, step));
    }

    pub(super) fn push(&mut self, event: Event) {
        frame_record(&mut self.records, &event.encode_to_vec());
    }
}

/// An event holding one summary value, stamped now.
pub(super) fn value_event(tag: &str, payload: Payload, step: i64) -> Event {
    Event {
        wall_time: wall_time_now(),
        step,
        what: Some(What::Summary(Summary {
            value: vec![SummaryValue {
                tag: tag.to_owned(),
                value: Some(payload),
                metadata: None,
            }],
        })),
    }
}

/// TensorBoard's colorspace for a PNG, from the colour type in its IHDR chunk,
/// so that greyscale or RGBA images are labelled correctly.
fn png_colorspace(png: &[u8]) -> i32 {
    // Signature (8) + chunk length (4) + "IHDR" (4) + width (4) + height (4) + bit depth (1).
    const COLOR_TYPE_OFFSET: usize = 25;
    match png.get(COLOR_TYPE_OFFSET) {
        Some(0) => 1, // greyscale
        Some(4) => 2, // greyscale + alpha
        Some(6) => 4, // RGBA
        _ => COLORSPACE_RGB,
    }
}

/// A hidden temporary file in `dir`, created with the permissions an ordinary
/// new file would get (0o666 less the umask) rather than tempfile's private
/// 0o600, so the renamed event file is readable by a shared TensorBoard.
fn temp_file_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(dir)
}

fn saturating_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

pub(super) fn wall_time_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
