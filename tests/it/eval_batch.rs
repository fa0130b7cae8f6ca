//! `eval_batch` changes what memory holds, never the numbers: one experiment evaluated with
//! 1, 7 and all rows per network call writes the same samples, the same traced denoising
//! strip and the same metrics, byte for byte. The experiments reach every place that splits
//! rows: the U-Net under classifier-free guidance (two calls a step), the feature
//! classifier's extraction for FID, the mlp under a trained classifier's guidance, the
//! likelihood's divergences (gradients through the network), and a latent autoencoder's
//! decoding.

use std::fs;
use std::path::Path;

use crate::common::{sweep, write};

/// Class-conditional U-Net images, guided without a classifier, scored by FID in a trained
/// classifier's features.
const IMAGES: &str = r#"
seed: 2
num_samples: 12
data: {kind: shapes, size: 8, channels: 1}
schedule: edm
weighting: edm
network: {kind: unet, channels: 8, channel_mult: [1, 2], attention_resolutions: [4], groups: 4, classes: 5, parameterisation: edm}
train: {steps: 2, batch_size: 4, train_size: 100}
sampler: {kind: euler, steps: 3}
guidance: {kind: cfg, scale: 1.5}
features: {kind: classifier, steps: 10, batch_size: 16, width: 4, features: 8}
eval: [fid]
"#;

/// Labelled points under a trained mlp classifier's guidance, with the likelihood of held-out
/// points by the probability-flow ODE.
const POINTS: &str = r#"
seed: 3
num_samples: 30
data: {kind: gmm, means: [[-3.0, 0.0], [3.0, 0.0]], stds: [0.6, 0.6], weights: [0.5, 0.5], labelled: true}
schedule: {kind: ve, sigma_max: 8.0}
weighting: sigma_squared
network: {kind: mlp, hidden: 16, layers: 2, embedding: 8}
train: {steps: 20, batch_size: 32, train_size: 200}
sampler: {kind: euler, steps: 6}
guidance: {kind: classifier, classifier: mlp, classifier_hidden: 8, classifier_steps: 10, scale: 1.0}
eval: [{kind: nll_ode, points: 20, rtol: 0.001, atol: 0.001}, class_accuracy]
"#;

/// Points sampled in an autoencoder's latent space and decoded.
const LATENT: &str = r#"
seed: 4
num_samples: 30
data: {kind: moons}
schedule: edm
weighting: edm
network: {kind: mlp, hidden: 16, layers: 2, embedding: 8, parameterisation: edm}
train: {steps: 10, batch_size: 32, train_size: 200}
sampler: {kind: heun, steps: 4}
latent: {kind: mlp_vae, latent_dim: 2, hidden: 8, steps: 10, batch_size: 32}
eval: [sliced_wasserstein]
"#;

/// Drops every timing (`*_seconds`, `*_s`, `sample_ms_per_image`) at any depth.
fn without_timings(value: &mut serde_json::Value) {
    if let Some(map) = value.as_object_mut() {
        map.retain(|key, _| {
            !(key.ends_with("_seconds") || key.ends_with("_s") || key.contains("_ms_per_"))
        });
        map.values_mut().for_each(without_timings);
    }
}

/// Every file a trial folder holds that its numbers decide (its metrics record without the
/// timings, its samples, its pictures), by trial folder and file name.
fn trial_files(results: &Path) -> Vec<(String, Vec<u8>)> {
    let trials = results.join("exp").join("trials");
    let mut files = Vec::new();
    for trial in fs::read_dir(&trials).unwrap() {
        let trial = trial.unwrap().path();
        for file in fs::read_dir(&trial).unwrap() {
            let path = file.unwrap().path();
            let name = path.strip_prefix(&trials).unwrap().display().to_string();
            let bytes = match path.extension().and_then(|e| e.to_str()) {
                Some("json") if name.ends_with("metrics.json") => {
                    let mut record: serde_json::Value =
                        serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
                    without_timings(&mut record);
                    serde_json::to_vec(&record).unwrap()
                }
                Some("csv" | "safetensors" | "png") => fs::read(&path).unwrap(),
                _ => continue,
            };
            files.push((name, bytes));
        }
    }
    files.sort();
    assert!(
        files.iter().any(|(name, _)| name.contains("samples.")),
        "no samples under {}",
        trials.display()
    );
    files
}

fn assert_chunk_invariant(experiment: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "exp.yaml", experiment);
    let run = |rows: &str| {
        let results = dir.path().join(format!("results-{rows}"));
        sweep(&file, &[&format!("eval_batch={rows}")], &results).unwrap();
        trial_files(&results)
    };
    let whole = run("100000");
    for rows in ["1", "7"] {
        let chunked = run(rows);
        let names = |files: &[(String, Vec<u8>)]| -> Vec<String> {
            files.iter().map(|(name, _)| name.clone()).collect()
        };
        assert_eq!(names(&chunked), names(&whole), "eval_batch={rows}");
        for ((name, bytes), (_, expected)) in chunked.iter().zip(&whole) {
            assert!(
                bytes == expected,
                "eval_batch={rows}: {name} differs from one whole batch's"
            );
        }
    }
}

#[test]
fn guided_unet_images_and_their_fid_do_not_depend_on_the_chunk() {
    assert_chunk_invariant(IMAGES);
}

#[test]
fn classifier_guided_points_and_likelihoods_do_not_depend_on_the_chunk() {
    assert_chunk_invariant(POINTS);
}

#[test]
fn latent_samples_do_not_depend_on_the_chunk() {
    assert_chunk_invariant(LATENT);
}

/// The rows each call of the model saw.
struct RowRecorder(std::cell::RefCell<Vec<usize>>);

impl scorelab::guidance::LabelledScore for RowRecorder {
    fn score_given(
        &self,
        x: &candle_core::Tensor,
        _sigma: &candle_core::Tensor,
        labels: Option<&candle_core::Tensor>,
    ) -> candle_core::Result<candle_core::Tensor> {
        assert_eq!(labels.map(|l| l.dim(0).unwrap()), Some(x.dim(0)?));
        self.0.borrow_mut().push(x.dim(0)?);
        Ok(x.clone())
    }

    fn denoise_given(
        &self,
        x: &candle_core::Tensor,
        sigma: &candle_core::Tensor,
        labels: Option<&candle_core::Tensor>,
    ) -> candle_core::Result<candle_core::Tensor> {
        self.score_given(x, sigma, labels)
    }
}

/// Samplers' calls reach the network in chunks, labels split with their rows, and count once.
#[test]
fn a_call_reaches_the_model_in_chunks_and_counts_once() {
    use candle_core::{Device, Tensor};
    use scorelab::guidance::{CountedModel, LabelledScore};
    let recorder = RowRecorder(Default::default());
    let counted = CountedModel::new(&recorder);
    let x = Tensor::arange(0f32, 40.0, &Device::Cpu)
        .unwrap()
        .reshape((20, 2))
        .unwrap();
    let sigma = Tensor::ones((20, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
    let labels = Tensor::zeros(20, candle_core::DType::U32, &Device::Cpu).unwrap();
    let out = scorelab::eval_batch::scoped(7, || counted.score_given(&x, &sigma, Some(&labels)));
    assert_eq!(*recorder.0.borrow(), [7, 7, 6]);
    assert_eq!(counted.calls(), 1);
    let same = out
        .unwrap()
        .eq(&x)
        .unwrap()
        .min_all()
        .unwrap()
        .to_scalar::<u8>()
        .unwrap();
    assert_eq!(same, 1, "the chunks come back in order");
}
