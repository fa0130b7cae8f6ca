//! Feature-space metrics: FID against the Gaussian closed form, KID's unbiasedness, improved
//! precision/recall on mode dropping, class accuracy.

use nalgebra::DMatrix;
use scorelab::dataset::Samples;
use scorelab::features::FeatureSet;
use scorelab::metric::neighbours::{knn_radii, points_matrix, squared_distances};
use scorelab::metric::{Measured, MetricInput};
use scorelab::plugins::metrics::class_accuracy::class_accuracy;
use scorelab::plugins::metrics::coverage::coverage_density;
use scorelab::plugins::metrics::fid::feature_frechet_distance;
use scorelab::plugins::metrics::kid::{
    kernel_distance, kernel_distance_within, polynomial_kernel, polynomial_mmd,
};
use scorelab::plugins::metrics::precision_recall::precision_recall;
use scorelab::rng::Rng;
use scorelab::trial::Trial;

use crate::common::{replace_line, resolve, SMALL_GMM};

/// `n` points of N(mean, diag(stds²)).
fn gaussian(n: usize, mean: &[f64], stds: &[f64], rng: &mut Rng) -> Samples {
    let d = mean.len();
    let data = (0..n * d)
        .map(|i| mean[i % d] + stds[i % d] * rng.normal())
        .collect();
    Samples::new(d, data)
}

fn standard(n: usize, d: usize, shift: f64, rng: &mut Rng) -> Samples {
    gaussian(n, &vec![shift; d], &vec![1.0; d], rng)
}

#[test]
fn image_fid_of_two_gaussian_feature_sets_is_the_closed_form() {
    // Diagonal covariances: FD = |mu1 - mu2|² + Σ (s1 - s2)² with s the standard deviations.
    let mut rng = Rng::from_seed(1);
    let (mu1, s1) = ([0.0, 1.0, -1.0, 2.0], [1.0, 2.0, 3.0, 0.5]);
    let (mu2, s2) = ([1.0, 1.0, 0.0, 2.0], [2.0, 1.0, 1.0, 0.5]);
    let x = gaussian(40_000, &mu1, &s1, &mut rng);
    let y = gaussian(40_000, &mu2, &s2, &mut rng);
    let expected: f64 = mu1
        .iter()
        .zip(&mu2)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        + s1.iter()
            .zip(&s2)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>();
    assert_eq!(expected, 8.0);
    let fid = feature_frechet_distance(&x, &y).unwrap();
    assert!(
        (fid - expected).abs() < 0.1,
        "FID {fid} vs closed form {expected}"
    );
}

#[test]
fn image_fid_of_a_set_with_itself_is_zero() {
    let mut rng = Rng::from_seed(2);
    let x = standard(300, 32, 0.5, &mut rng);
    let fid = feature_frechet_distance(&x, &x).unwrap();
    assert!(fid.abs() < 1e-8, "FID of a set with itself: {fid}");
    // A second draw of the same distribution is close to 0 but not 0 (finite-sample bias).
    let y = standard(300, 32, 0.5, &mut rng);
    let fid = feature_frechet_distance(&x, &y).unwrap();
    assert!(
        fid > 0.1 && fid < 10.0,
        "FID of two draws of one Gaussian: {fid}"
    );
}

#[test]
fn image_kid_of_a_tiny_set_matches_the_hand_computed_value() {
    // d = 1: k(a, b) = (ab + 1)³. X = {0, 1}, Y = {1, 2}.
    let x = Samples::new(1, vec![0.0, 1.0]);
    let y = Samples::new(1, vec![1.0, 2.0]);
    let kxx = 1.0; // k(0, 1)
    let kyy = 27.0; // k(1, 2)
    let kxy = 1.0 + 1.0 + 8.0 + 27.0; // k(0,1) + k(0,2) + k(1,1) + k(1,2)
    let expected = (2.0 * kxx + 2.0 * kyy) / 2.0 - 2.0 * kxy / 4.0;
    assert!((polynomial_mmd(&x, &y) - expected).abs() < 1e-12);
    let gram = polynomial_kernel(
        &DMatrix::from_row_slice(2, 1, &[0.0, 1.0]),
        &DMatrix::from_row_slice(2, 1, &[1.0, 2.0]),
    );
    assert_eq!(gram, DMatrix::from_row_slice(2, 2, &[1.0, 1.0, 8.0, 27.0]));
}

#[test]
fn image_kid_is_unbiased_for_two_samples_of_one_distribution() {
    // Over many independent pairs of sets, the mean MMD² is 0 within its standard error,
    // while the biased (V-statistic) estimate, which keeps the diagonals, is clearly positive:
    // the test can see a bias of that size.
    let (m, d, repeats) = (40, 8, 300);
    let mut rng = Rng::from_seed(3);
    let gram = |a: &Samples, b: &Samples| polynomial_kernel(&matrix(a), &matrix(b));
    let (mut unbiased, mut biased) = (Vec::new(), Vec::new());
    for _ in 0..repeats {
        let x = standard(m, d, 0.0, &mut rng);
        let y = standard(m, d, 0.0, &mut rng);
        unbiased.push(polynomial_mmd(&x, &y));
        // V-statistic: every pair, the diagonals included, over m².
        biased.push(
            (gram(&x, &x).sum() + gram(&y, &y).sum() - 2.0 * gram(&x, &y).sum()) / (m * m) as f64,
        );
    }
    let stats = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (v.len() - 1) as f64;
        (mean, (var / v.len() as f64).sqrt())
    };
    let (mean, error) = stats(&unbiased);
    assert!(
        mean.abs() < 3.0 * error,
        "unbiased KID mean {mean} vs standard error {error}"
    );
    let (biased_mean, biased_error) = stats(&biased);
    assert!(
        biased_mean > 10.0 * biased_error,
        "V-statistic {biased_mean} ± {biased_error} should be visibly biased"
    );
}

fn matrix(s: &Samples) -> DMatrix<f64> {
    DMatrix::from_row_slice(s.len(), s.dim(), s.as_slice())
}

#[test]
fn image_kid_is_near_zero_for_one_distribution_and_clearly_positive_when_shifted() {
    let mut rng = Rng::from_seed(4);
    let (x, y) = (
        standard(600, 16, 0.0, &mut rng),
        standard(600, 16, 0.0, &mut rng),
    );
    let same = kernel_distance(&x, &y, 50, 300, 7);
    assert_eq!(same.subset_size, 300);
    assert!(same.std > 0.0, "subsets differ, so their estimates do");
    assert!(
        same.mean.abs() < 3.0 * same.std,
        "KID {} ± {}",
        same.mean,
        same.std
    );
    let shifted = standard(600, 16, 0.3, &mut rng);
    let apart = kernel_distance(&x, &shifted, 50, 300, 7);
    assert!(
        apart.mean > 10.0 * same.std && apart.mean > 5.0 * apart.std,
        "shifted KID {apart:?} vs {same:?}"
    );
    // The subset size is capped at the smaller set; seeded, so a rerun repeats exactly.
    let small = kernel_distance(&x.head(100), &y, 5, 1000, 7);
    assert_eq!(small.subset_size, 100);
    assert_eq!(small, kernel_distance(&x.head(100), &y, 5, 1000, 7));
}

#[test]
fn image_kid_per_subset_kernels_give_the_whole_kernel_numbers() {
    let mut rng = Rng::from_seed(5);
    let (x, y) = (
        standard(120, 6, 0.0, &mut rng),
        standard(150, 6, 0.2, &mut rng),
    );
    let whole = kernel_distance_within(&x, &y, 10, 50, 9, usize::MAX);
    let per_subset = kernel_distance_within(&x, &y, 10, 50, 9, 0);
    assert!(
        (whole.mean - per_subset.mean).abs() < 1e-12 && (whole.std - per_subset.std).abs() < 1e-12,
        "{whole:?} vs {per_subset:?}"
    );
    // One subset as large as both sets is the whole-set estimate.
    let one = kernel_distance(&x, &y.head(120), 1, 120, 9);
    assert!((one.mean - polynomial_mmd(&x, &y.head(120))).abs() < 1e-12);
}

#[test]
fn image_blockwise_kid_equals_the_whole_kernel_formula_past_one_block() {
    // 1500 points: more than one 1024-point block, so the block pairs and the diagonal block's
    // i < j half are both exercised. One subset of every point is the whole-set estimate.
    let mut rng = Rng::from_seed(12);
    let (x, y) = (
        standard(1500, 4, 0.0, &mut rng),
        standard(1500, 4, 0.1, &mut rng),
    );
    let expected = polynomial_mmd(&x, &y);
    for limit in [0, usize::MAX] {
        let kid = kernel_distance_within(&x, &y, 1, 1500, 3, limit);
        assert!(
            (kid.mean - expected).abs() <= 1e-10 * expected.abs(),
            "limit {limit}: {} vs {expected}",
            kid.mean
        );
    }
}

/// Precision, recall, coverage and density from one whole distance matrix per pair of sets.
fn neighbour_metrics_by_whole_matrices(x: &Samples, y: &Samples, k: usize) -> [f64; 4] {
    let (mx, my) = (points_matrix(x), points_matrix(y));
    let radii = |m: &DMatrix<f64>| -> Vec<f64> {
        let whole = squared_distances(m, m);
        (0..m.nrows())
            .map(|i| {
                let mut others: Vec<f64> = (0..m.nrows())
                    .filter(|&j| j != i)
                    .map(|j| whole[(j, i)])
                    .collect();
                others.sort_by(f64::total_cmp);
                others[k - 1]
            })
            .collect()
    };
    let (rx, ry) = (radii(&mx), radii(&my));
    // Rows: the ball centres; columns: the queries.
    let inside = |centres: &DMatrix<f64>, r: &[f64], queries: &DMatrix<f64>| {
        let d = squared_distances(centres, queries);
        (0..queries.nrows())
            .map(|q| (0..centres.nrows()).filter(|&c| d[(c, q)] <= r[c]).count())
            .collect::<Vec<usize>>()
    };
    let share = |counts: &[usize]| counts.iter().filter(|&&c| c > 0).count() as f64;
    let in_reference = inside(&my, &ry, &mx);
    let in_samples = inside(&mx, &rx, &my);
    let d = squared_distances(&my, &mx);
    let covered = (0..my.nrows())
        .filter(|&c| (0..mx.nrows()).any(|q| d[(c, q)] <= ry[c]))
        .count();
    [
        share(&in_reference) / x.len() as f64,
        share(&in_samples) / y.len() as f64,
        covered as f64 / y.len() as f64,
        in_reference.iter().sum::<usize>() as f64 / (k * x.len()) as f64,
    ]
}

#[test]
fn image_blockwise_neighbour_metrics_equal_the_whole_matrix_ones() {
    let mut rng = Rng::from_seed(13);
    let (x, y) = (
        standard(400, 8, 0.0, &mut rng),
        standard(300, 8, 0.4, &mut rng),
    );
    for k in [1, 3, 7] {
        let [precision, recall, coverage, density] = neighbour_metrics_by_whole_matrices(&x, &y, k);
        assert!(precision > 0.2 && precision < 1.0 && recall > 0.2 && recall < 1.0);
        assert_eq!(precision_recall(&x, &y, k), (precision, recall), "k = {k}");
        assert_eq!(coverage_density(&x, &y, k), (coverage, density), "k = {k}");
    }
}

#[test]
fn image_knn_radii_reach_the_kth_neighbour() {
    let points = Samples::new(1, vec![0.0, 1.0, 3.0, 6.0]);
    assert_eq!(knn_radii(&points, 1), vec![1.0, 1.0, 4.0, 9.0]);
    assert_eq!(knn_radii(&points, 2), vec![9.0, 4.0, 9.0, 25.0]);
}

#[test]
fn image_precision_and_recall_are_one_for_identical_sets() {
    let mut rng = Rng::from_seed(6);
    let x = standard(400, 8, 0.0, &mut rng);
    assert_eq!(precision_recall(&x, &x, 3), (1.0, 1.0));
}

#[test]
fn image_recall_falls_when_a_mode_is_dropped() {
    // Reference: two modes at ±6 e_1 in 4D. Samples: the first mode only.
    let mut rng = Rng::from_seed(7);
    let ones = [1.0; 4];
    let mode =
        |sign: f64, n: usize, rng: &mut Rng| gaussian(n, &[6.0 * sign, 0.0, 0.0, 0.0], &ones, rng);
    let (left, right) = (mode(-1.0, 500, &mut rng), mode(1.0, 500, &mut rng));
    let reference = Samples::new(4, [left.as_slice(), right.as_slice()].concat());
    let both = Samples::new(
        4,
        [
            mode(-1.0, 500, &mut rng).as_slice(),
            mode(1.0, 500, &mut rng).as_slice(),
        ]
        .concat(),
    );
    let (precision, recall) = precision_recall(&both, &reference, 3);
    assert!(
        precision > 0.9 && recall > 0.9,
        "both modes: precision {precision}, recall {recall}"
    );
    let one_mode = mode(-1.0, 1000, &mut rng);
    let (precision, recall) = precision_recall(&one_mode, &reference, 3);
    assert!(precision > 0.9, "one mode: precision {precision}");
    assert!((recall - 0.5).abs() < 0.06, "one mode: recall {recall}");
}

#[test]
fn image_class_accuracy_counts_matching_classes() {
    assert_eq!(class_accuracy(&[0, 1, 2, 1], &[0, 1, 1, 1]), 0.75);
    assert_eq!(class_accuracy(&[3, 3], &[3, 3]), 1.0);
}

/// A trial of the small mixture experiment scoring with the feature-space metrics.
fn feature_trial() -> Trial {
    let eval = "eval: [fid, {kind: kid, subsets: 10}, precision_recall, class_accuracy]";
    resolve(&replace_line(SMALL_GMM, "eval:", eval), &[])
        .unwrap()
        .remove(0)
}

/// Runs the trial's metric `name` on `features`.
fn compute(trial: &Trial, name: &str, features: Option<&FeatureSet>) -> Result<Measured, String> {
    let metric = &trial.metrics.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(metric.uses_features(), "{name} uses features");
    let model = trial.new_model(&mut Rng::from_seed(0)).unwrap();
    metric.compute(&MetricInput {
        samples: &trial.held_out,
        reference: &trial.held_out,
        dataset: trial.dataset.as_ref(),
        seed: 11,
        model: &model,
        schedule: trial.schedule.as_ref(),
        device: &trial.device,
        features,
    })
}

fn feature_set(
    samples: Samples,
    reference: Samples,
    predicted: Option<Vec<u32>>,
    intended: Option<Vec<u32>>,
) -> FeatureSet {
    FeatureSet {
        samples,
        reference,
        predicted,
        intended,
        identity: "test-features".into(),
    }
}

#[test]
fn image_feature_metrics_give_their_values_and_details() {
    let trial = feature_trial();
    let mut rng = Rng::from_seed(8);
    let (x, y) = (
        standard(300, 4, 0.0, &mut rng),
        standard(200, 4, 0.5, &mut rng),
    );
    let set = feature_set(x.clone(), y.clone(), None, None);
    let fid = compute(&trial, "fid", Some(&set)).unwrap();
    assert_eq!(fid.value, feature_frechet_distance(&x, &y).unwrap());
    assert!(fid.details.is_empty());
    let kid = compute(&trial, "kid", Some(&set)).unwrap();
    // The metric caps subsets at half the smaller set, so that they differ.
    let expected = kernel_distance(&x, &y, 10, 100, 11);
    assert_eq!(kid.value, expected.mean);
    assert_eq!(kid.details, vec![("std", expected.std)]);
    assert_eq!(kid.facts, vec![("subset_size", "100".to_string())]);
    let pr = compute(&trial, "precision_recall", Some(&set)).unwrap();
    let (precision, recall) = precision_recall(&x, &y, 3);
    assert_eq!(pr.value, precision);
    assert_eq!(pr.details, vec![("recall", recall)]);
    assert_eq!(pr.facts, vec![("points", "200".to_string())]);
    // Diverged samples are never scored: the metric fails (the engine records NaN and the
    // message) and says how many were not finite.
    let nan = feature_set(Samples::new(4, vec![f64::NAN; 40]), y, None, None);
    for name in ["fid", "kid", "precision_recall"] {
        let error = compute(&trial, name, Some(&nan)).unwrap_err();
        assert!(
            error.contains("10 of 10 sample features are not finite"),
            "{name}: {error}"
        );
    }
    for name in ["fid", "kid", "precision_recall", "class_accuracy"] {
        let error = compute(&trial, name, None).unwrap_err();
        assert!(
            error.contains(name) && error.contains("no feature set"),
            "{error}"
        );
    }
}

#[test]
fn image_class_accuracy_needs_a_classifier_and_intended_classes() {
    let trial = feature_trial();
    let points = Samples::new(2, vec![0.0; 8]);
    let set = feature_set(
        points.clone(),
        points.clone(),
        Some(vec![0, 1, 2, 2]),
        Some(vec![0, 1, 1, 2]),
    );
    let measured = compute(&trial, "class_accuracy", Some(&set)).unwrap();
    assert_eq!(measured.value, 0.75);
    assert!(measured.details.is_empty());
    let unclassified = feature_set(points.clone(), points.clone(), None, Some(vec![0, 1, 1, 2]));
    let error = compute(&trial, "class_accuracy", Some(&unclassified)).unwrap_err();
    assert!(
        error.contains("test-features") && error.contains("features: classifier"),
        "{error}"
    );
    let unconditional = feature_set(points.clone(), points, Some(vec![0, 1, 2, 2]), None);
    let error = compute(&trial, "class_accuracy", Some(&unconditional)).unwrap_err();
    assert!(
        error.contains("unconditional") && error.contains("network.classes"),
        "{error}"
    );
}
