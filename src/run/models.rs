//! Trained models on disk: a checkpoint is loaded when its folder is complete, otherwise the
//! model is trained and saved (safetensors with the training config in its metadata, the
//! training config, the loss history) into a partial folder renamed into place.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use super::error::{write_error, RunError};
use super::progress::bar;
use crate::parameterisation::Model;
use crate::results::store::{write_json, write_yaml};
use crate::results::{table, write_atomic, SweepFolder};
use crate::rng::{Rng, Stream};
use crate::train::{self, History, Hooks, Snapshot, TrainError};
use crate::trial::Trial;

pub(super) fn read_history(model_folder: &Path) -> Option<History> {
    serde_json::from_str(&fs::read_to_string(model_folder.join("history.json")).ok()?).ok()
}

/// Loads the trial's model from its checkpoint, or trains and saves it; a distilled trial's
/// model is its last round's student (`super::distill`).
pub(super) fn obtain_model(
    trial: &Trial,
    folder: &SweepFolder,
    file: &Path,
    out: &mut dyn Write,
) -> Result<(Model, History), RunError> {
    if let Some(plan) = &trial.distill {
        return super::distill::obtain_student(trial, plan, folder, file, out);
    }
    obtain_trained(trial, &trial.train_id, &trial.training, folder, file, out)
}

/// The lock of one model id within this process: `--jobs` groups that need the same model
/// (a teacher, or a round that several students build on) train it once, the others wait
/// and load it.
pub(super) fn model_lock(id: &str) -> Arc<Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<Mutex<()>>>>> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    locks.entry(id.to_string()).or_default().clone()
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
    id: &str,
    config: &serde_json::Value,
    folder: &SweepFolder,
    file: &Path,
    out: &mut dyn Write,
) -> Result<(Model, History), RunError> {
    let model = fresh_model(trial, file)?;
    let levels = trial.schedule.loss_levels();
    let Some(variables) = model.network().map(|n| n.variables()) else {
        return Ok((
            model,
            History {
                levels,
                ..History::default()
            },
        ));
    };
    let model_folder = folder.model(id);
    let lock = model_lock(id);
    let _held = lock.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(history) = load_finished(&model, &model_folder, trial)? {
        return Ok((model, history));
    }

    let job = Job {
        id,
        config,
        steps: trial.train.steps,
        what: "training",
        verb: "train",
        message: id.to_string(),
    };
    let train_job = trial
        .train_job()
        .map_err(|e| train_failure(trial, file, e.into()))?;
    let history = train_and_save(
        trial,
        job,
        variables,
        (folder, file),
        out,
        |resume, hooks| train::train_resumable(&model, &train_job, resume, hooks),
    )?;
    Ok((model, history))
}

/// One model to train resumably: its id, the config it is saved with, its optimiser steps,
/// what the work is called in messages (`what`: "training") and on its progress bar (`verb`:
/// "train", with `message`).
pub(super) struct Job<'a> {
    pub id: &'a str,
    pub config: &'a serde_json::Value,
    pub steps: usize,
    pub what: &'a str,
    pub verb: &'a str,
    pub message: String,
}

/// Trains a model's `variables` and saves its folder: resumes from the snapshot beside the
/// folder when one fits, runs `train` with a progress bar, a snapshot every
/// `checkpoint_every` steps and Ctrl-C as its stop request.
pub(super) fn train_and_save(
    trial: &Trial,
    job: Job,
    variables: &candle_nn::VarMap,
    (folder, file): (&SweepFolder, &Path),
    out: &mut dyn Write,
    train: impl FnOnce(Option<Snapshot>, Hooks) -> Result<History, TrainError>,
) -> Result<History, RunError> {
    let model_folder = folder.model(job.id);
    let names: Vec<String> = crate::optim::sorted_vars(variables)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let config_text = job.config.to_string();
    let snapshot_path = snapshot_path(&model_folder);
    let resume = read_snapshot(
        &snapshot_path,
        &names,
        &config_text,
        (job.id, job.steps),
        trial,
        out,
    );
    let progress = bar(
        job.steps as u64,
        &format!(
            "  {} {{msg}} [{{bar:30}}] {{pos}}/{{len}} loss {{prefix}} ({{per_sec}}, eta {{eta}})",
            job.verb
        ),
    );
    progress.set_message(job.message);
    if let Some(snapshot) = &resume {
        progress.set_position(snapshot.progress.step as u64);
    }
    let save = snapshot_writer(&snapshot_path, &names, &config_text);
    let trained = train(
        resume,
        Hooks {
            on_log: &mut |step, _, loss| {
                progress.set_position(step as u64);
                progress.set_prefix(format!("{loss:.4}"));
            },
            snapshot_every: trial.settings.checkpoint_every,
            on_snapshot: Box::new(save),
            stop_requested: &crate::interrupt::requested,
        },
    );
    progress.finish_and_clear();
    let history =
        trained.map_err(|e| stopped_or_failed(e, job.what, job.id, &snapshot_path, trial, file))?;
    save_model(
        (job.id, job.config, job.steps),
        &model_folder,
        variables,
        &history,
    )?;
    Ok(history)
}

/// A training error as the run reports it: a stop on request names the snapshot to resume
/// from (`what`: "training", "distillation").
fn stopped_or_failed(
    error: TrainError,
    what: &str,
    id: &str,
    snapshot_path: &Path,
    trial: &Trial,
    file: &Path,
) -> RunError {
    match error {
        TrainError::Interrupted { step, steps } => RunError::Interrupted {
            message: format!(
                "{what} of the model {id} stopped after step {step} of {steps}; its \
                 checkpoint is {}",
                snapshot_path.display()
            ),
        },
        source => train_failure(trial, file, source),
    }
}

/// Saves each snapshot atomically to `path`.
fn snapshot_writer<'a>(
    path: &'a Path,
    names: &'a [String],
    config: &'a str,
) -> impl FnMut(&Snapshot) -> Result<(), String> + 'a {
    move |snapshot: &Snapshot| -> Result<(), String> {
        let bytes = snapshot.to_bytes(names, config)?;
        crate::crash::point("checkpoint.write");
        write_atomic(path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        crate::crash::point("checkpoint.written");
        Ok(())
    }
}

/// Loads a finished model folder's weights into `model` and returns its history; `None`
/// when the folder is missing or incomplete.
pub(super) fn load_finished(
    model: &Model,
    model_folder: &Path,
    trial: &Trial,
) -> Result<Option<History>, RunError> {
    let Some(variables) = model.network().map(|n| n.variables()) else {
        return Ok(None);
    };
    if !is_complete(model_folder) {
        return Ok(None);
    }
    let Some(history) = read_history(model_folder) else {
        return Ok(None);
    };
    // Left when a run was killed between saving the model and removing it.
    let _ = fs::remove_file(snapshot_path(model_folder));
    let checkpoint = model_folder.join("model.safetensors");
    let bytes = fs::read(&checkpoint).map_err(|e| RunError::Checkpoint {
        path: checkpoint.clone(),
        message: e.to_string(),
    })?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &trial.device).map_err(|e| {
        RunError::Checkpoint {
            path: checkpoint.clone(),
            message: e.to_string(),
        }
    })?;
    crate::optim::load_variables(variables, &tensors).map_err(|message| RunError::Checkpoint {
        path: checkpoint.clone(),
        message,
    })?;
    Ok(Some(history))
}

/// The training checkpoint of an unfinished model, beside the folder it will have:
/// `models/<id>.checkpoint.safetensors`, removed once the model is saved.
fn snapshot_path(model_folder: &Path) -> std::path::PathBuf {
    let mut name = model_folder.file_name().unwrap_or_default().to_os_string();
    name.push(".checkpoint.safetensors");
    model_folder.with_file_name(name)
}

/// Files a finished model folder holds; one without all of them is trained again.
const MODEL_FILES: [&str; 4] = [
    "model.safetensors",
    "train_config.yaml",
    "history.json",
    "loss.csv",
];

pub(super) fn is_complete(model_folder: &Path) -> bool {
    MODEL_FILES.iter().all(|f| model_folder.join(f).is_file())
}

/// The snapshot to resume from, if one fits this model; one that does not is reported and
/// training starts over (it is replaced by the next snapshot).
fn read_snapshot(
    path: &Path,
    names: &[String],
    config: &str,
    (id, steps): (&str, usize),
    trial: &Trial,
    out: &mut dyn Write,
) -> Option<Snapshot> {
    let bytes = fs::read(path).ok()?;
    match Snapshot::from_bytes(&bytes, names, config, &trial.device) {
        Ok(snapshot) => {
            let _ = writeln!(
                out,
                "  resuming the model {id} from its checkpoint at step {} of {steps}",
                snapshot.progress.step
            );
            Some(snapshot)
        }
        Err(message) => {
            let _ = writeln!(
                out,
                "  ignoring the checkpoint {} ({message}); training from step 0",
                path.display()
            );
            None
        }
    }
}

/// Writes the checkpoint (config in its metadata), the training config and the loss
/// history into a partial folder, then renames it into place.
fn save_model(
    (id, training_config, steps): (&str, &serde_json::Value, usize),
    model_folder: &Path,
    variables: &candle_nn::VarMap,
    history: &History,
) -> Result<(), RunError> {
    // One partial folder per process: Slurm tasks of different groups may save the same
    // model (a teacher, or a round several students build on) at once.
    let partial = model_folder.with_file_name(format!(
        ".partial-{}-{}",
        model_folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("model"),
        std::process::id()
    ));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).map_err(|e| write_error(&partial, e))?;
    let metadata = HashMap::from([
        ("config".to_string(), training_config.to_string()),
        ("model".to_string(), id.to_string()),
        ("steps".to_string(), steps.to_string()),
    ]);
    let tensors = crate::optim::sorted_vars(variables);
    let bytes = safetensors::serialize(
        tensors
            .iter()
            .map(|(name, var)| (name.clone(), var.as_tensor())),
        Some(metadata),
    )
    .map_err(|e| write_error(&partial.join("model.safetensors"), e))?;
    write_atomic(&partial.join("model.safetensors"), &bytes)
        .map_err(|e| write_error(&partial, e))?;
    write_yaml(&partial.join("train_config.yaml"), training_config)
        .map_err(|e| write_error(&partial, e))?;
    write_json(&partial.join("history.json"), history).map_err(|e| write_error(&partial, e))?;
    table::write_loss_table(history, &partial.join("loss.csv"))
        .map_err(|e| write_error(&partial, e))?;
    crate::crash::point("model.save");
    // Another process saved the same model (the same numbers) first: keep its folder.
    if is_complete(model_folder) && read_history(model_folder).is_some() {
        let _ = fs::remove_dir_all(&partial);
    } else {
        let _ = fs::remove_dir_all(model_folder);
        if let Err(e) = fs::rename(&partial, model_folder) {
            if !is_complete(model_folder) {
                return Err(write_error(model_folder, e));
            }
            let _ = fs::remove_dir_all(&partial);
        }
    }
    crate::crash::point("model.saved");
    let _ = fs::remove_file(snapshot_path(model_folder));
    Ok(())
}
