//! `uniform`: lambda(sigma) = 1. The loss at level sigma then scales like 1 / sigma^2, so
//! the smallest levels dominate training.

use scorelab::config::{NoParams, Params, RawParams};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::schedule::Schedule;
use scorelab::weighting::Weighting;

pub struct Uniform;

impl Weighting for Uniform {
    fn lambda(&self, _sigma: f64, _schedule: &dyn Schedule) -> f64 {
        1.0
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Weighting> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(Uniform), &params))
}

inventory::submit! {
    Plugin {
        name: "uniform",
        about: "lambda(sigma) = 1: small noise levels dominate the loss",
        params: NoParams::docs,
        build: Builder::Weighting(build),
    }
}
