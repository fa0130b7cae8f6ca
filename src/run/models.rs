//! Trained models in the artifact store (`models/<id>/`): a complete folder is loaded,
//! otherwise the model is trained, resuming from its snapshot, and saved (safetensors with
//! the training config in its metadata, the training config, the loss history).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{write_error, RunError};
use super::live::LiveRuns;
use super::progress::Progress;
use crate::artifact::{Artifact, Obtained, PlaceError};
use crate::dataset::Samples;
use crate::parameterisation::Model;
use crate::results::store::{write_json, write_yaml};
use crate::results::{table, write_atomic, SweepFolder};
use crate::rng::{Rng, Stream};
use crate::train::checkpoint::Checkpoints;
use crate::train::{self, History, Hooks, Snapshot, TrainError};
use crate::trial::Trial;

/// Files a finished model folder holds; one without all of them is trained again.
pub(super) const MODEL_FILES: [&str; 4] = [
    "model.safetensors",
    "train_config.yaml",
    "history.json",
    "loss.csv",
];

impl From<PlaceError> for RunError {
    fn from(failure: PlaceError) -> Self {
        write_error(&failure.path, failure.error)
    }
}

pub(super) fn read_history(model_folder: &Path) -> Option<History> {
    serde_json::from_str(&fs::read_to_string(model_folder.join("history.json")).ok()?).ok()
}

/// What training a group's models needs besides the trial: where they are kept, the
/// experiment file (for errors), and the set they learn from (the data, or what a stage made
/// of it).
pub(super) struct TrainingPlace<'a> {
    pub folder: &'a SweepFolder,
    pub file: &'a Path,
    pub data: Arc<Samples>,
    /// The TensorBoard runs of the trials waiting for the model, which see it train.
    pub runs: &'a [PathBuf],
}

/// A fresh model for the trial (weights drawn from its seed).
pub(super) fn fresh_model(trial: &Trial, file: &Path) -> Result<Model, RunError> {
    trial
        .new_model(&mut Rng::new(trial.settings.seed, Stream::NetworkInit))
        .map_err(|e| train_failure(trial, file, TrainError::from(e)))
}

/// The error of a failed training run of the trial's model.
pub(super) fn train_failure(trial: &Trial, file: &Path, source: TrainError) -> RunError {
    RunError::Train {
        file: file.display().to_string(),
        index: trial.index + 1,
        label: trial.label.clone(),
        source: Box::new(source),
    }
}

/// The model the trial's `train:` section trains, saved as `id` with the training config
/// `config`: loaded from its folder when it is complete, else trained (resuming from its
/// snapshot) and saved.
pub(super) fn obtain_trained(
    trial: &Trial,
    (id, config): (&str, &serde_json::Value),
    place: &TrainingPlace,
    out: &mut dyn Write,
) -> Result<(Model, History), RunError> {
    let model = fresh_model(trial, place.file)?;
    if model.network().is_none() {
        let levels = trial.schedule.loss_levels();
        return Ok((
            model,
            History {
                levels,
                ..History::default()
            },
        ));
    }
    let job = Job {
        id,
        config,
        steps: trial.train.steps,
        what: "training",
        verb: "train",
        message: id.to_string(),
        runs: place.runs.to_vec(),
    };
    let history = obtain_or_train(trial, job, &model, place, out, |resume, hooks| {
        let train_job = trial.train_job(place.data.clone());
        train::train_resumable(&model, &train_job, resume, hooks)
    })?;
    Ok((model, history.into_inner()))
}

/// One model to train resumably: its id, the config it is saved with, its optimiser steps,
/// what the work is called in messages (`what`: "training") and on its progress bar (`verb`:
/// "train", with `message`), and the TensorBoard runs that see it train.
pub(super) struct Job<'a> {
    pub id: &'a str,
    pub config: &'a serde_json::Value,
    pub steps: usize,
    pub what: &'a str,
    pub verb: &'a str,
    pub message: String,
    pub runs: Vec<PathBuf>,
}

/// The job's model in `model` (a trainable one): loaded from its complete folder, or
/// trained by `train` (from the snapshot beside the folder when one fits, with a progress
/// bar, a snapshot every `checkpoint_every` steps and Ctrl-C as its stop request) and saved.
pub(super) fn obtain_or_train(
    trial: &Trial,
    job: Job,
    model: &Model,
    place: &TrainingPlace,
    out: &mut dyn Write,
    train: impl FnOnce(Option<Snapshot>, Hooks) -> Result<History, TrainError>,
) -> Result<Obtained<History>, RunError> {
    let (folder, file) = (place.folder, place.file);
    let Some(variables) = model.network().map(|n| n.variables()) else {
        return Err(train_failure(
            trial,
            file,
            TrainError::Resume("an exact model has nothing to train".into()),
        ));
    };
    let model_folder = folder.model(job.id);
    let artifact = Artifact::new(&model_folder, &MODEL_FILES);
    let checkpoints = Checkpoints::new(
        artifact.checkpoint(),
        variables,
        job.config.to_string(),
        trial.settings.checkpoint_every,
    );
    artifact.obtain(
        |dir| load_finished(variables, dir, &trial.device),
        || train_with_progress(trial, &job, &checkpoints, file, out, train),
        |history, partial| write_model(partial, &job, variables, history),
    )
}

/// Runs `train` from the job's snapshot, with its progress bar.
fn train_with_progress(
    trial: &Trial,
    job: &Job,
    checkpoints: &Checkpoints,
    file: &Path,
    out: &mut dyn Write,
    train: impl FnOnce(Option<Snapshot>, Hooks) -> Result<History, TrainError>,
) -> Result<History, RunError> {
    let resume = checkpoints.resume(&trial.device, &mut |found| {
        let _ = match found {
            Ok(snapshot) => writeln!(
                out,
                "  resuming the model {} from its checkpoint at step {} of {}",
                job.id, snapshot.progress.step, job.steps
            ),
            Err(message) => writeln!(
                out,
                "  ignoring the checkpoint {} ({message}); training from step 0",
                checkpoints.path.display()
            ),
        };
    });
    let progress = Progress::new(
        job.steps as u64,
        (job.verb, "loss"),
        &format!(
            "  {} {{msg}} [{{bar:30}}] {{pos}}/{{len}} loss {{prefix}} ({{per_sec}}, eta {{eta}})",
            job.verb
        ),
    );
    progress.set_message(job.message.clone());
    if let Some(snapshot) = &resume {
        progress.resume_at(snapshot.progress.step as u64);
    }
    let mut live = LiveRuns::open(&job.runs, "train")?;
    let trained = train(
        resume,
        checkpoints.hooks(&mut |logged| {
            progress.update(logged.step as u64, format!("{:.4}", logged.loss));
            live.record(logged, out);
        }),
    );
    progress.finish();
    trained.map_err(|e| stopped_or_failed(e, job, &checkpoints.path, trial, file))
}

/// A training error as the run reports it: a stop on request names the snapshot to resume
/// from.
fn stopped_or_failed(
    error: TrainError,
    job: &Job,
    snapshot_path: &Path,
    trial: &Trial,
    file: &Path,
) -> RunError {
    match error {
        TrainError::Interrupted { step, steps } => RunError::Interrupted {
            message: format!(
                "{} of the model {} stopped after step {step} of {steps}; its checkpoint is {}",
                job.what,
                job.id,
                snapshot_path.display()
            ),
        },
        // The sweep stops with the write's classified cause: failing the group would throw
        // away a training that a rerun can resume from its last checkpoint once the cause is
        // fixed.
        TrainError::Snapshot { step, message } => RunError::from_write(
            snapshot_path,
            format!(
                "{}; {} of the model {} stopped after step {step} of {} without it, and a \
                 rerun resumes from its last checkpoint written (or from step 0)",
                message
                    .strip_prefix(&format!("{}: ", snapshot_path.display()))
                    .unwrap_or(&message),
                job.what,
                job.id,
                job.steps
            ),
        ),
        source => train_failure(trial, file, source),
    }
}

/// Loads a finished model folder's weights into `variables` and returns its history;
/// `None` when its history is unreadable (the model is trained again).
pub(super) fn load_finished(
    variables: &candle_nn::VarMap,
    model_folder: &Path,
    device: &candle_core::Device,
) -> Result<Option<History>, RunError> {
    let Some(history) = read_history(model_folder) else {
        return Ok(None);
    };
    let checkpoint = model_folder.join("model.safetensors");
    let failure = |message: String| RunError::Checkpoint {
        path: checkpoint.clone(),
        message,
    };
    let bytes = fs::read(&checkpoint).map_err(|e| failure(e.to_string()))?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| failure(e.to_string()))?;
    crate::optim::load_variables(variables, &tensors).map_err(failure)?;
    Ok(Some(history))
}

/// Writes the weights (the training config in their metadata), the training config and
/// the loss history into `dir`.
fn write_model(
    dir: &Path,
    job: &Job,
    variables: &candle_nn::VarMap,
    history: &History,
) -> Result<(), RunError> {
    let metadata = HashMap::from([
        ("config".to_string(), job.config.to_string()),
        ("model".to_string(), job.id.to_string()),
        ("steps".to_string(), job.steps.to_string()),
    ]);
    let tensors = crate::optim::sorted_vars(variables);
    let bytes = safetensors::serialize(
        tensors
            .iter()
            .map(|(name, var)| (name.clone(), var.as_tensor())),
        Some(metadata),
    )
    .map_err(|e| write_error(&dir.join("model.safetensors"), e))?;
    write_atomic(&dir.join("model.safetensors"), &bytes).map_err(|e| write_error(dir, e))?;
    write_yaml(&dir.join("train_config.yaml"), job.config).map_err(|e| write_error(dir, e))?;
    write_json(&dir.join("history.json"), history).map_err(|e| write_error(dir, e))?;
    table::write_loss_table(history, &dir.join("loss.csv")).map_err(|e| write_error(dir, e))?;
    Ok(())
}
