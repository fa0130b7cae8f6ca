//! k-nearest-neighbour balls in a feature space (Kynkäänniemi et al. 2019; Naeem et al.
//! 2020): each point's ball reaches its k-th nearest neighbour within its own set. Shared by
//! `precision_recall` and `coverage`, with the check of their `k` and `max_points`.

use nalgebra::DMatrix;

use crate::config::{ConfigError, RawParams};
use crate::samples::Samples;

/// The points as the rows of a matrix.
pub fn points_matrix(points: &Samples) -> DMatrix<f64> {
    DMatrix::from_row_slice(points.len(), points.dim(), points.as_slice())
}

/// Squared Euclidean distances between every row of `a` and every row of `b`, through one
/// matrix product (||a||² + ||b||² − 2 aᵀb, clamped at 0 against round-off).
pub fn squared_distances(a: &DMatrix<f64>, b: &DMatrix<f64>) -> DMatrix<f64> {
    let norms = |m: &DMatrix<f64>| -> Vec<f64> { m.row_iter().map(|r| r.norm_squared()).collect() };
    let (na, nb) = (norms(a), norms(b));
    let mut result = a * b.transpose();
    for (j, column) in result.column_iter_mut().enumerate() {
        for (i, v) in column.into_iter().enumerate() {
            *v = (na[i] + nb[j] - 2.0 * *v).max(0.0);
        }
    }
    result
}

/// For each point, the squared distance to its k-th nearest neighbour in the same set (the
/// point itself excluded; needs more than k points).
pub fn knn_radii(points: &DMatrix<f64>, k: usize) -> Vec<f64> {
    let n = points.nrows();
    assert!(
        k >= 1 && n > k,
        "k-NN radii need more than k = {k} points, got {n}"
    );
    let distances = squared_distances(points, points);
    (0..n)
        .map(|i| {
            let mut others: Vec<f64> = distances
                .column(i)
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, d)| *d)
                .collect();
            *others.select_nth_unstable_by(k - 1, f64::total_cmp).1
        })
        .collect()
}

/// Refuses a k-NN metric's `k` of 0 and a `max_points` that leaves no more than k points
/// (`example_k`: the value the fix suggests).
pub fn check_neighbours(
    raw: &RawParams,
    k: usize,
    max_points: usize,
    example_k: usize,
) -> Result<(), ConfigError> {
    if k == 0 {
        return Err(raw.invalid(
            "k",
            "must be at least 1",
            format!("set e.g. `k: {example_k}`"),
        ));
    }
    if max_points <= k {
        return Err(raw.invalid(
            "max_points",
            format!("must exceed k = {k}, not {max_points}"),
            "set e.g. `max_points: 2000`",
        ));
    }
    Ok(())
}
