//! The cost of resolution: the largest pairwise distance (`sigma_max: auto`) found without
//! the O(n² d) brute force yet equal to it bit for bit, and shared work (the data, that
//! distance) done once per distinct data config however many trials use it.

use std::path::Path;
use std::sync::Arc;

use scorelab::dataset::{max_pairwise_distance, max_pairwise_distance_brute_force, Samples};
use scorelab::rng::{Rng, Stream};
use scorelab::sweep::Experiment;
use scorelab::trial::{self, ResolutionStats, Trial};

use crate::common::{write, SMALL_GMM};

/// Asserts the fast result is the brute force's, to the bit.
fn check(data: &[f64], dim: usize, what: &str) {
    let fast = max_pairwise_distance(data, dim);
    let brute = max_pairwise_distance_brute_force(data, dim);
    assert_eq!(
        fast.to_bits(),
        brute.to_bits(),
        "{what}: {} points in {dim} dimensions: fast {fast:e}, brute force {brute:e}",
        data.len() / dim
    );
}

fn gaussian(n: usize, dim: usize, rng: &mut Rng) -> Vec<f64> {
    (0..n * dim).map(|_| rng.normal()).collect()
}

#[test]
fn equals_brute_force_on_random_sets_of_many_sizes_and_dimensions() {
    let mut rng = Rng::new(11, Stream::TrainingData);
    for &dim in &[1, 2, 3, 5, 16, 17, 40, 130] {
        for &n in &[1, 2, 3, 64, 65, 97, 301, 777] {
            let data = gaussian(n, dim, &mut rng);
            check(&data, dim, "standard normal");
            // Far from the origin, where ‖a‖² + ‖b‖² − 2a·b cancels badly.
            let shifted: Vec<f64> = data.iter().map(|v| v + 1.0e6).collect();
            check(&shifted, dim, "shifted by 1e6");
            // Tiny spread around a large offset: the differences are 1e-9 of the norms.
            let tight: Vec<f64> = data.iter().map(|v| 3.0e4 + 1.0e-5 * v).collect();
            check(&tight, dim, "spread 1e-5 around 3e4");
        }
    }
}

#[test]
fn equals_brute_force_on_clusters_duplicates_ties_and_degenerate_sets() {
    let mut rng = Rng::new(12, Stream::TrainingData);
    // Three tight clusters far apart, like the shipped mixtures.
    for &(n, dim) in &[(1001, 2), (513, 3), (400, 64)] {
        let data: Vec<f64> = (0..n)
            .flat_map(|i| {
                let centre = [-4.0, 4.0, 0.0][i % 3];
                (0..dim)
                    .map(|k| if k == i % dim { centre } else { 0.0 } + 0.5 * rng.normal())
                    .collect::<Vec<_>>()
            })
            .collect();
        check(&data, dim, "three clusters");
    }
    // Every point repeated: duplicates at the extremes.
    let base = gaussian(150, 2, &mut rng);
    let repeated: Vec<f64> = base.iter().chain(&base).chain(&base).copied().collect();
    check(&repeated, 2, "each point three times");
    // One point, all points equal, points on a circle (equal norms), integer grids (ties).
    check(&[3.5, -1.0], 2, "one point");
    check(&[7.0; 3 * 200], 3, "200 equal points");
    let circle: Vec<f64> = (0..999)
        .flat_map(|i| {
            let a = i as f64 * std::f64::consts::TAU / 999.0;
            [a.cos(), a.sin()]
        })
        .collect();
    check(&circle, 2, "a circle");
    let grid: Vec<f64> = (0..30 * 30)
        .flat_map(|i| [(i % 30) as f64, (i / 30) as f64])
        .collect();
    check(&grid, 2, "a 30 x 30 integer grid");
    // Binary "images": many pairs at exactly the largest distance.
    let binary: Vec<f64> = (0..300 * 64)
        .map(|_| if rng.uniform() < 0.5 { -1.0 } else { 1.0 })
        .collect();
    check(&binary, 64, "±1 images");
    // Non-finite values keep the brute force's answer.
    let mut infinite = gaussian(100, 2, &mut rng);
    infinite[7] = f64::INFINITY;
    check(&infinite, 2, "one infinite coordinate");
}

#[test]
fn equals_brute_force_when_the_largest_distances_differ_in_the_last_bits() {
    // Two antipodal clumps whose points differ by 1e-13 .. 1e-15 of their distance: the
    // candidate pairs' squared distances are a few ulps apart, below the rounding error
    // of ‖a‖² + ‖b‖² − 2a·b, so only the exact sums can pick the largest.
    let mut rng = Rng::new(14, Stream::TrainingData);
    for &dim in &[2, 24, 100, 300] {
        // Along a random direction, so every coordinate's product counts in a·b.
        let direction: Vec<f64> = gaussian(1, dim, &mut rng);
        let length = direction.iter().map(|v| v * v).sum::<f64>().sqrt();
        for &eps in &[1e-13, 1e-14, 1e-15, 3e-16, 1e-16] {
            let data: Vec<f64> = (0..601)
                .flat_map(|i| {
                    let side = if i % 2 == 0 { 1.0 } else { -1.0 };
                    let point: Vec<f64> = direction
                        .iter()
                        .map(|v| 0.3 + side * v / length + eps * rng.normal())
                        .collect();
                    point
                })
                .collect();
            check(&data, dim, &format!("antipodal clumps of width {eps:e}"));
        }
    }
}

#[test]
fn samples_remember_their_largest_distance() {
    let mut rng = Rng::new(13, Stream::TrainingData);
    let samples = Samples::new(2, gaussian(500, 2, &mut rng));
    assert_eq!(samples.known_max_pairwise_distance(), None);
    let first = samples.max_pairwise_distance();
    assert_eq!(
        first,
        max_pairwise_distance_brute_force(samples.as_slice(), 2)
    );
    assert_eq!(samples.known_max_pairwise_distance(), Some(first));
    // Equality is about the items, not whether the distance is known yet.
    assert_eq!(samples, Samples::new(2, samples.as_slice().to_vec()));
}

fn resolve(path: &Path, overrides: &[&str]) -> (Vec<Trial>, ResolutionStats) {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let experiment = Experiment::load(path, &overrides).expect("loads");
    trial::resolve_with_stats(&experiment).expect("resolves")
}

#[test]
fn a_sampler_sweep_draws_its_data_and_computes_sigma_max_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "exp.yaml", SMALL_GMM);
    let (trials, stats) = resolve(
        &path,
        &["sampler.kind=annealed_langevin,euler,heun,dpmpp_2m,ddim"],
    );
    assert_eq!(stats.trials, 5);
    assert_eq!(stats.data_draws, 1, "{stats:?}");
    assert_eq!(stats.distances, 1, "{stats:?}");
    let expected = max_pairwise_distance_brute_force(trials[0].training_data.as_slice(), 2);
    for t in &trials {
        assert!(Arc::ptr_eq(&t.training_data, &trials[0].training_data));
        assert!(Arc::ptr_eq(&t.held_out, &trials[0].held_out));
        assert_eq!(t.schedule.sigma_max(), expected, "trial {}", t.label);
    }

    // Distinct data configs (here seeds and training sizes) are drawn once each.
    let (trials, stats) = resolve(
        &path,
        &[
            "seed=1,2",
            "train.train_size=300,500",
            "sampler.eps=0.001,0.002",
        ],
    );
    assert_eq!((stats.trials, stats.data_draws, stats.distances), (8, 4, 4));
    let distinct = trials
        .iter()
        .filter(|t| {
            trials
                .iter()
                .take(t.index)
                .all(|u| !Arc::ptr_eq(&u.training_data, &t.training_data))
        })
        .count();
    assert_eq!(distinct, 4);

    // A fixed sigma_max computes no distance.
    let (_, stats) = resolve(&path, &["schedule.sigma_max=30", "sampler.eps=0.001,0.002"]);
    assert_eq!((stats.data_draws, stats.distances), (1, 0));
}

#[test]
fn shipped_experiments_resolve_sigma_max_auto_to_the_brute_force_value() {
    for file in [
        "experiments/quickstart.yaml",
        "experiments/noise_scales.yaml",
    ] {
        let (trials, stats) = resolve(Path::new(file), &[]);
        assert!(stats.distances >= 1, "{file}: {stats:?}");
        let mut checked: Vec<(Arc<Samples>, f64)> = Vec::new();
        for t in &trials {
            if t.resolved["schedule"]["sigma_max"] != "auto" {
                continue;
            }
            let brute = match checked
                .iter()
                .find(|(s, _)| Arc::ptr_eq(s, &t.training_data))
            {
                Some((_, value)) => *value,
                None => {
                    let data = &t.training_data;
                    let value = max_pairwise_distance_brute_force(data.as_slice(), data.dim());
                    checked.push((data.clone(), value));
                    value
                }
            };
            assert_eq!(t.schedule.sigma_max(), brute, "{file}, trial {}", t.label);
        }
        assert!(!checked.is_empty(), "{file} has sigma_max: auto");
    }
}
