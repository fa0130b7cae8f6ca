//! What can stop a sweep once its trials are resolved, each error naming the file, the
//! trial or the path and the fix.

use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::evaluate::EvaluateError;
use crate::train::TrainError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(Box<ConfigError>),
    #[error("{0}")]
    Registry(String),
    #[error("in {file}, trial {index} ({label}): {source}")]
    Train {
        file: String,
        index: usize,
        label: String,
        source: Box<TrainError>,
    },
    #[error("in {file}, trial {index} ({label}): {source}")]
    Evaluate {
        file: String,
        index: usize,
        label: String,
        source: Box<EvaluateError>,
    },
    #[error("in {file}, preparing the feature extractor `{extractor}`: {message}")]
    Features {
        file: String,
        extractor: String,
        message: String,
    },
    #[error("cannot write {path}: {message}. Fix: check that the results folder is writable (choose another with --results DIR)")]
    Write { path: PathBuf, message: String },
    #[error(
        "the results folder {} is in use by another sweep ({holder}). Fix: wait for that sweep \
         to finish, or write elsewhere with --results DIR; if no sweep is running there, \
         delete {}/.lock",
        .folder.display(),
        .folder.display()
    )]
    Locked { folder: PathBuf, holder: String },
    #[error(
        "cannot read the checkpoint {path}: {message}. Fix: delete that model folder to retrain"
    )]
    Checkpoint { path: PathBuf, message: String },
}

impl From<ConfigError> for RunError {
    fn from(error: ConfigError) -> Self {
        RunError::Config(Box::new(error))
    }
}

pub(super) fn write_error(path: &Path, error: impl std::fmt::Display) -> RunError {
    RunError::Write {
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}
