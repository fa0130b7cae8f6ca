//! `snr`: weight SNR + offset on ||D - x0||^2, SNR = 1 / sigma^2. Offset 1 is Salimans & Ho
//! 2022's "SNR+1", the loss of v-prediction; offset 0 is the eps-prediction loss (the same
//! as `sigma_squared`). On the score-matching loss that is lambda = sigma^2 + offset sigma^4.

use scorelab::config::{Params, RawParams};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::schedule::Schedule;
use scorelab::weighting::Weighting;

params! {
    /// Parameters of `snr`.
    pub struct SnrParams {
        /// Added to the SNR weight: 1 is "SNR+1" (v-prediction's loss, Salimans & Ho 2022), 0 the eps loss.
        offset: f64 = 1.0,
    }
}

pub struct Snr {
    offset: f64,
}

impl Weighting for Snr {
    fn lambda(&self, sigma: f64, _schedule: &dyn Schedule) -> f64 {
        let sigma2 = sigma * sigma;
        sigma2 + self.offset * sigma2 * sigma2
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Weighting> {
    let params = SnrParams::from_raw(raw)?;
    if !(params.offset >= 0.0 && params.offset.is_finite()) {
        return Err(raw.invalid(
            "offset",
            format!(
                "must be non-negative, not {}",
                scorelab::config::number(params.offset)
            ),
            "set e.g. `offset: 1` (SNR+1)",
        ));
    }
    // The offset scales the loss at every level; 0 and 1 are the published choices, and at
    // 1e308 the loss overflows to inf at the first step.
    raw.check_within(
        "offset",
        params.offset,
        (0.0, 1e6),
        "it is added to every level's weight; 0 (eps loss) and 1 (SNR+1) are the usual values",
        "set e.g. `offset: 1` (SNR+1)",
    )?;
    let plugin: Box<dyn Weighting> = Box::new(Snr {
        offset: params.offset,
    });
    Ok(Built::new(plugin, &params))
}

inventory::submit! {
    Plugin {
        name: "snr",
        about: "weight SNR + offset on ||D - x0||^2: offset 1 is v-prediction's SNR+1 (Salimans & Ho 2022)",
        params: SnrParams::docs,
        build: Builder::Weighting(build),
    }
}
