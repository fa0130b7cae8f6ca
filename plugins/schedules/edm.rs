//! `edm`: Karras et al. 2022's schedule: sigma(t) = t and s = 1, so time is the noise level
//! (EDM, Table 1). Training draws ln sigma ~ N(p_mean, p_std^2); sampling walks the Karras
//! grid (eq. 5) of 18 levels from sigma_max to sigma_min with exponent rho, then takes the
//! final denoising step. sigma_min, sigma_max and rho only shape sampling.

use scorelab::config::{NumberOrAuto, Params, RawParams};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::schedule::checks::{check_sigma_max, check_sigma_min};
use scorelab::schedule::grid::karras_sigmas;
use scorelab::schedule::{Discretization, LogBins, Schedule, ScheduleContext, TrainingLaw};

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

    /// score_sde's `VESDE.discretize`: the step adds sigma_i^2 - sigma_{i+1}^2.
    fn poor_parameterisations(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("score", "FD 75 against 0.0026 with `edm`"),
            ("x0", "FD 0.28 against 0.0026 with `edm`"),
        ]
    }

    /// Karras et al. 2022 train with their own lambda(sigma) (the `edm` weighting).
    fn natural_weighting(&self) -> &'static str {
        "edm"
    }

    fn discretization(&self) -> Discretization {
        Discretization::VarianceExploding
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

    fn training_law(&self) -> Option<TrainingLaw> {
        Some(TrainingLaw::LogNormal {
            mean: self.p_mean,
            std: self.p_std,
            bins: self.bins.clone(),
        })
    }

    fn default_grid(&self, steps: Option<usize>) -> Vec<f64> {
        let n = steps.unwrap_or(DEFAULT_STEPS).max(1);
        karras_sigmas(self.sigma_max, self.sigma_min, n, self.rho)
    }
}

/// Bounds of `p_mean` (either sign), `p_std` and `rho`.
pub const MAX_P_MEAN: f64 = 10.0;
pub const MAX_P_STD: f64 = 5.0;
pub const MIN_RHO: f64 = 0.5;
pub const MAX_RHO: f64 = 1000.0;

fn build(raw: &RawParams, _context: &ScheduleContext) -> BuildResult<dyn Schedule> {
    let params = EdmParams::from_raw(raw)?;
    check_sigma_min(raw, params.sigma_min, "0.002")?;
    check_sigma_max(
        raw,
        NumberOrAuto::Number(params.sigma_max),
        params.sigma_max,
        params.sigma_min,
        "set e.g. `sigma_max: 80`",
    )?;
    if !(params.rho > 0.0 && params.rho.is_finite()) {
        return Err(raw.invalid(
            "rho",
            format!(
                "must be positive, not {}",
                scorelab::config::number(params.rho)
            ),
            "set e.g. `rho: 7`",
        ));
    }
    if !params.p_mean.is_finite() {
        return Err(raw.invalid(
            "p_mean",
            format!(
                "must be finite, not {}",
                scorelab::config::number(params.p_mean)
            ),
            "set e.g. `p_mean: -1.2`",
        ));
    }
    if !(params.p_std > 0.0 && params.p_std.is_finite()) {
        return Err(raw.invalid(
            "p_std",
            format!(
                "must be positive, not {}",
                scorelab::config::number(params.p_std)
            ),
            "set e.g. `p_std: 1.2`",
        ));
    }
    // Training draws ln sigma ~ N(p_mean, p_std^2). EDM uses (-1.2, 1.2); with |p_mean| <= 10
    // and p_std <= 5 even a 6-sigma draw stays below e^40 = 2e17, where sigma^2 still fits in
    // f32 (at p_std = 1e308 every draw is infinite and the loss NaN).
    raw.check_within(
        "p_mean",
        params.p_mean,
        (-MAX_P_MEAN, MAX_P_MEAN),
        "training levels are e^p_mean give or take a factor e^(3 p_std); EDM uses -1.2",
        "set e.g. `p_mean: -1.2`",
    )?;
    raw.check_within(
        "p_std",
        params.p_std,
        (0.0, MAX_P_STD),
        "training levels spread over a factor e^(3 p_std) each way; EDM uses 1.2",
        "set e.g. `p_std: 1.2`",
    )?;
    // The Karras grid is uniform in sigma^(1/rho): at rho = 0.1 a 10-step Euler sampler's
    // samples were all NaN (0.3 worked), and as rho grows the grid tends to geometric
    // spacing (EDM: 7; rho = 1000 is that limit already).
    raw.check_within(
        "rho",
        params.rho,
        (MIN_RHO, MAX_RHO),
        "the grid is uniform in sigma^(1/rho); EDM uses 7, and large rho tends to geometric spacing",
        "set e.g. `rho: 7`",
    )?;
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
