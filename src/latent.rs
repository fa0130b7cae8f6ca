//! Latent diffusion: the experiment's `latent:` slot (default `identity`). A latent plugin
//! is an autoencoder (a convolutional VAE for images, an MLP VAE for points); the engine
//! trains it first on the training set (MSE reconstruction plus a small KL term, with a
//! reparameterised Gaussian posterior), encodes the training set to the posterior means,
//! scales them to unit variance (latent diffusion's `scale_by_std`), trains the diffusion
//! network on those latents, samples in latent space and decodes the samples before any
//! metric sees them. `identity` changes nothing and is not recorded, so a trial with it has
//! the id and numbers of a trial without a `latent:` section.
//!
//! Training latents are the posterior means, not posterior samples: they are a deterministic
//! function of the data (no draw to seed or store), and with the small KL weights used here
//! the posterior's standard deviation is small against the spread of the means, so a sample
//! would mostly add noise the decoder has learnt to ignore.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::dataset::Samples;
use crate::rng::{Rng, Stream};

/// Added to the experiment's seed for the autoencoder's random streams, so they are not
/// those of the diffusion network (same stream names, another key).
pub const SEED_OFFSET: u64 = 0x6c61_7465_6e74;

/// What a latent plugin may check when it is built.
pub struct LatentContext<'a> {
    /// One data item's shape: `[dim]` for points, `[C, H, W]` for images.
    pub shape: &'a [usize],
}

/// How the engine trains an autoencoder (the plugin's parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoencoderTraining {
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// beta: the loss is MSE + beta · KL / D per example (D the data's dimension).
    pub kl_weight: f64,
}

/// A latent autoencoder as configured.
pub trait Latent: Send + Sync {
    /// True when it changes nothing (`identity`): the trial diffuses on the data itself and
    /// records no `latent` section.
    fn neutral(&self) -> bool {
        false
    }

    /// One latent's shape (`[C, H, W]` or `[dim]`).
    fn shape(&self) -> Vec<usize>;

    fn training(&self) -> AutoencoderTraining;

    /// A fresh autoencoder with seeded initial weights.
    fn instantiate(
        &self,
        device: &Device,
        rng: &mut Rng,
    ) -> candle_core::Result<Box<dyn Autoencoder>>;
}

/// An autoencoder on flat rows: data (n, D) to latents (n, L) and back.
pub trait Autoencoder: Send + Sync {
    /// The posterior's mean and log-variance, each (n, L), of every row of `x` (n, D).
    fn encode(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)>;

    /// Reconstructions (n, D) of latents `z` (n, L).
    fn decode(&self, z: &Tensor) -> candle_core::Result<Tensor>;

    fn variables(&self) -> &VarMap;
}

/// The autoencoder's training record: reconstruction MSE and KL (per latent coordinate
/// summed, per example averaged) over each logging window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AutoencoderHistory {
    pub steps: Vec<usize>,
    pub recon: Vec<f64>,
    pub kl: Vec<f64>,
    pub seconds: f64,
}

/// A trained autoencoder with what the diffusion needs from it.
pub struct Prepared {
    pub autoencoder: Box<dyn Autoencoder>,
    /// 1 / std of the encoded training latents: diffusion sees latents times this.
    pub scale: f64,
    /// The training set encoded (posterior means) and scaled, with the data's labels.
    pub training_latents: Arc<Samples>,
    /// Seconds it took to encode the training set.
    pub encode_seconds: f64,
    pub history: AutoencoderHistory,
}

/// A trial's latent space: the plugin and where its autoencoder is kept. The trained
/// autoencoder ([`Prepared`]) is not part of it: the runner obtains it before training and
/// passes it on, so a resolved trial never changes.
pub struct LatentSpace {
    pub name: &'static str,
    pub plugin: Arc<dyn Latent>,
    /// The autoencoder's folder under `models/`: `latent-<kind>-<hash of config>`.
    pub id: String,
    /// What decides the autoencoder: the data, seed, training-set size, device and the
    /// resolved `latent` section.
    pub config: serde_json::Value,
    /// One latent's shape (the data's own for `identity`).
    pub shape: Vec<usize>,
}

impl LatentSpace {
    pub fn new(
        name: &'static str,
        plugin: Arc<dyn Latent>,
        id: String,
        config: serde_json::Value,
        shape: Vec<usize>,
    ) -> Self {
        LatentSpace {
            name,
            plugin,
            id,
            config,
            shape,
        }
    }

    /// A fresh autoencoder with weights drawn from the seed's own stream.
    pub fn fresh_autoencoder(
        &self,
        seed: u64,
        device: &Device,
    ) -> candle_core::Result<Box<dyn Autoencoder>> {
        let mut init = Rng::new(seed.wrapping_add(SEED_OFFSET), Stream::NetworkInit);
        self.plugin.instantiate(device, &mut init)
    }

    /// Whether the diffusion runs in a latent space (not `identity`).
    pub fn active(&self) -> bool {
        !self.plugin.neutral()
    }

    pub fn dim(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The posterior means of every item of `data`, (n · L) values in row order, in chunks of
/// [`crate::eval_batch`] rows.
pub fn encode_means(
    autoencoder: &dyn Autoencoder,
    data: &Samples,
    device: &Device,
) -> candle_core::Result<Vec<f32>> {
    let mut values = Vec::new();
    for (first, count) in crate::eval_batch::spans(data.len()) {
        let indices: Vec<usize> = (first..first + count).collect();
        let (mean, _) = autoencoder.encode(&data.gather(&indices).to_tensor(device)?)?;
        values.extend(mean.detach().flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(values)
}

/// 1 / the standard deviation of all values (population, about their mean): the factor
/// that gives the encoded training set unit variance.
pub fn unit_variance_scale(values: &[f32]) -> f64 {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|v| *v as f64).sum::<f64>() / n;
    let variance = values
        .iter()
        .map(|v| (*v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    1.0 / variance.sqrt().max(1e-12)
}

/// Latents (means, unscaled) times `scale`, rounded to f32 (what the network trains on, so
/// the set is the same whether freshly encoded or read back from disk), with `data`'s labels.
pub fn scaled_latents(means: &[f32], scale: f64, shape: &[usize], data: &Samples) -> Samples {
    let values = means
        .iter()
        .map(|v| ((*v as f64) * scale) as f32 as f64)
        .collect();
    let latents = Samples::with_shape(shape, values);
    match data.labels() {
        Some(labels) => latents.with_labels(labels.to_vec()),
        None => latents,
    }
}

impl Prepared {
    /// Data-space items (n, D) of scaled latents `z` (n, L): decode(z / scale), in chunks of
    /// [`crate::eval_batch`] rows.
    pub fn decode(&self, z: &Tensor) -> candle_core::Result<Tensor> {
        crate::eval_batch::by_rows(z.dim(0)?, |first, count| {
            let rows = z.narrow(0, first, count)?;
            Ok(self.autoencoder.decode(&(rows / self.scale)?)?.detach())
        })
    }
}

impl AutoencoderTraining {
    /// Refuses training settings outside their range (keys `steps`, `batch_size`, `lr`,
    /// `kl_weight` under `raw`).
    pub fn check(&self, raw: &crate::config::RawParams) -> Result<(), crate::config::ConfigError> {
        raw.check_within(
            "steps",
            self.steps as f64,
            (1.0, crate::config::limits::MAX_STEPS as f64),
            "autoencoder training steps",
            "set e.g. `steps: 2000`",
        )?;
        raw.check_within(
            "batch_size",
            self.batch_size as f64,
            (1.0, crate::config::limits::MAX_BATCH as f64),
            "examples per step",
            "set e.g. `batch_size: 64`",
        )?;
        raw.check_within(
            "lr",
            self.lr,
            (1e-12, crate::config::limits::MAX_LR),
            "Adam's learning rate",
            "set e.g. `lr: 0.002`",
        )?;
        raw.check_within(
            "kl_weight",
            self.kl_weight,
            (0.0, 1e6),
            "the KL term's weight beta",
            "set e.g. `kl_weight: 0.0001`",
        )
    }
}
