//! The linear noise rate beta(t) = beta_min + t (beta_max - beta_min) of the
//! variance-preserving SDEs (`vp` and `sub_vp`, score_sde's `VPSDE` and `subVPSDE`), with the
//! parameters both schedules take and their checks.

use crate::config::{number, ConfigError, Params, RawParams};
use crate::params;

use super::checks::check_eps;

params! {
    /// Parameters of `vp` and `sub_vp`.
    pub struct VpParams {
        /// beta(0), the noise rate at t = 0 (score_sde: 0.1).
        beta_min: f64 = 0.1,
        /// beta(1), the noise rate at t = 1 (score_sde: 20).
        beta_max: f64 = 20.0,
        /// Training draws t uniformly from [training_eps, 1] (score_sde: 1e-5).
        training_eps: f64 = 1e-5,
        /// Sampling stops at t = sampling_eps before the final denoising step (score_sde: 1e-3).
        sampling_eps: f64 = 1e-3,
    }
}

/// A linear noise rate beta(t) = beta_min + t (beta_max - beta_min) and its integral B(t).
#[derive(Debug, Clone, Copy)]
pub struct LinearBeta {
    pub beta_min: f64,
    pub beta_max: f64,
}

impl LinearBeta {
    pub fn beta(&self, t: f64) -> f64 {
        self.beta_min + t * (self.beta_max - self.beta_min)
    }

    /// B(t) = beta_min t + (beta_max - beta_min) t^2 / 2.
    pub fn integral(&self, t: f64) -> f64 {
        self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t
    }

    /// The t >= 0 with B(t) = `target`: the positive root of (b/2) t^2 + a t - target, written
    /// as 2 target / (a + sqrt(a^2 + 2 b target)) so nothing cancels for small b or target.
    pub fn time_of_integral(&self, target: f64) -> f64 {
        if target <= 0.0 {
            return 0.0;
        }
        let (a, b) = (self.beta_min, self.beta_max - self.beta_min);
        2.0 * target / (a + (a * a + 2.0 * b * target).sqrt())
    }
}

/// Largest `beta_max` (and so `beta_min`) of `vp` and `sub_vp`.
pub const MAX_BETA: f64 = 50.0;

/// The validated pieces of `VpParams`.
pub struct VpSettings {
    pub beta: LinearBeta,
    pub training_eps: f64,
    pub sampling_eps: f64,
}

/// Decodes and checks `VpParams`: 0 <= beta_min <= beta_max, beta_max > 0, eps in (0, 1).
pub fn vp_settings(raw: &RawParams) -> Result<(VpParams, VpSettings), ConfigError> {
    let params = VpParams::from_raw(raw)?;
    if !(params.beta_min >= 0.0 && params.beta_min.is_finite()) {
        return Err(raw.invalid(
            "beta_min",
            format!("must be non-negative, not {}", number(params.beta_min)),
            "set e.g. `beta_min: 0.1`",
        ));
    }
    if !(params.beta_max >= params.beta_min && params.beta_max > 0.0 && params.beta_max.is_finite())
    {
        return Err(raw.invalid(
            "beta_max",
            format!(
                "must be positive and at least beta_min ({}), not {}",
                number(params.beta_min),
                number(params.beta_max)
            ),
            "set e.g. `beta_max: 20`",
        ));
    }
    // sigma(1) = sqrt(e^B - 1) with B = (beta_min + beta_max) / 2: score_sde's 20 gives
    // sigma(1) = 150, 50 gives 2.8e5; at 100 (sigma(1) = 7e10) a 10-step Euler sampler's
    // samples were all NaN, and at 1e308 training is NaN from the first step.
    raw.check_within(
        "beta_max",
        params.beta_max,
        (params.beta_min, MAX_BETA),
        "sigma(1) = sqrt(e^((beta_min + beta_max) / 2) - 1) is already 2.8e5 at 50; score_sde uses 20",
        "set e.g. `beta_max: 20`",
    )?;
    check_eps(raw, "training_eps", params.training_eps)?;
    check_eps(raw, "sampling_eps", params.sampling_eps)?;
    let settings = VpSettings {
        beta: LinearBeta {
            beta_min: params.beta_min,
            beta_max: params.beta_max,
        },
        training_eps: params.training_eps,
        sampling_eps: params.sampling_eps,
    };
    Ok((params, settings))
}
