//! A finished trial on disk: its folder (resolved config, samples, their pictures, metrics),
//! assembled under a partial name and renamed when complete, and its TensorBoard log.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use candle_core::Device;

use super::error::{write_error, RunError};
use crate::dataset::Samples;
use crate::evaluate::Evaluation;
use crate::results::plots::{self, Picture};
use crate::results::store::{write_json, write_yaml};
use crate::results::tensorboard::EventWriter;
use crate::results::{table, SweepFolder, TrialRow};
use crate::train::{level_tag, History};
use crate::trial::Trial;

fn as_pairs(points: &Samples) -> Vec<(f64, f64)> {
    points
        .rows()
        .map(|r| (r[0], if r.len() > 1 { r[1] } else { 0.0 }))
        .collect()
}

/// Writes the samples and their pictures into the trial folder: for points, `samples.csv`
/// and a scatter over the held-out data; for images, `samples.safetensors` (with the class
/// each was generated for), a grid `samples.png` and the denoising strip `denoising.png`.
/// Returns the pictures for TensorBoard, by tag.
fn save_samples(
    trial: &Trial,
    partial: &Path,
    evaluation: &Evaluation,
) -> Result<Vec<(&'static str, Picture)>, String> {
    let samples = &evaluation.samples;
    let Some((c, h, w)) = samples.image_shape() else {
        table::write_points_csv(samples, &partial.join("samples.csv"))?;
        let (_, png, width, height) = plots::scatter_png(
            &partial.join("samples"),
            &format!("{} (samples over held-out data)", trial.label),
            &as_pairs(&trial.held_out),
            &as_pairs(samples),
        )
        .map_err(|e| e.to_string())?;
        return Ok(vec![("samples", Picture { png, width, height })]);
    };
    let mut tensors = HashMap::new();
    let device = Device::Cpu;
    let images = samples
        .to_tensor(&device)
        .and_then(|t| t.reshape((samples.len(), c, h, w)))
        .map_err(|e| e.to_string())?;
    tensors.insert("images".to_string(), images);
    if let Some(labels) = samples.labels_tensor(&device).map_err(|e| e.to_string())? {
        tensors.insert("labels".to_string(), labels);
    }
    candle_core::safetensors::save(&tensors, partial.join("samples.safetensors"))
        .map_err(|e| e.to_string())?;
    let mut pictures = Vec::new();
    if let Some(grid) = plots::image_grid_png(&partial.join("samples.png"), samples, 64)
        .map_err(|e| e.to_string())?
    {
        pictures.push(("samples", grid));
    }
    if let Some(strip) = plots::denoising_strip_png(
        &partial.join("denoising.png"),
        samples.shape(),
        &evaluation.trace,
        8,
    )
    .map_err(|e| e.to_string())?
    {
        pictures.push(("denoising", strip));
    }
    Ok(pictures)
}

/// A row for `trial` with no metrics yet, status ok.
fn base_row(trial: &Trial, train_seconds: f64) -> TrialRow {
    TrialRow {
        trial: trial.id.clone(),
        label: trial.label.clone(),
        train_id: trial.train_id.clone(),
        invocation: String::new(),
        status: table::OK.to_string(),
        message: String::new(),
        axes: trial.assignments.clone(),
        metrics: BTreeMap::new(),
        nfe: 0,
        train_seconds,
        sample_seconds: 0.0,
        metric_seconds: 0.0,
        sigma_max: trial.schedule.sigma_max(),
        sigma_min: trial.schedule.sigma_min(),
        features: None,
        protocols: BTreeMap::new(),
    }
}

/// Writes the folder of a trial that failed before it had samples: its config and a
/// `metrics.json` with status `failed`, `message` and the evaluations its sampling spent, so
/// the record is complete; a rerun retries it.
pub(super) fn save_failed_trial(
    trial: &Trial,
    folder: &SweepFolder,
    message: &str,
    (train_seconds, nfe): (f64, u64),
) -> Result<TrialRow, RunError> {
    let mut row = base_row(trial, train_seconds);
    row.nfe = nfe;
    row.status = table::FAILED.to_string();
    row.message = message.to_string();
    let partial = folder.partial_trial(&trial.id);
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).map_err(|e| write_error(&partial, e))?;
    write_yaml(&partial.join("config.yaml"), &trial.resolved)
        .map_err(|e| write_error(&partial, e))?;
    write_json(&partial.join("metrics.json"), &row).map_err(|e| write_error(&partial, e))?;
    move_into_place(&partial, &folder.trial(&trial.id))?;
    Ok(row)
}

/// Writes the trial folder (config, samples, scatter, metrics) and its TensorBoard run,
/// which replaces what training streamed there: the loss history, the metrics and the
/// pictures (its HParams session is written with the folder's tables). The folder is
/// assembled under a partial name and renamed when complete.
pub(super) fn save_trial(
    trial: &Trial,
    folder: &SweepFolder,
    evaluation: &Evaluation,
    history: &History,
) -> Result<TrialRow, RunError> {
    let mut row = base_row(trial, history.seconds);
    row.metrics = evaluation
        .metrics
        .iter()
        .cloned()
        .collect::<BTreeMap<_, _>>();
    row.nfe = evaluation.nfe;
    row.sample_seconds = evaluation.sample_seconds;
    row.metric_seconds = evaluation.metric_seconds;
    row.features = evaluation.features_identity.clone();
    row.protocols = evaluation.protocols.clone();
    if !evaluation.failures.is_empty() {
        row.status = table::FAILED.to_string();
        row.message = evaluation.failures.join("; ");
    }
    let partial = folder.partial_trial(&trial.id);
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).map_err(|e| write_error(&partial, e))?;
    write_yaml(&partial.join("config.yaml"), &trial.resolved)
        .map_err(|e| write_error(&partial, e))?;
    let pictures =
        save_samples(trial, &partial, evaluation).map_err(|e| write_error(&partial, e))?;
    let tb_folder = folder.tensorboard(&trial.id);
    let _ = fs::remove_dir_all(&tb_folder);
    let mut events = EventWriter::create(&tb_folder).map_err(|e| write_error(&tb_folder, e))?;
    for (i, step) in history.steps.iter().enumerate() {
        events.add_scalar("train/loss", history.loss[i], *step as i64);
        for (sigma, value) in history.levels.iter().zip(&history.level_loss[i]) {
            if value.is_finite() {
                events.add_scalar(
                    &format!("train/{}", level_tag(*sigma)),
                    *value,
                    *step as i64,
                );
            }
        }
    }
    let final_step = history.steps.last().copied().unwrap_or(0) as i64;
    for (name, value) in &evaluation.metrics {
        events.add_scalar(&format!("metrics/{name}"), *value, final_step);
    }
    events.add_scalar("metrics/nfe", evaluation.nfe as f64, final_step);
    for (tag, picture) in &pictures {
        events.add_png(tag, &picture.png, picture.width, picture.height, final_step);
    }
    events.flush().map_err(|e| write_error(&tb_folder, e))?;

    write_json(&partial.join("metrics.json"), &row).map_err(|e| write_error(&partial, e))?;
    move_into_place(&partial, &folder.trial(&trial.id))?;
    Ok(row)
}

/// Replaces the trial's folder by the assembled one.
fn move_into_place(partial: &Path, destination: &Path) -> Result<(), RunError> {
    crate::crash::point("trial.save");
    let _ = fs::remove_dir_all(destination);
    fs::rename(partial, destination).map_err(|e| write_error(destination, e))?;
    crate::crash::point("trial.saved");
    Ok(())
}

/// The row of this trial if an earlier run finished it. The hash part of the folder name
/// identifies the config; the label may differ (a value fixed then, swept now), in which
/// case the row takes this run's label and swept keys.
pub(super) fn finished_row(folder: &SweepFolder, trial: &Trial) -> Option<TrialRow> {
    let read = |dir: &Path| -> Option<TrialRow> {
        serde_json::from_str(&fs::read_to_string(dir.join("metrics.json")).ok()?).ok()
    };
    // A failed trial is not finished: a rerun retries it. Nor is one missing any file a
    // finished trial has (its config, its samples).
    let read = |dir: &Path| {
        let complete = dir.join("config.yaml").is_file()
            && ["samples.csv", "samples.safetensors"]
                .iter()
                .any(|name| dir.join(name).is_file());
        read(dir).filter(|row| complete && !row.failed())
    };
    if let Some(row) = read(&folder.trial(&trial.id)) {
        return Some(row);
    }
    let hash_suffix = format!("-{}", trial.id.rsplit('-').next()?);
    let trials_dir = folder.trial(&trial.id).parent()?.to_path_buf();
    let mut names: Vec<String> = fs::read_dir(&trials_dir)
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(&hash_suffix) && !n.starts_with('.'))
        .collect();
    names.sort();
    let mut row = names.iter().find_map(|n| read(&trials_dir.join(n)))?;
    row.label = trial.label.clone();
    row.axes = trial.assignments.clone();
    Some(row)
}
