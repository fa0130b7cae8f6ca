//! `none`: no predictor; the corrector alone works at each level (annealed Langevin
//! dynamics, as NCSN samples).

use candle_core::Tensor;
use scorelab::config::{NoParams, Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::Predictor;
use scorelab::schedule::Grid;

pub struct NoPredictor;

impl Predictor for NoPredictor {
    fn predict(
        &self,
        _model: &dyn ScoreModel,
        x: Tensor,
        _grid: &Grid,
        _i: usize,
        _rng: &mut Rng,
    ) -> candle_core::Result<Tensor> {
        Ok(x)
    }

    fn moves(&self) -> bool {
        false
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Predictor> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(NoPredictor), &params))
}

inventory::submit! {
    Plugin {
        name: "none",
        about: "no predictor: the corrector alone at each level (annealed Langevin)",
        params: NoParams::docs,
        build: Builder::Predictor(build),
    }
}
