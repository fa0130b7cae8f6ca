//! The training loop: denoising score matching over the schedule's noise levels, weighted
//! by lambda(sigma), with Adam and an exponential moving average of the weights (the EMA
//! weights are what evaluation uses).

use std::collections::HashMap;
use std::time::Instant;

mod adam;
pub mod distill;
pub mod inplace;
mod records;
mod snapshot;

pub use adam::{Adam, AdamParams, AdamState};
pub use snapshot::{Progress, Snapshot};

pub(crate) use records::LossWindow;
use records::PendingLosses;

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, RawParams};
use crate::network::sigma_column;
use crate::parameterisation::Model;
use crate::params;
use crate::rng::{Rng, Stream};
use crate::trial::Trial;

params! {
    /// Training settings (the `train:` section).
    pub struct TrainSettings {
        /// Optimiser steps.
        steps: usize = 3000,
        /// Examples per step.
        batch_size: usize = 256,
        /// Adam learning rate.
        lr: f64 = 1e-3,
        /// Decay of the exponential moving average of the weights used for evaluation (0: no EMA).
        ema_decay: f64 = 0.999,
        /// Size of the training set drawn once from the dataset.
        train_size: usize = 10000,
        /// Steps between loss records (loss curve, per-level loss, TensorBoard).
        log_every: usize = 50,
    }
}

impl TrainSettings {
    pub fn validate(&self, raw: &RawParams) -> Result<(), ConfigError> {
        if self.steps == 0 {
            return Err(raw.invalid("steps", "must be at least 1", "set e.g. `steps: 3000`"));
        }
        if self.batch_size == 0 {
            return Err(raw.invalid(
                "batch_size",
                "must be at least 1",
                "set e.g. `batch_size: 256`",
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(raw.invalid(
                "lr",
                format!(
                    "must be positive and finite, not {}",
                    crate::config::number(self.lr)
                ),
                "set e.g. `lr: 0.001`",
            ));
        }
        if !(0.0..1.0).contains(&self.ema_decay) {
            return Err(raw.invalid(
                "ema_decay",
                format!(
                    "must be in [0, 1), not {}",
                    crate::config::number(self.ema_decay)
                ),
                "set e.g. `ema_decay: 0.999`",
            ));
        }
        if self.train_size < 2 {
            return Err(raw.invalid(
                "train_size",
                "must be at least 2",
                "set e.g. `train_size: 10000`",
            ));
        }
        if self.log_every == 0 {
            return Err(raw.invalid(
                "log_every",
                "must be at least 1",
                "set e.g. `log_every: 50`",
            ));
        }
        Ok(())
    }
}

/// What training left behind besides the weights.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct History {
    /// Steps at which the loss was recorded.
    pub steps: Vec<usize>,
    /// Mean weighted training loss since the previous record.
    pub loss: Vec<f64>,
    /// The schedule's loss levels (sigmas).
    pub levels: Vec<f64>,
    /// Per record, per level: mean of 0.5 * ||sigma * s(x~, sigma) + z||^2 since the previous
    /// record (NaN where the level was not drawn). This normalised loss is comparable across
    /// levels and weightings: a network that outputs 0 scores dim/2 everywhere.
    #[serde(with = "nan_as_null::nested")]
    pub level_loss: Vec<Vec<f64>>,
    /// The same per-level loss over the last quarter of training.
    #[serde(with = "nan_as_null")]
    pub final_level_loss: Vec<f64>,
    pub seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "training diverged: the loss became {loss} at step {step} (weighting `{weighting}`). \
         Fix: lower `train.lr` (now {lr}), check the data scale and the schedule's noise \
         levels{}",
        weighting_hint(.weighting)
    )]
    NonFinite {
        step: usize,
        loss: f64,
        lr: f64,
        /// The trial's loss weighting (`weighting.kind`).
        weighting: String,
    },
    #[error("training failed in the tensor library: {0}")]
    Candle(#[from] candle_core::Error),
    /// Stopped on request after step `step`, its snapshot saved.
    #[error("training was interrupted after step {step} of {steps}")]
    Interrupted { step: usize, steps: usize },
    #[error("cannot save the training snapshot: {0}")]
    Snapshot(String),
    #[error("cannot resume from the training snapshot: {0}")]
    Resume(String),
}

/// The weighting advice of a divergence, unless the trial already uses it.
fn weighting_hint(weighting: &str) -> &'static str {
    if weighting == "sigma_squared" {
        ""
    } else {
        ", or use `weighting: sigma_squared` so small noise levels do not dominate"
    }
}

/// Progress callback: (step, steps, running loss).
pub type OnStep<'a> = &'a mut dyn FnMut(usize, usize, f64);

/// How a training run reports progress, saves snapshots and is stopped.
pub struct Hooks<'a> {
    /// Called at every loss record with (step, steps, mean loss since the previous record).
    pub on_log: OnStep<'a>,
    /// Steps between snapshots handed to `on_snapshot` (0: none, except when stopping).
    pub snapshot_every: usize,
    pub on_snapshot: &'a mut dyn FnMut(&Snapshot) -> Result<(), String>,
    /// Polled after every step; when it says yes, training saves a snapshot and returns
    /// [`TrainError::Interrupted`].
    pub stop_requested: &'a dyn Fn() -> bool,
}

/// Trains `model` on the trial's data, schedule, weighting and settings, in place; on
/// return its variables hold the EMA weights. An exact model is returned untouched. A latent
/// trial trains on its encoded, scaled training set, so its autoencoder must be prepared
/// first (`scorelab::run::autoencoder::prepare`, which the runner calls).
pub fn train(model: &Model, trial: &Trial, on_step: OnStep) -> Result<History, TrainError> {
    train_resumable(
        model,
        trial,
        None,
        Hooks {
            on_log: on_step,
            snapshot_every: 0,
            on_snapshot: &mut |_| Ok(()),
            stop_requested: &|| false,
        },
    )
}

/// [`train`], continuing from `resume` when given, with snapshots and stopping.
pub fn train_resumable(
    model: &Model,
    trial: &Trial,
    resume: Option<Snapshot>,
    hooks: Hooks,
) -> Result<History, TrainError> {
    let start = Instant::now();
    let (schedule, weighting) = (trial.schedule.as_ref(), trial.weighting.as_ref());
    // A latent trial trains on its encoded, scaled training set.
    let latents = match trial.latent.active() {
        true => Some(trial.latent.require()?.training_latents.clone()),
        false => None,
    };
    let (data, settings, seed, device) = (
        latents.as_deref().unwrap_or(&trial.training_data),
        &trial.train,
        trial.settings.seed,
        &trial.device,
    );
    let levels = schedule.loss_levels();
    let Some(network) = model.network() else {
        return Ok(History {
            levels,
            ..History::default()
        });
    };
    let vars = sorted_vars(network.variables());
    let mut optimizer = Adam::new(
        vars.iter().map(|(_, v)| v.clone()).collect(),
        AdamParams::with_lr(settings.lr),
    )?;
    let mut ema: Vec<Tensor> = vars
        .iter()
        .map(|(_, v)| v.as_tensor().copy().map(|t| t.detach()))
        .collect::<Result<_, _>>()?;
    let mut rng = Rng::new(seed, Stream::TrainingNoise);
    let mut window = LossWindow::new(levels.len());
    let mut tail = LossWindow::new(levels.len());
    let mut history = History {
        levels: levels.clone(),
        ..History::default()
    };
    let mut first_step = 1;
    let mut seconds_before = 0.0;
    if let Some(snapshot) = resume {
        let progress = snapshot.progress;
        for ((_, var), value) in vars.iter().zip(&snapshot.weights) {
            var.set(value)?;
        }
        optimizer
            .restore(snapshot.adam)
            .map_err(TrainError::Resume)?;
        // Copies: the average is updated in place.
        ema = snapshot
            .ema
            .iter()
            .map(|t| t.detach().copy())
            .collect::<Result<_, _>>()?;
        rng = Rng::from_state(&progress.rng).map_err(TrainError::Resume)?;
        network
            .restore_random_state(&progress.network_rngs)
            .map_err(TrainError::Resume)?;
        (window, tail, history) = (progress.window, progress.tail, progress.history);
        first_step = progress.step + 1;
        seconds_before = progress.seconds;
    }
    let snapshot = |step: usize,
                    optimizer: &Adam,
                    ema: &[Tensor],
                    rng: &Rng,
                    window: &LossWindow,
                    tail: &LossWindow,
                    history: &History|
     -> Snapshot {
        Snapshot {
            progress: Progress {
                step,
                adam_steps: optimizer.state().steps,
                rng: rng.state(),
                network_rngs: network.random_state(),
                window: window.clone(),
                tail: tail.clone(),
                history: history.clone(),
                seconds: seconds_before + start.elapsed().as_secs_f64(),
            },
            // Copies: the weights and their average are updated in place after this.
            weights: vars
                .iter()
                .map(|(_, v)| v.as_tensor().copy().expect("a copy of a weight"))
                .collect(),
            adam: optimizer.state(),
            ema: ema
                .iter()
                .map(|t| t.copy().expect("a copy of an average"))
                .collect(),
        }
    };

    // A class-conditional network learns from the data's labels; classifier-free guidance
    // replaces each with the null label (the class count) with probability `dropout`.
    let classes = trial.architecture.classes();
    let conditional = classes > 0;
    let dropout = trial.guidance.label_dropout();
    network.set_training(true);
    let dim = data.dim();
    let tail_start = settings.steps - settings.steps / 4;
    let mut pending = PendingLosses::default();

    for step in first_step..=settings.steps {
        let indices: Vec<usize> = (0..settings.batch_size)
            .map(|_| rng.below(data.len()))
            .collect();
        let batch = data.gather(&indices);
        let x0 = batch.to_tensor(device)?;
        let labels = match batch.labels() {
            Some(labels) if conditional && dropout > 0.0 => {
                let kept = crate::guidance::drop_labels(labels, dropout, classes as u32, &mut rng);
                Some(Tensor::from_vec(kept, labels.len(), device)?)
            }
            _ if conditional => batch.labels_tensor(device)?,
            _ => None,
        };
        let draws = schedule.training_sigmas(settings.batch_size, &mut rng);
        let sigmas: Vec<f64> = draws.iter().map(|(s, _)| *s).collect();
        let sigma = sigma_column(&sigmas, device)?;
        let z = Tensor::from_vec(
            rng.normal_f32(settings.batch_size * dim),
            (settings.batch_size, dim),
            device,
        )?;
        let noisy = x0.add(&z.broadcast_mul(&sigma)?)?;

        // 0.5 * ||sigma * s + z||^2 per example; lambda(sigma) / sigma^2 turns it into the
        // weighted DSM loss lambda/2 * ||s + z / sigma||^2.
        let residual = model.training_residual(&x0, &noisy, &z, &sigma, labels.as_ref())?;
        let normalised = (residual.sqr()?.sum(1)? * 0.5)?;
        let factors: Vec<f32> = sigmas
            .iter()
            .map(|s| (weighting.lambda(*s, schedule) / (s * s)) as f32)
            .collect();
        let factors = Tensor::from_vec(factors, settings.batch_size, device)?;
        let loss = normalised.mul(&factors)?.mean_all()?;

        optimizer.backward_step(&loss)?;
        // Kept on the device and read once per record (no per-step copy to the host).
        pending.push(step, loss.detach(), normalised.detach(), draws);

        if settings.ema_decay > 0.0 {
            // Warm-up so early averages are not dominated by the random initialisation.
            let decay = settings
                .ema_decay
                .min((1.0 + step as f64) / (10.0 + step as f64));
            for ((_, var), average) in vars.iter().zip(ema.iter_mut()) {
                let var = var.as_tensor();
                if inplace::supported(&[average, var]) {
                    let update = inplace::Average {
                        decay,
                        square: false,
                    };
                    average.inplace_op2(var, &update)?;
                } else {
                    // Detached, or each average would hold the op graph of all earlier ones.
                    *average = ((&*average * decay)? + (var * (1.0 - decay))?)?.detach();
                }
            }
        }

        let stopping = step < settings.steps && (hooks.stop_requested)();
        let snapshot_due = stopping
            || (hooks.snapshot_every > 0
                && step % hooks.snapshot_every == 0
                && step < settings.steps);
        let record_due = step % settings.log_every == 0 || step == settings.steps;
        if record_due || snapshot_due {
            if let Some((step, loss)) = pending.drain_into(&mut window, &mut tail, tail_start)? {
                return Err(TrainError::NonFinite {
                    step,
                    loss,
                    lr: settings.lr,
                    weighting: trial.resolved["weighting"]["kind"]
                        .as_str()
                        .unwrap_or("?")
                        .to_string(),
                });
            }
        }
        if record_due {
            let (mean, per_level) = window.take();
            history.steps.push(step);
            history.loss.push(mean);
            history.level_loss.push(per_level);
            (hooks.on_log)(step, settings.steps, mean);
        }
        crate::crash::point("train.step");
        if snapshot_due {
            let frozen = snapshot(step, &optimizer, &ema, &rng, &window, &tail, &history);
            (hooks.on_snapshot)(&frozen).map_err(TrainError::Snapshot)?;
            if stopping {
                network.set_training(false);
                return Err(TrainError::Interrupted {
                    step,
                    steps: settings.steps,
                });
            }
        }
    }
    history.final_level_loss = tail.take().1;
    network.set_training(false);

    if settings.ema_decay > 0.0 {
        for ((_, var), average) in vars.iter().zip(&ema) {
            var.set(average)?;
        }
    }
    history.seconds = seconds_before + start.elapsed().as_secs_f64();
    Ok(history)
}

/// The network's variables in name order, so optimisation is reproducible.
pub fn sorted_vars(variables: &candle_nn::VarMap) -> Vec<(String, Var)> {
    let data = variables.data().lock().expect("variable map lock poisoned");
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Copies named tensors (a checkpoint) into the network's variables.
pub fn load_variables(
    variables: &candle_nn::VarMap,
    tensors: &HashMap<String, Tensor>,
) -> Result<(), String> {
    for (name, var) in sorted_vars(variables) {
        let Some(value) = tensors.get(&name) else {
            return Err(format!("the checkpoint has no tensor `{name}`"));
        };
        var.set(value)
            .map_err(|e| format!("tensor `{name}`: {e}"))?;
    }
    Ok(())
}

/// NaN (a level not drawn) as JSON's `null` and back: serde_json would write `null` but
/// refuse to read it as a number.
mod nan_as_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    fn to_options(values: &[f64]) -> Vec<Option<f64>> {
        values
            .iter()
            .map(|v| if v.is_nan() { None } else { Some(*v) })
            .collect()
    }

    fn from_options(values: Vec<Option<f64>>) -> Vec<f64> {
        values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect()
    }

    pub fn serialize<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
        to_options(values).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
        Ok(from_options(Vec::deserialize(deserializer)?))
    }

    pub mod nested {
        use super::*;

        pub fn serialize<S: Serializer>(
            rows: &[Vec<f64>],
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            let rows: Vec<Vec<Option<f64>>> = rows.iter().map(|r| to_options(r)).collect();
            rows.serialize(serializer)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Vec<Vec<f64>>, D::Error> {
            let rows: Vec<Vec<Option<f64>>> = Vec::deserialize(deserializer)?;
            Ok(rows.into_iter().map(from_options).collect())
        }
    }
}
