//! The `mlp` conditioned on class labels, trained with classifier-free guidance's label
//! dropout on a labelled mixture: its samples move to the target class as the guidance scale
//! says, and it refuses data without the labels it asks for.

use crate::common::{resolve_error, sweep, write};

const CONDITIONAL: &str = r#"
seed: 1
num_samples: 1000
data: {kind: gmm, means: [[-4.0, 0.0], [4.0, 0.0], [0.0, 4.0]], stds: [0.5, 0.5, 0.5], weights: [0.5, 0.3, 0.2], labelled: true}
schedule: {kind: geometric, num_levels: 10, sigma_max: auto, sigma_min: 0.05}
weighting: sigma_squared
network: {kind: mlp, hidden: 64, layers: 2, embedding: 16, classes: 3}
train: {steps: 800, batch_size: 128, train_size: 3000, log_every: 100}
sampler: {kind: euler, steps: 40}
guidance: {kind: cfg, class: 2, scale: 0.0}
eval: [mode_weights]
sweep:
  guidance.scale: [-1.0, 0.0, 2.0]
"#;

/// Every sample generated for class 2 (weight 0.2) makes mode_weights (the total variation
/// between the samples' component shares and the weights) 0.8; the mixture makes it ~0.
#[test]
fn a_class_conditional_mlp_under_cfg_samples_the_mixture_the_class_or_sharper() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "conditional.yaml", CONDITIONAL);
    let report = sweep(&file, &[], &dir.path().join("results")).unwrap();
    let tv: Vec<f64> = report
        .rows
        .iter()
        .map(|r| r.metrics["mode_weights"])
        .collect();
    // w = -1: the unconditional model (the null label), the mixture.
    assert!(tv[0] < 0.05, "w = -1 should give the mixture: {tv:?}");
    // w = 0: the conditional model, nearly all in component 2.
    assert!(tv[1] > 0.7, "w = 0 should give class 2: {tv:?}");
    // w = 2: sharper still.
    assert!(tv[2] >= tv[1] && tv[2] > 0.75, "{tv:?}");
    let nfe: Vec<u64> = report.rows.iter().map(|r| r.nfe).collect();
    assert_eq!(nfe, [80, 40, 80], "two evaluations per step where w != 0");
    let models: std::collections::BTreeSet<&str> =
        report.rows.iter().map(|r| r.train_id.as_str()).collect();
    assert_eq!(models.len(), 1, "the scale is sampling-only");
}

#[test]
fn a_class_conditional_mlp_on_unlabelled_data_is_refused_with_the_fix() {
    let text = CONDITIONAL.replace(", labelled: true", "");
    let error = resolve_error(&text, &[]);
    assert!(
        error.contains("network.classes")
            && error.contains("data is unlabelled")
            && error.contains("set `classes: 0`"),
        "{error}"
    );
}
