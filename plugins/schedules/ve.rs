//! `ve`: the variance-exploding SDE of Song et al. 2021 (score_sde's `VESDE`), the
//! continuous-time limit of NCSN: sigma(t) = sigma_min (sigma_max / sigma_min)^t, s(t) = 1,
//! so f = 0 and g = sigma(t) sqrt(2 ln(sigma_max / sigma_min)). Training draws
//! t ~ U(training_eps, 1); sampling walks t from 1 down to sampling_eps (1000 levels uniform
//! in t by default, score_sde's N), then takes the final denoising step.

use scorelab::config::{NumberOrAuto, Params, RawParams};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::schedule::checks::{check_eps, check_sigma_min, resolve_sigma_max};
use scorelab::schedule::uniform_t::{uniform_t_grid, uniform_t_law};
use scorelab::schedule::{Discretization, LogBins, Schedule, ScheduleContext, TrainingLaw};

params! {
    /// Parameters of `ve`.
    pub struct VeParams {
        /// sigma(0), the smallest noise level of the SDE (score_sde: 0.01).
        sigma_min: f64 = 0.01,
        /// sigma(1), the largest noise level (score_sde's CIFAR-10: 50), or `auto`: the largest pairwise distance in the training data (NCSNv2, technique 1), computed once per training set and exact: the brute force's value to the last bit (a ball-tree search with matmul estimates, checked against their rounding error, picks the pairs to sum).
        sigma_max: NumberOrAuto = NumberOrAuto::Number(50.0),
        /// Training draws t uniformly from [training_eps, 1] (score_sde: 1e-5).
        training_eps: f64 = 1e-5,
        /// Sampling stops at t = sampling_eps before the final denoising step (score_sde: 1e-5).
        sampling_eps: f64 = 1e-5,
    }
}

pub struct Ve {
    sigma_min: f64,
    sigma_max: f64,
    training_eps: f64,
    sampling_eps: f64,
    bins: LogBins,
}

impl Ve {
    /// ln(sigma_max / sigma_min), the rate of log sigma in t.
    fn log_ratio(&self) -> f64 {
        (self.sigma_max / self.sigma_min).ln()
    }
}

impl Schedule for Ve {
    fn sigma(&self, t: f64) -> f64 {
        self.sigma_min * (self.log_ratio() * t).exp()
    }

    fn sigma_derivative(&self, t: f64) -> f64 {
        self.sigma(t) * self.log_ratio()
    }

    fn t_of_sigma(&self, sigma: f64) -> f64 {
        (sigma / self.sigma_min).ln() / self.log_ratio()
    }

    fn t_end(&self) -> f64 {
        self.sampling_eps
    }

    fn poor_parameterisations(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("score", "FD 0.25 against 0.0003 with `edm`"),
            ("x0", "FD 0.036 and 48 % of samples below the data's 0.1 % density quantile, against 0.0003 and 1 % with `edm`"),
        ]
    }

    /// score_sde's `VESDE.discretize`: the step adds sigma_i^2 - sigma_{i+1}^2.
    fn discretization(&self) -> Discretization {
        Discretization::VarianceExploding
    }

    fn sigma_max(&self) -> f64 {
        self.sigma_max
    }

    fn loss_levels(&self) -> Vec<f64> {
        self.bins.centres()
    }

    fn training_sigmas(&self, n: usize, rng: &mut Rng) -> Vec<(f64, usize)> {
        (0..n)
            .map(|_| {
                let t = self.training_eps + (1.0 - self.training_eps) * rng.uniform();
                let sigma = self.sigma(t);
                (sigma, self.bins.index(sigma))
            })
            .collect()
    }

    fn training_law(&self) -> Option<TrainingLaw> {
        Some(uniform_t_law(self.training_eps, &self.bins))
    }

    fn default_grid(&self, steps: Option<usize>) -> Vec<f64> {
        uniform_t_grid(self, self.sampling_eps, steps)
    }

    fn drift(&self, _t: f64) -> f64 {
        0.0
    }

    /// g^2 = 2 sigma sigma' = 2 sigma^2 ln(sigma_max / sigma_min).
    fn diffusion_squared(&self, t: f64) -> f64 {
        2.0 * self.sigma(t).powi(2) * self.log_ratio()
    }
}

fn build(raw: &RawParams, context: &ScheduleContext) -> BuildResult<dyn Schedule> {
    let params = VeParams::from_raw(raw)?;
    check_sigma_min(raw, params.sigma_min, "0.01")?;
    let sigma_max = resolve_sigma_max(
        raw,
        params.sigma_max,
        params.sigma_min,
        context.training_data,
    )?;
    check_eps(raw, "training_eps", params.training_eps)?;
    check_eps(raw, "sampling_eps", params.sampling_eps)?;
    let mut schedule = Ve {
        sigma_min: params.sigma_min,
        sigma_max,
        training_eps: params.training_eps,
        sampling_eps: params.sampling_eps,
        bins: LogBins::new(1.0, 2.0, 1),
    };
    schedule.bins = LogBins::new(schedule.sigma(params.training_eps), sigma_max, 10);
    let plugin: Box<dyn Schedule> = Box::new(schedule);
    Ok(Built::new(plugin, &params).sampling_only(&["sampling_eps"]))
}

inventory::submit! {
    Plugin {
        name: "ve",
        about: "variance-exploding SDE: sigma(t) = sigma_min (sigma_max/sigma_min)^t, s = 1 (Song et al. 2021)",
        params: VeParams::docs,
        build: Builder::Schedule(build),
    }
}
