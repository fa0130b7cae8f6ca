//! `edm`: Karras et al. 2022's loss weight lambda_D = (sigma^2 + sd^2) / (sigma sd)^2 on
//! ||D - x0||^2, which gives the `edm`-parameterised network a unit-variance target at every
//! level (lambda_D c_out^2 = 1). On the score-matching loss of `scorelab::weighting` that
//! is lambda = sigma^4 lambda_D.

use scorelab::config::{Params, RawParams};
use scorelab::parameterisation::edm_loss_weight;
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::schedule::Schedule;
use scorelab::weighting::Weighting;

params! {
    /// Parameters of the `edm` weighting.
    pub struct EdmWeightingParams {
        /// Standard deviation of the data, sd (EDM's 0.5 is for images in [-1, 1]); match `network.sigma_data`.
        sigma_data: f64 = 0.5,
    }
}

pub struct EdmWeighting {
    sigma_data: f64,
}

impl Weighting for EdmWeighting {
    fn lambda(&self, sigma: f64, _schedule: &dyn Schedule) -> f64 {
        sigma.powi(4) * edm_loss_weight(sigma, self.sigma_data)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Weighting> {
    let params = EdmWeightingParams::from_raw(raw)?;
    if !(params.sigma_data > 0.0 && params.sigma_data.is_finite()) {
        return Err(raw.invalid(
            "sigma_data",
            format!(
                "must be positive, not {}",
                scorelab::config::number(params.sigma_data)
            ),
            "set e.g. `sigma_data: 0.5`",
        ));
    }
    // The data plugins keep coordinates within 1e6, so no data set has a larger spread; at
    // 1e308 the weight overflows and the loss is NaN from the first step.
    raw.check_within(
        "sigma_data",
        params.sigma_data,
        (0.0, 1e6),
        "it is the data's standard deviation, and data coordinates are at most 1e6",
        "set e.g. `sigma_data: 0.5`",
    )?;
    let plugin: Box<dyn Weighting> = Box::new(EdmWeighting {
        sigma_data: params.sigma_data,
    });
    Ok(Built::new(plugin, &params))
}

inventory::submit! {
    Plugin {
        name: "edm",
        about: "EDM's lambda_D = (sigma^2 + sd^2)/(sigma sd)^2 on ||D - x0||^2 (Karras et al. 2022)",
        params: EdmWeightingParams::docs,
        build: Builder::Weighting(build),
    }
}
