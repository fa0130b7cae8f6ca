use nalgebra::{DMatrix, DVector};
use scorelab::analytic::GaussianMixture;
use scorelab::dataset::Samples;
use scorelab::metric::frechet::{frechet_distance, mean_and_covariance};
use scorelab::metric::{Metric, MetricInput};
use scorelab::plugins::metrics::mmd::mmd_squared;
use scorelab::plugins::metrics::mode_weights::{mode_weight_tv, Assignment};
use scorelab::plugins::metrics::sliced_wasserstein::wasserstein_1d_squared;
use scorelab::rng::Rng;

use crate::common::{resolve, SMALL_GMM};

/// Scores `samples` against `reference` with `metric`, the trial giving dataset and model.
pub(crate) fn measure(
    metric: &dyn Metric,
    trial: &scorelab::trial::Trial,
    samples: &Samples,
    reference: &Samples,
    seed: u64,
) -> f64 {
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    metric
        .compute(&MetricInput {
            samples,
            reference,
            dataset: trial.dataset.as_ref(),
            seed,
            model: &model,
            schedule: trial.schedule.as_ref(),
            device: &trial.device,
            features: None,
        })
        .unwrap()
        .value
}

fn gaussian(n: usize, mean: [f64; 2], std: f64, seed: u64) -> Samples {
    let mut rng = Rng::from_seed(seed);
    Samples::new(
        2,
        (0..n)
            .flat_map(|_| [mean[0] + std * rng.normal(), mean[1] + std * rng.normal()])
            .collect(),
    )
}

#[test]
fn frechet_distance_of_two_known_gaussians_is_the_closed_form() {
    // C1 = 2 I, C2 = R diag(4, 9) R^T: tr sqrt(C1^1/2 C2 C1^1/2) = sqrt(2) * (2 + 3).
    let angle: f64 = 0.7;
    let rotation =
        DMatrix::from_row_slice(2, 2, &[angle.cos(), -angle.sin(), angle.sin(), angle.cos()]);
    let c2 = &rotation
        * DMatrix::from_diagonal(&DVector::from_vec(vec![4.0, 9.0]))
        * rotation.transpose();
    let c1 = DMatrix::identity(2, 2) * 2.0;
    let mu1 = DVector::from_vec(vec![1.0, 2.0]);
    let mu2 = DVector::from_vec(vec![-1.0, 0.5]);
    let expected = (4.0 + 2.25) + 4.0 + 13.0 - 2.0 * 2f64.sqrt() * 5.0;
    let fd = frechet_distance(&mu1, &c1, &mu2, &c2).unwrap();
    assert!((fd - expected).abs() < 1e-10, "{fd} vs {expected}");
    // Diagonal case: |dmu|^2 + sum (sqrt(a) - sqrt(b))^2.
    let d1 = DMatrix::from_diagonal(&DVector::from_vec(vec![1.0, 4.0]));
    let d2 = DMatrix::from_diagonal(&DVector::from_vec(vec![9.0, 16.0]));
    let fd = frechet_distance(&mu1, &d1, &mu1, &d2).unwrap();
    assert!((fd - (4.0 + 4.0)).abs() < 1e-10, "{fd}");
}

#[test]
fn fd_and_mmd_of_a_set_with_itself_are_zero() {
    let points = gaussian(1000, [1.0, -2.0], 1.5, 1);
    let (mu, c) = mean_and_covariance(&points);
    assert!(frechet_distance(&mu, &c, &mu, &c).unwrap().abs() < 1e-9);
    let same = mmd_squared(&points, &points, 1.0);
    assert!(same.abs() < 2e-3, "{same}");
    // Independent sets from one distribution: near 0; shifted: clearly positive.
    let other = gaussian(1000, [1.0, -2.0], 1.5, 2);
    let shifted = gaussian(1000, [2.0, -2.0], 1.5, 3);
    let near = mmd_squared(&points, &other, 1.0);
    let far = mmd_squared(&points, &shifted, 1.0);
    assert!(near.abs() < 3e-3, "{near}");
    assert!(far > 10.0 * near.abs().max(1e-4), "{far} vs {near}");
}

#[test]
fn sliced_wasserstein_of_a_shift_is_its_length_over_sqrt2() {
    // In 2D, E[(theta . c)^2] = |c|^2 / 2 over random unit directions theta.
    let trials = resolve(SMALL_GMM, &[]).unwrap();
    let points = gaussian(500, [0.0, 0.0], 1.0, 4);
    let shift = [3.0, 4.0];
    let moved = Samples::new(
        2,
        points
            .rows()
            .flat_map(|r| [r[0] + shift[0], r[1] + shift[1]])
            .collect(),
    );
    let sw = SlicedWassersteinFixture::new(2000).compute(&trials[0], &moved, &points);
    let expected = 5.0 / 2f64.sqrt();
    assert!(
        (sw - expected).abs() < 0.05 * expected,
        "{sw} vs {expected}"
    );
    let zero = SlicedWassersteinFixture::new(64).compute(&trials[0], &points, &points);
    assert!(zero.abs() < 1e-12);
}

#[test]
fn sliced_wasserstein_is_exact_for_unequal_set_sizes() {
    // {0, 1} against {0, 0, 3}: the quantile functions differ by 0 on (0, 1/2), by 1 on
    // (1/2, 2/3) and by 2 on (2/3, 1), so W2^2 = 1/6 + 4/3 = 3/2. In 1D every direction is
    // +-1, so the sliced distance is W2 itself.
    assert_eq!(
        wasserstein_1d_squared(vec![1.0, 0.0], vec![3.0, 0.0, 0.0]),
        1.5
    );
    assert_eq!(
        wasserstein_1d_squared(vec![3.0, 0.0, 0.0], vec![1.0, 0.0]),
        1.5
    );
    let trials = resolve(SMALL_GMM, &[]).unwrap();
    let sw = SlicedWassersteinFixture::new(8).compute(
        &trials[0],
        &Samples::new(1, vec![0.0, 1.0]),
        &Samples::new(1, vec![0.0, 0.0, 3.0]),
    );
    assert!((sw - 1.5f64.sqrt()).abs() < 1e-12, "{sw}");

    // Against the same integral on a fine grid of quantile levels, for sizes 7 and 5 (no
    // common divisor) and 6 and 4.
    let mut rng = Rng::from_seed(3);
    for (n, m) in [(7, 5), (6, 4), (1, 9)] {
        let a: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let b: Vec<f64> = (0..m).map(|_| 2.0 * rng.normal() + 1.0).collect();
        let sorted = |v: &[f64]| {
            let mut v = v.to_vec();
            v.sort_by(f64::total_cmp);
            v
        };
        let (sa, sb) = (sorted(&a), sorted(&b));
        let steps = 7 * 5 * 6 * 4 * 9 * 10;
        let grid: f64 = (0..steps)
            .map(|k| {
                let q = (k as f64 + 0.5) / steps as f64;
                let x = sa[(q * n as f64) as usize];
                let y = sb[(q * m as f64) as usize];
                (x - y).powi(2)
            })
            .sum::<f64>()
            / steps as f64;
        let exact = wasserstein_1d_squared(a, b);
        assert!(
            (exact - grid).abs() < 1e-9 * grid.max(1.0),
            "{n} vs {m}: {exact} {grid}"
        );
    }
}

/// Builds the registered plugin with a given number of projections.
struct SlicedWassersteinFixture(Box<dyn Metric>);

impl SlicedWassersteinFixture {
    fn new(projections: usize) -> Self {
        let yaml = format!(
            "{}eval: [{{kind: sliced_wasserstein, projections: {projections}}}]\n",
            SMALL_GMM.replace("eval: [fd, mmd, mode_weights]\n", "")
        );
        let mut trials = resolve(&yaml, &[]).unwrap();
        let (_, metric) = trials[0].metrics.remove(0);
        SlicedWassersteinFixture(metric)
    }

    fn compute(
        &self,
        trial: &scorelab::trial::Trial,
        samples: &Samples,
        reference: &Samples,
    ) -> f64 {
        measure(self.0.as_ref(), trial, samples, reference, 9)
    }
}

#[test]
fn mode_weights_is_the_total_variation_of_shares() {
    let mixture = GaussianMixture::new(
        vec![0.8, 0.2],
        vec![vec![-5.0, -5.0], vec![5.0, 5.0]],
        vec![vec![1.0, 1.0]; 2],
    )
    .unwrap();
    // 50 points near the first mode and 50 near the second: shares 0.5 / 0.5, TV = 0.3.
    let points = Samples::new(
        2,
        (0..100)
            .flat_map(|i| if i < 50 { [-4.0, -6.0] } else { [6.0, 4.0] })
            .collect(),
    );
    assert!((mode_weight_tv(&mixture, &points, Assignment::Nearest) - 0.3).abs() < 1e-12);
    // Ten standard deviations from the other mean, the posterior is 1 to within 1e-40.
    assert!((mode_weight_tv(&mixture, &points, Assignment::Posterior) - 0.3).abs() < 1e-12);
    let exact = mixture.sample(20000, &mut Rng::from_seed(8));
    assert!(mode_weight_tv(&mixture, &exact, Assignment::Posterior) < 0.01);
}

#[test]
fn posterior_shares_of_an_overlapping_mixture_are_unbiased_and_nearest_are_not() {
    // Means 2 apart with stds 0.5 and 1.5: much of the wide component lies nearer the narrow
    // one's mean. Nearest-mean shares move mass to the narrow component; posterior shares
    // average p(k | x), whose expectation under exact samples is w_k.
    let mixture = GaussianMixture::new(
        vec![0.3, 0.7],
        vec![vec![0.0, 0.0], vec![2.0, 0.0]],
        vec![vec![0.5, 0.5], vec![1.5, 1.5]],
    )
    .unwrap();
    let exact = mixture.sample(40000, &mut Rng::from_seed(21));
    let posterior = mode_weight_tv(&mixture, &exact, Assignment::Posterior);
    let nearest = mode_weight_tv(&mixture, &exact, Assignment::Nearest);
    assert!(posterior < 0.01, "posterior TV {posterior}");
    assert!(
        nearest > 0.03,
        "nearest-mean TV {nearest} should show its bias"
    );
}

#[test]
fn nll_true_of_exact_samples_is_the_entropy() {
    // One standard 2D Gaussian: entropy 1 + ln(2 pi) = 2.8379 nats.
    let yaml = SMALL_GMM
        .replace("means: [[-5.0, -5.0], [5.0, 5.0]]", "means: [[0.0, 0.0]]")
        .replace("stds: [1.0, 1.0]", "stds: [1.0]")
        .replace("weights: [0.8, 0.2]", "weights: [1.0]")
        .replace("eval: [fd, mmd, mode_weights]", "eval: [nll_true]");
    let trials = resolve(&yaml, &[]).unwrap();
    let trial = &trials[0];
    let samples = trial.dataset.sample(40000, &mut Rng::from_seed(12));
    let nll = measure(
        trial.metrics[0].1.as_ref(),
        trial,
        &samples,
        &trial.held_out,
        0,
    );
    let entropy = 1.0 + (2.0 * std::f64::consts::PI).ln();
    assert!((nll - entropy).abs() < 0.02, "{nll} vs {entropy}");
}

#[test]
fn every_sample_metric_refuses_non_finite_samples_and_says_how_many() {
    let trials = resolve(
        &format!(
            "{}eval: [fd, mmd, sliced_wasserstein, mode_weights, {{kind: nll_true, of: samples}}]\n",
            SMALL_GMM.replace("eval: [fd, mmd, mode_weights]\n", "")
        ),
        &[],
    )
    .unwrap();
    let trial = &trials[0];
    let mut values: Vec<f64> = gaussian(50, [5.0, 5.0], 1.0, 2).as_slice().to_vec();
    values[7] = f64::NAN;
    values[20] = f64::INFINITY;
    let samples = Samples::new(2, values);
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    for (name, metric) in &trial.metrics {
        let input = MetricInput {
            samples: &samples,
            reference: &trial.held_out,
            dataset: trial.dataset.as_ref(),
            seed: 1,
            model: &model,
            schedule: trial.schedule.as_ref(),
            device: &trial.device,
            features: None,
        };
        let error = metric
            .compute(&input)
            .err()
            .unwrap_or_else(|| panic!("{name} scored samples with a NaN and an inf"));
        assert!(
            error.contains("2 of 50 samples are not finite"),
            "{name}: {error}"
        );
    }
}

#[test]
fn mmd_records_its_bandwidth_the_upper_median_of_reference_distances() {
    let trials = resolve(SMALL_GMM, &[]).unwrap();
    let trial = &trials[0];
    let (_, mmd) = trial.metrics.iter().find(|(n, _)| n == "mmd").unwrap();
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    // Four reference points on a line: distances 1, 2, 3, 1, 2, 1; sorted, element 3 is 2.
    let reference = Samples::new(2, vec![0.0, 0.0, 1.0, 0.0, 2.0, 0.0, 3.0, 0.0]);
    let samples = gaussian(6, [0.0, 0.0], 1.0, 1);
    let measured = mmd
        .compute(&MetricInput {
            samples: &samples,
            reference: &reference,
            dataset: trial.dataset.as_ref(),
            seed: 1,
            model: &model,
            schedule: trial.schedule.as_ref(),
            device: &trial.device,
            features: None,
        })
        .unwrap();
    assert_eq!(
        measured.facts,
        vec![(
            "bandwidth",
            "2 (auto: upper median of held-out distances)".to_string()
        )]
    );
    assert_eq!(measured.value, mmd_squared(&samples, &reference, 2.0));
}
