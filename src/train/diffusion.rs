//! Denoising score matching over the schedule's noise levels, weighted by lambda(sigma):
//! what a diffusion model's training step computes, and the job that says on what.

use std::sync::Arc;

use candle_core::{Device, Tensor};

use super::importance::LevelSampler;
use super::records::{LevelRecords, LevelState};
use super::resumable::{self, Fit, Hooks, NetworkTrainee, OnStep, Plan};
use super::snapshot::Snapshot;
use super::{History, TrainError, TrainSettings};
use crate::dataset::Samples;
use crate::network::sigma_column;
use crate::optim::AdamParams;
use crate::parameterisation::Model;
use crate::rng::{Rng, Stream};
use crate::schedule::Schedule;
use crate::weighting::Weighting;

/// What training a diffusion model needs, and nothing else.
#[derive(Clone)]
pub struct TrainJob {
    /// The training set: the data, or what a stage made of it (the data mapped into another space).
    pub data: Arc<Samples>,
    pub schedule: Arc<dyn Schedule>,
    pub weighting: Arc<dyn Weighting>,
    /// The weighting's registered name, for messages.
    pub weighting_name: String,
    pub settings: TrainSettings,
    pub seed: u64,
    pub device: Device,
    /// Classes of a class-conditional network (0: unconditional).
    pub classes: usize,
    /// Probability that a training label becomes the null label (classifier-free guidance).
    pub label_dropout: f64,
}

/// Trains `model` on the job's data, schedule, weighting and settings, in place; on return
/// its variables hold the EMA weights. An exact model is returned untouched.
pub fn train(model: &Model, job: &TrainJob, on_step: OnStep) -> Result<History, TrainError> {
    train_resumable(model, job, None, Hooks::quiet(on_step))
}

/// [`train`], continuing from `resume` when given, with snapshots and stopping.
pub fn train_resumable(
    model: &Model,
    job: &TrainJob,
    resume: Option<Snapshot<LevelState>>,
    hooks: Hooks<LevelState>,
) -> Result<History, TrainError> {
    let (schedule, settings) = (job.schedule.as_ref(), &job.settings);
    let levels = schedule.loss_levels();
    let Some(network) = model.network() else {
        return Ok(History {
            levels,
            ..History::default()
        });
    };
    let sampler = LevelSampler::new(settings.time_sampling, schedule, job.weighting.as_ref())
        .map_err(TrainError::Levels)?;
    let diverged = |step, loss| job.divergence(step, loss);
    let fit = Fit {
        plan: Plan {
            steps: settings.steps,
            log_every: settings.log_every,
            adam: AdamParams::with_lr(settings.lr),
            ema_decay: settings.ema_decay,
        },
        trainee: &NetworkTrainee(network),
        rng: Rng::new(job.seed, Stream::TrainingNoise),
        records: LevelRecords::new(levels, settings.steps),
        diverged: &diverged,
    };
    let (records, seconds) = resumable::run(fit, resume, hooks, &mut |_, rng| {
        let batch = weighted_losses(model, job, &sampler, rng)?;
        let loss = batch.weighted.mean_all()?;
        Ok((
            loss.clone(),
            (loss.detach(), batch.normalised, batch.levels),
        ))
    })?;
    Ok(records.finish(seconds))
}

/// One batch of the denoising loss, example by example.
pub struct WeightedLosses {
    /// Each example's weighted loss (factor times normalised loss); their mean is the loss.
    pub weighted: Tensor,
    /// Each example's normalised loss 0.5 ||sigma s + z||^2, detached.
    pub normalised: Tensor,
    /// Each example's level: sigma and loss level.
    pub levels: Vec<(f64, usize)>,
}

/// One batch's denoising loss: data, labels, levels drawn by `sampler`, noise, in that order
/// from `rng`.
pub fn weighted_losses(
    model: &Model,
    job: &TrainJob,
    sampler: &LevelSampler,
    rng: &mut Rng,
) -> Result<WeightedLosses, TrainError> {
    let (data, device, batch) = (job.data.as_ref(), &job.device, job.settings.batch_size);
    let indices: Vec<usize> = (0..batch).map(|_| rng.below(data.len())).collect();
    let items = data.gather(&indices);
    let x0 = items.to_tensor(device)?;
    let labels = training_labels(job, &items, rng)?;
    let draws = sampler.draw(batch, rng);
    let sigmas: Vec<f64> = draws.iter().map(|d| d.sigma).collect();
    let sigma = sigma_column(&sigmas, device)?;
    let z = Tensor::from_vec(
        rng.normal_f32(batch * data.dim()),
        (batch, data.dim()),
        device,
    )?;
    let noisy = x0.add(&z.broadcast_mul(&sigma)?)?;

    // 0.5 * ||sigma * s + z||^2 per example; the factor lambda(sigma) / sigma^2 (under
    // importance sampling times p / q) turns it into the weighted DSM loss
    // lambda/2 * ||s + z / sigma||^2.
    let residual = model.training_residual(&x0, &noisy, &z, &sigma, labels.as_ref())?;
    let normalised = (residual.sqr()?.sum(1)? * 0.5)?;
    let factors: Vec<f32> = draws.iter().map(|d| d.factor as f32).collect();
    let factors = Tensor::from_vec(factors, batch, device)?;
    Ok(WeightedLosses {
        weighted: normalised.mul(&factors)?,
        normalised: normalised.detach(),
        levels: draws.iter().map(|d| (d.sigma, d.level)).collect(),
    })
}

/// A class-conditional network learns from the data's labels; classifier-free guidance
/// replaces each with the null label (the class count) with probability `label_dropout`.
fn training_labels(
    job: &TrainJob,
    items: &Samples,
    rng: &mut Rng,
) -> candle_core::Result<Option<Tensor>> {
    let device = &job.device;
    Ok(match items.labels() {
        Some(labels) if job.classes > 0 && job.label_dropout > 0.0 => {
            let null = job.classes as u32;
            let kept = crate::guidance::drop_labels(labels, job.label_dropout, null, rng);
            Some(Tensor::from_vec(kept, labels.len(), device)?)
        }
        _ if job.classes > 0 => items.labels_tensor(device)?,
        _ => None,
    })
}

impl TrainJob {
    /// The error of a loss that became `loss` at `step`.
    fn divergence(&self, step: usize, loss: f64) -> TrainError {
        let hint = match self.weighting.equalises_levels() {
            true => "",
            false => {
                ", or use a weighting with lambda = sigma^2 (`runner plugins weighting`) so \
                 small noise levels do not dominate"
            }
        };
        TrainError::Diverged {
            step,
            loss,
            what: format!("weighting `{}`", self.weighting_name),
            fix: format!(
                "lower `train.lr` (now {}), check the data scale and the schedule's noise \
                 levels{hint}",
                self.settings.lr
            ),
        }
    }
}
