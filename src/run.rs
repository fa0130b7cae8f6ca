//! One sweep, end to end: resolve every trial, train once per distinct training config,
//! sample and score each trial, and write results. Finished trials are found by their
//! stable ids and skipped, so an interrupted sweep resumes where it stopped.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::ConfigError;
use crate::dataset::Points;
use crate::evaluate::{self, EvaluateError, Evaluation};
use crate::parameterisation::Model;
use crate::registry;
use crate::results::nfe;
use crate::results::plots;
use crate::results::report;
use crate::results::store::{write_json, write_yaml};
use crate::results::tensorboard::EventWriter;
use crate::results::{table, write_atomic, SweepFolder, TrialRow};
use crate::rng::{Rng, Stream};
use crate::sweep::Experiment;
use crate::train::{self, History, TrainError};
use crate::trial::{self, display_value, short_key, Trial};

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// Parent folder of the sweep's results folder.
    pub results: PathBuf,
    /// Print the resolved trials and stop.
    pub dry_run: bool,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            results: PathBuf::from("results"),
            dry_run: false,
        }
    }
}

/// What a finished sweep produced.
pub struct SweepReport {
    pub folder: SweepFolder,
    /// One row per trial, in sweep order (empty for a dry run).
    pub rows: Vec<TrialRow>,
    pub trials: usize,
    /// Trials found finished from an earlier run.
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(Box<ConfigError>),
    #[error("{0}")]
    Registry(String),
    #[error("in {file}, trial {index} ({label}): {source}")]
    Train {
        file: String,
        index: usize,
        label: String,
        source: Box<TrainError>,
    },
    #[error("in {file}, trial {index} ({label}): {source}")]
    Evaluate {
        file: String,
        index: usize,
        label: String,
        source: Box<EvaluateError>,
    },
    #[error("cannot write {path}: {message}. Fix: check that the results folder is writable (choose another with --results DIR)")]
    Write { path: PathBuf, message: String },
    #[error(
        "cannot read the checkpoint {path}: {message}. Fix: delete that model folder to retrain"
    )]
    Checkpoint { path: PathBuf, message: String },
}

impl From<ConfigError> for RunError {
    fn from(error: ConfigError) -> Self {
        RunError::Config(Box::new(error))
    }
}

fn write_error(path: &Path, error: impl std::fmt::Display) -> RunError {
    RunError::Write {
        path: path.to_path_buf(),
        message: error.to_string(),
    }
}

/// Runs (or, with `dry_run`, lists) every trial of `file` with `overrides` applied.
/// Progress and the summary go to `out`.
pub fn sweep(
    file: &Path,
    overrides: &[String],
    options: &SweepOptions,
    out: &mut dyn Write,
) -> Result<SweepReport, RunError> {
    registry::check().map_err(RunError::Registry)?;
    let experiment = Experiment::load(file, overrides)?;
    let trials = trial::resolve_all(&experiment)?;
    let name = trials[0]
        .settings
        .name
        .clone()
        .unwrap_or_else(|| experiment.stem.clone());
    let folder = SweepFolder::new(&options.results, &name);
    let count = trials.len();

    if options.dry_run {
        for t in &trials {
            let _ = writeln!(
                out,
                "[{}/{count}] {}  (trial {}, model {})",
                t.index + 1,
                t.label,
                t.id,
                t.train_id
            );
            let yaml = serde_yaml::to_string(&t.resolved).unwrap_or_default();
            for line in yaml.lines() {
                let _ = writeln!(out, "    {line}");
            }
        }
        let _ = writeln!(
            out,
            "{count} trial(s); results would go to {}",
            folder.root.display()
        );
        return Ok(SweepReport {
            folder,
            rows: Vec::new(),
            trials: count,
            skipped: 0,
        });
    }

    // candle reads this for its CPU thread pools.
    std::env::set_var("RAYON_NUM_THREADS", trials[0].settings.threads.to_string());
    fs::create_dir_all(&folder.root).map_err(|e| write_error(&folder.root, e))?;
    write_yaml(
        &folder.experiment_file(),
        &experiment_record(&experiment, overrides, &trials),
    )
    .map_err(|e| write_error(&folder.experiment_file(), e))?;

    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, t) in trials.iter().enumerate() {
        match groups.iter_mut().find(|(id, _)| *id == t.train_id) {
            Some((_, members)) => members.push(i),
            None => groups.push((t.train_id.clone(), vec![i])),
        }
    }

    let mut rows: Vec<Option<TrialRow>> = vec![None; count];
    let mut histories: Vec<(String, History)> = Vec::new();
    let mut skipped = 0;
    for (train_id, members) in &groups {
        let pending: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| match finished_row(&folder, &trials[i]) {
                Some(row) => {
                    rows[i] = Some(row);
                    false
                }
                None => true,
            })
            .collect();
        for &i in members.iter().filter(|i| !pending.contains(i)) {
            skipped += 1;
            let _ = writeln!(
                out,
                "[{}/{count}] {}: finished earlier, skipped",
                i + 1,
                trials[i].label
            );
        }
        if pending.is_empty() {
            if let Some(history) = read_history(&folder.model(train_id)) {
                histories.push((train_label(&trials[members[0]]), history));
            }
            continue;
        }
        let first = &trials[pending[0]];
        let (network, history) = obtain_model(first, &folder, file)?;
        if first.architecture.trainable() {
            histories.push((train_label(first), history.clone()));
        }
        for &i in &pending {
            let t = &trials[i];
            let evaluation =
                sample_with_progress(t, &network).map_err(|source| RunError::Evaluate {
                    file: file.display().to_string(),
                    index: i + 1,
                    label: t.label.clone(),
                    source: Box::new(source),
                })?;
            let row = save_trial(t, &folder, &evaluation, &history)?;
            let _ = writeln!(out, "[{}/{count}] {}", i + 1, report::progress_line(&row));
            rows[i] = Some(row);
        }
    }

    let rows: Vec<TrialRow> = rows.into_iter().flatten().collect();
    table::write_tables(&rows, &folder.table("csv"), &folder.table("parquet"))
        .map_err(|e| write_error(&folder.table("csv"), e))?;
    let axis_keys: Vec<String> = experiment
        .axes
        .iter()
        .flat_map(|a| a.keys.clone())
        .collect();
    report::write_plots(&folder.plots(), &axis_keys, &rows, &histories)
        .map_err(|e| write_error(&folder.plots(), e))?;
    if nfe::applies(&axis_keys) {
        let path = folder.root.join("quality_vs_nfe.csv");
        table::write_csv(nfe::table(&rows), &path).map_err(|e| write_error(&path, e))?;
        nfe::write_charts(&folder.plots(), &rows).map_err(|e| write_error(&folder.plots(), e))?;
    }
    let _ = writeln!(out, "\n{}", report::summary_table(&rows));
    let _ = writeln!(out, "results: {}", folder.root.display());
    Ok(SweepReport {
        folder,
        rows,
        trials: count,
        skipped,
    })
}

/// The resolved experiment: where it came from, the sweep, and every trial's config.
fn experiment_record(
    experiment: &Experiment,
    overrides: &[String],
    trials: &[Trial],
) -> serde_json::Value {
    let sweep: serde_json::Map<String, serde_json::Value> = experiment
        .axes
        .iter()
        .flat_map(|axis| {
            axis.keys.iter().enumerate().map(move |(k, key)| {
                let values = axis
                    .values
                    .iter()
                    .map(|row| crate::config::to_json(&row[k]))
                    .collect();
                (key.clone(), serde_json::Value::Array(values))
            })
        })
        .collect();
    let zipped: Vec<Vec<String>> = experiment
        .axes
        .iter()
        .filter(|a| a.keys.len() > 1)
        .map(|a| a.keys.clone())
        .collect();
    serde_json::json!({
        "source": experiment.file.display().to_string(),
        "overrides": overrides,
        "sweep": sweep,
        "zipped": zipped,
        "trials": trials.iter().map(|t| serde_json::json!({
            "id": t.id,
            "label": t.label,
            "model": t.train_id,
            "config": t.resolved,
        })).collect::<Vec<_>>(),
    })
}

/// The row of this trial if an earlier run finished it. The hash part of the folder name
/// identifies the config; the label may differ (a value fixed then, swept now), in which
/// case the row takes this run's label and swept keys.
fn finished_row(folder: &SweepFolder, trial: &Trial) -> Option<TrialRow> {
    let read = |dir: &Path| -> Option<TrialRow> {
        serde_json::from_str(&fs::read_to_string(dir.join("metrics.json")).ok()?).ok()
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

fn read_history(model_folder: &Path) -> Option<History> {
    serde_json::from_str(&fs::read_to_string(model_folder.join("history.json")).ok()?).ok()
}

/// The swept training-relevant values of a trial, naming its model in plots.
fn train_label(trial: &Trial) -> String {
    let parts: Vec<String> = trial
        .assignments
        .iter()
        .filter(|(key, _)| {
            !key.starts_with("sampler") && !key.starts_with("eval") && key != "num_samples"
        })
        .map(|(key, value)| format!("{}={}", short_key(key), display_value(value)))
        .collect();
    if parts.is_empty() {
        "model".to_string()
    } else {
        parts.join(",")
    }
}

fn bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// Loads the trial's model from its checkpoint, or trains and saves it.
fn obtain_model(
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

fn sample_with_progress(trial: &Trial, network: &Model) -> Result<Evaluation, EvaluateError> {
    let progress = bar(0, "  sample [{bar:30}] {pos}/{len} sigma {prefix}");
    let result = evaluate::evaluate(trial, network, &mut |info| {
        progress.set_length(info.total as u64);
        progress.set_position(info.step as u64);
        progress.set_prefix(format!("{:.4}", info.sigma));
    });
    progress.finish_and_clear();
    result
}

fn as_pairs(points: &Points) -> Vec<(f64, f64)> {
    points
        .rows()
        .map(|r| (r[0], if r.len() > 1 { r[1] } else { 0.0 }))
        .collect()
}

/// Writes the trial folder (config, samples, scatter, metrics) and its TensorBoard log.
/// The folder is assembled under a partial name and renamed when complete.
fn save_trial(
    trial: &Trial,
    folder: &SweepFolder,
    evaluation: &Evaluation,
    history: &History,
) -> Result<TrialRow, RunError> {
    let row = TrialRow {
        trial: trial.id.clone(),
        label: trial.label.clone(),
        train_id: trial.train_id.clone(),
        axes: trial.assignments.clone(),
        metrics: evaluation
            .metrics
            .iter()
            .cloned()
            .collect::<BTreeMap<_, _>>(),
        nfe: evaluation.nfe,
        train_seconds: history.seconds,
        sample_seconds: evaluation.sample_seconds,
        metric_seconds: evaluation.metric_seconds,
        sigma_max: trial.schedule.sigma_max(),
        sigma_min: trial.schedule.sigma_min(),
    };
    let partial = folder.partial_trial(&trial.id);
    let _ = fs::remove_dir_all(&partial);
    fs::create_dir_all(&partial).map_err(|e| write_error(&partial, e))?;
    write_yaml(&partial.join("config.yaml"), &trial.resolved)
        .map_err(|e| write_error(&partial, e))?;
    table::write_points_csv(&evaluation.samples, &partial.join("samples.csv"))
        .map_err(|e| write_error(&partial, e))?;
    let (_, png, width, height) = plots::scatter_png(
        &partial.join("samples"),
        &format!("{} (samples over held-out data)", trial.label),
        &as_pairs(&trial.held_out),
        &as_pairs(&evaluation.samples),
    )
    .map_err(|e| write_error(&partial, e))?;

    let tb_folder = folder.tensorboard(&trial.id);
    let _ = fs::remove_dir_all(&tb_folder);
    let mut events = EventWriter::create(&tb_folder).map_err(|e| write_error(&tb_folder, e))?;
    for (i, step) in history.steps.iter().enumerate() {
        events.add_scalar("train/loss", history.loss[i], *step as i64);
        for (sigma, value) in history.levels.iter().zip(&history.level_loss[i]) {
            if value.is_finite() {
                events.add_scalar(
                    &format!("train/level_loss/sigma_{sigma:.4}"),
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
    events.add_png("samples", &png, width, height, final_step);
    events.flush().map_err(|e| write_error(&tb_folder, e))?;

    write_json(&partial.join("metrics.json"), &row).map_err(|e| write_error(&partial, e))?;
    let destination = folder.trial(&trial.id);
    let _ = fs::remove_dir_all(&destination);
    fs::rename(&partial, &destination).map_err(|e| write_error(&destination, e))?;
    Ok(row)
}
