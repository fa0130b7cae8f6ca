//! `likelihood`: Song et al. 2021's likelihood weighting ("Maximum Likelihood Training of
//! Score-Based Diffusion Models"): lambda = g(t)^2 on the score in x. In sigma space, where
//! the score is s times the one in x, that is g^2 / s^2 = 2 sigma sigma'(t), evaluated at
//! t = t_of_sigma(sigma) of the schedule. With t drawn uniformly (`ve`, `vp`, `sub_vp`)
//! the weighted loss is then an upper bound on the negative log-likelihood, up to constants.

use scorelab::config::{NoParams, Params, RawParams};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::schedule::Schedule;
use scorelab::weighting::Weighting;

pub struct Likelihood;

impl Weighting for Likelihood {
    fn lambda(&self, sigma: f64, schedule: &dyn Schedule) -> f64 {
        let t = schedule.t_of_sigma(sigma);
        // The schedule's own g^2 (closed form where it has one) over s^2: 2 sigma sigma'.
        schedule.diffusion_squared(t) / schedule.scale(t).powi(2)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Weighting> {
    let params = NoParams::from_raw(raw)?;
    Ok(Built::new(Box::new(Likelihood), &params))
}

inventory::submit! {
    Plugin {
        name: "likelihood",
        about: "lambda = g(t)^2 / s^2 = d sigma^2 / dt: the loss bounds the NLL under uniform t (Song et al. 2021)",
        params: NoParams::docs,
        build: Builder::Weighting(build),
    }
}
