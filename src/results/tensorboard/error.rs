//! [`TensorBoardError`]: everything that can go wrong while writing or reading event files,
//! with the helpers that build its common cases.

use std::path::{Path, PathBuf};

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

pub(super) fn io_error(path: &Path, source: std::io::Error) -> TensorBoardError {
    TensorBoardError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(super) fn format_error(path: &Path, reason: String) -> TensorBoardError {
    TensorBoardError::Format {
        path: path.to_owned(),
        reason,
    }
}
