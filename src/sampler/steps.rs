//! The steps samplers share, each a small function citing its source, so no sampler
//! carries a copy of another's arithmetic. All work in sigma space (x^ = x0 + sigma z, the
//! denoiser D(x^; sigma), the score (D - x^) / sigma^2) unless they say so; see
//! [`super::sde_steps`] for the steps of the reverse SDE and the Langevin correctors.

use candle_core::Tensor;

use super::StepInfo;
use crate::network::ScoreModel;
use crate::rng::Rng;
use crate::schedule::Grid;

/// Walks the grid's consecutive levels: for each pair (sigma_i, sigma_{i+1}), the last
/// ending in 0, x = step(x, i, sigma_i, sigma_{i+1}), then reports the step. Samplers that
/// carry state from one step to the next keep it in the closure.
pub fn walk_levels(
    mut x: Tensor,
    grid: &Grid,
    on_step: &mut dyn FnMut(StepInfo),
    mut step: impl FnMut(Tensor, usize, f64, f64) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    let total = grid.steps();
    for (i, pair) in grid.sigmas().windows(2).enumerate() {
        let (sigma, sigma_next) = (pair[0], pair[1]);
        x = step(x, i, sigma, sigma_next)?;
        on_step(StepInfo {
            step: i + 1,
            total,
            sigma: sigma_next,
        });
    }
    Ok(x)
}

/// One Langevin step: x + alpha * score + sqrt(2 alpha) * z, the form of the NCSN code (Song &
/// Ermon 2019's Alg. 1 prints x + alpha/2 * score + sqrt(alpha) * z, the same step with twice
/// the alpha).
pub fn langevin_step(
    x: &Tensor,
    score: &Tensor,
    alpha: f64,
    rng: &mut Rng,
) -> candle_core::Result<Tensor> {
    let noise = rng.normal_like(x)?;
    langevin_step_with_noise(x, score, alpha, &noise)
}

/// A Langevin step with given noise z, for correctors whose step size depends on ||z||
/// (Song et al. 2021, Alg. 4 and 5).
pub fn langevin_step_with_noise(
    x: &Tensor,
    score: &Tensor,
    alpha: f64,
    noise: &Tensor,
) -> candle_core::Result<Tensor> {
    x.add(&(score * alpha)?)?
        .add(&(noise * (2.0 * alpha).sqrt())?)
}

/// Tweedie's denoising step: E[x0 | x] = x + sigma^2 * score(x, sigma).
pub fn tweedie_denoise(x: &Tensor, score: &Tensor, sigma: f64) -> candle_core::Result<Tensor> {
    x.add(&(score * (sigma * sigma))?)
}

/// The noise level `sigma` as a column for every row of `x`, in x's dtype (built in f64,
/// so an f64 batch sees the level unrounded).
fn level(x: &Tensor, sigma: f64) -> candle_core::Result<Tensor> {
    Tensor::full(sigma, (x.dim(0)?, 1), x.device())?.to_dtype(x.dtype())
}

/// D(x; sigma) for a whole batch at one noise level (one model evaluation).
pub fn denoise_at(model: &dyn ScoreModel, x: &Tensor, sigma: f64) -> candle_core::Result<Tensor> {
    model.denoise(x, &level(x, sigma)?)
}

/// The score at one noise level for a whole batch (one model evaluation).
pub fn score_at(model: &dyn ScoreModel, x: &Tensor, sigma: f64) -> candle_core::Result<Tensor> {
    model.score(x, &level(x, sigma)?)
}

/// The final denoising step to sigma = 0: x = D(x; sigma_last), the posterior mean of x0
/// (k-diffusion's convention for the last step of every grid; Tweedie's formula).
pub fn final_denoise(
    model: &dyn ScoreModel,
    x: &Tensor,
    sigma_last: f64,
) -> candle_core::Result<Tensor> {
    denoise_at(model, x, sigma_last)
}

/// The probability-flow ODE's derivative dx/dsigma = (x - D(x; sigma)) / sigma (Karras et
/// al. 2022, eq. 4 with s = 1 and sigma(t) = t; k-diffusion's `to_d`).
pub fn ode_derivative(x: &Tensor, denoised: &Tensor, sigma: f64) -> candle_core::Result<Tensor> {
    x.sub(denoised)? / sigma
}

/// An Euler step in sigma: x + (sigma_next - sigma) d (Karras et al. 2022, Alg. 1 line 5).
/// With d = ode_derivative(x, D, sigma) it is x_next = D + (sigma_next / sigma)(x - D),
/// which is also DDIM's deterministic step and DPM-Solver-1 in sigma space.
pub fn euler_step(
    x: &Tensor,
    derivative: &Tensor,
    sigma: f64,
    sigma_next: f64,
) -> candle_core::Result<Tensor> {
    x.add(&(derivative * (sigma_next - sigma))?)
}

/// Heun's trapezoid correction: x + (sigma_next - sigma)(d + d_next) / 2 (Karras et al. 2022,
/// Alg. 2 line 8), with d at (x, sigma) and d_next at the Euler prediction.
pub fn heun_correction(
    x: &Tensor,
    derivative: &Tensor,
    derivative_next: &Tensor,
    sigma: f64,
    sigma_next: f64,
) -> candle_core::Result<Tensor> {
    let mean = (derivative.add(derivative_next)? * 0.5)?;
    euler_step(x, &mean, sigma, sigma_next)
}

/// One Euler step of the probability-flow ODE from sigma to sigma_next (one evaluation); to
/// sigma_next = 0 it is the final denoising step.
pub fn euler_ode_step(
    model: &dyn ScoreModel,
    x: &Tensor,
    sigma: f64,
    sigma_next: f64,
) -> candle_core::Result<Tensor> {
    if sigma_next == 0.0 {
        return final_denoise(model, x, sigma);
    }
    let denoised = denoise_at(model, x, sigma)?;
    euler_step(x, &ode_derivative(x, &denoised, sigma)?, sigma, sigma_next)
}

/// One step of Heun's method on the probability-flow ODE (Karras et al. 2022, Alg. 1/2 lines
/// 5-8): the Euler prediction, then the trapezoid correction unless sigma_next = 0, where
/// the Euler step is the denoising step. Two evaluations, one on the step to 0.
pub fn heun_step(
    model: &dyn ScoreModel,
    x: &Tensor,
    sigma: f64,
    sigma_next: f64,
) -> candle_core::Result<Tensor> {
    let denoised = denoise_at(model, x, sigma)?;
    let derivative = ode_derivative(x, &denoised, sigma)?;
    let predicted = euler_step(x, &derivative, sigma, sigma_next)?;
    if sigma_next == 0.0 {
        return Ok(predicted);
    }
    let denoised_next = denoise_at(model, &predicted, sigma_next)?;
    let derivative_next = ode_derivative(&predicted, &denoised_next, sigma_next)?;
    heun_correction(x, &derivative, &derivative_next, sigma, sigma_next)
}

/// EDM's churn factor gamma_i = min(S_churn / N, sqrt(2) - 1) for sigma_i in
/// [S_tmin, S_tmax], else 0 (Karras et al. 2022, Alg. 2 line 3); N is the number of levels.
pub fn churn_gamma(sigma: f64, s_churn: f64, levels: usize, s_tmin: f64, s_tmax: f64) -> f64 {
    if s_churn > 0.0 && (s_tmin..=s_tmax).contains(&sigma) {
        (s_churn / levels.max(1) as f64).min(std::f64::consts::SQRT_2 - 1.0)
    } else {
        0.0
    }
}

/// EDM's temporary noise increase (Karras et al. 2022, Alg. 2 lines 4-5): sigma_hat =
/// sigma (1 + gamma), x_hat = x + sqrt(sigma_hat^2 - sigma^2) S_noise z. Returns
/// (x_hat, sigma_hat); draws nothing when gamma = 0.
pub fn churn(
    x: &Tensor,
    sigma: f64,
    gamma: f64,
    s_noise: f64,
    rng: &mut Rng,
) -> candle_core::Result<(Tensor, f64)> {
    if gamma <= 0.0 {
        return Ok((x.clone(), sigma));
    }
    let raised = sigma * (1.0 + gamma);
    let std = (raised * raised - sigma * sigma).sqrt() * s_noise;
    let noise = rng.normal_like(x)?;
    Ok((x.add(&(noise * std)?)?, raised))
}

/// The data prediction DPM-Solver++(2M) steps with (Lu et al. 2022, Alg. 2): with
/// h = ln(sigma / sigma_next) and the previous step's (D_prev, h_prev), r = h_prev / h and
/// D~ = (1 + 1/(2r)) D - (1/(2r)) D_prev; without a previous step (the first), or on the step
/// to sigma = 0 (h infinite), D itself: the first-order step.
pub fn dpmpp_2m_denoised(
    denoised: &Tensor,
    previous: Option<(&Tensor, f64)>,
    sigma: f64,
    sigma_next: f64,
) -> candle_core::Result<Tensor> {
    match previous {
        Some((denoised_prev, h_prev)) if sigma_next > 0.0 && h_prev > 0.0 => {
            let h = (sigma / sigma_next).ln();
            let half_inverse_r = h / (2.0 * h_prev);
            (denoised * (1.0 + half_inverse_r))?.sub(&(denoised_prev * half_inverse_r)?)
        }
        _ => Ok(denoised.clone()),
    }
}

/// How a step to sigma_next splits between the deterministic part and fresh noise: the
/// step goes deterministically to sigma_down, then adds N(0, sigma_up^2) noise, with
/// sigma_down^2 + sigma_up^2 = sigma_next^2 for DDIM-eta (k-diffusion's `get_ancestral_step`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AncestralSplit {
    pub down: f64,
    pub up: f64,
}

/// DDIM's noise split in sigma space (Song, Meng & Ermon 2021, eq. 16 with x^ = x / sqrt(abar)):
/// c = eta sqrt(sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2), down = sqrt(sigma_next^2 - c^2),
/// up = c. eta = 0 is the deterministic (Euler) step; eta = 1 the posterior
/// q(x_next | x, x0 = D), DDPM's ancestral step with variance beta~ (Ho et al. 2020, eq. 7).
pub fn ancestral_split(sigma: f64, sigma_next: f64, eta: f64) -> AncestralSplit {
    if sigma_next <= 0.0 || eta <= 0.0 {
        return AncestralSplit {
            down: sigma_next.max(0.0),
            up: 0.0,
        };
    }
    let posterior_variance =
        sigma_next * sigma_next * (sigma * sigma - sigma_next * sigma_next) / (sigma * sigma);
    let up = (eta * posterior_variance.max(0.0).sqrt()).min(sigma_next);
    AncestralSplit {
        down: (sigma_next * sigma_next - up * up).max(0.0).sqrt(),
        up,
    }
}

/// DDPM's other reverse variance, beta_i (Ho et al. 2020, Sec. 3.2: sigma_t^2 = beta_t), with
/// the same posterior mean (down = sigma_next^2 / sigma, as at eta = 1). With
/// abar = 1 / (1 + sigma^2), beta_i = 1 - abar_i / abar_{i-1} = (sigma^2 - sigma_next^2) /
/// (1 + sigma^2) is a variance of x_{i-1} = sqrt(abar_{i-1}) x^_{i-1}; in sigma space it is
/// beta_i / abar_{i-1} = beta_i (1 + sigma_next^2). It exceeds beta~'s (eta = 1) by
/// (sigma^2 - sigma_next^2)^2 / (sigma^2 (1 + sigma^2)) >= 0: Ho et al.'s two extremes, optimal
/// for a deterministic x0 (beta~) and for x0 ~ N(0, I) (beta). No noise on the step to 0.
pub fn ddpm_beta_split(sigma: f64, sigma_next: f64) -> AncestralSplit {
    if sigma_next <= 0.0 {
        return AncestralSplit { down: 0.0, up: 0.0 };
    }
    let beta = (sigma * sigma - sigma_next * sigma_next) / (1.0 + sigma * sigma);
    AncestralSplit {
        down: sigma_next * sigma_next / sigma,
        up: (beta * (1.0 + sigma_next * sigma_next)).max(0.0).sqrt(),
    }
}

/// An ancestral step: an Euler step to sigma_down, then fresh noise of std sigma_up,
/// x_next = D + (down / sigma)(x - D) + up z (k-diffusion's `sample_euler_ancestral`; DDIM
/// with eta, Song, Meng & Ermon 2021, eq. 12). Draws nothing when up = 0.
pub fn ancestral_step(
    x: &Tensor,
    denoised: &Tensor,
    sigma: f64,
    split: AncestralSplit,
    rng: &mut Rng,
) -> candle_core::Result<Tensor> {
    let stepped = euler_step(x, &ode_derivative(x, denoised, sigma)?, sigma, split.down)?;
    if split.up <= 0.0 {
        return Ok(stepped);
    }
    let noise = rng.normal_like(x)?;
    stepped.add(&(noise * split.up)?)
}
