//! Noise schedules: one abstraction for the whole score-SDE family. Every family is the
//! perturbation x = s(t) (x0 + sigma(t) z) (Karras et al. 2022, eq. 12): a schedule gives
//! sigma(t), s(t) and their derivatives, from which the drift f and diffusion g of its SDE
//! follow; the distribution of noise levels used in training; its own sampling grid; and the
//! prior at sigma_max.
//!
//! Training, the denoiser and every sampler that only needs (s, sigma) work in "sigma space"
//! x^ = x / s, where every family is variance exploding: x^ = x0 + sigma z. Samplers that
//! follow the SDE in x itself (Euler-Maruyama) convert with `Grid::scale`.
//!
//! What several schedule plugins share lives here, never in one of them: the checks of their
//! parameters (`checks`, with the one `sigma_max` check), the times of the continuous SDEs
//! (`uniform_t`), the linear beta of `vp` and `sub_vp` (`linear_beta`) and the discrete
//! chains of `ddpm` and `cosine` (`discrete`). `ncsnv2` solves NCSNv2's techniques 2 and 4
//! (the ratio and number of geometric levels, annealed Langevin's step size).

pub mod checks;
pub mod discrete;
pub mod discretize;
pub mod grid;
pub mod linear_beta;
pub mod ncsnv2;
pub mod training_law;
pub mod uniform_t;

pub use discretize::{Discretization, ForwardStep};
pub use grid::{Grid, GridRequest, Spacing};
pub use training_law::TrainingLaw;

use crate::dataset::Samples;
use crate::rng::Rng;

/// What a schedule may need to know when it is built.
pub struct ScheduleContext<'a> {
    /// The training set (`sigma_max: auto` is its largest pairwise distance).
    pub training_data: &'a Samples,
}

pub trait Schedule: Send + Sync {
    /// sigma(t): the noise level in sigma space at time t.
    fn sigma(&self, t: f64) -> f64;
    /// d sigma / dt.
    fn sigma_derivative(&self, t: f64) -> f64;
    /// The inverse of `sigma`: the time at which the noise level is `sigma`.
    fn t_of_sigma(&self, sigma: f64) -> f64;

    /// s(t), the scale of the signal (1 for variance-exploding families).
    fn scale(&self, _t: f64) -> f64 {
        1.0
    }
    /// d s / dt.
    fn scale_derivative(&self, _t: f64) -> f64 {
        0.0
    }

    /// The time sampling starts at (the prior's time); 1 unless the schedule says otherwise.
    fn t_max(&self) -> f64 {
        1.0
    }
    /// The time sampling stops at before the final denoising step.
    fn t_end(&self) -> f64;

    fn sigma_max(&self) -> f64 {
        self.sigma(self.t_max())
    }
    /// The smallest level sampling reaches before the final denoising step.
    fn sigma_min(&self) -> f64 {
        self.sigma(self.t_end())
    }

    /// Standard deviation of the prior in sigma space, where sampling starts: sigma_max
    /// for variance-exploding families; sqrt(1 + sigma_max^2) where the prior is N(0, I)
    /// in x (VP, sub-VP, DDPM).
    fn prior_std(&self) -> f64 {
        self.sigma_max()
    }

    /// The noise levels whose losses are reported separately ("per-level loss"), ascending
    /// or descending as the schedule defines them; continuous schedules give bin centres.
    fn loss_levels(&self) -> Vec<f64>;

    /// Noise levels for one training batch, each with the index of its loss level.
    fn training_sigmas(&self, n: usize, rng: &mut Rng) -> Vec<(f64, usize)>;

    /// The law `training_sigmas` draws from, for importance sampling of the levels
    /// (`train.time_sampling: importance`); `None` where the schedule does not describe it.
    fn training_law(&self) -> Option<TrainingLaw> {
        None
    }

    /// The schedule's own sampling levels, descending from sigma_max to sigma_min, without
    /// the final 0 (`steps` of `None`: the schedule's own levels or default count).
    fn default_grid(&self, steps: Option<usize>) -> Vec<f64>;

    /// For discrete chains (DDPM and NCSN levels): sigma_1 < ... < sigma_T, the levels of
    /// the Markov chain whose variational bound `elbo` computes. `None` for continuous time.
    fn discrete_levels(&self) -> Option<Vec<f64>> {
        None
    }

    /// Drift coefficient of the forward SDE, dx = f(t) x dt + g(t) dw: f = s'/s.
    fn drift(&self, t: f64) -> f64 {
        self.scale_derivative(t) / self.scale(t)
    }

    /// The weighting its paper trains with, by registered name: what an experiment without a
    /// `weighting:` section uses. lambda = sigma^2 (NCSN's, score_sde's, and with eps
    /// prediction DDPM's simple loss) unless the family says otherwise (EDM's own).
    fn natural_weighting(&self) -> &'static str {
        "sigma_squared"
    }

    /// The parameterisation that trains best on it, by name (`score`, `eps`, `x0`, `v`,
    /// `edm`): what `network.parameterisation: auto` resolves to. EDM's preconditioning
    /// unless the family says otherwise (experiments/parameterisation.yaml measures them all).
    fn natural_parameterisation(&self) -> &'static str {
        "edm"
    }

    /// Parameterisations measured to train badly on it (experiments/parameterisation.yaml),
    /// each with what was measured: choosing one gets a warning with the plan.
    fn poor_parameterisations(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// How the SDE becomes a chain of steps between grid levels (score_sde's `discretize`),
    /// for the reverse-diffusion and ancestral predictors: Euler-Maruyama unless the family
    /// has a chain of its own (variance exploding, DDPM's).
    fn discretization(&self) -> Discretization {
        Discretization::EulerMaruyama
    }

    /// Squared diffusion coefficient of the forward SDE: g^2 = 2 s^2 sigma sigma'.
    fn diffusion_squared(&self, t: f64) -> f64 {
        let s = self.scale(t);
        2.0 * s * s * self.sigma(t) * self.sigma_derivative(t)
    }
}

/// Per-level loss bins for continuous schedules: `count` bins evenly spaced in log sigma
/// between `low` and `high`; levels outside fall in the end bins.
#[derive(Debug, Clone)]
pub struct LogBins {
    low: f64,
    high: f64,
    count: usize,
}

impl LogBins {
    pub fn new(low: f64, high: f64, count: usize) -> Self {
        LogBins {
            low: low.ln(),
            high: high.ln(),
            count: count.max(1),
        }
    }

    /// Bin centres (geometric means of the edges), ascending.
    pub fn centres(&self) -> Vec<f64> {
        let width = (self.high - self.low) / self.count as f64;
        (0..self.count)
            .map(|i| (self.low + (i as f64 + 0.5) * width).exp())
            .collect()
    }

    pub fn index(&self, sigma: f64) -> usize {
        let position = (sigma.ln() - self.low) / (self.high - self.low) * self.count as f64;
        (position.max(0.0) as usize).min(self.count - 1)
    }
}
