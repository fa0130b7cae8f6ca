//! `euler_ancestral`: k-diffusion's `sample_euler_ancestral`: at each level an Euler step of
//! the probability-flow ODE down to sigma_down, then fresh noise of std S_noise * sigma_up,
//! with sigma_down^2 + sigma_up^2 = sigma_next^2 split by eta as in DDIM. In sigma space it
//! coincides with `ddim` at the same eta (and S_noise = 1): both call the one shared
//! ancestral step. The step to sigma = 0 is the denoising step. NFE = steps.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::steps::{
    ancestral_split, ancestral_step, denoise_at, walk_levels, AncestralSplit,
};
use scorelab::sampler::{
    check_non_negative, check_steps, Sampler, SamplerContext, StepInfo, MAX_S_NOISE,
};
use scorelab::schedule::{Grid, GridRequest, Spacing};

params! {
    /// Parameters of `euler_ancestral`.
    pub struct EulerAncestralParams {
        /// Noise levels, the last followed by the denoising step to 0 (one evaluation each).
        steps: usize = 50 => 1..=scorelab::sampler::MAX_STEPS,
        /// Spacing of the levels: default (the schedule's own), uniform_t, quadratic, karras or karras(RHO).
        grid: Spacing = Spacing::Default,
        /// eta in [0, 1]: how much of each step's noise is fresh (1: the posterior, DDPM's ancestral step).
        eta: f64 = 1.0,
        /// S_noise: scales the fresh noise (1: exact).
        s_noise: f64 = 1.0,
    }
}

pub struct EulerAncestral {
    pub params: EulerAncestralParams,
}

impl Sampler for EulerAncestral {
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
        walk_levels(x, grid, on_step, |x, _, sigma, sigma_next| {
            let denoised = denoise_at(model, &x, sigma)?;
            let split = ancestral_split(sigma, sigma_next, self.params.eta);
            let split = AncestralSplit {
                up: split.up * self.params.s_noise,
                ..split
            };
            ancestral_step(&x, &denoised, sigma, split, rng)
        })
    }
}

fn build(raw: &RawParams, _context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = EulerAncestralParams::from_raw(raw)?;
    check_steps(raw, params.steps, 50)?;
    if !(0.0..=1.0).contains(&params.eta) {
        return Err(raw.invalid(
            "eta",
            format!(
                "must lie in [0, 1], not {}",
                scorelab::config::number(params.eta)
            ),
            "set e.g. `eta: 1`",
        ));
    }
    check_non_negative(raw, "s_noise", params.s_noise, "set e.g. `s_noise: 1`")?;
    // s_noise scales the fresh noise: 1 is exact; far above it the samples are mostly the
    // added noise (at 1e308 every sample overflows to NaN).
    raw.check_within(
        "s_noise",
        params.s_noise,
        (0.0, MAX_S_NOISE),
        "it scales the fresh noise of each step; 1 is exact",
        "set e.g. `s_noise: 1`",
    )?;
    Ok(Built::new(
        Box::new(EulerAncestral {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "euler_ancestral",
        about: "k-diffusion's Euler ancestral: Euler to sigma_down plus fresh noise sigma_up (= ddim at the same eta)",
        params: EulerAncestralParams::docs,
        build: Builder::Sampler(build),
    }
}
