//! A small TensorBoard event-file writer and reader.
//!
//! We write our own instead of using `tensorboard-rs`, which panics on I/O
//! errors, writes from a background thread and transposes non-square images.
//! An event file is a sequence of TFRecords, each holding one protobuf `Event`;
//! the messages below are hand-written `prost` structs carrying only the fields
//! of TensorFlow's `event.proto` and `summary.proto` that we use.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

/// The version string TensorBoard expects in the first record of every file.
const FILE_VERSION: &str = "brain.Event:2";

mod hparams;
pub use hparams::{write_hparams_experiment, HParam, HParamValue};

/// Added to every rotated CRC, as TFRecord prescribes.
const CRC_MASK_DELTA: u32 = 0xa282_ead8;

/// How many numbered variants of the file name `create` tries before giving up.
const MAX_NAME_ATTEMPTS: u32 = 1000;

/// `Summary.Image.colorspace` for RGB, the fallback when a PNG header is unreadable.
const COLORSPACE_RGB: i32 = 3;

/// Everything that can go wrong while writing or reading event files.
///
/// Messages include their cause's text, because callers often keep only
/// `to_string()`; the cause is still available through `source()`.
#[derive(Debug, thiserror::Error)]
pub enum TensorBoardError {
    /// The file system refused an operation on `path`.
    #[error("TensorBoard event file I/O failed for {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A record's length or data does not match its checksum.
    #[error("corrupt event file {}: {part} CRC mismatch at byte {offset}", .path.display())]
    Crc {
        path: PathBuf,
        offset: u64,
        part: &'static str,
    },
    /// The file ends in the middle of a record.
    #[error("truncated event file {}: the record at byte {offset} is incomplete", .path.display())]
    Truncated { path: PathBuf, offset: u64 },
    /// A record passed its checksums but is not an `Event` message.
    #[error("invalid event in {} at byte {offset}: {source}", .path.display())]
    Decode {
        path: PathBuf,
        offset: u64,
        #[source]
        source: prost::DecodeError,
    },
    /// The records are well formed but do not make a valid event file.
    #[error("invalid event file {}: {reason}", .path.display())]
    Format { path: PathBuf, reason: String },
}

/// `tensorflow.Event`; the `what` oneof is limited to the two cases we write.
#[derive(Clone, PartialEq, prost::Message)]
struct Event {
    #[prost(double, tag = "1")]
    wall_time: f64,
    #[prost(int64, tag = "2")]
    step: i64,
    #[prost(oneof = "What", tags = "3, 5")]
    what: Option<What>,
}

/// `Event.what`.
#[derive(Clone, PartialEq, prost::Oneof)]
enum What {
    #[prost(string, tag = "3")]
    FileVersion(String),
    #[prost(message, tag = "5")]
    Summary(Summary),
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
struct Summary {
    #[prost(message, repeated, tag = "1")]
    value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`; other kinds of value (histograms, audio) are skipped by
/// prost when reading and come back as `value: None`.
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryValue {
    #[prost(string, tag = "1")]
    tag: String,
    #[prost(oneof = "Payload", tags = "2, 4, 8")]
    value: Option<Payload>,
    /// Which TensorBoard plugin reads the value, and its data (HParams).
    #[prost(message, optional, tag = "9")]
    metadata: Option<hparams::SummaryMetadata>,
}

/// `Summary.Value.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
enum Payload {
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    #[prost(message, tag = "4")]
    Image(SummaryImage),
    #[prost(message, tag = "8")]
    Tensor(hparams::TensorProto),
}

/// `tensorflow.Summary.Image`: an encoded PNG plus its size.
#[derive(Clone, PartialEq, prost::Message)]
struct SummaryImage {
    #[prost(int32, tag = "1")]
    height: i32,
    #[prost(int32, tag = "2")]
    width: i32,
    #[prost(int32, tag = "3")]
    colorspace: i32,
    #[prost(bytes = "vec", tag = "4")]
    encoded_image_string: Vec<u8>,
}

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

        let name = format!("events.out.tfevents.{}.scorelab", now.as_secs());
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
        self.push(Event {
            wall_time: wall_time_now(),
            step,
            what: Some(What::Summary(Summary {
                value: vec![SummaryValue {
                    tag: tag.to_owned(),
                    value: Some(payload),
                    metadata: None,
                }],
            })),
        });
    }

    fn push(&mut self, event: Event) {
        frame_record(&mut self.records, &event.encode_to_vec());
    }
}

/// One decoded summary value read back from an event file.
#[derive(Debug, Clone, PartialEq)]
pub enum EventValue {
    Scalar(f32),
    Image {
        width: u32,
        height: u32,
        png: Vec<u8>,
    },
}

/// One summary value with the event it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadEvent {
    pub step: i64,
    pub wall_time: f64,
    pub tag: String,
    pub value: EventValue,
}

/// Reads an event file, verifying both CRCs of every record (error on mismatch or
/// truncation), and returns every summary value in order (the file_version record is
/// checked to be first and equal to "brain.Event:2", and not returned).
///
/// Values of kinds this module does not write (histograms, tensors) are skipped.
pub fn read_events(path: &Path) -> Result<Vec<ReadEvent>, TensorBoardError> {
    let bytes = fs::read(path).map_err(|source| io_error(path, source))?;
    let mut values = Vec::new();
    let mut rest = bytes.as_slice();
    let mut first = true;
    while !rest.is_empty() {
        let offset = (bytes.len() - rest.len()) as u64;
        let (data, after) = split_record(rest).map_err(|fault| match fault {
            RecordFault::Truncated => TensorBoardError::Truncated {
                path: path.to_owned(),
                offset,
            },
            RecordFault::Crc(part) => TensorBoardError::Crc {
                path: path.to_owned(),
                offset,
                part,
            },
        })?;
        rest = after;
        let event = Event::decode(data).map_err(|source| TensorBoardError::Decode {
            path: path.to_owned(),
            offset,
            source,
        })?;
        if first {
            check_file_version(path, &event)?;
            first = false;
            continue;
        }
        let Some(What::Summary(summary)) = event.what else {
            continue;
        };
        for value in summary.value {
            let decoded = match value.value {
                Some(Payload::SimpleValue(v)) => EventValue::Scalar(v),
                Some(Payload::Image(image)) => EventValue::Image {
                    width: image_dimension(path, image.width)?,
                    height: image_dimension(path, image.height)?,
                    png: image.encoded_image_string,
                },
                // HParams summaries are read by TensorBoard itself, not by us.
                Some(Payload::Tensor(_)) | None => continue,
            };
            values.push(ReadEvent {
                step: event.step,
                wall_time: event.wall_time,
                tag: value.tag,
                value: decoded,
            });
        }
    }
    if first {
        return Err(format_error(path, "the file is empty".to_owned()));
    }
    Ok(values)
}

/// Finds the event files (name contains "tfevents") in a folder, sorted by name.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>, TensorBoardError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|source| io_error(dir, source))? {
        let entry = entry.map_err(|source| io_error(dir, source))?;
        let is_file = entry
            .file_type()
            .map_err(|source| io_error(&entry.path(), source))?
            .is_file();
        if is_file && entry.file_name().to_string_lossy().contains("tfevents") {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Why a record could not be split off; the caller adds path and offset.
enum RecordFault {
    Truncated,
    Crc(&'static str),
}

/// Appends one TFRecord: length, masked CRC of the length, data, masked CRC of the data.
fn frame_record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// Splits the first TFRecord off `bytes`, checking both CRCs; returns its data and the rest.
fn split_record(bytes: &[u8]) -> Result<(&[u8], &[u8]), RecordFault> {
    let (len_bytes, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or(RecordFault::Truncated)?;
    let (len_crc, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(RecordFault::Truncated)?;
    if u32::from_le_bytes(*len_crc) != masked_crc(len_bytes) {
        return Err(RecordFault::Crc("length"));
    }
    let len =
        usize::try_from(u64::from_le_bytes(*len_bytes)).map_err(|_| RecordFault::Truncated)?;
    let (data, rest) = rest.split_at_checked(len).ok_or(RecordFault::Truncated)?;
    let (data_crc, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(RecordFault::Truncated)?;
    if u32::from_le_bytes(*data_crc) != masked_crc(data) {
        return Err(RecordFault::Crc("data"));
    }
    Ok((data, rest))
}

/// The CRC32C of `data`, rotated and offset as TFRecord requires, so that a CRC
/// stored inside CRC'd data does not checksum to a trivial value.
fn masked_crc(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(CRC_MASK_DELTA)
}

fn check_file_version(path: &Path, event: &Event) -> Result<(), TensorBoardError> {
    match &event.what {
        Some(What::FileVersion(version)) if version == FILE_VERSION => Ok(()),
        Some(What::FileVersion(version)) => Err(format_error(
            path,
            format!("file version is {version:?}, expected {FILE_VERSION:?}"),
        )),
        _ => Err(format_error(
            path,
            "the first record is not a file_version event".to_owned(),
        )),
    }
}

fn image_dimension(path: &Path, value: i32) -> Result<u32, TensorBoardError> {
    u32::try_from(value)
        .map_err(|_| format_error(path, format!("image dimension {value} is negative")))
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

fn wall_time_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn io_error(path: &Path, source: std::io::Error) -> TensorBoardError {
    TensorBoardError::Io {
        path: path.to_owned(),
        source,
    }
}

fn format_error(path: &Path, reason: String) -> TensorBoardError {
    TensorBoardError::Format {
        path: path.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests;
