//! Before any training: the sweep's folder must take files, and its disk must have room for
//! what the sweep will write. A read-only, unwritable or full results folder, or a file where
//! one of the sweep's folders must be, is reported now, with the classified message of
//! [`super::error::write_error`], rather than after hours of training.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::error::{no_space, write_error, Fault, RunError};
use crate::results::SweepFolder;
use crate::rng::{Rng, Stream};
use crate::trial::Trial;

/// Folders of the sweep that are probed when they exist (they are created as needed later).
const PROBED: [&str; 3] = ["trials", "models", "plots"];

/// Folders of the sweep that must not be files.
const FOLDERS: [&str; 5] = ["trials", "models", "plots", "tb", "features"];

/// Estimated bytes are multiplied by this (PNG sizes, file system blocks, metadata).
const MARGIN: f64 = 1.25;

/// Checks that `folder.root` (which exists) and its existing subfolders take a file (written,
/// synced and removed), that none of the sweep's folders is a file, and that the disk has
/// room for what the trials not yet finished will write.
pub(super) fn check(folder: &SweepFolder, trials: &[Trial]) -> Result<(), RunError> {
    probe(&folder.root)?;
    for name in FOLDERS {
        let path = folder.root.join(name);
        unlink(&path)?;
        match fs::metadata(&path) {
            Ok(meta) if !meta.is_dir() => {
                return Err(RunError::Write {
                    path: path.clone(),
                    message: "a file is where the sweep keeps a folder".to_string(),
                    fault: Fault::NotAFolder { file: path },
                    io: None,
                });
            }
            Ok(_) if PROBED.contains(&name) => probe(&path)?,
            _ => {}
        }
    }
    let needed = estimate(folder, trials);
    // Where free space cannot be asked for (or a filesystem reports no size at all, as some
    // network and FUSE ones do), the writes themselves report a full disk.
    if let Ok(stats) = fs4::statvfs(&folder.root) {
        let free = stats.available_space();
        if stats.total_space() > 0 && free < needed.total() {
            return Err(no_space(
                &folder.root,
                format!(
                    "{} free on its disk, but this sweep will write about {} ({})",
                    bytes_text(free),
                    bytes_text(needed.total()),
                    needed.describe()
                ),
            ));
        }
    }
    Ok(())
}

/// Removes a link planted where the sweep keeps one of its folders (the link only, never
/// what it points to), so that nothing is written outside the results folder through it;
/// the folder is made anew where it is needed, as a link at `trials/<id>` is replaced.
fn unlink(path: &Path) -> Result<(), RunError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::remove_file(path).map_err(|e| write_error(path, e))
        }
        _ => Ok(()),
    }
}

/// Writes, syncs and removes a small file in `dir`. Named `.tmp-…` so that a sweep killed
/// meanwhile leaves nothing the next one does not remove.
fn probe(dir: &Path) -> Result<(), RunError> {
    let path = dir.join(format!(".tmp-preflight-{}", std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .and_then(|mut file| {
            file.write_all(&[b'\n'; 4096])?;
            file.sync_all()
        });
    let removed = fs::remove_file(&path);
    match (written, removed) {
        (Err(e), _) => Err(write_error(&path, e)),
        (Ok(()), Err(e)) => Err(write_error(&path, e)),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// What the unfinished part of a sweep will write, in bytes, by kind.
#[derive(Debug, Default, Clone, Copy)]
struct Estimate {
    /// Checkpoints: weights, EMA and optimiser state.
    models: u64,
    /// Samples, pictures, configs, metrics and TensorBoard logs of the trials.
    trials: u64,
    /// Tables, charts, the experiment record.
    sweep: u64,
}

impl Estimate {
    fn total(&self) -> u64 {
        ((self.models + self.trials + self.sweep) as f64 * MARGIN) as u64
    }

    fn describe(&self) -> String {
        format!(
            "models {}, trials {}, tables and charts {}, plus {}% margin",
            bytes_text(self.models),
            bytes_text(self.trials),
            bytes_text(self.sweep),
            ((MARGIN - 1.0) * 100.0).round()
        )
    }
}

fn estimate(folder: &SweepFolder, trials: &[Trial]) -> Estimate {
    let mut estimate = Estimate {
        sweep: 4 << 20,
        ..Estimate::default()
    };
    let mut models_seen: Vec<&str> = Vec::new();
    for trial in trials {
        let logged = (trial.train.steps / trial.train.log_every.max(1) + 2) as u64;
        let levels = trial.schedule.loss_levels().len() as u64 + 1;
        if !folder.trial(&trial.id).join("metrics.json").is_file() {
            let values = (trial.settings.num_samples * trial.held_out.dim()) as u64;
            let samples = if trial.held_out.image_shape().is_some() {
                values * 4 + 64 * trial.held_out.dim() as u64 * 3 * 2
            } else {
                values * 26
            };
            // Config, metrics, scatter or grids; TensorBoard scalars and pictures.
            estimate.trials += samples + (1 << 20) + logged * levels * 64;
        }
        if trial.architecture.trainable()
            && !models_seen.contains(&trial.train_id.as_str())
            && !folder
                .model(&trial.train_id)
                .join("model.safetensors")
                .is_file()
        {
            models_seen.push(&trial.train_id);
            // Weights, EMA and two optimiser moments at 4 bytes each; the loss history
            // (history.json and loss.csv).
            estimate.models += parameters(trial) * 4 * 4 + logged * levels * 2 * 32;
        }
    }
    estimate
}

/// The number of trainable values of the trial's network (a fresh instance, counted).
fn parameters(trial: &Trial) -> u64 {
    let Ok(model) = trial.new_model(&mut Rng::new(trial.settings.seed, Stream::NetworkInit)) else {
        return 0;
    };
    model.network().map_or(0, |network| {
        network
            .variables()
            .all_vars()
            .iter()
            .map(|v| v.elem_count() as u64)
            .sum()
    })
}

/// `1.5 GiB`, `320 KiB`, `12 bytes`.
fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}
