//! Training a latent autoencoder (`crate::latent`) through the one loop: batches drawn with
//! replacement, the reparameterised posterior sample z = mu + exp(logvar / 2) · eps, loss
//! MSE(decode(z), x) + beta · KL(q(z|x) || N(0, I)) / D, Adam; then the training set encoded
//! to the posterior means and scaled to unit variance.

use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};

use crate::dataset::Samples;
use crate::latent::{
    encode_means, scaled_latents, unit_variance_scale, Autoencoder, AutoencoderHistory,
    AutoencoderTraining, LatentSpace, Prepared, SEED_OFFSET,
};
use crate::optim::AdamParams;
use crate::rng::{Rng, Stream};
use crate::train::resumable::{self, Fit, Hooks, Plan};
use crate::train::{ScalarRecords, ScalarState, Snapshot, TrainError};

/// Records per run (the reconstruction MSE and KL averaged over each).
const RECORDS: usize = 50;

/// Trains `autoencoder` on `data` in place, continuing from `resume` when given.
pub fn train_autoencoder(
    autoencoder: &dyn Autoencoder,
    data: &Samples,
    settings: &AutoencoderTraining,
    (seed, device): (u64, &Device),
    resume: Option<Snapshot<ScalarState>>,
    hooks: Hooks<ScalarState>,
) -> Result<AutoencoderHistory, TrainError> {
    let diverged = |step, loss| TrainError::Diverged {
        step,
        loss,
        what: "the autoencoder's reconstruction or KL term".into(),
        fix: format!(
            "lower `latent.lr` (now {}) or `latent.kl_weight` (now {})",
            settings.lr, settings.kl_weight
        ),
    };
    let fit = Fit {
        plan: Plan {
            steps: settings.steps,
            log_every: (settings.steps / RECORDS).max(1),
            adam: AdamParams::with_lr(settings.lr),
            ema_decay: 0.0,
        },
        trainee: autoencoder.variables(),
        rng: Rng::new(seed.wrapping_add(SEED_OFFSET), Stream::TrainingNoise),
        records: ScalarRecords::new(&["mse", "kl"]),
        diverged: &diverged,
    };
    let (records, seconds) = resumable::run(fit, resume, hooks, &mut |_, rng| {
        let (loss, recon, kl) = vae_loss(autoencoder, data, settings, device, rng)?;
        Ok((loss, vec![recon, kl]))
    })?;
    let state = records.finish();
    Ok(AutoencoderHistory {
        recon: state.means.iter().map(|m| m[0]).collect(),
        kl: state.means.iter().map(|m| m[1]).collect(),
        steps: state.steps,
        seconds,
    })
}

/// One batch's loss, with its reconstruction MSE and KL (detached).
fn vae_loss(
    autoencoder: &dyn Autoencoder,
    data: &Samples,
    settings: &AutoencoderTraining,
    device: &Device,
    rng: &mut Rng,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let indices: Vec<usize> = (0..settings.batch_size)
        .map(|_| rng.below(data.len()))
        .collect();
    let x = data.gather(&indices).to_tensor(device)?;
    let (mean, log_var) = autoencoder.encode(&x)?;
    let log_var = log_var.clamp(-30f32, 20f32)?;
    let (n, latent) = mean.dims2()?;
    let eps = Tensor::from_vec(rng.normal_f32(n * latent), (n, latent), device)?;
    let z = mean.add(&(log_var.affine(0.5, 0.0)?.exp()?.mul(&eps)?))?;
    let recon = autoencoder.decode(&z)?.sub(&x)?.sqr()?.mean_all()?;
    // KL(N(mu, s^2) || N(0, 1)) summed over latent coordinates, averaged over the batch.
    let kl = ((mean.sqr()? + log_var.exp()?)? - log_var)?
        .affine(0.5, -0.5)?
        .sum(1)?
        .mean_all()?;
    let loss = recon.add(&kl.affine(settings.kl_weight / data.dim() as f64, 0.0)?)?;
    Ok((loss, recon.detach(), kl.detach()))
}

/// Trains a fresh autoencoder of `space` on `data` (continuing from `resume`) and encodes
/// it: the prepared latent space.
pub fn train_and_encode(
    space: &LatentSpace,
    data: &Samples,
    (seed, device): (u64, &Device),
    resume: Option<Snapshot<ScalarState>>,
    hooks: Hooks<ScalarState>,
) -> Result<Prepared, TrainError> {
    let autoencoder = space.fresh_autoencoder(seed, device)?;
    let history = train_autoencoder(
        autoencoder.as_ref(),
        data,
        &space.plugin.training(),
        (seed, device),
        resume,
        hooks,
    )?;
    let start = Instant::now();
    let means = encode_means(autoencoder.as_ref(), data, device)?;
    let encode_seconds = start.elapsed().as_secs_f64();
    let scale = unit_variance_scale(&means);
    Ok(Prepared {
        training_latents: Arc::new(scaled_latents(&means, scale, &space.shape, data)),
        autoencoder,
        scale,
        encode_seconds,
        history,
    })
}
