//! Guidance that involves training: classifier-free guidance's label dropout inside the real
//! training loop, a class-conditional U-Net sampled at two scales, and a trained
//! noise-conditional classifier against the exact posterior.

use std::sync::Mutex;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, VarMap};
use scorelab::guidance::oracle::MixtureClassifier;
use scorelab::plugin::prelude::*;
use scorelab::rng::Rng;
use serde_json::json;

use crate::common::resolve;
use crate::guidance::{mixture, run, shares, trial, with_guidance, LABELLED};

/// Labels the training loop hands the recording network, in order.
static SEEN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A trainable network that records the labels it is trained with (and learns a scale).
struct Recorder {
    variables: VarMap,
    weight: Tensor,
}

impl Network for Recorder {
    fn forward(
        &self,
        x: &Tensor,
        _sigma: &Tensor,
        labels: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        if let Some(labels) = labels {
            SEEN.lock().unwrap().extend(labels.to_vec1::<u32>()?);
        }
        x.broadcast_mul(&self.weight)
    }

    fn variables(&self) -> &VarMap {
        &self.variables
    }
}

struct RecorderArchitecture {
    classes: usize,
}

impl Architecture for RecorderArchitecture {
    fn instantiate(&self, device: &Device, _rng: &mut Rng) -> candle_core::Result<Instance> {
        let variables = VarMap::new();
        let weight = variables.get(1, "weight", Init::Const(-0.5), DType::F32, device)?;
        Ok(Instance::Trainable(Box::new(Recorder {
            variables,
            weight,
        })))
    }

    fn classes(&self) -> usize {
        self.classes
    }
}

fn build_recorder(raw: &RawParams, context: &NetworkContext) -> BuildResult<dyn Architecture> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(
        Box::new(RecorderArchitecture {
            classes: context.classes,
        }),
        &params,
    ))
}

scorelab::plugin::prelude::inventory::submit! {
    Plugin { name: "test_label_recorder", about: "test: records its training labels", params: NoParams::docs, build: Builder::Network(build_recorder) }
}

/// The labels 40 training steps of 128 examples hand a class-conditional network.
fn training_labels(guidance: &str) -> Vec<u32> {
    let text = LABELLED
        .replace("network: oracle", "network: test_label_recorder")
        .replace(
            "eval: [mode_weights]",
            "train: {steps: 40, batch_size: 128, train_size: 1000, log_every: 10}",
        );
    let t = trial(&format!("{text}guidance: {guidance}\n"));
    let model = t.new_model(&mut Rng::from_seed(0)).unwrap();
    SEEN.lock().unwrap().clear();
    scorelab::train::train(&model, &t.train_job(t.training_data.clone()), &mut |_| {}).unwrap();
    std::mem::take(&mut *SEEN.lock().unwrap())
}

#[test]
fn cfg_training_drops_labels_to_the_null_label_at_rate_p_uncond() {
    let plain = training_labels("none");
    assert_eq!(plain.len(), 40 * 128);
    assert!(plain.iter().all(|l| *l < 3), "no null label without cfg");
    let p = 0.25;
    let dropped = training_labels(&format!("{{kind: cfg, p_uncond: {p}}}"));
    assert_eq!(dropped.len(), plain.len());
    let rate = dropped.iter().filter(|l| **l == 3).count() as f64 / dropped.len() as f64;
    let se = (p * (1.0 - p) / dropped.len() as f64).sqrt();
    eprintln!(
        "cfg training, p_uncond = {p}: null-label rate {rate:.4} (4 se = {:.4})",
        4.0 * se
    );
    assert!((rate - p).abs() < 4.0 * se, "{rate}");
    assert_eq!(
        dropped,
        training_labels(&format!("{{kind: cfg, p_uncond: {p}}}"))
    );
}

/// Classifier-free guidance on images: a class-conditional U-Net trained once with label
/// dropout, sampled at two scales (the guided one evaluates the model twice per step).
#[test]
fn cfg_on_a_class_conditional_unet_trains_once_and_doubles_the_nfe() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let text = r#"
name: tiny_cfg
seed: 1
num_samples: 12
data: {kind: shapes, size: 8, channels: 1}
schedule: edm
weighting: edm
network: {kind: unet, channels: 8, channel_mult: [1, 2], attention_resolutions: [4], groups: 4, classes: 5, parameterisation: edm}
train: {steps: 4, batch_size: 8, train_size: 100, log_every: 2}
sampler: {kind: euler, steps: 3}
guidance: {kind: cfg, scale: 2.0, class: 3, p_uncond: 0.2}
"#;
    let dir = tempfile::tempdir().unwrap();
    let file = crate::common::write(dir.path(), "cfg.yaml", text);
    let results = dir.path().join("results");
    let report = crate::common::sweep(&file, &["guidance.scale=0,2"], &results).unwrap();
    let nfe: Vec<u64> = report.rows.iter().map(|r| r.nfe).collect();
    assert_eq!(
        nfe,
        vec![3, 6],
        "one model evaluation per step at w = 0, two at w = 2"
    );
    let models = std::fs::read_dir(results.join("tiny_cfg").join("models"))
        .unwrap()
        .count();
    assert_eq!(models, 1, "the scale does not split the training group");
}

/// The trained `mlp` classifier agrees with the exact posterior on noised held-out points
/// where the posterior is confident (after 300 steps already), and guides toward the target
/// class.
#[test]
fn a_trained_noise_conditional_classifier_agrees_with_the_exact_one_and_guides() {
    use scorelab::guidance::mlp::NoisyMlp;
    use scorelab::guidance::noisy::Training;
    use scorelab::train::{guidance_classifier, Hooks};
    let t = trial(LABELLED);
    let training = Training {
        steps: 300,
        batch_size: 256,
        lr: 2e-3,
        sigma_range: (0.002, 80.0),
        seed: 1,
    };
    let start = std::time::Instant::now();
    let trained = NoisyMlp::new(&t.training_data, 3, 64, 1, &Device::Cpu).unwrap();
    guidance_classifier::train_noisy(
        &trained,
        &t.training_data,
        &training,
        &Device::Cpu,
        None,
        Hooks::quiet(&mut |_| {}),
    )
    .unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let exact = MixtureClassifier::new(mixture(&t));
    let mut rng = Rng::from_seed(9);
    for sigma in [0.05, 1.0, 3.0] {
        let n = t.held_out.len();
        let noisy: Vec<f32> = t
            .held_out
            .as_slice()
            .iter()
            .map(|v| (v + sigma * rng.normal()) as f32)
            .collect();
        let x = Tensor::from_vec(noisy, (n, 2), &Device::Cpu).unwrap();
        let s = Tensor::full(sigma as f32, (n, 1), &Device::Cpu).unwrap();
        let argmax = |c: &dyn Classifier| -> Vec<u32> {
            c.log_probs(&x, &s)
                .unwrap()
                .argmax(1)
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let confident: Vec<bool> = exact
            .log_probs(&x, &s)
            .unwrap()
            .max(1)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|l| l.exp() > 0.9)
            .collect();
        let (a, b) = (argmax(&trained), argmax(&exact));
        let kept: Vec<usize> = (0..n).filter(|i| confident[*i]).collect();
        let agree = kept.iter().filter(|i| a[**i] == b[**i]).count() as f64 / kept.len() as f64;
        eprintln!(
            "trained classifier at sigma {sigma}: agrees with the exact argmax on {agree:.4} of {} confident points",
            kept.len()
        );
        assert!(agree > 0.97, "sigma {sigma}: {agree}");
    }
    eprintln!("classifier training: {seconds:.2} s");

    // With its default 1500 steps and w = 2 (w = 1 gave 0.889 of 3000 samples, and 1000 steps
    // at w = 3 0.56: a learned classifier's gradient is rougher than the exact one's).
    let text = with_guidance("{kind: classifier, classifier: mlp, scale: 2.0, class: 2}");
    let guided = resolve(&text, &["num_samples=1000"]).unwrap().remove(0);
    let share = shares(&guided, &run(&guided))[2];
    eprintln!("classifier guidance with the trained classifier, w = 2, class 2: share {share:.4}");
    assert!(share >= 0.95, "{share}");
    // The oracle's record has no training settings; the trained one's has.
    let oracle = trial(&with_guidance("{kind: classifier}"));
    assert!(oracle.resolved["guidance"]
        .get("classifier_steps")
        .is_none());
    assert_eq!(guided.resolved["guidance"]["classifier_steps"], json!(1500));
    assert_eq!(guided.train_id, oracle.train_id);
}
