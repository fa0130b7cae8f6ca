//! A small TensorBoard event-file writer and reader.
//!
//! We write our own instead of using `tensorboard-rs`, which panics on I/O
//! errors, writes from a background thread and transposes non-square images.
//! An event file is a sequence of TFRecords (`record.rs`), each holding one protobuf
//! `Event`; the messages (`event.rs`) are hand-written `prost` structs carrying only the
//! fields of TensorFlow's `event.proto` and `summary.proto` that we use. `writer.rs` and
//! `reader.rs` build and read the files (`live.rs` appends to one while a model trains),
//! `hparams.rs` adds TensorBoard's HParams plugin.

mod error;
mod event;
mod hparams;
mod live;
mod reader;
mod record;
mod writer;

pub use error::TensorBoardError;
pub use hparams::{
    write_hparams_experiment, write_hparams_session, HParam, HParamValue, FAILURE_TAG,
};
pub use live::LiveWriter;
pub use reader::{event_files, read_events, EventValue, ReadEvent};
pub use writer::EventWriter;

#[cfg(test)]
mod tests;
