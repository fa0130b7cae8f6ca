//! [`LiveWriter`]: an event file a run appends to while it trains, so that TensorBoard shows
//! the loss as it falls. TensorBoard tails event files by offset, so the file is appended
//! to, never replaced; only whole records are written (buffered, then written at most every
//! `every` and when the writer is flushed or dropped), so a reader sees at worst the last
//! record missing.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;

use super::error::{io_error, TensorBoardError};
use super::event::{Event, Payload, What, FILE_VERSION};
use super::record::frame_record;
use super::writer::value_event;

/// How many numbered variants of the file name `create` tries before giving up.
const MAX_NAME_ATTEMPTS: u32 = 1000;

/// An event file appended to as values arrive.
#[derive(Debug)]
pub struct LiveWriter {
    path: PathBuf,
    file: File,
    /// Framed records not yet written.
    pending: Vec<u8>,
    last_write: Instant,
    every: Duration,
}

impl LiveWriter {
    /// Creates `events.out.tfevents.<unix seconds>.scorelab-<what>` in `dir` (and `dir`),
    /// never replacing a file (`.1`, `.2`, … is appended to a taken name), and writes its
    /// version record at once, so a folder that cannot be written fails here.
    pub fn create(dir: &Path, what: &str, every: Duration) -> Result<Self, TensorBoardError> {
        fs::create_dir_all(dir).map_err(|source| io_error(dir, source))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let name = format!("events.out.tfevents.{}.scorelab-{what}", now.as_secs());
        let mut attempt = 0;
        let (path, file) = loop {
            let path = match attempt {
                0 => dir.join(&name),
                n => dir.join(format!("{name}.{n}")),
            };
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e)
                    if e.kind() == std::io::ErrorKind::AlreadyExists
                        && attempt < MAX_NAME_ATTEMPTS =>
                {
                    attempt += 1
                }
                Err(e) => return Err(io_error(&path, e)),
            }
        };
        let mut writer = LiveWriter {
            path,
            file,
            pending: Vec::new(),
            last_write: Instant::now(),
            every,
        };
        writer.push(Event {
            wall_time: now.as_secs_f64(),
            step: 0,
            what: Some(What::FileVersion(FILE_VERSION.to_owned())),
        });
        writer.flush()?;
        Ok(writer)
    }

    /// Records a scalar (as TensorBoard's 32-bit float); written out when `every` has passed
    /// since the last write.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<(), TensorBoardError> {
        self.push(value_event(tag, Payload::SimpleValue(value as f32), step));
        if self.last_write.elapsed() >= self.every {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes every buffered record to the end of the file.
    pub fn flush(&mut self) -> Result<(), TensorBoardError> {
        self.last_write = Instant::now();
        if self.pending.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.pending);
        self.file
            .write_all(&bytes)
            .and_then(|()| self.file.flush())
            .map_err(|source| io_error(&self.path, source))
    }

    /// Where the event file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn push(&mut self, event: Event) {
        frame_record(&mut self.pending, &event.encode_to_vec());
    }
}

impl Drop for LiveWriter {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
