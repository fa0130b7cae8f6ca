use candle_core::{Device, Tensor};
use scorelab::network::sigma_column;
use scorelab::network::ScoreModel;
use scorelab::optim::sorted_vars;
use scorelab::rng::Rng;
use scorelab::train::train;

use crate::common::resolve;

const TRAINING: &str = r#"
seed: 1
num_samples: 500
data:
  kind: gmm
  means: [[-2.0, 0.0], [2.0, 0.0]]
  stds: [0.5, 0.5]
  weights: [0.5, 0.5]
schedule: {kind: geometric, num_levels: 8, sigma_max: 4.0, sigma_min: 0.1}
weighting: sigma_squared
network: {kind: mlp, hidden: 64, layers: 3, embedding: 16}
train: {steps: 3000, batch_size: 128, lr: 0.003, ema_decay: 0.995, train_size: 4000, log_every: 200}
sampler: annealed_langevin
"#;

#[test]
fn every_parameter_receives_a_nonzero_gradient() {
    let trials = resolve(TRAINING, &[]).unwrap();
    let trial = &trials[0];
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    let x = trial
        .training_data
        .head(64)
        .to_tensor(&Device::Cpu)
        .unwrap();
    let sigmas: Vec<f64> = (0..64).map(|i| 0.1 + 0.05 * i as f64).collect();
    let sigma = sigma_column(&sigmas, &Device::Cpu).unwrap();
    let z = Tensor::randn(0f32, 1f32, (64, 2), &Device::Cpu).unwrap();
    let noisy = (x + z.broadcast_mul(&sigma).unwrap()).unwrap();
    let score = model.score(&noisy, &sigma).unwrap();
    let loss = score
        .broadcast_mul(&sigma)
        .unwrap()
        .add(&z)
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let vars = sorted_vars(model.network().unwrap().variables());
    assert_eq!(
        vars.len(),
        2 * (1 + 3 + 2 + 1),
        "input, 3 conditions, 2 hidden, output"
    );
    for (name, var) in vars {
        let grad = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} has no gradient"));
        let size = grad
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(size > 0.0, "{name} has a zero gradient");
    }
}

/// Mean DSM loss 0.5 * ||sigma * s + z||^2 of `model` on one fixed batch.
fn fixed_batch_loss(
    model: &dyn scorelab::network::ScoreModel,
    trial: &scorelab::trial::Trial,
) -> f64 {
    let mut rng = Rng::from_seed(99);
    let n = 4000;
    let indices: Vec<usize> = (0..n)
        .map(|_| rng.below(trial.training_data.len()))
        .collect();
    let x0 = trial
        .training_data
        .gather(&indices)
        .to_tensor(&Device::Cpu)
        .unwrap();
    let draws = trial.schedule.training_sigmas(n, &mut rng);
    let sigmas: Vec<f64> = draws.iter().map(|(s, _)| *s).collect();
    let sigma = sigma_column(&sigmas, &Device::Cpu).unwrap();
    let z = Tensor::from_vec(rng.normal_f32(2 * n), (n, 2), &Device::Cpu).unwrap();
    let noisy = x0.add(&z.broadcast_mul(&sigma).unwrap()).unwrap();
    let score = model.score(&noisy, &sigma).unwrap();
    let residual = score.broadcast_mul(&sigma).unwrap().add(&z).unwrap();
    (residual.sqr().unwrap().sum(1).unwrap() * 0.5)
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap() as f64
}

#[test]
fn training_lowers_the_loss_and_approaches_the_oracle_score() {
    let trials = resolve(TRAINING, &[]).unwrap();
    let trial = &trials[0];
    let network = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    let untrained = fixed_batch_loss(&network, trial);
    let history = train(
        &network,
        &trial.train_job(trial.training_data.clone()),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(history.steps.len(), 15);
    assert!(
        history.final_level_loss.iter().all(|l| l.is_finite()),
        "every level was trained"
    );
    assert!(
        history.loss.last().unwrap() < &history.loss[0],
        "{:?}",
        history.loss
    );

    // The DSM loss has a floor the exact score attains; training closes most of the gap.
    let oracle_trials = resolve(TRAINING, &["network=oracle"]).unwrap();
    let oracle = oracle_trials[0].new_model(&mut Rng::from_seed(0)).unwrap();
    let floor = fixed_batch_loss(&oracle, trial);
    let trained = fixed_batch_loss(&network, trial);
    assert!(
        trained - floor < 0.1 * (untrained - floor),
        "untrained {untrained}, trained {trained}, exact score {floor}"
    );

    // At a moderate trained noise level (about 1.4), the trained (EMA) score is close to
    // the exact one.
    let mixture = trial.dataset.mixture().unwrap();
    let sigma = trial.schedule.loss_levels()[2];
    let mut rng = Rng::from_seed(77);
    let points: Vec<Vec<f64>> = trial
        .held_out
        .head(400)
        .rows()
        .map(|r| vec![r[0] + sigma * rng.normal(), r[1] + sigma * rng.normal()])
        .collect();
    let x = scorelab::dataset::Samples::from_rows(&points);
    let predicted = network
        .score(
            &x.to_tensor(&Device::Cpu).unwrap(),
            &sigma_column(&vec![sigma; 400], &Device::Cpu).unwrap(),
        )
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let (mut error, mut norm) = (0.0, 0.0);
    for (p, row) in predicted.iter().zip(&points) {
        let exact = mixture.score(row, sigma);
        for d in 0..2 {
            error += (p[d] as f64 - exact[d]).powi(2);
            norm += exact[d].powi(2);
        }
    }
    let relative = (error / norm).sqrt();
    assert!(
        relative < 0.15,
        "relative score error at sigma = {sigma}: {relative}"
    );
}
