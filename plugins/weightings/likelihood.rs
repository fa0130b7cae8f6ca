//! `likelihood`: Song et al. 2021's likelihood weighting ("Maximum Likelihood Training of
//! Score-Based Diffusion Models"): lambda = g(t)^2 on the score in x. In sigma space, where
//! the score is s times the one in x, that is g^2 / s^2 = 2 sigma sigma'(t), evaluated at
//! t = t_of_sigma(sigma) of the schedule. With t drawn uniformly (`ve`, `vp`, `sub_vp`)
//! the weighted loss is then an upper bound on the negative log-likelihood, up to constants.
//! Its weight is about 1/t near t = 0 on `vp`, so uniform t gives a noisy loss; with
//! `train.time_sampling: importance` training draws ln sigma uniformly instead (the
//! primitive below), as Song et al. do.

use scorelab::config::{NoParams, Params, RawParams};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::schedule::Schedule;
use scorelab::weighting::{FactorPrimitive, Weighting};

pub struct Likelihood;

impl Weighting for Likelihood {
    fn lambda(&self, sigma: f64, schedule: &dyn Schedule) -> f64 {
        let t = schedule.t_of_sigma(sigma);
        // The schedule's own g^2 (closed form where it has one) over s^2: 2 sigma sigma'.
        schedule.diffusion_squared(t) / schedule.scale(t).powi(2)
    }

    /// lambda / sigma^2 = 2 sigma' / sigma = d (2 ln sigma) / dt: with t uniform, drawing
    /// t in proportion to the weight makes ln sigma uniform. This is Song et al. 2021's
    /// importance sampling, p(t) ~ g^2 / sigma_x^2 (score_flow's
    /// `sample_importance_weighted_time_for_likelihood` bisects the same CDF).
    fn factor_primitive(&self) -> Option<FactorPrimitive> {
        Some(FactorPrimitive {
            of_sigma: |sigma| 2.0 * sigma.ln(),
            sigma_of: |value| (0.5 * value).exp(),
        })
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
