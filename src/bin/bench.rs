//! Throughput figures for the notes: training steps per second and sampling cost per score
//! evaluation, for the networks and batch sizes the experiments use, peak memory of U-Net
//! training, and feature-extraction throughput. Prints, never asserts.
//!
//! `cargo run --release --bin bench [-- --steps 2000 --image-steps 200 --device cpu --no-features]`
//!
//! `--device` (`cpu`, `cuda`, `cuda:N`, `auto`) is the experiments' `device` setting;
//! `--no-features` skips the feature extractors (classifier and Inception); `--samples 2000`
//! and `--image-samples 200` set how many points and images are sampled.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use scorelab::dataset::Samples;
use scorelab::features::{FeatureMap, PrepareContext};
use scorelab::plugins::features::inception::{expected_tensors, InceptionMap};

use scorelab::evaluate::evaluate;
use scorelab::rng::Rng;
use scorelab::sweep::Experiment;
use scorelab::trial::resolve_all;

#[global_allocator]
static ALLOCATOR: scorelab::Allocator = scorelab::Allocator;

const EXPERIMENT: &str = r#"
num_samples: 2000
data: {kind: gmm, means: [[-5.0, -5.0], [5.0, 5.0]], stds: [1.0, 1.0], weights: [0.8, 0.2]}
schedule: {kind: geometric, num_levels: 10, sigma_max: auto, sigma_min: 0.1}
weighting: sigma_squared
network: {kind: mlp, hidden: 128, layers: 3}
train: {batch_size: 128, train_size: 10000, log_every: 100}
sampler: {kind: annealed_langevin, steps_per_level: 20, eps: 0.002}
"#;

/// `experiments/images.yaml`'s data, network and batch, sampled at a smaller count.
const IMAGES: &str = r#"
num_samples: 200
data: {kind: shapes, size: 16, channels: 1}
schedule: edm
weighting: edm
network: {kind: unet, channels: 16, channel_mult: [1, 2], attention_resolutions: [8], groups: 4, parameterisation: edm}
train: {batch_size: 32, train_size: 2000, log_every: 50}
sampler: {kind: heun, steps: 18}
features: {kind: classifier}
"#;

/// The value after `flag` on the command line.
fn value(flag: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != flag).nth(1)
}

fn number(flag: &str, default: usize) -> Result<usize, String> {
    match value(flag) {
        Some(text) => text
            .parse()
            .map_err(|_| format!("{flag} takes a number, not {text}")),
        None => Ok(default),
    }
}

/// The process's peak resident memory (Linux), in MiB.
fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// U-Net training and sampling at the images experiment's size, then feature extraction.
fn images(
    dir: &Path,
    steps: usize,
    samples: usize,
    device: &str,
    features: bool,
) -> Result<(), String> {
    let file = dir.join("images.yaml");
    std::fs::write(&file, IMAGES).map_err(|e| e.to_string())?;
    let overrides = vec![
        format!("train.steps={steps}"),
        format!("num_samples={samples}"),
        format!("device={device}"),
    ];
    let experiment = Experiment::load(&file, &overrides).map_err(|e| e.to_string())?;
    let trials = resolve_all(&experiment).map_err(|e| e.to_string())?;
    let trial = &trials[0];
    let model = trial
        .new_model(&mut Rng::from_seed(0))
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    scorelab::train::train(&model, trial, &mut |_, _, _| {}).map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "train  unet   16 ch [1, 2], 1x16x16, batch 32: {steps} steps in {seconds:.2} s = {:.2} steps/s, peak memory {:.0} MiB",
        steps as f64 / seconds,
        peak_memory_mib().unwrap_or(f64::NAN)
    );
    let evaluation = evaluate(trial, &model, None, &mut |_| {}).map_err(|e| e.to_string())?;
    println!(
        "sample unet   {samples} images: {} NFE in {:.2} s = {:.1} ms per NFE",
        evaluation.nfe,
        evaluation.sample_seconds,
        1000.0 * evaluation.sample_seconds / evaluation.nfe as f64
    );
    if !features {
        return Ok(());
    }

    let items = trial.training_data.head(2000);
    let start = Instant::now();
    let map = trial.features.prepare(&mut PrepareContext {
        training_data: &trial.training_data,
        held_out: &trial.held_out,
        cache: &dir.join("features"),
        device: &trial.device,
        seed: 0,
        log: &mut |_| {},
    })?;
    let prepared = start.elapsed().as_secs_f64();
    let start = Instant::now();
    map.extract(&items)?;
    println!(
        "features classifier: trained in {prepared:.1} s; {:.0} images/s",
        items.len() as f64 / start.elapsed().as_secs_f64()
    );
    inception(dir, &trial.device)
}

/// Inception-v3 (FID) features of 16x16 images resized to 299x299, with random weights of
/// the right names and shapes (throughput does not depend on the values).
fn inception(dir: &Path, device: &Device) -> Result<(), String> {
    let mut rng = Rng::from_seed(1);
    let mut tensors = HashMap::new();
    for (name, shape) in expected_tensors() {
        let count: usize = shape.iter().product();
        let values: Vec<f32> = if name.ends_with("running_var") {
            (0..count).map(|_| 0.5 + rng.uniform() as f32).collect()
        } else {
            rng.normal_f32(count).iter().map(|v| v * 0.05).collect()
        };
        let tensor = Tensor::from_vec(values, shape, &Device::Cpu).map_err(|e| e.to_string())?;
        tensors.insert(name, tensor);
    }
    let weights = dir.join("inception.safetensors");
    candle_core::safetensors::save(&tensors, &weights).map_err(|e| e.to_string())?;
    let map = InceptionMap::load(&weights, 50, device)?;
    let images = Samples::with_shape(
        &[1, 16, 16],
        (0..8 * 256).map(|_| 2.0 * rng.uniform() - 1.0).collect(),
    );
    let start = Instant::now();
    map.extract(&images)?;
    println!(
        "features inception (299x299, random weights): {:.2} images/s, peak memory {:.0} MiB",
        images.len() as f64 / start.elapsed().as_secs_f64(),
        peak_memory_mib().unwrap_or(f64::NAN)
    );
    Ok(())
}

fn main() -> Result<(), String> {
    let steps = number("--steps", 2000)?;
    let image_steps = number("--image-steps", 200)?;
    let samples = number("--samples", 2000)?;
    let image_samples = number("--image-samples", 200)?;
    let device = value("--device").unwrap_or_else(|| "cpu".to_string());
    let features = !std::env::args().any(|a| a == "--no-features");
    println!("device {device}");
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    // First, so the peak memory printed is the U-Net's.
    images(dir.path(), image_steps, image_samples, &device, features)?;
    let file = dir.path().join("bench.yaml");
    std::fs::write(&file, EXPERIMENT).map_err(|e| e.to_string())?;

    for network in ["mlp", "oracle"] {
        let overrides = vec![
            format!("train.steps={steps}"),
            format!("network={network}"),
            format!("num_samples={samples}"),
            format!("device={device}"),
        ];
        let experiment = Experiment::load(&file, &overrides).map_err(|e| e.to_string())?;
        let trials = resolve_all(&experiment).map_err(|e| e.to_string())?;
        let trial = &trials[0];
        let model = trial
            .new_model(&mut Rng::from_seed(0))
            .map_err(|e| e.to_string())?;
        if trial.architecture.trainable() {
            let start = Instant::now();
            scorelab::train::train(&model, trial, &mut |_, _, _| {}).map_err(|e| e.to_string())?;
            let seconds = start.elapsed().as_secs_f64();
            println!(
                "train  {network:<6} hidden 128 x 3, batch 128: {steps} steps in {seconds:.2} s = {:.0} steps/s",
                steps as f64 / seconds
            );
        }
        let evaluation = evaluate(trial, &model, None, &mut |_| {}).map_err(|e| e.to_string())?;
        println!(
            "sample {network:<6} {samples} points: {} NFE in {:.2} s = {:.2} ms per NFE",
            evaluation.nfe,
            evaluation.sample_seconds,
            1000.0 * evaluation.sample_seconds / evaluation.nfe as f64
        );
    }
    Ok(())
}
