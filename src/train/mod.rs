//! Training: one resumable loop (`resumable`) that every trained thing goes through, its
//! loss records and snapshots, and the plain path's loss: denoising score matching for
//! diffusion models (`diffusion`, with the exponential moving average of the weights that
//! evaluation uses), and the classifiers plugins train on it: guidance's
//! (`guidance_classifier`) and FID-style features' (`feature_classifier`), each kept in the
//! artifact store with its checkpoint. What the stages train (`crate::stages`) goes through
//! the same loop.

pub mod checkpoint;
mod diffusion;
pub mod feature_classifier;
pub mod guidance_classifier;
pub mod importance;
mod records;
pub mod resumable;
mod snapshot;

pub use diffusion::{train, train_resumable, weighted_losses, TrainJob, WeightedLosses};
pub use importance::{LevelSampler, TimeSampling};
pub use records::{
    level_tag, LevelRecords, LevelState, Record, Records, ScalarRecords, ScalarState, Scale,
};
pub use resumable::{Hooks, Logged, OnStep};
pub use snapshot::{Progress, Snapshot};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, RawParams};
use crate::params;

params! {
    /// Training settings (the `train:` section).
    pub struct TrainSettings {
        /// Optimiser steps.
        steps: usize = 3000 => 1..=crate::config::limits::MAX_STEPS,
        /// Examples per step.
        batch_size: usize = 256 => 1..=crate::config::limits::MAX_BATCH,
        /// Adam learning rate.
        lr: f64 = 1e-3,
        /// Decay of the exponential moving average of the weights used for evaluation (0: no EMA).
        ema_decay: f64 = 0.999,
        /// Size of the training set drawn once from the dataset.
        train_size: usize = 10000 => 1..=crate::config::limits::MAX_ITEMS,
        /// Steps between loss records (loss curve, per-level loss, TensorBoard).
        log_every: usize = 50 => 1..=crate::config::limits::MAX_STEPS,
        /// How the diffusion loss draws noise levels: `uniform` (the schedule's own training levels) or `importance` (in proportion to the weighting's lambda / sigma^2, reweighted to the same expected loss: Song et al. 2021's likelihood training).
        time_sampling: TimeSampling = TimeSampling::Uniform,
    }
}

impl TrainSettings {
    /// The settings as a trial records them (its id hashes them): a setting added after
    /// ids were first given is left out at its default, so existing trials keep their ids.
    pub fn recorded(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(map) = value.as_object_mut() {
            if self.time_sampling == TimeSampling::Uniform {
                map.remove("time_sampling");
            }
        }
        value
    }

    /// Whether the diffusion loss can draw its levels as `time_sampling` asks, on this
    /// schedule with this weighting (importance sampling needs the schedule's training law).
    pub fn check_time_sampling(
        &self,
        raw: &RawParams,
        (schedule, name): (&dyn crate::schedule::Schedule, &str),
        weighting: &dyn crate::weighting::Weighting,
    ) -> Result<(), ConfigError> {
        match LevelSampler::new(self.time_sampling, schedule, weighting) {
            Ok(_) => Ok(()),
            Err(why) => Err(raw.invalid(
                "time_sampling",
                format!("cannot draw levels by importance on schedule `{name}`: {why}"),
                "set `time_sampling: uniform` (or leave it out), or use a schedule that \
                 describes its training levels (`runner plugins schedule`)",
            )),
        }
    }

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

/// A classifier's loss record (guidance's or the features'): a progress line on `log`, and
/// its figures to `live`, under the run named after the classifier's folder `artifact`.
pub(crate) fn report_classifier(
    logged: &Logged,
    artifact: &str,
    (log, live): (&mut dyn FnMut(&str), crate::artifact::OnLiveRecord),
) {
    log(&format!(
        "classifier: step {}/{} cross-entropy {:.4}",
        logged.step, logged.steps, logged.loss
    ));
    live(&crate::artifact::LiveRecord {
        artifact,
        step: logged.step,
        figures: &logged.figures("classifier"),
    });
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
    /// The loss became non-finite, or ran [`Scale::FACTOR`] times past its first value.
    /// `what` names the loss (the weighting, or what a stage trains), `fix` says
    /// which settings to change.
    #[error("training diverged: the loss became {loss} at step {step} ({what}). Fix: {fix}")]
    Diverged {
        step: usize,
        loss: f64,
        what: String,
        fix: String,
    },
    #[error("training failed in the tensor library: {0}")]
    Candle(#[from] candle_core::Error),
    /// Stopped on request after step `step`, its snapshot saved.
    #[error("training was interrupted after step {step} of {steps}")]
    Interrupted { step: usize, steps: usize },
    /// The snapshot due after `step` could not be written; the training stops there.
    #[error("cannot save the training snapshot after step {step}: {message}")]
    Snapshot { step: usize, message: String },
    #[error("cannot resume from the training snapshot: {0}")]
    Resume(String),
    /// `train.time_sampling` cannot be honoured (refused when the trial is resolved).
    #[error("cannot draw the training levels: {0}")]
    Levels(String),
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
