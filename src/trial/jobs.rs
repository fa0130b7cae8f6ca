//! What a trial hands to training: the jobs of its diffusion model and of its distillation
//! rounds, each holding what that training needs and nothing else.

use std::sync::Arc;

use super::{DistillPlan, Trial};
use crate::dataset::Samples;
use crate::train::distill::RoundJob;
use crate::train::TrainJob;

impl Trial {
    /// The training set the trial's network learns from: the data itself, or for a latent
    /// trial its encoded and scaled latents (the autoencoder must be prepared first).
    pub fn training_set(&self) -> candle_core::Result<Arc<Samples>> {
        match self.latent.active() {
            true => Ok(self.latent.require()?.training_latents.clone()),
            false => Ok(self.training_data.clone()),
        }
    }

    /// The job that trains the trial's diffusion model.
    pub fn train_job(&self) -> candle_core::Result<TrainJob> {
        Ok(TrainJob {
            data: self.training_set()?,
            schedule: self.schedule.clone(),
            weighting: self.weighting.clone(),
            weighting_name: self.names.weighting.to_string(),
            settings: self.train.clone(),
            seed: self.settings.seed,
            device: self.device.clone(),
            classes: self.architecture.classes(),
            label_dropout: self.guidance.label_dropout(),
        })
    }

    /// The job of round `round` of the trial's distillation `plan`.
    pub fn round_job(&self, plan: &DistillPlan, round: usize) -> candle_core::Result<RoundJob> {
        let settings = &plan.settings;
        Ok(RoundJob {
            data: self.training_set()?,
            schedule: self.schedule.clone(),
            seed: self.settings.seed,
            device: self.device.clone(),
            round,
            teacher_steps: settings.teacher_steps,
            steps: settings.steps,
            lr: settings.lr,
            batch_size: settings.batch_size,
            log_every: self.train.log_every,
        })
    }
}
