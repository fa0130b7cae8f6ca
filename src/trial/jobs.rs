//! What a trial hands to training: the jobs of its diffusion model and of its distillation
//! rounds, each holding what that training needs and nothing else.

use std::sync::Arc;

use super::{DistillPlan, Trial};
use crate::dataset::Samples;
use crate::stages::distill::RoundJob;
use crate::train::TrainJob;

impl Trial {
    /// The job that trains the trial's diffusion model on `data`: its training data, or
    /// what a stage made of it (a latent trial's encoded latents).
    pub fn train_job(&self, data: Arc<Samples>) -> TrainJob {
        TrainJob {
            data,
            schedule: self.schedule.clone(),
            weighting: self.weighting.clone(),
            weighting_name: self.names.weighting.to_string(),
            settings: self.train.clone(),
            seed: self.settings.seed,
            device: self.device.clone(),
            classes: self.architecture.classes(),
            label_dropout: self.guidance.label_dropout(),
        }
    }

    /// The job of round `round` of the trial's distillation `plan`, on `data` (as for
    /// [`Trial::train_job`]).
    pub fn round_job(&self, plan: &DistillPlan, round: usize, data: Arc<Samples>) -> RoundJob {
        let settings = &plan.settings;
        RoundJob {
            data,
            schedule: self.schedule.clone(),
            seed: self.settings.seed,
            device: self.device.clone(),
            round,
            teacher_steps: settings.teacher_steps,
            steps: settings.steps,
            lr: settings.lr,
            batch_size: settings.batch_size,
            log_every: self.train.log_every,
        }
    }
}
