//! Networks: a score model s(x, sigma) ~ grad_x log p_sigma(x), either trained (with its
//! variables in a `VarMap`) or analytic.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::dataset::Dataset;
use crate::rng::Rng;

/// Anything that returns a score for a batch `x` of shape (n, dim) at per-row noise levels
/// `sigma` of shape (n, 1). This is all a sampler sees.
pub trait ScoreModel {
    fn score(&self, x: &Tensor, sigma: &Tensor) -> candle_core::Result<Tensor>;
}

/// One instantiated network.
pub trait Network: ScoreModel + Send {
    /// The trainable variables; `None` for networks with nothing to train.
    fn variables(&self) -> Option<&VarMap>;
}

/// What a network plugin may need when it is built.
pub struct NetworkContext<'a> {
    pub dim: usize,
    pub dataset: &'a Arc<dyn Dataset>,
}

/// A network as configured: instantiates fresh weights for a training run.
pub trait Architecture: Send + Sync {
    fn instantiate(&self, device: &Device, rng: &mut Rng) -> candle_core::Result<Box<dyn Network>>;

    /// False for analytic networks: the trainer then skips training.
    fn trainable(&self) -> bool {
        true
    }
}

/// Per-row noise levels as a column tensor, the shape `ScoreModel::score` takes.
pub fn sigma_column(sigmas: &[f64], device: &Device) -> candle_core::Result<Tensor> {
    let values: Vec<f32> = sigmas.iter().map(|s| *s as f32).collect();
    Tensor::from_vec(values, (sigmas.len(), 1), device)
}

/// One noise level for every row of a batch of `n`.
pub fn constant_sigma(sigma: f64, n: usize, device: &Device) -> candle_core::Result<Tensor> {
    Tensor::full(sigma as f32, (n, 1), device)
}
