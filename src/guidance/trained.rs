//! A trained noise-conditional classifier for classifier guidance (`mlp` or `cnn`), kept in
//! the artifact store like a model: `models/classifier-<hash>/` holds `model.safetensors`
//! (its config in the metadata), `classifier.yaml` (what the hash covers: the network, its
//! training, the training data and schedule, the device) and `info.json` (training seconds,
//! the loss every tenth of training, accuracy on noised held-out items), so every trial and
//! later run with the same classifier, data and schedule shares it.
//!
//! This is what the classifier is and how its folder reads and writes; training it (the one
//! loop, its checkpoint, the artifact's partial folder) is `train::guidance_classifier`'s,
//! which sets the trained network here.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use candle_core::Device;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cnn::NoisyCnn;
use super::mlp::NoisyMlp;
use super::noisy::{self, LossHistory, NoisedAccuracy, NoisyNet, Training};
use crate::artifact::{write_atomic, write_json, write_yaml};
use crate::dataset::Samples;

/// The network of a trained classifier.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Net {
    Mlp { hidden: usize },
    Cnn { width: usize },
}

/// What `info.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    pub train_seconds: f64,
    pub loss: LossHistory,
    pub held_out_items: usize,
    pub accuracy: Vec<NoisedAccuracy>,
}

/// Files a finished classifier folder holds.
pub const FILES: [&str; 3] = ["model.safetensors", "classifier.yaml", "info.json"];

/// Held-out items the accuracy is measured on (the first ones).
const HELD_OUT_ITEMS: usize = 1000;

pub struct TrainedClassifier {
    pub net: Net,
    pub classes: usize,
    pub training: Training,
    data: Arc<Samples>,
    held_out: Arc<Samples>,
    device: Device,
    /// What identifies it (hashed into the folder name, written as `classifier.yaml`).
    config: serde_json::Value,
}

impl TrainedClassifier {
    /// `training_key` identifies the training data and schedule.
    pub fn new(
        net: Net,
        classes: usize,
        training: Training,
        data: Arc<Samples>,
        held_out: Arc<Samples>,
        device: Device,
        training_key: &str,
    ) -> Self {
        let config = serde_json::json!({
            "network": net,
            "classes": classes,
            "training": training,
            "data_and_schedule": training_key,
            "device": format!("{:?}", device.location()),
        });
        TrainedClassifier {
            net,
            classes,
            training,
            data,
            held_out,
            device,
            config,
        }
    }

    /// The folder name: `classifier-` and a hash of its config.
    pub fn folder_name(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"scorelab guidance classifier v1\0");
        hasher.update(self.config.to_string().as_bytes());
        let hex: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("classifier-{}", &hex[..16])
    }

    /// What identifies it: the network, its training, data, schedule and device.
    pub fn config(&self) -> &serde_json::Value {
        &self.config
    }

    /// The labelled training data.
    pub fn data(&self) -> &Samples {
        &self.data
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The network's name (`mlp`, `cnn`), for messages.
    pub fn kind(&self) -> &'static str {
        match self.net {
            Net::Mlp { .. } => "mlp",
            Net::Cnn { .. } => "cnn",
        }
    }

    /// A freshly initialised network (its weights drawn from the training seed).
    pub fn fresh(&self) -> candle_core::Result<Box<dyn NoisyNet>> {
        let seed = self.training.seed;
        Ok(match self.net {
            Net::Mlp { hidden } => Box::new(NoisyMlp::new(
                &self.data,
                self.classes,
                hidden,
                seed,
                &self.device,
            )?),
            Net::Cnn { width } => Box::new(NoisyCnn::new(
                &self.data,
                self.classes,
                width,
                seed,
                &self.device,
            )?),
        })
    }

    /// What `info.json` records of a trained `net`: `loss` and `train_seconds` from
    /// training, and the accuracy on the first held-out items, noised at the report levels.
    pub fn measure(
        &self,
        net: &dyn NoisyNet,
        loss: LossHistory,
        train_seconds: f64,
    ) -> candle_core::Result<Info> {
        let held_out = self.held_out.head(HELD_OUT_ITEMS);
        let accuracy = noisy::noised_accuracy(
            net,
            &held_out,
            &noisy::report_levels(self.training.sigma_range),
            self.training.seed,
            &self.device,
        )?;
        Ok(Info {
            train_seconds,
            loss,
            held_out_items: held_out.len(),
            accuracy,
        })
    }

    /// Reads a complete folder: its network and record, or why they cannot be used.
    pub fn load(&self, folder: &Path) -> Result<(Box<dyn NoisyNet>, Info), String> {
        let info_path = folder.join("info.json");
        let info: Info = fs::read(&info_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| format!("{}: {e}", info_path.display()))?;
        let path = folder.join("model.safetensors");
        let tensors: HashMap<_, _> = fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                candle_core::safetensors::load_buffer(&bytes, &self.device)
                    .map_err(|e| e.to_string())
            })
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let net = self.fresh().map_err(|e| e.to_string())?;
        crate::optim::load_variables(net.variables(), &tensors)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok((net, info))
    }

    /// Writes every file of a finished folder into `folder` (the artifact's partial one).
    pub fn write(&self, folder: &Path, net: &dyn NoisyNet, info: &Info) -> Result<(), String> {
        let error = |path: &Path, e: &dyn std::fmt::Display| {
            format!(
                "cannot write {}: {e}. Fix: check that the results folder is writable",
                path.display()
            )
        };
        let model = folder.join("model.safetensors");
        let metadata = HashMap::from([("config".to_string(), self.config.to_string())]);
        let tensors = crate::optim::sorted_vars(net.variables());
        let bytes = safetensors::serialize(
            tensors
                .iter()
                .map(|(name, var)| (name.clone(), var.as_tensor())),
            Some(metadata),
        )
        .map_err(|e| error(&model, &e))?;
        write_atomic(&model, &bytes).map_err(|e| error(&model, &e))?;
        let config = folder.join("classifier.yaml");
        write_yaml(&config, &self.config).map_err(|e| error(&config, &e))?;
        let record = folder.join("info.json");
        write_json(&record, info).map_err(|e| error(&record, &e))
    }
}

/// Accuracy on noised held-out items, for the log.
pub fn accuracy_line(info: &Info) -> String {
    let levels: Vec<String> = info
        .accuracy
        .iter()
        .map(|a| format!("{:.3} at sigma {}", a.accuracy, short(a.sigma)))
        .collect();
    format!(
        "held-out accuracy {} on {} items",
        levels.join(", "),
        info.held_out_items
    )
}

fn short(x: f64) -> String {
    format!("{x:.3}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string()
}
