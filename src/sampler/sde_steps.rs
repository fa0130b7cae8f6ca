//! Steps of the reverse SDE and the Langevin correctors (Song et al. 2021, "score_sde").
//! The predictors follow their formulas in x = s(t) x^, converting with the grid's `scale`
//! (the reverse-diffusion and ancestral ones in each family's own discretisation); the
//! correctors work in sigma space.

use candle_core::{DType, Tensor};

use super::steps::score_at;
use crate::network::ScoreModel;
use crate::rng::Rng;
use crate::schedule::{Discretization, ForwardStep, Grid};

/// score_sde's `ReverseDiffusionPredictor` from level i to i + 1 (one evaluation): with the
/// family's forward step x_i = a x_{i+1} + sqrt(g2) z ([`ForwardStep`]), the reverse step in
/// x is x - (a - 1) x + g2 grad_x log p + sqrt(g2) z (score_sde's `reverse().discretize`).
/// Variance exploding, that is x + (sigma_i^2 - sigma_{i+1}^2) score + sqrt(...) z; DDPM's
/// chain (2 - sqrt(1 - beta)) x + beta score + sqrt(beta) z; Euler-Maruyama the reverse SDE's
/// Euler-Maruyama step. The state is converted from sigma space to x and back.
pub fn reverse_diffusion_step(
    model: &dyn ScoreModel,
    x_hat: &Tensor,
    grid: &Grid,
    i: usize,
    rng: &mut Rng,
) -> candle_core::Result<Tensor> {
    let step = ForwardStep::at(grid, i);
    let (scale, scale_next) = step.scales;
    let score_x = (score_at(model, x_hat, grid.sigmas()[i])? / scale)?;
    let noise = rng.normal_like(x_hat)?;
    let x = ((x_hat * scale)? * (2.0 - step.shrink))?;
    let stepped = x
        .add(&(score_x * step.variance)?)?
        .add(&(noise * step.variance.sqrt())?)?;
    stepped / scale_next
}

/// score_sde's `AncestralSamplingPredictor` from level i to i + 1 (one evaluation).
/// Variance exploding: x + g2 score + sqrt(sigma_{i+1}^2 g2 / sigma_i^2) z, the posterior
/// q(x_{i+1} | x_i, x0 = D). DDPM's chain: (x + beta grad_x log p) / sqrt(1 - beta) +
/// sqrt(beta) z, DDPM's step with variance beta (Ho et al. 2020's sigma_t^2 = beta_t). There
/// is no Euler-Maruyama form: the caller refuses those schedules first
/// ([`ancestral_refusal`]).
pub fn ancestral_predictor_step(
    model: &dyn ScoreModel,
    x_hat: &Tensor,
    grid: &Grid,
    i: usize,
    rng: &mut Rng,
) -> candle_core::Result<Tensor> {
    let step = ForwardStep::at(grid, i);
    let (sigma, sigma_next) = (grid.sigmas()[i], grid.sigmas()[i + 1]);
    let (scale, scale_next) = step.scales;
    let score_x = (score_at(model, x_hat, sigma)? / scale)?;
    let noise = rng.normal_like(x_hat)?;
    let x = (x_hat * scale)?;
    let (mean, std) = match step.form {
        Discretization::VarianceExploding => (
            x.add(&(score_x * step.variance)?)?,
            (sigma_next * sigma_next * step.variance / (sigma * sigma)).sqrt(),
        ),
        Discretization::DdpmChain => (
            (x.add(&(score_x * step.variance)?)? / step.shrink)?,
            step.variance.sqrt(),
        ),
        Discretization::EulerMaruyama => {
            return Err(candle_core::Error::Msg(ancestral_refusal().message));
        }
    };
    mean.add(&(noise * std)?)? / scale_next
}

/// Why the ancestral predictor refuses a schedule discretised by Euler-Maruyama (sub-VP):
/// score_sde defines it for VE and VP only.
pub fn ancestral_refusal() -> super::pc::Refusal {
    super::pc::Refusal {
        key: "kind".into(),
        message: "the ancestral predictor has no form for a schedule discretised by \
                  Euler-Maruyama (score_sde defines it for VE and VP chains only)"
            .into(),
        fix: "use `predictor: reverse_diffusion` or `euler_maruyama`, or a VE or VP schedule"
            .into(),
    }
}

/// One Euler-Maruyama step of the reverse SDE dx = [f x - g^2 grad_x log p_t(x)] dt + g dw-bar
/// in x (Song et al. 2021, eq. 6), backwards in time by dt > 0:
/// x - (f x - g^2 score_x) dt + sqrt(g^2 dt) z.
pub fn euler_maruyama_step(
    x: &Tensor,
    score_x: &Tensor,
    drift: f64,
    diffusion_squared: f64,
    dt: f64,
    rng: &mut Rng,
) -> candle_core::Result<Tensor> {
    let noise = rng.normal_like(x)?;
    let reverse_drift = (x * drift)?.sub(&(score_x * diffusion_squared)?)?;
    x.sub(&(reverse_drift * dt)?)?
        .add(&(noise * (diffusion_squared * dt).max(0.0).sqrt())?)
}

/// Euler-Maruyama from grid level i to i + 1 for a sigma-space state x^ (one evaluation):
/// x = s_i x^, grad_x log p_t(x) = score(x^; sigma_i) / s_i, f and g^2 at t_i,
/// dt = t_i - t_{i+1}; the result is divided by s_{i+1} to return to sigma space. (Doing the
/// conversion every step equals keeping x across steps and converting at the end.)
pub fn reverse_sde_step(
    model: &dyn ScoreModel,
    x_hat: &Tensor,
    grid: &Grid,
    i: usize,
    rng: &mut Rng,
) -> candle_core::Result<Tensor> {
    let sigma = grid.sigmas()[i];
    let (t, t_next) = (grid.t(i), grid.t(i + 1));
    let (scale, scale_next) = (grid.scale(i), grid.scale(i + 1));
    let schedule = grid.schedule();
    let score_x = (score_at(model, x_hat, sigma)? / scale)?;
    let x = (x_hat * scale)?;
    let stepped = euler_maruyama_step(
        &x,
        &score_x,
        schedule.drift(t),
        schedule.diffusion_squared(t),
        t - t_next,
        rng,
    )?;
    stepped / scale_next
}

/// The batch mean of the per-row Euclidean norms (score_sde's ||.|| in the corrector), as an
/// f64 scalar tensor on x's device.
pub fn mean_row_norm(x: &Tensor) -> candle_core::Result<Tensor> {
    x.sqr()?.sum(1)?.sqrt()?.mean_all()?.to_dtype(DType::F64)
}

/// score_sde's alpha_i = 1 - beta_i at grid level i: the squared share of the signal kept by
/// the family's forward step from level i + 1 to level i ([`ForwardStep`]'s a^2). It is 1
/// for VE and 1 - beta_i on DDPM's chain, as x_i = sqrt(1 - beta_i) x_{i+1} + ... there.
pub fn corrector_alpha(grid: &Grid, i: usize) -> f64 {
    ForwardStep::at(grid, i).shrink.powi(2)
}

/// The Langevin corrector's step size 2 alpha (r ||z|| / ||score||)^2 for signal-to-noise
/// ratio r (Song et al. 2021, Alg. 5), as an f64 scalar tensor on the batch's device (no copy
/// to the CPU per step). The ratio of norms is the same in x and in sigma space (both scale
/// by s), so the step is taken in sigma space as it stands.
pub fn snr_step_size(
    score: &Tensor,
    noise: &Tensor,
    snr: f64,
    alpha: f64,
) -> candle_core::Result<Tensor> {
    let ratio =
        (mean_row_norm(noise)? * snr)?.div(&mean_row_norm(score)?.maximum(f64::MIN_POSITIVE)?)?;
    (&ratio * (2.0 * alpha))?.mul(&ratio)
}

/// One Langevin corrector step at one level (one evaluation): score_sde's
/// `LangevinCorrector`, x + eps score + sqrt(2 eps) z with eps from [`snr_step_size`]
/// (the arithmetic of [`super::steps::langevin_step_with_noise`] with eps on the device).
pub fn langevin_corrector_step(
    model: &dyn ScoreModel,
    x: &Tensor,
    sigma: f64,
    snr: f64,
    alpha: f64,
    rng: &mut Rng,
) -> candle_core::Result<Tensor> {
    let score = score_at(model, x, sigma)?;
    let noise = rng.normal_like(x)?;
    let eps = snr_step_size(&score, &noise, snr, alpha)?;
    langevin_step_on_device(x, &score, &eps, &noise)
}

/// x + eps score + sqrt(2 eps) z for a step size eps held as an f64 scalar tensor: the
/// numbers of [`super::steps::langevin_step_with_noise`] with eps read back to the CPU.
fn langevin_step_on_device(
    x: &Tensor,
    score: &Tensor,
    eps: &Tensor,
    noise: &Tensor,
) -> candle_core::Result<Tensor> {
    let broadcast = vec![1; x.rank()];
    let step = eps.to_dtype(x.dtype())?.reshape(broadcast.as_slice())?;
    let root = (eps * 2.0)?
        .sqrt()?
        .to_dtype(x.dtype())?
        .reshape(broadcast)?;
    x.add(&score.broadcast_mul(&step)?)?
        .add(&noise.broadcast_mul(&root)?)
}

/// One annealed-Langevin corrector step (one evaluation): score_sde's
/// `AnnealedLangevinDynamics`, eps = 2 alpha (r sigma)^2 (the marginal std in x is s sigma,
/// which the conversion to sigma space divides by s).
pub fn ald_corrector_step(
    model: &dyn ScoreModel,
    x: &Tensor,
    sigma: f64,
    snr: f64,
    alpha: f64,
    rng: &mut Rng,
) -> candle_core::Result<Tensor> {
    let score = score_at(model, x, sigma)?;
    let eps = 2.0 * alpha * (snr * sigma).powi(2);
    super::steps::langevin_step(x, &score, eps, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn bits(t: &Tensor) -> Vec<u32> {
        let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// The step size kept on the device is the host formula's, and the step the same numbers
    /// as the host step with that size, bit for bit.
    #[test]
    fn the_corrector_step_on_the_device_is_the_host_step() {
        let device = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (16, 3), &device).unwrap();
        let score = Tensor::randn(0f32, 5.0, (16, 3), &device).unwrap();
        let noise = Tensor::randn(0f32, 1.0, (16, 3), &device).unwrap();
        let (snr, alpha) = (0.16, 0.97);
        let eps = snr_step_size(&score, &noise, snr, alpha).unwrap();
        let norm = |t: &Tensor| mean_row_norm(t).unwrap().to_scalar::<f64>().unwrap();
        let ratio = snr * norm(&noise) / norm(&score).max(f64::MIN_POSITIVE);
        let host = 2.0 * alpha * ratio * ratio;
        assert_eq!(eps.to_scalar::<f64>().unwrap().to_bits(), host.to_bits());
        let on_device = langevin_step_on_device(&x, &score, &eps, &noise).unwrap();
        let on_host =
            super::super::steps::langevin_step_with_noise(&x, &score, host, &noise).unwrap();
        assert_eq!(bits(&on_device), bits(&on_host));
    }
}
