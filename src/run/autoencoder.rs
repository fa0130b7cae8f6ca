//! Latent autoencoders on disk, trained before the diffusion model that needs them:
//! `models/latent-<kind>-<hash>/` (the hash of the data, seed, training-set size, device and
//! the `latent` section) holds the weights (`autoencoder.safetensors`, config in its
//! metadata), the scaled training latents (`latents.safetensors`), the scale, timings and
//! reconstruction history (`autoencoder.json`) and the loss table (`loss.csv`). It is
//! assembled in a partial folder and renamed into place; a complete one is loaded, so every
//! trial and model that shares it, in this run or a later one, trains it once.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use polars::prelude::{Column, DataFrame};
use serde::{Deserialize, Serialize};

use super::live::LiveRuns;
use super::progress::Progress;
use crate::artifact::{Artifact, Obtained, PlaceError};
use crate::dataset::Samples;
use crate::latent::{AutoencoderHistory, LatentSpace, Prepared};
use crate::results::store::{write_json, write_yaml};
use crate::results::{table, write_atomic, SweepFolder};
use crate::train::checkpoint::Checkpoints;
use crate::train::TrainError;

use crate::trial::Trial;

/// Files a finished autoencoder folder holds; one without all of them is trained again.
const FILES: [&str; 5] = [
    "autoencoder.safetensors",
    "latents.safetensors",
    "autoencoder.json",
    "config.yaml",
    "loss.csv",
];

/// What `autoencoder.json` holds besides the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    id: String,
    /// 1 / std of the encoded training latents.
    scale: f64,
    /// One latent's shape.
    shape: Vec<usize>,
    /// Seconds it took to encode the training set when the autoencoder was trained.
    encode_seconds: f64,
    history: AutoencoderHistory,
}

/// The autoencoder of a training group's trials (they share their training config, so
/// their latent space), trained or loaded; `None` for `identity`.
pub(super) fn prepare_group(
    first: &Trial,
    folder: &SweepFolder,
    out: &mut dyn Write,
) -> Result<Option<Arc<Prepared>>, String> {
    if !first.latent.active() {
        return Ok(None);
    }
    let dir = folder.model(&first.latent.id);
    let models = dir.parent().unwrap_or(&dir).to_path_buf();
    // The autoencoder is no trial's model: it has a TensorBoard run of its own.
    let run = folder.tensorboard(&first.latent.id);
    prepare(first, (&models, &run), out).map(|prepared| Some(Arc::new(prepared)))
}

/// Trains the trial's autoencoder into `models/<latent id>/` (resuming from its snapshot
/// when a run was stopped, streaming its training to the TensorBoard run `run`), or loads
/// it from there when complete. Errors say what failed and where.
pub fn prepare(
    trial: &Trial,
    (models, run): (&Path, &Path),
    out: &mut dyn Write,
) -> Result<Prepared, String> {
    let space = trial.latent.as_ref();
    let dir = models.join(&space.id);
    let artifact = Artifact::new(&dir, &FILES);
    // Loading and training both report to `out`.
    let out = std::cell::RefCell::new(out);
    let reuse = |dir: &Path| match load(space, dir, &trial.training_data, &trial.device) {
        Ok(prepared) => {
            let _ = writeln!(out.borrow_mut(), "  autoencoder {}: loaded", space.id);
            Ok::<_, Failure>(Some(prepared))
        }
        Err(message) => {
            let _ = writeln!(
                out.borrow_mut(),
                "  ignoring the autoencoder {} ({message}); training it again",
                dir.display()
            );
            Ok(None)
        }
    };
    let prepared = artifact
        .obtain(
            reuse,
            || Ok(train(trial, (&artifact, run), &mut **out.borrow_mut())?),
            |prepared, partial| {
                save(space, partial, prepared)
                    .map_err(|e| Failure(format!("saving {}: {e}", dir.display())))
            },
        )
        .map_err(|e: Failure| e.0)?;
    if let Obtained::Made(prepared) = &prepared {
        let last = prepared.history.recon.last().copied().unwrap_or(f64::NAN);
        let _ = writeln!(
            out.borrow_mut(),
            "  autoencoder {}: trained in {:.1} s (reconstruction MSE {last:.5}, latent scale {:.4})",
            space.id, prepared.history.seconds, prepared.scale
        );
    }
    Ok(prepared.into_inner())
}

/// A failure to prepare an autoencoder, as the trials that need it report it.
struct Failure(String);

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Failure(message)
    }
}

impl From<PlaceError> for Failure {
    fn from(failure: PlaceError) -> Self {
        Failure(format!("saving the autoencoder: {failure}"))
    }
}

/// Trains a fresh autoencoder for the trial, from the artifact's snapshot when one fits,
/// with a progress bar and a snapshot every `checkpoint_every` steps.
fn train(
    trial: &Trial,
    (artifact, run): (&Artifact, &Path),
    out: &mut dyn Write,
) -> Result<Prepared, String> {
    let space = trial.latent.as_ref();
    let seed = trial.settings.seed;
    // The variable names the snapshot is checked against, from an autoencoder like the one
    // training builds.
    let names_from = space
        .fresh_autoencoder(seed, &trial.device)
        .map_err(|e| e.to_string())?;
    let checkpoints = Checkpoints::new(
        artifact.checkpoint(),
        names_from.variables(),
        space.config.to_string(),
        trial.settings.checkpoint_every,
    );
    let resume = checkpoints.resume(&trial.device, &mut |found| {
        let _ = match found {
            Ok(snapshot) => writeln!(
                out,
                "  resuming the autoencoder {} from its checkpoint at step {} of {}",
                space.id,
                snapshot.progress.step,
                space.plugin.training().steps
            ),
            Err(message) => writeln!(
                out,
                "  ignoring the checkpoint {} ({message}); training from step 0",
                checkpoints.path.display()
            ),
        };
    });
    let steps = space.plugin.training().steps as u64;
    let progress = Progress::new(
        steps,
        ("autoencoder", "mse"),
        "  autoencoder {msg} [{bar:30}] {pos}/{len} mse {prefix} ({per_sec}, eta {eta})",
    );
    progress.set_message(space.id.clone());
    let mut live =
        LiveRuns::open(&[run.to_path_buf()], "autoencoder").map_err(|e| e.to_string())?;
    let trained = crate::stages::latent::train_and_encode(
        space,
        &trial.training_data,
        (seed, &trial.device),
        resume,
        checkpoints.hooks(&mut |logged| {
            progress.update(logged.step as u64, format!("{:.5}", logged.loss));
            live.record(logged, out);
        }),
    );
    progress.finish();
    trained.map_err(|e| match e {
        TrainError::Interrupted { step, steps } => format!(
            "training the autoencoder {} stopped after step {step} of {steps}; its checkpoint is {}",
            space.id,
            checkpoints.path.display()
        ),
        e => format!(
            "training the autoencoder {} (`latent: {}`) failed: {e}",
            space.id, space.name
        ),
    })
}

fn save(space: &LatentSpace, dir: &Path, prepared: &Prepared) -> Result<(), String> {
    let metadata = HashMap::from([
        ("config".to_string(), space.config.to_string()),
        ("autoencoder".to_string(), space.id.clone()),
    ]);
    let vars = crate::optim::sorted_vars(prepared.autoencoder.variables());
    let weights = safetensors::serialize(
        vars.iter()
            .map(|(name, var)| (name.clone(), var.as_tensor())),
        Some(metadata),
    )
    .map_err(|e| e.to_string())?;
    write_atomic(&dir.join("autoencoder.safetensors"), &weights).map_err(|e| e.to_string())?;
    let latents = &prepared.training_latents;
    let values: Vec<f32> = latents.as_slice().iter().map(|v| *v as f32).collect();
    let tensor = Tensor::from_vec(values, (latents.len(), latents.dim()), &Device::Cpu)
        .map_err(|e| e.to_string())?;
    let bytes = safetensors::serialize([("latents", &tensor)], None).map_err(|e| e.to_string())?;
    write_atomic(&dir.join("latents.safetensors"), &bytes).map_err(|e| e.to_string())?;
    let record = Record {
        id: space.id.clone(),
        scale: prepared.scale,
        shape: space.shape.clone(),
        encode_seconds: prepared.encode_seconds,
        history: prepared.history.clone(),
    };
    write_json(&dir.join("autoencoder.json"), &record).map_err(|e| e.to_string())?;
    write_yaml(&dir.join("config.yaml"), &space.config).map_err(|e| e.to_string())?;
    let history = &prepared.history;
    let frame = DataFrame::new(
        history.steps.len(),
        vec![
            Column::new(
                "step".into(),
                history.steps.iter().map(|s| *s as u64).collect::<Vec<_>>(),
            ),
            Column::new("recon_mse".into(), history.recon.clone()),
            Column::new("kl".into(), history.kl.clone()),
        ],
    );
    table::write_csv(frame, &dir.join("loss.csv"))
}

fn load(
    space: &LatentSpace,
    dir: &Path,
    data: &Samples,
    device: &Device,
) -> Result<Prepared, String> {
    let record: Record = serde_json::from_str(
        &fs::read_to_string(dir.join("autoencoder.json")).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("autoencoder.json: {e}"))?;
    if record.shape != space.shape {
        return Err(format!(
            "its latents have shape {:?}, not {:?}",
            record.shape, space.shape
        ));
    }
    let read = |file: &str| -> Result<HashMap<String, Tensor>, String> {
        let bytes = fs::read(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
        candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| format!("{file}: {e}"))
    };
    // Initial weights drawn as in training, then overwritten by the saved ones.
    let autoencoder = space
        .fresh_autoencoder(trial_seed(space), device)
        .map_err(|e| e.to_string())?;
    crate::optim::load_variables(autoencoder.variables(), &read("autoencoder.safetensors")?)?;
    let latents = read("latents.safetensors")?;
    let Some(latents) = latents.get("latents") else {
        return Err("latents.safetensors has no tensor `latents`".to_string());
    };
    let values: Vec<f64> = latents
        .flatten_all()
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|v| v as f64)
        .collect();
    if values.len() != data.len() * space.dim() {
        return Err(format!(
            "{} latent values for {} training items of {} coordinates",
            values.len(),
            data.len(),
            space.dim()
        ));
    }
    let mut samples = Samples::with_shape(&space.shape, values);
    if let Some(labels) = data.labels() {
        samples = samples.with_labels(labels.to_vec());
    }
    Ok(Prepared {
        autoencoder,
        scale: record.scale,
        training_latents: Arc::new(samples),
        encode_seconds: record.encode_seconds,
        history: record.history,
    })
}

/// The seed in the autoencoder's config.
fn trial_seed(space: &LatentSpace) -> u64 {
    space.config["seed"].as_u64().unwrap_or(0)
}
