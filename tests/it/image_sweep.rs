//! A tiny image sweep end to end: a class-conditional U-Net on `shapes`, FID/KID/precision-
//! recall/class accuracy in a classifier's feature space, the pictures and the protocol.

use std::fs;

use scorelab::results::tensorboard::{event_files, read_events, EventValue};

use crate::common::{sweep, write};

const TINY_IMAGES: &str = r#"
name: tiny_images
seed: 1
num_samples: 40
data: {kind: shapes, size: 8, channels: 1}
schedule: edm
weighting: edm
network: {kind: unet, channels: 8, channel_mult: [1, 2], attention_resolutions: [4], groups: 4, classes: 5, parameterisation: edm}
train: {steps: 4, batch_size: 8, train_size: 300, log_every: 2}
sampler: {kind: euler, steps: 3}
features: {kind: classifier, steps: 20, batch_size: 16, width: 4, features: 8}
eval: [fid, kid, precision_recall, class_accuracy]
"#;

#[test]
fn an_image_sweep_writes_grids_a_denoising_strip_feature_metrics_and_their_protocol() {
    std::env::set_var("RAYON_NUM_THREADS", "1");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "images.yaml", TINY_IMAGES);
    let results = dir.path().join("results");
    let report = sweep(&file, &[], &results).unwrap();
    let row = &report.rows[0];
    for metric in [
        "fid",
        "kid",
        "kid_std",
        "precision_recall",
        "precision_recall_recall",
        "class_accuracy",
    ] {
        let value = row.metrics[metric];
        assert!(value.is_finite(), "{metric} = {value}");
    }
    // Each distance has its real-vs-real floor beside it; class accuracy needs samples.
    for floor in ["fid_floor", "kid_floor", "precision_recall_floor"] {
        assert!(row.metrics[floor].is_finite(), "{floor}");
    }
    assert!(!row.metrics.contains_key("class_accuracy_floor"));
    for share in [
        "precision_recall",
        "precision_recall_recall",
        "class_accuracy",
    ] {
        assert!((0.0..=1.0).contains(&row.metrics[share]), "{share}");
    }
    assert!(row.metrics["features_held_out_accuracy"] > 0.0);
    let identity = row.features.clone().unwrap();
    assert!(identity.starts_with("classifier-"), "{identity}");
    let protocol = &row.protocols["fid"];
    assert_eq!((protocol.samples, protocol.reference_size), (40, 40));
    assert_eq!(protocol.nfe, row.nfe);
    assert_eq!(protocol.features.as_deref(), Some(identity.as_str()));

    let root = results.join("tiny_images");
    let trial = root.join("trials").join(&row.trial);
    for file in [
        "samples.png",
        "denoising.png",
        "samples.safetensors",
        "metrics.json",
    ] {
        assert!(trial.join(file).is_file(), "missing {file}");
    }
    assert!(root.join("plots").join("real_data.png").is_file());
    let grid = image::open(trial.join("samples.png")).unwrap();
    // 40 tiles of 8x8 zoomed 8x, 8 per row, 2-pixel gaps: 5 rows.
    assert_eq!((grid.width(), grid.height()), (8 * 66 + 2, 5 * 66 + 2));

    // The samples come back with the class each was generated for.
    let tensors = candle_core::safetensors::load(
        trial.join("samples.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    assert_eq!(tensors["images"].dims(), &[40, 1, 8, 8]);
    let labels = tensors["labels"].to_vec1::<u32>().unwrap();
    assert!(labels.iter().all(|l| *l < 5) && labels.iter().any(|l| *l != labels[0]));

    let files = event_files(&root.join("tb").join(&row.trial)).unwrap();
    let tags: Vec<String> = read_events(&files[0])
        .unwrap()
        .into_iter()
        .filter(|e| matches!(e.value, EventValue::Image { .. }))
        .map(|e| e.tag)
        .collect();
    assert!(
        tags.contains(&"samples".to_string()) && tags.contains(&"denoising".to_string()),
        "{tags:?}"
    );

    // Another sampler on the same data reuses the cached classifier: same feature space.
    assert_eq!(fs::read_dir(root.join("features")).unwrap().count(), 1);
    let again = sweep(&file, &["sampler.steps=2"], &results).unwrap();
    assert_eq!(again.rows[0].features.as_deref(), Some(identity.as_str()));
    assert_ne!(again.rows[0].trial, row.trial);
    assert_eq!(fs::read_dir(root.join("features")).unwrap().count(), 1);
}
