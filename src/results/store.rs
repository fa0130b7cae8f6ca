//! The results layout of one sweep, and atomic writes (temp file + rename), so a killed
//! sweep never leaves a half-written file where a finished one is expected.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(folder)?;
    // Named `.tmp*` (a sweep's start removes leftovers of killed runs by that name), and
    // created 0o666 less the umask like any new file, not tempfile's private 0o600.
    let mut builder = tempfile::Builder::new();
    builder.prefix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(folder)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}

pub fn write_json(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    write_atomic(path, text.as_bytes())
}

pub fn write_yaml(path: &Path, value: &impl Serialize) -> std::io::Result<()> {
    let text = serde_yaml::to_string(value).map_err(std::io::Error::other)?;
    write_atomic(path, text.as_bytes())
}

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
