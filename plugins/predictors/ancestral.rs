//! `ancestral`: score_sde's `AncestralSamplingPredictor` (Song et al. 2021, Appendix F). On
//! variance-exploding schedules x + (sigma_i^2 - sigma_{i+1}^2) s plus noise of variance
//! sigma_{i+1}^2 (sigma_i^2 - sigma_{i+1}^2) / sigma_i^2 (the posterior, NCSN's chain); on VP
//! and the DDPM chains (x + beta s) / sqrt(1 - beta) + sqrt(beta) z with beta = g^2(t) dt,
//! DDPM's step with variance beta (Ho et al. 2020's sigma_t^2 = beta_t; `ddpm` is the one
//! with beta-tilde). score_sde has no sub-VP form, so sub-VP is refused.

use candle_core::Tensor;
use scorelab::config::{NoParams, Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::sde_steps::{ancestral_predictor_step, ancestral_refusal};
use scorelab::sampler::{Predictor, Refusal};
use scorelab::schedule::{Discretization, Grid};

pub struct Ancestral;

impl Predictor for Ancestral {
    fn predict(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        i: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<Tensor> {
        ancestral_predictor_step(model, &x, grid, i, rng)
    }

    fn refuses(&self, form: Discretization) -> Option<Refusal> {
        (form == Discretization::EulerMaruyama).then(ancestral_refusal)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Predictor> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(Ancestral), &params))
}

inventory::submit! {
    Plugin {
        name: "ancestral",
        about: "score_sde's ancestral-sampling predictor: NCSN's posterior step on VE, DDPM's step with variance beta on VP (no sub-VP form)",
        params: NoParams::docs,
        build: Builder::Predictor(build),
    }
}
