//! `min_snr`: Min-SNR-gamma (Hang et al. 2023): weight min(SNR, gamma) on ||D - x0||^2 with
//! SNR = 1 / sigma^2, so low-noise levels, whose easy targets would otherwise dominate, stop
//! gaining weight past SNR = gamma. On the score-matching loss that is
//! lambda = sigma^4 min(1 / sigma^2, gamma) = min(sigma^2, gamma sigma^4).

use scorelab::config::{Params, RawParams};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::schedule::Schedule;
use scorelab::weighting::Weighting;

params! {
    /// Parameters of `min_snr`.
    pub struct MinSnrParams {
        /// The cap gamma on the SNR weight (Hang et al. 2023: 5).
        gamma: f64 = 5.0,
    }
}

pub struct MinSnr {
    gamma: f64,
}

impl Weighting for MinSnr {
    fn lambda(&self, sigma: f64, _schedule: &dyn Schedule) -> f64 {
        let sigma2 = sigma * sigma;
        sigma2.min(self.gamma * sigma2 * sigma2)
    }
}

fn build(raw: &RawParams) -> BuildResult<dyn Weighting> {
    let params = MinSnrParams::from_raw(raw)?;
    if !(params.gamma > 0.0 && params.gamma.is_finite()) {
        return Err(raw.invalid(
            "gamma",
            format!(
                "must be positive, not {}",
                scorelab::config::number(params.gamma)
            ),
            "set e.g. `gamma: 5`",
        ));
    }
    let plugin: Box<dyn Weighting> = Box::new(MinSnr {
        gamma: params.gamma,
    });
    Ok(Built::new(plugin, &params))
}

inventory::submit! {
    Plugin {
        name: "min_snr",
        about: "Min-SNR-gamma: weight min(1/sigma^2, gamma) on ||D - x0||^2 (Hang et al. 2023)",
        params: MinSnrParams::docs,
        build: Builder::Weighting(build),
    }
}
