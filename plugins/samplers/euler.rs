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
use scorelab::sampler::steps::euler_ode_step;
use scorelab::sampler::{Sampler, StepInfo};
use scorelab::schedule::{Grid, GridRequest, Spacing};

params! {
    /// Parameters of `euler`.
    pub struct EulerParams {
        /// Noise levels, the last followed by the denoising step to 0 (one evaluation each).
        steps: usize = 100,
        /// Spacing of the levels: default (the schedule's own), uniform_t, quadratic, karras or karras(RHO).
        grid: Spacing = Spacing::Default,
    }
}

pub struct Euler {
    pub params: EulerParams,
}

impl Sampler for Euler {
    fn grid(&self) -> GridRequest {
        GridRequest {
            steps: Some(self.params.steps),
            spacing: self.params.grid,
        }
    }

    fn sample(
        &self,
        model: &dyn ScoreModel,
        mut x: Tensor,
        grid: &Grid,
        _rng: &mut Rng,
        on_step: &mut dyn FnMut(StepInfo),
    ) -> candle_core::Result<Tensor> {
        let sigmas = grid.sigmas();
        let total = grid.steps();
        for (i, pair) in sigmas.windows(2).enumerate() {
            x = euler_ode_step(model, &x, pair[0], pair[1])?;
            on_step(StepInfo {
                step: i + 1,
                total,
                sigma: pair[1],
            });
        }
        Ok(x)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Sampler> {
    let params = EulerParams::from_raw(raw)?;
    if params.steps == 0 {
        return Err(raw.invalid("steps", "must be at least 1", "set e.g. `steps: 100`"));
    }
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
