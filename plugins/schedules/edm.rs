//! `edm`: Karras et al. 2022's schedule: sigma(t) = t and s = 1, so time is the noise level
//! (EDM, Table 1). Training draws ln sigma ~ N(p_mean, p_std^2); sampling walks the Karras
//! grid (eq. 5) of 18 levels from sigma_max to sigma_min with exponent rho, then takes the
//! final denoising step. sigma_min, sigma_max and rho only shape sampling.

use scorelab::config::{Params, RawParams};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::schedule::grid::karras_sigmas;
use scorelab::schedule::{LogBins, Schedule, ScheduleContext};

params! {
    /// Parameters of `edm`.
    pub struct EdmParams {
        /// Smallest level sampling reaches before the final denoising step (EDM: 0.002).
        sigma_min: f64 = 0.002,
        /// Largest level, where sampling starts from N(0, sigma_max^2) (EDM: 80).
        sigma_max: f64 = 80.0,
        /// Exponent of the Karras grid, uniform in sigma^(1/rho); larger crowds steps at small sigma (EDM: 7).
        rho: f64 = 7.0,
        /// Mean of ln sigma in training (EDM: -1.2).
        p_mean: f64 = -1.2,
        /// Standard deviation of ln sigma in training (EDM: 1.2).
        p_std: f64 = 1.2,
    }
}

/// Levels sampling takes by default: EDM's CIFAR-10 setting (35 NFE with Heun).
pub const DEFAULT_STEPS: usize = 18;

pub struct Edm {
    sigma_min: f64,
    sigma_max: f64,
    rho: f64,
    p_mean: f64,
    p_std: f64,
    bins: LogBins,
}

impl Schedule for Edm {
    fn sigma(&self, t: f64) -> f64 {
        t
    }

    fn sigma_derivative(&self, _t: f64) -> f64 {
        1.0
    }

    fn t_of_sigma(&self, sigma: f64) -> f64 {
        sigma
    }

    fn t_max(&self) -> f64 {
        self.sigma_max
    }

    fn t_end(&self) -> f64 {
        self.sigma_min
    }

    fn loss_levels(&self) -> Vec<f64> {
        self.bins.centres()
    }

    fn training_sigmas(&self, n: usize, rng: &mut Rng) -> Vec<(f64, usize)> {
        (0..n)
            .map(|_| {
                let sigma = (self.p_mean + self.p_std * rng.normal()).exp();
                (sigma, self.bins.index(sigma))
            })
            .collect()
    }

    fn default_grid(&self, steps: Option<usize>) -> Vec<f64> {
        let n = steps.unwrap_or(DEFAULT_STEPS).max(1);
        karras_sigmas(self.sigma_max, self.sigma_min, n, self.rho)
    }
}

fn build(raw: &RawParams, _context: &ScheduleContext) -> BuildResult<dyn Schedule> {
    let params = EdmParams::from_raw(raw)?;
    if !(params.sigma_min > 0.0 && params.sigma_min.is_finite()) {
        return Err(raw.invalid(
            "sigma_min",
            format!("must be positive, not {}", scorelab::config::number(params.sigma_min)),
            "set e.g. `sigma_min: 0.002`",
        ));
    }
    if params.sigma_max > scorelab::plugins::schedules::ve::SIGMA_MAX_LIMIT {
        return Err(raw.invalid(
            "sigma_max",
            format!("must be at most 1e20, not {}", scorelab::config::number(params.sigma_max)),
            "set e.g. `sigma_max: 80`",
        ));
    }
    if !(params.sigma_max > params.sigma_min && params.sigma_max.is_finite()) {
        return Err(raw.invalid(
            "sigma_max",
            format!(
                "sigma_max ({}) must be above sigma_min ({})",
                scorelab::config::number(params.sigma_max),
                scorelab::config::number(params.sigma_min)
            ),
            "raise `sigma_max` or lower `sigma_min`",
        ));
    }
    if !(params.rho > 0.0 && params.rho.is_finite()) {
        return Err(raw.invalid(
            "rho",
            format!("must be positive, not {}", scorelab::config::number(params.rho)),
            "set e.g. `rho: 7`",
        ));
    }
    if !params.p_mean.is_finite() {
        return Err(raw.invalid(
            "p_mean",
            format!("must be finite, not {}", scorelab::config::number(params.p_mean)),
            "set e.g. `p_mean: -1.2`",
        ));
    }
    if !(params.p_std > 0.0 && params.p_std.is_finite()) {
        return Err(raw.invalid(
            "p_std",
            format!("must be positive, not {}", scorelab::config::number(params.p_std)),
            "set e.g. `p_std: 1.2`",
        ));
    }
    let spread = 3.0 * params.p_std;
    let schedule = Edm {
        sigma_min: params.sigma_min,
        sigma_max: params.sigma_max,
        rho: params.rho,
        p_mean: params.p_mean,
        p_std: params.p_std,
        bins: LogBins::new(
            (params.p_mean - spread).exp(),
            (params.p_mean + spread).exp(),
            10,
        ),
    };
    let plugin: Box<dyn Schedule> = Box::new(schedule);
    Ok(Built::new(plugin, &params).sampling_only(&["sigma_min", "sigma_max", "rho"]))
}

inventory::submit! {
    Plugin {
        name: "edm",
        about: "Karras et al. 2022: sigma(t) = t, s = 1, log-normal training levels, Karras grid for sampling",
        params: EdmParams::docs,
        build: Builder::Schedule(build),
    }
}
