//! Trained guidance classifiers: the `cnn`'s gradient in x against finite differences and its
//! parameters' gradients, the classifier kept in the sweep's `models/` (loaded by a later run
//! with the same numbers, trained again when its folder is half-written), classifier guidance
//! sharing `cfg`'s model on a trained class-conditional network, and `class_accuracy` on a
//! labelled mixture from the exact posterior.

use std::path::Path;

use candle_core::{Device, Tensor};
use scorelab::guidance::cnn::NoisyCnn;
use scorelab::guidance::noisy::{NoisyNet, Training};
use scorelab::guidance::{log_prob_gradient, Classifier};
use scorelab::rng::Rng;
use scorelab::run::{self, SweepOptions};
use scorelab::train::{guidance_classifier, Hooks};
use serde_json::json;

use crate::common::{resolve, write};
use crate::guidance::{run as evaluate_trial, trial, with_guidance, LABELLED};

const SHAPES: &str = r#"
seed: 2
num_samples: 16
data: {kind: shapes, size: 8, channels: 1}
schedule: edm
weighting: edm
network: {kind: unet, channels: 8, channel_mult: [1, 2], attention_resolutions: [], groups: 4, parameterisation: edm}
train: {steps: 2, batch_size: 8, train_size: 200, log_every: 1}
sampler: {kind: euler, steps: 3}
"#;

/// grad_x log p(y | x, sigma) of the `cnn` (after a few training steps) matches central
/// differences along random directions, per image, at small and large noise levels.
#[test]
fn the_cnn_classifiers_gradient_in_x_matches_finite_differences() {
    let t = resolve(SHAPES, &[]).unwrap().remove(0);
    let data = &t.training_data;
    let net = NoisyCnn::new(data, 5, 8, 3, &Device::Cpu).unwrap();
    let training = Training {
        steps: 20,
        batch_size: 16,
        lr: 2e-3,
        sigma_range: (0.002, 80.0),
        seed: 3,
    };
    guidance_classifier::train_noisy(
        &net,
        data,
        &training,
        &Device::Cpu,
        None,
        Hooks::quiet(&mut |_| {}),
    )
    .unwrap();

    let (n, dim) = (12, data.dim());
    let mut rng = Rng::from_seed(11);
    let sigmas: Vec<f64> = (0..n).map(|i| [0.02, 0.3, 2.0, 20.0][i % 4]).collect();
    let mut points = Vec::with_capacity(n * dim);
    for (i, sigma) in sigmas.iter().enumerate() {
        points.extend(
            data.row(i)
                .iter()
                .map(|v| (v + sigma * rng.normal()) as f32),
        );
    }
    let labels: Vec<u32> = (0..n).map(|i| (i % 5) as u32).collect();
    let x = Tensor::from_vec(points.clone(), (n, dim), &Device::Cpu).unwrap();
    let sigma = scorelab::network::sigma_column(&sigmas, &Device::Cpu).unwrap();
    let y = Tensor::from_slice(&labels, n, &Device::Cpu).unwrap();
    let gradient: Vec<Vec<f32>> = log_prob_gradient(&net, &x, &sigma, &y)
        .unwrap()
        .to_vec2()
        .unwrap();
    // One random unit direction per image.
    let direction: Vec<f32> = (0..n * dim).map(|_| rng.normal() as f32).collect();
    let direction: Vec<f32> = direction
        .chunks(dim)
        .flat_map(|row| {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            row.iter().map(move |v| v / norm).collect::<Vec<_>>()
        })
        .collect();
    let chosen = |shift: f32| -> Vec<f64> {
        let moved: Vec<f32> = points
            .iter()
            .zip(&direction)
            .map(|(p, d)| p + shift * d)
            .collect();
        let x = Tensor::from_vec(moved, (n, dim), &Device::Cpu).unwrap();
        let log_probs: Vec<Vec<f32>> = net.log_probs(&x, &sigma).unwrap().to_vec2().unwrap();
        (0..n)
            .map(|i| log_probs[i][labels[i] as usize] as f64)
            .collect()
    };
    let h = 1e-2f32;
    let (up, down) = (chosen(h), chosen(-h));
    let mut worst = 0.0f64;
    for i in 0..n {
        let fd = (up[i] - down[i]) / (2.0 * h as f64);
        let analytic: f64 = gradient[i]
            .iter()
            .zip(&direction[i * dim..(i + 1) * dim])
            .map(|(g, d)| (*g as f64) * (*d as f64))
            .sum();
        let error = (fd - analytic).abs() / (0.05 + fd.abs());
        worst = worst.max(error);
        assert!(
            error < 0.02,
            "image {i} at sigma {}: finite difference {fd} vs gradient {analytic}",
            sigmas[i]
        );
    }
    let norm: f64 = gradient[0]
        .iter()
        .map(|g| (*g as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(norm > 1e-4, "a gradient that is not zero: {norm}");
    eprintln!("cnn classifier gradient vs finite differences: worst relative error {worst:.2e}");

    // Every parameter learns: none is cut from the graph.
    let logits = net.logits(&x, &sigma).unwrap();
    let loss = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
    let grads = loss.backward().unwrap();
    for (name, var) in scorelab::optim::sorted_vars(net.variables()) {
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name}: no gradient"));
        let size = g
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(size > 0.0, "{name}: zero gradient");
    }
}

/// Runs a sweep of `file` into `results`, returning its rows' `mode_weights` and the output.
fn sweep_logged(file: &Path, results: &Path) -> (Vec<f64>, String) {
    let options = SweepOptions {
        results: results.to_path_buf(),
        dry_run: false,
        ..Default::default()
    };
    let mut out = Vec::new();
    let report = run::sweep(file, &[], &options, &mut out).unwrap();
    let values = report
        .rows
        .iter()
        .map(|r| r.metrics["mode_weights"])
        .collect();
    (values, String::from_utf8(out).unwrap())
}

/// The trained classifier is trained once per sweep into `models/classifier-<hash>/`, loaded
/// by a later run (no training, the same numbers) and trained again, to the same weights, when
/// its folder is incomplete.
#[test]
fn the_trained_classifier_is_kept_in_models_loaded_again_and_retrained_when_incomplete() {
    let text = format!(
        "name: cached\n{}sweep:\n  guidance.scale: [1.0, 2.0]\n",
        with_guidance("{kind: classifier, classifier: mlp, classifier_steps: 150, class: 2}")
            .replace("num_samples: 3000", "num_samples: 300")
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "cached.yaml", &text);
    let results = dir.path().join("results");
    let (first, log) = sweep_logged(&file, &results);
    assert_eq!(
        log.matches("classifier: training `mlp`").count(),
        1,
        "{log}"
    );
    assert_eq!(log.matches("classifier: loaded").count(), 1, "{log}");
    let models = results.join("cached").join("models");
    let folders: Vec<_> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let folder = &folders[0];
    let name = folder.file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("classifier-"), "{name}");
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("info.json")).unwrap()).unwrap();
    assert!(info["train_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(info["loss"].as_array().unwrap().len(), 10);
    let clean = info["accuracy"][0]["accuracy"].as_f64().unwrap();
    assert!(
        clean > 0.95,
        "held-out accuracy at the smallest level: {clean}"
    );
    let config = std::fs::read_to_string(folder.join("classifier.yaml")).unwrap();
    assert!(
        config.contains("kind: mlp") && config.contains("steps: 150"),
        "{config}"
    );

    // A later run of the same trials loads it: no training, the same numbers.
    let weights = std::fs::read(folder.join("model.safetensors")).unwrap();
    std::fs::remove_dir_all(results.join("cached").join("trials")).unwrap();
    let (again, log) = sweep_logged(&file, &results);
    assert!(!log.contains("classifier: training"), "{log}");
    assert_eq!(log.matches("classifier: loaded").count(), 2, "{log}");
    assert_eq!(again, first);

    // Half-written (no info.json): trained again, to the same weights and numbers.
    std::fs::remove_file(folder.join("info.json")).unwrap();
    std::fs::remove_dir_all(results.join("cached").join("trials")).unwrap();
    let (retrained, log) = sweep_logged(&file, &results);
    assert!(
        log.contains("is incomplete or unreadable (no info.json)"),
        "{log}"
    );
    assert_eq!(
        log.matches("classifier: training `mlp`").count(),
        1,
        "{log}"
    );
    assert_eq!(retrained, first);
    assert_eq!(
        std::fs::read(folder.join("model.safetensors")).unwrap(),
        weights
    );
    assert!(folder.join("info.json").is_file());
    eprintln!("cached classifier: mode_weights {first:?} on each of three runs");
}

/// Classifier guidance on a trained class-conditional network uses its null label, so it
/// asks for cfg's label dropout and shares cfg's model; an exact network records none.
#[test]
fn classifier_guidance_on_a_trained_conditional_network_shares_the_cfg_model() {
    let conditional = LABELLED.replace(
        "network: oracle",
        "network: {kind: mlp, hidden: 16, layers: 1, classes: 3}\ntrain: {steps: 10, batch_size: 16, train_size: 100}",
    );
    let with = |g: &str| trial(&format!("{conditional}guidance: {g}\n"));
    let cfg = with("{kind: cfg, scale: 2.0}");
    let guided = with("{kind: classifier, classifier: mlp, scale: 2.0}");
    assert_eq!(guided.train_id, cfg.train_id);
    assert_eq!(guided.training["guidance"], json!({"p_uncond": 0.1}));
    assert_eq!(guided.resolved["guidance"]["p_uncond"], json!(0.1));
    assert!(guided.resolved["guidance"]
        .get("classifier_width")
        .is_none());
    let other = with("{kind: classifier, classifier: mlp, p_uncond: 0.2}");
    assert_ne!(other.train_id, cfg.train_id);
    let message = crate::common::resolve_error(
        &format!("{conditional}guidance: {{kind: classifier, p_uncond: 0.0}}\n"),
        &[],
    );
    assert!(
        message.contains("guidance.p_uncond") && message.contains("network.classes: 0"),
        "{message}"
    );
    // The exact network: no label dropout, no `p_uncond` in the record.
    let exact = trial(&with_guidance("{kind: classifier, class: 2}"));
    assert!(exact.resolved["guidance"].get("p_uncond").is_none());
    assert!(exact.training.get("guidance").is_none());
    // The cnn takes images only.
    let message =
        crate::common::resolve_error(&with_guidance("{kind: classifier, classifier: cnn}"), &[]);
    assert!(
        message.contains("guidance.classifier") && message.contains("classifier: mlp"),
        "{message}"
    );
}

/// On a labelled mixture `class_accuracy` is the share of samples whose most likely
/// component is their target: ~1 under exact guidance toward class 2 at w = 1, and the
/// mixture's own share of class 2 (0.2 up to the components' overlap) at w = 0.
#[test]
fn class_accuracy_on_a_labelled_mixture_uses_the_exact_posterior() {
    let text = with_guidance("{kind: classifier, class: 2}").replace(
        "eval: [mode_weights]",
        "eval: [mode_weights, class_accuracy]",
    );
    let trials = resolve(&text, &["guidance.scale=0,1", "num_samples=2000"]).unwrap();
    assert!(trials[0].resolved.get("features").is_none());
    let accuracy: Vec<f64> = trials
        .iter()
        .map(|t| {
            let evaluation = evaluate_trial(t);
            evaluation
                .metrics
                .iter()
                .find(|(name, _)| name == "class_accuracy")
                .unwrap()
                .1
        })
        .collect();
    eprintln!("class_accuracy at w = 0, 1: {accuracy:?}");
    let bound = 4.0 * (0.2f64 * 0.8 / 2000.0).sqrt();
    assert!((accuracy[0] - 0.2).abs() < bound, "{accuracy:?}");
    assert!(accuracy[1] > 0.99, "{accuracy:?}");
}
