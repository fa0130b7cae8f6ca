//! `sigma_squared`: lambda(sigma) = sigma^2, which gives every noise level a loss of the
//! same scale (the network then effectively predicts unit-variance noise).

use scorelab::config::{NoParams, Params, RawParams};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::schedule::Schedule;
use scorelab::weighting::Weighting;

pub struct SigmaSquared;

impl Weighting for SigmaSquared {
    fn lambda(&self, sigma: f64, _schedule: &dyn Schedule) -> f64 {
        sigma * sigma
    }

    fn equalises_levels(&self) -> bool {
        true
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Weighting> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(SigmaSquared), &params))
}

inventory::submit! {
    Plugin {
        name: "sigma_squared",
        about: "lambda(sigma) = sigma^2: every level's loss on the same scale",
        params: NoParams::docs,
        build: Builder::Weighting(build),
    }
}
