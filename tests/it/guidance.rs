//! Guidance on a labelled 2D Gaussian mixture, against closed forms: the oracle network
//! gives the exact conditional (one component) and unconditional (the mixture) scores, and
//! the oracle classifier the exact posterior p(y | x, sigma) of the components.

use candle_core::{DType, Device, Tensor};
use scorelab::analytic::GaussianMixture;
use scorelab::evaluate::{evaluate, Around, Evaluation};
use scorelab::guidance::oracle::MixtureClassifier;
use scorelab::guidance::{drop_labels, log_prob_gradient, Classifier};
use scorelab::registry::Kind;
use scorelab::rng::Rng;
use scorelab::trial::Trial;
use serde_json::json;

use crate::common::{replace_line, resolve, resolve_error, SMALL_GMM};

/// Three well-separated components (8 and 5.7 apart, std 0.5), labelled, with the exact
/// score and an accurate deterministic sampler (EDM's Heun, 32 steps, no churn).
pub(crate) const LABELLED: &str = r#"
seed: 5
num_samples: 3000
data:
  kind: gmm
  means: [[-4.0, 0.0], [4.0, 0.0], [0.0, 4.0]]
  stds: [0.5, 0.5, 0.5]
  weights: [0.5, 0.3, 0.2]
  labelled: true
schedule: {kind: edm}
weighting: sigma_squared
network: oracle
sampler: {kind: heun, steps: 32}
eval: [mode_weights]
"#;

const WEIGHTS: [f64; 3] = [0.5, 0.3, 0.2];

pub(crate) fn with_guidance(guidance: &str) -> String {
    format!("{LABELLED}guidance: {guidance}\n")
}

pub(crate) fn trial(text: &str) -> Trial {
    resolve(text, &[]).unwrap().remove(0)
}

pub(crate) fn run(trial: &Trial) -> Evaluation {
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    evaluate(trial, &model, &Around::default(), &mut |_| {}).unwrap()
}

pub(crate) fn mixture(trial: &Trial) -> &GaussianMixture {
    trial.dataset.mixture().expect("gmm data")
}

/// The component each sample most likely came from (under the clean mixture).
fn components(trial: &Trial, evaluation: &Evaluation) -> Vec<usize> {
    let m = mixture(trial);
    evaluation
        .samples
        .rows()
        .map(|row| {
            let r = m.responsibilities(row, 0.0);
            (0..r.len()).max_by(|a, b| r[*a].total_cmp(&r[*b])).unwrap()
        })
        .collect()
}

pub(crate) fn shares(trial: &Trial, evaluation: &Evaluation) -> Vec<f64> {
    let found = components(trial, evaluation);
    (0..3)
        .map(|k| found.iter().filter(|c| **c == k).count() as f64 / found.len() as f64)
        .collect()
}

/// Shares of a mixture draw lie within 4 standard errors, sqrt(w (1 - w) / n), of the weights.
fn assert_mixture_shares(shares: &[f64], n: usize, what: &str) {
    for (share, weight) in shares.iter().zip(WEIGHTS) {
        let bound = 4.0 * (weight * (1.0 - weight) / n as f64).sqrt();
        assert!(
            (share - weight).abs() < bound,
            "{what}: shares {shares:?} vs weights {WEIGHTS:?} (bound {bound:.4})"
        );
    }
}

#[test]
fn classifier_guidance_at_w_1_with_the_exact_classifier_samples_the_target_component() {
    for class in [1, 2] {
        let t = trial(&with_guidance(&format!(
            "{{kind: classifier, scale: 1.0, class: {class}}}"
        )));
        let evaluation = run(&t);
        let share = shares(&t, &evaluation)[class];
        eprintln!("classifier guidance, w = 1, class {class}: share {share:.4}");
        assert!(share >= 0.97, "class {class}: share {share}");
        let labels = evaluation.samples.labels().expect("targets recorded");
        assert!(labels.iter().all(|l| *l == class as u32));
        // Exactly the conditional: the component's mean and spread.
        let rows: Vec<&[f64]> = evaluation.samples.rows().collect();
        let mean: Vec<f64> = (0..2)
            .map(|d| rows.iter().map(|r| r[d]).sum::<f64>() / rows.len() as f64)
            .collect();
        let target = &mixture(&t).means()[class];
        for d in 0..2 {
            assert!(
                (mean[d] - target[d]).abs() < 0.06,
                "mean {mean:?} vs {target:?}"
            );
        }
    }
}

#[test]
fn classifier_guidance_at_w_0_reproduces_the_unconditional_mixture() {
    let t = trial(&with_guidance("{kind: classifier, scale: 0.0, class: 2}"));
    let evaluation = run(&t);
    let found = shares(&t, &evaluation);
    eprintln!("classifier guidance, w = 0: shares {found:?}");
    assert_mixture_shares(&found, evaluation.samples.len(), "w = 0");
    // The unguided sampler on the same data without labels: the same samples, bit for bit.
    let plain = trial(&LABELLED.replace("  labelled: true\n", ""));
    let unguided = run(&plain);
    assert_eq!(evaluation.samples.as_slice(), unguided.samples.as_slice());
    assert_eq!(evaluation.nfe, unguided.nfe);
    // w = 3 sharpens beyond the conditional: still the target component.
    let sharp = trial(&with_guidance("{kind: classifier, scale: 3.0, class: 2}"));
    let share = shares(&sharp, &run(&sharp))[2];
    eprintln!("classifier guidance, w = 3, class 2: share {share:.4}");
    assert!(share >= 0.97, "w = 3: {share}");
}

#[test]
fn cfg_with_exact_scores_at_w_0_gives_the_conditional_and_at_w_minus_1_the_mixture() {
    // Uniform targets: each sample lands in the component it was generated for.
    let t = trial(&with_guidance("{kind: cfg, scale: 0.0}"));
    let evaluation = run(&t);
    let targets = evaluation
        .samples
        .labels()
        .expect("targets recorded")
        .to_vec();
    let found = components(&t, &evaluation);
    let agree = found
        .iter()
        .zip(&targets)
        .filter(|(c, y)| **c == **y as usize)
        .count() as f64
        / found.len() as f64;
    let per_class: Vec<f64> = (0..3)
        .map(|k| targets.iter().filter(|y| **y == k).count() as f64 / targets.len() as f64)
        .collect();
    eprintln!("cfg, w = 0: {agree:.4} of samples in their target component; targets {per_class:?}");
    assert!(agree >= 0.97, "{agree}");
    for share in &per_class {
        assert!(
            (share - 1.0 / 3.0).abs() < 0.05,
            "uniform targets: {per_class:?}"
        );
    }

    // w = -1 is the unconditional model alone: the mixture's shares whatever the target.
    let t = trial(&with_guidance("{kind: cfg, scale: -1.0, class: 1}"));
    let evaluation = run(&t);
    let found = shares(&t, &evaluation);
    eprintln!("cfg, w = -1: shares {found:?}");
    assert_mixture_shares(&found, evaluation.samples.len(), "w = -1");

    // w = 2 toward class 0: the target, with two model evaluations per step.
    let t = trial(&with_guidance("{kind: cfg, scale: 2.0, class: 0}"));
    let guided = run(&t);
    let share = shares(&t, &guided)[0];
    eprintln!("cfg, w = 2, class 0: share {share:.4}");
    assert!(share >= 0.97, "{share}");
    assert_eq!(guided.nfe, evaluation.nfe);
    let single = run(&trial(&with_guidance("{kind: cfg, scale: 0.0, class: 0}")));
    assert_eq!(guided.nfe, 2 * single.nfe);
}

#[test]
fn the_classifiers_gradient_matches_finite_differences() {
    let m = GaussianMixture::new(
        vec![0.5, 0.3, 0.2],
        vec![
            vec![-2.0, 0.0, 1.0],
            vec![2.0, 1.0, -1.0],
            vec![0.0, -3.0, 0.5],
        ],
        vec![
            vec![0.5, 1.0, 0.7],
            vec![1.2, 0.4, 0.9],
            vec![0.8, 0.8, 0.8],
        ],
    )
    .unwrap();
    let classifier = MixtureClassifier::new(&m);
    assert_eq!(classifier.classes(), 3);
    let mut rng = Rng::from_seed(7);
    let n = 24;
    let points: Vec<f64> = (0..n * 3).map(|_| 2.5 * rng.normal()).collect();
    let sigmas: Vec<f64> = (0..n).map(|i| [0.0, 0.05, 0.5, 2.0][i % 4]).collect();
    let labels: Vec<u32> = (0..n).map(|i| (i % 3) as u32).collect();
    let x = Tensor::from_slice(&points, (n, 3), &Device::Cpu).unwrap();
    let sigma = Tensor::from_slice(&sigmas, (n, 1), &Device::Cpu).unwrap();
    let y = Tensor::from_slice(&labels, n, &Device::Cpu).unwrap();

    // The log-probabilities are the closed-form posterior.
    let log_probs = classifier.log_probs(&x, &sigma).unwrap();
    let log_probs: Vec<Vec<f64>> = log_probs.to_vec2().unwrap();
    let gradient: Vec<Vec<f64>> = log_prob_gradient(&classifier, &x, &sigma, &y)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec2()
        .unwrap();
    let log_posterior = |row: &[f64], s: f64, k: usize| m.responsibilities(row, s)[k].ln();
    let mut worst = 0.0f64;
    for i in 0..n {
        let row = &points[i * 3..(i + 1) * 3];
        let k = labels[i] as usize;
        for (c, value) in log_probs[i].iter().enumerate() {
            let exact = log_posterior(row, sigmas[i], c);
            assert!(
                (value - exact).abs() < 1e-9 * (1.0 + exact.abs()),
                "row {i} class {c}: {value} vs {exact}"
            );
        }
        for d in 0..3 {
            let h = 1e-5;
            let (mut up, mut down) = (row.to_vec(), row.to_vec());
            up[d] += h;
            down[d] -= h;
            let fd =
                (log_posterior(&up, sigmas[i], k) - log_posterior(&down, sigmas[i], k)) / (2.0 * h);
            let error = (fd - gradient[i][d]).abs() / (1.0 + fd.abs());
            worst = worst.max(error);
            assert!(error < 1e-6, "row {i} d {d}: {fd} vs {}", gradient[i][d]);
        }
    }
    eprintln!("classifier gradient vs finite differences: worst relative error {worst:.2e}");
}

#[test]
fn label_dropout_replaces_labels_at_rate_p_deterministically() {
    let labels: Vec<u32> = (0..20_000).map(|i| (i % 3) as u32).collect();
    for p in [0.1, 0.3] {
        let dropped = drop_labels(&labels, p, 3, &mut Rng::from_seed(4));
        let again = drop_labels(&labels, p, 3, &mut Rng::from_seed(4));
        assert_eq!(dropped, again, "deterministic from the generator");
        let nulls = dropped.iter().filter(|l| **l == 3).count() as f64;
        let rate = nulls / labels.len() as f64;
        let se = (p * (1.0 - p) / labels.len() as f64).sqrt();
        eprintln!(
            "label dropout p = {p}: rate {rate:.4} (4 se = {:.4})",
            4.0 * se
        );
        assert!((rate - p).abs() < 4.0 * se, "p {p}: rate {rate}");
        for (kept, original) in dropped.iter().zip(&labels) {
            assert!(*kept == 3 || kept == original);
        }
    }
}

#[test]
fn an_unknown_guidance_kind_lists_the_registered_ones() {
    let message = resolve_error(&with_guidance("{kind: cgf, scale: 1.0}"), &[]);
    for needle in [
        "guidance.kind",
        "unknown guidance `cgf`",
        "did you mean `cfg`",
        "classifier",
        "none",
    ] {
        assert!(message.contains(needle), "lacks {needle}: {message}");
    }
    // CFG needs a class-conditional network; the mlp on unlabelled data is not one.
    let message = resolve_error(&format!("{SMALL_GMM}guidance: cfg\n"), &[]);
    assert!(
        message.contains("guidance.kind")
            && message.contains("class-conditional")
            && message.contains("`mlp`"),
        "{message}"
    );
    // A class the data does not have, and a bad dropout probability.
    let message = resolve_error(&with_guidance("{kind: classifier, class: 3}"), &[]);
    assert!(
        message.contains("guidance.class") && message.contains("from 0 to 2"),
        "{message}"
    );
    let message = resolve_error(&with_guidance("{kind: cfg, p_uncond: 1.5}"), &[]);
    assert!(message.contains("guidance.p_uncond"), "{message}");
    let message = resolve_error(&with_guidance("{kind: classifier, classifier: cann}"), &[]);
    assert!(
        message.contains("guidance.classifier") && message.contains("oracle, mlp, cnn"),
        "{message}"
    );
    // A trained classifier needs labels.
    let message = resolve_error(
        &format!("{SMALL_GMM}guidance: {{kind: classifier, classifier: mlp}}\n"),
        &[],
    );
    assert!(
        message.contains("guidance.classifier") && message.contains("unlabelled"),
        "{message}"
    );
}

#[test]
fn guidance_scale_and_class_are_sampling_only() {
    let cfg = "{kind: cfg, scale: 1.0}";
    let trials = resolve(
        &with_guidance(cfg),
        &["guidance.scale=0,1,3", "guidance.class=uniform,1"],
    )
    .unwrap();
    assert_eq!(trials.len(), 6);
    let ids: std::collections::BTreeSet<&str> = trials.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids.len(), 6, "every trial its own id");
    assert!(trials.iter().all(|t| t.train_id == trials[0].train_id));
    assert_eq!(
        trials[0].resolved["guidance"],
        json!({"kind": "cfg", "scale": 0.0, "p_uncond": 0.1, "class": "uniform"})
    );
    assert_eq!(trials[0].training["guidance"], json!({"p_uncond": 0.1}));
    // The label dropout decides the model.
    let trials = resolve(&with_guidance(cfg), &["guidance.p_uncond=0.1,0.2"]).unwrap();
    assert_ne!(trials[0].train_id, trials[1].train_id);

    // No section, `none` and `none` toward uniform classes are one trial; classifier guidance
    // of the same model trains nothing new.
    let small = |guidance: &str| trial(&format!("{SMALL_GMM}{guidance}"));
    let plain = small("");
    for same in [
        "guidance: none\n",
        "guidance: {kind: none, class: uniform}\n",
    ] {
        let t = small(same);
        assert_eq!((&t.id, &t.train_id), (&plain.id, &plain.train_id), "{same}");
        assert!(t.resolved.get("guidance").is_none());
    }
    let guided = small("guidance: {kind: classifier, scale: 2.0, class: 1}\n");
    assert_eq!(guided.train_id, plain.train_id);
    assert_ne!(guided.id, plain.id);
    assert!(guided.training.get("guidance").is_none());
}

#[test]
fn labelled_gmm_data_are_the_same_points_with_their_components() {
    let plain = trial(SMALL_GMM);
    let unlabelled = trial(&replace_line(
        SMALL_GMM,
        "weights:",
        "  weights: [0.8, 0.2]\n  labelled: false",
    ));
    assert_eq!(plain.id, unlabelled.id, "labelled: false keeps the ids");
    assert!(plain.training_data.labels().is_none());
    let labelled = trial(&replace_line(
        SMALL_GMM,
        "weights:",
        "  weights: [0.8, 0.2]\n  labelled: true",
    ));
    assert_eq!(labelled.dataset.classes(), 2);
    assert_eq!(
        labelled.training_data.as_slice(),
        plain.training_data.as_slice()
    );
    let labels = labelled.training_data.labels().expect("labels");
    let m = mixture(&labelled);
    let near = labelled
        .training_data
        .rows()
        .zip(labels)
        .filter(|(row, label)| m.nearest_component(row) == **label as usize)
        .count() as f64;
    assert!(near / labels.len() as f64 > 0.99);
    let share = labels.iter().filter(|l| **l == 1).count() as f64 / labels.len() as f64;
    assert!((share - 0.2).abs() < 0.05, "{share}");
}

#[test]
fn runner_plugins_lists_the_guidance_kind() {
    assert_eq!(Kind::parse("guidance"), Some(Kind::Guidance));
    let listing = scorelab::cli::plugin_listing(&[Kind::Guidance]);
    for needle in [
        "none",
        "cfg",
        "classifier",
        "p_uncond",
        "scale",
        "\"uniform\"",
    ] {
        assert!(listing.contains(needle), "lacks {needle}:\n{listing}");
    }
    let words = scorelab::completions::override_words();
    for word in ["guidance=cfg", "guidance.scale=", "guidance.p_uncond="] {
        assert!(words.iter().any(|w| w == word), "completions lack {word}");
    }
}
