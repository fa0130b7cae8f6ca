//! `geometric`: L noise levels from sigma_max down to sigma_min in geometric progression
//! (Song & Ermon 2019), sigma_i = sigma_max * (sigma_min / sigma_max)^((i-1)/(L-1)).
//! Training draws a level uniformly per example; sampling walks the levels in order. As a
//! continuous schedule it is `ve`'s sigma(t) = sigma_min (sigma_max / sigma_min)^t, with
//! the levels at t = 1, (L-2)/(L-1), ..., 0.

use scorelab::config::{NumberOrAuto, Params, RawParams};
use scorelab::params;
use scorelab::registry::{BuildResult, Builder, Built, Plugin};
use scorelab::rng::Rng;
use scorelab::schedule::checks::{check_sigma_min, resolve_sigma_max};
use scorelab::schedule::{Discretization, Schedule, ScheduleContext, TrainingLaw};

params! {
    /// Parameters of `geometric`.
    pub struct GeometricParams {
        /// Number of noise levels L. With one level, that level is sigma_min (plain Langevin).
        num_levels: usize = 10,
        /// Largest noise level, or `auto`: the largest pairwise distance in the training data (NCSNv2, technique 1), computed once per training set and exact: the brute force's value to the last bit (a ball-tree search with matmul estimates, checked against their rounding error, picks the pairs to sum).
        sigma_max: NumberOrAuto = NumberOrAuto::Auto,
        /// Smallest noise level.
        sigma_min: f64 = 0.01,
    }
}

pub struct Geometric {
    levels: Vec<f64>,
    sigma_max: f64,
    sigma_min: f64,
}

/// `n` levels from `high` down to `low`, geometrically spaced (one level: `low`).
pub fn geometric_levels(high: f64, low: f64, n: usize) -> Vec<f64> {
    if n == 1 {
        return vec![low];
    }
    let ratio = (low / high).ln();
    (0..n)
        .map(|i| high * (ratio * i as f64 / (n - 1) as f64).exp())
        .collect()
}

impl Schedule for Geometric {
    fn sigma(&self, t: f64) -> f64 {
        self.sigma_min * (self.sigma_max / self.sigma_min).powf(t)
    }

    fn sigma_derivative(&self, t: f64) -> f64 {
        self.sigma(t) * (self.sigma_max / self.sigma_min).ln()
    }

    fn t_of_sigma(&self, sigma: f64) -> f64 {
        (sigma / self.sigma_min).ln() / (self.sigma_max / self.sigma_min).ln()
    }

    fn t_end(&self) -> f64 {
        0.0
    }

    /// score_sde's `VESDE.discretize`: the step adds sigma_i^2 - sigma_{i+1}^2.
    fn discretization(&self) -> Discretization {
        Discretization::VarianceExploding
    }

    fn sigma_min(&self) -> f64 {
        self.sigma_min
    }

    fn sigma_max(&self) -> f64 {
        self.sigma_max
    }

    fn loss_levels(&self) -> Vec<f64> {
        self.levels.clone()
    }

    fn training_sigmas(&self, n: usize, rng: &mut Rng) -> Vec<(f64, usize)> {
        (0..n)
            .map(|_| {
                let i = rng.below(self.levels.len());
                (self.levels[i], i)
            })
            .collect()
    }

    fn training_law(&self) -> Option<TrainingLaw> {
        Some(TrainingLaw::Levels(
            self.levels.iter().copied().zip(0..).collect(),
        ))
    }

    fn default_grid(&self, steps: Option<usize>) -> Vec<f64> {
        match steps {
            Some(n) => geometric_levels(self.sigma_max, self.sigma_min, n.max(1)),
            None => self.levels.clone(),
        }
    }

    fn discrete_levels(&self) -> Option<Vec<f64>> {
        Some(self.levels.iter().rev().copied().collect())
    }
}

/// Most noise levels.
pub const MAX_LEVELS: usize = 100_000;

fn build(raw: &RawParams, context: &ScheduleContext) -> BuildResult<dyn Schedule> {
    let params = GeometricParams::from_raw(raw)?;
    if params.num_levels == 0 {
        return Err(raw.invalid(
            "num_levels",
            "must be at least 1",
            "set e.g. `num_levels: 10`",
        ));
    }
    // NCSNv2 uses up to 2311 levels; the levels are built before the sweep starts.
    if params.num_levels > MAX_LEVELS {
        return Err(raw.invalid(
            "num_levels",
            format!(
                "{} is above the limit of {} (NCSN uses 10, NCSNv2 up to 2311)",
                params.num_levels,
                scorelab::config::number(MAX_LEVELS as f64)
            ),
            "set e.g. `num_levels: 10`",
        ));
    }
    check_sigma_min(raw, params.sigma_min, "0.01")?;
    let sigma_max = resolve_sigma_max(
        raw,
        params.sigma_max,
        params.sigma_min,
        context.training_data,
    )?;
    let levels = geometric_levels(sigma_max, params.sigma_min, params.num_levels);
    let schedule = Geometric {
        levels,
        sigma_max,
        sigma_min: params.sigma_min,
    };
    Ok(Built::new(Box::new(schedule), &params))
}

inventory::submit! {
    Plugin {
        name: "geometric",
        about: "L geometric noise levels from sigma_max (or auto) to sigma_min (NCSN)",
        params: GeometricParams::docs,
        build: Builder::Schedule(build),
    }
}
