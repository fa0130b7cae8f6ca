//! `vp`: the variance-preserving SDE of Song et al. 2021 (score_sde's `VPSDE`), the
//! continuous-time limit of DDPM: dx = -beta(t) x / 2 dt + sqrt(beta(t)) dw with
//! beta(t) = beta_min + t (beta_max - beta_min). With B(t) = int_0^t beta, the marginal is
//! x = e^{-B/2} x0 + sqrt(1 - e^{-B}) z, i.e. s = e^{-B/2} and sigma = sqrt(e^B - 1). The
//! prior is N(0, I) in x. Training draws t ~ U(training_eps, 1); sampling walks t from 1
//! down to sampling_eps (1000 levels uniform in t by default).

use scorelab::config::{ConfigError, Params, RawParams};
use scorelab::params;
use scorelab::plugins::schedules::ve::{check_eps, uniform_times, DEFAULT_STEPS};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::schedule::{LogBins, Schedule, ScheduleContext};

params! {
    /// Parameters of `vp` (and `sub_vp`, which shares them).
    pub struct VpParams {
        /// beta(0), the noise rate at t = 0 (score_sde: 0.1).
        beta_min: f64 = 0.1,
        /// beta(1), the noise rate at t = 1 (score_sde: 20).
        beta_max: f64 = 20.0,
        /// Training draws t uniformly from [training_eps, 1] (score_sde: 1e-5).
        training_eps: f64 = 1e-5,
        /// Sampling stops at t = sampling_eps before the final denoising step (score_sde: 1e-3).
        sampling_eps: f64 = 1e-3,
    }
}

/// A linear noise rate beta(t) = beta_min + t (beta_max - beta_min) and its integral B(t).
#[derive(Debug, Clone, Copy)]
pub struct LinearBeta {
    pub beta_min: f64,
    pub beta_max: f64,
}

impl LinearBeta {
    pub fn beta(&self, t: f64) -> f64 {
        self.beta_min + t * (self.beta_max - self.beta_min)
    }

    /// B(t) = beta_min t + (beta_max - beta_min) t^2 / 2.
    pub fn integral(&self, t: f64) -> f64 {
        self.beta_min * t + 0.5 * (self.beta_max - self.beta_min) * t * t
    }

    /// The t >= 0 with B(t) = `target`: the positive root of (b/2) t^2 + a t - target, written
    /// as 2 target / (a + sqrt(a^2 + 2 b target)) so nothing cancels for small b or target.
    pub fn time_of_integral(&self, target: f64) -> f64 {
        if target <= 0.0 {
            return 0.0;
        }
        let (a, b) = (self.beta_min, self.beta_max - self.beta_min);
        2.0 * target / (a + (a * a + 2.0 * b * target).sqrt())
    }
}

/// Largest `beta_max` (and so `beta_min`) of `vp` and `sub_vp`.
pub const MAX_BETA: f64 = 50.0;

/// The validated pieces of `VpParams`.
pub struct VpSettings {
    pub beta: LinearBeta,
    pub training_eps: f64,
    pub sampling_eps: f64,
}

/// Decodes and checks `VpParams`: 0 <= beta_min <= beta_max, beta_max > 0, eps in (0, 1).
pub fn vp_settings(raw: &RawParams) -> Result<(VpParams, VpSettings), ConfigError> {
    let params = VpParams::from_raw(raw)?;
    if !(params.beta_min >= 0.0 && params.beta_min.is_finite()) {
        return Err(raw.invalid(
            "beta_min",
            format!(
                "must be non-negative, not {}",
                scorelab::config::number(params.beta_min)
            ),
            "set e.g. `beta_min: 0.1`",
        ));
    }
    if !(params.beta_max >= params.beta_min && params.beta_max > 0.0 && params.beta_max.is_finite())
    {
        return Err(raw.invalid(
            "beta_max",
            format!(
                "must be positive and at least beta_min ({}), not {}",
                scorelab::config::number(params.beta_min),
                scorelab::config::number(params.beta_max)
            ),
            "set e.g. `beta_max: 20`",
        ));
    }
    // sigma(1) = sqrt(e^B - 1) with B = (beta_min + beta_max) / 2: score_sde's 20 gives
    // sigma(1) = 150, 50 gives 2.8e5; at 100 (sigma(1) = 7e10) a 10-step Euler sampler's
    // samples were all NaN, and at 1e308 training is NaN from the first step.
    raw.check_within(
        "beta_max",
        params.beta_max,
        (params.beta_min, MAX_BETA),
        "sigma(1) = sqrt(e^((beta_min + beta_max) / 2) - 1) is already 2.8e5 at 50; score_sde uses 20",
        "set e.g. `beta_max: 20`",
    )?;
    check_eps(raw, "training_eps", params.training_eps)?;
    check_eps(raw, "sampling_eps", params.sampling_eps)?;
    let settings = VpSettings {
        beta: LinearBeta {
            beta_min: params.beta_min,
            beta_max: params.beta_max,
        },
        training_eps: params.training_eps,
        sampling_eps: params.sampling_eps,
    };
    Ok((params, settings))
}

/// Training noise levels for t ~ U(eps, 1), binned; shared by `vp` and `sub_vp`.
pub fn uniform_t_sigmas(
    schedule: &dyn Schedule,
    eps: f64,
    bins: &LogBins,
    n: usize,
    rng: &mut Rng,
) -> Vec<(f64, usize)> {
    (0..n)
        .map(|_| {
            let sigma = schedule.sigma(eps + (1.0 - eps) * rng.uniform());
            (sigma, bins.index(sigma))
        })
        .collect()
}

/// `steps` levels uniform in t from 1 down to `eps` (default: 1000).
pub fn uniform_t_grid(schedule: &dyn Schedule, eps: f64, steps: Option<usize>) -> Vec<f64> {
    let n = steps.unwrap_or(DEFAULT_STEPS).max(1);
    uniform_times(1.0, eps, n)
        .into_iter()
        .map(|t| schedule.sigma(t))
        .collect()
}

/// Per-level loss bins over the training range [sigma(training_eps), sigma(1)].
pub fn training_bins(schedule: &dyn Schedule, training_eps: f64) -> LogBins {
    LogBins::new(schedule.sigma(training_eps), schedule.sigma(1.0), 10)
}

pub struct Vp {
    settings: VpSettings,
    bins: LogBins,
}

impl Vp {
    pub fn new(settings: VpSettings) -> Self {
        let mut schedule = Vp {
            settings,
            bins: LogBins::new(1.0, 2.0, 1),
        };
        schedule.bins = training_bins(&schedule, schedule.settings.training_eps);
        schedule
    }
}

impl Schedule for Vp {
    /// sqrt(e^B - 1), with expm1 so small t keeps its precision.
    fn sigma(&self, t: f64) -> f64 {
        self.settings.beta.integral(t).exp_m1().sqrt()
    }

    /// d/dt sqrt(e^B - 1) = beta e^B / (2 sigma).
    fn sigma_derivative(&self, t: f64) -> f64 {
        let beta = &self.settings.beta;
        beta.beta(t) * beta.integral(t).exp() / (2.0 * self.sigma(t))
    }

    /// B(t) = ln(1 + sigma^2), solved for t.
    fn t_of_sigma(&self, sigma: f64) -> f64 {
        self.settings.beta.time_of_integral((sigma * sigma).ln_1p())
    }

    fn scale(&self, t: f64) -> f64 {
        (-0.5 * self.settings.beta.integral(t)).exp()
    }

    fn scale_derivative(&self, t: f64) -> f64 {
        -0.5 * self.settings.beta.beta(t) * self.scale(t)
    }

    fn t_end(&self) -> f64 {
        self.settings.sampling_eps
    }

    /// N(0, I) in x is N(0, 1 / s(1)^2) = N(0, 1 + sigma_max^2) in sigma space.
    fn prior_std(&self) -> f64 {
        (0.5 * self.settings.beta.integral(1.0)).exp()
    }

    fn loss_levels(&self) -> Vec<f64> {
        self.bins.centres()
    }

    fn training_sigmas(&self, n: usize, rng: &mut Rng) -> Vec<(f64, usize)> {
        uniform_t_sigmas(self, self.settings.training_eps, &self.bins, n, rng)
    }

    fn default_grid(&self, steps: Option<usize>) -> Vec<f64> {
        uniform_t_grid(self, self.settings.sampling_eps, steps)
    }

    /// f = -beta(t) / 2.
    fn drift(&self, t: f64) -> f64 {
        -0.5 * self.settings.beta.beta(t)
    }

    /// g^2 = beta(t).
    fn diffusion_squared(&self, t: f64) -> f64 {
        self.settings.beta.beta(t)
    }
}

fn build(raw: &RawParams, _context: &ScheduleContext) -> BuildResult<dyn Schedule> {
    let (params, settings) = vp_settings(raw)?;
    let plugin: Box<dyn Schedule> = Box::new(Vp::new(settings));
    Ok(Built::new(plugin, &params).sampling_only(&["sampling_eps"]))
}

inventory::submit! {
    Plugin {
        name: "vp",
        about: "variance-preserving SDE (continuous DDPM): linear beta(t), s = e^{-B/2}, sigma = sqrt(e^B - 1) (Song et al. 2021)",
        params: VpParams::docs,
        build: Builder::Schedule(build),
    }
}
