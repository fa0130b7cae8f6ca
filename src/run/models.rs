//! Trained models on disk: a checkpoint is loaded when its folder is complete, otherwise the
//! model is trained and saved (safetensors with the training config in its metadata, the
//! training config, the loss history) into a partial folder renamed into place.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;

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

/// Loads the trial's model from its checkpoint, or trains and saves it.
pub(super) fn obtain_model(
    trial: &Trial,
    folder: &SweepFolder,
    file: &Path,
    out: &mut dyn Write,
) -> Result<(Model, History), RunError> {
    let model = trial
        .new_model(&mut Rng::new(trial.settings.seed, Stream::NetworkInit))
        .map_err(|e| RunError::Train {
            file: file.display().to_string(),
            index: trial.index + 1,
            label: trial.label.clone(),
            source: Box::new(e.into()),
        })?;
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
    let model_folder = folder.model(&trial.train_id);
    let checkpoint = model_folder.join("model.safetensors");
    if is_complete(&model_folder) {
        if let Some(history) = read_history(&model_folder) {
            // Left when a run was killed between saving the model and removing it.
            let _ = fs::remove_file(snapshot_path(&model_folder));
            let bytes = fs::read(&checkpoint).map_err(|e| RunError::Checkpoint {
                path: checkpoint.clone(),
                message: e.to_string(),
            })?;
            let tensors =
                candle_core::safetensors::load_buffer(&bytes, &trial.device).map_err(|e| {
                    RunError::Checkpoint {
                        path: checkpoint.clone(),
                        message: e.to_string(),
                    }
                })?;
            train::load_variables(variables, &tensors).map_err(|message| RunError::Checkpoint {
                path: checkpoint.clone(),
                message,
            })?;
            return Ok((model, history));
        }
    }

    let names: Vec<String> = train::sorted_vars(variables)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let config = trial.training.to_string();
    let snapshot_path = snapshot_path(&model_folder);
    let resume = read_snapshot(&snapshot_path, &names, &config, trial, out);
    let progress = bar(
        trial.train.steps as u64,
        "  train {msg} [{bar:30}] {pos}/{len} loss {prefix} ({per_sec}, eta {eta})",
    );
    progress.set_message(trial.train_id.clone());
    if let Some(snapshot) = &resume {
        progress.set_position(snapshot.progress.step as u64);
    }
    let mut save = |snapshot: &Snapshot| -> Result<(), String> {
        let bytes = snapshot.to_bytes(&names, &config)?;
        crate::crash::point("checkpoint.write");
        write_atomic(&snapshot_path, &bytes)
            .map_err(|e| format!("{}: {e}", snapshot_path.display()))?;
        crate::crash::point("checkpoint.written");
        Ok(())
    };
    let trained = train::train_resumable(
        &model,
        trial,
        resume,
        Hooks {
            on_log: &mut |step, _, loss| {
                progress.set_position(step as u64);
                progress.set_prefix(format!("{loss:.4}"));
            },
            snapshot_every: trial.settings.checkpoint_every,
            on_snapshot: &mut save,
            stop_requested: &crate::interrupt::requested,
        },
    );
    progress.finish_and_clear();
    let history = match trained {
        Ok(history) => history,
        Err(TrainError::Interrupted { step, steps }) => {
            return Err(RunError::Interrupted {
                message: format!(
                    "training of the model {} stopped after step {step} of {steps}; its \
                     checkpoint is {}",
                    trial.train_id,
                    snapshot_path.display()
                ),
            })
        }
        Err(source) => {
            return Err(RunError::Train {
                file: file.display().to_string(),
                index: trial.index + 1,
                label: trial.label.clone(),
                source: Box::new(source),
            })
        }
    };
    save_model(trial, &model_folder, variables, &history)?;
    Ok((model, history))
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

fn is_complete(model_folder: &Path) -> bool {
    MODEL_FILES.iter().all(|f| model_folder.join(f).is_file())
}

/// The snapshot to resume from, if one fits this model; one that does not is reported and
/// training starts over (it is replaced by the next snapshot).
fn read_snapshot(
    path: &Path,
    names: &[String],
    config: &str,
    trial: &Trial,
    out: &mut dyn Write,
) -> Option<Snapshot> {
    let bytes = fs::read(path).ok()?;
    match Snapshot::from_bytes(&bytes, names, config, &trial.device) {
        Ok(snapshot) => {
            let _ = writeln!(
                out,
                "  resuming the model {} from its checkpoint at step {} of {}",
                trial.train_id, snapshot.progress.step, trial.train.steps
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
    trial: &Trial,
    model_folder: &Path,
    variables: &candle_nn::VarMap,
    history: &History,
) -> Result<(), RunError> {
    let partial = model_folder.with_file_name(format!(
        ".partial-{}",
        model_folder
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("model")
    ));
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).map_err(|e| write_error(&partial, e))?;
    let training_config = &trial.training;
    let metadata = HashMap::from([
        ("config".to_string(), training_config.to_string()),
        ("model".to_string(), trial.train_id.clone()),
        ("steps".to_string(), trial.train.steps.to_string()),
    ]);
    let tensors = train::sorted_vars(variables);
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
    let _ = fs::remove_dir_all(model_folder);
    fs::rename(&partial, model_folder).map_err(|e| write_error(model_folder, e))?;
    crate::crash::point("model.saved");
    let _ = fs::remove_file(snapshot_path(model_folder));
    Ok(())
}
