//! Samplers: turn a score model, a starting batch at sigma_max and a descending sigma grid
//! into samples. A sampler knows nothing about networks, training or where the grid came
//! from; the engine counts its score evaluations (NFE).

use candle_core::Tensor;

use crate::network::ScoreModel;
use crate::rng::Rng;

/// Progress reported after each step.
#[derive(Debug, Clone, Copy)]
pub struct StepInfo {
    pub step: usize,
    pub total: usize,
    pub sigma: f64,
}

pub trait Sampler: Send + Sync {
    /// How many grid steps the sampler wants from the schedule (`None`: the schedule's own
    /// levels, as annealed Langevin uses them).
    fn grid_steps(&self) -> Option<usize> {
        None
    }

    fn sample(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        sigmas: &[f64],
        rng: &mut Rng,
        on_step: &mut dyn FnMut(StepInfo),
    ) -> candle_core::Result<Tensor>;
}

/// One Langevin step: x + alpha * score + sqrt(2 alpha) * z (Song & Ermon 2019, Alg. 1).
pub fn langevin_step(
    x: &Tensor,
    score: &Tensor,
    alpha: f64,
    rng: &mut Rng,
) -> candle_core::Result<Tensor> {
    let noise = rng.normal_like(x)?;
    x.add(&(score * alpha)?)?
        .add(&(noise * (2.0 * alpha).sqrt())?)
}

/// Tweedie's denoising step: E[x0 | x] = x + sigma^2 * score(x, sigma).
pub fn tweedie_denoise(x: &Tensor, score: &Tensor, sigma: f64) -> candle_core::Result<Tensor> {
    x.add(&(score * (sigma * sigma))?)
}
