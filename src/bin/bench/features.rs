//! Feature-extraction throughput (`--features`): the `classifier` extractor's network at
//! images.yaml's size and at CIFAR's, and Inception-v3 (FID) on 16x16 images resized to
//! 299x299, each in a child process (`bench --features-worker`) beside PyTorch's twin
//! (`benches/reference.py classifier|inception`) with `--pytorch`, A/B per round, on the
//! thread counts asked for. The weights are random (the cost does not depend on them), and
//! nothing is downloaded. The classifier's training, which a sweep pays once and caches, is
//! timed in this process first.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use scorelab::dataset::Samples;
use scorelab::features::trained::FeatureClassifier;
use scorelab::features::{FeatureMap, PrepareContext};
use scorelab::nn::inception::{conv_specs, expected_tensors};
use scorelab::plugins::features::classifier::ClassifierParams;
use scorelab::plugins::features::inception::InceptionMap;
use scorelab::rng::Rng;
use scorelab::sweep::Experiment;
use scorelab::trial::resolve_all;

use crate::number;
use crate::runs::{self, threads_text, threads_title, with_threads, Compared, Run};
use crate::workloads::print_result;

/// One extractor timed: its worker name, label, item shape and the option that sets how many
/// images a run extracts (and its default).
struct Extractor {
    name: &'static str,
    label: &'static str,
    shape: [usize; 3],
    images: (&'static str, usize),
}

const EXTRACTORS: [Extractor; 3] = [
    Extractor {
        name: "classifier",
        label: "classifier 16ch, 1x16x16 (images.yaml)",
        shape: [1, 16, 16],
        images: ("--classifier-images", 2000),
    },
    Extractor {
        name: "classifier",
        label: "classifier 16ch, 3x32x32",
        shape: [3, 32, 32],
        images: ("--classifier-images", 2000),
    },
    Extractor {
        name: "inception",
        label: "inception (FID), 1x16x16 to 299x299",
        shape: [1, 16, 16],
        images: ("--inception-images", 50),
    },
];

/// Classes of the `shapes` data (disc, square, triangle, ring, cross): the classifier's
/// logits.
const CLASSES: usize = 5;
/// Images per Inception forward pass: the `inception` plugin's default `batch_size`.
const INCEPTION_BATCH: usize = 50;

/// Extracts the features of `count` random images of `shape` with `name`'s network (after an
/// untimed warm-up on two) and prints one JSON line: images_per_second, peak_rss_mib,
/// parameters.
pub fn run_worker(name: &str, shape: [usize; 3], count: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (map, parameters) = match name {
        "classifier" => classifier(shape)?,
        "inception" => inception(dir.path())?,
        _ => return Err(format!("no extractor `{name}`: classifier or inception")),
    };
    let mut rng = Rng::from_seed(2);
    let mut images = |n: usize| {
        let values = (0..n * shape.iter().product::<usize>()).map(|_| 2.0 * rng.uniform() - 1.0);
        Samples::with_shape(&shape, values.collect())
    };
    map.extract(&images(2))?;
    let images = images(count);
    let start = Instant::now();
    map.extract(&images)?;
    let seconds = start.elapsed().as_secs_f64();
    print_result(serde_json::json!({
        "images": count,
        "seconds": seconds,
        "images_per_second": count as f64 / seconds,
        "parameters": parameters,
    }));
    Ok(())
}

/// The classifier with the plugin's default sizes, untrained, and its parameter count.
fn classifier(shape: [usize; 3]) -> Result<(Box<dyn FeatureMap>, u64), String> {
    let classifier = FeatureClassifier {
        spec: ClassifierParams::default().spec(),
        shape,
        classes: CLASSES,
    };
    let net = classifier
        .new_net(&Device::Cpu, 0)
        .map_err(|e| e.to_string())?;
    let parameters = scorelab::optim::sorted_vars(net.variables())
        .iter()
        .map(|(_, v)| v.elem_count() as u64)
        .sum();
    Ok((
        Box::new(classifier.feature_map(net, &Device::Cpu, 0.0)),
        parameters,
    ))
}

/// Inception-v3 (FID) with random weights of the right names and shapes, saved to `dir` and
/// loaded as the plugin loads them, and its parameter count as PyTorch counts it: the
/// convolutions and BatchNorm's scales and shifts (not its running statistics).
fn inception(dir: &Path) -> Result<(Box<dyn FeatureMap>, u64), String> {
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
    let map = InceptionMap::load(&weights, INCEPTION_BATCH, &Device::Cpu)?;
    let parameters = conv_specs()
        .iter()
        .map(|c| (c.c_out * c.c_in * c.kernel.0 * c.kernel.1 + 2 * c.c_out) as u64)
        .sum();
    Ok((Box::new(map), parameters))
}

/// The reference's arguments for the same extraction.
fn reference(extractor: &Extractor, count: usize) -> Vec<String> {
    let [c, h, _] = extractor.shape;
    let mut args = vec![extractor.name.to_string()];
    if extractor.name == "classifier" {
        let spec = ClassifierParams::default().spec();
        args.extend(["--width".into(), spec.width.to_string()]);
        args.extend(["--features".into(), spec.features.to_string()]);
        args.extend(["--classes".into(), CLASSES.to_string()]);
    } else {
        args.extend(["--batch".into(), INCEPTION_BATCH.to_string()]);
    }
    args.extend(["--size".into(), h.to_string()]);
    args.extend(["--image-channels".into(), c.to_string()]);
    args.extend(["--images".into(), count.to_string()]);
    args
}

/// One round of an extractor on `threads` threads: ours, then PyTorch's if asked.
fn round(
    extractor: &Extractor,
    count: usize,
    threads: usize,
    python: Option<&Path>,
) -> Result<(Run, Option<Run>), String> {
    let what = format!("our {} extraction", extractor.name);
    let shape: Vec<String> = extractor.shape.iter().map(|s| s.to_string()).collect();
    let args = [
        extractor.name.to_string(),
        shape.join("x"),
        count.to_string(),
    ];
    let command = runs::ours("--features-worker", &args);
    let ours = runs::read(
        &runs::child(command, &what, threads)?,
        "images_per_second",
        &what,
    )?;
    let Some(python) = python else {
        return Ok((ours, None));
    };
    let what = format!("the PyTorch {} extraction", extractor.name);
    let command = runs::pytorch(python, &reference(extractor, count), threads);
    let theirs = runs::read(
        &runs::child(command, &what, threads)?,
        "images_per_second",
        &what,
    )?;
    Ok((ours, Some(theirs)))
}

/// Times the classifier's training, then prints the extractors' table: images/s, ours beside
/// PyTorch's, best of `rounds`, at each thread count.
pub fn table(python: Option<&Path>, rounds: usize, counts: &[usize]) -> Result<(), String> {
    classifier_training()?;
    println!(
        "\n| feature extraction, {}, best of {rounds} | parameters | ours images/s | PyTorch \
         images/s | ratio | per round | ours peak MiB | PyTorch peak MiB |",
        threads_title(counts)
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let rate = |r: f64| format!("{r:.1}");
    for extractor in &EXTRACTORS {
        let count = number(extractor.images.0, extractor.images.1)?.max(1);
        for &threads in counts {
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            for r in 1..=rounds {
                eprintln!(
                    "extracting {} features ({count} images, {}), round {r}/{rounds}",
                    extractor.label,
                    threads_text(threads)
                );
                let (mine, reference) = round(extractor, count, threads, python)?;
                ours.push(mine);
                theirs.extend(reference);
            }
            let compared = Compared::new(extractor.name, &ours, &theirs)?;
            println!(
                "| {} | {} | {} | {} | {} | {} | {:.0} | {} |",
                with_threads(extractor.label, threads, counts),
                compared.ours.parameters,
                rate(compared.ours.rate),
                compared.theirs(rate),
                compared.ratio(),
                compared.spread,
                compared.ours.peak_mib,
                compared
                    .theirs
                    .map_or("-".into(), |t| format!("{:.0}", t.peak_mib)),
            );
        }
    }
    Ok(())
}

/// `experiments/images.yaml`'s data and features, for the classifier's training.
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

/// Trains images.yaml's classifier as a sweep does (in this process, on one thread) and
/// prints how long it took.
fn classifier_training() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("features.yaml");
    std::fs::write(&file, IMAGES).map_err(|e| e.to_string())?;
    let experiment =
        Experiment::load(&file, &["device=cpu".to_string()]).map_err(|e| e.to_string())?;
    let trials = resolve_all(&experiment).map_err(|e| e.to_string())?;
    let trial = &trials[0];
    let start = Instant::now();
    trial.features.prepare(&mut PrepareContext {
        training_data: &trial.training_data,
        held_out: &trial.held_out,
        cache: &dir.path().join("features"),
        device: &trial.device,
        seed: 0,
        checkpoint_every: 0,
        log: &mut |_| {},
        live: &mut |_| {},
    })?;
    println!(
        "\nfeatures classifier (images.yaml): trained in {:.1} s on one thread",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
