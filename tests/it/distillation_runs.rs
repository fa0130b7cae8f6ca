//! Distilled students as models: each round its own folder, loaded by later runs and built
//! on by later rounds; rounds 0 leaves every id as it was; bad input names file, key and fix.

use std::fs;

use crate::common::{resolve, resolve_error, sweep, write, SMALL_GMM};

/// A tiny distillation sweep: an 8-step teacher, round 2's student at 2 steps.
const TINY: &str = r#"
seed: 4
num_samples: 200
data: {kind: gmm, means: [[-1.0, 0.0], [1.0, 0.0]], stds: [0.2, 0.2], weights: [0.5, 0.5]}
schedule: vp
weighting: sigma_squared
network: {kind: mlp, hidden: 32, layers: 2, parameterisation: v}
train: {steps: 150, batch_size: 64, train_size: 500, log_every: 50}
distill: {rounds: 2, teacher_steps: 8, steps: 60, lr: 0.0005, batch_size: 64}
sampler: {kind: ddim, eta: 0, steps: 2}
eval: [fd]
"#;

fn models(results: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(results.join("tiny/models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Round 2 is saved beside round 1 and the teacher; a later run loads round 2 itself (the
/// teacher and round 1 are not needed, nor rebuilt) with identical numbers, and round 3
/// builds on the saved round 2.
#[test]
fn rounds_are_models_loaded_and_built_on() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "tiny.yaml", TINY);
    let results = dir.path().join("results");
    let first = sweep(&file, &[], &results).unwrap();
    assert_eq!(first.failed, 0, "{:?}", first.rows[0].message);
    let trials = resolve(TINY, &[]).unwrap();
    let plan = trials[0].distill.as_ref().unwrap();
    let ids: Vec<String> = plan.rounds.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(trials[0].train_id, ids[2]);
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(models(&results), expected);
    let config: serde_json::Value = serde_yaml::from_str(
        &fs::read_to_string(
            results
                .join("tiny/models")
                .join(&ids[1])
                .join("train_config.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(config["distill"]["rounds"], 1);

    // Without the trial, the teacher and round 1: round 2 is loaded, not distilled again.
    fs::remove_dir_all(results.join("tiny/trials")).unwrap();
    for id in &ids[..2] {
        fs::remove_dir_all(results.join("tiny/models").join(id)).unwrap();
    }
    let second = sweep(&file, &[], &results).unwrap();
    assert_eq!(second.skipped, 0);
    assert_eq!(second.rows[0].metrics["fd"], first.rows[0].metrics["fd"]);
    assert_eq!(models(&results), vec![ids[2].clone()]);

    // Round 3 starts from the saved round 2.
    let third = sweep(&file, &["distill.rounds=3", "sampler.steps=1"], &results).unwrap();
    assert_eq!(third.failed, 0, "{:?}", third.rows[0].message);
    assert_eq!(models(&results).len(), 2);
    let round3 = resolve(TINY, &["distill.rounds=3", "sampler.steps=1"]).unwrap();
    assert_eq!(round3[0].distill.as_ref().unwrap().rounds[2].id, ids[2]);
    assert!(models(&results).contains(&round3[0].train_id));
}

/// `rounds: 0` (or a `distill` section at its defaults) is recorded nowhere: trial and
/// model ids are those of the file without it; `auto` at the teacher's step count records
/// the section but trains no student.
#[test]
fn rounds_zero_keeps_every_id() {
    let plain = resolve(SMALL_GMM, &[]).unwrap();
    let with = SMALL_GMM.to_string() + "distill: {rounds: 0, teacher_steps: 32, steps: 7}\n";
    let zero = resolve(&with, &[]).unwrap();
    assert_eq!(plain[0].id, zero[0].id);
    assert_eq!(plain[0].train_id, zero[0].train_id);
    assert!(zero[0].resolved.get("distill").is_none());
    assert!(zero[0].distill.is_none());

    let auto = resolve(TINY, &["distill.rounds=auto", "sampler.steps=8"]).unwrap();
    let teacher = resolve(TINY, &["distill.rounds=0", "sampler.steps=8"]).unwrap();
    assert_eq!(auto[0].resolved["distill"]["rounds"], 0);
    assert_ne!(auto[0].id, teacher[0].id);
    assert_eq!(auto[0].train_id, teacher[0].train_id);
    assert!(auto[0].distill.is_none());
    // `auto` at 2 steps is round 2, the same trial as `rounds: 2`.
    let auto2 = resolve(TINY, &["distill.rounds=auto"]).unwrap();
    let two = resolve(TINY, &[]).unwrap();
    assert_eq!(auto2[0].id, two[0].id);
    assert_eq!(auto2[0].train_id, two[0].train_id);
}

/// Each refusal names the file, the key and the fix.
#[test]
fn bad_distillation_input_is_refused() {
    let cases: [(&[&str], &[&str]); 8] = [
        (
            &["sampler.steps=4"],
            &[
                "`sampler.steps`",
                "round 2's student takes 2 steps",
                "zip: {distill.rounds",
            ],
        ),
        (
            &["sampler={kind: heun, steps: 2}"],
            &[
                "`sampler.kind`",
                "deterministic DDIM",
                "kind: ddim, eta: 0, steps: 2",
            ],
        ),
        (
            &["sampler.eta=1"],
            &["`sampler.kind`", "deterministic DDIM"],
        ),
        (
            &["sampler.grid=karras"],
            &["`sampler.grid`", "remove `sampler.grid`"],
        ),
        (
            &["distill.teacher_steps=6"],
            &["`distill.rounds`", "not a multiple of 2^2", "at most 1"],
        ),
        (
            &["distill.rounds=auto", "sampler.steps=3"],
            &["`distill.rounds`", "`auto`", "halved"],
        ),
        (&["distill.rounds=-1"], &["distill.rounds", "negative"]),
        (&["distill.lr=0"], &["`distill.lr`", "distill.lr: 0.0001"]),
    ];
    for (overrides, expected) in cases {
        let message = resolve_error(TINY, overrides);
        assert!(message.contains("exp.yaml"), "{message}");
        for text in expected {
            assert!(
                message.contains(text),
                "{overrides:?}: `{text}` missing from: {message}"
            );
        }
    }
    let exact = TINY.replace(
        "network: {kind: mlp, hidden: 32, layers: 2, parameterisation: v}",
        "network: oracle",
    );
    let message = resolve_error(&exact, &[]);
    assert!(
        message.contains("`distill.rounds`") && message.contains("exact"),
        "{message}"
    );
    // `euler` takes the same step as deterministic DDIM in sigma space: accepted.
    assert!(resolve(TINY, &["sampler={kind: euler, steps: 2}"]).is_ok());
}
