//! What a launch gives back: [`Launched`] when it ran or submitted the sweep,
//! [`LaunchError`] when it stopped.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::run::{RunError, SweepReport};

/// What `runner sweep` did.
pub enum Launched {
    /// The sweep ran to its end (here, or on Slurm while this process waited).
    Finished(SweepReport),
    /// Tasks were submitted (or were already in flight) and this process did not wait.
    Submitted { folder: PathBuf },
}

/// Why a launch stopped.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Run(Box<RunError>),
    /// Slurm refused, or what it or the tasks left cannot be used.
    #[error("{0}")]
    Slurm(String),
    /// Options that do not go together.
    #[error("{0}")]
    Usage(String),
    /// Ctrl-C while waiting: the submitted tasks keep running.
    #[error("{0}")]
    StoppedWaiting(String),
}

impl From<RunError> for LaunchError {
    fn from(error: RunError) -> Self {
        LaunchError::Run(Box::new(error))
    }
}

impl From<ConfigError> for LaunchError {
    fn from(error: ConfigError) -> Self {
        LaunchError::Run(Box::new(RunError::from(error)))
    }
}
