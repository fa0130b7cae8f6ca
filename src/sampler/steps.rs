//! The steps samplers share, each a small function citing its source, so no sampler
//! carries a copy of another's arithmetic. All work in sigma space unless they say so.

use candle_core::Tensor;

use crate::rng::Rng;

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
