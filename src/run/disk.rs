//! What the unfinished part of a sweep will write, estimated per kind of output from what
//! trials really write (measured on the shipped experiments: `tests/it/disk_estimate.rs`
//! checks the estimate against the folder a sweep leaves, within a factor of two):
//! - a trial: its config and record; its samples (CSV text for points, float32 safetensors
//!   for images); its pictures (a scatter, or a grid and a denoising strip); its TensorBoard
//!   run (the loss history's scalars and the same pictures again);
//! - a model: its weights and loss history, and, while it trains, a snapshot four times the
//!   weights (weights, average, two Adam moments), removed when it finishes;
//! - the sweep: its charts (PNG and SVG, the PNGs again in `tb/charts`), the report (the
//!   pictures it embeds as base64: all of them while they are small, `results::html`) and
//!   its tables.

use std::collections::HashSet;

use crate::results::SweepFolder;
use crate::rng::{Rng, Stream};
use crate::trial::Trial;

/// Bytes per value of a points sample in `samples.csv` (a shortest round-trip float and a
/// separator: 19.4 measured on the quickstart).
const CSV_VALUE: u64 = 20;
/// A 500×500 scatter PNG (59 KB measured on the quickstart).
const SCATTER: u64 = 60 << 10;
/// Compressed PNG bytes per image value in a samples grid or denoising strip.
const PICTURE_VALUE: u64 = 2;
/// Bytes of one TensorBoard scalar event (tag, step, time, framing).
const SCALAR_EVENT: u64 = 64;
/// Bytes of one loss-history value in `history.json` and `loss.csv`.
const HISTORY_VALUE: u64 = 40;
/// A trial's config, record and session.
const TRIAL_RECORD: u64 = 4 << 10;
/// A chart's PNG and SVG: a base, more per category row or series it draws, and per heatmap
/// cell (measured on the shipped experiments: 59 KiB a chart on the quickstart, 350 KiB on
/// samplers.yaml's 49-row dot charts); a loss chart.
const CHART: u64 = 40 << 10;
const CHART_ROW: u64 = 6 << 10;
const HEATMAP_CELL: u64 = 1 << 10;
const LOSS_CHART: u64 = 110 << 10;
/// A metric-vs-key chart with more series than this is left to the heatmap.
const MAX_SERIES: u64 = 20;
/// Share of a chart's bytes that is its PNG (copied to `tb/charts` and the report).
const PNG_SHARE: f64 = 0.85;
/// The report's base64 makes embedded pictures a third larger.
const BASE64: f64 = 4.0 / 3.0;

/// What the unfinished part of a sweep will write, in bytes, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Trained models: weights and loss histories.
    pub models: u64,
    /// The largest training snapshot, on disk while its model trains.
    pub snapshot: u64,
    /// Trial folders and their TensorBoard runs.
    pub trials: u64,
    /// Charts, report, tables and records.
    pub sweep: u64,
}

impl Estimate {
    /// The most the sweep's folder grows by at any moment.
    pub fn total(&self) -> u64 {
        self.models + self.snapshot + self.trials + self.sweep
    }

    /// `models 1.2 MiB (+ 4.8 MiB snapshot while training), trials …, charts and report …`.
    pub fn describe(&self) -> String {
        format!(
            "models {} (and a {} snapshot while one trains), trials {}, charts, report and \
             tables {}",
            bytes_text(self.models),
            bytes_text(self.snapshot),
            bytes_text(self.trials),
            bytes_text(self.sweep)
        )
    }
}

/// The estimate for the trials of `folder` not finished yet (and their models not trained).
pub fn estimate(folder: &SweepFolder, trials: &[Trial]) -> Estimate {
    let mut estimate = Estimate::default();
    let mut models_seen: HashSet<&str> = HashSet::new();
    let mut pictures = 0;
    for trial in trials {
        let records = (trial.train.steps / trial.train.log_every.max(1) + 1) as u64;
        let levels = trial.schedule.loss_levels().len() as u64 + 1;
        if !folder.trial(&trial.id).join("metrics.json").is_file() {
            let (samples, picture) = samples_and_pictures(trial);
            let scalars = records * levels + trial.metrics.len() as u64 + 1;
            estimate.trials += TRIAL_RECORD + samples + 2 * picture + scalars * SCALAR_EVENT;
            pictures += picture;
        }
        let trained_here = trial.architecture.trainable()
            && !folder
                .model(&trial.train_id)
                .join("model.safetensors")
                .is_file();
        if trained_here && models_seen.insert(&trial.train_id) {
            let weights = parameters(trial) * 4;
            estimate.models += weights + records * levels * HISTORY_VALUE;
            estimate.snapshot = estimate.snapshot.max(weights * 4);
        }
    }
    estimate.sweep = sweep_bytes(trials, pictures);
    estimate
}

/// A trial's samples file and one copy of its pictures.
fn samples_and_pictures(trial: &Trial) -> (u64, u64) {
    let n = trial.settings.num_samples as u64;
    let dim = trial.held_out.dim() as u64;
    if trial.held_out.image_shape().is_none() {
        return (n * dim * CSV_VALUE, SCATTER);
    }
    // float32 values and a label each; a grid of up to 64 and a strip of 8 noise levels.
    let samples = n * dim * 4 + n * 8;
    (samples, (n.min(64) + 8) * dim * PICTURE_VALUE)
}

/// Charts, their TensorBoard copies, the report and the tables.
fn sweep_bytes(trials: &[Trial], trial_pictures: u64) -> u64 {
    let charts = chart_bytes(trials);
    let pngs = (charts as f64 * PNG_SHARE) as u64;
    let embedded = crate::results::html::embedded_bytes(pngs, trial_pictures);
    let report = (embedded as f64 * BASE64) as u64 + trials.len() as u64 * 2048;
    let metrics = trials.iter().map(|t| t.metrics.len()).max().unwrap_or(0) as u64;
    let tables = trials.len() as u64 * (metrics + 8) * 60 + (64 << 10);
    charts + pngs + report + tables
}

/// The charts the sweep's swept keys call for, as `results::charts` and `results::nfe` draw
/// them: each metric against each key (unless it would draw more than [`MAX_SERIES`]
/// series), a heatmap over the two keys with the most values for each combination of the
/// others, quality against NFE for each combination of the keys that are not the
/// sampler's, and the loss charts.
fn chart_bytes(trials: &[Trial]) -> u64 {
    let mut keys: Vec<(&str, Vec<&serde_json::Value>)> = Vec::new();
    for (key, value) in trials.iter().flat_map(|t| &t.assignments) {
        match keys.iter_mut().find(|(k, _)| k == key) {
            Some((_, values)) if !values.contains(&value) => values.push(value),
            Some(_) => {}
            None => keys.push((key, vec![value])),
        }
    }
    let counts: Vec<(&str, u64)> = keys.iter().map(|(k, v)| (*k, v.len() as u64)).collect();
    let product = |keep: &dyn Fn(&str) -> bool| -> u64 {
        counts
            .iter()
            .filter(|(k, _)| keep(k))
            .map(|(_, n)| n)
            .product()
    };
    let metrics = trials.iter().map(|t| t.metrics.len()).max().unwrap_or(0) as u64;
    let mut bytes = 2 * LOSS_CHART;
    for (key, n) in &counts {
        let series = product(&|k| k != *key);
        if series <= MAX_SERIES {
            bytes += metrics * (CHART + CHART_ROW * (n + series));
        }
    }
    if counts.len() >= 2 {
        let mut by_size = counts.clone();
        by_size.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let (top, second) = (by_size[0], by_size[1]);
        let maps = product(&|k| k != top.0 && k != second.0);
        bytes += metrics * maps * (CHART + HEATMAP_CELL * top.1 * second.1);
    }
    let samplers: Vec<String> = counts
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| crate::results::nfe::applies(std::slice::from_ref(k)))
        .collect();
    if !samplers.is_empty() {
        let lines = product(&|k| samplers.iter().any(|s| s == k));
        let contexts = product(&|k| !samplers.iter().any(|s| s == k));
        bytes += metrics * contexts * (CHART + CHART_ROW * lines.min(MAX_SERIES));
    }
    bytes
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
pub fn bytes_text(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
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
