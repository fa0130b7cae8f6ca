//! The exact noise-conditional classifier of a Gaussian mixture: the posterior of its
//! components given a point noised with N(0, sigma^2 I),
//!
//!   p(y | x, sigma) = w_y N(x; mu_y, diag(s_y^2 + sigma^2)) / sum_k w_k N(x; mu_k, diag(s_k^2 + sigma^2)),
//!
//! computed with tensor operations in the input's dtype, so autograd gives its gradient in
//! x (the classifier guidance's term) as it would for a trained classifier.

use super::{log_sum_exp_keepdim, Classifier};
use crate::analytic::GaussianMixture;
use candle_core::Tensor;

pub struct MixtureClassifier {
    classes: usize,
    dim: usize,
    /// ln w_k, with zero weights floored to a finite number (their classes get a posterior of
    /// about e^-690, and no NaN reaches the gradients of the others).
    log_weights: Vec<f64>,
    /// (classes, dim), row-major.
    means: Vec<f64>,
    variances: Vec<f64>,
}

impl MixtureClassifier {
    pub fn new(mixture: &GaussianMixture) -> Self {
        MixtureClassifier {
            classes: mixture.num_components(),
            dim: mixture.dim(),
            log_weights: mixture
                .weights()
                .iter()
                .map(|w| w.max(1e-300).ln())
                .collect(),
            means: mixture.means().iter().flatten().copied().collect(),
            variances: mixture.stds().iter().flatten().map(|s| s * s).collect(),
        }
    }
}

impl Classifier for MixtureClassifier {
    fn classes(&self) -> usize {
        self.classes
    }

    fn log_probs(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor> {
        let (n, dim) = x.dims2()?;
        let (k, device, dtype) = (self.classes, x.device(), x.dtype());
        let constant = |values: &[f64], shape: (usize, usize, usize)| {
            Tensor::from_slice(values, shape, device)?.to_dtype(dtype)
        };
        let means = constant(&self.means, (1, k, self.dim))?;
        let variances = constant(&self.variances, (1, k, self.dim))?
            .broadcast_add(&sigma.to_dtype(dtype)?.sqr()?.reshape((n, 1, 1))?)?;
        let diff = x.reshape((n, 1, dim))?.broadcast_sub(&means)?;
        // -2 log N without the 2 pi term, which every class shares.
        let quadratic = diff.sqr()?.div(&variances)?.sum(2)?;
        let log_det = variances.log()?.sum(2)?;
        let log_weights = constant(&self.log_weights, (1, 1, k))?.reshape((1, k))?;
        let joint = ((quadratic + log_det)? * -0.5)?.broadcast_add(&log_weights)?;
        joint.broadcast_sub(&log_sum_exp_keepdim(&joint)?)
    }
}
