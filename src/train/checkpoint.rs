//! A training run's snapshot on disk: read back to resume, written atomically every
//! `every` steps and when Ctrl-C asks the run to stop, checked against the training config
//! so that a snapshot is never resumed under another one.

use std::fs;
use std::path::PathBuf;

use candle_core::Device;
use candle_nn::VarMap;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::resumable::{Hooks, OnStep};
use super::Snapshot;

/// Hears whether the snapshot on disk was resumed (`Ok`) or set aside, and why (`Err`).
pub type OnResume<'a, S> = &'a mut dyn FnMut(Result<&Snapshot<S>, String>);

/// Where and how often a run keeps its snapshot.
pub struct Checkpoints {
    /// The snapshot file (beside the artifact's folder: `artifact::Artifact::checkpoint`).
    pub path: PathBuf,
    /// The trainee's variable names, in the loop's order.
    pub names: Vec<String>,
    /// The training config the snapshot belongs to.
    pub config: String,
    /// Steps between snapshots (0: only when stopping).
    pub every: usize,
}

impl Checkpoints {
    pub fn new(path: PathBuf, variables: &VarMap, config: String, every: usize) -> Self {
        let names = crate::optim::sorted_vars(variables)
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        Checkpoints {
            path,
            names,
            config,
            every,
        }
    }

    /// The snapshot to resume from, if one fits this run; `log` hears which (one that does
    /// not fit is reported and replaced by the next snapshot).
    pub fn resume<S: Serialize + DeserializeOwned>(
        &self,
        device: &Device,
        log: OnResume<'_, S>,
    ) -> Option<Snapshot<S>> {
        let bytes = fs::read(&self.path).ok()?;
        match Snapshot::from_bytes(&bytes, &self.names, &self.config, device) {
            Ok(snapshot) => {
                log(Ok(&snapshot));
                Some(snapshot)
            }
            Err(message) => {
                log(Err(message));
                None
            }
        }
    }

    /// Hooks that save each snapshot here, stop when Ctrl-C was pressed, and report
    /// progress to `on_log`.
    pub fn hooks<'a, S: Serialize + DeserializeOwned>(
        &'a self,
        on_log: OnStep<'a>,
    ) -> Hooks<'a, S> {
        Hooks {
            on_log,
            snapshot_every: self.every,
            on_snapshot: Box::new(move |snapshot: &Snapshot<S>| {
                let bytes = snapshot.to_bytes(&self.names, &self.config)?;
                crate::crash::point("checkpoint.write");
                crate::artifact::write_atomic(&self.path, &bytes)
                    .map_err(|e| format!("{}: {e}", self.path.display()))?;
                crate::crash::point("checkpoint.written");
                Ok(())
            }),
            stop_requested: &crate::interrupt::requested,
        }
    }
}
