//! The stages the runner composes around a training group's plain path (train a model on
//! the data, sample it, score the samples), so that the group, training and evaluation
//! name neither latent diffusion nor distillation:
//! - before training, a latent trial's autoencoder is trained or loaded, and the model
//!   learns from the encoded training set;
//! - the model a distilled trial samples is its last round's student, each round trained
//!   from the one before;
//! - around sampling, a latent trial samples latents, decoded before the metrics.
//!
//! Guidance and feature extractors prepare themselves (`Guidance::prepare`,
//! `FeatureExtractor::prepare`); the group calls those per trial.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::autoencoder::prepare_group;
use super::distill::obtain_student;
use super::error::RunError;
use super::latent_sampling::LatentSampling;
use super::models::{obtain_trained, TrainingPlace};
use crate::latent::Prepared;
use crate::parameterisation::Model;
use crate::results::SweepFolder;
use crate::train::History;
use crate::trial::Trial;

/// What the stages prepared for one training group before its model trains.
pub(super) struct Staged {
    /// The group's trained autoencoder, for latent trials.
    latent: Option<Arc<Prepared>>,
}

/// Prepares what the group of `first` needs before training: its autoencoder, if latent.
pub(super) fn before_training(
    first: &Trial,
    folder: &SweepFolder,
    out: &mut dyn Write,
) -> Result<Staged, String> {
    Ok(Staged {
        latent: prepare_group(first, folder, out)?,
    })
}

/// Whether the sweep's trials record their sampling time per item: when any samples in a
/// latent space, so that pixel and latent trials compare in one column.
pub(super) fn time_per_item(trials: &[Trial]) -> bool {
    trials.iter().any(|t| t.latent.active())
}

impl Staged {
    /// The model the trial samples: trained on its training set (the data, or the
    /// encoded latents), or, for a distilled trial, its last round's student. `runs` are
    /// the TensorBoard runs of the trials waiting for it.
    pub fn model(
        &self,
        trial: &Trial,
        (folder, file): (&SweepFolder, &Path),
        runs: &[PathBuf],
        out: &mut dyn Write,
    ) -> Result<(Model, History), RunError> {
        let data = match &self.latent {
            Some(prepared) => prepared.training_latents.clone(),
            None => trial.training_data.clone(),
        };
        let place = TrainingPlace {
            folder,
            file,
            data,
            runs,
        };
        match &trial.distill {
            Some(plan) => obtain_student(trial, plan, &place, out),
            None => obtain_trained(trial, (&trial.train_id, &trial.training), &place, out),
        }
    }

    /// The space the trial samples in, when it is not the data's.
    pub fn sample_space<'a>(&'a self, trial: &Trial) -> Option<LatentSampling<'a>> {
        let prepared = self.latent.as_deref()?;
        Some(LatentSampling::new(
            prepared,
            trial.latent.name,
            trial.latent.dim(),
            trial.device.clone(),
        ))
    }
}
