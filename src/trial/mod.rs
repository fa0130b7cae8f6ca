//! Trial resolution: every trial of a sweep becomes a fully built, validated object before
//! the first one runs (plugins constructed, data generated, invariants checked).

mod distill;
mod jobs;
mod latent;
mod limits;
mod metrics;
mod naming;
mod network;
mod plan;
mod resolve;
mod settings;
mod shared;
mod slots;

pub use distill::{DistillPlan, DistillSettings, RoundModel, Rounds};
pub use latent::DEFAULT_LATENT;
pub use limits::duration_text;
pub use naming::{display_value, label_of, short_key, stable_hash};
pub use plan::plan_summary;
pub use resolve::{resolve_all, resolve_with_stats};
pub use settings::{Settings, DEFAULT_GUIDANCE, PLUGIN_SLOTS, TRAINING_KEYS};
pub use shared::ResolutionStats;

use std::sync::Arc;

use candle_core::Device;

use crate::dataset::{Dataset, Samples};
use crate::features::FeatureExtractor;
use crate::guidance::Guidance;
use crate::metric::Metric;
use crate::network::Architecture;
use crate::parameterisation::{Model, ModelSettings};
use crate::rng::Rng;
use crate::sampler::Sampler;
use crate::schedule::Schedule;
use crate::train::TrainSettings;
use crate::weighting::Weighting;

/// The registered name of the plugin in each slot: what messages, tables and folder names
/// call them, read without going back to the resolved config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginNames {
    pub data: &'static str,
    pub schedule: &'static str,
    pub weighting: &'static str,
    pub network: &'static str,
    pub sampler: &'static str,
    pub guidance: &'static str,
    pub latent: &'static str,
    pub features: &'static str,
}

/// A fully resolved trial.
pub struct Trial {
    pub index: usize,
    /// Readable: the swept values, e.g. `num_levels=10,sigma_max=auto`.
    pub label: String,
    /// Folder name: the label and a stable hash of the resolved config.
    pub id: String,
    /// The trained model's folder name, shared by trials with the same training config.
    pub train_id: String,
    /// Swept key paths and this trial's values.
    pub assignments: Vec<(String, serde_json::Value)>,
    /// The complete config with every default filled in.
    pub resolved: serde_json::Value,
    /// The part of `resolved` that decides the trained model (its hash is `train_id`).
    pub training: serde_json::Value,
    /// The plugin in each slot, by its registered name.
    pub names: PluginNames,
    pub settings: Settings,
    pub train: TrainSettings,
    pub device: Device,
    /// The device's name as recorded (`cpu`, `cuda:0`).
    pub device_name: &'static str,
    pub dataset: Arc<dyn Dataset>,
    pub schedule: Arc<dyn Schedule>,
    pub weighting: Arc<dyn Weighting>,
    pub architecture: Arc<dyn Architecture>,
    /// How the network's raw output becomes a denoiser (trainable networks only).
    pub model_settings: ModelSettings,
    pub sampler: Box<dyn Sampler>,
    /// How sampling is guided toward a class (the `guidance:` slot; default `none`), and
    /// whether training drops labels for it.
    pub guidance: Arc<dyn Guidance>,
    /// The latent space diffusion runs in (the `latent:` slot; default `identity`: the data).
    pub latent: Arc<crate::latent::LatentSpace>,
    pub metrics: Vec<(String, Box<dyn Metric>)>,
    /// The feature space of FID-style metrics (the `features:` slot; default `raw`).
    pub features: Arc<dyn FeatureExtractor>,
    /// Identifies the prepared extractor: its resolved config and the data it may train on.
    pub features_key: String,
    pub training_data: Arc<Samples>,
    pub held_out: Arc<Samples>,
    /// Progressive distillation: the rounds whose last student this trial samples.
    pub distill: Option<DistillPlan>,
    /// Settings measured to work badly together, said once with the plan (not errors: a
    /// study may want them).
    pub warnings: Vec<String>,
}

impl Trial {
    /// A fresh model for this trial: the network with newly drawn weights under its
    /// parameterisation, or the exact model.
    pub fn new_model(&self, rng: &mut Rng) -> candle_core::Result<Model> {
        let instance = self.architecture.instantiate(&self.device, rng)?;
        Ok(Model::new(instance, self.model_settings.clone()))
    }
}
