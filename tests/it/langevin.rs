//! Annealed Langevin with the exact score: many levels recover a mixture's weights, one
//! small level does not (the samples stay in the basin where they started).

use scorelab::evaluate::{evaluate, Around};
use scorelab::plugins::metrics::mode_weights::{mode_shares, mode_weight_tv, Assignment};
use scorelab::rng::Rng;

use crate::common::resolve;

const WELL_SEPARATED: &str = r#"
seed: 5
num_samples: 2000
data:
  kind: gmm
  means: [[-5.0, -5.0], [5.0, 5.0]]
  stds: [1.0, 1.0]
  weights: [0.8, 0.2]
schedule: {kind: geometric, num_levels: 10, sigma_max: auto, sigma_min: 0.1}
weighting: sigma_squared
network: oracle
train: {train_size: 2000}
sampler: {kind: annealed_langevin, steps_per_level: 100, eps: 0.002}
eval: [mode_weights]
"#;

fn tv_of(overrides: &[&str]) -> (f64, Vec<f64>, u64) {
    let trials = resolve(WELL_SEPARATED, overrides).unwrap();
    let trial = &trials[0];
    let network = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    let evaluation = evaluate(trial, &network, &Around::default(), &mut |_| {}).unwrap();
    let mixture = trial.dataset.mixture().unwrap();
    (
        mode_weight_tv(mixture, &evaluation.samples, Assignment::Posterior),
        mode_shares(mixture, &evaluation.samples, Assignment::Posterior),
        evaluation.nfe,
    )
}

#[test]
fn ten_levels_recover_mode_weights_and_one_small_level_does_not() {
    let (tv_annealed, shares, nfe) = tv_of(&[]);
    assert_eq!(
        nfe,
        10 * 100 + 1,
        "T steps per level plus the final denoising step"
    );
    assert!(
        tv_annealed < 0.04,
        "10 levels: TV {tv_annealed}, shares {shares:?}"
    );

    let (tv_single, shares_single, nfe_single) = tv_of(&["schedule.num_levels=1"]);
    assert_eq!(nfe_single, 100 + 1);
    // Started from the broad prior, samples split by basin (about half each), not 80/20.
    assert!(
        tv_single > 0.2,
        "1 small level: TV {tv_single}, shares {shares_single:?}"
    );
    assert!(tv_single > 5.0 * tv_annealed);
}
