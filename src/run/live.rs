//! Training streamed to TensorBoard while it runs: each loss record's figures (the loss, its
//! parts, the learning rate, the moving average's decay, steps per second) appended to the
//! event files of the runs that wait for the model, written out every few seconds
//! (`SCORELAB_TENSORBOARD_SECONDS`, default 2). A trial's run is rewritten whole when the
//! trial is saved; what a stage or a plugin trains (an autoencoder, a distillation round, a
//! classifier) keeps a run of its own.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{write_error, RunError};
use super::progress::seconds_from_env;
use crate::artifact::LiveRecord;
use crate::results::tensorboard::LiveWriter;
use crate::train::Logged;

/// Seconds between writes (`SCORELAB_TENSORBOARD_SECONDS` sets it; default 2).
fn write_interval() -> Duration {
    seconds_from_env("SCORELAB_TENSORBOARD_SECONDS", 2.0)
}

/// The live event files of one training run, with the tag section its figures go under
/// (`train`, `autoencoder`).
pub(super) struct LiveRuns {
    writers: Vec<LiveWriter>,
    section: String,
    /// Set when a write failed: the log stops, training goes on.
    broken: Option<String>,
}

impl LiveRuns {
    /// Opens a live event file in each run folder; a folder that cannot be written fails
    /// here, before any training.
    pub fn open(runs: &[PathBuf], section: &str) -> Result<Self, RunError> {
        let every = write_interval();
        let writers = runs
            .iter()
            .map(|dir| LiveWriter::create(dir, "live", every).map_err(|e| write_error(dir, e)))
            .collect::<Result<_, _>>()?;
        Ok(LiveRuns {
            writers,
            section: section.to_string(),
            broken: None,
        })
    }

    /// Appends one record's figures to every run; the first failed write is reported on
    /// `out` and ends the live log (the trial's run is written whole when it is saved).
    pub fn record(&mut self, logged: &Logged, out: &mut dyn Write) {
        if self.broken.is_some() {
            return;
        }
        let step = logged.step as i64;
        let figures = logged.figures(&self.section);
        for writer in &mut self.writers {
            for (tag, value) in &figures {
                if let Err(e) = writer.add_scalar(tag, *value, step) {
                    let _ = writeln!(out, "  warning: the live TensorBoard log stopped: {e}");
                    self.broken = Some(e.to_string());
                    return;
                }
            }
        }
    }
}

/// What plugins train (a guidance or feature classifier) streamed to a run per artifact,
/// `tb/<artifact folder>`, opened at its first record (a loaded artifact writes nothing).
pub(super) struct ArtifactRuns {
    tb: PathBuf,
    writers: HashMap<String, LiveWriter>,
    /// Why the live log stopped (training goes on), once a write failed.
    broken: Option<String>,
}

impl ArtifactRuns {
    /// Runs under the sweep's log folder `tb`.
    pub fn new(tb: &Path) -> Self {
        ArtifactRuns {
            tb: tb.to_path_buf(),
            writers: HashMap::new(),
            broken: None,
        }
    }

    /// Appends one record; the first failure ends the live log.
    pub fn record(&mut self, record: &LiveRecord) {
        if self.broken.is_none() {
            self.broken = self.write(record).err();
        }
    }

    /// Reports on `out` why the live log stopped, if it did.
    pub fn report(&self, out: &mut dyn Write) {
        if let Some(message) = &self.broken {
            let _ = writeln!(
                out,
                "  warning: the live TensorBoard log stopped: {message}"
            );
        }
    }

    fn write(&mut self, record: &LiveRecord) -> Result<(), String> {
        let writer = match self.writers.entry(record.artifact.to_string()) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let dir = self.tb.join(record.artifact);
                let writer = LiveWriter::create(&dir, "live", write_interval())
                    .map_err(|e| e.to_string())?;
                entry.insert(writer)
            }
        };
        for (tag, value) in record.figures {
            writer
                .add_scalar(tag, *value, record.step as i64)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
