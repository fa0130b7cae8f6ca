//! `coverage` (density and coverage, Naeem et al. 2020), the diversity measure of
//! experiments/guidance.yaml: against a brute-force count, and robust to outlying samples
//! where k-NN recall is not.

use scorelab::dataset::Samples;
use scorelab::plugins::metrics::coverage::coverage_density;
use scorelab::plugins::metrics::precision_recall::precision_recall;
use scorelab::rng::Rng;

fn points(n: usize, dim: usize, centre: f64, spread: f64, rng: &mut Rng) -> Vec<f64> {
    (0..n * dim)
        .map(|_| centre + spread * rng.normal())
        .collect()
}

fn distance2(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

#[test]
fn coverage_and_density_match_a_brute_force_count() {
    let mut rng = Rng::from_seed(4);
    let (dim, k) = (3, 5);
    let reference = Samples::new(dim, points(60, dim, 0.0, 1.0, &mut rng));
    let samples = Samples::new(dim, points(40, dim, 0.3, 1.2, &mut rng));
    let radius: Vec<f64> = reference
        .rows()
        .enumerate()
        .map(|(i, r)| {
            let mut d: Vec<f64> = reference
                .rows()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, o)| distance2(r, o))
                .collect();
            d.sort_by(f64::total_cmp);
            d[k - 1]
        })
        .collect();
    let covered = reference
        .rows()
        .zip(&radius)
        .filter(|(r, rad)| samples.rows().any(|s| distance2(r, s) <= **rad))
        .count();
    let held: usize = samples
        .rows()
        .map(|s| {
            reference
                .rows()
                .zip(&radius)
                .filter(|(r, rad)| distance2(r, s) <= **rad)
                .count()
        })
        .sum();
    let (coverage, density) = coverage_density(&samples, &reference, k);
    assert!(
        (coverage - covered as f64 / 60.0).abs() < 1e-12,
        "{coverage}"
    );
    assert!(
        (density - held as f64 / (5.0 * 40.0)).abs() < 1e-12,
        "{density}"
    );
    // The reference against itself: every ball holds its own centre.
    assert_eq!(coverage_density(&reference, &reference, k).0, 1.0);
}

/// Samples from one of two clusters cover half the reference; adding samples far from both
/// leaves the coverage there, while k-NN recall (whose balls are the samples' own) climbs.
#[test]
fn outlying_samples_inflate_recall_but_not_coverage() {
    let mut rng = Rng::from_seed(9);
    let (dim, n) = (2, 200);
    let mut data = points(n / 2, dim, -5.0, 1.0, &mut rng);
    data.extend(points(n / 2, dim, 5.0, 1.0, &mut rng));
    let reference = Samples::new(dim, data);
    let one_mode = points(n / 2, dim, -5.0, 1.0, &mut rng);
    let collapsed = Samples::new(dim, one_mode.clone());
    let mut spread = one_mode;
    spread.extend(points(n / 4, dim, 0.0, 12.0, &mut rng));
    let with_outliers = Samples::new(dim, spread);
    let (coverage, _) = coverage_density(&collapsed, &reference, 5);
    let (_, recall) = precision_recall(&collapsed, &reference, 3);
    let (coverage_out, _) = coverage_density(&with_outliers, &reference, 5);
    let (_, recall_out) = precision_recall(&with_outliers, &reference, 3);
    eprintln!(
        "one mode: coverage {coverage:.3} recall {recall:.3}; with outliers: coverage {coverage_out:.3} recall {recall_out:.3}"
    );
    assert!((coverage - 0.5).abs() < 0.08, "{coverage}");
    assert!(coverage_out < coverage + 0.1, "{coverage_out}");
    assert!(recall_out > recall + 0.2, "{recall} -> {recall_out}");
}
