//! `ddim`: DDIM (Song, Meng & Ermon 2021, eq. 12) in sigma space. With x^ = x / sqrt(abar)
//! and D the denoiser, a step to sigma_next is x_next = D + sqrt(sigma_next^2 - c^2)(x - D) /
//! sigma + c z with c = eta sqrt(sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2): eta = 0 is
//! deterministic (an Euler step of the probability-flow ODE in sigma), eta = 1 is DDPM's
//! ancestral step with the posterior variance. The step to sigma = 0 is the denoising step.
//! NFE = steps. (`euler_ancestral` is the same step, with k-diffusion's S_noise.)

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::steps::{ancestral_split, ancestral_step, denoise_at, walk_levels};
use scorelab::sampler::{check_steps, Sampler, SamplerContext, StepInfo};
use scorelab::schedule::{Grid, GridRequest, Spacing};

params! {
    /// Parameters of `ddim`.
    pub struct DdimParams {
        /// Noise levels, the last followed by the denoising step to 0 (one evaluation each).
        steps: usize = 50 => 1..=scorelab::sampler::MAX_STEPS,
        /// Spacing of the levels: default (the schedule's own: DDIM's evenly spaced timesteps for ddpm), uniform_t, quadratic, karras or karras(RHO).
        grid: Spacing = Spacing::Default,
        /// eta in [0, 1]: 0 is deterministic DDIM, 1 is DDPM's ancestral step.
        eta: f64 = 0.0,
    }
}

pub struct Ddim {
    pub params: DdimParams,
}

impl Sampler for Ddim {
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
            ancestral_step(&x, &denoised, sigma, split, rng)
        })
    }
}

fn build(raw: &RawParams, _context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = DdimParams::from_raw(raw)?;
    check_steps(raw, params.steps, 50)?;
    if !(0.0..=1.0).contains(&params.eta) {
        return Err(raw.invalid(
            "eta",
            format!(
                "must lie in [0, 1], not {}",
                scorelab::config::number(params.eta)
            ),
            "set `eta: 0` (deterministic) up to `eta: 1` (DDPM)",
        ));
    }
    Ok(Built::new(
        Box::new(Ddim {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "ddim",
        about: "DDIM with eta (0: deterministic, 1: DDPM's posterior) in sigma space (Song, Meng & Ermon 2021)",
        params: DdimParams::docs,
        build: Builder::Sampler(build),
    }
}
