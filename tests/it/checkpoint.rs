//! Training checkpoints: a run stopped at any step and resumed from its snapshot ends with
//! exactly the weights and loss history of a run never stopped (Adam's moments, the EMA,
//! the training-noise stream and the U-Net's dropout stream all carried over).

use scorelab::optim::sorted_vars;
use scorelab::rng::{Rng, Stream};
use scorelab::train::{self, train_resumable, Hooks, LevelState, Snapshot, TrainError};
use scorelab::trial::Trial;

use crate::common::resolve;

const MLP: &str = r#"
seed: 4
num_samples: 50
data: {kind: gmm, means: [[-2.0, 0.0], [2.0, 0.0]], stds: [0.5, 0.5], weights: [0.5, 0.5]}
schedule: {kind: geometric, num_levels: 6, sigma_max: 4.0, sigma_min: 0.1}
weighting: sigma_squared
network: {kind: mlp, hidden: 16, layers: 2, embedding: 8}
train: {steps: 37, batch_size: 16, ema_decay: 0.9, train_size: 200, log_every: 5}
sampler: annealed_langevin
"#;

const UNET_WITH_DROPOUT: &str = r#"
seed: 2
num_samples: 20
data: {kind: shapes, size: 8, channels: 1}
schedule: edm
weighting: edm
network: {kind: unet, channels: 8, channel_mult: [1], attention_resolutions: [], groups: 4, dropout: 0.3, parameterisation: edm}
train: {steps: 6, batch_size: 4, train_size: 40, log_every: 2}
sampler: {kind: euler, steps: 2}
"#;

fn final_weights(model: &scorelab::parameterisation::Model) -> Vec<Vec<f32>> {
    sorted_vars(model.network().unwrap().variables())
        .iter()
        .map(|(_, v)| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

/// The final weights (EMA) and history of training `trial`; with `stop_at`, the run is
/// stopped after that step and a fresh model (as a new process would build) continues from
/// the snapshot the stop wrote, read back from its bytes.
fn trained(trial: &Trial, stop_at: Option<usize>) -> (Vec<Vec<f32>>, train::History) {
    let fresh = || {
        trial
            .new_model(&mut Rng::new(trial.settings.seed, Stream::NetworkInit))
            .unwrap()
    };
    let model = fresh();
    let names: Vec<String> = sorted_vars(model.network().unwrap().variables())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let config = trial.training.to_string();
    let mut saved: Option<Vec<u8>> = None;
    let polls = std::cell::Cell::new(0usize);
    let first = train_resumable(
        &model,
        &trial.train_job(trial.training_data.clone()),
        None,
        Hooks {
            on_log: &mut |_| {},
            snapshot_every: 0,
            on_snapshot: Box::new(|snapshot: &Snapshot| {
                saved = Some(snapshot.to_bytes(&names, &config)?);
                Ok(())
            }),
            // Polled once after every step but the last.
            stop_requested: &|| {
                polls.set(polls.get() + 1);
                Some(polls.get()) == stop_at
            },
        },
    );
    match first {
        Ok(history) => {
            assert_eq!(stop_at, None);
            (final_weights(&model), history)
        }
        Err(TrainError::Interrupted { step, .. }) => {
            assert_eq!(Some(step), stop_at);
            let snapshot = Snapshot::from_bytes(
                saved
                    .as_deref()
                    .expect("a snapshot was written at the stop"),
                &names,
                &config,
                &trial.device,
            )
            .unwrap();
            assert_eq!(snapshot.progress.step, step);
            let model = fresh();
            let history = train_resumable(
                &model,
                &trial.train_job(trial.training_data.clone()),
                Some(snapshot),
                Hooks {
                    on_log: &mut |_| {},
                    snapshot_every: 0,
                    on_snapshot: Box::new(|_| Ok(())),
                    stop_requested: &|| false,
                },
            )
            .unwrap();
            (final_weights(&model), history)
        }
        Err(other) => panic!("{other}"),
    }
}

fn assert_resumes_exactly(text: &str, stops: &[usize]) {
    let trials = resolve(text, &[]).unwrap();
    let (weights, history) = trained(&trials[0], None);
    for &stop in stops {
        let (resumed, resumed_history) = trained(&trials[0], Some(stop));
        assert_eq!(
            resumed, weights,
            "weights differ after a stop at step {stop}"
        );
        assert_eq!(resumed_history.steps, history.steps);
        assert_eq!(resumed_history.loss, history.loss, "stop at {stop}");
        assert_eq!(
            format!("{:?}", resumed_history.final_level_loss),
            format!("{:?}", history.final_level_loss)
        );
    }
}

#[test]
fn an_mlp_resumed_at_any_step_matches_an_uninterrupted_run() {
    // Mid-window, on a log step, inside the last quarter (the tail window), the step before
    // the last.
    assert_resumes_exactly(MLP, &[1, 7, 10, 30, 36]);
}

#[test]
fn a_unet_with_dropout_resumes_its_dropout_stream() {
    assert_resumes_exactly(UNET_WITH_DROPOUT, &[3]);
}

#[test]
fn a_snapshot_is_refused_under_another_training_config() {
    let trials = resolve(MLP, &[]).unwrap();
    let trial = &trials[0];
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    let names: Vec<String> = sorted_vars(model.network().unwrap().variables())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let mut bytes = None;
    let _ = train_resumable(
        &model,
        &trial.train_job(trial.training_data.clone()),
        None,
        Hooks {
            on_log: &mut |_| {},
            snapshot_every: 0,
            on_snapshot: Box::new(|s: &Snapshot| {
                bytes = Some(s.to_bytes(&names, "config A")?);
                Ok(())
            }),
            stop_requested: &|| true,
        },
    );
    let bytes = bytes.unwrap();
    let error = Snapshot::<LevelState>::from_bytes(&bytes, &names, "config B", &trial.device)
        .err()
        .unwrap();
    assert!(error.contains("another training config"), "{error}");
    let error = Snapshot::<LevelState>::from_bytes(
        &bytes[..bytes.len() / 2],
        &names,
        "config A",
        &trial.device,
    )
    .err()
    .expect("a torn snapshot is refused");
    assert!(!error.is_empty());
}

#[test]
fn a_generator_continues_exactly_from_its_state() {
    let mut rng = Rng::new(9, Stream::Sampling);
    // An odd number of 32-bit words in, so the state falls inside a ChaCha block.
    let _ = (rng.normal(), rng.below(7), rng.uniform(), rng.normal_f32(3));
    let state = rng.state();
    let mut resumed = Rng::from_state(&state).unwrap();
    for _ in 0..100 {
        assert_eq!(rng.normal().to_bits(), resumed.normal().to_bits());
        assert_eq!(rng.below(1000), resumed.below(1000));
    }
    let mut broken = state.clone();
    broken.seed.truncate(10);
    assert!(Rng::from_state(&broken).is_err());
}
