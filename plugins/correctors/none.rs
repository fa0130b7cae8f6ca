//! `none`: no corrector; the predictor alone moves the samples.

use candle_core::Tensor;
use scorelab::config::{NoParams, Params, RawParams};
use scorelab::network::ScoreModel;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::sampler::Corrector;
use scorelab::schedule::Grid;

pub struct NoCorrector;

impl Corrector for NoCorrector {
    fn correct(
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

fn build(raw: &RawParams) -> BuildResult<dyn Corrector> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(NoCorrector), &params))
}

inventory::submit! {
    Plugin {
        name: "none",
        about: "no corrector: the predictor alone",
        params: NoParams::docs,
        build: Builder::Corrector(build),
    }
}
