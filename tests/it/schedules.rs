use crate::common::{resolve, SMALL_GMM};
use scorelab::plugins::schedules::geometric::geometric_levels;
use scorelab::schedule::{Grid, GridRequest};

#[test]
fn auto_sigma_max_is_the_brute_force_max_pairwise_distance() {
    let trials = resolve(SMALL_GMM, &[]).unwrap();
    let data = &trials[0].training_data;
    let mut best = 0.0f64;
    for i in 0..data.len() {
        for j in 0..data.len() {
            let (a, b) = (data.row(i), data.row(j));
            best = best.max(((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt());
        }
    }
    assert!(best > 14.0, "two modes 14.1 apart: {best}");
    assert_eq!(trials[0].schedule.sigma_max(), best);
}

#[test]
fn geometric_levels_match_the_closed_form() {
    let levels = geometric_levels(50.0, 0.01, 10);
    assert_eq!(levels.len(), 10);
    for (i, level) in levels.iter().enumerate() {
        let expected = 50.0 * (0.01f64 / 50.0).powf(i as f64 / 9.0);
        assert!(
            (level - expected).abs() < 1e-12 * expected.max(1.0),
            "{level} vs {expected}"
        );
    }
    assert!((levels[0] - 50.0).abs() < 1e-12 && (levels[9] - 0.01).abs() < 1e-15);
    let ratio = levels[1] / levels[0];
    for pair in levels.windows(2) {
        assert!(pair[1] < pair[0], "descending");
        assert!((pair[1] / pair[0] - ratio).abs() < 1e-12, "constant ratio");
    }
    assert_eq!(
        geometric_levels(50.0, 0.01, 1),
        vec![0.01],
        "one level is sigma_min"
    );

    let trials = resolve(
        SMALL_GMM,
        &["schedule.sigma_max=20", "schedule.num_levels=4"],
    )
    .unwrap();
    let grid = Grid::new(trials[0].schedule.as_ref(), GridRequest::default());
    let grid = grid.sigmas().to_vec();
    assert_eq!(grid.len(), 5);
    assert_eq!(grid[4], 0.0, "the grid ends at 0");
    assert!((grid[0] - 20.0).abs() < 1e-12 && (grid[3] - 0.1).abs() < 1e-12);
    assert_eq!(trials[0].schedule.loss_levels(), grid[..4].to_vec());
}
