//! `euler_maruyama`: score_sde's `EulerMaruyamaPredictor`, one Euler-Maruyama step of the
//! reverse SDE dx = [f x - g^2 grad_x log p_t(x)] dt + g dw-bar in x (Song et al. 2021, eq. 6),
//! as the `euler_maruyama` sampler takes it.

use candle_core::Tensor;
use scorelab::config::{NoParams, Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::sde_steps::reverse_sde_step;
use scorelab::sampler::Predictor;
use scorelab::schedule::Grid;

pub struct EulerMaruyama;

impl Predictor for EulerMaruyama {
    fn predict(
        &self,
        model: &dyn ScoreModel,
        x: Tensor,
        grid: &Grid,
        i: usize,
        rng: &mut Rng,
    ) -> candle_core::Result<Tensor> {
        reverse_sde_step(model, &x, grid, i, rng)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Predictor> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(EulerMaruyama), &params))
}

inventory::submit! {
    Plugin {
        name: "euler_maruyama",
        about: "Euler-Maruyama on the reverse SDE in x (score_sde's EulerMaruyamaPredictor)",
        params: NoParams::docs,
        build: Builder::Predictor(build),
    }
}
