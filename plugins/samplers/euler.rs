//! `euler`: Euler's method on the probability-flow ODE in sigma space, dx/dsigma =
//! (x - D(x; sigma)) / sigma (Karras et al. 2022, eq. 4 and Alg. 1 without the Heun
//! correction; k-diffusion's `sample_euler`). The step to sigma = 0 is the denoising step.
//! NFE = steps.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::steps::{euler_ode_step, walk_levels};
use scorelab::sampler::{check_steps, Sampler, SamplerContext, StepInfo};
use scorelab::schedule::{Grid, GridRequest, Spacing};

params! {
    /// Parameters of `euler`.
    pub struct EulerParams {
        /// Noise levels, the last followed by the denoising step to 0 (one evaluation each).
        steps: usize = 100 => 1..=scorelab::sampler::MAX_STEPS,
        /// Spacing of the levels: default (the schedule's own), uniform_t, quadratic, karras or karras(RHO).
        grid: Spacing = Spacing::Default,
    }
}

pub struct Euler {
    pub params: EulerParams,
}

impl Sampler for Euler {
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
        walk_levels(x, grid, on_step, |x, _, sigma, sigma_next| {
            euler_ode_step(model, &x, sigma, sigma_next)
        })
    }
}

fn build(raw: &RawParams, _context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = EulerParams::from_raw(raw)?;
    check_steps(raw, params.steps, 100)?;
    Ok(Built::new(
        Box::new(Euler {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "euler",
        about: "Euler steps on the probability-flow ODE in sigma space (EDM eq. 4)",
        params: EulerParams::docs,
        build: Builder::Sampler(build),
    }
}
