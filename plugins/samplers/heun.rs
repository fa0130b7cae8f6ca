//! `heun`: Karras et al. 2022, Algorithm 2 (EDM's stochastic sampler, Heun's method on the
//! probability-flow ODE with optional "churn"): at each level a temporary noise increase
//! sigma^ = sigma (1 + gamma) for sigma in [S_tmin, S_tmax], an Euler step from sigma^ to
//! the next level, and the trapezoid correction unless the next level is 0. With the
//! defaults (S_churn = 0) it is deterministic Heun. NFE = 2N - 1 for N levels.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::steps::{churn, churn_gamma, heun_step, walk_levels};
use scorelab::sampler::{
    check_non_negative, check_steps, Sampler, SamplerContext, StepInfo, MAX_S_NOISE,
};
use scorelab::schedule::{Grid, GridRequest, Spacing};

params! {
    /// Parameters of `heun`.
    pub struct HeunParams {
        /// Noise levels N (EDM: 18 for CIFAR-10); 2N - 1 evaluations.
        steps: usize = 18 => 1..=scorelab::sampler::MAX_STEPS,
        /// Spacing of the levels: default (the schedule's own; karras for edm), uniform_t, quadratic, karras or karras(RHO).
        grid: Spacing = Spacing::Default,
        /// S_churn: total stochasticity; gamma_i = min(S_churn / N, sqrt(2) - 1) (0: deterministic).
        s_churn: f64 = 0.0,
        /// S_tmin: churn only at levels sigma >= S_tmin.
        s_tmin: f64 = 0.0,
        /// S_tmax: churn only at levels sigma <= S_tmax (null: no upper bound, EDM's infinity).
        s_tmax: Option<f64> = None,
        /// S_noise: the std of the churn noise relative to the exact sqrt(sigma_hat^2 - sigma^2).
        s_noise: f64 = 1.0,
    }
}

pub struct Heun {
    pub params: HeunParams,
}

impl Sampler for Heun {
    fn grid(&self) -> GridRequest {
        GridRequest::new(Some(self.params.steps), self.params.grid)
    }

    fn sample(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        rng: &mut Rng,
        on_step: &mut dyn FnMut(StepInfo),
    ) -> candle_core::Result<Tensor> {
        let p = &self.params;
        let levels = grid.steps();
        let s_tmax = p.s_tmax.unwrap_or(f64::INFINITY);
        walk_levels(x, grid, on_step, |x, _, sigma, sigma_next| {
            // Increase noise temporarily.
            let gamma = churn_gamma(sigma, p.s_churn, levels, p.s_tmin, s_tmax);
            let (raised, sigma_hat) = churn(&x, sigma, gamma, p.s_noise, rng)?;
            // Euler step from sigma^, then the second-order correction unless sigma_next = 0.
            heun_step(model, &raised, sigma_hat, sigma_next)
        })
    }
}

/// Largest `s_churn`: enough to saturate gamma for up to 2400 levels.
pub const MAX_S_CHURN: f64 = 1000.0;

fn build(raw: &RawParams, _context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = HeunParams::from_raw(raw)?;
    check_steps(raw, params.steps, 18)?;
    check_non_negative(
        raw,
        "s_churn",
        params.s_churn,
        "set e.g. `s_churn: 0` (deterministic) or `s_churn: 40`",
    )?;
    check_non_negative(raw, "s_tmin", params.s_tmin, "set e.g. `s_tmin: 0.05`")?;
    if let Some(s_tmax) = params.s_tmax {
        // NaN fails too.
        if s_tmax.is_nan() || s_tmax < params.s_tmin {
            return Err(raw.invalid(
                "s_tmax",
                format!(
                    "must be at least s_tmin ({}), not {}",
                    scorelab::config::number(params.s_tmin),
                    scorelab::config::number(s_tmax)
                ),
                "raise `s_tmax`, or remove it for no upper bound",
            ));
        }
    }
    check_non_negative(raw, "s_noise", params.s_noise, "set e.g. `s_noise: 1.003`")?;
    // gamma = min(S_churn / N, sqrt(2) - 1) saturates at S_churn = 0.41 N, so a value past
    // what any N reaches changes nothing; EDM's tuned values are 30 to 80.
    raw.check_within(
        "s_churn",
        params.s_churn,
        (0.0, MAX_S_CHURN),
        "EDM uses up to 80; gamma = min(S_churn / N, sqrt(2) - 1) stops growing at S_churn = 0.41 N",
        "set e.g. `s_churn: 40`, or 0 for the deterministic sampler",
    )?;
    // The churn noise is s_noise times the exact amount: EDM tunes 1.000 to 1.007; far above
    // 1 the samples are mostly added noise (and at 1e308 they overflow to NaN).
    raw.check_within(
        "s_noise",
        params.s_noise,
        (0.0, MAX_S_NOISE),
        "the churn noise is s_noise times the exact amount; EDM uses 1.000 to 1.007",
        "set e.g. `s_noise: 1.003`",
    )?;
    Ok(Built::new(
        Box::new(Heun {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "heun",
        about: "EDM Algorithm 2: Heun's method on the probability-flow ODE with optional churn (NFE 2N - 1)",
        params: HeunParams::docs,
        build: Builder::Sampler(build),
    }
}
