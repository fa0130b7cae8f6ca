//! `ddpm`: DDPM's ancestral step with the posterior variance beta-tilde (Ho et al. 2020,
//! eq. 7), in sigma space from the denoiser, as the `ddpm` sampler takes it: the posterior
//! q(x_{i+1} | x_i, x0 = D) on every family. On VE schedules it is the `ancestral`
//! predictor's step; on VP it differs from it by the variance (beta-tilde, not beta).

use candle_core::Tensor;
use scorelab::config::{NoParams, Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::steps::{ancestral_split, ancestral_step, denoise_at};
use scorelab::sampler::Predictor;
use scorelab::schedule::Grid;

pub struct Ddpm;

impl Predictor for Ddpm {
    fn predict(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        i: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<Tensor> {
        let (sigma, sigma_next) = (grid.sigmas()[i], grid.sigmas()[i + 1]);
        let denoised = denoise_at(model, &x, sigma)?;
        let split = ancestral_split(sigma, sigma_next, 1.0);
        ancestral_step(&x, &denoised, sigma, split, rng)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Predictor> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(Ddpm), &params))
}

inventory::submit! {
    Plugin {
        name: "ddpm",
        about: "DDPM's ancestral step with the posterior variance beta-tilde, as the ddpm sampler",
        params: NoParams::docs,
        build: Builder::Predictor(build),
    }
}
