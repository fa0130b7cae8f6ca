//! Reading event files back: every record's CRCs checked, the file version checked, and
//! each scalar or image returned with its step, time and tag.

use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;

use super::error::{format_error, io_error, TensorBoardError};
use super::event::{Event, Payload, What, FILE_VERSION};
use super::record::{split_record, RecordFault};

/// `DataType.DT_STRING` of TensorFlow's `types.proto`: a text summary's tensor.
const DT_STRING: i32 = 7;

/// One decoded summary value read back from an event file.
#[derive(Debug, Clone, PartialEq)]
pub enum EventValue {
    Scalar(f32),
    Image {
        width: u32,
        height: u32,
        png: Vec<u8>,
    },
    /// A text summary (a failed trial's cause).
    Text(String),
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
/// Values of kinds this module does not write (histograms, tensors other than text) are
/// skipped.
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
                Some(Payload::Tensor(tensor)) if tensor.dtype == DT_STRING => {
                    let text = tensor.string_val.concat();
                    EventValue::Text(String::from_utf8_lossy(&text).into_owned())
                }
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
