//! `euler_maruyama`: the reverse SDE dx = [f x - g^2 grad_x log p_t(x)] dt + g dw-bar
//! (Song et al. 2021, eq. 6) discretised by Euler-Maruyama in x itself, not in sigma space:
//! at level i, x = s(t_i) x^, grad_x log p_t(x) = score(x^; sigma_i) / s(t_i), f and g^2 at
//! t_i, and dt = t_i - t_{i+1}. Every level before the last takes one such step; the last
//! takes the denoising step to 0 instead. NFE = steps.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::sde_steps::reverse_sde_step;
use scorelab::sampler::steps::{final_denoise, walk_levels};
use scorelab::sampler::{check_steps, Sampler, SamplerContext, StepInfo};
use scorelab::schedule::{Grid, GridRequest, Spacing};

params! {
    /// Parameters of `euler_maruyama`.
    pub struct EulerMaruyamaParams {
        /// Noise levels, the last followed by the denoising step to 0 (score_sde's N: 1000).
        steps: usize = 1000 => 1..=scorelab::sampler::MAX_STEPS,
        /// Spacing of the levels: default (the schedule's own: uniform in t for ve and vp), uniform_t, quadratic, karras or karras(RHO).
        grid: Spacing = Spacing::Default,
    }
}

pub struct EulerMaruyama {
    pub params: EulerMaruyamaParams,
}

impl Sampler for EulerMaruyama {
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
        walk_levels(x, grid, on_step, |x, i, sigma, sigma_next| {
            if sigma_next > 0.0 {
                reverse_sde_step(model, &x, grid, i, rng)
            } else {
                final_denoise(model, &x, sigma)
            }
        })
    }
}

fn build(raw: &RawParams, _context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = EulerMaruyamaParams::from_raw(raw)?;
    check_steps(raw, params.steps, 1000)?;
    Ok(Built::new(
        Box::new(EulerMaruyama {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "euler_maruyama",
        about: "Euler-Maruyama on the reverse SDE in x with the schedule's f and g (Song et al. 2021)",
        params: EulerMaruyamaParams::docs,
        build: Builder::Sampler(build),
    }
}
