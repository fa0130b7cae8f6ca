//! `reverse_diffusion`: score_sde's `ReverseDiffusionPredictor` (Song et al. 2021, eq. 47 and
//! Appendix E), the reverse of each family's own forward chain: for variance-exploding
//! schedules x + (sigma_i^2 - sigma_{i+1}^2) s + sqrt(sigma_i^2 - sigma_{i+1}^2) z; for VP and
//! the DDPM chains (2 - sqrt(1 - beta)) x + beta s + sqrt(beta) z with beta = g^2(t) dt; for
//! sub-VP the reverse SDE's Euler-Maruyama step (score_sde's default `discretize`).

use candle_core::Tensor;
use scorelab::config::{NoParams, Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::sde_steps::reverse_diffusion_step;
use scorelab::sampler::Predictor;
use scorelab::schedule::Grid;

pub struct ReverseDiffusion;

impl Predictor for ReverseDiffusion {
    fn predict(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        i: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<Tensor> {
        reverse_diffusion_step(model, &x, grid, i, rng)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Predictor> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(ReverseDiffusion), &params))
}

inventory::submit! {
    Plugin {
        name: "reverse_diffusion",
        about: "score_sde's reverse-diffusion predictor: the reverse of each family's forward chain (VE, VP as DDPM's chain, sub-VP by Euler-Maruyama)",
        params: NoParams::docs,
        build: Builder::Predictor(build),
    }
}
