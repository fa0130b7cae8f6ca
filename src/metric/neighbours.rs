//! k-nearest-neighbour balls in a feature space (Kynkäänniemi et al. 2019; Naeem et al.
//! 2020): each point's ball reaches its k-th nearest neighbour within its own set. Shared by
//! `precision_recall` and `coverage`, with the check of their `k` and `max_points`. Distances
//! are computed a block of queries at a time on the rayon threads ([`distance_blocks`]), so
//! 50 000 points need tens of MB, not the 20 GB of the whole distance matrix.

use nalgebra::DMatrix;
use rayon::prelude::*;

use crate::config::{ConfigError, RawParams};
use crate::metric::gram::{gram_into, squared_norms};
use crate::samples::Samples;

/// The points as the rows of a matrix.
pub fn points_matrix(points: &Samples) -> DMatrix<f64> {
    DMatrix::from_row_slice(points.len(), points.dim(), points.as_slice())
}

/// Squared Euclidean distances between every row of `a` and every row of `b`, through one
/// matrix product (||a||² + ||b||² − 2 aᵀb, clamped at 0 against round-off): the whole
/// matrix at once, for small sets and as the reference of [`distance_blocks`].
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

/// Distances one block holds (8M, 64 MB): a block of queries against every point, so memory
/// stays bounded (a block per thread) however many points there are.
pub const BLOCK_ENTRIES: usize = 1 << 23;

/// [`squared_distances`] from every query to every point, one block of queries at a time on
/// the rayon threads: `visit(first, distances)` sees the block's first query index and its
/// distances column by column (one column of `points.len()` per query), and the results
/// come back in query order. The same formula, so the same numbers up to the round-off of
/// the matrix product.
pub fn distance_blocks<T: Send>(
    queries: &Samples,
    points: &Samples,
    visit: impl Fn(usize, &[f64]) -> T + Sync,
) -> Vec<T> {
    let dim = points.dim();
    assert_eq!(
        queries.dim(),
        dim,
        "distances between sets of one dimension"
    );
    let (n, queries_len) = (points.len(), queries.len());
    // At most 256 queries a block, so that even 1000 points make blocks for 4 threads; the
    // blocks do not depend on the thread count, nor do the numbers.
    let block = (BLOCK_ENTRIES / n.max(1)).clamp(1, 256);
    let point_norms = squared_norms(points.as_slice(), dim);
    let starts: Vec<usize> = (0..queries_len).step_by(block).collect();
    starts
        .into_par_iter()
        .map(|first| {
            let last = (first + block).min(queries_len);
            let chosen = &queries.as_slice()[first * dim..last * dim];
            let mut distances = vec![0.0; n * (last - first)];
            gram_into(
                &mut distances,
                points.as_slice(),
                chosen,
                dim,
                faer::Par::Seq,
            );
            let query_norms = squared_norms(chosen, dim);
            for (column, query_norm) in distances.chunks_mut(n.max(1)).zip(query_norms) {
                for (v, point_norm) in column.iter_mut().zip(&point_norms) {
                    *v = (point_norm + query_norm - 2.0 * *v).max(0.0);
                }
            }
            visit(first, &distances)
        })
        .collect()
}

/// For each point, the squared distance to its k-th nearest neighbour in the same set (the
/// point itself excluded; needs more than k points), blockwise on the rayon threads.
pub fn knn_radii(points: &Samples, k: usize) -> Vec<f64> {
    let n = points.len();
    assert!(
        k >= 1 && n > k,
        "k-NN radii need more than k = {k} points, got {n}"
    );
    let blocks = distance_blocks(points, points, |first, distances| {
        let mut others = Vec::with_capacity(n - 1);
        distances
            .chunks(n)
            .enumerate()
            .map(|(j, column)| {
                others.clear();
                let skip = first + j;
                others.extend(column[..skip].iter().chain(&column[skip + 1..]));
                *others.select_nth_unstable_by(k - 1, f64::total_cmp).1
            })
            .collect::<Vec<f64>>()
    });
    blocks.concat()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn points(n: usize, dim: usize, rng: &mut Rng) -> Samples {
        Samples::new(dim, (0..n * dim).map(|_| rng.normal()).collect())
    }

    #[test]
    fn distance_blocks_hold_the_whole_matrix_columns_in_query_order() {
        let mut rng = Rng::from_seed(31);
        let (queries, set) = (points(97, 5, &mut rng), points(60, 5, &mut rng));
        let whole = squared_distances(&points_matrix(&set), &points_matrix(&queries));
        let columns: Vec<Vec<f64>> = distance_blocks(&queries, &set, |first, distances| {
            let mut columns: Vec<Vec<f64>> =
                distances.chunks(set.len()).map(<[f64]>::to_vec).collect();
            columns.insert(0, vec![first as f64]);
            columns
        })
        .concat();
        let mut expected_first = 0;
        let mut query = 0;
        for column in columns {
            if column.len() == 1 {
                assert_eq!(column[0] as usize, expected_first, "blocks come in order");
                continue;
            }
            for (p, d) in column.iter().enumerate() {
                assert!((d - whole[(p, query)]).abs() < 1e-12);
            }
            query += 1;
            expected_first = query;
        }
        assert_eq!(query, queries.len());
    }

    #[test]
    fn blockwise_knn_radii_equal_the_whole_matrix_ones() {
        let mut rng = Rng::from_seed(32);
        let set = points(150, 3, &mut rng);
        let whole = squared_distances(&points_matrix(&set), &points_matrix(&set));
        for k in [1, 3, 10] {
            let radii = knn_radii(&set, k);
            for (i, radius) in radii.iter().enumerate() {
                let mut others: Vec<f64> = (0..set.len())
                    .filter(|&j| j != i)
                    .map(|j| whole[(j, i)])
                    .collect();
                others.sort_by(f64::total_cmp);
                assert!((radius - others[k - 1]).abs() < 1e-12, "k = {k}, point {i}");
            }
        }
    }
}
