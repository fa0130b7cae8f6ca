//! The classifiers go through the one loop and the one artifact store too: a sweep killed
//! while the guidance classifier or the feature classifier trains resumes, on the next run,
//! from the snapshot beside its folder and ends with the weights and the metrics of a run
//! that was never stopped.

use std::fs;
use std::path::{Path, PathBuf};

use crate::artifacts::{model_folder, run_runner, tensors};

/// A labelled mixture under its exact score, guided by a trained `mlp` classifier (60
/// steps, a snapshot every 20): the classifier is the only thing the sweep trains.
const GUIDED: &str = r#"
seed: 5
num_samples: 200
checkpoint_every: 20
data: {kind: gmm, means: [[-4.0, 0.0], [4.0, 0.0], [0.0, 4.0]], stds: [0.5, 0.5, 0.5], weights: [0.5, 0.3, 0.2], labelled: true}
train: {train_size: 2000}
schedule: edm
weighting: sigma_squared
network: oracle
sampler: {kind: heun, steps: 8}
guidance: {kind: classifier, classifier: mlp, classifier_hidden: 16, classifier_steps: 60, class: 2}
eval: [mode_weights, class_accuracy]
"#;

/// Small `shapes` images, a 2-step model, and FID in the space of a feature classifier
/// trained for 60 steps with a snapshot every 20 (after the model's 2 steps).
const FEATURES: &str = r#"
seed: 1
num_samples: 40
checkpoint_every: 20
data: {kind: shapes, size: 8, channels: 1}
schedule: vp
weighting: uniform
network: {kind: mlp, hidden: 8, layers: 1, embedding: 4}
train: {steps: 2, batch_size: 4, train_size: 200}
sampler: {kind: euler, steps: 2}
features: {kind: classifier, steps: 60, batch_size: 16, width: 4, features: 8}
eval: [fid]
"#;

/// Every trial's metrics record without its timings, and its samples (`samples.csv` for
/// points, `samples.safetensors` for images), by trial folder.
fn trial_results(dir: &Path) -> Vec<(String, serde_json::Value, Vec<u8>)> {
    let trials = dir.join("results").join("exp").join("trials");
    let mut folders: Vec<PathBuf> = fs::read_dir(&trials)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    folders.sort();
    assert!(!folders.is_empty(), "no trial in {}", trials.display());
    folders
        .iter()
        .map(|folder| {
            let mut record: serde_json::Value =
                serde_json::from_slice(&fs::read(folder.join("metrics.json")).unwrap()).unwrap();
            let map = record.as_object_mut().unwrap();
            map.retain(|key, _| !key.ends_with("_seconds"));
            let name = folder.file_name().unwrap().to_string_lossy().to_string();
            let samples = ["samples.csv", "samples.safetensors"]
                .iter()
                .find_map(|file| fs::read(folder.join(file)).ok())
                .expect("the trial's samples");
            (name, record, samples)
        })
        .collect()
}

/// A cache folder's `info.json` without its training seconds.
fn info(folder: &Path) -> serde_json::Value {
    let mut info: serde_json::Value =
        serde_json::from_slice(&fs::read(folder.join("info.json")).unwrap()).unwrap();
    info.as_object_mut().unwrap().remove("train_seconds");
    info
}

/// The one feature classifier folder of the sweep's features cache.
fn feature_folder(dir: &Path) -> PathBuf {
    let cache = dir.join("results").join("exp").join("features");
    let folders: Vec<PathBuf> = fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 1, "the checkpoint is removed: {folders:?}");
    folders[0].clone()
}

#[test]
fn a_guidance_classifier_killed_mid_training_resumes_to_the_same_weights_and_metrics() {
    let whole = tempfile::tempdir().unwrap();
    run_runner(whole.path(), GUIDED, None);
    let killed = tempfile::tempdir().unwrap();
    // Step 30 of the classifier's 60, after the snapshot at step 20.
    run_runner(killed.path(), GUIDED, Some("train.step:30"));
    let models = killed.path().join("results").join("exp").join("models");
    let left: Vec<String> = fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        left.len() == 1 && left[0].ends_with(".checkpoint.safetensors"),
        "only the snapshot is left: {left:?}"
    );
    let stdout = run_runner(killed.path(), GUIDED, None);
    assert!(
        stdout.contains("classifier: resuming classifier-")
            && stdout.contains("from its checkpoint at step 20 of 60"),
        "{stdout}"
    );
    let folder = |dir: &Path| model_folder(dir, "classifier-");
    assert!(
        tensors(&folder(whole.path()).join("model.safetensors"))
            == tensors(&folder(killed.path()).join("model.safetensors")),
        "the classifier's weights differ after the resume"
    );
    assert_eq!(info(&folder(whole.path())), info(&folder(killed.path())));
    assert!(
        !folder(killed.path())
            .with_extension("checkpoint.safetensors")
            .exists(),
        "the snapshot is removed once the folder is in place"
    );
    assert_eq!(trial_results(whole.path()), trial_results(killed.path()));
}

#[test]
fn a_feature_classifier_killed_mid_training_resumes_to_the_same_weights_and_metrics() {
    let whole = tempfile::tempdir().unwrap();
    run_runner(whole.path(), FEATURES, None);
    let killed = tempfile::tempdir().unwrap();
    // The model's 2 steps, then the classifier's step 30 of 60 (its snapshot at step 20).
    run_runner(killed.path(), FEATURES, Some("train.step:32"));
    let stdout = run_runner(killed.path(), FEATURES, None);
    assert!(
        stdout.contains("classifier: resuming from its checkpoint at step 20 of 60"),
        "{stdout}"
    );
    let folder = feature_folder(killed.path());
    assert_eq!(folder.file_name(), feature_folder(whole.path()).file_name());
    assert!(
        tensors(&feature_folder(whole.path()).join("model.safetensors"))
            == tensors(&folder.join("model.safetensors")),
        "the feature classifier's weights differ after the resume"
    );
    assert_eq!(info(&feature_folder(whole.path())), info(&folder));
    assert_eq!(trial_results(whole.path()), trial_results(killed.path()));
}
