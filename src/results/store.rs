//! The results layout of one sweep, and atomic writes (temp file + rename), so a killed
//! sweep never leaves a half-written file where a finished one is expected.

use std::path::{Path, PathBuf};

pub use crate::artifact::{write_atomic, write_json, write_yaml};

/// `results/<experiment>/` and the places inside it (see DESIGN.md, results layout).
#[derive(Debug, Clone)]
pub struct SweepFolder {
    pub root: PathBuf,
}

impl SweepFolder {
    pub fn new(results: &Path, experiment: &str) -> Self {
        SweepFolder {
            root: results.join(experiment),
        }
    }

    pub fn experiment_file(&self) -> PathBuf {
        self.root.join("experiment.yaml")
    }

    pub fn model(&self, train_id: &str) -> PathBuf {
        self.root.join("models").join(train_id)
    }

    pub fn trial(&self, trial_id: &str) -> PathBuf {
        self.root.join("trials").join(trial_id)
    }

    /// Where a trial is assembled before it is renamed into place.
    pub fn partial_trial(&self, trial_id: &str) -> PathBuf {
        self.root
            .join("trials")
            .join(format!(".partial-{trial_id}"))
    }

    pub fn tensorboard(&self, trial_id: &str) -> PathBuf {
        self.root.join("tb").join(trial_id)
    }

    /// Where feature extractors cache what they train (shared by the sweep's trials).
    pub fn features(&self) -> PathBuf {
        self.root.join("features")
    }

    pub fn plots(&self) -> PathBuf {
        self.root.join("plots")
    }

    pub fn table(&self, extension: &str) -> PathBuf {
        self.root.join(format!("metrics.{extension}"))
    }
}
