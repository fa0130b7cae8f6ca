//! `dpmpp_2m`: DPM-Solver++(2M) (Lu et al. 2022, Alg. 2), a second-order multistep solver of
//! the probability-flow ODE in lambda = -ln sigma. Each step is the exact solution for a
//! constant denoiser, x_next = D~ + (sigma_next / sigma)(x - D~) (an Euler step in sigma
//! space), with D~ extrapolated linearly in lambda from this level's and the previous level's
//! denoiser outputs. The first step has no history and the step to sigma = 0 is the denoising
//! step, so both are first order. One evaluation per level: NFE = steps.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::steps::{
    denoise_at, dpmpp_2m_denoised, euler_step, ode_derivative, walk_levels,
};
use scorelab::sampler::{check_steps, Sampler, SamplerContext, StepInfo};
use scorelab::schedule::{Grid, GridRequest, Spacing};

params! {
    /// Parameters of `dpmpp_2m`.
    pub struct DpmPp2mParams {
        /// Noise levels, the last followed by the denoising step to 0 (one evaluation each).
        steps: usize = 20 => 1..=scorelab::sampler::MAX_STEPS,
        /// Spacing of the levels: default (the schedule's own), uniform_t, quadratic, karras or karras(RHO).
        grid: Spacing = Spacing::Default,
    }
}

pub struct DpmPp2m {
    pub params: DpmPp2mParams,
}

impl Sampler for DpmPp2m {
    fn grid(&self) -> GridRequest {
        GridRequest::new(Some(self.params.steps), self.params.grid)
    }

    fn sample(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        _rng: &mut Rng,
        on_step: &mut dyn FnMut(StepInfo),
    ) -> candle_core::Result<Tensor> {
        // The previous level's denoiser output and its step h = ln(sigma_prev / sigma).
        let mut previous: Option<(Tensor, f64)> = None;
        walk_levels(x, grid, on_step, |x, _, sigma, sigma_next| {
            let denoised = denoise_at(model, &x, sigma)?;
            let extrapolated = dpmpp_2m_denoised(
                &denoised,
                previous.as_ref().map(|(d, h)| (d, *h)),
                sigma,
                sigma_next,
            )?;
            let x_next = euler_step(
                &x,
                &ode_derivative(&x, &extrapolated, sigma)?,
                sigma,
                sigma_next,
            )?;
            if sigma_next > 0.0 {
                previous = Some((denoised, (sigma / sigma_next).ln()));
            }
            Ok(x_next)
        })
    }
}

fn build(raw: &RawParams, _context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = DpmPp2mParams::from_raw(raw)?;
    check_steps(raw, params.steps, 20)?;
    Ok(Built::new(
        Box::new(DpmPp2m {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "dpmpp_2m",
        about: "DPM-Solver++(2M): second-order multistep probability-flow ODE solver in log sigma (Lu et al. 2022)",
        params: DpmPp2mParams::docs,
        build: Builder::Sampler(build),
    }
}
