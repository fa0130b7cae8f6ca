//! TensorBoard while a sweep runs: training streams its scalars into the runs of the trials
//! waiting for the model, readable before the trial ends; saving a trial rewrites its run
//! whole; each run holds one HParams session, a failed trial's with its cause.

use std::path::Path;
use std::process::Command;

use scorelab::results::tensorboard::{event_files, read_events, EventValue, ReadEvent};

use crate::common::{write, SMALL_GMM};

fn events_of(run: &Path, part: &str) -> Vec<ReadEvent> {
    event_files(run)
        .unwrap()
        .iter()
        .filter(|f| f.to_string_lossy().ends_with(part))
        .flat_map(|f| read_events(f).unwrap())
        .collect()
}

fn runner(file: &Path, results: &Path, kill_at: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_runner"));
    command
        .args(["sweep", "--progress", "none"])
        .arg(file)
        .arg("--results")
        .arg(results)
        .env("SCORELAB_TENSORBOARD_SECONDS", "0")
        .env_remove(scorelab::crash::VARIABLE);
    if let Some(point) = kill_at {
        command.env(scorelab::crash::VARIABLE, point);
    }
    command.output().unwrap()
}

#[test]
fn training_streams_its_scalars_before_the_trial_ends() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "live.yaml",
        &format!("{SMALL_GMM}sweep:\n  sampler.steps_per_level: [2, 4]\n"),
    );
    let results = dir.path().join("results");
    // Killed at step 35 of 60: records at steps 10, 20 and 30 were streamed.
    let killed = runner(&file, &results, Some("train.step:35"));
    assert!(!killed.status.success());
    let tb = results.join("live").join("tb");
    let runs: Vec<_> = std::fs::read_dir(&tb)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(runs.len(), 2, "both trials wait for the one model");
    for run in &runs {
        let events = events_of(run, ".scorelab-live");
        let steps = |tag: &str| -> Vec<i64> {
            events
                .iter()
                .filter(|e| e.tag == tag)
                .map(|e| e.step)
                .collect()
        };
        assert_eq!(steps("train/loss"), vec![10, 20, 30], "{}", run.display());
        assert_eq!(steps("train/lr"), vec![10, 20, 30]);
        assert_eq!(steps("train/steps_per_second").len(), 3);
        assert_eq!(steps("train/ema_decay").len(), 3);
        let value = |tag: &str, step: i64| {
            events
                .iter()
                .find(|e| e.tag == tag && e.step == step)
                .map(|e| e.value.clone())
        };
        assert_eq!(value("train/lr", 10), Some(EventValue::Scalar(1e-3)));
        // The moving average's warm-up: min(0.999, (1 + step) / (10 + step)).
        assert_eq!(
            value("train/ema_decay", 20),
            Some(EventValue::Scalar((21.0f64 / 30.0) as f32))
        );
        assert!(events
            .iter()
            .any(|e| e.tag.starts_with("train/level_loss/sigma_")));
    }

    // Finished, a trial's run is its whole history, metrics and pictures (no live file).
    let finished = runner(&file, &results, None);
    assert!(finished.status.success(), "{finished:?}");
    for run in &runs {
        let files = event_files(run).unwrap();
        assert!(
            files.iter().all(|f| !f.to_string_lossy().contains("-live")),
            "{files:?}"
        );
        let events = events_of(run, ".scorelab");
        let losses = events.iter().filter(|e| e.tag == "train/loss").count();
        assert_eq!(losses, 6, "60 steps, every 10");
        assert!(events.iter().any(|e| e.tag == "metrics/fd"));
    }
}

#[test]
fn a_trained_classifier_streams_to_a_run_named_after_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    // A labelled mixture under its exact score, guided by a classifier trained for 40 steps:
    // the classifier is the only thing the sweep trains.
    let file = write(
        dir.path(),
        "guided.yaml",
        r#"
seed: 5
num_samples: 100
data: {kind: gmm, means: [[-4.0, 0.0], [4.0, 0.0]], stds: [0.5, 0.5], weights: [0.5, 0.5], labelled: true}
train: {train_size: 500}
schedule: edm
network: oracle
sampler: {kind: heun, steps: 4}
guidance: {kind: classifier, classifier: mlp, classifier_hidden: 8, classifier_steps: 40, class: 1}
eval: [mode_weights]
"#,
    );
    let results = dir.path().join("results");
    let output = runner(&file, &results, None);
    assert!(output.status.success(), "{output:?}");
    let root = results.join("guided");
    let classifiers: Vec<String> = std::fs::read_dir(root.join("models"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.') && !name.ends_with(".safetensors"))
        .collect();
    assert_eq!(classifiers.len(), 1, "{classifiers:?}");
    let events = events_of(&root.join("tb").join(&classifiers[0]), ".scorelab-live");
    let losses: Vec<i64> = events
        .iter()
        .filter(|e| e.tag == "classifier/loss")
        .map(|e| e.step)
        .collect();
    assert_eq!(losses.last(), Some(&40), "{losses:?}");
    assert!(events.iter().any(|e| e.tag == "classifier/cross_entropy"));
}
