//! Feature-extraction throughput (`--features`): the classifier that images.yaml's metrics use,
//! trained on its data and then timed, and Inception-v3 (FID) on 16x16 images resized to
//! 299x299, with random weights of the right names and shapes.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use scorelab::dataset::Samples;
use scorelab::features::{FeatureMap, PrepareContext};
use scorelab::nn::inception::expected_tensors;
use scorelab::plugins::features::inception::InceptionMap;
use scorelab::rng::Rng;
use scorelab::sweep::Experiment;
use scorelab::trial::resolve_all;

use crate::workloads::peak_memory_mib;

/// `experiments/images.yaml`'s data and features.
const IMAGES: &str = r#"
num_samples: 64
data: {kind: shapes, size: 16, channels: 1}
schedule: edm
weighting: edm
network: {kind: unet, channels: 16, channel_mult: [1, 2], attention_resolutions: [8], groups: 4, parameterisation: edm}
train: {batch_size: 32, train_size: 2000, log_every: 50}
sampler: {kind: heun, steps: 18}
features: {kind: classifier}
"#;

/// Trains the classifier, times its extraction of 2000 images, then Inception's.
pub fn run(dir: &Path) -> Result<(), String> {
    let file = dir.join("features.yaml");
    std::fs::write(&file, IMAGES).map_err(|e| e.to_string())?;
    let experiment =
        Experiment::load(&file, &["device=cpu".to_string()]).map_err(|e| e.to_string())?;
    let trials = resolve_all(&experiment).map_err(|e| e.to_string())?;
    let trial = &trials[0];
    let items = trial.training_data.head(2000);
    let start = Instant::now();
    let map = trial.features.prepare(&mut PrepareContext {
        training_data: &trial.training_data,
        held_out: &trial.held_out,
        cache: &dir.join("features"),
        device: &trial.device,
        seed: 0,
        checkpoint_every: 0,
        log: &mut |_| {},
        live: &mut |_| {},
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
