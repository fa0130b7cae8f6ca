//! `sub_vp`: the sub-VP SDE of Song et al. 2021 (score_sde's `subVPSDE`):
//! dx = -beta(t) x / 2 dt + sqrt(beta(t) (1 - e^{-2B(t)})) dw, with `vp`'s linear beta and
//! B(t) = int_0^t beta. Its marginal x = e^{-B/2} x0 + (1 - e^{-B}) z has `vp`'s scale
//! s = e^{-B/2} but the smaller std 1 - e^{-B} (below VP's sqrt(1 - e^{-B})), so in sigma
//! space sigma = (1 - e^{-B}) / s = 2 sinh(B/2). The prior is N(0, I) in x. Parameters, grids
//! and training times are `vp`'s.

use scorelab::config::{Params, RawParams};
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::schedule::linear_beta::{vp_settings, VpParams, VpSettings};
use scorelab::schedule::uniform_t::{
    training_bins, uniform_t_grid, uniform_t_law, uniform_t_sigmas,
};
use scorelab::schedule::{LogBins, Schedule, ScheduleContext, TrainingLaw};

pub struct SubVp {
    settings: VpSettings,
    bins: LogBins,
}

impl SubVp {
    pub fn new(settings: VpSettings) -> Self {
        let mut schedule = SubVp {
            settings,
            bins: LogBins::new(1.0, 2.0, 1),
        };
        schedule.bins = training_bins(&schedule, schedule.settings.training_eps);
        schedule
    }
}

impl Schedule for SubVp {
    /// 2 sinh(B/2) = e^{B/2} - e^{-B/2}.
    fn sigma(&self, t: f64) -> f64 {
        2.0 * (0.5 * self.settings.beta.integral(t)).sinh()
    }

    /// d/dt 2 sinh(B/2) = beta cosh(B/2).
    fn sigma_derivative(&self, t: f64) -> f64 {
        let beta = &self.settings.beta;
        beta.beta(t) * (0.5 * beta.integral(t)).cosh()
    }

    /// B(t) = 2 asinh(sigma / 2), solved for t.
    fn t_of_sigma(&self, sigma: f64) -> f64 {
        self.settings
            .beta
            .time_of_integral(2.0 * (0.5 * sigma).asinh())
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

    fn poor_parameterisations(&self) -> &'static [(&'static str, &'static str)] {
        &[
            ("score", "FD 9.9 against 0.0019 with `edm`"),
            (
                "x0",
                "FD 1.05, every sample below the data's 0.1 % density quantile",
            ),
        ]
    }

    /// N(0, I) in x is N(0, 1 / s(1)^2) in sigma space.
    fn prior_std(&self) -> f64 {
        1.0 / self.scale(1.0)
    }

    fn loss_levels(&self) -> Vec<f64> {
        self.bins.centres()
    }

    fn training_sigmas(&self, n: usize, rng: &mut Rng) -> Vec<(f64, usize)> {
        uniform_t_sigmas(self, self.settings.training_eps, &self.bins, n, rng)
    }

    fn training_law(&self) -> Option<TrainingLaw> {
        Some(uniform_t_law(self.settings.training_eps, &self.bins))
    }

    fn default_grid(&self, steps: Option<usize>) -> Vec<f64> {
        uniform_t_grid(self, self.settings.sampling_eps, steps)
    }

    /// f = -beta(t) / 2.
    fn drift(&self, t: f64) -> f64 {
        -0.5 * self.settings.beta.beta(t)
    }

    /// g^2 = beta(t) (1 - e^{-2B(t)}), with expm1 for small t.
    fn diffusion_squared(&self, t: f64) -> f64 {
        let beta = &self.settings.beta;
        -beta.beta(t) * (-2.0 * beta.integral(t)).exp_m1()
    }
}

fn build(raw: &RawParams, _context: &ScheduleContext) -> BuildResult<dyn Schedule> {
    let (params, settings) = vp_settings(raw)?;
    let plugin: Box<dyn Schedule> = Box::new(SubVp::new(settings));
    Ok(Built::new(plugin, &params).sampling_only(&["sampling_eps"]))
}

inventory::submit! {
    Plugin {
        name: "sub_vp",
        about: "sub-VP SDE: vp's beta and s, x-space std 1 - e^{-B}, so sigma = 2 sinh(B/2) (Song et al. 2021)",
        params: VpParams::docs,
        build: Builder::Schedule(build),
    }
}
