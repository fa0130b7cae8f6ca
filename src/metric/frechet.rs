//! Gaussian fits and the Fréchet distance between them (the FID formula),
//! ||mu_1 - mu_2||^2 + tr(C_1 + C_2 - 2 (C_1^{1/2} C_2 C_1^{1/2})^{1/2}), with unbiased
//! covariances and the square roots from nalgebra's symmetric eigendecomposition: `fd` applies
//! it to raw coordinates, `fid` to features.

use nalgebra::{DMatrix, DVector};

use crate::samples::Samples;

/// Sample mean and unbiased covariance.
pub fn mean_and_covariance(points: &Samples) -> (DVector<f64>, DMatrix<f64>) {
    let (n, d) = (points.len(), points.dim());
    let matrix = DMatrix::from_row_slice(n, d, points.as_slice());
    let mean = DVector::from_iterator(d, (0..d).map(|j| matrix.column(j).mean()));
    let mut centred = matrix;
    for mut row in centred.row_iter_mut() {
        row -= mean.transpose();
    }
    let covariance = centred.transpose() * &centred / (n.max(2) - 1) as f64;
    (mean, covariance)
}

/// Square root of a symmetric positive semi-definite matrix (negative eigenvalues from
/// round-off are clamped to zero).
fn psd_sqrt(matrix: &DMatrix<f64>) -> DMatrix<f64> {
    let eigen = matrix.clone().symmetric_eigen();
    let roots = eigen.eigenvalues.map(|v| v.max(0.0).sqrt());
    &eigen.eigenvectors * DMatrix::from_diagonal(&roots) * eigen.eigenvectors.transpose()
}

/// Fréchet distance between N(mu1, c1) and N(mu2, c2).
pub fn frechet_distance(
    mu1: &DVector<f64>,
    c1: &DMatrix<f64>,
    mu2: &DVector<f64>,
    c2: &DMatrix<f64>,
) -> f64 {
    let root1 = psd_sqrt(c1);
    let middle = &root1 * c2 * &root1;
    let middle = (&middle + middle.transpose()) * 0.5;
    let trace_root: f64 = middle
        .symmetric_eigenvalues()
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum();
    (mu1 - mu2).norm_squared() + c1.trace() + c2.trace() - 2.0 * trace_root
}
