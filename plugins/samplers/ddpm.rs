//! `ddpm`: ancestral sampling through the reverse chain (Ho et al. 2020, Alg. 2), the
//! hierarchical VAE's decoder: at each level x_next ~ N(mu, v) with mu the posterior mean
//! of q(x_next | x, x0 = D(x; sigma)), in sigma space D + (sigma_next^2 / sigma^2)(x - D), and
//! v one of Ho et al.'s two variances: `beta_tilde`, the posterior's own (= DDIM at eta = 1),
//! or `beta`, beta_i (1 + sigma_next^2) with beta_i = 1 - abar_i / abar_{i-1} and
//! abar = 1 / (1 + sigma^2) (see `ddpm_beta_split`). The step to sigma = 0 is the denoising
//! step (the mean, without noise). By default it walks every level of the schedule's own
//! grid (all T steps of a `ddpm` chain). NFE = levels.

use candle_core::Tensor;
use scorelab::config::{Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::steps::{
    ancestral_split, ancestral_step, ddpm_beta_split, denoise_at, walk_levels,
};
use scorelab::sampler::{Sampler, SamplerContext, StepInfo};
use scorelab::schedule::{Grid, GridRequest, Spacing};
use serde::{Deserialize, Serialize};

/// The reverse step's variance (Ho et al. 2020, Sec. 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variance {
    /// beta~_i = (1 - abar_{i-1}) / (1 - abar_i) beta_i, the posterior's variance.
    BetaTilde,
    /// beta_i itself, the larger choice.
    Beta,
}

params! {
    /// Parameters of `ddpm`.
    pub struct DdpmParams {
        /// Noise levels (null: every level of the schedule's own grid, e.g. all T of a ddpm chain).
        steps: Option<usize> = None => 1..=scorelab::sampler::MAX_STEPS,
        /// Spacing of the levels: default (the schedule's own), uniform_t, quadratic, karras or karras(RHO).
        grid: Spacing = Spacing::Default,
        /// The reverse variance: beta_tilde (the posterior's) or beta.
        variance: Variance = Variance::BetaTilde,
    }
}

pub struct Ddpm {
    pub params: DdpmParams,
}

impl Sampler for Ddpm {
    fn grid(&self) -> GridRequest {
        GridRequest::new(self.params.steps, self.params.grid)
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
            let split = match self.params.variance {
                Variance::BetaTilde => ancestral_split(sigma, sigma_next, 1.0),
                Variance::Beta => ddpm_beta_split(sigma, sigma_next),
            };
            let denoised = denoise_at(model, &x, sigma)?;
            ancestral_step(&x, &denoised, sigma, split, rng)
        })
    }
}

fn build(raw: &RawParams, _context: &SamplerContext) -> BuildResult<dyn Sampler> {
    let params = DdpmParams::from_raw(raw)?;
    if params.steps == Some(0) {
        return Err(raw.invalid(
            "steps",
            "must be at least 1",
            "set e.g. `steps: 1000`, or remove it to walk every level of the schedule",
        ));
    }
    Ok(Built::new(
        Box::new(Ddpm {
            params: params.clone(),
        }),
        &params,
    ))
}

inventory::submit! {
    Plugin {
        name: "ddpm",
        about: "DDPM ancestral sampling through the reverse chain, variance beta_tilde or beta (Ho et al. 2020)",
        params: DdpmParams::docs,
        build: Builder::Sampler(build),
    }
}
