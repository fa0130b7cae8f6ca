//! Gaussian fits and the Fréchet distance between them (the FID formula),
//! ||mu_1 - mu_2||^2 + tr(C_1 + C_2 - 2 (C_1^{1/2} C_2 C_1^{1/2})^{1/2}), with unbiased
//! covariances: `fd` applies it to raw coordinates, `fid` to features. The covariance is a
//! blockwise sum of faer matrix products; the trace of the square root comes from a factor of
//! C_1 (Cholesky, or faer's self-adjoint eigendecomposition where C_1 is singular) and the
//! eigenvalues of a matrix of C_1's rank, on the sweep's threads: ~1.5 s at 2048 dimensions
//! where nalgebra's `symmetric_eigen` took 10-17 s. [`frechet_distance_nalgebra`] keeps that
//! formula as the reference the fast one is checked against.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Side};
use nalgebra::{DMatrix, DVector};

use crate::metric::gram::{columns, parallelism};
use crate::samples::Samples;

/// Points centred at once in the covariance's sum (a block of 4096 × d beside the result).
const COVARIANCE_BLOCK: usize = 4096;

/// Sample mean and unbiased covariance.
pub fn mean_and_covariance(points: &Samples) -> (DVector<f64>, DMatrix<f64>) {
    let (n, d) = (points.len(), points.dim());
    let mut mean = DVector::zeros(d);
    for row in points.rows() {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    mean /= n.max(1) as f64;
    let mut covariance = DMatrix::zeros(d, d);
    let scale = 1.0 / (n.max(2) - 1) as f64;
    for block in points.as_slice().chunks(COVARIANCE_BLOCK * d) {
        let centred: Vec<f64> = block
            .chunks(d)
            .flat_map(|row| row.iter().zip(mean.iter()).map(|(v, m)| v - m))
            .collect();
        let centred = columns(&centred, d);
        let out = MatMut::from_column_major_slice_mut(covariance.as_mut_slice(), d, d);
        matmul(
            out,
            Accum::Add,
            centred,
            centred.transpose(),
            scale,
            parallelism(),
        );
    }
    (mean, covariance)
}

/// A square nalgebra matrix as a faer view (both column-major; no copy).
fn view(matrix: &DMatrix<f64>) -> MatRef<'_, f64> {
    MatRef::from_column_major_slice(matrix.as_slice(), matrix.nrows(), matrix.ncols())
}

const NO_CONVERGENCE: &str =
    "the eigendecomposition of a covariance did not converge (are the features finite?)";

/// A factor W of a symmetric positive semi-definite matrix C = W Wᵀ: its Cholesky factor where
/// C is positive definite, else W = U diag(sqrt s) from its eigendecomposition U diag(s) Uᵀ
/// with only the columns of eigenvalues above the decomposition's round-off (d ε max s; the
/// others, e.g. the null space of a covariance of fewer points than dimensions, are zero but
/// for round-off, whose square roots would add noise).
fn psd_factor(matrix: MatRef<'_, f64>) -> Result<Mat<f64>, String> {
    if let Ok(cholesky) = matrix.llt(Side::Lower) {
        return Ok(cholesky.L().to_owned());
    }
    let eigen = matrix
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| NO_CONVERGENCE.to_string())?;
    let (u, s) = (eigen.U(), eigen.S().column_vector());
    let floor = s.iter().fold(0.0f64, |m, v| m.max(*v)) * s.nrows() as f64 * f64::EPSILON;
    let kept: Vec<usize> = (0..s.nrows()).filter(|&j| s[j] > floor).collect();
    Ok(Mat::from_fn(u.nrows(), kept.len(), |i, j| {
        u[(i, kept[j])] * s[kept[j]].sqrt()
    }))
}

/// Fréchet distance between N(mu1, c1) and N(mu2, c2); fails only where an eigendecomposition
/// does not converge. tr (C1^{1/2} C2 C1^{1/2})^{1/2} is the sum of the square roots of the
/// eigenvalues of C1 C2, which are those of Wᵀ C2 W for any factor C1 = W Wᵀ ([`psd_factor`]):
/// a Cholesky factorisation (or, for a singular C1, an eigendecomposition) and the eigenvalues
/// of a matrix as small as C1's rank.
pub fn frechet_distance(
    mu1: &DVector<f64>,
    c1: &DMatrix<f64>,
    mu2: &DVector<f64>,
    c2: &DMatrix<f64>,
) -> Result<f64, String> {
    let w = psd_factor(view(c1))?;
    let middle = w.transpose() * view(c2) * &w;
    let middle = Mat::from_fn(middle.nrows(), middle.ncols(), |i, j| {
        0.5 * (middle[(i, j)] + middle[(j, i)])
    });
    let trace_root: f64 = middle
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|_| NO_CONVERGENCE.to_string())?
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum();
    Ok((mu1 - mu2).norm_squared() + c1.trace() + c2.trace() - 2.0 * trace_root)
}

/// The same formula through nalgebra's symmetric eigendecomposition, as it was computed before
/// faer: the reference for tests and the benchmark's "before" (slow: ~17 s at 2048 dims).
pub fn frechet_distance_nalgebra(
    mu1: &DVector<f64>,
    c1: &DMatrix<f64>,
    mu2: &DVector<f64>,
    c2: &DMatrix<f64>,
) -> f64 {
    let eigen = c1.clone().symmetric_eigen();
    let roots = eigen.eigenvalues.map(|v| v.max(0.0).sqrt());
    let root1 =
        &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose();
    let middle = &root1 * c2 * &root1;
    let middle = (&middle + middle.transpose()) * 0.5;
    let trace_root: f64 = middle
        .symmetric_eigenvalues()
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum();
    (mu1 - mu2).norm_squared() + c1.trace() + c2.trace() - 2.0 * trace_root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn normals(n: usize, rng: &mut Rng) -> Vec<f64> {
        (0..n).map(|_| rng.normal()).collect()
    }

    /// A random symmetric positive definite d × d matrix, A Aᵀ / d + 0.1 I.
    fn random_spd(d: usize, rng: &mut Rng) -> DMatrix<f64> {
        let a = DMatrix::from_vec(d, d, normals(d * d, rng));
        &a * a.transpose() / d as f64 + DMatrix::identity(d, d) * 0.1
    }

    #[test]
    fn faer_frechet_distance_equals_the_nalgebra_formula_on_random_spd_matrices() {
        let mut rng = Rng::from_seed(26);
        for d in [1, 2, 7, 64] {
            let (c1, c2) = (random_spd(d, &mut rng), random_spd(d, &mut rng));
            let mu1 = DVector::from_vec(normals(d, &mut rng));
            let mu2 = DVector::from_vec(normals(d, &mut rng));
            let fast = frechet_distance(&mu1, &c1, &mu2, &c2).unwrap();
            let reference = frechet_distance_nalgebra(&mu1, &c1, &mu2, &c2);
            assert!(
                (fast - reference).abs() <= 1e-8 * reference.abs(),
                "d = {d}: faer {fast} vs nalgebra {reference}"
            );
        }
    }

    #[test]
    fn singular_covariances_give_the_exact_low_rank_value() {
        // C1 = A Aᵀ / r of rank r = 20 in 64 dims (as FID at 1000 samples in 2048 dims): the
        // nonzero eigenvalues of C1 C2 are those of Aᵀ C2 A / r, a well-conditioned 20 × 20
        // matrix, which gives the exact value. The nalgebra formula adds the square roots of
        // its null space's round-off (here 1.5e-8 relative); the eigenvalue floor drops them.
        let mut rng = Rng::from_seed(28);
        let (d, r) = (64, 20);
        let a = DMatrix::from_vec(d, r, normals(d * r, &mut rng));
        let b = DMatrix::from_vec(d, r, normals(d * r, &mut rng));
        let (c1, c2) = (&a * a.transpose() / r as f64, &b * b.transpose() / r as f64);
        let mu = DVector::from_vec(normals(d, &mut rng));
        let small = a.transpose() * &c2 * &a / r as f64;
        let roots: f64 = small
            .symmetric_eigenvalues()
            .iter()
            .map(|v| v.max(0.0).sqrt())
            .sum();
        let exact = c1.trace() + c2.trace() - 2.0 * roots;
        let fast = frechet_distance(&mu, &c1, &mu, &c2).unwrap();
        let old = frechet_distance_nalgebra(&mu, &c1, &mu, &c2);
        assert!(
            (fast - exact).abs() <= 1e-12 * exact,
            "faer {fast} vs exact {exact}"
        );
        assert!(
            (old - exact).abs() <= 1e-7 * exact,
            "nalgebra {old} vs exact {exact}"
        );
    }

    #[test]
    fn frechet_distance_of_scaled_identities_is_the_closed_form() {
        // FD(N(0, a I), N(0, b I)) = d (sqrt a - sqrt b)², here 64 (1.5 - 0.5)² = 64.
        let d = 64;
        let zero = DVector::zeros(d);
        let (a, b) = (
            DMatrix::identity(d, d) * 2.25,
            DMatrix::identity(d, d) * 0.25,
        );
        let fd = frechet_distance(&zero, &a, &zero, &b).unwrap();
        assert!((fd - 64.0).abs() < 1e-10, "FD {fd} vs 64");
    }

    #[test]
    fn blockwise_covariance_is_the_centred_product() {
        // More points than one block, so that the sum over blocks is exercised.
        let (n, d) = (COVARIANCE_BLOCK + 37, 3);
        let mut rng = Rng::from_seed(27);
        let points = Samples::new(d, normals(n * d, &mut rng));
        let (mean, covariance) = mean_and_covariance(&points);
        let matrix = DMatrix::from_row_slice(n, d, points.as_slice());
        let mut centred = matrix.clone();
        for mut row in centred.row_iter_mut() {
            row -= mean.transpose();
        }
        let expected = centred.transpose() * &centred / (n - 1) as f64;
        for j in 0..d {
            assert!((mean[j] - matrix.column(j).mean()).abs() < 1e-14);
        }
        assert!((covariance - expected).abs().max() < 1e-12);
    }
}
