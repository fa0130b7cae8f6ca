use candle_core::Device;
use scorelab::analytic::GaussianMixture;
use scorelab::network::sigma_column;
use scorelab::network::ScoreModel;
use scorelab::rng::Rng;

use crate::common::{resolve, SMALL_GMM};

fn mixture() -> GaussianMixture {
    GaussianMixture::new(
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
    .unwrap()
}

#[test]
fn mixture_score_is_the_gradient_of_the_noised_log_density() {
    let m = mixture();
    let mut rng = Rng::from_seed(11);
    for sigma in [0.0, 0.1, 1.0, 5.0] {
        for _ in 0..20 {
            let x: Vec<f64> = (0..3).map(|_| 3.0 * rng.normal()).collect();
            let score = m.score(&x, sigma);
            for d in 0..3 {
                let h = 1e-5;
                let (mut up, mut down) = (x.clone(), x.clone());
                up[d] += h;
                down[d] -= h;
                let fd = (m.log_density(&up, sigma) - m.log_density(&down, sigma)) / (2.0 * h);
                assert!(
                    (fd - score[d]).abs() < 1e-5 * (1.0 + fd.abs()),
                    "sigma {sigma}, d {d}: {fd} vs {}",
                    score[d]
                );
            }
        }
    }
}

#[test]
fn mixture_density_integrates_to_one() {
    // A 1D mixture on a fine grid: the noised density still integrates to 1.
    let m = GaussianMixture::new(
        vec![0.7, 0.3],
        vec![vec![-1.0], vec![2.0]],
        vec![vec![0.3], vec![0.5]],
    )
    .unwrap();
    for sigma in [0.0, 0.5, 2.0] {
        let step = 0.001;
        let total: f64 = (0..40000)
            .map(|i| (m.log_density(&[-20.0 + i as f64 * step], sigma)).exp() * step)
            .sum();
        assert!((total - 1.0).abs() < 1e-6, "sigma {sigma}: {total}");
    }
}

#[test]
fn oracle_network_returns_the_mixture_score() {
    let trials = resolve(SMALL_GMM, &["network=oracle"]).unwrap();
    let trial = &trials[0];
    assert!(!trial.architecture.trainable());
    let network = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    let x = trial.held_out.head(50);
    let sigmas: Vec<f64> = (0..50).map(|i| 0.1 + 0.1 * i as f64).collect();
    let score = network
        .score(
            &x.to_tensor(&Device::Cpu).unwrap(),
            &sigma_column(&sigmas, &Device::Cpu).unwrap(),
        )
        .unwrap();
    let score = score.to_vec2::<f32>().unwrap();
    let mixture = trial.dataset.mixture().unwrap();
    for i in 0..50 {
        let exact = mixture.score(x.row(i), sigmas[i]);
        for d in 0..2 {
            // Inputs pass through f32, so compare with an f32-sized tolerance.
            assert!(
                (score[i][d] as f64 - exact[d]).abs() < 1e-4 * (1.0 + exact[d].abs()),
                "{} vs {}",
                score[i][d],
                exact[d]
            );
        }
    }
}
