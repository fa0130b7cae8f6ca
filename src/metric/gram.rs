//! Matrix products of point sets through faer's multiply, on the rayon threads the sweep's
//! `threads` allows (`RAYON_NUM_THREADS`): the covariances of `frechet`, the kernels of `kid`
//! and the distances of `neighbours`. Points are row-major lists (`dim` coordinates each), as
//! [`Samples`] keeps them; faer sees such a list, without copying, as a dim × n matrix whose
//! columns are the points.

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, MatMut, MatRef, Par};

use crate::samples::Samples;

/// Every thread of the global rayon pool, or none beyond this one.
pub fn parallelism() -> Par {
    match rayon::current_num_threads() {
        0 | 1 => Par::Seq,
        threads => Par::rayon(threads),
    }
}

/// The threads the metrics will run on, for memory estimates made before they run: the
/// `RAYON_NUM_THREADS` the sweep sets, else every core. Unlike `rayon::current_num_threads`,
/// this does not start rayon's global pool (which would then keep its size whatever the
/// sweep's `threads` later says).
pub fn planned_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Row-major points as the columns of a dim × n view (no copy).
pub fn columns(points: &[f64], dim: usize) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(points, dim, points.len() / dim)
}

/// `out` (column-major, one row per point of `a`, one column per point of `b`) = A Bᵀ, the
/// inner products of every pair: `out[i + j * a_points] = a_i · b_j`.
pub fn gram_into(out: &mut [f64], a: &[f64], b: &[f64], dim: usize, par: Par) {
    let (a, b) = (columns(a, dim), columns(b, dim));
    let out = MatMut::from_column_major_slice_mut(out, a.ncols(), b.ncols());
    matmul(out, Accum::Replace, a.transpose(), b, 1.0, par);
}

/// The strictly lower triangle of `out` (column-major, points × points) = A Aᵀ, the inner
/// products of every pair i > j of `a` in about half the work of [`gram_into`]; the rest of
/// `out` is left as it was.
pub fn gram_lower_into(out: &mut [f64], a: &[f64], dim: usize, par: Par) {
    let a = columns(a, dim);
    let out = MatMut::from_column_major_slice_mut(out, a.ncols(), a.ncols());
    triangular::matmul(
        out,
        BlockStructure::StrictTriangularLower,
        Accum::Replace,
        a.transpose(),
        BlockStructure::Rectangular,
        a,
        BlockStructure::Rectangular,
        1.0,
        par,
    );
}

/// The rows `index` of `points`, in that order, as one row-major list.
pub fn gather(points: &Samples, index: &[usize]) -> Vec<f64> {
    let mut rows = Vec::with_capacity(index.len() * points.dim());
    for &i in index {
        rows.extend_from_slice(points.row(i));
    }
    rows
}

/// Squared norms of row-major points.
pub fn squared_norms(points: &[f64], dim: usize) -> Vec<f64> {
    points
        .chunks(dim)
        .map(|p| p.iter().map(|v| v * v).sum())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gram_into_holds_every_inner_product_column_major() {
        // a: (1, 2), (3, 4), (0, 1); b: (1, 0), (1, 1).
        let (a, b) = ([1.0, 2.0, 3.0, 4.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0]);
        let mut out = vec![0.0; 6];
        gram_into(&mut out, &a, &b, 2, Par::Seq);
        assert_eq!(out, vec![1.0, 3.0, 0.0, 3.0, 7.0, 1.0]);
        let mut lower = vec![-1.0; 9];
        gram_lower_into(&mut lower, &a, 2, Par::Seq);
        // Below the diagonal a_i · a_j (i > j); the rest untouched.
        assert_eq!(
            lower,
            vec![-1.0, 11.0, 2.0, -1.0, -1.0, 4.0, -1.0, -1.0, -1.0]
        );
        let points = Samples::new(2, a.to_vec());
        assert_eq!(gather(&points, &[2, 0]), vec![0.0, 1.0, 1.0, 2.0]);
        assert_eq!(squared_norms(&a, 2), vec![5.0, 25.0, 1.0]);
    }
}
