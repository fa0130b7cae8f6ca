//! Trained models on disk: a checkpoint is loaded when its folder is complete, otherwise the
//! model is trained and saved (safetensors with the training config in its metadata, the
//! training config, the loss history) into a partial folder renamed into place.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use super::error::{write_error, RunError};
use super::progress::bar;
use crate::parameterisation::Model;
use crate::results::store::{write_json, write_yaml};
use crate::results::{table, write_atomic, SweepFolder};
use crate::rng::{Rng, Stream};
use crate::train::{self, History};
use crate::trial::Trial;

pub(super) fn read_history(model_folder: &Path) -> Option<History> {
    serde_json::from_str(&fs::read_to_string(model_folder.join("history.json")).ok()?).ok()
}

/// Loads the trial's model from its checkpoint, or trains and saves it.
pub(super) fn obtain_model(
    trial: &Trial,
    folder: &SweepFolder,
    file: &Path,
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
    if checkpoint.is_file() {
        if let Some(history) = read_history(&model_folder) {
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

    let progress = bar(
        trial.train.steps as u64,
        "  train {msg} [{bar:30}] {pos}/{len} loss {prefix} ({per_sec}, eta {eta})",
    );
    progress.set_message(trial.train_id.clone());
    let history = train::train(&model, trial, &mut |step, _, loss| {
        progress.set_position(step as u64);
        progress.set_prefix(format!("{loss:.4}"));
    })
    .map_err(|source| RunError::Train {
        file: file.display().to_string(),
        index: trial.index + 1,
        label: trial.label.clone(),
        source: Box::new(source),
    })?;
    progress.finish_and_clear();
    save_model(trial, &model_folder, variables, &history)?;
    Ok((model, history))
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
    let _ = fs::remove_dir_all(model_folder);
    fs::rename(&partial, model_folder).map_err(|e| write_error(model_folder, e))
}
