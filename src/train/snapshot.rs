//! A training run frozen between two steps: weights, Adam's moments, the EMA, the position
//! of every random stream and the loss records so far. Resuming from a snapshot gives
//! exactly the numbers of a run that was never stopped.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::records::LevelState;
use crate::optim::AdamState;
use crate::rng::RngState;

/// The tensor-free part of a snapshot, stored as JSON in the file's metadata. `S` is the
/// state of the run's loss records (a diffusion model's: loss windows and history).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Progress<S = LevelState> {
    /// Steps completed.
    pub step: usize,
    pub adam_steps: usize,
    /// The training stream (batches, noise levels, noise).
    pub rng: RngState,
    /// The network's own streams (dropout), in the network's order.
    pub network_rngs: Vec<RngState>,
    /// The loss records (their fields sit beside the others, as before they were generic).
    #[serde(flatten)]
    pub records: S,
    /// Training seconds spent before the snapshot.
    pub seconds: f64,
}

pub struct Snapshot<S = LevelState> {
    pub progress: Progress<S>,
    /// In the network's sorted variable order, like every tensor list here.
    pub weights: Vec<Tensor>,
    pub adam: AdamState,
    /// The weights' moving average (the weights themselves when the run keeps none).
    pub ema: Vec<Tensor>,
}

const GROUPS: [&str; 4] = ["weights", "adam_m", "adam_v", "ema"];

impl<S: Serialize + DeserializeOwned> Snapshot<S> {
    /// The snapshot as a safetensors file; `config` (the training config) is stored so a
    /// snapshot is never resumed under another config.
    pub fn to_bytes(&self, names: &[String], config: &str) -> Result<Vec<u8>, String> {
        let progress = serde_json::to_string(&self.progress).map_err(|e| e.to_string())?;
        let metadata = HashMap::from([
            ("config".to_string(), config.to_string()),
            ("progress".to_string(), progress),
        ]);
        let lists = [
            &self.weights,
            &self.adam.first_moment,
            &self.adam.second_moment,
            &self.ema,
        ];
        let tensors = GROUPS.iter().zip(lists).flat_map(|(group, list)| {
            names
                .iter()
                .zip(list.iter())
                .map(move |(name, tensor)| (format!("{group}/{name}"), tensor))
        });
        safetensors::serialize(tensors, Some(metadata)).map_err(|e| e.to_string())
    }

    /// Reads a snapshot written by [`Snapshot::to_bytes`] for the same variables and config.
    pub fn from_bytes(
        bytes: &[u8],
        names: &[String],
        config: &str,
        device: &Device,
    ) -> Result<Snapshot<S>, String> {
        let (_, header) =
            safetensors::SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
        let metadata = header.metadata().clone().unwrap_or_default();
        if metadata.get("config").map(String::as_str) != Some(config) {
            return Err("it was written for another training config".into());
        }
        let progress: Progress<S> = serde_json::from_str(
            metadata
                .get("progress")
                .ok_or("it has no progress record")?,
        )
        .map_err(|e| format!("its progress record is unreadable: {e}"))?;
        let mut tensors =
            candle_core::safetensors::load_buffer(bytes, device).map_err(|e| e.to_string())?;
        let mut group = |group: &str| -> Result<Vec<Tensor>, String> {
            names
                .iter()
                .map(|name| {
                    tensors
                        .remove(&format!("{group}/{name}"))
                        .ok_or_else(|| format!("it has no tensor `{group}/{name}`"))
                })
                .collect()
        };
        let weights = group("weights")?;
        let first_moment = group("adam_m")?;
        let second_moment = group("adam_v")?;
        let ema = group("ema")?;
        Ok(Snapshot {
            adam: AdamState {
                steps: progress.adam_steps,
                first_moment,
                second_moment,
            },
            progress,
            weights,
            ema,
        })
    }
}
